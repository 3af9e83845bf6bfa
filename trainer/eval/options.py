"""What `lsp-eval` was asked to do (`EvalOptions`) and the task names it knows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

TASKS = ("history", "humaneval", "docstring", "tests")


@dataclass
class EvalOptions:
    """What `lsp-eval` was asked to do."""

    repo: Path = Path(".")
    models: list[str] = field(default_factory=list)
    holes: int = 100
    tasks: list[str] = field(default_factory=lambda: ["history", "humaneval"])
    seed: int = 0
    cache_dir: Path | None = None
    max_commits: int | None = None
    test_fraction: float = 0.1  # the trainer's default time split
    timeout_s: float = 10.0
    progress: bool = True
    bootstrap_resamples: int = 2000
    span_share: float = 0.25  # share of history holes that are multi-line spans
    retrieval: bool = True  # index the training split's tree, as the server indexes a workspace
