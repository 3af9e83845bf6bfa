"""A whole run: build the items once, ask every model through the server's stages, score each answer."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from repolsp.server.completion import generation_request
from repolsp.server.config import Config
from repolsp.server.context.document import Document
from repolsp.server.context.index import WorkspaceIndex
from repolsp.server.engine.base import GenerationResult
from repolsp.server.postprocess import postprocess, syntax_check
from repolsp.server.prepare import StableContextCache, prepare_prompt, prompt_budget_tokens
from repolsp.trainer.eval.cache import OutputCache
from repolsp.trainer.eval.holes import EvalError, EvalItem
from repolsp.trainer.eval.loading import Completion, LoadedModel
from repolsp.trainer.eval.metrics import (
    edit_similarity,
    first_line,
    normalize,
    python_parses,
    text_similarity,
)
from repolsp.trainer.eval.options import TASKS, EvalOptions
from repolsp.trainer.eval.reports import summarize
from repolsp.trainer.eval.task_docstring import complete_docstring, docstring_items
from repolsp.trainer.eval.task_history import history_items
from repolsp.trainer.eval.task_humaneval import humaneval_fill, humaneval_items, humaneval_passes
from repolsp.trainer.eval.task_tests import complete_tests, export_tree, tests_items


@dataclass
class Asker:
    """The server's completion stages bound to one model and (optionally) a workspace index:
    `prepare.prepare_prompt` with the model's template and budget, then `generation_request`."""

    model: LoadedModel
    workspace: object | None = None
    config: Config = field(default_factory=Config)
    stable: StableContextCache = field(default_factory=StableContextCache)  # as the server keeps one

    def prepare(self, doc: Document, offset: int):
        budget_tokens = prompt_budget_tokens(self.config.context_budget_tokens, self.model.max_prompt_tokens)
        return prepare_prompt(doc, offset, self.workspace, self.model.template, self.model.engine.count_tokens,
                              budget_tokens, self.stable)


def training_index(repo: Path, rev: str | None, folder: Path) -> tuple[object | None, dict]:
    """A WorkspaceIndex (the server's retrieval) of the training split's tree, exported into
    folder: what the editor's workspace held before the held-out commits, so retrieved snippets
    never come from the future. (None, reason) when there is no training split."""
    if rev is None:
        return None, {"index": "none: no training split"}

    started = time.perf_counter()
    tree = folder / "tree"
    tree.mkdir(parents=True, exist_ok=True)
    export_tree(repo, rev, tree)
    index = WorkspaceIndex([tree], data_dir=folder / "data")
    index.build()
    return index, {"index_files": len(index), "index_s": round(time.perf_counter() - started, 2),
                   "index_rev": rev}


def complete_item(asker: Asker, item: EvalItem, cache: OutputCache) -> Completion:
    """Ask the model for item's hole through the server's stages (`asker.prepare`:
    `prepare.prepare_prompt` with the model's template and budget), via the output cache."""
    model = asker.model
    doc = Document(Path("/eval", item.path).as_uri(), item.text, None, path=item.path)
    started = time.perf_counter()
    decision, prompt, ctx = asker.prepare(doc, item.offset)
    prepare_ms = (time.perf_counter() - started) * 1000
    if prompt is None:
        return Completion("", decision.mode.value, prepare_ms=prepare_ms)
    request = generation_request(asker.config, decision, prompt)
    key = cache.key(prompt.text, request.max_new_tokens, request.temperature, request.stop,
                    decision.mode.value, decision.block_indent, request.static_prefix_chars,
                    request.heal, request.max_prompt_tokens)
    record = cache.get(key)
    cached = record is not None
    if record is None:
        result: GenerationResult = model.engine.generate(request, None)
        record = {"text": result.text, "engine_ms": result.total_ms,
                  "first_token_ms": result.first_token_ms, "prompt_tokens": result.prompt_tokens,
                  "new_tokens": result.new_tokens, "finish_reason": result.finish_reason}
        cache.put(key, record)
    # The same stop rules as the server, cut-by-the-token-limit check included.
    text = postprocess(record["text"], decision.mode, ctx.suffix, decision.block_indent,
                       finish_reason=record.get("finish_reason", ""),
                       adds_error=syntax_check(doc, item.offset))
    return Completion(text, decision.mode.value, record["text"], prepare_ms, record["engine_ms"],
                      record["first_token_ms"], record["prompt_tokens"], record["new_tokens"],
                      cached)


def score_item(item: EvalItem, completion: str, execute: bool = True,
               timeout_s: float = 10.0) -> dict:
    """The metrics of one completion of one item (pure, apart from executing humaneval)."""
    if item.task == "tests":
        return {}  # parsed, run and scored while generating (complete_tests)
    if item.task == "docstring":
        return {
            "exact_match": float(normalize(completion) == normalize(item.target)),
            # The summary line alone: the server adds Args/Returns sections the real one may lack.
            "first_line_exact": float(first_line(completion) == first_line(item.target)),
            "edit_similarity": edit_similarity(completion, item.target),
            "first_line_edit_similarity": edit_similarity(first_line(completion),
                                                          first_line(item.target)),
            **text_similarity(completion, item.target),
        }
    if item.task == "humaneval":
        fill = humaneval_fill(completion)
        scores = {
            "exact_match": float(normalize(fill) == normalize(item.target)),
            "first_line_exact": float(first_line(fill) == first_line(item.target)),
            "edit_similarity": edit_similarity(fill, item.target),
            "first_line_edit_similarity": edit_similarity(first_line(fill), first_line(item.target)),
        }
        source = item.program_head + fill + item.program_tail
        scores["parse_rate"] = float(python_parses(source))
        if execute:
            outcome = humaneval_passes(item, fill, timeout_s)
            scores["pass_at_1"] = float(outcome.passed)
            scores["run_status"] = outcome.status
        return scores
    scores = {
        "exact_match": float(normalize(completion) == normalize(item.target)),
        "first_line_exact": float(first_line(completion) == first_line(item.target)),
        "edit_similarity": edit_similarity(completion, item.target),
        "first_line_edit_similarity": edit_similarity(first_line(completion),
                                                      first_line(item.target)),
    }
    if item.language == "python" and item.original_parses:
        filled = item.text[: item.offset] + completion + item.text[item.offset:]
        scores["parse_rate"] = float(python_parses(filled))
    return scores


def build_items(options: EvalOptions) -> tuple[dict[str, list[EvalItem]], dict]:
    """The items of every requested task (model-independent), and facts for the report."""
    unknown = [t for t in options.tasks if t not in TASKS]
    if unknown:
        raise EvalError(f"unknown task(s) {', '.join(unknown)}; available: {', '.join(TASKS)}")
    if options.holes < 1:
        raise EvalError("--holes must be at least 1")
    items: dict[str, list[EvalItem]] = {}
    facts: dict = {}
    for task in options.tasks:
        if task == "history":
            items[task], facts["history"] = history_items(
                Path(options.repo), options.holes, options.seed, options.max_commits,
                options.span_share, test_fraction=options.test_fraction)
        elif task == "humaneval":
            items[task] = humaneval_items(options.holes, options.seed)
            facts["humaneval"] = {"tasks_total": 1033, "sampled": len(items[task])}
        elif task == "tests":
            items[task], facts["tests"] = tests_items(
                Path(options.repo), options.holes, options.seed, options.max_commits,
                options.test_fraction)
        elif task == "docstring":
            text_similarity("", "")  # fail early when sacrebleu is missing
            items[task], facts["docstring"] = docstring_items(
                Path(options.repo), options.holes, options.seed, options.max_commits,
                options.test_fraction)
    return items, facts


def run_evaluation(options: EvalOptions, load_model: Callable[[str], LoadedModel]) -> dict:
    """Evaluate every model on the same items; returns the results document (see write_json).

    `load_model` turns a model name into a LoadedModel (the store's CTranslate2 loader in the
    CLI, a fake engine in tests). Models are loaded one at a time to bound memory.
    """
    if not options.models:
        raise EvalError("no models given (--models NAME[,NAME...])")
    items, facts = build_items(options)
    with tempfile.TemporaryDirectory(prefix="repolsp-eval-index-") as index_dir:
        workspace = None
        if options.retrieval and "history" in items:
            workspace, index_facts = training_index(
                Path(facts["history"]["repo"]), facts["history"]["training_split_rev"],
                Path(index_dir))
            facts["history"].update(index_facts)
        return _evaluate(options, load_model, items, facts, workspace)


def _evaluate(options: EvalOptions, load_model, items: dict, facts: dict, workspace) -> dict:
    total = sum(len(v) for v in items.values())
    models_info: dict[str, dict] = {}
    records: list[dict] = []
    progress = _progress(total * len(options.models) + (len(items.get("humaneval", []))),
                         options.progress)
    try:
        for name in options.models:
            model = load_model(name)
            models_info[name] = {"hash": model.hash, **model.info}
            cache = OutputCache(options.cache_dir, model.hash)
            # Only history holes live in the indexed repository; HumanEval tasks get no
            # retrieval (snippets of an unrelated repository would only crowd their prompts).
            asker, plain_asker = Asker(model, workspace), Asker(model)
            try:
                for task, task_items in items.items():
                    task_asker = asker if task == "history" else plain_asker
                    for item in task_items:
                        progress.set_description(f"{name} {task}")
                        if task == "docstring":
                            completion = complete_docstring(model, item, cache)
                        elif task == "tests":
                            completion = complete_tests(model, item, Path(facts["tests"]["repo"]),
                                                        cache)
                        else:
                            completion = complete_item(task_asker, item, cache)
                        scores = score_item(item, completion.text, timeout_s=options.timeout_s)
                        scores.update(completion.extra)
                        records.append(_record(name, item, completion, scores))
                        progress.update(1)
            finally:
                del model, asker, plain_asker
        null_records = []
        for item in items.get("humaneval", []):
            progress.set_description("null fill")
            null_records.append({"id": item.id, **score_item(item, "pass",
                                                              timeout_s=options.timeout_s)})
            progress.update(1)
    finally:
        progress.close()
    results = summarize(records, options, models_info, facts, null_records)
    return results


def _record(model: str, item: EvalItem, completion: Completion, scores: dict) -> dict:
    return {
        "model": model, "task": item.task, "id": item.id, "kind": item.kind,
        "language": item.language, "path": item.path, "commit": item.commit,
        "target": item.target, "completion": completion.text, "mode": completion.mode,
        "latency_ms": round(completion.latency_ms, 2), "prepare_ms": round(completion.prepare_ms, 2),
        "engine_ms": round(completion.engine_ms, 2),
        "first_token_ms": round(completion.first_token_ms, 2),
        "prompt_tokens": completion.prompt_tokens, "new_tokens": completion.new_tokens,
        "cached": completion.cached, **scores,
    }


class _NoProgress:
    def update(self, *_):
        pass

    def set_description(self, *_):
        pass

    def close(self):
        pass


def _progress(total: int, enabled: bool):
    if not enabled:
        return _NoProgress()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoProgress()
    return tqdm(total=total, unit="item", file=sys.stderr, dynamic_ncols=True)
