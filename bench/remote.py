"""Inline-completion latency through the `openai` engine (llama-cpp-python's server on loopback,
the default model's GGUF) beside the in-process CTranslate2 engine, on the same prompts.

Holes: lines of a source file cut after their first third, the rest of the file kept as the
suffix. Each hole's prompt is built once the way the server builds it (`prepare_prompt` with the
workspace index of this repository's server/ folder and the served model's tokenizer), with the
server's generation request (limits, stop strings, the single-/multi-line stop rule). Both
engines get exactly that request, alternating which goes first, same thread count.
Reported: medians of the generation wall time (what an inline completion waits for beyond the
prompt building both share) and of the time to the first token, their ratios, and how often the
two greedy texts agree (Q4_K_M llama.cpp against CTranslate2 int8 of the trimmed model: not the
same weights, so they need not). The timings include the HTTP round trip, the server's
tokenization and its SSE framing: what the `openai` engine adds is in the difference.

    python bench/remote.py [--holes 24] [--rounds 2] [--threads 2] [--llama-threads N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def holes(path: Path, count: int, seed: int) -> list[tuple[str, int]]:
    """(document text, cursor offset) for `count` lines cut after their first third."""
    text = path.read_text()
    starts, offset = [], 0
    for line in text.splitlines(keepends=True):
        body = line.strip()
        if len(body) >= 24 and not body.startswith(("#", '"', "'")):
            starts.append((offset, line))
        offset += len(line)
    chosen = random.Random(seed).sample(starts, min(count, len(starts)))
    out = []
    for start, line in sorted(chosen):
        indent = len(line) - len(line.lstrip())
        cut = start + indent + (len(line.rstrip("\n")) - indent) // 3
        end = start + len(line.rstrip("\n"))
        out.append((text[:cut] + text[end:], cut))
    return out


def requests_for(entry, engine, source: Path, count: int, seed: int):
    """The server's generation requests at each hole (prompts built with the served tokenizer)."""
    from repolsp.models.prompt import template_for
    from repolsp.server.completion import generation_request
    from repolsp.server.config import Config
    from repolsp.server.context.document import Document
    from repolsp.server.context.index import WorkspaceIndex
    from repolsp.server.prepare import prepare_prompt, prompt_budget_tokens

    config = Config()
    template = template_for(entry.manifest.fim_template)
    budget = prompt_budget_tokens(config.context_budget_tokens, entry.manifest.max_prompt_tokens)
    index = WorkspaceIndex([REPO / "server"], data_dir=Path(tempfile.mkdtemp(prefix="repolsp-remote-")))
    index.build()
    out = []
    for text, offset in holes(source, count, seed):
        doc = Document(source.as_uri(), text, "python", 1, path=source.relative_to(REPO).as_posix())
        decision, prompt, _ = prepare_prompt(doc, offset, index, template, engine.count_tokens, budget)
        if prompt is not None:
            out.append(generation_request(config, decision, prompt))
    return out


def timed(engine, request) -> dict:
    started = time.perf_counter()
    result = engine.generate(request)
    return {"ms": (time.perf_counter() - started) * 1000, "first_ms": result.first_token_ms,
            "text": result.text, "tokens": result.new_tokens, "finish": result.finish_reason}


def median(values):
    return statistics.median(values) if values else None


def run(args) -> dict:
    from repolsp.models.store import ModelStore
    from repolsp.server.engine.ct2 import CT2Engine
    from repolsp.server.engine.openai import OpenAIEngine

    from tests.lsp.openai_servers import LlamaServer, default_gguf

    store = ModelStore()
    entry = store.get(store.default_name() or "gemma3-270m")
    local = CT2Engine(entry.ct2_dir, entry.hf_dir, model_name=entry.name, threads=args.threads)
    gguf = default_gguf(store.home)
    log_path = Path(tempfile.mkdtemp(prefix="repolsp-remote-")) / "llama.log"
    server = LlamaServer(gguf, log_path, threads=args.llama_threads or args.threads)
    try:
        server.wait_ready()
        remote = OpenAIEngine(server.endpoint, "gemma3-270m", timeout_s=120)
        requests = requests_for(entry, local, REPO / args.source, args.holes, args.seed)
        engines = {"ct2": local, "openai": remote}
        for request in requests[:2]:  # warm-up: first loads, caches, connections
            for engine in engines.values():
                engine.generate(request)
        rows = {name: [] for name in engines}
        agree = 0
        load_before = os.getloadavg()
        for round_index in range(args.rounds):
            for index, request in enumerate(requests):
                order = list(engines) if (index + round_index) % 2 == 0 else list(engines)[::-1]
                texts = {}
                for name in order:
                    row = timed(engines[name], request)
                    rows[name].append(row)
                    texts[name] = row["text"]
                agree += round_index == 0 and texts["ct2"] == texts["openai"]
        load_after = os.getloadavg()
    finally:
        server.stop()
        local.close()
    summary = {name: {"p50_ms": median([r["ms"] for r in data]),
                      "first_token_p50_ms": median([r["first_ms"] for r in data if r["first_ms"]]),
                      "new_tokens_mean": statistics.mean(r["tokens"] for r in data),
                      "requests": len(data)}
               for name, data in rows.items()}
    return {
        "source": args.source, "holes": len(requests), "rounds": args.rounds, "threads": args.threads,
        "llama_threads": args.llama_threads or args.threads,
        "prompt_chars_mean": statistics.mean(len(r.prompt) for r in requests),
        "prompt_tokens_mean": statistics.mean(local.count_tokens(r.prompt) for r in requests),
        "engines": summary,
        "ratio_p50": summary["openai"]["p50_ms"] / summary["ct2"]["p50_ms"],
        "ratio_first_token_p50": summary["openai"]["first_token_p50_ms"] / summary["ct2"]["first_token_p50_ms"],
        "same_text": agree, "load_before": load_before, "load_after": load_after,
        "llama_cpp_python": _version("llama_cpp_python"), "model": entry.name, "gguf": gguf.name,
        "rows": rows,
    }


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def render(d: dict) -> str:
    ct2, remote = d["engines"]["ct2"], d["engines"]["openai"]
    load = " / ".join(f"{a:.1f}" for a in d["load_before"])
    return "\n".join([
        (f"{d['holes']} holes of `{d['source']}` x {d['rounds']} rounds, alternating; "
         f"prompts {d['prompt_tokens_mean']:.0f} tokens ({d['prompt_chars_mean']:.0f} chars) on average; "
         f"CTranslate2 {d['threads']} threads, llama.cpp {d['llama_threads']}; load average before {load}."),
        "",
        "| engine | generation p50 | first token p50 | new tokens (mean) |",
        "|---|---|---|---|",
        (f"| ct2 (in process, {d['model']} int8) | {ct2['p50_ms']:.0f} ms | {ct2['first_token_p50_ms']:.0f} ms "
         f"| {ct2['new_tokens_mean']:.1f} |"),
        (f"| openai → llama-cpp-python {d['llama_cpp_python']} server on loopback ({d['gguf']}, Q4_K_M) "
         f"| {remote['p50_ms']:.0f} ms | {remote['first_token_p50_ms']:.0f} ms | {remote['new_tokens_mean']:.1f} |"),
        f"| ratio openai / ct2 | {d['ratio_p50']:.2f}x | {d['ratio_first_token_p50']:.2f}x | |",
        "",
        f"Same greedy text on {d['same_text']} of {d['holes']} prompts (different weights: Q4_K_M vs int8).",
    ])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="server/completion.py")
    parser.add_argument("--holes", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="CTranslate2's threads (and llama.cpp's)")
    parser.add_argument("--llama-threads", type=int, default=0,
                        help="llama.cpp's threads when not --threads (on a loaded 2-core machine its "
                             "2-thread decode is several times slower than 1: bench/RESULTS.md)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    result = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
