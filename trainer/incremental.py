"""`lsp-train --incremental`: continue from the served tuned model on what is new since it was
trained: the commits after the one it was trained at, and the completions the user accepted
since (the server's events log).

The warm start is the served model's own weights: its folder holds the base with the earlier
adapter merged in (what CTranslate2 serves), and a fresh LoRA adapter trains on top of them, so
no optimizer or adapter format ties one run to the next and a deleted run folder does not matter.
The same held-out guard as a full run decides the switch, against the served model: the newest of
the new commits are held out, and the new model is served only if it does no worse there.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from repolsp.trainer import gitlog
from repolsp.trainer.errors import TrainerError

INCREMENTAL_BUDGET_S = 300.0  # "minutes rather than half an hour" when --budget is not given
INCREMENTAL_SNAPSHOT_LINES = 200  # single lines cut from today's code, in the files just changed


@dataclass
class IncrementalStart:
    """Where an incremental run starts: the served tuned model and what is new since."""

    entry: object  # store entry of the served tuned model (the warm start and the comparison)
    trained_commit: str | None  # HEAD of the repository when it was trained
    trained_time: float  # when it was made (epoch seconds): accepted completions after it are new
    new_commits: int  # first-parent commits after trained_commit


def head_commit(repo: Path) -> str | None:
    """The repository's HEAD commit, or None (no commits)."""
    out = gitlog.run_git(repo, "rev-parse", "--verify", "-q", "HEAD", check=False).decode().strip()
    return out or None


def commits_since(repo: Path, sha: str) -> int:
    """First-parent commits from `sha` (exclusive) to HEAD; TrainerError when `sha` is not an
    ancestor of HEAD (history rewritten: a full run is needed)."""
    probe = gitlog.run_git(repo, "rev-parse", "--verify", "-q", f"{sha}^{{commit}}", check=False)
    if not probe.strip():
        raise TrainerError(f"the served model was trained at commit {sha[:12]}, which this "
                           "repository does not have: run a full `lsp-train`")
    # Commits of `sha` that HEAD lacks: the history was rewritten or another branch is out.
    behind = gitlog.run_git(repo, "rev-list", "--count", f"HEAD..{sha}").decode().strip()
    if behind and int(behind) > 0:
        raise TrainerError(f"commit {sha[:12]} (where the served model was trained) is not in the "
                           "current branch's history: run a full `lsp-train`")
    out = gitlog.run_git(repo, "rev-list", "--first-parent", "--count", f"{sha}..HEAD").decode().strip()
    return int(out or 0)


def _created_time(manifest) -> float:
    try:
        return dt.datetime.fromisoformat(manifest.created).timestamp()
    except (TypeError, ValueError):
        return 0.0


def incremental_start(store, repo: Path, model_name: str | None = None) -> IncrementalStart:
    """The served (or named) tuned model of `repo` and the count of commits since it was
    trained; TrainerError with the fix when it is not a tuned model `lsp-train` made here."""
    name = model_name or store.default_name()
    if name is None:
        raise TrainerError("--incremental needs a served tuned model: run `lsp-train` first")
    entry = store.get(name)
    extra = entry.manifest.extra or {}
    if "training" not in extra:
        raise TrainerError(f"--incremental continues a model `lsp-train` made, and {name} is not "
                           "one: run a full `lsp-train` first")
    trained_repo = extra.get("repo")
    if trained_repo and Path(trained_repo).resolve() != Path(repo).resolve():
        raise TrainerError(f"{name} was trained on {trained_repo}, not {repo}: run a full "
                           "`lsp-train` here")
    sha = extra.get("trainedCommit")
    if not sha:
        raise TrainerError(f"{name} does not record the commit it was trained at (made by an "
                           "older lsp-train): run a full `lsp-train`")
    return IncrementalStart(entry, sha, _created_time(entry.manifest), commits_since(repo, sha))


def default_run_dir(data_dir: Path) -> Path:
    """Incremental runs keep their own folder: the full run's report stays what it measured."""
    return data_dir / "train-incremental"


def plan_incremental(args, store, repo: Path, budget_s: float | None, say):
    """Point an `lsp-train --incremental` run at what is new: (warm-start entry, budget), or
    None when nothing is new. Sets args.max_commits (the new commits), args.events_since,
    args.run_dir (own folder) and the name's root."""
    from repolsp.server.workspace_data import data_dir_for

    start = incremental_start(store, repo, args.model)
    name = start.entry.name
    if start.new_commits == 0:
        say(f"nothing new since {name} was trained at {start.trained_commit[:12]}: no commits "
            "to learn from (accepted completions wait for the next commit)")
        return None
    say(f"incremental: {start.new_commits} commit(s) since {name} was trained at "
        f"{start.trained_commit[:12]}, and the completions accepted since; warm start from {name}")
    args.max_commits = start.new_commits
    args.events_since = start.trained_time
    args.run_dir = args.run_dir or default_run_dir(data_dir_for(repo))
    return start.entry, (INCREMENTAL_BUDGET_S if budget_s is None else budget_s)


def root_base_name(entry) -> str:
    """The untuned model at the start of a chain of runs (names the exported models)."""
    return (entry.manifest.extra or {}).get("rootBase") or entry.name
