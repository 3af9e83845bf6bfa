"""Line-level retrieval: short runs of lines (at most six) similar to the cursor's neighbourhood,
from the git history (lines commits added or removed), the current file outside the prompt's
window, and other files (the workspace index's best chunks, cut down to their best lines).

Most lines a developer writes next already exist verbatim or nearly so in the repository or
its history; a small model copies what its prompt shows far more often than it recalls what it
was trained on, so showing a few such lines beats showing one large chunk under a 512-token
budget. Used by `build.build_context` only when it is given a history index.

The query is the few lines around the cursor's line, never the line's typed part: the prompt's
head (where these snippets go) must stay byte-identical while the user types on the line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .chunks import code_tokens
from .document import Document
from .types import Snippet

if TYPE_CHECKING:
    from .history import HistoryIndex
    from .index import WorkspaceIndex

WINDOW_LINES = 6
QUERY_LINES_BEFORE = 3
MIN_SIMILARITY = 0.34  # share of the query's terms a run must hold to be shown
MAX_DOC_LINES_SCANNED = 3000


@dataclass
class LineRun:
    """A candidate: some lines of one file (or of one commit's diff of it) and how similar."""

    path: str
    lines: tuple[str, ...]
    score: float
    source: str  # "history" | "file" | "workspace"

    def snippet(self) -> Snippet:
        kind = "history" if self.source == "history" else "lines"
        return Snippet(path=self.path, text="\n".join(self.lines), kind=kind, score=round(self.score, 4))


def query_text(doc: Document, offset: int) -> str:
    """The neighbourhood the runs are matched against: a few lines before the cursor's line,
    the rest of that line and the line after it."""
    lines = doc.lines
    line_no = lines.line_of(offset)
    start = lines.line_starts[max(0, line_no - QUERY_LINES_BEFORE)]
    end = lines.line_bounds(min(lines.line_count - 1, line_no + 1))[1]
    return doc.text[start:end]


def similarity(query_terms: set[str], text: str) -> float:
    """Share of the query's distinct terms that ``text`` holds (0..1)."""
    if not query_terms:
        return 0.0
    return len(query_terms & set(code_tokens(text))) / len(query_terms)


def _best_window(lines: list[str], query_terms: set[str]) -> tuple[float, int]:
    """(similarity, first line) of the WINDOW_LINES-line window of ``lines`` most like the query."""
    best = (0.0, 0)
    terms = [set(code_tokens(line)) for line in lines]
    for first in range(0, max(1, len(lines) - WINDOW_LINES + 1)):
        held = set().union(*terms[first:first + WINDOW_LINES])
        score = len(query_terms & held) / len(query_terms)
        if score > best[0]:
            best = (score, first)
    return best


def _file_runs(doc: Document, window_start: int, window_end: int, query_terms: set[str]) -> list[LineRun]:
    """Runs of the current file that lie outside the prompt's window (above or below it)."""
    lines = doc.lines
    first_in = lines.line_of(window_start)
    last_in = lines.line_of(max(window_start, window_end - 1))
    runs: list[LineRun] = []
    for lo, hi in ((max(0, first_in - MAX_DOC_LINES_SCANNED), first_in),
                   (last_in + 1, min(lines.line_count, last_in + 1 + MAX_DOC_LINES_SCANNED))):
        if hi - lo < 2:
            continue
        texts = [lines.line_text(i) for i in range(lo, hi)]
        for first in range(0, len(texts), WINDOW_LINES // 2):
            window = texts[first:first + WINDOW_LINES]
            score = similarity(query_terms, "\n".join(window))
            if score >= MIN_SIMILARITY:
                runs.append(LineRun(doc.path, tuple(window), score, "file"))
    return runs


def _workspace_runs(workspace: WorkspaceIndex | None, query: str, doc: Document,
                    query_terms: set[str], boosts: dict[str, float]) -> list[LineRun]:
    if workspace is None:
        return []
    runs = []
    try:
        found = workspace.retrieve(query, exclude_path=doc.path, limit=6, boosts=boosts)
    except TypeError:  # an index without co-change boosts (tests, other indexes)
        found = workspace.retrieve(query, exclude_path=doc.path, limit=6)
    for snippet in found:
        chunk_lines = snippet.text.split("\n")
        score, first = _best_window(chunk_lines, query_terms)
        window = tuple(chunk_lines[first:first + WINDOW_LINES])
        runs.append(LineRun(snippet.path, window, score * (1 + 0.2 * boosts.get(snippet.path, 0.0)),
                            "workspace"))
    return runs


def _history_runs(history: HistoryIndex | None, query: str, doc: Document, query_terms: set[str],
                  boosts: dict[str, float]) -> list[LineRun]:
    if history is None:
        return []
    runs = []
    for _, piece in history.retrieve(query, path=doc.path, limit=12, boosts=boosts):
        score = similarity(query_terms, piece.text)
        # An earlier version of this file, or a file that changes with it, is likelier to hold
        # the line being written than an unrelated file with similar words.
        score *= 1.2 if piece.path == doc.path else 1 + 0.2 * boosts.get(piece.path, 0.0)
        runs.append(LineRun(piece.path, piece.lines, score, "history"))
    return runs


def line_runs(doc: Document, offset: int, window_start: int, window_end: int,
              workspace: WorkspaceIndex | None, history: HistoryIndex | None,
              limit: int = 6) -> list[LineRun]:
    """The runs most similar to the cursor's neighbourhood, best first, none that only repeat
    lines the window ``doc.text[window_start:window_end]`` already shows, no line shown twice."""
    query = query_text(doc, offset)
    query_terms = set(code_tokens(query))
    if len(query_terms) < 2:
        return []
    boosts = history.co_change(doc.path) if history is not None else {}
    candidates = (_history_runs(history, query, doc, query_terms, boosts)
                  + _file_runs(doc, window_start, window_end, query_terms)
                  + _workspace_runs(workspace, query, doc, query_terms, boosts))
    candidates.sort(key=lambda run: -run.score)
    shown = {line.strip() for line in doc.text[window_start:window_end].split("\n") if line.strip()}
    chosen: list[LineRun] = []
    for run in candidates:
        if run.score < MIN_SIMILARITY:
            break
        fresh = [line for line in run.lines if line.strip() and line.strip() not in shown]
        if not fresh:
            continue
        chosen.append(run)
        shown.update(line.strip() for line in fresh)
        if len(chosen) >= limit:
            break
    return chosen
