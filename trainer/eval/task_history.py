"""The history task: holes from lines the held-out commits added, minus code the training split holds."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from repolsp.server.context.languages import source_extensions
from repolsp.trainer import gitlog
from repolsp.trainer.errors import TrainerError
from repolsp.trainer.eval.holes import (
    EvalError,
    EvalItem,
    completable,
    cut_columns,
    is_code_line,
    line_hole,
    span_hole,
)
from repolsp.trainer.eval.metrics import python_parses
from repolsp.trainer.eval.repo import (
    MAX_FILE_BYTES,
    added_line_ranges,
    check_repository,
    decode_source,
    git,
    read_blobs,
)
from repolsp.trainer.filters import path_excluded
from repolsp.trainer.mine import split_for_commits

MAX_TRAINING_BYTES = 64_000_000


@dataclass
class TrainingSplit:
    """The code before the held-out commits, for dropping targets seen in training."""

    lines: set[str] = field(default_factory=set)
    text: str = ""  # stripped lines joined by newlines, for span lookups

    def contains(self, target: str) -> bool:
        """Whether the target (stripped lines) occurs verbatim in the training code."""
        stripped = [line.strip() for line in target.split("\n") if line.strip()]
        if not stripped:
            return False
        if len(stripped) == 1:
            return stripped[0] in self.lines
        return "\n".join(stripped) in self.text


def load_training_split(repo: Path, rev: str | None, extensions: frozenset[str]) -> TrainingSplit:
    """Supported source files of the tree at rev (the newest training commit)."""
    if rev is None:
        return TrainingSplit()
    listing = git(repo, "ls-tree", "-r", "-l", "-z", rev).split(b"\0")
    specs, total = [], 0
    for entry in listing:
        meta, _, name = entry.partition(b"\t")
        parts = meta.split()
        if len(parts) < 4 or parts[1] != b"blob" or not parts[3].isdigit():
            continue
        path = name.decode("utf-8", "replace")
        size = int(parts[3])
        if Path(path).suffix.lower() not in extensions or size > MAX_FILE_BYTES:
            continue
        if total + size > MAX_TRAINING_BYTES:
            break
        total += size
        specs.append(parts[2].decode())
    split = TrainingSplit()
    texts = []
    for blob in read_blobs(repo, specs):
        text = decode_source(blob)
        if text is None:
            continue
        stripped = [line.strip() for line in text.split("\n")]
        split.lines.update(line for line in stripped if line)
        texts.append("\n".join(line for line in stripped if line))
    split.text = "\n".join(texts)
    return split


@dataclass
class HistorySplit:
    """The trainer's time split, seen from the evaluator."""

    held_out: list  # trainer `gitlog.Commit`s of the test split, newest first
    training_rev: str | None  # the newest commit before them (its tree = the training code)
    commits: int  # commits walked (first-parent)
    commits_with_code: int  # of those, commits that changed a supported, non-vendored file
    note: str = ""


def commits_with_code(repo: Path, commits: Sequence, extensions: frozenset[str]) -> list:
    """The commits (oldest first) that changed a supported source file the trainer may mine."""

    if not commits:
        return []
    out = git(repo, "log", "--first-parent", "--diff-merges=first-parent", "--name-only",
              "--format=%x00%H", f"--max-count={len(commits)}", "HEAD").decode("utf-8", "replace")
    touched: set[str] = set()
    for block in out.split("\0")[1:]:
        sha, *paths = block.strip("\n").split("\n")
        if any(Path(p).suffix.lower() in extensions and path_excluded(p) is None
               for p in paths if p):
            touched.add(sha.strip())
    return [c for c in commits if c.sha in touched]


def history_split(repo: Path, test_fraction: float = 0.1, max_commits: int | None = None
                  ) -> HistorySplit:
    """The held-out commits by the trainer's rule (`split_for_commits`: the newest
    `test_fraction` of the commits, the slice before them is validation, the rest training).

    The trainer counts commits that yielded examples; here commits that changed supported code
    stand in for them (mining the whole history just to count would take minutes). With fewer
    than 3 such commits the trainer holds nothing out: the newest one is evaluated anyway.
    """

    try:
        commits = gitlog.list_commits(repo, max_commits)
    except TrainerError as exc:
        raise EvalError(str(exc)) from exc
    coded = commits_with_code(repo, commits, supported_extensions())
    names = split_for_commits(len(coded), test_fraction, test_fraction)
    held_out = [c for c, name in zip(coded, names) if name == "test"]
    note = ""
    if not held_out and coded:
        held_out = coded[-1:]
        note = "fewer than 3 commits with code: the trainer holds none out; evaluating the newest"
    held_out.reverse()
    training_rev = held_out[-1].parent if held_out else None
    return HistorySplit(held_out, training_rev, len(commits), len(coded), note)


def supported_extensions() -> frozenset[str]:
    """File extensions the server completes with a grammar (one place for the evaluator)."""

    return source_extensions()


def history_items(repo: Path, holes: int, seed: int = 0, max_commits: int | None = None,
                  span_share: float = 0.25, max_span_lines: int = 6,
                  test_fraction: float = 0.1) -> tuple[list[EvalItem], dict]:
    """Holes from lines the newest commits added, in the file as of that commit.

    Returns the items (sorted by id) and facts about the split for the report. EvalError when
    nothing can be evaluated, with the reason.
    """
    root = check_repository(repo)
    extensions = supported_extensions()
    split = history_split(root, test_fraction, max_commits)
    held_out, split_rev = split.held_out, split.training_rev
    if not held_out:
        raise EvalError(
            f"no files in a supported language changed in the {split.commits} commit(s) of "
            f"{root}; supported: {', '.join(sorted(extensions))}"
        )

    rng = random.Random(seed)
    candidates: list[tuple[str, str, int, int]] = []  # (commit, path, first, last) 0-based
    scanned = 0
    for commit in held_out:
        # Enough candidates to sample from; big splits need not be diffed to the end.
        if len(candidates) >= max(20 * holes, 400):
            break
        scanned += 1
        for path, ranges in sorted(added_line_ranges(root, commit).items()):
            if Path(path).suffix.lower() not in extensions or path_excluded(path):
                continue
            for start, end in ranges:
                candidates.extend((commit.sha, path, line - 1, end - 1)
                                  for line in range(start, end + 1))
    if not candidates:
        raise EvalError(
            f"nothing to evaluate: the {len(held_out)} held-out commit(s) of {root} added no "
            "lines of supported code (only deletions?)"
        )
    training = load_training_split(root, split_rev, extensions)
    sources: dict[tuple[str, str], str | None] = {}
    wanted = sorted({(c, p) for c, p, _, _ in candidates})
    for key, blob in zip(wanted, read_blobs(root, [f"{c}:{p}" for c, p in wanted])):
        sources[key] = decode_source(blob)

    rng.shuffle(candidates)
    items: list[EvalItem] = []
    seen: set[tuple[str, str, int]] = set()
    dropped_seen = dropped_none = 0
    for commit, path, line_index, range_end in candidates:
        if len(items) >= holes:
            break
        text = sources.get((commit, path))
        if text is None or (commit, path, line_index) in seen:
            continue
        lines = text.split("\n")
        if line_index >= len(lines) or not is_code_line(lines[line_index]):
            continue
        seen.add((commit, path, line_index))
        item = _make_history_hole(rng, commit, path, text, lines, line_index, range_end,
                                  span_share, max_span_lines)
        if item is None:
            continue
        if training.contains(item.target if item.kind == "span" else lines[line_index]):
            dropped_seen += 1
            continue
        if not completable(path, item.text, item.offset):
            dropped_none += 1
            continue
        if item.language == "python":
            item.original_parses = python_parses(text)
        items.append(item)
    if not items:
        raise EvalError(
            f"nothing to evaluate in the {len(held_out)} held-out commit(s) of {root}: "
            f"{len(candidates)} added lines, {dropped_seen} already in the older code, "
            f"{dropped_none} where the server would not complete"
        )
    facts = {
        "repo": str(root),
        "newest_held_out": held_out[0].sha,
        "commits": split.commits,
        "commits_with_code": split.commits_with_code,
        "test_fraction": test_fraction,
        "held_out_commits": len(held_out),
        "held_out_commits_scanned": scanned,
        "oldest_held_out": held_out[scanned - 1].sha,
        "split_note": split.note,
        "training_split_rev": split_rev,
        "candidate_lines": len(candidates),
        "dropped_seen_in_training": dropped_seen,
        "dropped_not_completable": dropped_none,
    }
    return sorted(items, key=lambda i: i.id), facts


def _make_history_hole(rng: random.Random, commit: str, path: str, text: str, lines: list[str],
                       line_index: int, range_end: int, span_share: float,
                       max_span_lines: int) -> EvalItem | None:
    base_id = f"{commit[:10]}:{path}:{line_index + 1}"
    if range_end > line_index and rng.random() < span_share:
        indent = len(lines[line_index]) - len(lines[line_index].lstrip())
        last = line_index
        limit = min(range_end, line_index + max_span_lines - 1, len(lines) - 1)
        while last < limit:
            following = lines[last + 1]
            if not following.strip() or len(following) - len(following.lstrip()) < indent:
                break  # a span is one run of lines that stays inside its block
            last += 1
        if last > line_index:
            hole_text, offset, target = span_hole(text, line_index, last)
            return EvalItem("history", f"{base_id}-{last + 1}", path, hole_text, offset, target,
                            "span", commit)
    column = rng.choice(cut_columns(lines[line_index]))
    hole_text, offset, target = line_hole(text, line_index, column)
    if len(target.strip()) < 1:
        return None
    return EvalItem("history", f"{base_id}@{column}", path, hole_text, offset, target, "line",
                    commit)
