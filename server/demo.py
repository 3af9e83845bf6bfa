"""`lsp-serve --demo [FILE]`: start the real server over stdio, act like an editor, print.

For a few holes in FILE (the end of a line cut off, or a whole function body removed) the demo
sends the edited text as `didChange`, asks for `textDocument/inlineCompletion`, and prints the
line with the suggestion and its latency, next to what the file really had.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types

SAMPLE = Path(__file__).parent / "demo_data" / "inventory.py"
STATUS_TIMEOUT_S = 600


@dataclass
class Hole:
    """A cursor position in an edited copy of the file, and what was cut out there."""

    text: str  # the file with the hole
    line: int
    character: int
    expected: str
    kind: str  # "mid-line" | "function body"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def find_holes(source: str, count: int = 3) -> list[Hole]:
    """Mid-line holes spread over the file, plus one removed function body."""
    lines = source.split("\n")
    candidates = [
        i for i, line in enumerate(lines)
        if _indent(line) >= 4 and len(line.strip()) > 24
        and not line.strip().startswith(("#", '"', "'", "//", "*", "/*"))
    ]
    holes: list[Hole] = []
    picks = [candidates[int(k * len(candidates) / (count - 1))] for k in range(count - 1)] if (
        len(candidates) >= count - 1 and count > 1) else candidates[: count - 1]
    for i in picks:
        line = lines[i]
        body = line[_indent(line):]
        # Cut after the first opening bracket or '=' past the start, else at the middle.
        match = re.search(r"[(\[=]", body[6:])
        cut = _indent(line) + (6 + match.end() if match else len(body) // 2)
        text = "\n".join(lines[:i] + [line[:cut]] + lines[i + 1:])
        holes.append(Hole(text, i, cut, line[cut:], "mid-line"))
    # A short function whose body is removed: the cursor on the empty first body line.
    for i in range(len(lines) - 1, -1, -1):
        header = lines[i].strip()
        if not re.match(r"(async\s+)?def\s|function\s|func\s|fn\s", header) or not header.endswith((":", "{")):
            continue
        body_end = i + 1
        while body_end < len(lines) and (not lines[body_end].strip() or _indent(lines[body_end]) > _indent(lines[i])):
            body_end += 1
        body = lines[i + 1:body_end]
        while body and not body[-1].strip():
            body.pop()
        if not 1 <= len(body) <= 4 or body[0].strip().startswith(('"""', "'''")):
            continue
        pad = " " * (_indent(lines[i]) + 4)
        rest = lines[i + 1 + len(body):]
        text = "\n".join(lines[: i + 1] + [pad] + rest)
        holes.append(Hole(text, i + 1, len(pad), "\n".join(body), "function body"))
        break
    return holes


async def _wait_ready(client, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    status: dict = {}
    while time.monotonic() < deadline:
        status = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="repolsp.status", arguments=[]))
        if status.get("state") in ("ready", "error"):
            return status
        await asyncio.sleep(0.25)
    return status


def _show(hole: Hole, suggestion: str, latency_ms: float, out) -> None:
    lines = hole.text.split("\n")
    before = lines[hole.line][: hole.character]
    dim, reset, green = ("\033[2m", "\033[0m", "\033[32m") if out.isatty() else ("", "", "")
    print(f"\n── {hole.kind} at line {hole.line + 1}, {latency_ms:.0f} ms ──", file=out)
    for number in range(max(0, hole.line - 2), hole.line):
        print(f"{dim}{number + 1:4d} │ {lines[number]}{reset}", file=out)
    shown = suggestion.split("\n") if suggestion else ["(no suggestion)"]
    print(f"{hole.line + 1:4d} │ {before}{green}{shown[0]}{reset}", file=out)
    for extra in shown[1:]:
        print(f"     │ {green}{extra}{reset}", file=out)
    print(f"{dim}     │ file had: {before.strip()}{hole.expected.strip().splitlines()[0] if hole.expected.strip() else ''}{reset}", file=out)


async def _demo(path: Path, model: str, engine: str, out) -> int:
    from pygls.lsp.client import LanguageClient

    source = path.read_text(encoding="utf-8", errors="replace")
    uri = path.resolve().as_uri()
    language = {".py": "python", ".js": "javascript", ".ts": "typescript", ".go": "go",
                ".rs": "rust", ".java": "java", ".c": "c", ".cpp": "cpp"}.get(path.suffix, "plaintext")
    client = LanguageClient("repolsp-demo", "0.1")
    messages: list[str] = []

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def show_message(params: types.ShowMessageParams) -> None:
        messages.append(params.message)
        print(f"[server] {params.message}", file=out)

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def log_message(params: types.LogMessageParams) -> None:
        pass

    cmd = [sys.executable, "-m", "repolsp.server", "--engine", engine]
    if model:
        cmd += ["--model", model]
    started = time.perf_counter()
    await client.start_io(*cmd)
    capabilities = types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities(),
            code_action=types.CodeActionClientCapabilities(
                code_action_literal_support=types.ClientCodeActionLiteralOptions(
                    code_action_kind=types.ClientCodeActionKindOptions(
                        value_set=[types.CodeActionKind.Refactor, types.CodeActionKind.RefactorRewrite])),
                resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"]))),
        window=types.WindowClientCapabilities(work_done_progress=False),
        workspace=types.WorkspaceClientCapabilities(workspace_edit=types.WorkspaceEditClientCapabilities(
            document_changes=True, resource_operations=[types.ResourceOperationKind.Create])),
    )
    await client.initialize_async(types.InitializeParams(
        capabilities=capabilities, root_uri=path.resolve().parent.as_uri(),
        initialization_options={"debounceMs": 0}))
    client.initialized(types.InitializedParams())
    print(f"server initialized in {(time.perf_counter() - started) * 1000:.0f} ms; loading model…", file=out)
    status = await _wait_ready(client, STATUS_TIMEOUT_S)
    if status.get("state") != "ready":
        print(f"model not ready: {status.get('error') or status.get('state')}", file=out)
        await client.shutdown_async(None)
        client.exit(None)
        return 1
    print(f"model {status['model']} ready after {(time.perf_counter() - started):.1f} s "
          f"({status['engine']}, {status['engineStats'].get('computeType', '')})", file=out)
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id=language, version=1, text=source)))
    version = 1
    latencies = []
    for hole in find_holes(source):
        version += 1
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            [types.TextDocumentContentChangeWholeDocument(text=hole.text)]))
        began = time.perf_counter()
        result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(hole.line, hole.character),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
        latency = (time.perf_counter() - began) * 1000
        latencies.append(latency)
        items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
        text = items[0].insert_text if items else ""
        _show(hole, text if isinstance(text, str) else text.value, latency, out)
    # Put the file back and ask for the code actions on a function without a docstring.
    version += 1
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        [types.TextDocumentContentChangeWholeDocument(text=source)]))
    await _show_code_actions(client, uri, source, out)
    status = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="repolsp.status", arguments=[]))
    print(f"\nlatency p50 {status['latencyMs']['p50']} ms over {len(latencies)} requests; "
          f"server: {status['engineStats']}", file=out)
    await client.shutdown_async(None)
    client.exit(None)
    await asyncio.sleep(0.2)
    return 0


def _undocumented_function_line(source: str) -> int | None:
    lines = source.split("\n")
    for i, line in enumerate(lines[:-1]):
        if re.match(r"\s*(async\s+)?def\s", line) and not lines[i + 1].strip().startswith(('"""', "'''")):
            return i
    return None


async def _show_code_actions(client, uri: str, source: str, out) -> None:
    line = _undocumented_function_line(source)
    if line is None:
        return
    position = types.Position(line, len(source.split("\n")[line]) - 1)
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=types.Range(position, position),
        context=types.CodeActionContext(diagnostics=[])))
    for action in actions or []:
        if not isinstance(action, types.CodeAction):
            continue
        began = time.perf_counter()
        resolved = await client.code_action_resolve_async(action)
        latency = (time.perf_counter() - began) * 1000
        print(f"\n── code action: {resolved.title} ({latency:.0f} ms) ──", file=out)
        edit = resolved.edit
        if edit is None:
            reason = resolved.disabled.reason if resolved.disabled else "no edit"
            print(f"     │ {reason}", file=out)
            continue
        changes = []
        for change in edit.document_changes or []:
            if isinstance(change, types.TextDocumentEdit):
                changes.append((change.text_document.uri, change.edits))
            elif isinstance(change, types.CreateFile):
                print(f"     │ creates {change.uri}", file=out)
        changes += list((edit.changes or {}).items())
        for target, edits in changes:
            print(f"     │ edits {Path(target.replace('file://', '')).name}:", file=out)
            for text_edit in edits:
                for text_line in text_edit.new_text.rstrip("\n").split("\n")[:25]:
                    print(f"     │ {text_line}", file=out)


def run_demo(file: str | None, model: str = "", engine: str = "ct2") -> int:
    """Entry point of `lsp-serve --demo`."""
    path = Path(file) if file else SAMPLE
    if not path.is_file():
        print(f"lsp-serve --demo: no such file {path}", file=sys.stderr)
        return 2
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return asyncio.run(_demo(path, model, engine, sys.stdout))
