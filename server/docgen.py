"""Docstring generation: target -> plan -> prompt -> model -> clean -> render -> insertion edit.

Small base models (Gemma 3 270M, SmolLM2-135M) do not follow instructions, so the model only
continues code left to right: the definition's source, then the same header again with an opened
docstring (or doc comment) so that the model writes the summary line. Sections (Args/Returns/
Raises, @param/@return/@throws ...) are assembled here from the parsed signature; the model's text
only fills descriptions when it passes `clean_phrase`. Whatever the model says, the inserted text
is rendered here and the edited file is re-parsed: an edit that adds a syntax error is never
returned. Without a model every description is a clearly marked TODO.

All offsets are Python ``str`` offsets into ``Document.text``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import textwrap
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tree_sitter
from repolsp.server.context.document import Document, uri_to_path
from repolsp.server.context.languages import parser_for, spec_for
from repolsp.server.context.symbols import (
    DefinitionInfo,
    definition_kind,
    describe_definition,
    enclosing_definitions,
)
from repolsp.server.engine.base import Engine, GenerationRequest

log = logging.getLogger(__name__)

DOCUMENTABLE_KINDS = frozenset({"function", "method", "class", "struct", "interface", "enum", "type", "trait"})
TODO = "TODO"
# Prompt room for the definition itself; longer bodies are cut (the header matters most).
MAX_SOURCE_CHARS = 3000
MAX_CONTEXT_CHARS = 1500


# -- edits -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Insertion:
    """Replace ``text[start:end]`` with ``new_text`` (``start == end``: a pure insertion)."""

    start: int
    end: int
    new_text: str


def apply_insertions(text: str, insertions: list[Insertion]) -> str:
    """``text`` with non-overlapping insertions applied; insertions at the same offset end up in
    list order (the LSP rule for TextEdits at one position)."""
    ordered = sorted(enumerate(insertions), key=lambda pair: (pair[1].start, pair[1].end, pair[0]), reverse=True)
    for _, ins in ordered:
        text = text[: ins.start] + ins.new_text + text[ins.end :]
    return text


def syntax_error_count(text: str, language: str) -> int:
    """Number of ERROR and MISSING nodes tree-sitter finds in ``text`` (0 for unparsed languages)."""
    parser = parser_for(language)
    if parser is None:
        return 0
    return tree_error_count(parser.parse(text.encode("utf-8", "surrogatepass")))


def tree_error_count(tree: tree_sitter.Tree) -> int:
    """Number of ERROR and MISSING nodes of a parsed tree."""
    if not tree.root_node.has_error:
        return 0
    count = 0
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            count += 1
        if node.has_error:
            stack.extend(node.children)
    return count


def errors_after(doc: Document, insertion: Insertion) -> int:
    """Syntax errors of ``doc`` with ``insertion`` applied, re-parsed incrementally from the
    document's tree (a large file costs about as much as the edited region)."""
    if doc.tree is None:
        return 0
    from repolsp.server.context import coords

    parser = parser_for(doc.language)
    old_bytes = doc.source_bytes
    start_byte, old_end_byte = doc.byte_at(insertion.start), doc.byte_at(insertion.end)
    new_bytes = old_bytes[:start_byte] + coords.encode_text(insertion.new_text) + old_bytes[old_end_byte:]
    new_end_byte = start_byte + len(coords.encode_text(insertion.new_text))
    tree = doc.tree.copy()
    tree.edit(
        start_byte=start_byte, old_end_byte=old_end_byte, new_end_byte=new_end_byte,
        start_point=coords.byte_to_point(old_bytes, start_byte),
        old_end_point=coords.byte_to_point(old_bytes, old_end_byte),
        new_end_point=coords.byte_to_point(new_bytes, new_end_byte),
    )
    return tree_error_count(parser.parse(new_bytes, tree))


def newline_of(text: str, offset: int = 0) -> str:
    """The line ending used around ``offset`` ("\\r\\n", "\\r" or "\\n")."""
    at = text.find("\n", offset)
    if at < 0:
        at = text.rfind("\n", 0, offset)
    if at < 0:
        return "\r" if "\r" in text else "\n"
    return "\r\n" if at > 0 and text[at - 1] == "\r" else "\n"


def indent_unit(text: str) -> str:
    """The file's indentation step: a tab when lines are tab-indented, else four spaces."""
    tabs = len(re.findall(r"^\t", text, flags=re.MULTILINE))
    spaces = len(re.findall(r"^ ", text, flags=re.MULTILINE))
    return "\t" if tabs > spaces else "    "


# -- what to document --------------------------------------------------------------------------


def docstring_target(doc: Document, offset: int) -> DefinitionInfo | None:
    """The innermost documentable definition around ``offset`` (decorator lines included), or None.

    Returns the definition even when it already has a docstring; callers check ``has_docstring``.
    """
    if doc.tree is None:
        return None
    nodes = list(enclosing_definitions(doc, offset))
    wrapped = _definition_under_wrapper(doc, offset)
    if wrapped is not None and all(wrapped.id != n.id for n in nodes):
        nodes.append(wrapped)
    nodes.sort(key=lambda n: n.start_byte)
    for node in reversed(nodes):
        info = describe_definition(doc, node)
        return info if info.kind in DOCUMENTABLE_KINDS and info.name else None
    return None


def _definition_under_wrapper(doc: Document, offset: int) -> tree_sitter.Node | None:
    """The definition whose decorator/export/template wrapper holds ``offset`` (cursor on `@dec`)."""
    spec = spec_for(doc.language)
    byte = doc.byte_at(max(0, min(offset, len(doc.text))))
    node = doc.tree.root_node.descendant_for_byte_range(byte, byte)
    while node is not None:
        if node.type in ("lexical_declaration", "variable_declaration"):
            node = next((c for c in node.named_children if c.type == "variable_declarator"), node)
        if node.type == "variable_declarator":  # `const f = (x) => ...`: cursor on the name
            value = node.child_by_field_name("value")
            if value is not None and definition_kind(value, spec) is not None:
                body = value.child_by_field_name("body")
                return value if body is None or byte <= body.start_byte else None
        if node.type in spec.wrapper_types:
            for child in node.named_children:
                if definition_kind(child, spec) is not None:
                    header_end = child.child_by_field_name("body")
                    limit = header_end.start_byte if header_end is not None else child.end_byte
                    return child if byte <= limit else None
            return None
        if definition_kind(node, spec) is not None:
            return None
        node = node.parent
    return None


@dataclass
class Param:
    """One documented parameter: name as written (``*args`` kept), annotation and default."""

    name: str
    type: str | None = None
    default: str | None = None


@dataclass
class DocPlan:
    """What a docstring documents, read from the definition alone (no model)."""

    language: str
    kind: str
    name: str
    params: list[Param] = field(default_factory=list)
    return_type: str | None = None
    returns: bool = False
    yields: bool = False
    raises: list[str] = field(default_factory=list)
    style: str = "google"  # Python only: google | numpy | sphinx
    panics: bool = False  # Go/Rust: panic!/panic() in the body
    line_length: int = 88  # Python: section lines longer than this are wrapped

    @property
    def has_sections(self) -> bool:
        """True when the docstring gets more than a summary line."""
        return bool(self.params or self.returns or self.yields or self.raises)


_NO_VALUE_TYPES = frozenset({"None", "NoReturn", "Never", "void", "()", "Promise<void>", "!"})


def plan_docstring(doc: Document, info: DefinitionInfo) -> DocPlan:
    """The sections a docstring for ``info`` needs: parameters, return/yield value, raised errors."""
    plan = DocPlan(language=doc.language, kind=info.kind, name=info.name)
    if doc.language == "python" and info.kind == "class" and info.node is not None:
        # Google/numpy "Attributes", sphinx ":ivar": the class's annotated public fields.
        plan.params = python_class_fields(doc, info.node)
        plan.style = detect_python_style(doc.text)
        plan.line_length = project_line_length(uri_to_path(doc.uri))
    if not info.is_callable:
        return plan
    node = info.node
    if doc.language == "python":
        plan.params = python_params(doc, node, info.parameters)
        plan.style = detect_python_style(doc.text)
        plan.line_length = project_line_length(uri_to_path(doc.uri))
    else:
        plan.params = [Param(p.lstrip(".").lstrip("*")) for p in info.parameters
                       if p not in ("...",) and re.fullmatch(r"[.*]*[A-Za-z_$][\w$]*", p)]
    ret = (info.return_type or "").strip().strip("'\"") or None  # forward references: 'Foo' -> Foo
    constructor = info.name in ("__init__", "constructor") or (
        doc.language == "java" and node is not None and node.type == "constructor_declaration")
    is_property = any("property" in d or ".setter" in d for d in info.decorators)
    if info.has_yield and doc.language == "python":
        plan.yields = True
        plan.return_type = _yield_type(ret)
    elif not constructor and not is_property:
        if ret is not None and ret not in _NO_VALUE_TYPES and not ret.startswith("-> None"):
            plan.returns, plan.return_type = True, ret
        elif ret is None and info.has_return_value:
            plan.returns = True
    plan.raises = raised_names(doc, node) if node is not None else []
    plan.panics = info.has_raise and doc.language in ("go", "rust")
    return plan


def python_class_fields(doc: Document, node: tree_sitter.Node, limit: int = 20) -> list[Param]:
    """Annotated public fields of a Python class body (``name: type = default``), ClassVars
    excluded: what a dataclass-like class documents as attributes."""
    body = node.child_by_field_name("body")
    fields: list[Param] = []
    for child in body.named_children if body is not None else []:
        assignment = child.named_children[0] if child.type == "expression_statement" and child.named_children else None
        if assignment is None or assignment.type != "assignment":
            continue
        left, type_node = assignment.child_by_field_name("left"), assignment.child_by_field_name("type")
        if left is None or type_node is None or left.type != "identifier":
            continue
        name, annotation = doc.node_text(left), doc.node_text(type_node)
        if name.startswith("_") or "ClassVar" in annotation:
            continue
        right = assignment.child_by_field_name("right")
        default = doc.node_text(right) if right is not None else None
        if default is not None and (len(default) > 30 or "\n" in default or "field(" in default):
            default = None
        fields.append(Param(name, annotation, default))
    return fields[:limit]


def detect_python_style(text: str) -> str:
    """The docstring convention a Python file already uses: "google", "numpy" or "sphinx"."""
    sphinx = len(re.findall(r":param\s|:returns?:|:raises?\s", text))
    numpy = len(re.findall(r"\n\s*(Parameters|Returns|Raises)\n\s*-{3,}", text))
    google = len(re.findall(r"\n\s*(Args|Arguments|Returns|Raises|Yields):\s*\n", text))
    best = max((google, "google"), (numpy, "numpy"), (sphinx, "sphinx"))
    return best[1] if best[0] > 0 else "google"


def python_params(doc: Document, node: tree_sitter.Node, names: list[str]) -> list[Param]:
    """Annotation and default of each of ``names`` from a Python function node's parameters."""
    params_node = node.child_by_field_name("parameters") if node is not None else None
    found: dict[str, Param] = {}
    for child in params_node.named_children if params_node is not None else []:
        kind = child.type
        type_node = child.child_by_field_name("type")
        value_node = child.child_by_field_name("value")
        if kind in ("identifier", "list_splat_pattern", "dictionary_splat_pattern"):
            name = doc.node_text(child)
        elif kind in ("typed_parameter", "typed_default_parameter", "default_parameter"):
            target = child.child_by_field_name("name")
            if target is None:
                target = next((c for c in child.named_children
                               if c.type in ("identifier", "list_splat_pattern", "dictionary_splat_pattern")), None)
            if target is None:
                continue
            name = doc.node_text(target)
        else:
            continue
        default = doc.node_text(value_node) if value_node is not None else None
        if default is not None and (len(default) > 30 or "\n" in default):
            default = None
        found[name] = Param(name, doc.node_text(type_node) if type_node is not None else None, default)
    return [found.get(name, Param(name)) for name in names]


def _yield_type(annotation: str | None) -> str | None:
    """``Iterator[int]`` -> ``int``: the type a generator's ``Yields:`` section names."""
    if not annotation:
        return None
    match = re.match(r"(?:typing\.|collections\.abc\.)?(?:Async)?(?:Iterator|Iterable|Generator)\[(.*)\]$",
                     annotation.strip(), flags=re.DOTALL)
    if not match:
        return annotation
    inner, depth = match.group(1), 0
    for i, ch in enumerate(inner):  # Generator[Y, S, R]: the yield type is the first argument
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            return inner[:i].strip()
    return inner.strip()


_RAISE_NODES = {
    "python": ("raise_statement",),
    "javascript": ("throw_statement",), "typescript": ("throw_statement",), "tsx": ("throw_statement",),
    "java": ("throw_statement",), "cpp": ("throw_statement", "throw_expression"),
}


def raised_names(doc: Document, node: tree_sitter.Node) -> list[str]:
    """Exception type names raised/thrown directly in ``node`` (nested functions excluded),
    plus a Java ``throws`` clause; in order, without duplicates."""
    spec = spec_for(doc.language)
    names: list[str] = []
    if doc.language == "java":
        for child in node.children:
            if child.type == "throws":
                names.extend(doc.node_text(t) for t in child.named_children)
    raise_types = _RAISE_NODES.get(doc.language, ())
    body = node.child_by_field_name("body")
    stack = list(reversed(body.children)) if body is not None and raise_types else []
    while stack:
        current = stack.pop()
        if current.type in spec.nested_function_types:
            continue
        if current.type in raise_types:
            name = _exception_name(doc, current)
            if name:
                names.append(name)
            continue
        stack.extend(reversed(current.children))
    return list(dict.fromkeys(names))


def _exception_name(doc: Document, statement: tree_sitter.Node) -> str:
    values = [c for c in statement.named_children if c.type not in ("comment",)]
    if not values:
        return ""  # bare `raise`: re-raises whatever was caught
    value = values[0]
    if value.type in ("call", "new_expression", "object_creation_expression", "call_expression"):
        target = value.child_by_field_name("function") or value.child_by_field_name("constructor") \
            or value.child_by_field_name("type")
        value = target if target is not None else value
    text = doc.node_text(value)
    if not re.fullmatch(r"[A-Za-z_$][\w$]*(?:(?:\.|::)[A-Za-z_$][\w$]*)*", text):
        return ""  # `raise make_error(x)[0]`, `throw "text"`: no type name to document
    last = re.split(r"\.|::", text)[-1]
    return text if last[:1].isupper() or re.search(r"(?i)error|exception", last) else ""


# -- what the model says (or TODOs) ------------------------------------------------------------


@dataclass
class DocFill:
    """Descriptions for a plan; empty strings are rendered as TODO."""

    summary: str = ""
    params: dict[str, str] = field(default_factory=dict)
    returns: str = ""
    raises: dict[str, str] = field(default_factory=dict)
    from_model: bool = False


_CODE_HINTS = re.compile(
    # "Return the sum..." is prose: `return`/`if`/`for` alone do not make a line code.
    r"(^\s*(def|class|import|func|fn|let|var|const|public|private|static|#|//|@|>>>|\*/)\b)"
    r"|[{};]|==|=>|->|\)\s*:|\w\(.*\)\s*$|\bself\.|\"{3}|'{3}|`{3}|\s[=+*/%]\s|\w\[|\w\.\w+\("
)


def clean_phrase(raw: str, max_chars: int = 120, forbid: tuple[str, ...] = ()) -> str | None:
    """The first sentence of ``raw`` as a docstring phrase, or None when it is not sane prose
    (code, markup, repetition, too short/long, or one of ``forbid``). Capitalized, ends with '.'."""
    text = raw.strip().splitlines()[0].strip() if raw.strip() else ""
    text = re.sub(r"^[\s*/#\-:]+", "", text).strip()
    sentence = re.match(r"(.+?[.!?])(\s|$)", text)
    if sentence:
        text = sentence.group(1)
    text = text.strip().rstrip(",;:")
    if not text or len(text) > max_chars or _CODE_HINTS.search(text):
        return None
    words = re.findall(r"[A-Za-z']+", text)
    if len(words) < 2 or sum(len(w) for w in words) < 0.6 * len(text.replace(" ", "")):
        return None
    lowered = [w.lower() for w in words]
    if len(words) <= 2 and lowered[0] in ("return", "yield", "raise", "print", "pass", "if", "for", "while"):
        return None  # `return b`: a statement, not a description
    if max(lowered.count(w) for w in set(lowered)) > 3 or text.lower().startswith(("todo", "fixme")):
        return None
    if text.lower().rstrip(".") in {f.lower() for f in forbid}:
        return None
    text = text[0].upper() + text[1:]
    if text[-1] not in ".!?":
        text += "."
    return text.replace("\\", "")


def summary_from_model(raw: str, plan: DocPlan) -> str | None:
    """The summary line from the model's continuation of an opened docstring/doc comment."""
    raw = raw.split('"""')[0].split("'''")[0].split("*/")[0]
    first = raw.strip().split("\n\n")[0].strip()
    if plan.language == "go":
        # The prompt ended with the name: the model continues "returns the sum ...".
        first = re.sub(r"^\s*//\s*", "", first)
        phrase = clean_phrase(f"{plan.name} {first.lstrip()}", forbid=(plan.name,))
        # clean_phrase capitalizes; an unexported Go name must stay as written.
        return plan.name + phrase[len(plan.name):] if phrase else None
    first = " ".join(line.strip().lstrip("*/").strip() for line in first.splitlines()[:1])
    first = re.sub(r"^@brief\s+", "", first)
    phrase = clean_phrase(first, forbid=(plan.name, humanize(plan.name)))
    if phrase and plan.language == "python" and plan.kind in ("function", "method"):
        phrase = imperative(phrase)
    return phrase


_SUBJECT = r"(?:this\s+is\s+an?\s+|this\s+|the\s+|an?\s+)?(?:\w+\s+)?(?:function|method|helper|routine|procedure|code)\s+"
_PREAMBLE = re.compile(
    # group 1: a base-form verb follows ("This function will return ...")
    rf"^{_SUBJECT}(?:that\s+|which\s+)?(will\s+|is\s+used\s+to\s+|can\s+be\s+used\s+to\s+|tries\s+to\s+)"
    # group 2: a third-person verb follows ("This is a helper function that returns ...")
    rf"|^{_SUBJECT}(that\s+|which\s+)?(?=\w+s\b)"
    # group 3: "Function to compute ..."
    r"|^(?:a\s+)?(?:function|method|helper)\s+(to\s+)",
    re.IGNORECASE,
)


def imperative(summary: str) -> str:
    """PEP 257's imperative mood: "This function returns x." -> "Return x."; anything that is not
    such a preamble followed by a verb is returned unchanged."""
    match = _PREAMBLE.match(summary)
    if not match:
        return summary
    rest = summary[match.end():]
    word, _, tail = rest.partition(" ")
    base_form = match.group(1) is not None or match.group(3) is not None
    if not base_form:
        lower = word.lower()
        if lower in ("is", "are", "was", "has", "can", "should", "must", "may"):
            return summary
        if lower == "does":
            word = "do"
        elif lower.endswith("ies") and len(lower) > 4:
            word = word[:-3] + "y"
        elif lower.endswith(("sses", "shes", "ches", "xes", "zes", "oes")):
            word = word[:-2]
        elif lower.endswith("s") and not lower.endswith("ss"):
            word = word[:-1]
        else:
            return summary
    if not word:
        return summary
    return (word[:1].upper() + word[1:] + (" " + tail if tail else "")).strip()


def humanize(name: str) -> str:
    """``compute_total`` / ``computeTotal`` -> ``compute total``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name.strip("_"))
    return spaced.replace("_", " ").lower()


_PY_ARG_LINE = re.compile(r"^\s*(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.+)$")
_SPHINX_LINE = re.compile(r"^\s*:(?:param|ivar)\s+(?:[\w\[\], .|]+\s)?(\*{0,2}\w+)\s*:\s*(.+)$")
_TAG_LINE = re.compile(r"^\s*\*?\s*@param\s+(?:\{[^}]*\}\s*)?\[?([\w$]+)[^\s]*\s*(?:-\s*)?(.+)$")
_TAG_RETURN = re.compile(r"^\s*\*?\s*@returns?\s+(?:\{[^}]*\}\s*)?(.+)$")
_PY_RETURN_LINE = re.compile(r"^\s*(?:[\w\[\], .|]+:\s*)?(.+)$")


def harvest_sections(raw: str, plan: DocPlan) -> DocFill:
    """Parameter/return descriptions the model wrote while continuing the sections prompt.

    ``raw`` starts right after the first parameter's ``name (type):`` label (or ``@param name``),
    so its first line is that parameter's description.
    """
    fill = DocFill()
    text = raw.split('"""')[0].split("'''")[0].split("*/")[0]
    lines = text.splitlines()
    names = {p.name.lstrip("*"): p.name for p in plan.params}
    if plan.params and lines:
        phrase = clean_phrase(lines[0], forbid=(plan.params[0].name,))
        if phrase:
            fill.params[plan.params[0].name] = phrase
        lines = lines[1:]
    in_returns = in_raises = False
    raised = set(plan.raises)
    numpy_name: str | None = None  # numpy style: a `name : type` line, then its description
    for line in lines:
        stripped = line.strip().lstrip("*").strip()
        if not stripped:
            continue
        if numpy_name is not None:
            phrase = clean_phrase(stripped, forbid=(numpy_name,))
            if phrase and numpy_name not in fill.params:
                fill.params[numpy_name] = phrase
            numpy_name = None
            continue
        numpy = re.match(r"^(\*{0,2}\w+)\s*(?::\s*[^:]*)?$", stripped) if plan.style == "numpy" else None
        if numpy and numpy.group(1).lstrip("*") in names and not in_returns:
            numpy_name = names[numpy.group(1).lstrip("*")]
            continue
        if re.match(r"^(Returns?|Yields?):?$", stripped) or re.match(r"^-{3,}$", stripped):
            in_returns = stripped.lower().startswith(("return", "yield")) or in_returns
            in_raises = False
            continue
        if re.match(r"^(Raises|Args|Arguments|Attributes|Parameters|Examples?|Notes?)\b", stripped):
            in_returns, in_raises = False, stripped.startswith("Raises")
            continue
        raises = re.match(r"^(?:@throws\s+\{?|:raises\s+)?([\w.]+)\}?\s*:?\s+(.+)$", stripped)
        if raises and raises.group(1) in raised and (in_raises or stripped.startswith(("@throws", ":raises"))):
            phrase = clean_phrase(raises.group(2), forbid=(raises.group(1),))
            if phrase and raises.group(1) not in fill.raises:
                fill.raises[raises.group(1)] = phrase
            continue
        match = (_TAG_LINE.match(line) or _SPHINX_LINE.match(line)
                 or (None if in_returns else _PY_ARG_LINE.match(line)))
        if match and match.group(1).lstrip("*") in names:
            full = names[match.group(1).lstrip("*")]
            phrase = clean_phrase(match.group(2), forbid=(full,))
            if phrase and full not in fill.params:
                fill.params[full] = phrase
            continue
        ret = _TAG_RETURN.match(line) or re.match(r"^\s*:returns?:\s*(.+)$", line)
        if ret is None and in_returns:
            ret = _PY_RETURN_LINE.match(line)
        if ret and not fill.returns:
            fill.returns = clean_phrase(ret.group(1)) or ""
            in_returns = False
    return fill


# -- rendering ---------------------------------------------------------------------------------


def _todo(what: str) -> str:
    return f"{TODO}: {what}"


def _param_desc(plan: DocPlan, fill: DocFill, param: Param) -> str:
    text = fill.params.get(param.name) or _todo("describe.")
    if param.default is not None and "default" not in text.lower():
        text += f" Defaults to {param.default}."
    return text


def _raise_desc(fill: DocFill, name: str) -> str:
    return (fill.raises.get(name) or _todo("say when.")).replace("*/", "* /")


def _summary(plan: DocPlan, fill: DocFill) -> str:
    if fill.summary:
        return fill.summary
    if plan.language == "go":
        return f"{plan.name} {TODO}: describe what it does."
    return _todo(f"summarize `{plan.name}`.") if plan.language == "python" else _todo(
        f"summarize {plan.name}.")


def python_docstring_lines(plan: DocPlan, fill: DocFill) -> list[str]:
    """Docstring lines (without indentation or quotes) in the plan's style."""
    lines = [_summary(plan, fill)]
    params = plan.params
    returns = plan.returns or plan.yields
    ret_word = "Yields" if plan.yields else "Returns"
    ret_desc = fill.returns or _todo("describe the result.")
    raise_desc = {name: fill.raises.get(name) or _todo("say when.") for name in plan.raises}
    is_class = plan.kind == "class"
    if plan.style == "sphinx":
        tag, type_tag = (":ivar", ":vartype") if is_class else (":param", ":type")
        body = [f"{tag} {p.name.lstrip('*')}: {_param_desc(plan, fill, p)}" for p in params]
        body += [f"{type_tag} {p.name.lstrip('*')}: {p.type}" for p in params if p.type]
        if returns:
            body.append(f":{'yield' if plan.yields else 'returns'}: {ret_desc}")
            if plan.return_type:
                body.append(f":rtype: {plan.return_type}")
        body += [f":raises {name}: {desc}" for name, desc in raise_desc.items()]
        return lines + ([""] + body if body else [])
    if plan.style == "numpy":
        sections: list[str] = []
        if params:
            sections += ["", "Attributes", "----------"] if is_class else ["", "Parameters", "----------"]
            for p in params:
                sections += [f"{p.name} : {p.type}" if p.type else p.name, f"    {_param_desc(plan, fill, p)}"]
        if returns:
            sections += ["", ret_word, "-" * len(ret_word), plan.return_type or "result", f"    {ret_desc}"]
        if plan.raises:
            sections += ["", "Raises", "------"]
            for name, desc in raise_desc.items():
                sections += [name, f"    {desc}"]
        return lines + sections
    sections = []
    if params:
        sections += ["", "Attributes:" if is_class else "Args:"]
        sections += [f"    {p.name} ({p.type}): {_param_desc(plan, fill, p)}" if p.type and not p.name.startswith("*")
                     else f"    {p.name}: {_param_desc(plan, fill, p)}" for p in params]
    if returns:
        sections += ["", f"{ret_word}:", f"    {plan.return_type}: {ret_desc}" if plan.return_type else f"    {ret_desc}"]
    if plan.raises:
        sections += ["", "Raises:"] + [f"    {name}: {desc}" for name, desc in raise_desc.items()]
    return lines + sections


def render_python_docstring(plan: DocPlan, fill: DocFill, indent: str, newline: str = "\n") -> str:
    """The docstring literal: first line unindented (it follows existing indentation), later lines
    indented with ``indent``; no trailing newline."""
    lines = [_safe_docstring_text(line) for line in python_docstring_lines(plan, fill)]
    lines = lines[:1] + [wrapped for line in lines[1:]
                         for wrapped in wrap_section_line(line, plan.line_length - len(indent.expandtabs(4)))]
    if indent.endswith("\t"):  # nested section lines follow the file's tab indentation
        lines = [re.sub(r"^( {4})+", lambda m: "\t" * (len(m.group(0)) // 4), line) for line in lines]
    prefix = "r" if any("\\" in line for line in lines) else ""
    if len(lines) == 1:
        return f'{prefix}"""{lines[0]}"""'
    body = newline.join((indent + line) if line else "" for line in lines[1:])
    return f'{prefix}"""{lines[0]}{newline}{body}{newline}{indent}"""'


def wrap_section_line(line: str, width: int) -> list[str]:
    """A long ``name (type): description`` line wrapped Google-style: continuation lines are
    indented four more spaces than the line itself."""
    if len(line) <= width or width < 40:
        return [line]
    lead = line[: len(line) - len(line.lstrip())]
    return textwrap.wrap(line.strip(), width=width, initial_indent=lead, subsequent_indent=lead + "    ",
                         break_long_words=False, break_on_hyphens=False) or [line]


@functools.lru_cache(maxsize=64)
def _line_length_of(folder: str) -> int:
    path = Path(folder)
    for candidate in (path, *path.parents):
        config = candidate / "pyproject.toml"
        if config.is_file():
            try:
                tool = tomllib.loads(config.read_text(encoding="utf-8")).get("tool", {})
            except (OSError, ValueError):
                return 88
            for section in ("ruff", "black"):
                value = tool.get(section, {}).get("line-length")
                if isinstance(value, int) and 40 <= value <= 400:
                    return value
            return 88
        if (candidate / ".git").exists():
            break
    return 88


def project_line_length(path: str | None) -> int:
    """The line length the file's project formats to (ruff or black in pyproject.toml), else 88."""
    return _line_length_of(str(Path(path).parent)) if path else 88


def _safe_docstring_text(line: str) -> str:
    line = line.replace('"""', "'''").rstrip()
    return line + "." if line.endswith('"') else line


def comment_lines(plan: DocPlan, fill: DocFill) -> list[str]:
    """A doc comment (JSDoc, Javadoc, Doxygen, ///, //) as full lines without indentation."""
    lang = plan.language
    summary = _summary(plan, fill).replace("*/", "* /")
    ret_desc = (fill.returns or _todo("describe the result.")).replace("*/", "* /")
    if lang == "go":
        return [f"// {summary}"]
    if lang == "rust":
        lines = [f"/// {summary}"]
        if plan.return_type and plan.return_type.startswith(("Result", "io::Result", "anyhow::Result")):
            lines += ["///", "/// # Errors", "///", f"/// {_todo('describe when an error is returned.')}"]
        if plan.panics:
            lines += ["///", "/// # Panics", "///", f"/// {_todo('describe when it panics.')}"]
        return lines
    tags: list[str] = []
    descs = {p.name: _param_desc(plan, fill, p).replace("*/", "* /") for p in plan.params}
    if lang in ("javascript", "typescript", "tsx"):
        tags += [f"@param {name} - {desc}" for name, desc in descs.items()]
        if plan.returns:
            tags.append(f"@returns {ret_desc}")
        tags += [f"@throws {{{name}}} {_raise_desc(fill, name)}" for name in plan.raises]
    elif lang == "java":
        tags += [f"@param {name} {desc}" for name, desc in descs.items()]
        if plan.returns:
            tags.append(f"@return {ret_desc}")
        tags += [f"@throws {name} {_raise_desc(fill, name)}" for name in plan.raises]
    else:  # c, cpp: Doxygen
        tags += [f"@param {name} {desc}" for name, desc in descs.items()]
        if plan.returns:
            tags.append(f"@return {ret_desc}")
        tags += [f"@throws {name} {_raise_desc(fill, name)}" for name in plan.raises]
        summary = f"@brief {summary}"
    lines = ["/**", f" * {summary}"]
    if tags:
        lines.append(" *")
        lines += [f" * {tag}" for tag in tags]
    return lines + [" */"]


def header_colon(doc: Document, info: DefinitionInfo) -> int:
    """Offset just after the ``:`` that ends a Python header (comments may hold colons too)."""
    node = info.node
    for child in node.children if node is not None else []:
        if child.type == ":":
            return doc.offset_of_byte(child.end_byte)
    return doc.text.rfind(":", info.header_start, info.body_start or info.end) + 1


def docstring_insertion(doc: Document, info: DefinitionInfo, plan: DocPlan, fill: DocFill) -> Insertion | None:
    """The edit that adds the rendered docstring to ``info`` in ``doc`` (None if it cannot)."""
    text = doc.text
    newline = newline_of(text, info.start)
    if doc.language == "python":
        if info.body_start is None:
            return None
        body_start = info.body_start
        line_start = text.rfind("\n", 0, body_start) + 1
        between = text[line_start:body_start]
        if between.strip():  # `def f(): return 1`: the body shares the header's line
            indent = info.indent + indent_unit(text)
            colon = header_colon(doc, info)
            literal = render_python_docstring(plan, fill, indent, newline)
            body = info.node.child_by_field_name("body") if info.node is not None else None
            if body is not None and body.named_child_count == 0:  # `def f():` with no body yet
                return Insertion(colon, colon, f"{newline}{indent}{literal}")
            return Insertion(colon, body_start, f"{newline}{indent}{literal}{newline}{indent}")
        # Comment lines opening the body go below the docstring: it must come first to read well.
        colon_line_end = text.find("\n", header_colon(doc, info))
        for match in re.finditer(r"^([ \t]*)#", text[colon_line_end + 1:line_start], flags=re.MULTILINE):
            if match.group(1) == between:
                body_start = line_start = colon_line_end + 1 + match.end(1)
                break
        indent = between  # the body's own indentation (tabs or spaces, as written)
        literal = render_python_docstring(plan, fill, indent, newline)
        # PEP 257: a class docstring is set off from the first method by a blank line.
        blank = newline if info.kind == "class" and re.match(r"(@|def |async def |class )", text[body_start:]) else ""
        return Insertion(body_start, body_start, f"{literal}{newline}{blank}{indent}")
    lines = comment_lines(plan, fill)
    line_start = text.rfind("\n", 0, info.start) + 1
    before = text[line_start:info.start]
    indent = info.indent
    block = newline.join(indent + line for line in lines)
    if before.strip():  # something else precedes the definition on its line
        return Insertion(info.start, info.start, f"{block.lstrip()}{newline}{indent}")
    return Insertion(line_start, line_start, block + newline)


# -- prompting the model -----------------------------------------------------------------------


def _definition_source(doc: Document, info: DefinitionInfo) -> str:
    """The definition's lines as written (from the start of its first line), cut to a budget."""
    line_start = doc.text.rfind("\n", 0, info.start) + 1
    source = doc.text[line_start:info.end].replace("\r\n", "\n")
    if len(source) > MAX_SOURCE_CHARS:
        source = source[:MAX_SOURCE_CHARS].rsplit("\n", 1)[0]
    return source


def _context_before(doc: Document, info: DefinitionInfo, max_chars: int = MAX_CONTEXT_CHARS) -> str:
    line_start = doc.text.rfind("\n", 0, info.start) + 1
    before = doc.text[:line_start].replace("\r\n", "\n")
    if len(before) > max_chars:
        before = before[-max_chars:]
        before = before[before.find("\n") + 1:]
    return before


def docstring_prompt(doc: Document, info: DefinitionInfo) -> tuple[str, int]:
    """(prompt, static prefix chars): the file before the definition, the definition itself, then
    the definition's header again with an opened docstring, so a left-to-right model that has just
    read the body writes the summary line."""
    head = _context_before(doc, info) + _definition_source(doc, info).rstrip() + "\n\n\n"
    if doc.language == "python":
        line_start = doc.text.rfind("\n", 0, info.start) + 1
        header = doc.text[line_start:header_colon(doc, info)].replace("\r\n", "\n")
        return f'{head}{header}\n{info.body_indent}"""', len(head)
    indent = info.indent
    opener = {"go": f"// {info.name}", "rust": "///"}.get(doc.language, "/**\n" + indent + " *")
    if doc.language in ("c", "cpp"):
        opener += " @brief"
    return f"{head}{indent}{opener}", len(head)


def sections_prompt(base_prompt: str, plan: DocPlan, summary: str, indent: str) -> str | None:
    """Continue the docstring after the summary with the first parameter's label opened, so the
    model writes that parameter's description (and usually the others after it)."""
    if not plan.params:
        return None
    first = plan.params[0]
    if plan.language == "python":
        head = f"{base_prompt}{summary}\n\n{indent}"
        is_class = plan.kind == "class"
        if plan.style == "sphinx":
            return f"{head}{':ivar' if is_class else ':param'} {first.name.lstrip('*')}:"
        if plan.style == "numpy":
            label = f"{first.name} : {first.type}" if first.type else first.name
            title = "Attributes" if is_class else "Parameters"
            return f"{head}{title}\n{indent}----------\n{indent}{label}\n{indent}    "
        label = f"{first.name} ({first.type})" if first.type and not first.name.startswith("*") else first.name
        return f"{head}{'Attributes' if is_class else 'Args'}:\n{indent}    {label}:"
    if plan.language in ("javascript", "typescript", "tsx", "java", "c", "cpp"):
        star = base_prompt[base_prompt.rfind("\n") + 1:]  # "<indent> *" (and " @brief")
        star = star.replace(" @brief", "")
        dash = " -" if plan.language in ("javascript", "typescript", "tsx") else ""
        return f"{base_prompt} {summary}\n{star}\n{star} @param {first.name}{dash}"
    return None


def copied_from(phrase: str, context: str, run_words: int = 6) -> bool:
    """True when ``phrase`` (a model's summary) repeats a run of ``run_words`` words of prose
    already in ``context`` (the module docstring, a neighbour's docstring)."""
    words = re.findall(r"[a-z0-9]+", phrase.lower())
    if len(words) < run_words:
        return False
    haystack = " " + " ".join(re.findall(r"[a-z0-9]+", context.lower())) + " "
    return any(f" {' '.join(words[i:i + run_words])} " in haystack for i in range(len(words) - run_words + 1))


def summary_seed(plan: DocPlan) -> str:
    """First word given to the model for brace languages: measured on Gemma 3 270M, an opened
    ``/**`` or ``// Name`` alone mostly gets code back, while "Returns" gets a sentence."""
    if plan.language == "python" or not plan.returns:
        return ""
    return "returns" if plan.language == "go" else "Returns"


async def run_model(
    engine: Engine,
    executor,
    request: GenerationRequest,
    cancel: threading.Event,
    timeout_s: float,
) -> str | None:
    """Generate in the engine executor (never on the event loop); None on failure or timeout."""
    loop = asyncio.get_running_loop()
    timer = loop.call_later(timeout_s, cancel.set)
    try:
        result = await loop.run_in_executor(executor, engine.generate, request, cancel)
    except asyncio.CancelledError:
        cancel.set()
        raise
    except Exception as exc:  # noqa: BLE001 - the model failing degrades to the template
        log.warning("generation failed: %s", exc)
        return None
    finally:
        timer.cancel()
    if result.finish_reason == "cancelled":
        return None
    return result.text


@dataclass
class GenerationSettings:
    """How generation is run for code actions (from the server's config and engine state)."""

    engine: Engine | None
    executor: object = None
    timeout_s: float = 10.0
    max_prompt_tokens: int | None = None
    summary_tokens: int = 40
    sections_tokens: int = 96


def _stop_at_line_end(text: str) -> bool:
    return "\n" in text.lstrip("\n ")


async def fill_from_model(doc: Document, info: DefinitionInfo, plan: DocPlan,
                          settings: GenerationSettings, cancel: threading.Event) -> DocFill:
    """Descriptions from the model: the summary, then (one more call) parameter/return text."""
    fill = DocFill()
    if settings.engine is None:
        return fill
    prompt, static = docstring_prompt(doc, info)
    summary = None
    # A second try with a seeded verb when the open prompt got code back (and there is a result).
    retry = None
    if plan.language == "python":
        retry = "Return" if plan.returns else ("A" if plan.kind == "class" else None)
    for seed in dict.fromkeys((summary_seed(plan), retry)):
        if seed is None or cancel.is_set():
            continue
        request = GenerationRequest(
            prompt=f"{prompt}{seed}" if plan.language == "python" and seed else (
                f"{prompt} {seed}" if seed else prompt),
            max_new_tokens=settings.summary_tokens, stop=('"""', "*/", "\n\n"),
            should_stop=_stop_at_line_end, static_prefix_chars=static,
            max_prompt_tokens=settings.max_prompt_tokens,
        )
        raw = await run_model(settings.engine, settings.executor, request, cancel, settings.timeout_s)
        if seed and raw is not None:
            raw = f"{seed}{raw}" if plan.language == "python" else f" {seed}{raw}"
        summary = summary_from_model(raw or "", plan)
        if summary is not None and copied_from(summary, prompt[:static]):
            summary = None  # small models copy the module docstring or a neighbour's
        if summary is not None:
            break
        log.info("docstring: model summary rejected: %r", (raw or "")[:120])
    if summary is not None:
        fill.summary, fill.from_model = summary, True
    indent = info.body_indent if doc.language == "python" else info.indent
    # Without a usable summary the sections can still be described: the prompt then carries a
    # neutral one made from the name (the docstring itself keeps its TODO summary).
    prompt_summary = summary or f"{humanize(plan.name).capitalize()}."
    follow = sections_prompt(prompt, plan, prompt_summary, indent)
    if follow is None or cancel.is_set():
        return fill
    request = GenerationRequest(
        prompt=follow, max_new_tokens=settings.sections_tokens, stop=('"""', "*/"),
        static_prefix_chars=static, max_prompt_tokens=settings.max_prompt_tokens,
    )
    raw = await run_model(settings.engine, settings.executor, request, cancel, settings.timeout_s)
    harvested = harvest_sections(raw or "", plan)
    fill.params, fill.returns, fill.raises = harvested.params, harvested.returns, harvested.raises
    fill.from_model = fill.from_model or bool(fill.params or fill.returns or fill.raises)
    return fill


# -- the whole pipeline ------------------------------------------------------------------------


@dataclass
class DocstringEdit:
    """A ready docstring edit for one definition."""

    insertion: Insertion
    target: DefinitionInfo
    from_model: bool
    message: str = ""


def build_docstring_edit(doc: Document, info: DefinitionInfo, fill: DocFill,
                         plan: DocPlan | None = None) -> DocstringEdit | None:
    """Render, insert and re-parse: the edit, or None when even the template would break the file.

    A model-filled docstring that breaks parsing falls back to the TODO template.
    """
    plan = plan or plan_docstring(doc, info)
    errors_before = tree_error_count(doc.tree) if doc.tree is not None else 0
    for attempt in (fill, DocFill()):
        insertion = docstring_insertion(doc, info, plan, attempt)
        if insertion is None:
            return None
        if errors_after(doc, insertion) <= errors_before:
            return DocstringEdit(insertion, info, attempt.from_model)
        log.warning("docstring for %s would not parse; %s", info.name,
                    "using the template" if attempt is fill else "giving up")
    return None


async def generate_docstring(doc: Document, offset: int, settings: GenerationSettings,
                             cancel: threading.Event | None = None) -> DocstringEdit | str:
    """The docstring edit for the definition at ``offset``, or a message saying why there is none."""
    info = docstring_target(doc, offset)
    if info is None:
        return "no function, method or class at the cursor"
    if info.has_docstring:
        return f"{info.name} already has a docstring"
    plan = plan_docstring(doc, info)
    cancel = cancel or threading.Event()
    text_before = doc.text
    fill = await fill_from_model(doc, info, plan, settings, cancel)
    if doc.text != text_before:  # edited while the model ran: describe the current text again
        info = docstring_target(doc, offset)
        if info is None or info.has_docstring:
            return "the document changed; try again"
        plan = plan_docstring(doc, info)
    edit = build_docstring_edit(doc, info, fill, plan)
    if edit is None:
        return f"cannot insert a docstring into {info.name} without breaking the file"
    return edit


