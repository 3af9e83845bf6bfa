"""Measurements of the context stage on a real repository, for ``bench/`` scripts:

- ``definition_recall``: for calls to functions defined in other files, how often the callee's
  signature reaches the prompt (cursor placed right after the call's opening parenthesis);
- ``context_latency_ms``: ``build_context`` latency percentiles at random cursors of a file;
- ``index_repository``: index build time, files, chunks and peak memory.

Pure library code: nothing here prints; callers format the returned dicts.
"""

from __future__ import annotations

import builtins
import pathlib
import random
import re
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

from .build import ContextBudget, TokenCounter, approx_token_count, build_context
from .document import Document
from .index import WorkspaceIndex

_BUILTINS = frozenset(dir(builtins))
_IMPORTED = re.compile(r"(?:^|\n)\s*(?:from\s+\S+\s+)?import\s+(?:\S+\s+as\s+)?([A-Za-z_]\w*)")
# A bare call `name(` or a call through one qualifier `module.name(` / `Type::name(`.
_CALL = re.compile(r"(?<![\w.:])(?:([A-Za-z_]\w*)(?:\.|::))?([A-Za-z_]\w*)\(")


@dataclass
class RecallReport:
    """Result of ``definition_recall``."""

    calls: int
    hits: int
    misses: list[tuple[str, int, str]]  # (path, line, callee) of a sample of misses

    @property
    def rate(self) -> float:
        """Share of calls whose callee signature was in the prompt."""
        return self.hits / self.calls if self.calls else 0.0


def index_repository(root: pathlib.Path, data_dir: pathlib.Path | None = None) -> tuple[WorkspaceIndex, dict]:
    """Build a WorkspaceIndex of ``root``; returns it with seconds, files, chunks and peak RSS (MB)."""
    started = time.monotonic()
    index = WorkspaceIndex([root], data_dir=data_dir)
    index.build()
    figures = {
        "seconds": round(time.monotonic() - started, 2),
        "files": len(index),
        "chunks": index.chunk_count(),
        "skipped": len(index.skipped),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    return index, figures


def definition_recall(index: WorkspaceIndex, root: pathlib.Path, sample: int = 200, seed: int = 0,
                      budget: ContextBudget | None = None,
                      count_tokens: Callable[[str], int] = approx_token_count) -> RecallReport:
    """Sample calls to functions defined only in other files and check that the callee's
    signature is among the prompt's definition snippets."""
    budget = budget or ContextBudget()
    counter = TokenCounter(count_tokens)
    rng = random.Random(seed)
    cases: list[tuple[str, int, str, list[str]]] = []
    for key in index.files:
        path = root / key
        try:
            text = path.read_text("utf-8", "replace")
        except OSError:
            continue
        local_names = {s.name for s in index.symbols_in(key)}
        imported = set(_IMPORTED.findall(text))
        for match in _CALL.finditer(text):
            qualifier, callee = match.group(1), match.group(2)
            if callee in local_names or callee in _BUILTINS:
                continue
            # `obj.method(` on a local object says nothing about which definition is meant;
            # only bare calls and calls through an imported module or a type name count.
            if qualifier and qualifier not in imported and not qualifier[:1].isupper():
                continue
            elsewhere = [s for s in index.symbols(callee) if s.path != key and s.kind in ("function", "method", "class")]
            if not elsewhere:
                continue
            cases.append((key, match.end(), callee, [s.signature.splitlines()[0].strip() for s in elsewhere]))
    rng.shuffle(cases)
    cases = cases[:sample]
    hits = 0
    misses: list[tuple[str, int, str]] = []
    documents: dict[str, Document] = {}
    for key, offset, callee, headers in cases:
        doc = documents.get(key)
        if doc is None:
            doc = documents[key] = Document.from_path(root / key, root=root)
        context = build_context(doc, offset, index, budget, counter)
        visible = "\n".join(s.text for s in context.snippets) + context.prefix
        if any(header in visible for header in headers):
            hits += 1
        elif len(misses) < 20:
            misses.append((key, doc.lines.line_of(offset), callee))
    return RecallReport(calls=len(cases), hits=hits, misses=misses)


def context_latency_ms(doc: Document, index: WorkspaceIndex | None, count_tokens: Callable[[str], int],
                       cursors: int = 200, seed: int = 0, budget: ContextBudget | None = None) -> dict:
    """p50/p95/max milliseconds of ``build_context`` at random cursors of ``doc``."""
    budget = budget or ContextBudget()
    counter = TokenCounter(count_tokens)
    rng = random.Random(seed)
    timings = []
    for _ in range(cursors):
        offset = rng.randint(0, len(doc.text))
        started = time.perf_counter()
        build_context(doc, offset, index, budget, counter)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {
        "p50": round(timings[len(timings) // 2], 2),
        "p95": round(timings[int(len(timings) * 0.95)], 2),
        "max": round(timings[-1], 2),
    }
