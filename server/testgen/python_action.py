"""The Python branch of "Generate tests": the model's proposals (if a model is loaded), then the
sandboxed flow off the event loop; a skeleton marked as such when nothing could run."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from repolsp.server.context.document import Document
from repolsp.server.context.symbols import DefinitionInfo
from repolsp.server.docgen import GenerationSettings, run_model
from repolsp.server.engine.base import GenerationRequest
from repolsp.server.testgen.edits import GeneratedTest
from repolsp.server.testgen.locations import _walk_files
from repolsp.server.testgen.model_body import _stop_after_body, body_seed
from repolsp.server.testgen.prompt import python_test_prompt
from repolsp.server.testgen.python_flow import FlowInput, run_python_flow
from repolsp.server.testgen.skeleton import (
    _python_target_imports,
    python_raises_test,
    python_skeleton,
)

MAX_CALL_SITE_FILES = 24
MAX_CALL_SITE_CHARS = 400_000
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def flow_executor() -> ThreadPoolExecutor:
    """Threads that wait on sandboxes: not the engine's (completions keep it) nor pygls's."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="repolsp-testgen")
        return _executor


def call_site_texts(name: str, root: Path, source: Path, workspace=None) -> list[str]:
    """Texts of other files that call ``name(``: the workspace index's chunks when it is built,
    else a bounded walk of the project's Python files."""
    needle = f"{name}("
    if workspace is not None:
        try:
            snippets = workspace.retrieve(f"{name} {name}", exclude_path=str(source), limit=12)
        except Exception:  # noqa: BLE001 - retrieval is best effort
            snippets = []
        return [s.text for s in snippets if needle in s.text]
    found, total = [], 0
    for path in _walk_files(root, limit=5000):
        if path.suffix != ".py" or path.resolve() == source:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if needle in text:
            found.append(text)
            total += len(text)
        if len(found) >= MAX_CALL_SITE_FILES or total > MAX_CALL_SITE_CHARS:
            break
    return found


async def _model_body(doc: Document, info: DefinitionInfo, test_name: str, settings: GenerationSettings,
                      cancel: threading.Event) -> str | None:
    if settings.engine is None:
        return None
    request = GenerationRequest(
        prompt=python_test_prompt(doc, info, test_name), max_new_tokens=64,
        stop=("\ndef ", "\nclass ", "\n@", "\n\n"), should_stop=_stop_after_body,
        max_prompt_tokens=settings.max_prompt_tokens,
    )
    raw = await run_model(settings.engine, settings.executor, request, cancel, settings.timeout_s)
    seed = body_seed(doc, info)
    return f"    {seed}{raw}" if raw is not None else None


def skeleton_code(doc: Document, info: DefinitionInfo, module: str, test_name: str, existing: str,
                  reason: str) -> GeneratedTest:
    """The skeleton test(s), headed by a comment that says they were not run and why."""
    code = python_skeleton(doc, info, test_name)
    head, _, rest = code.function.partition("\n")
    code.function = f"{head}\n    # Skeleton, not run: {reason}.\n{rest}"
    raises = python_raises_test(doc, info, module, existing)
    if raises is not None:
        code.function += "\n\n\n" + raises.function
        code.imports = list(dict.fromkeys([*code.imports, *raises.imports]))
    return code


async def python_code(doc: Document, info: DefinitionInfo, source: Path, root: Path, module: str, test_name: str,
                      existing: str, settings: GenerationSettings, cancel: threading.Event,
                      progress: Callable[[str], None] | None = None,
                      workspace=None) -> tuple[GeneratedTest, list[str], str] | str:
    """(tests that passed, imports of the module's names, message), a skeleton with the reason
    nothing ran, or "cancelled"."""
    raw = await _model_body(doc, info, test_name, settings, cancel)
    loop = asyncio.get_running_loop()
    others = await loop.run_in_executor(flow_executor(), call_site_texts, info.name, root, source, workspace)
    line = doc.text.count("\n", 0, info.header_start) + 1
    flow = FlowInput(doc.text, source, module, root, info.name, line, test_name, others, raw)
    outcome = await loop.run_in_executor(flow_executor(), run_python_flow, flow, cancel, progress)
    if cancel.is_set() or outcome.message == "cancelled":
        return "cancelled"
    if outcome.code is not None:
        return outcome.code, outcome.target_imports, outcome.message
    reason = " ".join(outcome.message.split())  # one line, whatever an exception message held
    code = skeleton_code(doc, info, module, test_name, existing, reason)
    return code, _python_target_imports(info, module), f"tests not run: {reason}; offered a skeleton"
