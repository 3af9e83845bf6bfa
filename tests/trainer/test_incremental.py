"""`lsp-train --incremental`: a tiny model, a real git repository; the run continues from the
served tuned model on the commits since it was trained plus the completions accepted since, and
the held-out guard decides the switch."""

from __future__ import annotations

import json
import os
import time

import pytest
from repolsp.models.store import ModelStore
from repolsp.server.workspace_data import data_dir_for
from repolsp.trainer import cli
from repolsp.trainer.incremental import commits_since
from trainer_fixtures import git, make_history, register_tiny_model

FAST = ["--max-steps", "2", "--batch-size", "2", "--seq-len", "256", "--max-prompt-tokens", "160",
        "--threads", "1", "-q", "--lr", "1e-2", "--max-eval-examples", "4"]

NEW_CODE = {
    "pkg/stats.py": '''\
def mean(values):
    total = sum(values)
    return total / len(values)
''',
    "pkg/stats2.py": '''\
def spread(values):
    lowest = min(values)
    return max(values) - lowest
''',
    "pkg/stats3.py": '''\
def middle(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]
''',
    "pkg/stats4.py": '''\
def total_of(values):
    running = 0
    for value in values:
        running += value
    return running
''',
}


def _commit_future(repo, path, text, days_ahead):
    """A commit dated after now: newer than the served model and the accepted completion."""
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text)
    git(repo, "add", "-A")
    stamp = f"@{int(time.time()) + days_ahead * 86400} +0000"
    env = {**os.environ, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    git(repo, "commit", "-q", "-m", f"add {path}", env=env)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def trained_home(tmp_path, monkeypatch):
    """A repository and a store whose served model is a tuned one `lsp-train` made there."""
    home = tmp_path / "home"
    register_tiny_model(home)
    monkeypatch.setenv("REPOLSP_HOME", str(home))
    repo = tmp_path / "repo"
    make_history(repo)
    assert cli.main([str(repo), "--test-fraction", "0.2", *FAST, "--run-dir", str(tmp_path / "full"),
                     "--force-switch", "--name", "tiny-tuned"]) == 0
    return home, repo


def test_incremental_learns_only_what_is_new_and_guards_the_switch(trained_home, tmp_path, capsys,
                                                                   monkeypatch):
    home, repo = trained_home
    store = ModelStore(home)
    first = store.get("tiny-tuned")
    head = git(repo, "rev-parse", "HEAD").strip()
    assert store.default_name() == "tiny-tuned"
    assert first.manifest.extra["trainedCommit"] == head and first.manifest.extra["rootBase"] == "tiny-smollm2"
    capsys.readouterr()

    # Nothing new yet: a quick no-op, the served model stays.
    assert cli.main([str(repo), "--incremental", *FAST]) == 0
    assert "nothing new since tiny-tuned" in capsys.readouterr().out
    assert store.default_name() == "tiny-tuned"

    # The user accepts a completion, then commits four more files.
    events = data_dir_for(repo, home) / "events.jsonl"
    events.parent.mkdir(parents=True, exist_ok=True)
    old = {"ts": 1.0, "event": "accepted", "path": "pkg/util.py", "prefix": "def old():\n    ",
           "completion": "return 'already learnt'", "suffix": "\n", "mode": "single-line"}
    new = {**old, "ts": time.time() + 5, "prefix": "def ratio(a, b):\n    ",
           "completion": "return a / b if b else 0.0"}
    events.write_text(json.dumps(old) + "\n" + json.dumps(new) + "\n")
    new_shas = [_commit_future(repo, path, text, day) for day, (path, text)
                in enumerate(NEW_CODE.items(), start=1)]
    assert commits_since(repo, head) == 4

    from repolsp.trainer.report import Report

    monkeypatch.setattr(Report, "tuned_no_worse", lambda self: True)
    started = time.monotonic()
    assert cli.main([str(repo), "--incremental", "--test-fraction", "0.25", *FAST]) == 0
    elapsed = time.monotonic() - started
    out = capsys.readouterr().out
    assert "incremental: 4 commit(s) since tiny-tuned" in out and "now serving" in out
    second = store.get(store.default_name())
    assert second.name.startswith("tiny-smollm2-repo-") and second.manifest.base_model == "tiny-tuned"
    assert second.manifest.extra["incremental"] is True
    assert second.manifest.extra["trainedCommit"] == new_shas[-1]
    assert second.manifest.extra["evaluation"]["baseModel"] == "tiny-tuned"
    # Only the new commits and the completion accepted after the served model was made.
    run_dir = data_dir_for(repo, home) / "train-incremental"
    mined = [json.loads(line) for line in (run_dir / "examples.jsonl").read_text().splitlines()]
    assert {e["commit"] for e in mined if e["kind"] != "accepted"} <= set(new_shas)
    accepted = [e for e in mined if e["kind"] == "accepted"]
    assert [e["completion"] for e in accepted] == ["return a / b if b else 0.0"]
    assert any(e["split"] == "test" for e in mined), "the newest new commit is held out"
    assert (run_dir / "report.md").is_file() and elapsed < 120


def test_incremental_keeps_the_model_when_the_guard_says_worse(trained_home, capsys, monkeypatch):
    home, repo = trained_home
    for day, (path, text) in enumerate(NEW_CODE.items(), start=1):
        _commit_future(repo, path, text, day)
    from repolsp.trainer.report import Report

    monkeypatch.setattr(Report, "tuned_no_worse", lambda self: False)
    capsys.readouterr()
    assert cli.main([str(repo), "--incremental", "--test-fraction", "0.25", *FAST]) == 0
    assert "kept serving tiny-tuned" in capsys.readouterr().out
    assert ModelStore(home).default_name() == "tiny-tuned"


def test_incremental_needs_a_tuned_model(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    register_tiny_model(home)
    monkeypatch.setenv("REPOLSP_HOME", str(home))
    repo = tmp_path / "repo"
    make_history(repo)
    assert cli.main([str(repo), "--incremental", *FAST]) == 2
    err = capsys.readouterr().err
    assert "tiny-smollm2 is not one: run a full `lsp-train` first" in err and err.count("\n") == 1
