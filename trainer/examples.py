"""The mined data's types: `MineConfig` (what to mine), `Example`, `MineStats`, `MineResult`."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path


def _server_history_commits() -> int:
    from repolsp.server.config import Config

    return Config().history_max_commits

KINDS = ("fim", "docstring", "test", "instruction", "accepted", "snapshot")


SPLITS = ("train", "valid", "test")


@dataclass
class MineConfig:
    """What to mine and how to split it."""

    max_commits: int | None = None  # newest N commits of the branch
    since: str | None = None  # `git log --since` date
    test_fraction: float = 0.1  # newest commits -> test
    valid_fraction: float | None = None  # the slice before test -> valid (default: test_fraction)
    kinds: tuple[str, ...] = KINDS
    max_examples_per_file: int = 12  # per commit; big commits must not dominate
    max_middle_lines: int = 24
    min_line_chars: int = 6  # single-line targets shorter than this teach nothing
    events_path: Path | None = None  # the server's completion events (accepted/rejected)
    events_since: float | None = None  # only events newer than this (epoch s; --incremental)
    snapshot_lines: int = 1500  # `snapshot` holes in the code at the last training commit (0: none)
    # Prompts carry what the server's history retrieval would show at that commit (the history
    # strictly before it), as serving does with `history` on; bounded like the server's index.
    history: bool = True
    history_max_commits: int = field(default_factory=lambda: _server_history_commits())
    copy_first_s: float = 0.0  # time for the base model to find the copyable holes it misses


@dataclass
class Example:
    """One training example; `prompt` + `completion` is what the model learns (loss on completion)."""

    commit: str
    time: int
    path: str
    language: str
    kind: str
    prompt: str
    completion: str
    split: str = "train"
    mode: str = "multi-line"  # single-line | multi-line (fim/accepted), or the instruction task
    context: dict | None = None  # the PromptContext, so other templates can re-render it
    first: bool = False  # trained first: the answer is in the prompt and the base model misses it

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Example:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class MineStats:
    """Counts a user and the benchmark want to see."""

    commits: int = 0
    commits_with_examples: int = 0
    files_mined: int = 0
    files_skipped: Counter = field(default_factory=Counter)  # reason -> count
    examples_by_kind: Counter = field(default_factory=Counter)
    examples_by_split: Counter = field(default_factory=Counter)
    secrets_dropped: int = 0
    secret_kinds: Counter = field(default_factory=Counter)
    duplicates_dropped: int = 0
    accepted_after_split: int = 0  # accepted completions newer than the valid/test cut (unused)
    negatives: int = 0
    elapsed_s: float = 0.0

    def summary(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.examples_by_kind.items())) or "none"
        splits = ", ".join(f"{s} {self.examples_by_split.get(s, 0)}" for s in SPLITS)
        skipped = sum(self.files_skipped.values())
        rate = self.commits / self.elapsed_s if self.elapsed_s > 0 else 0.0
        return (
            f"{self.commits} commits ({rate:.1f}/s), {self.files_mined} files mined, {skipped} skipped; "
            f"examples: {kinds}; splits: {splits}; dropped: {self.secrets_dropped} with secrets, "
            f"{self.duplicates_dropped} duplicates"
        )


@dataclass
class MineResult:
    examples: list[Example]
    negatives: list[dict]
    stats: MineStats
