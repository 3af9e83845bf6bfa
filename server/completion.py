"""Inline completion as named stages, with debounce, cancellation and a typing-through cache.

should_complete -> build_context -> format_prompt -> generate (engine thread) -> postprocess
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import logging
import statistics
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from repolsp.models.prompt import Prompt, PromptTemplate, format_prompt
from repolsp.server.config import Config
from repolsp.server.context.build import ContextBudget, build_context
from repolsp.server.context.document import Document
from repolsp.server.context.should_complete import CompletionDecision, should_complete
from repolsp.server.context.types import CompletionMode
from repolsp.server.engine.base import Engine, GenerationRequest
from repolsp.server.postprocess import postprocess, stop_rule

log = logging.getLogger(__name__)

LARGE_FILE_BYTES = 5_000_000
_ids = itertools.count(1)


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


def _hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _snippet_share(budget_tokens: int) -> float:
    """Share of the prompt other files may take. Under a tight cap (Gemma's 512 tokens) lines
    of the file being edited matter more: measured on pallets/itsdangerous (n=40), 40% of 512
    tokens for snippets cost 7.5 points of exact match against none."""
    return 0.2 if budget_tokens <= 512 else 0.4


def _line_start(text: str, offset: int) -> int:
    return text.rfind("\n", 0, offset) + 1


class CompletionService:
    """Turns (document, offset) into suggestions; owns the engine thread."""

    def __init__(
        self,
        config: Config,
        engine_getter: Callable[[], Engine | None],
        template_getter: Callable[[], tuple[PromptTemplate, int | None]],
        workspace_getter: Callable[[], object | None] = lambda: None,
        cache_size: int = 64,
    ):
        self.config = config
        self._engine = engine_getter
        self._template = template_getter
        self._workspace = workspace_getter
        # One thread: CTranslate2 generation is serialized, and pygls's pool stays free.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="repolsp-engine")
        self.metrics = Metrics()
        self._cache: OrderedDict[str, _CacheEntry] = OrderedDict()
        self._cache_size = cache_size
        self._seq: dict[str, int] = {}
        self._inflight: dict[str, threading.Event] = {}
        self._warned_large: set[str] = set()
        self._stable_key: tuple | None = None
        self._stable_ctx = None

    # --- cache ---------------------------------------------------------------------------
    def _cache_lookup(self, doc: Document, offset: int) -> _CacheEntry | None:
        text = doc.text
        start = _line_start(text, offset)
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
                head_hash, tail_hash = _hash(text[:start]), _hash(text[offset:])
            if entry.head_hash == head_hash and entry.tail_hash == tail_hash:
                self._cache.move_to_end(key)
                remainder = entry.text[len(typed):]
                return _CacheEntry(head_hash, tail_hash, line_prefix, remainder, entry.mode, entry.id)
        return None

    def _cache_store(self, doc: Document, offset: int, text: str, mode, suggestion_id: str):
        full = doc.text
        start = _line_start(full, offset)
        entry = _CacheEntry(
            _hash(full[:start]), _hash(full[offset:]), full[start:offset], text, mode, suggestion_id
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
        """Stages 1-3 (pure): decision, context and prompt. Prompt is None when no completion fits."""
        engine = self._engine()
        decision = should_complete(doc, offset)
        if decision.mode is CompletionMode.NONE or engine is None:
            return decision, None, None
        if len(doc.text) > LARGE_FILE_BYTES and doc.uri not in self._warned_large:
            self._warned_large.add(doc.uri)
            log.warning("%s is over 5 MB: context limited to the cursor window", doc.uri)
        template, max_prompt_tokens = self._template()
        budget_tokens = self.config.context_budget_tokens
        if max_prompt_tokens:
            budget_tokens = min(budget_tokens, max_prompt_tokens)
        workspace = self._workspace() if len(doc.text) <= LARGE_FILE_BYTES else None
        ctx = self._stable_context(doc, offset, workspace, budget_tokens, engine, decision)
        prompt = format_prompt(ctx, template, engine.count_tokens, budget_tokens)
        return decision, prompt, ctx

    def _stable_context(self, doc, offset, workspace, budget_tokens, engine, decision):
        """build_context for the cursor, laid out so that typing on one line keeps the prompt's
        head (everything before the line) byte-identical, which keeps the engine's cached
        prompt state valid.

        The context is built for the document without the line's typed part, at the start of
        the line, with room reserved for the line; the typed part is then appended to the
        prefix. Built contexts are reused while only the typed part changes.
        """
        text = doc.text
        line_start = _line_start(text, offset)
        typed = text[line_start:offset]
        if not typed or len(text) > LARGE_FILE_BYTES:
            budget = ContextBudget(max_prompt_tokens=budget_tokens,
                                   max_snippet_share=_snippet_share(budget_tokens))
            return build_context(doc, offset, workspace, budget, engine.count_tokens, decision)
        # Reserve room for the line in steps of 64 tokens, so the reservation (and with it the
        # window) changes only every 64 tokens of typing.
        reserve = 64 * (1 + (engine.count_tokens(typed) + 8) // 64)
        stable_text = text[:line_start] + text[offset:]
        key = (doc.uri, _hash(stable_text), reserve, budget_tokens, id(workspace))
        if self._stable_key != key:
            stable_doc = Document(doc.uri, stable_text, doc.language_id,
                                  path=doc.path)
            budget = ContextBudget(max_prompt_tokens=max(64, budget_tokens - reserve),
                                   max_snippet_share=_snippet_share(budget_tokens))
            self._stable_ctx = build_context(stable_doc, line_start, workspace, budget,
                                             engine.count_tokens, decision)
            self._stable_key = key
        base = self._stable_ctx
        return dataclasses.replace(base, prefix=base.prefix + typed, snippets=list(base.snippets),
                                   mode=decision.mode, block_indent=decision.block_indent)

    def request_for(self, decision: CompletionDecision, prompt: Prompt) -> GenerationRequest:
        """Stage 4's input: generation limits and stop rules for the decided mode."""
        multi = decision.mode is CompletionMode.MULTI_LINE
        limits = self.config.max_new_tokens
        return GenerationRequest(
            prompt=prompt.text,
            max_new_tokens=limits.multi_line if multi else limits.single_line,
            temperature=self.config.temperature,
            stop=prompt.template.stop,
            should_stop=stop_rule(decision.mode, decision.block_indent),
            static_prefix_chars=prompt.static_prefix_chars,
        )

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
        text = postprocess(result.text, decision.mode, ctx.suffix, decision.block_indent)
        if not text.strip():
            return None
        log.debug(
            "completion %s: %d prompt tokens, %d new, %.0f ms (first token %.0f ms), %s",
            decision.mode.value, result.prompt_tokens, result.new_tokens, result.total_ms,
            result.first_token_ms, result.finish_reason,
        )
        return Suggestion(f"c{next(_ids)}", text, offset, decision.mode)

    def shutdown(self) -> None:
        for event in self._inflight.values():
            event.set()
        self.executor.shutdown(wait=False, cancel_futures=True)
