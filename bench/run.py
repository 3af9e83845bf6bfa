"""`make bench`: speed of the whole product on this machine, written to bench/RESULTS.md.

1. A scripted typing session through the real `lsp-serve` over stdio: a function body of a real
   Python file (500+ lines; pygls' `protocol/json_rpc.py`, in a temporary copy of the pygls
   package as the workspace) is removed and typed again character by character, with an
   automatic `textDocument/inlineCompletion` request after every keystroke (answered after the
   server's debounce). Client-measured latency p50/p95 over all requests and over those that
   reached the model, the server's cache hit rate, and the server's peak RSS. Then `lsp-eval`'s
   held-out history holes of this repository, each asked once over the same connection.
2. The engine on prompts of that session: time to first token, prompt tokens/s, decode
   tokens/s, for CTranslate2 int8 (as served) and transformers fp32 (same model, same token
   ids, same number of new tokens, same thread count), in the same run, as ratios.
3. The context stage: `prepare` (should_complete + build_context + format_prompt) on the
   session's states, build_context at random cursors, and the workspace index build.
4. The trainer's mining stage (commits/s, examples/s) on this repository's newest commits.
   (Training tokens/s are reported by `lsp-train` itself; a training run does not fit here.)

    python bench/run.py [--model NAME] [--max-chars N] [--threads N] [--out bench/RESULTS.md]

Quality (exact match, pass@1) is `lsp-eval`'s job; this script measures speed only.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from repolsp.trainer.eval.metrics import percentile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
STATUS_TIMEOUT_S = 600
# The targets on a 2-core machine with the default model.
TARGETS = {
    "all_p50_ms": 250.0, "all_p95_ms": 1000.0, "model_p50_ms": 600.0, "rss_mb": 500.0,
    "ct2_speedup": 6.0,
}


# --- pure helpers --------------------------------------------------------------------------

@dataclass
class TypingScript:
    """A file with one function body removed, and the keystrokes that type it back."""

    path: str  # relative to the workspace
    function: str
    text: str  # the file with the body removed; the cursor line holds only indentation
    line: int  # 0-based cursor line
    character: int  # cursor column (ASCII bodies only, so UTF-16 = str index)
    keystrokes: list[str] = field(default_factory=list)  # "\n" comes with the next indentation


def pick_function(source: str, min_chars: int = 120, max_chars: int = 400) -> ast.FunctionDef | None:
    """The plain-ASCII function nearest the middle of the file whose body (after any docstring)
    has 3-12 lines and min_chars..max_chars characters and no nested definitions."""
    tree = ast.parse(source)
    lines = source.split("\n")
    middle = len(lines) / 2
    best, best_distance = None, None
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = node.body[1:] if _has_docstring(node) else node.body
        if not body or any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                           for stmt in body for n in ast.walk(stmt)):
            continue
        first, last = body[0].lineno, node.end_lineno
        text = "\n".join(lines[first - 1:last])
        if not 3 <= last - first + 1 <= 12 or not min_chars <= len(text) <= max_chars:
            continue
        if not text.isascii() or '"""' in text or "'''" in text:
            continue
        distance = abs(first - middle)
        if best_distance is None or distance < best_distance:
            best, best_distance = node, distance
    return best


def _has_docstring(node) -> bool:
    first = node.body[0] if node.body else None
    return isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) \
        and isinstance(first.value.value, str)


def typing_script(source: str, path: str, max_chars: int | None = None) -> TypingScript:
    """Remove a function body and script typing it back (an editor auto-indents after Enter)."""
    node = pick_function(source)
    if node is None:
        raise SystemExit(f"bench: no suitable function to type in {path}")
    lines = source.split("\n")
    body = node.body[1:] if _has_docstring(node) else node.body
    first, last = body[0].lineno - 1, node.end_lineno - 1
    body_lines = lines[first:last + 1]
    indent = body_lines[0][: len(body_lines[0]) - len(body_lines[0].lstrip())]
    text = "\n".join(lines[:first] + [indent] + lines[last + 1:])
    keystrokes: list[str] = []
    for index, line in enumerate(body_lines):
        stripped = line.lstrip()
        if index > 0:
            keystrokes.append("\n" + line[: len(line) - len(stripped)])
        keystrokes.extend(stripped)
    if max_chars:
        keystrokes = keystrokes[:max_chars]
    return TypingScript(path, node.name, text, first, len(indent), keystrokes)


def advance(line: int, character: int, typed: str) -> tuple[int, int]:
    """The cursor after typing `typed` at (line, character)."""
    if "\n" in typed:
        return line + typed.count("\n"), len(typed.rsplit("\n", 1)[1])
    return line, character + len(typed)


def format_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def verdict(value: float | None, target: float, higher_is_better: bool = False) -> str:
    if value is None:
        return "—"
    met = value >= target if higher_is_better else value <= target
    return "met" if met else "missed"


def render_results(results: dict) -> str:
    """bench/RESULTS.md: one table, then how it was made."""
    s, e, c = results["session"], results.get("engines") or {}, results.get("context") or {}
    rows = [
        ("Inline latency p50, all requests (cache answers included)", format_ms(s["all_p50_ms"]),
         "≤ 250 ms", verdict(s["all_p50_ms"], TARGETS["all_p50_ms"]), f"n={s['requests']}"),
        ("Inline latency p95, all requests", format_ms(s["all_p95_ms"]), "≤ 1000 ms",
         verdict(s["all_p95_ms"], TARGETS["all_p95_ms"]), ""),
        ("Inline latency p50 / p95, requests that reached the model",
         f"{format_ms(s['model_p50_ms'])} / {format_ms(s['model_p95_ms'])}", "p50 ≤ 600 ms",
         verdict(s["model_p50_ms"], TARGETS["model_p50_ms"]), f"n={s['model_requests']}"),
        ("… of those: single-line / multi-line answers (p50)",
         (f"{format_ms(s.get('model_single_line_p50_ms'))} / "
         f"{format_ms(s.get('model_multi_line_p50_ms'))}"), "", "",
         f"n={s.get('model_single_line_n', 0)} / {s.get('model_multi_line_n', 0)}"),
        ("Cache hit rate (typing through a shown suggestion)", f"{100 * s['cache_hit_rate']:.0f}%",
         "", "", f"{s['cache_hits']} of {s['requests']} requests"),
        ("Inline latency p50 / p95, held-out history holes (explicit requests)",
         f"{format_ms(s.get('history_p50_ms'))} / {format_ms(s.get('history_p95_ms'))}", "", "",
         (f"n={s.get('history_holes', 0)} ({s.get('history_source', '')}); exact match "
          + (f"{100 * s['history_exact_match']:.0f}%" if s.get("history_exact_match") is not None
             else "—"))),
        ("Server peak RSS", f"{s['peak_rss_mb']:.0f} MB", "≤ 500 MB",
         verdict(s["peak_rss_mb"], TARGETS["rss_mb"]), s["rss_source"]),
    ]
    ct2, hf = e.get("ctranslate2"), e.get("transformers")
    if ct2:
        rows += [
            ("Time to first token, CTranslate2 int8 (p50)", format_ms(ct2["ttft_p50_ms"]), "", "",
             (f"{ct2['prompt_tokens_mean']:.0f}-token prompts, n={ct2['prompts']}, "
              "no prefix cache")),
            ("Prompt tokens/s, CTranslate2 int8", f"{ct2['prompt_tps']:.0f}", "", "", "prefill"),
            ("Decode tokens/s, CTranslate2 int8", f"{ct2['decode_tps']:.1f}", "", "",
             f"{e['new_tokens']} new tokens per prompt"),
        ]
    if hf:
        rows += [
            ("Time to first token, transformers fp32 (p50)", format_ms(hf["ttft_p50_ms"]), "", "", "same prompts"),
            ("Prompt tokens/s, transformers fp32", f"{hf['prompt_tps']:.0f}", "", "", ""),
            ("Decode tokens/s, transformers fp32", f"{hf['decode_tps']:.1f}", "", "", ""),
        ]
    if ct2 and hf:
        ratios = e["ratios"]
        rows += [
            ("CTranslate2 vs transformers: whole request (prefill + decode)",
             f"{ratios['total']:.1f}× faster", "≥ 6×",
             verdict(ratios["total"], TARGETS["ct2_speedup"], True),
             (f"prefill {ratios['prefill']:.1f}×, decode {ratios['decode']:.1f}×; "
              f"same greedy first token in {e['same_first_token']}/{ct2['prompts']} prompts")),
        ]
    elif e.get("skipped"):
        rows.append(("CTranslate2 vs transformers", "not measured", "≥ 6×", "—", e["skipped"]))
    if c:
        rows += [
            ("Context + prompt (`prepare`) p50 / p95, session states",
             f"{format_ms(c['prepare_p50_ms'])} / {format_ms(c['prepare_p95_ms'])}", "", "",
             f"n={c['prepare_n']}, with the workspace index"),
            ("build_context p50 / p95, random cursors of the file",
             f"{format_ms(c['build_p50_ms'])} / {format_ms(c['build_p95_ms'])}", "", "",
             f"n={c['build_n']}"),
            ("Workspace index build", f"{c['index_s']:.2f} s", "", "",
             f"{c['index_files']} files, {c['index_chunks']} chunks"),
        ]
    if results.get("decode"):
        rows += _decode_module().render_rows(results["decode"])
    m = results.get("mining") or {}
    if m.get("commits"):
        rows.append(("Trainer mining (history → examples, server prompt builder)",
                     f"{m['commits_per_s']:.1f} commits/s", "", "",
                     (f"{m['commits']} commits of {m['repo']} → {m['examples']} examples in "
                      f"{m['seconds']:.1f} s ({m['examples_per_s']:.1f}/s)")))
    elif m.get("skipped"):
        rows.append(("Trainer mining", "not measured", "", "", m["skipped"]))
    env = results["environment"]
    made = (
        f"Made by `make bench` (`{results['command']}`) on {env['date']}: {env['cpu']}, "
        f"{env['cores']} cores, load average {env['load_before']} before the run; model "
        f"`{env['model']}` (CTranslate2 {env['ctranslate2']}, {env['compute_type']}, "
        f"{env['threads']} threads; transformers {env.get('transformers', '—')}, torch "
        f"{env.get('torch', '—')}). Typing session: {s['chars']} keystrokes into "
        f"`{s['function']}` of `{s['file']}` ({s['file_lines']} lines), each followed by an "
        f"automatic inline completion request (debounce {s['debounce_ms']} ms) answered before "
        "the next key."
    )
    lines = ["# Benchmark results", "", made, "",
             "| measure | value | target | | notes |", "|---|---|---|---|---|"]
    lines += [f"| {a} | {b} | {t} | {v} | {n} |" for a, b, t, v, n in rows]
    notes = (
        "Latencies are measured by the client (request sent → response read over stdio). "
        "Engine figures are per prompt with no cached prefix, greedy, the same token ids for "
        "both engines and a forced number of new tokens; the served engine additionally "
        "reuses the cached state of the unchanged prefix between keystrokes."
    )
    lines += ["", notes, ""]
    return "\n".join(lines)


# --- the LSP typing session ----------------------------------------------------------------

def peak_rss_mb(pid: int) -> tuple[float | None, str]:
    """Peak resident memory of a live process: VmHWM on Linux, else current RSS (psutil)."""
    try:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("VmHWM:"):
                return int(row.split()[1]) / 1024, "VmHWM (kernel high-water mark)"
    except OSError:
        pass
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss / 2**20, "psutil RSS at the end"
    except Exception:  # noqa: BLE001 - psutil missing or the process gone
        return None, "unavailable"


async def _status(client) -> dict:
    from lsprotocol import types

    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="repolsp.status", arguments=[]))


@dataclass
class ReplayHole:
    """A held-out hole of `lsp-eval`'s history task, replayed as an explicit request."""

    path: str
    text: str
    line: int
    character: int  # UTF-16 units, as LSP wants
    target: str


async def run_session(script: TypingScript, workspace: Path, model: str, engine: str,
                      threads: int, log_file: Path, holes: list[ReplayHole] | None = None) -> dict:
    """Replay the typing script (then the history holes) through the real server; returns
    latencies and server facts."""
    from lsprotocol import types
    from pygls.lsp.client import LanguageClient

    client = LanguageClient("repolsp-bench", "0.1")

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def _show(params):
        print(f"[server] {params.message}", file=sys.stderr)

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def _log(params):
        pass

    command = [sys.executable, "-m", "repolsp.server", "--engine", engine, "--log-file",
               str(log_file), "--log-level", "warning", "--threads", str(threads)]
    if model:
        command += ["--model", model]
    await client.start_io(*command)
    pid = client._server.pid  # pygls keeps the subprocess here; RSS is read from /proc
    capabilities = types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities()),
        window=types.WindowClientCapabilities(work_done_progress=False))
    await client.initialize_async(types.InitializeParams(
        capabilities=capabilities, root_uri=workspace.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name="bench")]))
    client.initialized(types.InitializedParams())
    deadline = time.monotonic() + STATUS_TIMEOUT_S
    status = await _status(client)
    while status.get("state") not in ("ready", "error") and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        status = await _status(client)
    if status.get("state") != "ready":
        await client.shutdown_async(None)
        client.exit(None)
        await _wait_exit(client)
        raise SystemExit(f"bench: model not ready: {status.get('error') or status.get('state')}")
    await asyncio.sleep(2.0)  # let the background workspace index finish on a small workspace

    uri = (workspace / script.path).as_uri()
    version = 1
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="python", version=version, text=script.text)))
    line, character = script.line, script.character
    all_ms, model_ms, cache_ms, empty_ms = [], [], [], []
    single_ms, multi_ms = [], []  # model requests by the shape of the answer
    states: list[tuple[int, int, int]] = []  # (keystroke index, line, character) at model calls
    before = await _status(client)
    for index, typed in enumerate(script.keystrokes):
        version += 1
        position = types.Position(line, character)
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            [types.TextDocumentContentChangePartial(
                range=types.Range(position, position), text=typed)]))
        line, character = advance(line, character, typed)
        started = time.perf_counter()
        result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line, character),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic)))
        latency = (time.perf_counter() - started) * 1000
        after = await _status(client)
        all_ms.append(latency)
        items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
        engine_calls = _engine_calls(after) - _engine_calls(before)
        if after["cacheHits"] > before["cacheHits"]:
            cache_ms.append(latency)
        elif engine_calls > 0 or after["modelLatencyMs"]["count"] > before["modelLatencyMs"]["count"]:
            model_ms.append(latency)
            states.append((index, line, character))
            shown = items[0].insert_text if items else ""
            shown = shown if isinstance(shown, str) else shown.value
            (multi_ms if "\n" in shown else single_ms).append(latency)
        else:
            empty_ms.append(latency)
        before = after
        del items
    typing_status = await _status(client)
    hole_ms, hole_exact = await _replay_holes(client, workspace, holes or [])
    rss_mb, rss_source = peak_rss_mb(pid)
    final = await _status(client)
    await client.shutdown_async(None)
    client.exit(None)
    await _wait_exit(client)
    return {
        "requests": len(all_ms), "model_requests": len(model_ms), "cache_hits": len(cache_ms),
        "no_model_requests": len(empty_ms),
        "cache_hit_rate": len(cache_ms) / len(all_ms) if all_ms else 0.0,
        "all_p50_ms": percentile(all_ms, 50), "all_p95_ms": percentile(all_ms, 95),
        "model_p50_ms": percentile(model_ms, 50), "model_p95_ms": percentile(model_ms, 95),
        "cache_p50_ms": percentile(cache_ms, 50),
        "model_single_line_p50_ms": percentile(single_ms, 50), "model_single_line_n": len(single_ms),
        "model_multi_line_p50_ms": percentile(multi_ms, 50), "model_multi_line_n": len(multi_ms),
        "history_holes": len(hole_ms), "history_p50_ms": percentile(hole_ms, 50),
        "history_p95_ms": percentile(hole_ms, 95),
        "history_exact_match": (sum(hole_exact) / len(hole_exact)) if hole_exact else None,
        "peak_rss_mb": rss_mb or 0.0, "rss_source": rss_source,
        "server_status": {k: typing_status.get(k) for k in (
            "latencyMs", "modelLatencyMs", "cacheHitRate", "requests", "cancelled", "superseded",
            "engineStats", "model")},
        "debounce_ms": final.get("config", {}).get("debounceMs"),
        "model_states": states,
        "all_ms": [round(v, 1) for v in all_ms],
    }


async def _replay_holes(client, workspace: Path, holes: list[ReplayHole]
                        ) -> tuple[list[float], list[bool]]:
    """Open each hole's file, ask once (explicit trigger: no debounce), close it."""
    from lsprotocol import types
    from repolsp.trainer.eval.metrics import normalize

    latencies, exact = [], []
    for number, hole in enumerate(holes):
        uri = (workspace / "history-holes" / str(number) / hole.path).as_uri()
        client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(
            uri=uri, language_id="", version=1, text=hole.text)))
        started = time.perf_counter()
        result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(hole.line, hole.character),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
        latencies.append((time.perf_counter() - started) * 1000)
        items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
        shown = items[0].insert_text if items else ""
        shown = shown if isinstance(shown, str) else shown.value
        exact.append(normalize(shown) == normalize(hole.target))
        client.text_document_did_close(types.DidCloseTextDocumentParams(
            types.TextDocumentIdentifier(uri=uri)))
    return latencies, exact


def history_holes(repo: Path, count: int, seed: int = 0) -> tuple[list[ReplayHole], str]:
    """`lsp-eval`'s history holes of repo as LSP requests; ([], reason) when there are none."""
    from repolsp.server.context.document import Document
    from repolsp.trainer.eval.holes import EvalError
    from repolsp.trainer.eval.task_history import history_items

    if count <= 0:
        return [], "not asked for"
    try:
        items, facts = history_items(repo, count, seed)
    except EvalError as exc:
        return [], str(exc)
    holes = []
    for item in items:
        line, character = Document("file:///hole", item.text, None, path=item.path).position_at(
            item.offset)
        holes.append(ReplayHole(item.path, item.text, line, character, item.target))
    return holes, f"{Path(facts['repo']).name}, {facts['held_out_commits']} held-out commits"


async def _wait_exit(client, timeout_s: float = 10.0) -> None:
    """Reap the server before the event loop closes (else asyncio warns at interpreter exit)."""
    process = getattr(client, "_server", None)
    if process is None:
        return
    try:
        await asyncio.wait_for(process.wait(), timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
    await client.stop()


def _engine_calls(status: dict) -> int:
    stats = status.get("engineStats") or {}
    return int(stats.get("prefixCacheHits", 0)) + int(stats.get("prefixCacheMisses", 0)) + int(
        stats.get("calls", 0))


def replay_text(script: TypingScript, keystroke_index: int) -> tuple[str, int]:
    """The document text and cursor offset after keystrokes[0..keystroke_index]."""
    lines = script.text.split("\n")
    offset = sum(len(line) + 1 for line in lines[: script.line]) + script.character
    typed = "".join(script.keystrokes[: keystroke_index + 1])
    return script.text[:offset] + typed + script.text[offset:], offset + len(typed)


# --- engines -------------------------------------------------------------------------------

def engine_comparison(entry, prompts: list[str], threads: int, new_tokens: int,
                      with_transformers: bool) -> dict:
    """CTranslate2 (as served) against transformers fp32 on the same token ids."""
    import ctranslate2
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(entry.hf_dir / "tokenizer.json"))
    encoded = [tokenizer.encode(p, add_special_tokens=True) for p in prompts]
    if entry.manifest.max_prompt_tokens:
        cap = entry.manifest.max_prompt_tokens
        encoded = [(e.ids[:1] + e.ids[-(cap - 1):], e.tokens[:1] + e.tokens[-(cap - 1):])
                   if len(e.ids) > cap else (e.ids, e.tokens) for e in encoded]
    else:
        encoded = [(e.ids, e.tokens) for e in encoded]
    generator = ctranslate2.Generator(str(entry.ct2_dir), device="cpu", compute_type="auto",
                                      intra_threads=threads)
    ct2_runs = []
    _, warm_tokens = encoded[0]
    list(generator.generate_tokens(warm_tokens, max_length=2, sampling_topk=1))
    for _, tokens in encoded:
        started = time.perf_counter()
        first_ms, ids = None, []
        for step in generator.generate_tokens(tokens, max_length=new_tokens, min_length=new_tokens,
                                              sampling_topk=1):
            if first_ms is None:
                first_ms = (time.perf_counter() - started) * 1000
            ids.append(step.token_id)
        total_ms = (time.perf_counter() - started) * 1000
        ct2_runs.append({"prompt_tokens": len(tokens), "ttft_ms": first_ms, "total_ms": total_ms,
                         "new_tokens": len(ids), "first_id": ids[0] if ids else None})
    compute_type = generator.compute_type
    del generator
    result = {"new_tokens": new_tokens, "ctranslate2": _engine_summary(ct2_runs),
              "compute_type": compute_type}
    if not with_transformers:
        result["skipped"] = "--no-transformers"
        return result
    try:
        import torch
        from transformers import AutoModelForCausalLM
    except ImportError as exc:
        result["skipped"] = f"transformers unavailable: {exc}"
        return result
    if not (entry.hf_dir / "config.json").is_file() or not any(entry.hf_dir.glob("*.safetensors")):
        result["skipped"] = f"no transformers weights in {entry.hf_dir}"
        return result
    import warnings

    from transformers.utils import logging as hf_logging

    warnings.filterwarnings("ignore", category=FutureWarning)  # cache-argument renames
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(threads)
    model = AutoModelForCausalLM.from_pretrained(str(entry.hf_dir), dtype=torch.float32)
    model.eval()
    hf_runs = []
    with torch.inference_mode():
        model(torch.tensor([encoded[0][0][:8]]))  # warm-up
        for ids, _ in encoded:
            started = time.perf_counter()
            out = model(torch.tensor([ids]), use_cache=True)
            token = out.logits[0, -1].argmax()
            first_ms = (time.perf_counter() - started) * 1000
            first_id = int(token)
            for _ in range(new_tokens - 1):
                out = model(token.view(1, 1), use_cache=True, **_kv_cache_argument(out))
                token = out.logits[0, -1].argmax()
            total_ms = (time.perf_counter() - started) * 1000
            hf_runs.append({"prompt_tokens": len(ids), "ttft_ms": first_ms, "total_ms": total_ms,
                            "new_tokens": new_tokens, "first_id": first_id})
    del model
    result["transformers"] = _engine_summary(hf_runs)
    ct2, hf = result["ctranslate2"], result["transformers"]
    result["ratios"] = {
        "prefill": hf["ttft_p50_ms"] / ct2["ttft_p50_ms"],
        "decode": ct2["decode_tps"] / hf["decode_tps"],
        "total": hf["total_p50_ms"] / ct2["total_p50_ms"],
    }
    result["same_first_token"] = sum(a["first_id"] == b["first_id"]
                                     for a, b in zip(ct2_runs, hf_runs))
    return result


def _kv_cache_argument(output) -> dict:
    """The previous step's KV cache as the next forward's keyword: transformers 5 returns and
    takes `cache`; 4.x used `past_key_values` (without it every step would lose its context)."""
    keys = output.keys()
    if "cache" in keys:
        return {"cache": output["cache"]}
    if "past_key_values" in keys:
        return {"past_key_values": output["past_key_values"]}
    raise RuntimeError("the transformers model returned no KV cache")


def _engine_summary(runs: list[dict]) -> dict:
    prefill_s = sum(r["ttft_ms"] for r in runs) / 1000
    decode_s = sum(r["total_ms"] - r["ttft_ms"] for r in runs) / 1000
    decoded = sum(r["new_tokens"] - 1 for r in runs)
    return {
        "prompts": len(runs),
        "prompt_tokens_mean": statistics.fmean(r["prompt_tokens"] for r in runs),
        "ttft_p50_ms": percentile([r["ttft_ms"] for r in runs], 50),
        "total_p50_ms": percentile([r["total_ms"] for r in runs], 50),
        "prompt_tps": sum(r["prompt_tokens"] for r in runs) / prefill_s if prefill_s else 0.0,
        "decode_tps": decoded / decode_s if decode_s else 0.0,
        "runs": runs,
    }


# --- context stage -------------------------------------------------------------------------

def context_figures(script: TypingScript, workspace: Path, states: list, entry, threads: int,
                    engine_kind: str) -> tuple[dict, list[str]]:
    """prepare_prompt() on the session's model states (with the workspace index), build_context at
    random cursors, and the index build; also returns the prompts of those states."""
    from repolsp.models.prompt import template_for
    from repolsp.server.config import Config
    from repolsp.server.context.document import Document
    from repolsp.server.context.evaluate import context_latency_ms, index_repository
    from repolsp.server.prepare import StableContextCache, prepare_prompt

    if engine_kind == "fake" or entry is None:
        from repolsp.server.engine.fake import FakeEngine

        engine, template, cap = FakeEngine(), template_for(None), None
    else:
        from repolsp.server.engine.ct2 import CT2Engine

        engine = CT2Engine(entry.ct2_dir, entry.hf_dir, threads=threads)
        template, cap = template_for(entry.manifest.fim_template), entry.manifest.max_prompt_tokens
    with tempfile.TemporaryDirectory(prefix="repolsp-bench-index-") as data_dir:
        index, index_facts = index_repository(workspace, Path(data_dir))
    budget_tokens = min(Config().context_budget_tokens, cap) if cap else Config().context_budget_tokens
    stable = StableContextCache()  # kept across the session's states, as the server keeps it
    prepare_ms, prompts = [], []
    for keystroke_index, _, _ in states:
        text, offset = replay_text(script, keystroke_index)
        doc = Document((workspace / script.path).as_uri(), text, "python", path=script.path)
        started = time.perf_counter()
        _, prompt, _ = prepare_prompt(doc, offset, index, template, engine.count_tokens, budget_tokens,
                                      stable)
        prepare_ms.append((time.perf_counter() - started) * 1000)
        if prompt is not None:
            prompts.append(prompt.text)
    doc = Document((workspace / script.path).as_uri(), script.text, "python", path=script.path)
    build = context_latency_ms(doc, index, engine.count_tokens, cursors=100, seed=0)
    figures = {
        "prepare_p50_ms": percentile(prepare_ms, 50), "prepare_p95_ms": percentile(prepare_ms, 95),
        "prepare_n": len(prepare_ms),
        "build_p50_ms": build.get("p50_ms", build.get("p50")),
        "build_p95_ms": build.get("p95_ms", build.get("p95")),
        "build_n": 100,
        "index_s": index_facts["seconds"], "index_files": index_facts["files"],
        "index_chunks": index_facts["chunks"],
    }
    return figures, prompts


def mining_figures(repo: Path, entry, max_commits: int) -> dict:
    """The trainer's first stage (git history -> examples through the server's prompt builder)
    on the newest commits of repo: commits/s and examples/s."""
    from repolsp.trainer.errors import TrainerError
    from repolsp.trainer.mine import MineConfig, mine_repository
    from repolsp.trainer.pipeline import make_renderer

    tokenizer = None
    if entry is not None:
        from tokenizers import Tokenizer

        raw = Tokenizer.from_file(str(entry.hf_dir / "tokenizer.json"))

        def tokenizer(text, add_special_tokens=False):
            return {"input_ids": raw.encode(text, add_special_tokens=add_special_tokens).ids}

    renderer = make_renderer(entry, None, tokenizer)
    started = time.perf_counter()
    try:
        result = mine_repository(repo, renderer, MineConfig(max_commits=max_commits))
    except TrainerError as exc:
        return {"skipped": str(exc)}
    seconds = time.perf_counter() - started
    return {"commits": result.stats.commits, "examples": len(result.examples),
            "seconds": seconds, "commits_per_s": result.stats.commits / seconds,
            "examples_per_s": len(result.examples) / seconds, "repo": repo.name}


def spread(values: list, count: int) -> list:
    """Up to `count` values evenly spaced over the list (first and last included)."""
    if len(values) <= count:
        return list(values)
    step = (len(values) - 1) / (count - 1)
    return [values[round(i * step)] for i in range(count)]


# --- main ----------------------------------------------------------------------------------

def default_file() -> tuple[Path, str]:
    """(workspace source folder, file inside it): pygls' JSON-RPC module, 500+ lines."""
    import pygls

    package = Path(pygls.__file__).resolve().parent
    return package, "protocol/json_rpc.py"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="", help="model name (default: the store's default)")
    parser.add_argument("--engine", default="ct2", choices=("ct2", "fake"),
                        help="fake: a smoke run of the harness without a model")
    parser.add_argument("--max-chars", type=int, default=160, help="keystrokes to replay")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (default: the server's, half the CPUs)")
    parser.add_argument("--new-tokens", type=int, default=32, help="tokens per engine prompt")
    parser.add_argument("--engine-prompts", type=int, default=4, help="prompts for the engines")
    parser.add_argument("--history-repo", type=Path, default=HERE.parent,
                        help="git repository whose held-out holes are replayed (default: this one)")
    parser.add_argument("--history-holes", type=int, default=20,
                        help="history holes to replay over the LSP (0 = none)")
    parser.add_argument("--mine-commits", type=int, default=30,
                        help="newest commits of --history-repo the trainer mines (0 = skip)")
    parser.add_argument("--no-transformers", action="store_true",
                        help="skip the transformers fp32 comparison")
    parser.add_argument("--no-decode", action="store_true",
                        help="skip bench/decode.py (trimmed vs full decode, llama.cpp, memory)")
    parser.add_argument("--no-llama-cpp", action="store_true", help="skip the llama.cpp anchor")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--json", type=Path, default=HERE / "results.json")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from repolsp.server.engine.ct2 import default_threads

    threads = args.threads or default_threads()
    entry, model_name = None, "fake"
    if args.engine == "ct2":
        from repolsp.models.errors import ModelError
        from repolsp.models.pull import DEFAULT_MODEL
        from repolsp.models.store import ModelStore

        store = ModelStore()
        model_name = args.model or store.default_name() or DEFAULT_MODEL
        try:
            entry = store.get(model_name)
        except ModelError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 2
    load_before = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    source_dir, rel = default_file()
    with tempfile.TemporaryDirectory(prefix="repolsp-bench-") as tmp:
        workspace = Path(tmp) / "workspace"
        shutil.copytree(source_dir, workspace / source_dir.name,
                        ignore=shutil.ignore_patterns("__pycache__"))
        rel_path = f"{source_dir.name}/{rel}"
        source = (workspace / rel_path).read_text(encoding="utf-8")
        script = typing_script(source, rel_path, args.max_chars)
        (workspace / rel_path).write_text(script.text, encoding="utf-8")
        holes, hole_source = history_holes(args.history_repo, args.history_holes)
        print(f"bench: typing {len(script.keystrokes)} keystrokes into {script.function}() of "
              f"{rel_path} with {model_name}, then {len(holes)} history holes…", file=sys.stderr)
        session = asyncio.run(run_session(script, workspace, args.model if entry else "",
                                          args.engine, threads, Path(tmp) / "server.log", holes))
        session["history_source"] = hole_source
        session.update(file=rel_path, file_lines=source.count("\n") + 1, function=script.function,
                       chars=len(script.keystrokes))
        print("bench: context stage…", file=sys.stderr)
        states = session["model_states"] or [(len(script.keystrokes) - 1, 0, 0)]
        context, prompts = context_figures(script, workspace, states, entry, threads, args.engine)
        decode = {}
        if entry is not None and prompts and not args.no_decode:
            decode = _decode_module().figures(entry, spread(prompts, args.engine_prompts), threads,
                                              workspace, workspace / rel_path,
                                              llama_cpp=not args.no_llama_cpp)
    print("bench: trainer mining…", file=sys.stderr)
    mining = (mining_figures(args.history_repo, entry, args.mine_commits)
              if args.mine_commits > 0 else {})
    engines: dict = {}
    if entry is not None and prompts:
        print("bench: CTranslate2 vs transformers…", file=sys.stderr)
        engines = engine_comparison(entry, spread(prompts, args.engine_prompts), threads,
                                    args.new_tokens, not args.no_transformers)
    import ctranslate2

    environment = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": _cpu_name(), "cores": os.cpu_count(), "load_before": load_before,
        "model": model_name, "ctranslate2": ctranslate2.__version__,
        "compute_type": engines.get("compute_type", "—"), "threads": threads,
        "python": platform.python_version(),
    }
    for name in ("transformers", "torch"):
        try:
            environment[name] = __import__(name).__version__
        except ImportError:
            pass
    command = "python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    results = {"command": command.strip(), "environment": environment, "session": session,
               "engines": engines, "context": context, "mining": mining, "decode": decode}
    args.out.write_text(render_results(results), encoding="utf-8")
    args.json.write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    print(render_results(results))
    print(f"bench: wrote {args.out} and {args.json}", file=sys.stderr)
    return 0


def _decode_module():
    """bench/decode.py (bench/ is scripts, not a package)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import decode

    return decode


def _cpu_name() -> str:
    try:
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                return row.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    sys.exit(main())
