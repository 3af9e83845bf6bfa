"""Pure scores: exact match, edit similarity, parse check, percentiles, bootstrap CIs, BLEU/chrF."""

from __future__ import annotations

import ast
import statistics
import warnings
from collections.abc import Sequence

from repolsp.trainer.eval.holes import EvalError


def normalize(text: str) -> str:
    """Text compared by the exact-match metrics: trailing whitespace and blank ends removed."""
    return "\n".join(line.rstrip() for line in text.strip("\n").split("\n")).strip()


def first_line(text: str) -> str:
    """The first non-blank line of text, stripped."""
    for line in text.split("\n"):
        if line.strip():
            return line.strip()
    return ""


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions each cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def edit_similarity(prediction: str, target: str) -> float:
    """1 - Levenshtein / longer length, on normalized text; 1.0 when both are empty."""
    a, b = normalize(prediction), normalize(target)
    if not a and not b:
        return 1.0
    return 1.0 - edit_distance(a, b) / max(len(a), len(b))


def python_parses(source: str) -> bool:
    """Whether source is valid Python syntax (compiled only, never run)."""

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences in old code are not errors
            ast.parse(source)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation; None for no values."""
    data = sorted(values)
    if not data:
        return None
    position = (len(data) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (position - low)


def bootstrap_mean_ci(values: Sequence[float], seed: int = 0, resamples: int = 2000,
                      level: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean; None for no values."""
    import numpy as np

    if len(values) == 0:
        return None
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def paired_bootstrap_ci(a: Sequence[float], b: Sequence[float], seed: int = 0,
                        resamples: int = 2000, level: float = 0.95) -> dict:
    """Mean of b - a over paired items with a percentile bootstrap interval (items resampled
    together, so the shared difficulty of an item cancels out)."""
    if len(a) != len(b):
        raise ValueError("paired bootstrap needs the same items for both models")
    diffs = [float(y) - float(x) for x, y in zip(a, b)]
    if not diffs:
        return {"mean_diff": None, "ci95": None, "n": 0}
    ci = bootstrap_mean_ci(diffs, seed, resamples, level)
    return {"mean_diff": statistics.fmean(diffs), "ci95": list(ci) if ci else None,
            "n": len(diffs)}


def text_similarity(hypothesis: str, reference: str) -> dict:
    """Smoothed sentence BLEU-4 and chrF (sacrebleu), scaled to 0..1."""
    try:
        import sacrebleu
    except ImportError as exc:
        raise EvalError("the docstring task needs sacrebleu: pip install 'sacrebleu>=2.4,<3'") from exc
    hypothesis, reference = " ".join(hypothesis.split()), " ".join(reference.split())
    return {"bleu4": sacrebleu.sentence_bleu(hypothesis, [reference]).score / 100,
            "chrf": sacrebleu.sentence_chrf(hypothesis, [reference]).score / 100}
