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

WINDOW_LINES = 4
QUERY_LINES_BEFORE = 3
MIN_SCORE = 0.5  # below this a run is more likely noise than the line being written
MAX_DOC_LINES_SCANNED = 3000
WORKSPACE_CHUNKS = 10
HISTORY_WEIGHT = 0.85


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


@dataclass
class Neighbourhood:
    """Term sets of the lines around the cursor's line: the two non-blank lines before it and
    the first non-blank line after it, plus all of them together."""

    before: frozenset[str]
    before2: frozenset[str]
    after: frozenset[str]
    all_terms: set[str]


def query_text(doc: Document, offset: int) -> str:
    """The neighbourhood the runs are matched against: a few lines before the cursor's line,
    the rest of that line and the line after it."""
    lines = doc.lines
    line_no = lines.line_of(offset)
    start = lines.line_starts[max(0, line_no - QUERY_LINES_BEFORE)]
    end = lines.line_bounds(min(lines.line_count - 1, line_no + 1))[1]
    return doc.text[start:end]


def neighbourhood(doc: Document, offset: int) -> Neighbourhood:
    lines = doc.lines
    line_no = lines.line_of(offset)
    above = [t for t in (line_terms(lines.line_text(i)) for i in range(line_no - 1, max(-1, line_no - 8), -1)) if t]
    below = [t for t in (line_terms(lines.line_text(i))
                         for i in range(line_no + 1, min(lines.line_count, line_no + 6))) if t]
    empty = frozenset()
    return Neighbourhood(above[0] if above else empty, above[1] if len(above) > 1 else empty,
                         below[0] if below else empty, set(code_tokens(query_text(doc, offset))))


_LINE_TERMS: dict[str, frozenset[str]] = {}


def line_terms(line: str) -> frozenset[str]:
    """code_tokens of one line as a set, memoised: the same file's lines are scored again at
    every new line the user starts."""
    found = _LINE_TERMS.get(line)
    if found is None:
        if len(_LINE_TERMS) > 200_000:
            _LINE_TERMS.clear()  # a crude bound; refilling costs one pass over a file
        found = _LINE_TERMS[line] = frozenset(code_tokens(line))
    return found


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def anchored_run(path: str, lines: list[str], near: Neighbourhood, source: str,
                 boost: float = 1.0) -> LineRun | None:
    """The best run of ``lines`` by analogy: a line like the one before the cursor (and the
    one before that), followed one line later by a line like the one after the cursor; the
    run shows that line, the one after it (the candidate for the cursor's line) and their
    neighbours. None when nothing in ``lines`` resembles the neighbourhood."""
    terms = [line_terms(line) for line in lines]
    best = (0.0, -1)
    last = len(lines) - 1
    for j in range(last):
        if not terms[j] or (near.before.isdisjoint(terms[j])
                            and (j == 0 or near.before2.isdisjoint(terms[j - 1]))
                            and (j + 2 > last or near.after.isdisjoint(terms[j + 2]))):
            continue  # no part of the analogy holds (most lines: cheap set checks in C)
        score = (_jaccard(near.before, terms[j])
                 + 0.5 * (_jaccard(near.before2, terms[j - 1]) if j else 0.0)
                 + 0.5 * (_jaccard(near.after, terms[j + 2]) if j + 2 < len(lines) else 0.0))
        if score > best[0]:
            best = (score, j)
    score, j = best
    if j < 0:
        return None
    # Whole-window overlap breaks ties between equally good anchors.
    first = max(0, j - 1)
    window = lines[first:first + WINDOW_LINES]
    held = set().union(*terms[first:first + WINDOW_LINES])
    overlap = len(near.all_terms & held) / len(near.all_terms) if near.all_terms else 0.0
    return LineRun(path, tuple(window), (score + 0.5 * overlap) * boost, source)


def _file_texts(doc: Document, window_start: int, window_end: int) -> list[tuple[str, list[str], str, float]]:
    """The current file's lines outside the prompt's window (above it, below it)."""
    lines = doc.lines
    first_in = lines.line_of(window_start)
    last_in = lines.line_of(max(window_start, window_end - 1))
    texts = []
    all_lines = doc.text.split("\n")
    for lo, hi in ((max(0, first_in - MAX_DOC_LINES_SCANNED), first_in),
                   (last_in + 1, min(len(all_lines), last_in + 1 + MAX_DOC_LINES_SCANNED))):
        if hi - lo >= 2:
            texts.append((doc.path, [line.rstrip("\r") for line in all_lines[lo:hi]], "file", 1.2))
    return texts


def _workspace_texts(workspace: WorkspaceIndex | None, query: str, doc: Document,
                     boosts: dict[str, float]) -> list[tuple[str, list[str], str, float]]:
    if workspace is None:
        return []
    # The index's copy of this file counts too: it is the saved (or committed) version, which
    # may still hold lines the editor's text has since lost.
    try:
        found = workspace.retrieve(query, exclude_path=None, limit=WORKSPACE_CHUNKS, boosts=boosts)
    except TypeError:  # an index without co-change boosts (tests, other indexes)
        found = workspace.retrieve(query, exclude_path=None, limit=WORKSPACE_CHUNKS)
    return [(s.path, s.text.split("\n"), "workspace",
             1.2 if s.path == doc.path else 1 + 0.2 * boosts.get(s.path, 0.0)) for s in found]


def _history_texts(history: HistoryIndex | None, query: str, doc: Document,
                   boosts: dict[str, float]) -> list[tuple[str, list[str], str, float]]:
    if history is None:
        return []
    # The working tree's lines come first (they are the code as it is now; measured on attrs,
    # history pieces at par crowded them out); among pieces, earlier versions of this file and
    # files that change with it rank up.
    return [(p.path, list(p.lines), "history",
             HISTORY_WEIGHT * (1.2 if p.path == doc.path else 1 + 0.2 * boosts.get(p.path, 0.0)))
            for _, p in history.retrieve(query, path=doc.path, limit=12, boosts=boosts)]


def line_runs(doc: Document, offset: int, window_start: int, window_end: int,
              workspace: WorkspaceIndex | None, history: HistoryIndex | None,
              limit: int = 6) -> list[LineRun]:
    """The runs most like the cursor's neighbourhood, best first, none that only repeat lines
    the window ``doc.text[window_start:window_end]`` already shows, no line shown twice."""
    near = neighbourhood(doc, offset)
    if len(near.all_terms) < 2:
        return []
    query = query_text(doc, offset)
    boosts = history.co_change(doc.path) if history is not None else {}
    texts = (_history_texts(history, query, doc, boosts) + _file_texts(doc, window_start, window_end)
             + _workspace_texts(workspace, query, doc, boosts))
    candidates = [run for path, lines, source, boost in texts
                  if (run := anchored_run(path, lines, near, source, boost)) is not None]
    candidates.sort(key=lambda run: -run.score)
    shown = {line.strip() for line in doc.text[window_start:window_end].split("\n") if line.strip()}
    chosen: list[LineRun] = []
    for run in candidates:
        if run.score < MIN_SCORE:
            break
        fresh = [line for line in run.lines if line.strip() and line.strip() not in shown]
        if not fresh:
            continue
        chosen.append(run)
        shown.update(line.strip() for line in fresh)
        if len(chosen) >= limit:
            break
    return chosen
