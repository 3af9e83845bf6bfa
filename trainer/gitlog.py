"""Git history through git plumbing (`git rev-list`, `git diff-tree`, `git cat-file --batch`).

Plain subprocess calls to the user's own `git` keep the trainer free of a git library and read
exactly what the user's git reads (worktrees, packs, alternates). One `diff-tree` per commit and
one long-lived `cat-file --batch` process for file contents.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from repolsp.trainer.errors import TrainerError

_HUNK = re.compile(rb"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")
_GIT = ("git", "-c", "core.quotePath=false", "-c", "diff.noprefix=false")


@dataclass(frozen=True)
class Commit:
    """One commit of the walked branch."""

    sha: str
    parent: str | None  # first parent; None for a root commit
    time: int  # committer time, seconds since the epoch
    subject: str


@dataclass
class FileChange:
    """One file a commit added, modified, renamed or deleted."""

    status: str  # "A", "M", "R", "D" (copies and type changes are reported as "M")
    path: str  # path after the commit ('/'-separated, repository-relative)
    old_path: str | None  # path before the commit (None when added)
    new_blob: str | None  # blob id after the commit (None when deleted)
    binary: bool = False
    # 1-based inclusive line ranges of the new file that the commit added or changed.
    added_lines: list[tuple[int, int]] = field(default_factory=list)


def run_git(repo: Path, *args: str, input_bytes: bytes | None = None, check: bool = True) -> bytes:
    """Run git in `repo` and return stdout; a failure raises TrainerError with git's message.

    With check=False a failed command reads as empty output (for probes such as `rev-parse`).
    """
    try:
        done = subprocess.run(
            [*_GIT, "-C", str(repo), *args], input=input_bytes, capture_output=True, check=False
        )
    except FileNotFoundError as exc:
        raise TrainerError("git is not installed or not on PATH; reading the history needs it") from exc
    if done.returncode != 0:
        if not check:
            return b""
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise TrainerError(f"git {args[0]} failed in {repo}: {message[-1] if message else '?'}")
    return done.stdout


def read_specs(repo: Path, specs: list[str]) -> list[bytes | None]:
    """Contents of `rev:path` specs in one `git cat-file --batch` call (None when missing or not
    a file)."""
    if not specs:
        return []
    out = run_git(repo, "cat-file", "--batch", input_bytes="".join(s + "\n" for s in specs).encode())
    blobs: list[bytes | None] = []
    position = 0
    for _ in specs:
        end = out.index(b"\n", position)
        header = out[position:end].split()
        position = end + 1
        if len(header) < 3 or header[1] != b"blob":
            blobs.append(None)
            continue
        size = int(header[2])
        blobs.append(out[position:position + size])
        position += size + 1
    return blobs


def repo_root(path: Path) -> Path:
    """The top folder of the git work tree containing `path` (or a bare repository itself),
    or TrainerError if `path` is not in a git repository."""
    if not Path(path).is_dir():
        raise TrainerError(f"{path} is not a folder")
    done = subprocess.run(
        [*_GIT, "-C", str(path), "rev-parse", "--is-bare-repository", "--show-toplevel"],
        capture_output=True, check=False,
    )
    lines = done.stdout.decode().split()
    if lines[:1] == ["true"]:
        return Path(path).resolve()  # a bare clone or mirror: history only, used in place
    if done.returncode != 0 or len(lines) < 2:
        raise TrainerError(f"{path} is not a git repository (run `git init` and commit, or pass REPO)")
    return Path(lines[1])


def list_commits(repo: Path, max_commits: int | None = None, since: str | None = None) -> list[Commit]:
    """Commits of the current branch, oldest first, following first parents only.

    `max_commits` keeps the newest N; `since` is anything `git log --since` accepts.
    """
    head = subprocess.run(
        [*_GIT, "-C", str(repo), "rev-parse", "--verify", "-q", "HEAD"], capture_output=True, check=False
    )
    if head.returncode != 0:
        raise TrainerError(f"{repo} has no commits yet: commit some code, then train on it")
    args = ["log", "--first-parent", "--format=%H%x00%P%x00%ct%x00%s%x00"]
    if max_commits:
        args.append(f"--max-count={int(max_commits)}")
    if since:
        args.append(f"--since={since}")
    out = run_git(repo, *args, "HEAD").decode("utf-8", "replace")
    commits = []
    fields_ = out.split("\x00")
    for i in range(0, len(fields_) - 4, 4):
        sha, parents, time_s, subject = (f.strip("\n") for f in fields_[i : i + 4])
        commits.append(Commit(sha, parents.split()[0] if parents.split() else None, int(time_s), subject))
    commits.reverse()
    return commits


def changed_files(repo: Path, commit: Commit) -> list[FileChange]:
    """Files `commit` changed against its first parent, with the new file's added line ranges."""
    base = [commit.parent, commit.sha] if commit.parent else ["--root", commit.sha]
    out = run_git(
        repo, "diff-tree", "-r", "-M", "--no-commit-id", "--raw", "-p", "-U0", "--no-color",
        "--no-ext-diff", "--no-textconv", "--full-index", *base,
    )
    return parse_diff_tree(out)


def parse_diff_tree(out: bytes) -> list[FileChange]:
    """Parse `git diff-tree --raw -p -U0` output (one raw line per file, then one patch each)."""
    changes: list[FileChange] = []
    lines = out.split(b"\n")
    i = 0
    while i < len(lines) and lines[i].startswith(b":"):
        meta, _, paths = lines[i].decode("utf-8", "replace").partition("\t")
        parts = meta.split()
        status = parts[4][0]
        names = paths.split("\t")
        new_blob = parts[3] if status != "D" else None
        if status in ("R", "C"):
            old, new = names[0], names[-1]
            change = FileChange("R" if status == "R" else "A", new, old if status == "R" else None, new_blob)
        elif status == "A":
            change = FileChange("A", names[0], None, new_blob)
        elif status == "D":
            change = FileChange("D", names[0], names[0], None)
        else:  # M, T (type change)
            change = FileChange("M", names[0], names[0], new_blob)
        changes.append(change)
        i += 1
    # Patches follow in the same order as the raw lines, one "diff --git" section per file.
    section = -1
    for line in lines[i:]:
        if line.startswith(b"diff --git "):
            section += 1
            continue
        if section < 0 or section >= len(changes):
            continue
        if line.startswith((b"Binary files ", b"GIT binary patch")):
            changes[section].binary = True
            continue
        match = _HUNK.match(line)
        if match:
            start = int(match.group(1))
            count = int(match.group(2)) if match.group(2) is not None else 1
            if count > 0:
                changes[section].added_lines.append((start, start + count - 1))
    return changes


def tree_files(repo: Path, commit_sha: str) -> list[tuple[str, str, int]]:
    """(path, blob id, size in bytes) of every regular file in a commit's tree."""
    out = run_git(repo, "ls-tree", "-r", "-z", "--long", commit_sha)
    files = []
    for entry in out.split(b"\x00"):
        if not entry:
            continue
        meta, _, path = entry.partition(b"\t")
        mode, kind, blob, size = meta.split()
        if kind != b"blob" or mode not in (b"100644", b"100755"):
            continue  # submodules, symlinks
        files.append((path.decode("utf-8", "replace"), blob.decode(), int(size)))
    return files


class BlobReader:
    """File contents by blob id through one `git cat-file --batch` process."""

    def __init__(self, repo: Path):
        self.repo = repo
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> subprocess.Popen:
        if self._proc is None:
            self._proc = subprocess.Popen(
                [*_GIT, "-C", str(self.repo), "cat-file", "--batch"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            )
        return self._proc

    def read(self, blob: str) -> bytes | None:
        """The blob's bytes, or None if git does not have it."""
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(blob.encode() + b"\n")
        proc.stdin.flush()
        header = proc.stdout.readline().split()
        if len(header) < 3 or header[1] == b"missing":
            return None
        size = int(header[2])
        data = proc.stdout.read(size)
        proc.stdout.read(1)  # the newline after the contents
        return data

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.stdin:
                self._proc.stdin.close()
            self._proc.wait(timeout=10)
            self._proc = None
