"""Suggestions cut by the token limit: what the syntax check costs, and what it changes.

    python bench/length_cut.py latency           # added ms per cut suggestion, 1,000-line file
    python bench/length_cut.py model FILE.py     # real default model, ~10 cursors in FILE

`latency` times `postprocess` on the same raw generations with and without the syntax check
(finish reason "length" + `syntax_check` against "" = the stage as it was), interleaved, medians.
`model` generates once per cursor with the served model (REPOLSP_HOME) and applies both the old
stage and the new one to that same generation, then asks the real server over stdio for the
same cursors: how many accepted suggestions leave the file parsing, old against new.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

from repolsp.server.context.document import Document
from repolsp.server.context.types import CompletionMode
from repolsp.server.docgen.edits import syntax_error_count
from repolsp.server.postprocess import postprocess, syntax_check

REPEATS = 200


def _big_file(functions: int = 100) -> str:
    """About 1,000 lines of Python: functions of ten lines each."""
    parts = ['"""A generated module."""\n\nimport math\n']
    for index in range(functions):
        parts.append(
            f"\n\ndef area_{index}(radius, scale={index}):\n"
            f'    """Area number {index}."""\n'
            f"    total = math.pi * radius ** 2\n"
            f"    if scale > 1:\n"
            f"        total = total * scale\n"
            f"    values = [total, radius, scale]\n"
            f'    print(f"area {index}: {{total}}")\n'
            f"    return total\n")
    return "".join(parts)


# (name, mode, raw generation cut by the limit)
LATENCY_CASES = [
    ("multi-unterminated-fstring", CompletionMode.MULTI_LINE,
     'print(f"The area is {math.pi * radius ** 2}")\n    print(f"The area is {math.pi * radius **'),
    ("multi-open-list-4-lines", CompletionMode.MULTI_LINE,
     "items = [\n        1,\n        2,\n        3,\n        4,\n        5"),
    ("single-complete", CompletionMode.SINGLE_LINE, "return math.pi * radius ** 2"),
    ("single-open-paren", CompletionMode.SINGLE_LINE, "return math.pi * (radius"),
]


def latency() -> dict:
    source = _big_file()
    marker = "def area_50(radius, scale=50):\n    \"\"\"Area number 50.\"\"\"\n"
    offset = source.index(marker) + len(marker)
    source = source[:offset] + "    \n" + source[offset:]
    offset += 4
    doc = Document("file:///bench/big.py", source, "python")
    suffix = source[offset:]
    figures: dict = {"lines": source.count("\n"), "repeats": REPEATS, "cases": {}}
    for name, mode, raw in LATENCY_CASES:
        indent = 0 if mode is CompletionMode.MULTI_LINE else None
        old_ms, new_ms = [], []
        for _ in range(REPEATS):
            started = time.perf_counter()
            postprocess(raw, mode, suffix, indent)
            old_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            kept = postprocess(raw, mode, suffix, indent, finish_reason="length",
                               adds_error=syntax_check(doc, offset))
            new_ms.append((time.perf_counter() - started) * 1000)
        old, new = statistics.median(old_ms), statistics.median(new_ms)
        figures["cases"][name] = {"old_ms": round(old, 3), "new_ms": round(new, 3),
                                  "added_ms": round(new - old, 3), "kept": kept}
    started = time.perf_counter()
    for _ in range(20):
        Document("file:///bench/big.py", source, "python")
    figures["full_parse_ms"] = round((time.perf_counter() - started) * 1000 / 20, 3)
    return figures


def cursors(source: str) -> list[tuple[str, str, int]]:
    """(name, edited text, cursor offset): an empty line after every docstring-only function,
    a right-hand side cut after '=' / 'return', and a new function with only its header."""
    holes = []
    lines = source.split("\n")
    for index, line in enumerate(lines[:-1]):
        if line.startswith("def ") and lines[index + 1].strip().startswith('"""') \
                and lines[index + 1].strip().endswith('"""') and len(lines[index + 1].strip()) > 6:
            head = "\n".join(lines[: index + 2]) + "\n    "
            holes.append((line.split("(")[0][4:] + " body", head + "\n" + "\n".join(lines[index + 2:]),
                          len(head)))
    for index, line in enumerate(lines):
        for cut in ("total = ", "return ", "total = 2 * ("):
            if line.strip().startswith(cut):
                head = "\n".join(lines[:index]) + "\n" + line[: line.index(cut) + len(cut)]
                holes.append((f"line {index + 1} after {cut.strip()!r}",
                              head + "\n" + "\n".join(lines[index + 1:]), len(head)))
    for header in ('def circle_perimeter(radius):\n    """Perimeter of a circle."""\n    ',
                   "def hexagon_area(side):\n    "):
        head = source.rstrip("\n") + "\n\n\n" + header
        holes.append((header.split("(")[0][4:] + " (new)", head + "\n", len(head)))
    return holes


def _parses(text: str) -> bool:
    return syntax_error_count(text, "python") == 0


def _in_process(holes) -> list[dict]:
    """One generation per cursor with the served model; the old and the new stage on it."""
    from repolsp.models.prompt import template_for
    from repolsp.models.pull import DEFAULT_MODEL
    from repolsp.models.store import ModelStore
    from repolsp.server.completion import CompletionService
    from repolsp.server.config import Config
    from repolsp.server.engine.ct2 import CT2Engine

    entry = ModelStore().get(DEFAULT_MODEL)
    engine = CT2Engine(entry.ct2_dir, entry.hf_dir, threads=2)
    template = (template_for(entry.manifest.fim_template), entry.manifest.max_prompt_tokens)
    service = CompletionService(Config(), lambda: engine, lambda: template)
    rows = []
    for name, text, offset in holes:
        doc = Document("file:///bench/shapes.py", text, "python")
        decision, prompt, ctx = service.prepare(doc, offset)
        row = {"cursor": name, "mode": decision.mode.value}
        if prompt is None:
            rows.append(row | {"finish": None, "old": "", "new": ""})
            continue
        result = engine.generate(service.request_for(decision, prompt))
        old = postprocess(result.text, decision.mode, ctx.suffix, decision.block_indent)
        new = postprocess(result.text, decision.mode, ctx.suffix, decision.block_indent,
                          finish_reason=result.finish_reason, adds_error=syntax_check(doc, offset))
        rows.append(row | {"finish": result.finish_reason, "old": old, "new": new})
    service.shutdown()
    return rows


async def _served(holes) -> list[str]:
    """The real server's inline suggestion at each cursor (stdio, as an editor asks)."""
    from lsprotocol import types
    from pygls.lsp.client import LanguageClient
    from repolsp.server.demo import STATUS_TIMEOUT_S, _wait_ready

    client = LanguageClient("repolsp-bench", "0.1")
    await client.start_io(sys.executable, "-m", "repolsp.server")
    await client.initialize_async(types.InitializeParams(
        capabilities=types.ClientCapabilities(text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities())),
        root_uri="file:///bench", initialization_options={"debounceMs": 0}))
    client.initialized(types.InitializedParams())
    status = await _wait_ready(client, STATUS_TIMEOUT_S)
    assert status.get("state") == "ready", status
    uri, served = "file:///bench/shapes.py", []
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="python", version=1, text=holes[0][1])))
    for version, (_, text, offset) in enumerate(holes, start=2):
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            [types.TextDocumentContentChangeWholeDocument(text=text)]))
        line = text.count("\n", 0, offset)
        character = offset - (text.rfind("\n", 0, offset) + 1)  # ASCII file: UTF-16 = str units
        result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line, character),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
        items = result.items if result is not None else []
        served.append(items[0].insert_text if items else "")
    await client.shutdown_async(None)
    client.exit(None)
    return served


def model(path: Path) -> dict:
    holes = cursors(path.read_text(encoding="utf-8"))
    rows = _in_process(holes)
    served = asyncio.run(_served(holes))
    for row, (_, text, offset), shown in zip(rows, holes, served):
        row["parses_before_accepting"] = _parses(text)
        for key, suggestion in (("old", row["old"]), ("new", row["new"]), ("served", shown)):
            row[f"{key}_parses"] = _parses(text[:offset] + suggestion + text[offset:])
        row["served"] = shown
    total = {key: sum(row[f"{key}_parses"] for row in rows) for key in ("old", "new", "served")}
    return {"file": str(path), "cursors": len(rows), "accepted_file_parses": total,
            "cut_by_limit": sum(row["finish"] == "length" for row in rows),
            "empty_new": sum(not row["new"] for row in rows),
            "served_equals_new": sum(row["served"] == row["new"] for row in rows), "rows": rows}


def main(argv: list[str]) -> int:
    if argv[:1] == ["latency"]:
        print(json.dumps(latency(), indent=2))
        return 0
    if len(argv) == 2 and argv[0] == "model":
        print(json.dumps(model(Path(argv[1])), indent=2))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
