"""Which training examples go first: holes whose answer the prompt already shows (a line of the
prefix, the suffix or a retrieved snippet) but which the base model still gets wrong. Copying
from the prompt is what a short run teaches best (issue 21: the tuned model copies shown lines
far more often than it recalls trained ones), and these are the holes where it has to learn it.

Deciding it cheaply: "the answer is in the prompt" is a set lookup of the answer's stripped lines
in the prompt's lines (no model). "The base model gets it wrong" takes the base model itself, so
it is asked only about those candidates, newest first, greedy through the server's CTranslate2
engine and stop rules (the evaluation's path), until a few minutes of the budget are spent; the
engine stays loaded for the before/after evaluation. Unchecked candidates keep their place.
"""

from __future__ import annotations

import time
from collections.abc import Callable

COPY_KINDS = ("fim", "snapshot", "accepted")
CHUNK = 8  # holes per engine call between time checks


def code_lines(text: str) -> list[str]:
    """The non-blank lines of `text`, stripped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def shown_lines(context: dict | None) -> set[str]:
    """The stripped lines a prompt context shows: prefix, suffix and every snippet."""
    context = context or {}
    shown = set(code_lines(context.get("prefix", "")) + code_lines(context.get("suffix", "")))
    for snippet in context.get("snippets", []):
        shown.update(code_lines(snippet.get("text", "")))
    return shown


def answer_in_prompt(example) -> bool:
    """Every non-blank line of the expected completion is a line the prompt shows."""
    wanted = code_lines(example.completion)
    if not wanted:
        return False
    shown = shown_lines(example.context)
    return all(line in shown for line in wanted)


def copy_candidates(examples) -> list:
    """Training holes whose answer is in the prompt, newest first."""
    found = [e for e in examples if e.split == "train" and e.kind in COPY_KINDS and e.context
             and answer_in_prompt(e)]
    return sorted(found, key=lambda e: -e.time)


def mark_copy_first(examples, entry, time_s: float,
                    clock: Callable[[], float] = time.monotonic) -> str:
    """Set `first` on the candidates the base model `entry` misses, checking as many as fit in
    `time_s`; returns a line for the user."""
    from repolsp.models.prompt import template_for
    from repolsp.trainer.evaluate import exact_match, generate_completions

    candidates = copy_candidates(examples)
    template = template_for(entry.manifest.fim_template)  # the base model's own prompt format
    started, checked, missed = clock(), 0, 0
    for start in range(0, len(candidates), CHUNK):
        if clock() - started >= time_s:
            break
        chunk = candidates[start:start + CHUNK]
        texts, _ = generate_completions(entry, chunk, template)
        for example, text in zip(chunk, texts):
            example.first = not exact_match(text, example.completion)
            missed += example.first
        checked += len(chunk)
    return (f"copy-first: {len(candidates)} training holes have their answer in the prompt; the "
            f"base model missed {missed} of the {checked} checked in {clock() - started:.0f}s "
            "(those train first)")
