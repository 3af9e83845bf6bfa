"""Inline completion as named stages, with debounce, cancellation and a typing-through cache.

should_complete -> build_context -> format_prompt (`prepare.prepare_prompt`, a free function)
-> generate (engine thread) -> postprocess. CompletionService schedules, cancels and caches.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import statistics
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from repolsp.models.prompt import Prompt, PromptTemplate
from repolsp.server.config import Config
from repolsp.server.context.document import Document
from repolsp.server.context.should_complete import CompletionDecision, should_complete
from repolsp.server.context.types import CompletionMode
from repolsp.server.engine.base import Engine, GenerationRequest
from repolsp.server.postprocess import postprocess, stop_rule, syntax_check
from repolsp.server.prepare import (
    LARGE_FILE_BYTES,
    StableContextCache,
    content_hash,
    line_start,
    prepare_prompt,
    prompt_budget_tokens,
)
from repolsp.server.rerank import rerank_line

log = logging.getLogger(__name__)

_ids = itertools.count(1)


def generation_request(config: Config, decision: CompletionDecision, prompt: Prompt) -> GenerationRequest:
    """Stage 4's input: generation limits and stop rules for the decided mode."""
    multi = decision.mode is CompletionMode.MULTI_LINE
    limits = config.max_new_tokens
    return GenerationRequest(
        prompt=prompt.text,
        max_new_tokens=limits.multi_line if multi else limits.single_line,
        temperature=config.temperature,
        stop=prompt.template.stop,
        should_stop=stop_rule(decision.mode, decision.block_indent),
        static_prefix_chars=prompt.static_prefix_chars,
        template=prompt.template.name,
    )


@dataclass
class Suggestion:
    """One completion ready for the editor."""

    id: str
    text: str
    offset: int  # where the text is inserted (document str offset)
    mode: CompletionMode
    from_cache: bool = False
    latency_ms: float = 0.0


@dataclass
class _CacheEntry:
    head_hash: str  # hash of the document before the cursor's line
    tail_hash: str  # hash of the document after the cursor
    line_prefix: str  # the cursor line up to the cursor
    text: str
    mode: CompletionMode
    id: str


@dataclass
class Metrics:
    """Latency and cache figures for `repolsp.status` and the benchmark."""

    all_ms: deque = field(default_factory=lambda: deque(maxlen=2000))
    model_ms: deque = field(default_factory=lambda: deque(maxlen=2000))
    requests: int = 0
    cache_hits: int = 0
    cancelled: int = 0
    superseded: int = 0

    @staticmethod
    def percentiles(values) -> dict:
        data = sorted(values)
        if not data:
            return {"p50": None, "p95": None, "count": 0}
        p95 = data[min(len(data) - 1, round(0.95 * (len(data) - 1)))]
        return {"p50": round(statistics.median(data), 1), "p95": round(p95, 1), "count": len(data)}

    def snapshot(self) -> dict:
        return {
            "latencyMs": self.percentiles(self.all_ms),
            "modelLatencyMs": self.percentiles(self.model_ms),
            "requests": self.requests,
            "cacheHits": self.cache_hits,
            "cacheHitRate": round(self.cache_hits / self.requests, 3) if self.requests else 0.0,
            "cancelled": self.cancelled,
            "superseded": self.superseded,
        }


class CompletionService:
    """Turns (document, offset) into suggestions; owns the engine thread."""

    def __init__(
        self,
        config: Config,
        engine_getter: Callable[[], Engine | None],
        template_getter: Callable[[], tuple[PromptTemplate, int | None]],
        workspace_getter: Callable[[], object | None] = lambda: None,
        cache_size: int = 64,
        history_getter: Callable[[], object | None] = lambda: None,
    ):
        self.config = config
        self._engine = engine_getter
        self._template = template_getter
        self._workspace = workspace_getter
        self._history = history_getter  # a context.history.HistoryIndex, or None when off
        # One thread: CTranslate2 generation is serialized, and pygls's pool stays free.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="repolsp-engine")
        self.metrics = Metrics()
        self._cache: OrderedDict[str, _CacheEntry] = OrderedDict()
        self._cache_size = cache_size
        self._seq: dict[str, int] = {}
        self._inflight: dict[str, threading.Event] = {}
        self._warned_large: set[str] = set()
        self._stable = StableContextCache()  # the line-head context kept while typing

    # --- cache ---------------------------------------------------------------------------
    def _cache_lookup(self, doc: Document, offset: int) -> _CacheEntry | None:
        text = doc.text
        start = line_start(text, offset)
        line_prefix = text[start:offset]
        head_hash = tail_hash = None
        for key in reversed(self._cache):
            entry = self._cache[key]
            if not key.startswith(doc.uri + "\0"):
                continue
            if not line_prefix.startswith(entry.line_prefix):
                continue
            typed = line_prefix[len(entry.line_prefix):]
            if "\n" in typed or not entry.text.startswith(typed) or len(typed) >= len(entry.text):
                continue
            if head_hash is None:
                head_hash, tail_hash = content_hash(text[:start]), content_hash(text[offset:])
            if entry.head_hash == head_hash and entry.tail_hash == tail_hash:
                self._cache.move_to_end(key)
                remainder = entry.text[len(typed):]
                return _CacheEntry(head_hash, tail_hash, line_prefix, remainder, entry.mode, entry.id)
        return None

    def _cache_store(self, doc: Document, offset: int, text: str, mode, suggestion_id: str):
        full = doc.text
        start = line_start(full, offset)
        entry = _CacheEntry(
            content_hash(full[:start]), content_hash(full[offset:]), full[start:offset], text, mode, suggestion_id
        )
        self._cache[f"{doc.uri}\0{suggestion_id}"] = entry
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def forget(self, uri: str) -> None:
        """Drop cached suggestions and cancel work for a closed document."""
        for key in [k for k in self._cache if k.startswith(uri + "\0")]:
            del self._cache[key]
        event = self._inflight.pop(uri, None)
        if event is not None:
            event.set()

    # --- the pipeline --------------------------------------------------------------------
    async def complete(self, doc: Document, offset: int, debounce: bool = True) -> Suggestion | None:
        """The suggestion at offset, or None; newer requests for the same document win."""
        started = time.perf_counter()
        enabled = self.config.language_enabled
        if not (enabled(doc.language) or (doc.language_id and enabled(doc.language_id))):
            return None
        self.metrics.requests += 1
        cached = self._cache_lookup(doc, offset)
        if cached is not None:
            self.metrics.cache_hits += 1
            latency = (time.perf_counter() - started) * 1000
            self.metrics.all_ms.append(latency)
            return Suggestion(cached.id, cached.text, offset, cached.mode, True, latency)

        uri = doc.uri
        seq = self._seq.get(uri, 0) + 1
        self._seq[uri] = seq
        previous = self._inflight.get(uri)
        if previous is not None:
            previous.set()  # a newer request for this document cancels the older one
        cancel = threading.Event()
        self._inflight[uri] = cancel
        try:
            if debounce and self.config.debounce_ms > 0:
                await asyncio.sleep(self.config.debounce_ms / 1000)
                if self._seq.get(uri) != seq or cancel.is_set():
                    self.metrics.superseded += 1
                    return None
            engine = self._engine()
            if engine is None:
                return None  # model still loading (or failed): empty, not an error
            version = doc.version
            suggestion = await self._generate(engine, doc, offset, cancel)
            if suggestion is None or cancel.is_set() or doc.version != version:
                if cancel.is_set():
                    self.metrics.cancelled += 1
                return None
            latency = (time.perf_counter() - started) * 1000
            suggestion.latency_ms = latency
            self.metrics.all_ms.append(latency)
            self.metrics.model_ms.append(latency)
            self._cache_store(doc, offset, suggestion.text, suggestion.mode, suggestion.id)
            return suggestion
        except asyncio.CancelledError:
            # $/cancelRequest cancels this task, not the work already in the engine thread.
            cancel.set()
            self.metrics.cancelled += 1
            raise
        finally:
            if self._inflight.get(uri) is cancel:
                del self._inflight[uri]

    def prepare(self, doc: Document, offset: int) -> tuple[CompletionDecision, Prompt | None, object]:
        """Stages 1-3 (`prepare.prepare_prompt`) with this service's engine, template, budget and
        workspace. Prompt is None when no completion fits or no engine is loaded."""
        engine = self._engine()
        if engine is None:
            return should_complete(doc, offset), None, None
        template, max_prompt_tokens = self._template()
        budget_tokens = prompt_budget_tokens(self.config.context_budget_tokens, max_prompt_tokens)
        large = len(doc.text) > LARGE_FILE_BYTES
        workspace = self._workspace() if not large else None
        history = self._history() if not large else None
        prepared = prepare_prompt(doc, offset, workspace, template, engine.count_tokens,
                                  budget_tokens, self._stable, history)
        if large and prepared[1] is not None and doc.uri not in self._warned_large:
            self._warned_large.add(doc.uri)
            log.warning("%s is over 5 MB: context limited to the cursor window", doc.uri)
        return prepared

    def request_for(self, decision: CompletionDecision, prompt: Prompt) -> GenerationRequest:
        """Stage 4's input with this service's configuration (`generation_request`)."""
        return generation_request(self.config, decision, prompt)

    async def _generate(self, engine: Engine, doc: Document, offset: int, cancel) -> Suggestion | None:
        decision, prompt, ctx = self.prepare(doc, offset)
        if prompt is None:
            return None
        request = self.request_for(decision, prompt)
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self.executor, engine.generate, request, cancel)
        trim = getattr(engine, "trim_cache", None)
        if trim is not None:
            loop.run_in_executor(self.executor, trim)  # free memory while the user reads
        if result.finish_reason == "cancelled":
            return None
        # The finish reason and the document's syntax tell a text cut by the token limit.
        text = postprocess(result.text, decision.mode, ctx.suffix, decision.block_indent,
                           finish_reason=result.finish_reason, adds_error=syntax_check(doc, offset))
        log.debug(
            "completion %s: %d prompt tokens, %d new, %.0f ms (first token %.0f ms), %s%s",
            decision.mode.value, result.prompt_tokens, result.new_tokens, result.total_ms,
            result.first_token_ms, result.finish_reason,
            "" if text.strip() else "; nothing kept after the stop rules",
        )
        if self.config.rerank and decision.mode is CompletionMode.SINGLE_LINE and not cancel.is_set():
            reranked = await loop.run_in_executor(self.executor, rerank_line, engine, prompt.text, doc,
                                                  offset, ctx, text, self._workspace(), self._history())
            if reranked.changed:
                log.debug("re-ranked: a repository line scored above the model's (%s)", reranked.scores)
            text = reranked.text
        if not text.strip():
            return None
        return Suggestion(f"c{next(_ids)}", text, offset, decision.mode)

    def shutdown(self) -> None:
        for event in self._inflight.values():
            event.set()
        self.executor.shutdown(wait=False, cancel_futures=True)
