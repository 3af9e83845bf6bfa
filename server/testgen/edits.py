"""Putting tests into a test file: imports, appended functions, containers; never replacing content.

Offsets are Python ``str`` offsets."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from repolsp.server.context.languages import parser_for
from repolsp.server.context.symbols import (
    DefinitionInfo,
)
from repolsp.server.docgen import (
    Insertion,
    apply_insertions,
    newline_of,
)


@dataclass
class GeneratedTest:
    """A test to add: its function text and what it needs at the top of the file."""

    name: str
    function: str  # the test function/method, "\n" line endings, no trailing newline
    imports: list[str] = field(default_factory=list)  # import lines it needs
    from_model: bool = False


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
    message: str = ""  # for the user: "3 tests pass, 85% of f covered", or why nothing ran

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
        # The test's helpers (pytest, Hypothesis) go above the project's own imports.
        helpers = [line for line in code.imports if line.startswith("from ")]
        stdlib += _grouped_from_lines(helpers)
        project = _grouped_from_lines(target_imports)
        head = f'"""Tests for {module}."""\n\n' + "\n".join(stdlib) + ("\n\n" if stdlib else "")
        text = head + "\n".join(project) + "\n\n\n" + code.function + "\n"
        return True, [Insertion(0, 0, text)]
    newline = newline_of(existing)
    insertions = _python_import_insertions(existing, imports, newline)
    insertions.append(append_insertion(existing, code.function, newline))
    return False, insertions


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


def _grouped_from_lines(lines: list[str]) -> list[str]:
    """``from m import a`` and ``from m import b`` as one ``from m import a, b`` line."""
    names_by_module: dict[str, list[str]] = {}
    for line in lines:
        if line.startswith("from "):
            module_name, _, names = line[5:].partition(" import ")
            names_by_module.setdefault(module_name, []).extend(n.strip() for n in names.split(","))
    return [f"from {m} import {', '.join(sorted(dict.fromkeys(n), key=str.lower))}" for m, n in names_by_module.items()]
