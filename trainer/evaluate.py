"""Held-out evaluation of a stored model on mined examples (the `test` split).

Kept separate from training so the `lsp-eval` evaluator can take it over: completions go through
the server's own CTranslate2 engine and stop rules (token healing, single-line cut, block end),
each model gets the prompt format it is served with (the base model left-to-right unless it has
FIM tokens, the tuned model FIM), and the metrics are exact match and edit similarity of the
completion against the line(s) the history actually wrote, plus completion-token loss.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from repolsp.server.context.document import Document
from repolsp.server.engine.base import GenerationRequest
from repolsp.server.engine.ct2 import CT2Engine
from repolsp.server.postprocess import postprocess, stop_rule, syntax_check
from repolsp.trainer.eval.metrics import edit_distance
from repolsp.trainer.prompts import context_from_dict, render_for_template
from repolsp.trainer.tokenizing import IGNORE, tokenize_example

# Engines stay alive until the process exits: CTranslate2 leaves a thread behind after
# callback-driven generation, and destroying a generator mid-process has aborted it; the
# engine releases itself safely at exit.
_ENGINES: dict[str, object] = {}


@dataclass
class EvalScores:
    """One model's scores on one set of examples."""

    model: str
    n: int
    exact_match: float
    edit_similarity: float
    loss: float | None = None  # mean completion-token cross-entropy (nats)
    median_latency_ms: float = 0.0

    @property
    def perplexity(self) -> float | None:
        return math.exp(self.loss) if self.loss is not None else None

    def to_json(self) -> dict:
        data = asdict(self)
        data["perplexity"] = self.perplexity
        return data


def edit_similarity(predicted: str, expected: str) -> float:
    """1 - edit distance / longer length (1.0 = identical), on whitespace-trimmed strings."""
    predicted, expected = predicted.strip(), expected.strip()
    if not predicted and not expected:
        return 1.0
    return 1.0 - edit_distance(predicted, expected) / max(len(predicted), len(expected))


def exact_match(predicted: str, expected: str) -> bool:
    """Equal up to leading/trailing whitespace on each line."""
    def norm(text: str) -> list[str]:
        return [line.strip() for line in text.strip().splitlines()]
    return norm(predicted) == norm(expected)


def eval_examples(examples, max_examples: int = 200) -> list:
    """The held-out set: `test` split FIM examples, single-line ("in-hunk lines") first, taken
    round-robin over the commits (newest first) so that a few large commits cannot make up
    the whole set (on attrs' newest 30 commits, two commits gave 56 of the first 100)."""
    test = [e for e in examples if e.split == "test" and e.kind in ("fim", "accepted") and e.context]
    chosen: list = []
    for single in (True, False):
        by_commit: dict[str, list] = {}
        for e in test:
            if (e.mode == "single-line") == single:
                by_commit.setdefault(e.commit, []).append(e)
        queues = sorted(by_commit.values(), key=lambda q: -q[0].time)
        while queues and len(chosen) < max_examples:
            chosen.extend(q.pop(0) for q in queues[: max_examples - len(chosen)])
            queues = [q for q in queues if q]
    return chosen


def generate_completions(entry, examples, template, max_new_tokens: int = 64,
                         progress: Callable[[int, int], None] | None = None) -> tuple[list[str], list[float]]:
    """Greedy completions of `examples` by a stored model through the server's engine and stop
    rules; returns (texts, latencies in ms)."""

    engine = _ENGINES.get(str(entry.ct2_dir))
    if engine is None:
        engine = _ENGINES[str(entry.ct2_dir)] = CT2Engine(entry.ct2_dir, entry.hf_dir, model_name=entry.name)
    cap = entry.manifest.max_prompt_tokens or 512
    texts, latencies = [], []
    for i, example in enumerate(examples):
        ctx = context_from_dict(example.context)
        prompt = render_for_template(example.context, template, engine.count_tokens, cap)
        multi = ctx.mode.value == "multi-line"

        request = GenerationRequest(
            prompt=prompt, max_new_tokens=max_new_tokens if multi else 48,
            stop=tuple(template.stop), max_prompt_tokens=cap,
            should_stop=stop_rule(ctx.mode, ctx.block_indent),
        )
        started = time.perf_counter()
        result = engine.generate(request)
        latencies.append((time.perf_counter() - started) * 1000)
        first_col = len(ctx.prefix) - (ctx.prefix.rfind("\n") + 1)
        # The server's stop rules, the check of a text cut by the token limit included.
        window = Document(Path("/eval", ctx.path).as_uri(), ctx.prefix + ctx.suffix, path=ctx.path)
        texts.append(postprocess(result.text, ctx.mode, ctx.suffix, ctx.block_indent, first_col,
                                 finish_reason=result.finish_reason,
                                 adds_error=syntax_check(window, len(ctx.prefix))))
        if progress:
            progress(i + 1, len(examples))
    return texts, latencies


def completion_loss(hf_dir, examples, template, max_examples: int = 64, seq_len: int = 768) -> float | None:
    """Mean completion-token cross-entropy of a transformers model on `examples` (prompts in
    `template`), or None when there is nothing to score."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(hf_dir))
    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
    total = count = 0.0
    with torch.no_grad():
        for example in examples[:max_examples]:
            prompt = render_for_template(example.context, template, None, None)
            ids, labels = tokenize_example(tokenizer, prompt, example.completion, seq_len, 128)
            labels_t = torch.tensor([labels])
            out = model(torch.tensor([ids]), labels=labels_t)
            n = int((labels_t[:, 1:] != IGNORE).sum())
            total += float(out.loss) * n
            count += n
    return total / count if count else None


def score_model(entry, examples, template, with_loss: bool = True,
                progress: Callable[[int, int], None] | None = None) -> tuple[EvalScores, list[str]]:
    """Exact match, edit similarity (and loss) of a stored model on `examples`."""
    texts, latencies = generate_completions(entry, examples, template, progress=progress)
    n = len(examples)
    em = sum(exact_match(t, e.completion) for t, e in zip(texts, examples)) / n if n else 0.0
    es = sum(edit_similarity(t, e.completion) for t, e in zip(texts, examples)) / n if n else 0.0
    loss = completion_loss(entry.hf_dir, examples, template) if with_loss and n else None
    return EvalScores(entry.name, n, em, es, loss,
                      statistics.median(latencies) if latencies else 0.0), texts
