"""The whole action: target -> location -> tests -> edit."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from repolsp.server.context.document import Document, uri_to_path
from repolsp.server.context.symbols import (
    DefinitionInfo,
)
from repolsp.server.docgen import (
    GenerationSettings,
    run_model,
    syntax_error_count,
)
from repolsp.server.engine.base import GenerationRequest
from repolsp.server.testgen.edits import (
    AddTestEdit,
    Container,
    GeneratedTest,
    _unique_test_name,
    brace_file_edit,
    python_file_edit,
)
from repolsp.server.testgen.go import go_skeleton
from repolsp.server.testgen.java import java_skeleton
from repolsp.server.testgen.js import (
    _js_framework_import,
    _js_import_line,
    clean_js_test_body,
    js_seed,
    js_skeleton,
    js_test_prompt,
)
from repolsp.server.testgen.locations import (
    _read_existing,
    _rel,
    conventional_test_path,
    python_module_path,
)
from repolsp.server.testgen.python_action import python_code
from repolsp.server.testgen.rust import rust_skeleton
from repolsp.server.testgen.targets import target_for_tests


async def generate_tests(
    doc: Document,
    offset: int,
    root: Path | None,
    settings: GenerationSettings,
    open_texts: dict[str, str] | None = None,
    cancel: threading.Event | None = None,
    progress: Callable[[str], None] | None = None,
    workspace=None,
) -> AddTestEdit | str:
    """The edit that adds a test for the function at ``offset``, or a message saying why not.

    ``open_texts`` maps file paths to the text of documents open in the editor (they win over
    the disk). The model runs in ``settings.executor``; Python tests are run in a sandbox (from
    threads of their own) and only passing ones are offered; ``edit.message`` says how many
    passed. ``progress`` is called (from another thread) with a line on each step;
    ``workspace`` (the workspace index) finds call sites.
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
    message = ""
    if doc.language == "python":
        module = python_module_path(source, root)
        produced = await python_code(doc, info, source, root, module, test_name, existing or "", settings, cancel,
                                     progress, workspace)
        if isinstance(produced, str):
            return produced
        code, target_imports, message = produced
        create, insertions = python_file_edit(existing, module, code, target_imports)
    else:
        ran = await _javascript_run(doc, info, source, cancel, progress) if doc.language == "javascript" else (
            await _rust_run(doc, info, source, test_name, cancel, progress) if doc.language == "rust" else None)
        if ran == "cancelled":
            return ran
        if isinstance(ran, tuple) and ran[0] is not None and doc.language == "rust":
            code, message = ran
            _, header, container = _other_language_test(doc, info, source, path, root, test_name)
            create, insertions = brace_file_edit(doc.language, existing, code, header, container)
            return _checked(AddTestEdit(path, create, insertions, existing or "", test_name, False, info,
                                        message=message), existing, doc.language, path, root)
        if isinstance(ran, tuple) and ran[0] is not None:
            code, message = ran
            create, insertions = brace_file_edit(doc.language, existing, code, "\n".join(code.imports) + "\n\n")
            return _checked(AddTestEdit(path, create, insertions, existing or "", test_name, False, info,
                                        message=message), existing, doc.language, path, root)
        message = _not_run_message(doc.language, ran[1] if isinstance(ran, tuple) else None)
        raw = None
        if settings.engine is not None and doc.language in ("javascript", "typescript", "tsx") and js_seed(info):
            import_line = _js_import_line(doc, info, "./" + source.stem)
            prompt = js_test_prompt(doc, info, path.name, import_line, test_name)
            request = GenerationRequest(prompt=prompt, max_new_tokens=64, stop=("});", "\n\n"),
                                        max_prompt_tokens=settings.max_prompt_tokens)
            raw = await run_model(settings.engine, settings.executor, request, cancel, settings.timeout_s)
        code, header, container = _other_language_test(doc, info, source, path, root, test_name, raw)
        create, insertions = brace_file_edit(doc.language, existing, code, header, container)
    edit = AddTestEdit(path, create, insertions, existing or "", test_name, code.from_model, info, message=message)
    return _checked(edit, existing, doc.language, path, root)


def _checked(edit: AddTestEdit, existing: str | None, language: str, path: Path, root: Path) -> AddTestEdit | str:
    """The edit, unless the test file would parse worse after it than before."""
    errors_before = syntax_error_count(existing or "", language) if existing else 0
    if syntax_error_count(edit.new_text, language) > errors_before:
        return f"cannot add a test to {_rel(path, root)} without breaking it"
    return edit


async def _javascript_run(doc: Document, info: DefinitionInfo, source: Path, cancel: threading.Event,
                          progress: Callable[[str], None] | None):
    """(passing node:test tests or None, message), or "cancelled"; off the event loop."""
    import asyncio

    from repolsp.server.testgen.js_flow import run_js_flow
    from repolsp.server.testgen.python_action import flow_executor

    if progress is not None:
        progress(f"running {info.name} with node in the sandbox")
    loop = asyncio.get_running_loop()
    code, message = await loop.run_in_executor(flow_executor(), run_js_flow, doc.text, source, info, cancel)
    return "cancelled" if message == "cancelled" or cancel.is_set() else (code, message)


async def _rust_run(doc: Document, info: DefinitionInfo, source: Path, test_name: str, cancel: threading.Event,
                    progress: Callable[[str], None] | None):
    """(passing cargo tests or None, message), or "cancelled"; off the event loop."""
    import asyncio

    from repolsp.server.testgen.python_action import flow_executor
    from repolsp.server.testgen.rust_flow import run_rust_flow

    if progress is not None:
        progress(f"running {info.name} with cargo test in the sandbox")
    loop = asyncio.get_running_loop()
    code, message = await loop.run_in_executor(flow_executor(), run_rust_flow, doc.text, source, info, test_name,
                                               cancel)
    return "cancelled" if message == "cancelled" or cancel.is_set() else (code, message)


def _not_run_message(language: str, reason: str | None) -> str:
    """Why tests in ``language`` were only syntax-checked, for the user."""
    why = reason or {
        "typescript": "node cannot run TypeScript here without a compiler",
        "tsx": "node cannot run TSX here without a compiler",
        "go": "go is not installed" if shutil.which("go") is None else "the server does not run go test yet",
        "rust": "cargo is not installed",
        "java": "the server does not run JUnit",
    }.get(language, "no runner for this language")
    return f"tests not run: {why}; the test is a syntax-checked skeleton"


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
