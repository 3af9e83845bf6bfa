"""A deterministic engine for fast tests: no model, predictable text, real stop/cancel logic."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator

from repolsp.server.engine.base import GenerationRequest, GenerationResult, find_stop

_WORD_RE = re.compile(r"\w+|[^\w\s]|\s+")


class FakeEngine:
    """Completes every prompt with a fixed script, token by token.

    The script is `completion` (default: a two-line Python body). Words count as tokens.
    `token_delay_s` makes cancellation and debounce observable in tests.
    """

    name = "fake"

    def __init__(
        self,
        completion: str = "return 42\n",
        token_delay_s: float = 0.0,
        model_name: str = "fake",
    ):
        self.completion = completion
        self.token_delay_s = token_delay_s
        self.model_name = model_name
        self.calls = 0
        self.prompts: list[str] = []
        # End-to-end tests read the prompts a server subprocess built from this file.
        self.prompt_log = os.environ.get("REPOLSP_FAKE_PROMPT_LOG") or None
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(_WORD_RE.findall(text))

    def _pieces(self, request: GenerationRequest) -> list[str]:
        # Echo a marker of the last prompt word so tests can tell prompts apart.
        return _WORD_RE.findall(self.completion)[: request.max_new_tokens]

    def generate_stream(
        self, request: GenerationRequest, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        with self._lock:
            self.calls += 1
            self.prompts.append(request.prompt)
            if self.prompt_log:
                with open(self.prompt_log, "a", encoding="utf-8") as handle:
                    handle.write(request.prompt + "\n\0\n")
        for piece in self._pieces(request):
            if cancel is not None and cancel.is_set():
                return
            if self.token_delay_s:
                time.sleep(self.token_delay_s)
            yield piece

    def generate(
        self, request: GenerationRequest, cancel: threading.Event | None = None
    ) -> GenerationResult:
        start = time.perf_counter()
        text, reason, count = "", "length", 0
        for piece in self.generate_stream(request, cancel):
            text += piece
            count += 1
            cut = find_stop(text, request.stop)
            if cut >= 0:
                text, reason = text[:cut], "stop"
                break
            if request.should_stop is not None and request.should_stop(text):
                reason = "stop"
                break
        else:
            if cancel is not None and cancel.is_set():
                reason = "cancelled"
            elif count < request.max_new_tokens:
                reason = "eos"
        return GenerationResult(
            text=text,
            prompt_tokens=self.count_tokens(request.prompt),
            new_tokens=count,
            finish_reason=reason,
            total_ms=(time.perf_counter() - start) * 1000,
        )

    def score(self, prompt: str, continuations: list[str], max_context_tokens: int = 256) -> list[float]:
        """A stand-in for log-probabilities: the share of a continuation's words the prompt
        holds, minus one (a model copies what its prompt shows), so tests can steer re-ranking."""
        shown = set(_WORD_RE.findall(prompt))
        scores = []
        for continuation in continuations:
            words = [w for w in _WORD_RE.findall(continuation) if w.strip()]
            scores.append(sum(w in shown for w in words) / len(words) - 1.0 if words else float("-inf"))
        return scores

    def reload(self) -> None:
        pass

    def stats(self) -> dict:
        return {"engine": "fake", "calls": self.calls}
