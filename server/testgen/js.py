"""JavaScript / TypeScript tests (``<name>.test.<ext>``)."""

from __future__ import annotations

import re
from pathlib import Path

from repolsp.server.context.document import Document
from repolsp.server.context.languages import parser_for
from repolsp.server.context.symbols import (
    DefinitionInfo,
)
from repolsp.server.testgen.edits import GeneratedTest
from repolsp.server.testgen.model_body import MAX_BODY_LINES, drop_repeated_checks
from repolsp.server.testgen.targets import _owner_name


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
