"""Pipeline helpers: budget split, tuned model names, run folder outside the repository."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from repolsp.trainer.errors import TrainerError
from repolsp.trainer.pipeline import default_run_dir, training_budget_s, tuned_model_name


@pytest.mark.parametrize(
    "budget, spent, exporting, left",
    [(None, 100, True, None), (1800, 60, True, 1560), (1800, 60, False, 1740), (300, 0, True, 270)],
    ids=["no-budget", "30m-export", "30m-no-export", "5m-min-reserve"],
)
def test_training_budget(budget, spent, exporting, left):
    assert training_budget_s(budget, spent, exporting) == left


def test_budget_used_up_by_mining_is_a_clear_error():
    with pytest.raises(TrainerError, match="budget is used up"):
        training_budget_s(60, 50, True)


@pytest.mark.parametrize(
    "base, repo, expected",
    [
        ("gemma3-270m", "my repo!", "gemma3-270m-my-repo-20250102-0304"),
        ("smollm2-135m", ".hidden", "smollm2-135m-hidden-20250102-0304"),
        ("x", "", "x-repo-20250102-0304"),
    ],
    ids=["spaces", "dot-name", "empty"],
)
def test_tuned_model_name(base, repo, expected):
    when = dt.datetime(2025, 1, 2, 3, 4)
    assert tuned_model_name(base, Path("/src") / repo if repo else Path("/"), when) == expected


def test_run_dir_is_outside_the_repository(tmp_path):
    repo = tmp_path / "project"
    repo.mkdir()
    run_dir = default_run_dir(repo)
    assert repo not in run_dir.parents
