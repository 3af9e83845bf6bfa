"""The model's own test body for Python: cut, checked for names and literal kinds, or dropped."""

from __future__ import annotations

import builtins
import logging
import re

import tree_sitter
from repolsp.server.context.document import Document
from repolsp.server.context.languages import parser_for
from repolsp.server.context.symbols import (
    DefinitionInfo,
)
from repolsp.server.testgen.edits import GeneratedTest
from repolsp.server.testgen.skeleton import constructor_call, python_skeleton
from repolsp.server.testgen.targets import _owner_name, _returns_value

log = logging.getLogger(__name__)


MAX_BODY_LINES = 20


_BUILTINS = frozenset(dir(builtins)) | {"pytest", "self"}


def body_seed(doc: Document, info: DefinitionInfo) -> str:
    """The first words of the test body given to the model: an assert calling the function, so a
    small model writes ``assert f(args) == value`` lines instead of free-form code. Empty when
    there is no value to assert on (or no simple way to make the object)."""
    owner = _owner_name(info)
    decorators = " ".join(info.decorators)
    if info.is_async or info.has_yield or not _returns_value(info):
        return ""
    if owner is None:
        return f"assert {info.name}("
    if "staticmethod" in decorators or "classmethod" in decorators:
        return f"assert {owner}.{info.name}("
    constructor, complete = constructor_call(doc, owner)
    if not complete:
        return ""
    variable = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", owner).lower()
    access = f"{variable}.{info.name}" + ("" if "property" in decorators else "(")
    return f"{variable} = {constructor}\n    assert {access}"


_PYTEST_HELPERS = frozenset({"raises", "approx", "mark", "param", "skip", "warns", "fail", "importorskip"})


def _python_names(node: tree_sitter.Node, source: bytes) -> tuple[set[str], set[str]]:
    """(assigned, used) plain identifiers in a Python subtree (attributes/keywords excluded)."""
    assigned: set[str] = set()
    used: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "identifier":
            parent = current.parent
            name = source[current.start_byte:current.end_byte].decode("utf-8", "replace")
            if parent is not None and parent.type == "attribute" and parent.child_by_field_name("attribute") == current:
                continue
            if parent is not None and parent.type == "keyword_argument" and parent.child_by_field_name("name") == current:
                continue
            if _is_binding(current):
                assigned.add(name)
            else:
                used.add(name)
        stack.extend(current.children)
    return assigned, used


def _is_binding(node: tree_sitter.Node) -> bool:
    child, parent = node, node.parent
    while parent is not None and parent.type in ("pattern_list", "tuple_pattern", "list_pattern",
                                                 "expression_list", "tuple", "list"):
        child, parent = parent, parent.parent
    if parent is None:
        return False
    if parent.type in ("assignment", "augmented_assignment", "for_statement", "for_in_clause"):
        return parent.child_by_field_name("left") == child
    if parent.type in ("as_pattern_target", "named_expression"):
        return parent.child_by_field_name("name") == child or parent.type == "as_pattern_target"
    return parent.type in ("lambda_parameters", "parameters", "global_statement")


_LITERAL_KINDS = {
    "string": "str", "concatenated_string": "str", "integer": "number", "float": "number",
    "unary_operator": "number", "true": "bool", "false": "bool", "none": "none", "list": "list",
    "dictionary": "dict", "set": "set", "tuple": "tuple",
}


_ANNOTATION_KINDS = {
    "str": {"str"}, "int": {"number"}, "float": {"number"}, "complex": {"number"}, "bool": {"bool"},
    "list": {"list"}, "List": {"list"}, "tuple": {"tuple"}, "Tuple": {"tuple"}, "dict": {"dict"},
    "Dict": {"dict"}, "set": {"set"}, "Set": {"set"}, "frozenset": {"set"}, "None": {"none"},
    "bytes": {"bytes"},
}


def expected_literal_kinds(return_type: str | None, name: str) -> frozenset[str] | None:
    """Literal kinds an ``assert f(...) == <literal>`` may compare with, from the return
    annotation (``Optional``/``| None`` allow None) or an ``is_``/``has_`` name; None: any."""
    annotation = (return_type or "").strip().strip("'\"")
    if not annotation:
        return frozenset({"bool"}) if re.match(r"(is|has|can|should|contains|exists)_", name) else None
    kinds: set[str] = set()
    optional = re.fullmatch(r"(?:typing\.)?Optional\[(.*)\]", annotation)
    parts = [optional.group(1), "None"] if optional else [p.strip() for p in annotation.split("|")]
    for part in parts:
        head = re.split(r"[\[.]", part.strip().removeprefix("typing."), maxsplit=1)[0]
        if head in _ANNOTATION_KINDS:
            kinds |= _ANNOTATION_KINDS[head]
        elif re.fullmatch(r"[A-Z][a-z]\w*", head) and head not in ("Any", "Self", "Optional", "Union"):
            continue  # an instance of a class: equal to no literal (bar a custom __eq__)
        else:
            return None  # a TypeVar, Any, a protocol...: any literal might be right
    return frozenset(kinds)


_ANY_KIND = frozenset(set(_LITERAL_KINDS.values()) | {"bytes"})


def _mismatched_assert_rows(body: tree_sitter.Node, kinds: frozenset[str] | None) -> set[int]:
    """Rows of ``assert <call> == <literal>`` statements whose literal cannot be the result
    (``kinds`` None: any kind) or is degenerate (a run of one character, very long)."""
    kinds = _ANY_KIND if kinds is None else kinds
    rows: set[int] = set()
    for statement in body.named_children:
        if statement.type != "assert_statement" or not statement.named_children:
            continue
        test = statement.named_children[0]
        if test.type != "comparison_operator" or len(test.named_children) != 2:
            continue
        if not any(child.type == "==" for child in test.children):
            continue
        left, right = test.named_children
        kind = _LITERAL_KINDS.get(right.type)
        literal = right.text.decode("utf-8", "replace") if right.text is not None else ""
        degenerate = bool(re.search(r"(.)\1{11}", literal)) or len(literal) > 80
        if left.type in ("call", "attribute") and kind is not None and (kind not in kinds or degenerate):
            rows.update(range(statement.start_point[0], statement.end_point[0] + 1))
    return rows


def drop_repeated_checks(lines: list[str], check_pattern: str) -> list[str]:
    """Drop repeated lines and later checks of an already checked expression (small models loop,
    and ``f(1) == 0`` followed by ``f(1) == 1`` cannot both hold: the first one is kept).
    ``check_pattern``'s group 1 is the checked expression of a one-line check."""
    seen_lines: set[str] = set()
    seen_checks: set[str] = set()
    kept: list[str] = []
    for line in lines:
        key = line.strip()
        check = re.match(check_pattern, line)
        if key and key in seen_lines or check and check.group(1).strip() in seen_checks:
            continue
        seen_lines.add(key)
        if check:
            seen_checks.add(check.group(1).strip())
        kept.append(line)
    return kept


def clean_python_test_body(raw: str, test_name: str, call_names: set[str], known: set[str],
                           result_kinds: frozenset[str] | None = None) -> str | None:
    """A test function from the model's continuation of ``def <test_name>():``, or None.

    Repeated assert lines are dropped (small models loop), and so are asserts that compare the
    call with a literal of the wrong kind for ``result_kinds`` (``== "x"`` for a function
    returning bool, see `expected_literal_kinds`). The rest is kept only if it parses,
    calls one of ``call_names``, asserts (``assert`` or ``pytest.raises``) and uses no name that
    is not a builtin, imported (``known``) or assigned in the body.
    """
    lines: list[str] = []
    for line in raw.replace("\r\n", "\n").split("\n")[1:] if raw.startswith("\n") else raw.split("\n"):
        if line.strip() and not line[:1].isspace():
            break  # back at column 0: the model moved on to the next definition
        lines.append(line.rstrip())
    lines = drop_repeated_checks(lines, r"^\s*assert\s+(.+?)\s*==")
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    lines = lines[:MAX_BODY_LINES]
    parser = parser_for("python")
    while lines:
        text = f"def {test_name}():\n" + "\n".join(lines)
        tree = parser.parse(text.encode("utf-8"))
        if not tree.root_node.has_error:
            break
        lines.pop()  # the model stopped mid-statement: drop the unfinished line
    if not lines:
        return None
    function = tree.root_node.named_children[0] if tree.root_node.named_children else None
    if function is None or function.type != "function_definition":
        return None
    body = function.child_by_field_name("body")
    # Literals of the wrong kind for the result, and degenerate ones (`== 1000000...`).
    rows = _mismatched_assert_rows(body, result_kinds)
    if rows:  # rows count from the `def` line: body line i is row i + 1
        lines = [line for i, line in enumerate(lines) if i + 1 not in rows]
        text = f"def {test_name}():\n" + "\n".join(lines)
        tree = parser.parse(text.encode("utf-8"))
        if not lines or tree.root_node.has_error:
            return None
        function = tree.root_node.named_children[0]
        body = function.child_by_field_name("body")
    data = text.encode("utf-8")
    body_text = data[body.start_byte:body.end_byte].decode("utf-8")
    if not re.search(r"\bassert\b|pytest\.raises", body_text):
        return None
    if not any(re.search(rf"\b{re.escape(name)}\s*\(|\.{re.escape(name)}\b", body_text) for name in call_names):
        return None
    if len({ln.strip() for ln in lines if ln.strip()}) < len([ln for ln in lines if ln.strip()]) // 2:
        return None  # mostly repeated lines
    helpers = set(re.findall(r"\bpytest\.(\w+)", body_text))
    if helpers - _PYTEST_HELPERS:
        return None  # `pytest.argparse...`: an invented API
    for expected in re.findall(r"pytest\.raises\(\s*([^,)]*)", body_text):
        if not re.fullmatch(r"\(?[\w.]*(Error|Exception|Exit|Warning|Interrupt)\w*(,\s*[\w.]+)*\)?", expected.strip()):
            return None  # pytest.raises needs an exception type
    for left, right in re.findall(r"^\s*assert\s+(.+?)\s*==\s*(.+?)\s*$", body_text, flags=re.MULTILINE):
        if left == right:
            return None  # `assert f(x) == f(x)` checks nothing
    assigned, used = _python_names(body, data)
    unknown = used - assigned - _BUILTINS - known
    if unknown:
        log.info("generated test uses unknown names %s; using the skeleton", sorted(unknown))
        return None
    return text


def python_test_code(doc: Document, info: DefinitionInfo, module: str, test_name: str,
                     raw: str | None) -> GeneratedTest:
    """The test function: the model's body when it is valid, else the skeleton."""
    owner = _owner_name(info)
    imported = owner or info.name
    if raw is not None:
        call_names = {info.name}
        seed = body_seed(doc, info)
        raw = f"\n    {seed}{raw}" if seed else raw
        kinds = expected_literal_kinds(info.return_type, info.name)
        body = clean_python_test_body(raw, test_name, call_names, {imported}, kinds)
        if body is not None:
            imports = ["import pytest"] if "pytest." in body else []
            # A small model's expected values are guesses: say so where the user reads them.
            head, _, rest = body.partition("\n")
            body = f"{head}\n    # TODO: check the expected values (generated).\n{rest}"
            return GeneratedTest(test_name, body, imports, from_model=True)
    return python_skeleton(doc, info, test_name)


def _stop_after_body(text: str) -> bool:
    """Stop at a line at column 0 (the next definition), a repeated line (the model loops) or
    after a handful of lines: a first test should be short."""
    if re.search(r"\n\S", text.lstrip("\n")) or "\n\n\n" in text:
        return True
    complete = [line.strip() for line in text.split("\n")[:-1] if line.strip()]
    return len(complete) != len(set(complete)) or len(complete) >= 8
