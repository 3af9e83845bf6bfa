"""Training on what serving sends (issue 21 item 2): training prompts carry the history lines the
server would show at that commit, from the history strictly before it (no future code), and the
holes whose answer the prompt shows but the base model misses train first."""

from __future__ import annotations

import itertools

import pytest
from repolsp.trainer.batches import priority_order
from repolsp.trainer.examples import Example
from repolsp.trainer.mine import MineConfig, mine_repository
from repolsp.trainer.mine_priority import answer_in_prompt, copy_candidates, mark_copy_first
from repolsp.trainer.pipeline import make_renderer
from trainer_fixtures import git, make_history

LOADER = '''import json


def load_settings(path):
    with open(path, encoding="utf-8") as handle:
        settings = json.load(handle)
    settings.setdefault("verbose", False)
    return settings
'''
# A loader written, deleted, then written again elsewhere: the history shows the old lines.
HISTORY = [
    ("add loader", {"app/__init__.py": "", "app/loader.py": LOADER}),
    ("drop loader", {"app/loader.py": "import json\n"}),
    ("readme", {"README.md": "# x\n"}),
    ("add config reader", {"app/config.py": LOADER.replace("load_settings", "read_config")
                           .replace("settings", "config")}),
    ("add again", {"app/again.py": LOADER.replace("load_settings", "load_zz_future")}),
    ("more", {"app/more.py": "def more(a):\n    return a + 1\n"}),
    ("more2", {"app/more2.py": "def more2(a):\n    return a + 2\n"}),
]


@pytest.fixture(scope="module")
def loader_repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("hist") / "repo"
    return repo, make_history(repo, HISTORY)


def _history_snippets(example) -> list[str]:
    return [s["text"] for s in (example.context or {}).get("snippets", []) if s["kind"] == "history"]


def test_training_prompts_show_the_history_as_of_their_commit(loader_repo):
    repo, shas = loader_repo
    examples = mine_repository(repo, make_renderer(None, 512),
                               MineConfig(test_fraction=0.2, snapshot_lines=0)).examples
    shown = [e for e in examples if _history_snippets(e)]
    assert shown, "some prompt carries history lines"
    for example in shown:
        # Every history line comes from a commit strictly before the example's own.
        before = git(repo, "log", "-p", "--first-parent", f"{example.commit}^")
        lines = {line[1:].strip() for line in before.splitlines() if line[:1] in "+-"}
        for text in _history_snippets(example):
            assert all(line.strip() in lines for line in text.splitlines() if line.strip()), text
        assert example.commit in shas[3:]
    # The prompt of the config reader (commit 3) shows the deleted loader's lines...
    config = next(e for e in shown if e.commit == shas[3])
    assert any("settings = json.load(handle)" in text for text in _history_snippets(config))
    # ...and no prompt shows code written later than its commit.
    for example in examples:
        if example.commit in shas[:4]:
            assert "load_zz_future" not in example.prompt


def test_one_streamed_read_gives_the_prompts_of_a_read_per_commit(loader_repo, monkeypatch):
    """The walk's diffs come from one `git log -p`; reading each commit on its own (the fallback
    past that read's limits) gives the same prompts."""
    from repolsp.trainer import mine

    repo, _ = loader_repo
    config = MineConfig(test_fraction=0.2, snapshot_lines=0)
    streamed = mine_repository(repo, make_renderer(None, 512), config).examples
    monkeypatch.setattr(mine, "commit_diffs", lambda *args: {})
    per_commit = mine_repository(repo, make_renderer(None, 512), config).examples
    assert [e.to_json() for e in streamed] == [e.to_json() for e in per_commit]
    assert any(_history_snippets(e) for e in streamed)


def test_no_history_switches_the_history_lines_off(loader_repo):
    repo, _ = loader_repo
    examples = mine_repository(repo, make_renderer(None, 512),
                               MineConfig(test_fraction=0.2, snapshot_lines=0, history=False)).examples
    assert examples and not any(_history_snippets(e) for e in examples)


def _hole(completion: str, prefix: str, snippets=(), split="train", time=0) -> Example:
    context = {"path": "a.py", "language": "python", "prefix": prefix, "suffix": "", "mode": "single-line",
               "snippets": [{"path": "b.py", "text": t, "kind": "history", "score": 1.0} for t in snippets]}
    return Example("c", time, "a.py", "python", "fim", prefix, completion, split=split,
                   mode="single-line", context=context)


@pytest.mark.parametrize("completion, prefix, snippets, expected", [
    ("return total", "def f():\n    return total\n", (), True),
    ("return total", "def f():\n    ", ("x = 1\n    return total",), True),
    ("return total\nprint(1)", "def f():\n    ", ("return total",), False),
    ("return other", "def f():\n    return total\n", (), False),
    ("   ", "x", (), False),
], ids=["prefix", "snippet", "one-line-missing", "absent", "blank"])
def test_answer_in_prompt(completion, prefix, snippets, expected):
    assert answer_in_prompt(_hole(completion, prefix, snippets)) is expected


def test_copy_first_marks_what_the_base_model_misses_and_orders_it_first(tiny_home, monkeypatch):
    from repolsp.models.store import ModelStore

    entry = ModelStore(tiny_home).get("tiny-smollm2")
    copyable = [_hole(f"value_{i} = compute_{i}(data)", f"value_{i} = compute_{i}(data)\n\ndef g():\n    ",
                      time=i) for i in range(12)]
    other = [_hole("return new_code", "def h():\n    ", time=100), _hole("x = 1", "x = 1\n", split="test")]
    examples = [*other, *copyable]
    assert copy_candidates(examples) == sorted(copyable, key=lambda e: -e.time)
    # A clock that spends the whole allowance after one chunk: only the newest 8 are checked.
    ticks = itertools.count(0, 10)
    line = mark_copy_first(examples, entry, time_s=15, clock=lambda: next(ticks))
    checked = sorted(copyable, key=lambda e: -e.time)[:8]
    # The random-weight tiny model copies nothing: every checked hole is marked.
    assert all(e.first for e in checked) and not any(e.first for e in copyable if e not in checked)
    assert "missed 8 of the 8 checked" in line and "12 training holes" in line
    order = priority_order(examples)
    assert {examples[i].time for i in order[:8]} == {e.time for e in checked}
