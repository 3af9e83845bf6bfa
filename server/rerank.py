"""Re-rank a single-line completion against lines the repository already holds (issue 21 item 3).

When the user has typed the head of a line and the repository (this file, the prompt's
snippets, other files' best chunks, lines the git history added) holds lines that start with
it, the model scores each such line's rest and its own greedy rest (`Engine.score`: mean
log-probability per token, one batch) and the best is served. Pure apart from the engine call;
the server's CompletionService and the evaluator both call `rerank_line`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from repolsp.server.context.document import Document
from repolsp.server.context.line_retrieval import query_text
from repolsp.server.context.types import CompletionMode, PromptContext
from repolsp.server.postprocess import postprocess

log = logging.getLogger(__name__)

MIN_TYPED_CHARS = 2  # a shorter head matches too many lines to say anything
MAX_CANDIDATES = 3


@dataclass
class Reranked:
    """What re-ranking served and why."""

    text: str
    candidates: list[str] = field(default_factory=list)  # rests of repository lines scored
    scores: list[float] = field(default_factory=list)  # greedy's first, then the candidates'
    changed: bool = False
    score_ms: float = 0.0


def _matching(lines: Iterable[str], head: str, seen: set[str], out: list[str]) -> None:
    for line in lines:
        stripped = line.strip()
        if len(stripped) > len(head) and stripped.startswith(head) and stripped not in seen:
            seen.add(stripped)
            out.append(stripped)


def candidate_lines(doc: Document, offset: int, ctx: PromptContext | None, workspace=None,
                    history=None, limit: int = MAX_CANDIDATES) -> list[str]:
    """Stripped lines that start with what is typed on the cursor's line (and go further),
    nearest sources first: this file (nearest the cursor first), the prompt's snippets, other
    files' chunks most like the cursor's neighbourhood, lines the history added."""
    lines = doc.lines
    line_no = lines.line_of(offset)
    head = doc.text[lines.line_starts[line_no]:offset].lstrip()  # a typed trailing space counts
    if len(head.strip()) < MIN_TYPED_CHARS:
        return []
    seen: set[str] = set()
    found: list[str] = []
    others = sorted((i for i in range(lines.line_count) if i != line_no), key=lambda i: abs(i - line_no))
    _matching((lines.line_text(i) for i in others[:4000]), head, seen, found)
    if ctx is not None:
        _matching((line for s in ctx.snippets for line in s.text.split("\n")), head, seen, found)
    if workspace is not None and len(found) < limit:
        try:
            chunks = workspace.retrieve(query_text(doc, offset), exclude_path=doc.path, limit=8)
            _matching((line for s in chunks for line in s.text.split("\n")), head, seen, found)
        except Exception:
            log.debug("re-rank retrieval failed", exc_info=True)
    if history is not None and len(found) < limit:
        _matching(history.lines_starting(head, limit=limit * 4), head, seen, found)
    return found[:limit]


def rerank_line(engine, prompt_text: str, doc: Document, offset: int, ctx: PromptContext | None,
                greedy: str, workspace=None, history=None, margin: float = 0.0) -> Reranked:
    """The served rest of the line: a repository line's rest when the model scores it above its
    own greedy ``greedy`` by more than ``margin`` (mean log-probability per token), else greedy.
    Engines without ``score`` and scoring failures serve greedy."""
    score = getattr(engine, "score", None)
    if score is None or ctx is None or ctx.mode is not CompletionMode.SINGLE_LINE:
        return Reranked(greedy)
    typed = doc.text[doc.lines.line_starts[doc.lines.line_of(offset)]:offset]
    head = typed.lstrip()
    rests = []
    for line in candidate_lines(doc, offset, ctx, workspace, history):
        # The rest as the served text would be: after what is typed, cut by the same rules.
        rest = line[len(head):]
        rest = postprocess(rest, CompletionMode.SINGLE_LINE, ctx.suffix)
        if rest.strip() and rest.rstrip() != greedy.rstrip() and rest not in rests:
            rests.append(rest)
    if not rests:
        return Reranked(greedy)
    started = time.perf_counter()
    try:
        scores = score(prompt_text, [greedy, *rests] if greedy.strip() else rests)
    except Exception:  # a scoring failure must not cost the completion
        log.warning("re-ranking failed; serving the model's line", exc_info=True)
        return Reranked(greedy, rests)
    elapsed = (time.perf_counter() - started) * 1000
    if not greedy.strip():
        scores = [float("-inf"), *scores]
    best = max(range(1, len(scores)), key=lambda i: scores[i])
    if scores[best] > scores[0] + margin:
        return Reranked(rests[best - 1], rests, scores, True, elapsed)
    return Reranked(greedy, rests, scores, False, elapsed)
