"""The evaluator's view of a git repository: checks, added lines, blob reads (through `trainer.gitlog`)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from repolsp.trainer import gitlog
from repolsp.trainer.errors import TrainerError
from repolsp.trainer.eval.holes import EvalError

MAX_FILE_BYTES = 1_000_000


def git(repo: Path, *args: str, check: bool = True, input_bytes: bytes | None = None) -> bytes:
    """Run git in repo; EvalError with git's last message line on failure (check=True)."""
    try:
        done = subprocess.run(
            ["git", "-c", "core.quotePath=false", "-C", str(repo), *args],
            input=input_bytes, capture_output=True, check=False,
        )
    except FileNotFoundError as exc:
        raise EvalError("git is not installed or not on PATH; the history task needs it") from exc
    if check and done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise EvalError(f"git {args[0]} failed in {repo}: {lines[-1] if lines else 'unknown error'}")
    if done.returncode != 0:
        return b""  # check=False: a failed probe reads as empty output
    return done.stdout


def check_repository(repo: Path) -> Path:
    """The work tree's top folder; EvalError for no repository, no commits or a shallow clone."""
    if not repo.is_dir():
        raise EvalError(f"{repo} is not a folder")
    probe = subprocess.run(["git", "-C", str(repo), "rev-parse", "--show-toplevel"],
                           capture_output=True, text=True, check=False) if shutil.which("git") else None
    if probe is None:
        raise EvalError("git is not installed or not on PATH; the history task needs it")
    if probe.returncode == 0:
        root = Path(probe.stdout.strip())
    elif git(repo, "rev-parse", "--is-bare-repository", check=False).strip() == b"true":
        root = repo.resolve()  # a bare mirror: history is all the task reads
    else:
        raise EvalError(f"{repo} is not inside a git repository (the history task needs one)")
    if not git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False).strip():
        raise EvalError(f"{root} has no commits yet: the history task needs some history")
    if git(root, "rev-parse", "--is-shallow-repository").strip() == b"true":
        raise EvalError(
            f"{root} is a shallow clone: its older history is missing, so held-out commits cannot "
            "be told from training code; run `git fetch --unshallow` first"
        )
    return root


def added_line_ranges(repo: Path, commit) -> dict[str, list[tuple[int, int]]]:
    """path -> 1-based inclusive line ranges a commit (trainer `gitlog.Commit`) added or changed
    against its first parent; the trainer's own diff parser, so both see the same lines."""

    try:
        changes = gitlog.changed_files(repo, commit)
    except TrainerError as exc:
        raise EvalError(str(exc)) from exc
    return {change.path: list(change.added_lines) for change in changes
            if change.status != "D" and not change.binary and change.added_lines}


def read_blobs(repo: Path, specs: Sequence[str]) -> list[bytes | None]:
    """Contents of `rev:path` specs in one `git cat-file --batch` call (None when missing)."""
    if not specs:
        return []
    out = git(repo, "cat-file", "--batch", input_bytes="".join(s + "\n" for s in specs).encode())
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


def decode_source(data: bytes | None) -> str | None:
    """UTF-8 text of a source file, or None for binary, non-UTF-8 or oversized content."""
    if data is None or len(data) > MAX_FILE_BYTES or b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
