"""The engine seam: what the server and the evaluator need from a text generator."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class GenerationRequest:
    """One completion request, already rendered to a prompt string."""

    prompt: str
    max_new_tokens: int = 64
    temperature: float = 0.0  # 0 = greedy
    stop: tuple[str, ...] = ()  # generation ends before the first of these strings
    # Called with the text generated so far; True ends generation (scope end, line end...).
    should_stop: Callable[[str], bool] | None = None
    # prompt[:static_prefix_chars] stays the same across keystrokes: its model state is cached.
    static_prefix_chars: int = 0
    heal: bool = True  # token healing at the prompt's end
    max_prompt_tokens: int | None = None  # drop tokens from the left beyond this
    # Name of the template the prompt was rendered with: an engine that serves two models (the
    # remote one and its local fallback) sends each prompt to the model it was rendered for.
    template: str = ""


@dataclass
class GenerationResult:
    """What an engine returns for one request."""

    text: str
    prompt_tokens: int = 0
    new_tokens: int = 0
    finish_reason: str = "length"  # "stop" | "eos" | "length" | "cancelled" | "error"
    first_token_ms: float = 0.0
    total_ms: float = 0.0
    healed: str = ""  # the prompt text re-produced by token healing (not part of `text`)
    extra: dict = field(default_factory=dict)


class Engine(Protocol):
    """A text generator; the CTranslate2 engine is the real one, the fake serves fast tests."""

    name: str
    model_name: str

    def count_tokens(self, text: str) -> int:
        """Number of model tokens in text (without special tokens)."""
        ...

    def generate(
        self, request: GenerationRequest, cancel: threading.Event | None = None
    ) -> GenerationResult:
        """Generate a completion; returns early, with what it has, once cancel is set."""
        ...

    def generate_stream(
        self, request: GenerationRequest, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        """Yield text pieces as they are decoded."""
        ...

    def reload(self) -> None:
        """Load the model files again (after training or a model switch)."""
        ...

    def stats(self) -> dict:
        """Engine facts for `repolsp.status` (device, compute type, cache entries...)."""
        ...

    def score(self, prompt: str, continuations: list[str], max_context_tokens: int = 256) -> list[float]:
        """Mean log-probability per token of each continuation right after prompt (re-ranking
        repository lines against the model's own; an engine may lack it: callers check)."""
        ...


def find_stop(text: str, stops: tuple[str, ...]) -> int:
    """Index of the earliest stop string in text, or -1."""
    positions = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(positions) if positions else -1
