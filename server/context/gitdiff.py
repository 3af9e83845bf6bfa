"""Read what git history changed, as line pieces: one streamed ``git log -p`` per read.

The server (history retrieval) and the trainer (prompts "as of" a commit) both read history
through here, with plain ``git`` subprocess calls, so both see the same pieces. Reading is
bounded: at most ``max_commits`` commits, ``max_bytes`` of diff text and ``max_s`` seconds; a
missing or broken git, or a folder outside any repository, reads as no history (never raises).
"""

from __future__ import annotations

import logging
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .languages import source_extensions
from .skip_rules import generated_name, in_skipped_dir

log = logging.getLogger(__name__)

_GIT = ("git", "-c", "core.quotePath=false", "-c", "diff.noprefix=false", "-c", "color.ui=never")
_MARK = "\x01C"  # starts a commit header line; diff content lines start with ' ', '+', '-', ...
_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")
MAX_LINE_CHARS = 300  # longer lines are data, not code worth retrieving
MAX_RUN_LINES = 40  # a longer added run is generated or moved code: only its head is kept
PIECE_LINES = 6  # a retrieved piece shows at most this many lines
MAX_COMMIT_BYTES = 4_000_000  # past the byte limit, the commit being read may run this far over


@dataclass(frozen=True)
class Piece:
    """A few consecutive lines of one side of a diff hunk: what a commit added (``side="added"``,
    the file after it) or removed (``side="removed"``, an earlier version of the file)."""

    path: str  # '/'-separated, relative to the folder git was asked about
    sha: str
    time: int  # committer time, seconds since the epoch
    side: str  # "added" | "removed"
    lines: tuple[str, ...]
    changed: tuple[int, ...]  # indices into lines of the added/removed ones (the rest: context)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class CommitDiff:
    """One commit: the source files it touched and the pieces of its diff."""

    sha: str
    time: int
    paths: list[str] = field(default_factory=list)
    pieces: list[Piece] = field(default_factory=list)


def wanted_path(path: str) -> bool:
    """Source files the history keeps (the workspace index's own rules: code, not vendored)."""
    pure = PurePosixPath(path)
    return (pure.suffix.lower() in source_extensions() and not in_skipped_dir(path)
            and not generated_name(pure.name))


def _git(root: Path, *args: str, timeout_s: float = 20) -> str | None:
    try:
        done = subprocess.run([*_GIT, "-C", str(root), *args], capture_output=True,
                              timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", "replace").strip()


def resolve_start(root: Path, until: str | None) -> str | None:
    """The commit the walk starts from: HEAD when ``until`` is None, else the first parent of
    ``until`` (history strictly before it); None when there is no such commit or no git (one
    `git rev-parse`: it fails outside a repository, in a broken one and for an unknown commit)."""
    spec = "HEAD" if until is None else f"{until}^1"
    return _git(root, "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}") or None


def read_commits(root: Path, start: str, max_commits: int, max_bytes: int = 32_000_000,
                 max_s: float = 120.0, cancel: threading.Event | None = None,
                 on_commit: Callable[[int], None] | None = None) -> Iterator[CommitDiff]:
    """Commits from ``start`` back along first parents, newest first, with their pieces.

    Merges show their change against the first parent. Stops quietly at a limit or on cancel;
    git's failures end the walk (what was read is kept)."""
    args = [*_GIT, "-C", str(root), "log", "--first-parent", "--diff-merges=first-parent", "-p",
            "-U1", "--no-ext-diff", "--no-textconv", "--relative", f"--max-count={max_commits}",
            f"--format={_MARK} %H %ct", start, "--"]
    try:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except OSError:
        log.info("git is not available: no history retrieval")
        return
    started = time.monotonic()
    read = count = 0
    parser = _DiffParser()
    try:
        for raw in proc.stdout:
            read += len(raw)
            line = raw.decode("utf-8", "replace").rstrip("\n").rstrip("\r")
            if line.startswith(_MARK):
                done = parser.finish()
                if done is not None:
                    count += 1
                    yield done
                    if on_commit is not None:
                        on_commit(count)
                if count and (read > max_bytes or time.monotonic() - started > max_s) or (
                        cancel is not None and cancel.is_set()):
                    log.info("history read stopped after %d commits (%d bytes)", count, read)
                    return
                parts = line.split()
                parser.begin(parts[1], int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 0)
            elif read > max_bytes + MAX_COMMIT_BYTES:
                log.info("history read stopped inside a commit over %d bytes", read)
                return  # one huge commit (vendored code, data): dropped, not parsed
            else:
                parser.feed(line)
        done = parser.finish()
        if done is not None:
            yield done
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


class _DiffParser:
    """Turns one commit's ``git log -p -U1`` lines into pieces (a small state machine)."""

    def __init__(self) -> None:
        self.commit: CommitDiff | None = None
        self.path: str | None = None
        self.hunk: list[tuple[str, str]] = []  # (' ' | '+' | '-', text)
        self.in_header = False  # between "diff --git" and the first "@@": no content lines

    def begin(self, sha: str, when: int) -> None:
        self.commit = CommitDiff(sha, when)
        self.path, self.in_header = None, False

    def finish(self) -> CommitDiff | None:
        self._flush_hunk()
        commit, self.commit = self.commit, None
        return commit

    def feed(self, line: str) -> None:
        if self.commit is None:
            return
        if line.startswith("diff --git "):
            self._flush_hunk()
            self.path, self.in_header = None, True
        elif line.startswith("@@"):
            self._flush_hunk()
            self.in_header = False
        elif not self.in_header:
            if self.path is not None and line[:1] in (" ", "+", "-"):
                self.hunk.append((line[:1], line[1:]))
        elif line.startswith("+++ "):
            name = line[4:]
            path = name[2:] if name.startswith("b/") else None  # /dev/null: a deletion
            self.path = path if path and wanted_path(path) else None
            if self.path and self.path not in self.commit.paths:
                self.commit.paths.append(self.path)
        elif line.startswith("--- "):
            name = line[4:]
            old = name[2:] if name.startswith("a/") else None
            if old and wanted_path(old) and old not in self.commit.paths:
                self.commit.paths.append(old)  # deleted files change together with the rest too

    def _flush_hunk(self) -> None:
        hunk, self.hunk = self.hunk, []
        if not hunk or self.commit is None or self.path is None:
            return
        for side, mark in (("added", "+"), ("removed", "-")):
            view = [(kind, text) for kind, text in hunk if kind in (" ", mark)]
            self.commit.pieces.extend(_pieces(view, mark, side, self.path, self.commit))


def _pieces(view: list[tuple[str, str]], mark: str, side: str, path: str,
            commit: CommitDiff) -> Iterator[Piece]:
    """Pieces of one hunk side: each run of changed lines with one context line either side,
    cut into windows of at most PIECE_LINES lines."""
    index = 0
    while index < len(view):
        if view[index][0] != mark:
            index += 1
            continue
        end = index
        while end < len(view) and view[end][0] == mark:
            end += 1
        run_start, run_end = max(0, index - 1), min(len(view), end + 1, index + MAX_RUN_LINES)
        for first in range(run_start, run_end, PIECE_LINES - 1):
            window = view[first:min(run_end, first + PIECE_LINES)]
            changed = tuple(i for i, (kind, text) in enumerate(window)
                            if kind == mark and text.strip())
            if not changed or any(len(text) > MAX_LINE_CHARS for _, text in window):
                continue
            yield Piece(path, commit.sha, commit.time, side, tuple(t for _, t in window), changed)
            if first + PIECE_LINES >= run_end:
                break
        index = end
