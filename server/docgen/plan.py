"""What to document and how: the definition under the cursor, its parameters, returns, raises,
the project's docstring style and line length (`DocPlan`).
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tree_sitter
from repolsp.server.context.document import Document, uri_to_path
from repolsp.server.context.languages import spec_for
from repolsp.server.context.symbols import (
    DefinitionInfo,
    definition_kind,
    describe_definition,
    enclosing_definitions,
)

DOCUMENTABLE_KINDS = frozenset({"function", "method", "class", "struct", "interface", "enum", "type", "trait"})




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
