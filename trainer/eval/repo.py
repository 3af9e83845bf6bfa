"""The evaluator's view of a git repository: checks, added lines, blob reads (through `trainer.gitlog`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from repolsp.trainer import gitlog
from repolsp.trainer.errors import TrainerError
from repolsp.trainer.eval.holes import EvalError
from repolsp.trainer.filters import MAX_FILE_BYTES


def git(repo: Path, *args: str, check: bool = True, input_bytes: bytes | None = None) -> bytes:
    """`gitlog.run_git` with its failures as EvalError (check=False: a failed probe reads as b"")."""
    try:
        return gitlog.run_git(repo, *args, input_bytes=input_bytes, check=check)
    except TrainerError as exc:
        raise EvalError(str(exc)) from exc


def check_repository(repo: Path) -> Path:
    """The work tree's top folder; EvalError for no repository, no commits or a shallow clone."""
    if not repo.is_dir():
        raise EvalError(f"{repo} is not a folder")
    top = git(repo, "rev-parse", "--show-toplevel", check=False).strip()
    if top:
        root = Path(top.decode("utf-8", "replace"))
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
    """Contents of `rev:path` specs (None when missing): `gitlog.read_specs`, failures as EvalError."""
    try:
        return gitlog.read_specs(repo, list(specs))
    except TrainerError as exc:
        raise EvalError(str(exc)) from exc


def decode_source(data: bytes | None) -> str | None:
    """UTF-8 text of a source file, or None for binary, non-UTF-8 or oversized content."""
    if data is None or len(data) > MAX_FILE_BYTES or b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
