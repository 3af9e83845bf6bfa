"""Test generation: target -> test file location -> prompt -> model -> clean body -> append edit.

The test goes where the project's conventions put it (Python: an existing ``test_<module>.py``,
else the project's tests folder, else ``tests/test_<module>.py``; Go: ``<file>_test.go``; JS/TS:
``<name>.test.<ext>`` beside the file; Rust: a ``#[cfg(test)] mod tests`` in the same file; Java:
``src/test/java/.../<Class>Test.java``). Existing content is never replaced: new code is inserted
at the end (or, for imports, after the existing imports; for Rust/Java, before the closing brace of
the test module/class). The model writes the test body left to right after an opened test
function; only a body that parses, calls the function, asserts, and uses no unknown names is kept,
else a skeleton with TODOs is used. The resulting file is re-parsed before the edit is returned.

Offsets are Python ``str`` offsets.
"""

from __future__ import annotations

import builtins
import logging
import os
import re
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tree_sitter
from repolsp.server.context.document import Document, uri_to_path
from repolsp.server.context.languages import parser_for
from repolsp.server.context.symbols import (
    DefinitionInfo,
    describe_definition,
    enclosing_definitions,
)
from repolsp.server.docgen import (
    GenerationSettings,
    Insertion,
    apply_insertions,
    newline_of,
    run_model,
    syntax_error_count,
)
from repolsp.server.engine.base import GenerationRequest

log = logging.getLogger(__name__)

TEST_LANGUAGES = frozenset({"python", "go", "javascript", "typescript", "tsx", "rust", "java"})
_SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", "env", ".tox", ".nox",
    "build", "dist", "site-packages", ".mypy_cache", ".pytest_cache", ".ruff_cache", "target",
})
MAX_WALK_FILES = 20_000
MAX_BODY_LINES = 20
_BUILTINS = frozenset(dir(builtins)) | {"pytest", "self"}


# -- what to test ------------------------------------------------------------------------------


def target_for_tests(doc: Document, offset: int) -> DefinitionInfo | None:
    """The function or method at ``offset`` that a test can call from outside: not nested in
    another function, named, not itself a test; None otherwise."""
    if doc.language not in TEST_LANGUAGES or doc.tree is None:
        return None
    nodes = enclosing_definitions(doc, offset)
    infos = [describe_definition(doc, node) for node in nodes]
    callables = [i for i in infos if i.is_callable]
    if not callables:
        return None
    outer = callables[0]  # a function nested in a function is not reachable from a test
    name = outer.name
    if not name or name.startswith(("test_", "Test")) or (name.startswith("__") and name.endswith("__")):
        return None  # already a test, or a dunder method that tests reach through the class
    if doc.language == "rust" and outer.node is not None and outer.node.type == "function_signature_item":
        return None
    return outer


def _owner_name(info: DefinitionInfo) -> str | None:
    """The class (or Go receiver / Rust impl type) a method belongs to."""
    if info.kind != "method" or "." not in info.qualified_name:
        return None
    return info.qualified_name.rsplit(".", 1)[0].split(".")[0]


# -- where the test goes -----------------------------------------------------------------------


def _walk_files(root: Path, limit: int = MAX_WALK_FILES):
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in filenames:
            seen += 1
            if seen > limit:
                return
            yield Path(dirpath) / name


def _package_dir_mapping(root: Path) -> dict[str, str]:
    """setuptools ``package-dir`` of the project's pyproject.toml: package -> folder."""
    try:
        data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    mapping = data.get("tool", {}).get("setuptools", {}).get("package-dir", {})
    return {str(k): str(v) for k, v in mapping.items()} if isinstance(mapping, dict) else {}


def python_module_path(file_path: Path, root: Path) -> str:
    """The dotted module path that imports ``file_path``: from the top package (the highest
    folder chain with ``__init__.py``), through a src/ layout, or through pyproject's
    ``package-dir`` mapping; a loose file imports by its own name."""
    file_path = Path(file_path)
    parts = [] if file_path.stem == "__init__" else [file_path.stem]
    folder = file_path.parent
    for package, mapped in sorted(_package_dir_mapping(root).items(), key=lambda kv: -len(kv[1])):
        base = (root / mapped).resolve()
        try:
            rel = file_path.resolve().parent.relative_to(base)
        except ValueError:
            continue
        prefix = [p for p in package.split(".") if p]
        return ".".join([*prefix, *rel.parts, *parts])
    while (folder / "__init__.py").is_file() and folder != folder.parent:
        parts.insert(0, folder.name)
        if folder == root:
            break
        folder = folder.parent
    return ".".join(parts) if parts else file_path.stem


def find_existing_test_file(root: Path, names: list[str], prefer_parts: list[str]) -> Path | None:
    """An existing test file with one of ``names`` under ``root``, preferring one inside a tests
    folder whose path shares the most ``prefer_parts`` (the module's package path)."""
    wanted = set(names)
    found = [p for p in _walk_files(root) if p.name in wanted]
    if not found:
        return None

    def score(path: Path) -> tuple:
        rel = path.relative_to(root).parts
        in_tests = any(part in ("tests", "test", "testing") for part in rel[:-1])
        shared = len(set(rel[:-1]) & set(prefer_parts))
        return (in_tests, shared, -len(rel))

    return max(found, key=score)


def _tests_folder(file_path: Path, root: Path) -> Path:
    """The tests folder nearest to the file (walking up to the root), or root/tests."""
    folder = file_path.parent
    while True:
        for name in ("tests", "test"):
            candidate = folder / name
            if candidate.is_dir():
                return _busiest_test_folder(candidate)
        if folder == root or folder == folder.parent or root not in folder.parents:
            break
        folder = folder.parent
    return root / "tests"


def _busiest_test_folder(tests: Path) -> Path:
    """``tests`` itself if it holds test files, else its subfolder (``unit``...) that holds most."""
    direct = list(tests.glob("test_*.py"))
    if direct:
        return tests
    best, best_count = tests, 0
    for sub in sorted(p for p in tests.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        count = len(list(sub.glob("test_*.py")))
        if count > best_count or (count == best_count and count and sub.name == "unit"):
            best, best_count = sub, count
    return best


def python_test_path(file_path: Path, root: Path, module: str) -> Path:
    """Where a Python test for ``module`` goes: an existing test_<module>.py, else a new one in
    the project's tests folder."""
    stem = module.rsplit(".", 1)[-1]
    existing = find_existing_test_file(root, [f"test_{stem}.py", f"{stem}_test.py"], module.split("."))
    if existing is not None:
        return existing
    return _tests_folder(file_path, root) / f"test_{stem}.py"


def conventional_test_path(doc_path: Path, root: Path, language: str, doc: Document | None = None) -> Path:
    """The conventional test file for a source file of ``language``."""
    if language == "python":
        return python_test_path(doc_path, root, python_module_path(doc_path, root))
    if language == "go":
        return doc_path.with_name(doc_path.stem + "_test.go")
    if language in ("javascript", "typescript", "tsx"):
        return doc_path.with_name(f"{doc_path.stem}.test{doc_path.suffix}")
    if language == "rust":
        return doc_path
    if language == "java":
        parts = list(doc_path.parts)
        for i in range(len(parts) - 2):
            if parts[i:i + 3] == ["src", "main", "java"]:
                parts[i + 1] = "test"
                return Path(*parts).with_name(doc_path.stem + "Test.java")
        return doc_path.with_name(doc_path.stem + "Test.java")
    raise ValueError(f"no test convention for {language}")


# -- test code ---------------------------------------------------------------------------------


@dataclass
class GeneratedTest:
    """A test to add: its function text and what it needs at the top of the file."""

    name: str
    function: str  # the test function/method, "\n" line endings, no trailing newline
    imports: list[str] = field(default_factory=list)  # import lines it needs
    from_model: bool = False


def _python_call(doc: Document, info: DefinitionInfo) -> tuple[list[str], str, list[str]]:
    """(setup lines, call expression, extra imports) for a skeleton call of ``info``: one
    placeholder per required parameter, keyword-only ones passed by name."""
    setup: list[str] = []
    args: list[str] = []
    keyword_only = False
    wanted = set(info.parameters)
    params_node = info.node.child_by_field_name("parameters") if info.node is not None else None
    for child in params_node.named_children if params_node is not None else []:
        if child.type in ("keyword_separator", "list_splat_pattern") or (
                child.type == "typed_parameter" and child.named_children
                and child.named_children[0].type == "list_splat_pattern"):
            keyword_only = True
            continue
        if child.type not in ("identifier", "typed_parameter"):
            continue  # defaults, **kwargs, `/`: not needed for a call
        name_node = child if child.type == "identifier" else child.named_children[0]
        if name_node.type != "identifier":
            continue
        name = doc.node_text(name_node)
        if name not in wanted:
            continue  # self / cls
        type_node = child.child_by_field_name("type")
        kind = doc.node_text(type_node) if type_node is not None else "value"
        setup.append(f"{name} = None  # TODO: a real {kind}")
        args.append(f"{name}={name}" if keyword_only else name)
    owner = _owner_name(info)
    callee = info.name
    decorators = " ".join(info.decorators)
    if owner:
        if "staticmethod" in decorators or "classmethod" in decorators:
            callee = f"{owner}.{info.name}"
        else:
            constructor, complete = constructor_call(doc, owner)
            note = "" if complete else "  # TODO: constructor arguments"
            setup.append(f"instance = {constructor}{note}")
            callee = f"instance.{info.name}"
    call = callee if "property" in decorators else f"{callee}({', '.join(args)})"
    imports: list[str] = []
    if info.is_async:
        call = f"asyncio.run({call})"
        imports.append("import asyncio")
    if info.has_yield:
        call = f"list({call})"
    return setup, call, imports


def python_skeleton(doc: Document, info: DefinitionInfo, test_name: str) -> GeneratedTest:
    """A pytest test that calls the function and asserts on the result, with TODOs."""
    setup, call, imports = _python_call(doc, info)
    lines = ["    # TODO: replace the placeholder arguments and the expected value."]
    lines += [f"    {line}" for line in setup]
    if info.has_return_value or info.has_yield or (info.return_type and info.return_type != "None"):
        lines += ["    expected = None  # TODO", f"    result = {call}", "    assert result == expected"]
    else:
        lines += [f"    result = {call}", "    assert result is None  # TODO: check the effect instead"]
    text = f"def {test_name}():\n" + "\n".join(lines)
    return GeneratedTest(test_name, text, imports)


def python_raises_test(doc: Document, info: DefinitionInfo, module: str, existing: str) -> GeneratedTest | None:
    """A second, skeleton test that the function raises its first raised exception (a builtin
    one, or a class of the same module, which is then imported); None when it raises nothing."""
    from repolsp.server.docgen import raised_names

    for name in raised_names(doc, info.node) if info.node is not None else []:
        builtin = getattr(builtins, name, None)
        if isinstance(builtin, type) and issubclass(builtin, BaseException):
            imports = ["import pytest"]
        elif "." not in name and _top_level_class(doc, name) is not None:
            imports = ["import pytest", f"from {module} import {name}"]
        else:
            continue
        snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
        test_name = _unique_test_name(existing, f"test_{info.name}_raises_{snake}")
        setup, call, _ = _python_call(doc, info)
        lines = [f"    # TODO: arguments that make {info.name} raise {name}."]
        lines += [f"    {line}" for line in setup]
        lines += [f"    with pytest.raises({name}):", f"        {call}"]
        return GeneratedTest(test_name, f"def {test_name}():\n" + "\n".join(lines), imports)
    return None


def _python_target_imports(info: DefinitionInfo, module: str) -> list[str]:
    return [f"from {module} import {_owner_name(info) or info.name}"]


def constructor_call(doc: Document, owner: str) -> tuple[str, bool]:
    """(``Owner(...)`` expression, complete): required ``__init__`` parameters (or dataclass
    fields without defaults) become ``name=None`` placeholders; complete when there are none."""
    node = _top_level_class(doc, owner)
    if node is None:
        return f"{owner}()", False
    body = node.child_by_field_name("body")
    required: list[str] = []
    init = None
    for child in body.named_children if body is not None else []:
        target = child.child_by_field_name("definition") if child.type == "decorated_definition" else child
        if target is not None and target.type == "function_definition" and \
                doc.node_text(target.child_by_field_name("name")) == "__init__":
            init = target
    if init is not None:
        params = init.child_by_field_name("parameters")
        for param in params.named_children[1:] if params is not None else []:
            if param.type == "identifier":
                required.append(doc.node_text(param))
            elif param.type == "typed_parameter" and param.named_children[0].type == "identifier":
                required.append(doc.node_text(param.named_children[0]))
    elif node.parent is not None and node.parent.type == "decorated_definition" and \
            any("dataclass" in doc.node_text(d) for d in node.parent.named_children if d.type == "decorator"):
        for child in body.named_children if body is not None else []:
            assignment = child.named_children[0] if child.type == "expression_statement" and child.named_children else None
            if assignment is not None and assignment.type == "assignment" and \
                    assignment.child_by_field_name("right") is None and \
                    assignment.child_by_field_name("type") is not None:
                left = assignment.child_by_field_name("left")
                if left is not None and left.type == "identifier":
                    required.append(doc.node_text(left))
    args = ", ".join(f"{name}=None" for name in required)
    return f"{owner}({args})", not required


def _top_level_class(doc: Document, name: str) -> tree_sitter.Node | None:
    for child in doc.tree.root_node.named_children if doc.tree is not None else []:
        target = child.child_by_field_name("definition") if child.type == "decorated_definition" else child
        if target is not None and target.type == "class_definition" and \
                doc.node_text(target.child_by_field_name("name")) == name:
            return target
    return None


def _returns_value(info: DefinitionInfo) -> bool:
    annotation = (info.return_type or "").strip()
    return info.has_return_value if not annotation else annotation not in ("None", "NoReturn")


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


def python_test_prompt(doc: Document, info: DefinitionInfo, test_name: str) -> str:
    """Left-to-right prompt: the source file's imports and the function (its class header for a
    method), then the opened test function right below it, as if tests lived in the same file,
    ending with the seed (``assert f(``)."""
    text = doc.text.replace("\r\n", "\n")
    start = doc.text.rfind("\n", 0, info.start) + 1
    source = doc.text[start:info.end].replace("\r\n", "\n")
    owner = _owner_name(info)
    if owner:
        class_line = re.search(rf"^class {re.escape(owner)}\b.*$", text, flags=re.MULTILINE)
        source = (class_line.group(0) + "\n" if class_line else "") + source
    imports = "\n".join(line for line in text.splitlines()[:60] if line.startswith(("import ", "from ")))
    imports = imports + "\n\n\n" if imports else ""
    source = textwrap_dedent_keep(source[:3000])
    seed = body_seed(doc, info)
    opened = f"def {test_name}():\n    {seed}" if seed else f"def {test_name}():"
    return f"{imports}{source.rstrip()}\n\n\n{opened}"


def textwrap_dedent_keep(source: str) -> str:
    """The source unchanged unless every line is indented (a method without its class)."""
    import textwrap

    return source if source[:1] not in (" ", "\t") or source.lstrip().startswith("class ") else textwrap.dedent(source)


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


# -- putting it into the test file -------------------------------------------------------------


def _unique_test_name(existing: str, base: str) -> str:
    name, n = base, 2
    while re.search(rf"\b(def|fn|func|void)\s+{re.escape(name)}\s*\(|\btest\(\s*['\"]{re.escape(name)}['\"]", existing):
        name, n = f"{base}_{n}" if not base[:1].isupper() and "_" in base else f"{base}{n}", n + 1
    return name


def _python_import_insertions(existing: str, imports: list[str], newline: str) -> list[Insertion]:
    """Insert missing imports into the file's top import block: ``import x`` lines before its
    first import, ``from x import y`` lines after its last (after the docstring if none)."""
    missing = [line for line in imports if not _has_import(existing, line)]
    if not missing:
        return []
    data = existing.encode("utf-8", "surrogatepass")
    tree = parser_for("python").parse(data)
    first = last = docstring = None
    for child in tree.root_node.named_children:
        if child.type in ("import_statement", "import_from_statement"):
            first, last = first or child, child
        elif child.type == "future_import_statement":
            last = child  # nothing may precede `from __future__` but the docstring
        elif first is None and last is None and docstring is None and child.type == "expression_statement" \
                and child.named_children and child.named_children[0].type == "string":
            docstring = child
        elif child.type != "comment":
            break

    def offset(byte: int) -> int:
        return len(data[:byte].decode("utf-8", "surrogatepass"))

    if last is None:
        block = newline.join(missing)
        if docstring is None:
            return [Insertion(0, 0, block + newline + (newline if existing.strip() else ""))]
        end = offset(docstring.end_byte)
        return [Insertion(end, end, newline + newline + block)]
    plain = [line for line in missing if line.startswith("import ")]
    from_lines = [line for line in missing if not line.startswith("import ")]
    insertions = []
    if plain and first is not None:
        start = offset(first.start_byte)
        insertions.append(Insertion(start, start, newline.join(plain) + newline))
    else:
        from_lines = plain + from_lines
    if from_lines:
        end = offset(last.end_byte)
        insertions.append(Insertion(end, end, newline + newline.join(from_lines)))
    return insertions


def _has_import(existing: str, line: str) -> bool:
    match = re.match(r"from (\S+) import (\w+)", line)
    if match:
        module, name = match.groups()
        pattern = rf"^from {re.escape(module)} import [^\n]*\b{re.escape(name)}\b"
        return re.search(pattern, existing, flags=re.MULTILINE) is not None or \
            re.search(rf"^from {re.escape(module)} import \(([^)]*)\b{re.escape(name)}\b", existing,
                      flags=re.MULTILINE | re.DOTALL) is not None
    return re.search(rf"^{re.escape(line)}\s*$", existing, flags=re.MULTILINE) is not None


def append_insertion(existing: str, block: str, newline: str, blank_lines: int = 2) -> Insertion:
    """Insert ``block`` at the end of ``existing`` with ``blank_lines`` blank lines before it."""
    trailing = len(existing) - len(existing.rstrip("\r\n"))
    have = existing[len(existing) - trailing:].count("\n") if trailing else 0
    need = 0 if not existing.strip() else max(0, blank_lines + 1 - have)
    return Insertion(len(existing), len(existing), newline * need + block.replace("\n", newline) + newline)


@dataclass
class AddTestEdit:
    """Where a test goes and the edits that put it there."""

    path: Path
    create: bool  # the file does not exist yet
    insertions: list[Insertion]  # against ``existing`` (the empty string when created)
    existing: str
    test_name: str
    from_model: bool
    target: DefinitionInfo | None = None
    existing_version: int | None = None  # version of the open document ``existing`` was read from

    @property
    def new_text(self) -> str:
        """The test file's text after the edit."""
        return apply_insertions(self.existing, self.insertions)


def python_file_edit(existing: str | None, module: str, code: GeneratedTest, target_imports: list[str]) -> \
        tuple[bool, list[Insertion]]:
    """(create, insertions) that add ``code`` to a Python test file (``existing`` None: new)."""
    imports = [*code.imports, *target_imports]
    if existing is not None and not existing.strip():  # an empty file: write it like a new one
        _, (insertion,) = python_file_edit(None, module, code, target_imports)
        return False, [Insertion(len(existing), len(existing), insertion.new_text)]
    if existing is None:
        stdlib = sorted(line for line in imports if line.startswith("import "))
        names_by_module: dict[str, list[str]] = {}
        for line in imports:
            if line.startswith("from "):
                module_name, _, names = line[5:].partition(" import ")
                names_by_module.setdefault(module_name, []).extend(n.strip() for n in names.split(","))
        project = [f"from {m} import {', '.join(sorted(dict.fromkeys(n), key=str.lower))}"
                   for m, n in names_by_module.items()]
        head = f'"""Tests for {module}."""\n\n' + "\n".join(stdlib) + ("\n\n" if stdlib else "")
        text = head + "\n".join(project) + "\n\n\n" + code.function + "\n"
        return True, [Insertion(0, 0, text)]
    newline = newline_of(existing)
    insertions = _python_import_insertions(existing, imports, newline)
    insertions.append(append_insertion(existing, code.function, newline))
    return False, insertions


# -- other languages: skeletons ----------------------------------------------------------------


_GO_ZERO = {"string": '""', "bool": "false", "error": "nil"}


def _go_params(doc: Document, info: DefinitionInfo) -> list[tuple[str, str]]:
    params_node = info.node.child_by_field_name("parameters")
    found: list[tuple[str, str]] = []
    for child in params_node.named_children if params_node is not None else []:
        if child.type != "parameter_declaration":
            continue
        type_node = child.child_by_field_name("type")
        type_text = doc.node_text(type_node) if type_node is not None else "any"
        for name in child.children_by_field_name("name"):
            found.append((doc.node_text(name), type_text))
    return found


def _go_result_count(doc: Document, info: DefinitionInfo) -> tuple[int, bool]:
    result = info.node.child_by_field_name("result")
    if result is None:
        return 0, False
    if result.type == "parameter_list":
        kids = [c for c in result.named_children if c.type == "parameter_declaration"]
        count = sum(max(1, len(c.children_by_field_name("name"))) for c in kids)
        last = doc.node_text(kids[-1].child_by_field_name("type")) if kids else ""
        return count, last == "error"
    return 1, doc.node_text(result) == "error"


def go_skeleton(doc: Document, info: DefinitionInfo, test_name: str) -> GeneratedTest:
    """A Go test that calls the function with zero values; the check is a TODO."""
    lines = ["\t// TODO: replace the zero-value arguments and compare with the expected result."]
    args = []
    for name, type_text in _go_params(doc, info):
        if type_text.startswith("..."):
            continue
        lines.append(f"\tvar {name} {type_text}")
        args.append(name)
    callee = info.name
    owner = _owner_name(info)
    if owner:
        lines.append(f"\tvar receiver {owner}")
        callee = f"receiver.{info.name}"
    count, has_error = _go_result_count(doc, info)
    call = f"{callee}({', '.join(args)})"
    if count == 0:
        lines.append(f"\t{call}")
    else:
        names = [f"got{i}" if i else "got" for i in range(count)]
        if has_error:
            names[-1] = "err"
        lines.append(f"\t{', '.join(names)} := {call}")
        if has_error:
            lines += ["\tif err != nil {", '\t\tt.Fatalf("unexpected error: %v", err)', "\t}"]
        for name in names:
            if name != "err":
                lines.append(f'\tt.Logf("TODO: check {name} = %v", {name})')
    return GeneratedTest(test_name, f"func {test_name}(t *testing.T) {{\n" + "\n".join(lines) + "\n}",
                    ['import "testing"'])


def js_skeleton(doc: Document, info: DefinitionInfo, test_name: str) -> GeneratedTest:
    """A Jest/Vitest test that calls the function and checks the result (TODO values)."""
    typescript = doc.language in ("typescript", "tsx")
    placeholder = "undefined as any" if typescript else "undefined"
    args = ", ".join(placeholder for p in info.parameters if not p.startswith("..."))
    owner = _owner_name(info)
    lines = ["  // TODO: replace the placeholder arguments and the expected value."]
    callee = info.name
    if owner:
        static = info.header.lstrip().startswith("static ")
        if not static:
            lines.append(f"  const instance = new {owner}();")
            callee = f"instance.{info.name}"
        else:
            callee = f"{owner}.{info.name}"
    call = f"{'await ' if info.is_async else ''}{callee}({args})"
    lines += [f"  const result = {call};", "  expect(result).toEqual(undefined);"]
    arrow = "async () =>" if info.is_async else "() =>"
    return GeneratedTest(test_name, f"test('{test_name}', {arrow} {{\n" + "\n".join(lines) + "\n});")


_JS_GLOBALS = frozenset({
    "expect", "test", "it", "describe", "beforeEach", "afterEach", "jest", "vi", "undefined", "NaN",
    "Infinity", "Math", "JSON", "Array", "Object", "String", "Number", "Boolean", "Date", "Error",
    "TypeError", "RangeError", "Map", "Set", "Promise", "BigInt", "Symbol", "RegExp", "console",
})


def js_seed(info: DefinitionInfo) -> str:
    """First words of a JS/TS test body for the model (plain functions returning a value only)."""
    if _owner_name(info) or info.is_async or not info.has_return_value:
        return ""
    return f"expect({info.name}("


def js_test_prompt(doc: Document, info: DefinitionInfo, test_file: str, import_line: str, test_name: str) -> str:
    """The function's source, then the test file's import and the opened test with the seed."""
    start = doc.text.rfind("\n", 0, info.start) + 1
    source = doc.text[start:info.end].replace("\r\n", "\n")[:3000]
    return (f"{source.rstrip()}\n\n\n// {test_file}\n{import_line.rsplit(chr(10), 1)[-1]}\n\n"
            f"test('{test_name}', () => {{\n  {js_seed(info)}")


def clean_js_test_body(raw: str, info: DefinitionInfo, test_name: str, language: str) -> str | None:
    """A Jest test from the model's continuation of the seed, or None: it must parse, call the
    function with a plausible number of arguments inside ``expect(...)`` and use only known
    globals and its own variables."""
    body = js_seed(info) + raw.split("});")[0]
    lines = [line.rstrip() for line in body.split("\n")]
    lines = drop_repeated_checks([line for line in lines if line.strip()],
                                 r"^\s*expect\((.+)\)\.(?:not\.)?to\w*\(")[:MAX_BODY_LINES]
    parser = parser_for(language)
    while lines:
        text = (f"test('{test_name}', () => {{\n  // TODO: check the expected values (generated).\n  "
                + "\n".join(lines) + "\n});")
        tree = parser.parse(text.encode("utf-8"))
        if not tree.root_node.has_error:
            break
        lines.pop()
    if not lines:
        return None
    data = text.encode("utf-8")
    declared: set[str] = set()
    used: set[str] = set()
    calls_ok = False
    required = len([p for p in info.parameters if not p.startswith("...")])
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.type == "variable_declarator" and node.child_by_field_name("name") is not None:
            declared.add(data[node.child_by_field_name("name").start_byte:node.child_by_field_name("name").end_byte].decode())
        elif node.type == "identifier":
            used.add(data[node.start_byte:node.end_byte].decode())
        elif node.type == "call_expression":
            function = node.child_by_field_name("function")
            arguments = node.child_by_field_name("arguments")
            if function is not None and data[function.start_byte:function.end_byte].decode() == info.name:
                count = len(arguments.named_children) if arguments is not None else 0
                rest = any(p.startswith("...") for p in info.parameters)
                calls_ok = calls_ok or (1 <= count or required == 0) and (count <= required or rest)
    if not calls_ok or "expect(" not in text:
        return None
    if used - declared - _JS_GLOBALS - {info.name}:
        return None
    return text


def js_exports(text: str, name: str) -> bool:
    """True when a JS/TS module exports ``name`` (ES ``export`` or CommonJS ``exports``)."""
    word = re.escape(name)
    return bool(
        re.search(rf"export\s+(default\s+)?(async\s+)?(function\*?|class|const|let|var)\s+{word}\b", text)
        or re.search(rf"export\s*\{{[^}}]*\b{word}\b", text)
        or re.search(rf"module\.exports\s*=\s*{word}\b|module\.exports\s*=\s*\{{[^}}]*\b{word}\b", text)
        or re.search(rf"\bexports\.{word}\s*=", text)
    )


def _js_import_line(doc: Document, info: DefinitionInfo, module_spec: str) -> str:
    name = _owner_name(info) or info.name
    text = doc.text
    if not js_exports(text, name):
        # Importing an unexported name fails at run time: say what to do instead of guessing.
        note = f"// TODO: export {name} from {module_spec} so that this test can import it.\n"
    else:
        note = ""
    return note + _js_import_statement(text, name, module_spec)


def _js_import_statement(text: str, name: str, module_spec: str) -> str:
    commonjs = ("module.exports" in text or "exports." in text) and not re.search(r"^\s*export\b", text, re.MULTILINE)
    if commonjs:
        return f"const {{ {name} }} = require('{module_spec}');"
    if re.search(rf"export\s+default\s+(async\s+)?(function|class)\s+{re.escape(name)}\b", text):
        return f"import {name} from '{module_spec}';"
    return f"import {{ {name} }} from '{module_spec}';"


def _js_framework_import(source_path: Path, root: Path) -> str | None:
    """Vitest needs its functions imported; Jest provides globals."""
    folder = source_path.parent
    while True:
        package = folder / "package.json"
        if package.is_file():
            try:
                text = package.read_text(encoding="utf-8")
            except OSError:
                text = ""
            if '"vitest"' in text:
                return "import { describe, expect, test } from 'vitest';"
            return None
        if folder == root or folder == folder.parent:
            return None
        folder = folder.parent


def _rust_args(doc: Document, info: DefinitionInfo) -> tuple[str, bool]:
    params_node = info.node.child_by_field_name("parameters")
    has_self = False
    count = 0
    for child in params_node.named_children if params_node is not None else []:
        if child.type == "self_parameter":
            has_self = True
        elif child.type == "parameter":
            count += 1
    return ", ".join(["Default::default()"] * count), has_self


def rust_skeleton(doc: Document, info: DefinitionInfo, test_name: str) -> GeneratedTest:
    """A #[test] fn that calls the function with default values (TODO arguments and expectation)."""
    args, has_self = _rust_args(doc, info)
    owner = _owner_name(info)
    lines = ["    // TODO: replace the default arguments and the expected value."]
    if owner and has_self:
        lines.append(f"    let value = {owner}::default();")
        callee = f"value.{info.name}"
    elif owner:
        callee = f"{owner}::{info.name}"
    else:
        callee = info.name
    if info.return_type:
        lines += [f"    let result = {callee}({args});", "    assert_eq!(result, Default::default());"]
    else:
        lines.append(f"    {callee}({args});")
    return GeneratedTest(test_name, f"#[test]\nfn {test_name}() {{\n" + "\n".join(lines) + "\n}")


_JAVA_ZERO = {"int": "0", "long": "0L", "short": "(short) 0", "byte": "(byte) 0", "double": "0.0",
              "float": "0.0f", "boolean": "false", "char": "'\\0'"}


def java_skeleton(doc: Document, info: DefinitionInfo, test_name: str) -> GeneratedTest:
    """A JUnit 5 @Test method that calls the method (TODO arguments and expected value)."""
    params_node = info.node.child_by_field_name("parameters")
    args = []
    for child in params_node.named_children if params_node is not None else []:
        type_node = child.child_by_field_name("type")
        type_text = doc.node_text(type_node) if type_node is not None else "Object"
        args.append(_JAVA_ZERO.get(type_text, "null"))
    owner = _owner_name(info) or doc.path.rsplit("/", 1)[-1].removesuffix(".java")
    static = bool(re.search(r"\bstatic\b", info.header))
    lines = ["    // TODO: replace the placeholder arguments and the expected value."]
    if static:
        callee = f"{owner}.{info.name}"
    else:
        lines.append(f"    {owner} subject = new {owner}();")
        callee = f"subject.{info.name}"
    call = f"{callee}({', '.join(args)})"
    if info.return_type and info.return_type != "void":
        lines += [f"    {info.return_type} result = {call};",
                  f"    assertEquals({_JAVA_ZERO.get(info.return_type, 'null')}, result);"]
    else:
        lines += [f"    {call};", "    // TODO: assert on the effect."]
    return GeneratedTest(test_name, f"@Test\nvoid {test_name}() {{\n" + "\n".join(lines) + "\n}",
                    ["import static org.junit.jupiter.api.Assertions.assertEquals;",
                     "import org.junit.jupiter.api.Test;"])


def _indent_block(text: str, indent: str) -> str:
    return "\n".join(indent + line if line else "" for line in text.split("\n"))


@dataclass(frozen=True)
class Container:
    """A block that holds the tests: a Java test class, a Rust ``mod tests``."""

    opening: str  # how a new one starts (ends with "{\n")
    indent: str  # indentation of the tests inside it
    marker: str  # regex that finds an existing one, ending at its "{"


def _brace_import_insertions(language: str, existing: str, imports: list[str], newline: str) -> list[Insertion]:
    # An entry may carry a comment line above its import: the import line decides.
    missing = [line for line in imports if line.rsplit("\n", 1)[-1] not in existing and not (
        language == "go" and '"testing"' in existing)]
    if not missing:
        return []
    block = newline.join(missing) + newline
    anchor = re.search(r"^package\b[^\n]*\n", existing, flags=re.MULTILINE) if language in ("go", "java") else None
    if anchor is None:
        return [Insertion(0, 0, block)]
    return [Insertion(anchor.end(), anchor.end(), newline + block)]


def brace_file_edit(language: str, existing: str | None, code: GeneratedTest, header: str,
                    container: Container | None = None) -> tuple[bool, list[Insertion]]:
    """(create, insertions) for Go/JS/TS/Java/Rust test files.

    ``header``: a new file's first lines (package, imports). With a ``container`` the tests live
    inside it; in an existing file with one, the test goes before its closing brace.
    """
    if existing is None:
        if container is None:
            return True, [Insertion(0, 0, f"{header}{code.function}\n")]
        body = _indent_block(code.function, container.indent)
        return True, [Insertion(0, 0, f"{header}{container.opening}{body}\n}}\n")]
    newline = newline_of(existing)
    insertions = _brace_import_insertions(language, existing, code.imports, newline)
    if container is None:
        insertions.append(append_insertion(existing, code.function, newline, blank_lines=1))
        return False, insertions
    match = re.search(container.marker, existing, flags=re.MULTILINE)
    close = _container_close(existing, match.end() - 1) if match else None
    block = _indent_block(code.function, container.indent).replace("\n", newline)
    if close is None:
        new = f"{container.opening}{_indent_block(code.function, container.indent)}\n}}"
        insertions.append(append_insertion(existing, new, newline, blank_lines=1))
        return False, insertions
    line_start = existing.rfind("\n", 0, close) + 1
    if existing[line_start:close].strip():  # `... }` closes on a line with code
        insertions.append(Insertion(close, close, newline + block + newline))
    else:
        insertions.append(Insertion(line_start, line_start, newline + block + newline))
    return False, insertions


def _container_close(existing: str, brace: int) -> int | None:
    """Offset of the ``}`` matching the ``{`` at ``brace`` (skips strings and // comments)."""
    depth = 0
    i = brace
    in_string: str | None = None
    while 0 <= i < len(existing):
        ch = existing[i]
        if in_string:
            if ch == "\\":
                i += 2
                continue
            if ch == in_string:
                in_string = None
        elif existing.startswith("//", i):
            nl = existing.find("\n", i)
            i = len(existing) if nl < 0 else nl
            continue
        elif ch == '"':
            in_string = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


# -- the whole pipeline ------------------------------------------------------------------------


def _read_existing(path: Path, open_text: str | None) -> str | None:
    if open_text is not None:
        return open_text
    try:
        return path.read_bytes().decode("utf-8")  # bytes: keep the file's CRLF line endings
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _stop_after_body(text: str) -> bool:
    """Stop at a line at column 0 (the next definition), a repeated line (the model loops) or
    after a handful of lines: a first test should be short."""
    if re.search(r"\n\S", text.lstrip("\n")) or "\n\n\n" in text:
        return True
    complete = [line.strip() for line in text.split("\n")[:-1] if line.strip()]
    return len(complete) != len(set(complete)) or len(complete) >= 8


async def generate_tests(
    doc: Document,
    offset: int,
    root: Path | None,
    settings: GenerationSettings,
    open_texts: dict[str, str] | None = None,
    cancel: threading.Event | None = None,
) -> AddTestEdit | str:
    """The edit that adds a test for the function at ``offset``, or a message saying why not.

    ``open_texts`` maps file paths to the text of documents open in the editor (they win over
    the disk). Generation runs in ``settings.executor``.
    """
    info = target_for_tests(doc, offset)
    if info is None:
        return "no function or method at the cursor that a test can call"
    fs_path = uri_to_path(doc.uri)
    if fs_path is None:
        return "save the file first: tests are generated for files on disk"
    source = Path(fs_path).resolve()
    root = (root or source.parent).resolve()
    if root not in source.parents:
        root = source.parent
    try:
        path = conventional_test_path(source, root, doc.language, doc)
    except ValueError as exc:
        return str(exc)
    open_texts = open_texts or {}
    if doc.language == "rust":
        existing: str | None = doc.text
    else:
        try:
            existing = _read_existing(path, open_texts.get(str(path)))
        except ValueError as exc:
            return str(exc)
    base = f"test_{info.name}" if doc.language in ("python", "rust") else (
        "Test" + info.name[:1].upper() + info.name[1:] if doc.language == "go" else info.name)
    test_name = _unique_test_name(existing or "", base)
    cancel = cancel or threading.Event()
    if doc.language == "python":
        module = python_module_path(source, root)
        raw = None
        if settings.engine is not None:
            prompt = python_test_prompt(doc, info, test_name)
            request = GenerationRequest(
                prompt=prompt, max_new_tokens=64, stop=("\ndef ", "\nclass ", "\n@", "\n\n"),
                should_stop=_stop_after_body, max_prompt_tokens=settings.max_prompt_tokens,
            )
            raw = await run_model(settings.engine, settings.executor, request, cancel, settings.timeout_s)
        code = python_test_code(doc, info, module, test_name, raw)
        raises = python_raises_test(doc, info, module, existing or "") if "pytest.raises" not in code.function else None
        if raises is not None:
            code.function += "\n\n\n" + raises.function
            code.imports = list(dict.fromkeys([*code.imports, *raises.imports]))
        create, insertions = python_file_edit(existing, module, code, _python_target_imports(info, module))
    else:
        raw = None
        if settings.engine is not None and doc.language in ("javascript", "typescript", "tsx") and js_seed(info):
            import_line = _js_import_line(doc, info, "./" + source.stem)
            prompt = js_test_prompt(doc, info, path.name, import_line, test_name)
            request = GenerationRequest(prompt=prompt, max_new_tokens=64, stop=("});", "\n\n"),
                                        max_prompt_tokens=settings.max_prompt_tokens)
            raw = await run_model(settings.engine, settings.executor, request, cancel, settings.timeout_s)
        code, header, container = _other_language_test(doc, info, source, path, root, test_name, raw)
        create, insertions = brace_file_edit(doc.language, existing, code, header, container)
    edit = AddTestEdit(path, create, insertions, existing or "", test_name, code.from_model, info)
    errors_before = syntax_error_count(existing or "", doc.language) if existing else 0
    if syntax_error_count(edit.new_text, doc.language) > errors_before:
        if code.from_model and doc.language == "python":
            code = python_skeleton(doc, info, test_name)
            create, insertions = python_file_edit(existing, module, code, _python_target_imports(info, module))
            edit = AddTestEdit(path, create, insertions, existing or "", test_name, False, info)
            if syntax_error_count(edit.new_text, doc.language) <= errors_before:
                return edit
        return f"cannot add a test to {_rel(path, root)} without breaking it"
    return edit


def _other_language_test(doc: Document, info: DefinitionInfo, source: Path, path: Path, root: Path,
                         test_name: str, raw: str | None = None) -> tuple[GeneratedTest, str, Container | None]:
    """(test code, new-file header, container) for Go, JS/TS, Rust and Java."""
    lang = doc.language
    if lang == "go":
        package = re.search(r"^package\s+(\w+)", doc.text, flags=re.MULTILINE)
        code = go_skeleton(doc, info, test_name)
        return code, f"package {package.group(1) if package else 'main'}\n\nimport \"testing\"\n\n", None
    if lang in ("javascript", "typescript", "tsx"):
        body = clean_js_test_body(raw, info, test_name, lang) if raw is not None and js_seed(info) else None
        code = GeneratedTest(test_name, body, from_model=True) if body else js_skeleton(doc, info, test_name)
        spec = "./" + source.stem
        lines = [line for line in (_js_framework_import(source, root), _js_import_line(doc, info, spec)) if line]
        code.imports = lines
        return code, "\n".join(lines) + "\n\n", None
    if lang == "rust":
        code = rust_skeleton(doc, info, test_name)
        return code, "", Container("#[cfg(test)]\nmod tests {\n    use super::*;\n\n", "    ",
                                   r"^\s*mod\s+tests\s*\{")
    if lang == "java":
        code = java_skeleton(doc, info, test_name)
        package = re.search(r"^package\s+([\w.]+)\s*;", doc.text, flags=re.MULTILINE)
        head = (f"package {package.group(1)};\n\n" if package else "") + \
            "import static org.junit.jupiter.api.Assertions.assertEquals;\n\nimport org.junit.jupiter.api.Test;\n\n"
        return code, head, Container(f"class {path.stem} {{\n\n", "    ",
                                     rf"^[^\n]*\bclass\s+{re.escape(path.stem)}\b[^{{]*\{{")
    raise ValueError(f"no test convention for {lang}")
