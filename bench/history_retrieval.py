"""History retrieval and re-ranking, on and off, on the same held-out lines (issue 21 items 1, 3).

    python bench/history_retrieval.py REPO [--holes 200] [--model NAME] [--json out.json]

REPO is a clone of a real repository, used in place. The held-out items are `lsp-eval`'s
history holes (lines and short spans the newest 10% of commits added, in the file as of their
commit) but *without* its rule that drops lines the older code already holds: those are the
lines history retrieval exists for. Every prompt is built as of the held-out commits: the
workspace index holds the tree before them (`training_index`), the history index the commits
strictly before the oldest of them (`HistoryIndex.from_git(until=...)`; the run stops if any
held-out commit is in it). Per item and configuration:

- ``off``: the server's prompt without history (today's default before this change);
- ``lines``: line-level retrieval from the working tree only (`HistoryIndex.empty()`);
- ``on``: line-level retrieval with the git history;
- ``on+rerank``: ``on``, then `rerank.rerank_line` over repository lines starting with the
  typed head (single-line holes).

Reports exact match with the paired 95% interval of each against ``off``, exact match split by
where the expected lines were (in the ``off`` prompt / elsewhere in the repository or its
history / new), and medians of prompt-building and scoring time. The machine is shared: the load
average is printed; compare figures of the same run only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from repolsp.models.prompt import template_for
from repolsp.models.store import ModelStore
from repolsp.server.completion import generation_request
from repolsp.server.config import Config
from repolsp.server.context.document import Document
from repolsp.server.context.history import HistoryIndex
from repolsp.server.engine.ct2 import CT2Engine
from repolsp.server.postprocess import postprocess, syntax_check
from repolsp.server.prepare import StableContextCache, prepare_prompt, prompt_budget_tokens
from repolsp.server.rerank import rerank_line
from repolsp.trainer.eval import task_history
from repolsp.trainer.eval.metrics import normalize, paired_bootstrap_ci
from repolsp.trainer.eval.runner import training_index


def held_out_items(repo: Path, holes: int, seed: int):
    """lsp-eval's history items with the seen-in-training filter off (see the docstring)."""
    original = task_history.load_training_split
    task_history.load_training_split = lambda *args: task_history.TrainingSplit()
    try:
        items, facts = task_history.history_items(repo, holes, seed=seed)
    finally:
        task_history.load_training_split = original
    return items, facts


def code_lines(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.strip()]


def source_of(item, off_ctx, known: set[str]) -> str:
    """prompt: every expected line is in the off prompt; history: all in the repository's tree
    or history as of the held-out commits; new: otherwise."""
    wanted = code_lines(item.target if item.kind == "span" else
                        item.text[:item.offset].rsplit("\n", 1)[-1] + item.target)
    shown = set()
    if off_ctx is not None:
        shown.update(code_lines(off_ctx.prefix) + code_lines(off_ctx.suffix))
        for snippet in off_ctx.snippets:
            shown.update(code_lines(snippet.text))
    if wanted and all(line in shown for line in wanted):
        return "prompt"
    if wanted and all(line in known for line in wanted):
        return "history"
    return "new"


_OUTPUTS: dict[tuple, tuple] = {}  # (prompt, limits) -> (raw text, finish, ms): equal prompts run once


def complete(engine, template, config, item, workspace, history, budget_tokens):
    doc = Document(Path("/eval", item.path).as_uri(), item.text, None, path=item.path)
    started = time.perf_counter()
    decision, prompt, ctx = prepare_prompt(doc, item.offset, workspace, template, engine.count_tokens,
                                           budget_tokens, StableContextCache(), history)
    prepare_ms = (time.perf_counter() - started) * 1000
    if prompt is None:
        return {"text": "", "prepare_ms": prepare_ms}, None, None, doc
    request = generation_request(config, decision, prompt)
    key = (prompt.text, request.max_new_tokens, decision.mode.value, decision.block_indent)
    if key not in _OUTPUTS:
        result = engine.generate(request, None)
        _OUTPUTS[key] = (result.text, result.finish_reason, result.total_ms)
    raw, finish, engine_ms = _OUTPUTS[key]
    text = postprocess(raw, decision.mode, ctx.suffix, decision.block_indent,
                       finish_reason=finish, adds_error=syntax_check(doc, item.offset))
    return ({"text": text, "prepare_ms": prepare_ms, "engine_ms": engine_ms,
             "snippets": [s.kind for s in ctx.snippets]}, prompt, ctx, doc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--holes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-commits", type=int, default=400)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--configs", default="off,lines,on",
                        help="comma-separated: off, lines, on (off always runs: the baseline)")
    parser.add_argument("--coverage-only", action="store_true",
                        help="no model runs: how often each prompt shows the expected lines")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}", file=sys.stderr)

    repo = args.repo.resolve()
    items, facts = held_out_items(repo, args.holes, args.seed)
    split = task_history.history_split(repo)
    oldest = split.held_out[-1].sha
    history = HistoryIndex.from_git(repo, until=oldest, max_commits=args.max_commits)
    leaked = {c.sha for c in split.held_out} & history.shas
    if leaked:
        raise SystemExit(f"held-out commits in the history index: {sorted(leaked)[:3]}")
    folder = Path(tempfile.mkdtemp(prefix="history-bench-"))
    workspace, index_facts = training_index(repo, split.training_rev, folder)
    known = set(task_history.load_training_split(repo, split.training_rev,
                                                 task_history.supported_extensions()).lines)
    known.update(history._line_counts)  # lines the indexed commits added

    if args.coverage_only:
        print(json.dumps(coverage(items, workspace, history, known), indent=1))
        return 0
    store = ModelStore()
    name = args.model or store.default_name()
    entry = store.get(name)
    engine = CT2Engine(entry.ct2_dir, entry.hf_dir, model_name=name, threads=args.threads)
    template = template_for(entry.manifest.fim_template)
    config = Config()
    budget_tokens = prompt_budget_tokens(config.context_budget_tokens, entry.manifest.max_prompt_tokens)
    wanted = {"off", *args.configs.split(",")}
    configs = {label: hist for label, hist in
               {"off": None, "lines": HistoryIndex.empty(), "on": history}.items() if label in wanted}

    rows = []
    for number, item in enumerate(items, 1):
        row = {"id": item.id, "kind": item.kind, "target": item.target}
        off_ctx = None
        for label, hist in configs.items():
            out, prompt, ctx, doc = complete(engine, template, config, item, workspace, hist, budget_tokens)
            out["exact"] = float(normalize(out["text"]) == normalize(item.target))
            row[label] = out
            if label == "off":
                off_ctx = ctx
            if label == "on":
                reranked = (rerank_line(engine, prompt.text, doc, item.offset, ctx, out["text"],
                                        workspace, hist) if prompt is not None else None)
                text = reranked.text if reranked else out["text"]
                row["on+rerank"] = {"text": text, "exact": float(normalize(text) == normalize(item.target)),
                                    "score_ms": reranked.score_ms if reranked else 0.0,
                                    "candidates": reranked.candidates if reranked else [],
                                    "scores": reranked.scores if reranked else [],
                                    "candidate_exact": [normalize(c) == normalize(item.target)
                                                        for c in (reranked.candidates if reranked else [])]}
        row["source"] = source_of(item, off_ctx, known)
        rows.append(row)
        if number % 10 == 0:
            hits = {k: sum(r[k]["exact"] for r in rows) for k in (*configs, "on+rerank")}
            print(f"{number}/{len(items)} {hits}", file=sys.stderr)

    summary = summarize(rows, [*configs, "on+rerank"] if "on" in configs else list(configs))
    summary.update({"repo": str(repo), "model": name, "facts": facts, "index": index_facts,
                    "history_commits": len(history), "history_pieces": history.piece_count(),
                    "load_after": os.getloadavg()})
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    return 0


def coverage(items, workspace, history, known) -> dict:
    """Per configuration and source: the share of items whose expected lines the prompt shows
    (Gemma's tokenizer is not needed for this: the server's approximate count stands in)."""
    from repolsp.server.context.build import approx_token_count

    template = template_for(None)
    configs = {"off": None, "lines": HistoryIndex.empty(), "on": history}
    counts: dict = {}
    for item in items:
        doc = Document(Path("/eval", item.path).as_uri(), item.text, None, path=item.path)
        contexts = {label: prepare_prompt(doc, item.offset, workspace, template, approx_token_count,
                                          512, StableContextCache(), hist)[2]
                    for label, hist in configs.items()}
        source = source_of(item, contexts["off"], known)
        for label, ctx in contexts.items():
            shown = source_of(item, ctx, set()) == "prompt"
            bucket = counts.setdefault(source, {}).setdefault(label, [0, 0])
            bucket[0] += shown
            bucket[1] += 1
    return {source: {label: f"{a}/{b}" for label, (a, b) in row.items()} for source, row in counts.items()}


def summarize(rows: list[dict], labels: list[str]) -> dict:
    """Exact match per configuration, paired intervals against off, the split by source, times."""
    out = {"n": len(rows), "exact": {}, "vs_off": {}, "by_source": {}, "median_ms": {}}
    base = [r["off"]["exact"] for r in rows]
    for label in labels:
        values = [r[label]["exact"] for r in rows]
        out["exact"][label] = statistics.fmean(values) if values else None
        if label != "off":
            out["vs_off"][label] = paired_bootstrap_ci(base, values)
    for source in ("prompt", "history", "new"):
        group = [r for r in rows if r["source"] == source]
        out["by_source"][source] = {"n": len(group), **{
            label: statistics.fmean(r[label]["exact"] for r in group) if group else None for label in labels}}
    for label in ("off", "lines", "on"):
        if rows and label in rows[0]:
            out["median_ms"][f"prepare_{label}"] = statistics.median(r[label]["prepare_ms"] for r in rows)
    scored = [r["on+rerank"]["score_ms"] for r in rows if r["on+rerank"]["candidates"]]
    out["rerank"] = {"items_with_candidates": len(scored),
                     "median_score_ms_when_scored": statistics.median(scored) if scored else None,
                     "changed": sum(r["on+rerank"]["text"] != r["on"]["text"] for r in rows),
                     "a_candidate_was_right": sum(any(r["on+rerank"]["candidate_exact"]) for r in rows)}
    engine_ms = [r["on"].get("engine_ms", 0.0) + r["on+rerank"]["score_ms"] for r in rows]
    out["median_ms"]["engine_on"] = statistics.median(r["on"].get("engine_ms", 0.0) for r in rows)
    out["median_ms"]["engine_on_plus_rerank"] = statistics.median(engine_ms)
    return out


if __name__ == "__main__":
    sys.exit(main())
