"""What the repository's git history says, for prompts: the lines recent commits added and
removed (earlier versions of files), and which files change together (co-change).

The API below is shared by the server and the trainer; its signatures stay stable::

    history = HistoryIndex.from_git(root, until=None, max_commits=400)
        # until=None: HEAD and its first-parent ancestors. until=<commit>: only the commits
        # strictly before it (its first-parent ancestors, not itself) -- the history "as of"
        # that commit, with no future code, for building a training or evaluation prompt.
    history.advance(root, sha)      # the trainer, walking forward, adds a commit once mined
    history.catch_up(root)          # the server: add the commits made since (HEAD moved on)
    history.add_commit(commit)      # the same from a `gitdiff.CommitDiff` already read
    HistoryIndex.empty()            # no history (no git, or switched off): retrieves nothing

    history.retrieve(query_text, path, limit)   # -> [Piece], most similar first
    history.co_change(path)                     # -> {other path: weight in (0, 1]}
    history.lines_starting(typed, limit)        # -> [str], lines a commit added that start so

`prepare.prepare_prompt(..., history=history)` puts retrieved lines into the prompt (see
`line_retrieval`). The index is bounded (``max_commits`` newest commits, ``max_pieces``) and
thread-safe: the server fills it on a worker (``build``, with progress) while completions query
it; queries during a build see what was read so far.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path

from .bm25 import Bm25
from .chunks import code_tokens
from .gitdiff import CommitDiff, Piece, read_commits, resolve_start

log = logging.getLogger(__name__)

MAX_COMMITS = 400
MAX_PIECES = 60_000
MAX_CO_CHANGE_FILES = 20  # a commit touching more files says little about which belong together


class HistoryIndex:
    """Pieces of recent commits' diffs for BM25 retrieval, plus co-change counts per file pair."""

    def __init__(self, max_commits: int = MAX_COMMITS, max_pieces: int = MAX_PIECES):
        self.max_commits = max_commits
        self.max_pieces = max_pieces
        self._lock = threading.RLock()
        self._bm25 = Bm25()
        self._pieces: list[Piece | None] = []
        self._commits: deque[tuple[str, list[int], list[str]]] = deque()  # oldest first
        self._by_text: dict[tuple[str, str], int] = {}  # (side, text) -> id of the newest such piece
        self._pairs: Counter[tuple[str, str]] = Counter()
        self._lines: list[str] = []  # sorted stripped added lines (for lines_starting)
        self._line_counts: Counter[str] = Counter()
        self._lines_dirty = False
        self.shas: set[str] = set()
        self.generation = 0  # changes when a build finishes (prompt caches key on it)
        self._head: str | None = None  # the HEAD last caught up with
        self.built = False

    # -- building --

    @classmethod
    def empty(cls) -> HistoryIndex:
        """An index with no history (no git, or history switched off)."""
        index = cls()
        index.built = True
        return index

    @classmethod
    def from_git(cls, root: str | Path, until: str | None = None, max_commits: int = MAX_COMMITS,
                 max_bytes: int = 32_000_000, max_s: float = 120.0,
                 progress: Callable[[int, int], None] | None = None,
                 cancel: threading.Event | None = None) -> HistoryIndex:
        """The history of the repository holding ``root`` (see the module docstring for
        ``until``); no git, no commits or a broken repository give an empty index."""
        index = cls(max_commits=max_commits)
        index.build(root, until, max_bytes, max_s, progress, cancel)
        return index

    def build(self, root: str | Path, until: str | None = None, max_bytes: int = 32_000_000,
              max_s: float = 120.0, progress: Callable[[int, int], None] | None = None,
              cancel: threading.Event | None = None) -> None:
        """Read up to ``max_commits`` commits (newest first) into the index; progress(done,
        total) is called per commit. Never raises on git trouble: the index stays as read."""
        started = time.monotonic()
        try:
            start = resolve_start(Path(root), until)
            if start is not None:
                read: list[CommitDiff] = []
                for commit in read_commits(Path(root), start, self.max_commits, max_bytes, max_s,
                                           cancel, None):
                    read.append(commit)
                    if progress is not None:
                        progress(len(read), self.max_commits)
                for commit in reversed(read):  # oldest first: newer pieces win duplicates
                    self.add_commit(commit)
        except Exception:  # history is best effort: never lose completions over it
            log.warning("could not read the git history of %s", root, exc_info=True)
        with self._lock:
            self.built = True
            self.generation += 1
        log.info("history: %d commits, %d pieces in %.1fs", len(self._commits),
                 self.piece_count(), time.monotonic() - started)

    def catch_up(self, root: str | Path, max_s: float = 30.0) -> int:
        """Add the commits made since the index was read (a commit, a pull, a checkout): those
        from HEAD back to the first one the index holds. The number added; a HEAD already
        caught up with costs one `git rev-parse`. Never raises."""
        try:
            head = resolve_start(Path(root), None)
            if head is None or head == self._head or head in self.shas:
                self._head = head
                return 0
            new: list[CommitDiff] = []
            for commit in read_commits(Path(root), head, self.max_commits, max_s=max_s):
                if commit.sha in self.shas:
                    break
                new.append(commit)
        except Exception:
            log.warning("could not read new commits of %s", root, exc_info=True)
            return 0
        for commit in reversed(new):  # oldest first, as the build adds them
            self.add_commit(commit)
        with self._lock:
            self._head = head
            self.generation += 1
        if new:
            log.info("history: %d new commits (HEAD %s)", len(new), head[:12])
        return len(new)

    def advance(self, root: str | Path, sha: str) -> None:
        """Add one commit (read with git) as the newest: the trainer's walk moves past it."""
        try:
            for commit in read_commits(Path(root), sha, 1):
                self.add_commit(commit)
        except Exception:
            log.warning("could not read commit %s", sha, exc_info=True)

    def add_commit(self, commit: CommitDiff) -> None:
        """Add a commit as the newest; the oldest is dropped beyond ``max_commits``."""
        with self._lock:
            if commit.sha in self.shas:
                return
            ids = []
            for piece in commit.pieces:
                if len(self._pieces) - self._bm25.dead >= self.max_pieces:
                    break
                older = self._by_text.get((piece.side, piece.text))
                if older is not None:
                    self._drop_piece(older)
                piece_id = self._bm25.add(code_tokens(piece.text))
                self._pieces.append(piece)
                self._by_text[(piece.side, piece.text)] = piece_id
                ids.append(piece_id)
                if piece.side == "added":
                    for i in piece.changed:
                        self._line_counts[piece.lines[i].strip()] += 1
                    self._lines_dirty = True
            paths = sorted(set(commit.paths))
            if 1 < len(paths) <= MAX_CO_CHANGE_FILES:
                for i, first in enumerate(paths):
                    for second in paths[i + 1:]:
                        self._pairs[(first, second)] += 1
            self._commits.append((commit.sha, ids, paths))
            self.shas.add(commit.sha)
            while len(self._commits) > self.max_commits:
                self._drop_oldest()

    def _drop_piece(self, piece_id: int) -> None:
        piece = self._pieces[piece_id]
        if piece is None:
            return
        self._bm25.remove(piece_id)
        self._pieces[piece_id] = None
        if self._by_text.get((piece.side, piece.text)) == piece_id:
            del self._by_text[(piece.side, piece.text)]
        if piece.side == "added":
            for i in piece.changed:
                line = piece.lines[i].strip()
                self._line_counts[line] -= 1
                if self._line_counts[line] <= 0:
                    del self._line_counts[line]
            self._lines_dirty = True

    def _drop_oldest(self) -> None:
        sha, ids, paths = self._commits.popleft()
        self.shas.discard(sha)
        for piece_id in ids:
            self._drop_piece(piece_id)
        if 1 < len(paths) <= MAX_CO_CHANGE_FILES:
            for i, first in enumerate(paths):
                for second in paths[i + 1:]:
                    self._pairs[(first, second)] -= 1
                    if self._pairs[(first, second)] <= 0:
                        del self._pairs[(first, second)]

    # -- queries --

    def __len__(self) -> int:
        return len(self._commits)

    def piece_count(self) -> int:
        """Number of live pieces."""
        return self._bm25.size

    def retrieve(self, query_text: str, path: str | None = None, limit: int = 8,
                 boosts: dict[str, float] | None = None) -> list[tuple[float, Piece]]:
        """(score, piece) of the pieces most similar to ``query_text`` (BM25), best first;
        pieces of ``path`` (earlier versions of the file) and of files in ``boosts`` ranked up."""
        terms = code_tokens(query_text)
        if not terms or limit <= 0:
            return []
        boosts = boosts or {}
        with self._lock:
            found = []
            for score, piece_id in self._bm25.top(terms, count=limit * 4 + 16):
                piece = self._pieces[piece_id]
                if piece is None:
                    continue
                boost = 1.5 if piece.path == path else 1.0 + 0.5 * boosts.get(piece.path, 0.0)
                found.append((score * boost, piece_id, piece))
        found.sort(key=lambda item: (-item[0], -item[1]))
        return [(round(score, 4), piece) for score, _, piece in found[:limit]]

    def co_change(self, path: str | None, limit: int = 20) -> dict[str, float]:
        """Files that changed in the same commits as ``path``: weight = shared commits over the
        most shared, in (0, 1]."""
        if not path:
            return {}
        with self._lock:
            counts = Counter()
            for (first, second), count in self._pairs.items():
                if first == path:
                    counts[second] += count
                elif second == path:
                    counts[first] += count
        if not counts:
            return {}
        top = counts.most_common(limit)
        best = top[0][1]
        return {other: count / best for other, count in top}

    def lines_starting(self, typed: str, limit: int = 20) -> list[str]:
        """Distinct stripped lines the indexed commits added that start with ``typed`` (stripped)
        and are longer, most often added first."""
        head = typed.strip()
        if not head:
            return []
        with self._lock:
            if self._lines_dirty:
                self._lines = sorted(self._line_counts)
                self._lines_dirty = False
            lines = self._lines
            lo = bisect.bisect_left(lines, head)
            hi = bisect.bisect_left(lines, head + "\U0010ffff", lo)
            found = [line for line in lines[lo:min(hi, lo + 500)] if len(line) > len(head)]
            found.sort(key=lambda line: (-self._line_counts.get(line, 0), line))
        return found[:limit]

