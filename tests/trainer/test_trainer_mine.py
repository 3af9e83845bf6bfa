"""Mining git history into examples: kinds, time splits, filters, secrets, no future code."""

from __future__ import annotations

import json
import subprocess

import pytest
from repolsp.server.context.build import approx_token_count
from repolsp.trainer import cli
from repolsp.trainer.mine import MineConfig, mine_repository, split_for_commits
from repolsp.trainer.prompts import ExampleRenderer
from trainer_fixtures import FUTURE_NAME, PLANTED_KEY, make_history


@pytest.fixture(scope="module")
def mined(history_repo):
    repo, shas = history_repo
    renderer = ExampleRenderer.for_template("repolsp-smollm2", approx_token_count, 512)
    return mine_repository(repo, renderer, MineConfig(test_fraction=0.2)), shas


def _commit_index(shas: list[str], sha: str) -> int:
    return shas.index(sha)


def test_kinds_found(mined):
    result, _ = mined
    kinds = {e.kind for e in result.examples}
    assert kinds == {"fim", "docstring", "test", "instruction", "snapshot"}
    modes = {e.mode for e in result.examples if e.kind == "fim"}
    assert modes == {"single-line", "multi-line"}


def test_docstring_example_is_the_docstring_the_history_added(mined):
    result, shas = mined
    (doc,) = [e for e in result.examples if e.kind == "docstring"]
    assert doc.commit == shas[2]  # "document area"
    assert doc.completion == '"""Area of a width x height rectangle."""'
    assert doc.completion not in doc.prompt  # the hole never shows the answer
    # Suffix first, then the prefix, which the middle continues (SPM).
    assert doc.prompt.startswith("<fim_suffix>") and doc.prompt.count("<fim_prefix>") == 1
    assert doc.prompt.index("<fim_prefix>") > doc.prompt.index("<fim_suffix>")


def test_docstring_requests_are_rendered_as_the_server_sends_them(history_repo, mined):
    """One renderer: a docstring instruction example is the server's `docstring_prompt` on the
    file without its docstring, and the answer is the rest of the docstring."""
    from repolsp.server.context.document import Document
    from repolsp.server.docgen import docstring_prompt, docstring_target

    result, shas = mined
    (request,) = [e for e in result.examples if e.kind == "instruction" and e.mode == "docstring"
                  and e.completion == 'Area of a width x height rectangle."""']
    repo, _ = history_repo
    text = subprocess.run(["git", "-C", str(repo), "show", f"{shas[2]}:pkg/geometry.py"],
                          check=True, capture_output=True, text=True).stdout
    without = text.replace('    """Area of a width x height rectangle."""\n', "")
    assert without != text
    doc = Document("file:///pkg/geometry.py", without, path="pkg/geometry.py")
    prompt, _ = docstring_prompt(doc, docstring_target(doc, without.index("def area") + 1))
    assert request.prompt == prompt and request.prompt.endswith('"""')
    assert "Task:" not in request.prompt


def test_snapshot_holes_come_from_the_code_at_the_last_training_commit(history_repo, mined):
    result, shas = mined
    snapshot = [e for e in result.examples if e.kind == "snapshot"]
    assert snapshot
    # Commits with examples: 0 1 2 4 5 train, 6 7 valid, 8 9 test -> the tree of commit 5.
    assert {(e.commit, e.split, e.mode) for e in snapshot} == {(shas[5], "train", "single-line")}
    repo, _ = history_repo
    for e in snapshot:
        text = subprocess.run(["git", "-C", str(repo), "show", f"{shas[5]}:{e.path}"],
                              check=True, capture_output=True, text=True).stdout
        assert e.completion.strip() and any(line.strip() == e.completion for line in text.splitlines())
        assert e.context["prefix"] + e.completion + e.context["suffix"] in text  # one line cut out
        assert e.path in {"pkg/geometry.py", "pkg/util.py", "tests/test_geometry.py"}
    renderer = ExampleRenderer.for_template("repolsp-smollm2", approx_token_count, 512)
    none = mine_repository(repo, renderer, MineConfig(test_fraction=0.2, snapshot_lines=0))
    assert "snapshot" not in {e.kind for e in none.examples}
    assert len(none.examples) == len(result.examples) - len(snapshot)


def test_test_example_pairs_the_test_with_its_function(mined):
    result, shas = mined
    (test,) = [e for e in result.examples if e.kind == "test"]
    assert test.commit == shas[4]
    assert test.completion.startswith("def test_area_of_rectangle():")
    assert "def area(width, height):" in test.prompt  # the tested function, as context
    instructions = [e for e in result.examples if e.kind == "instruction" and e.mode == "tests"]
    # The server's test prompt format: the function, then the test the answer writes.
    from repolsp.server.testgen.prompt import render_test_prompt

    assert instructions and instructions[0].prompt.startswith("def area(width, height):")
    assert instructions[0].prompt == render_test_prompt(instructions[0].prompt)
    assert instructions[0].completion.startswith("def test_area_of_rectangle():")
    assert test.prompt == instructions[0].prompt  # the `test` examples use the same renderer


def test_fim_middle_is_the_added_span(mined):
    result, shas = mined
    rounded = [e for e in result.examples if e.commit == shas[7] and e.kind == "fim"]
    assert {e.completion for e in rounded} >= {"return round(doubled_sum, 6)"}
    for example in rounded:
        assert example.completion not in example.prompt


def test_splits_by_time_and_no_commit_in_two_splits(mined):
    result, shas = mined
    split_of_commit: dict[str, set[str]] = {}
    for e in result.examples:
        split_of_commit.setdefault(e.commit, set()).add(e.split)
    assert all(len(s) == 1 for s in split_of_commit.values())
    order = {"train": 0, "valid": 1, "test": 2}
    ranked = sorted(split_of_commit, key=lambda sha: _commit_index(shas, sha))
    ranks = [order[next(iter(split_of_commit[sha]))] for sha in ranked]
    assert ranks == sorted(ranks)
    # 9 commits give examples (the key commit's are all dropped): 20% -> 2 test, 2 valid.
    assert [next(iter(split_of_commit[s])) for s in ranked[-2:]] == ["test", "test"]
    assert [next(iter(split_of_commit[s])) for s in ranked[-4:-2]] == ["valid", "valid"]


def test_secrets_dropped_and_counted(mined):
    result, shas = mined
    assert result.stats.secrets_dropped >= 1
    assert result.stats.secret_kinds["private-key"] >= 1
    key_line = PLANTED_KEY.splitlines()[1]
    for e in result.examples:
        assert key_line not in e.prompt and key_line not in e.completion
        assert "abc123secretvalue" not in e.prompt
    assert not any(e.commit == shas[3] for e in result.examples)


def test_vendored_minified_env_files_skipped(mined):
    result, _ = mined
    paths = {e.path for e in result.examples}
    assert not any(p.startswith(("third_party/", "web/")) or p == ".env" for p in paths)
    skipped = result.stats.files_skipped
    assert skipped["vendored"] == 1 and skipped["minified"] == 1 and skipped["env-file"] == 1
    assert not any("vendored_helper" in e.prompt for e in result.examples)


def test_no_future_code_in_any_prompt(mined):
    result, shas = mined
    # First commit (by index) whose tree contains each marker.
    introduced = {FUTURE_NAME: 9, "doubled_sum": 7, "def lerp": 8, "circle_area": 6, "def clamp": 5}
    for e in result.examples:
        index = _commit_index(shas, e.commit)
        for marker, first in introduced.items():
            if index < first:
                assert marker not in e.prompt, (e.kind, index, marker)


def test_deterministic(history_repo, mined):
    repo, _ = history_repo
    result, _ = mined
    renderer = ExampleRenderer.for_template("repolsp-smollm2", approx_token_count, 512)
    again = mine_repository(repo, renderer, MineConfig(test_fraction=0.2))
    assert [e.to_json() for e in again.examples] == [e.to_json() for e in result.examples]


@pytest.mark.parametrize(
    "n, fraction, expected",
    [
        (1, 0.1, ["train"]),
        (2, 0.1, ["train", "train"]),
        (3, 0.1, ["train", "valid", "test"]),
        (10, 0.1, ["train"] * 8 + ["valid", "test"]),
        (10, 0.2, ["train"] * 6 + ["valid"] * 2 + ["test"] * 2),
        (5, 0.0, ["train"] * 5),
    ],
    ids=["one", "two", "three", "ten", "ten-20pct", "no-test"],
)
def test_split_for_commits(n, fraction, expected):
    assert split_for_commits(n, fraction, fraction) == expected


def test_mine_only_writes_jsonl(history_repo, tmp_path, capsys):
    repo, shas = history_repo
    out = tmp_path / "examples.jsonl"
    assert cli.main([str(repo), "--mine-only", "--out", str(out), "-q", "--test-fraction", "0.2"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows
    for row in rows:
        assert {"commit", "path", "kind", "prompt", "completion", "split"} <= set(row)
        assert row["split"] in ("train", "valid", "test")
        assert row["commit"] in shas
    assert "wrote" in capsys.readouterr().out


def test_accepted_completions_join_and_rejected_are_negatives(history_repo, tmp_path):
    repo, _ = history_repo
    events = tmp_path / "events.jsonl"
    base = {"path": "pkg/util.py", "language": "python", "prefix": "def double(x):\n    return ",
            "suffix": "\n", "mode": "single-line"}
    lines = [
        {**base, "event": "accepted", "completion": "x * 2", "ts": 1704100000},  # 2024-01-01
        {**base, "event": "rejected", "completion": "x ** 2", "ts": 1704100001},
        {**base, "event": "accepted", "completion": "x + x", "ts": 1904100000},  # after the test cut
    ]
    events.write_text("".join(json.dumps(e) + "\n" for e in lines))
    renderer = ExampleRenderer.for_template("repolsp-smollm2", approx_token_count, 512)
    result = mine_repository(repo, renderer, MineConfig(test_fraction=0.2, events_path=events))
    accepted = [e for e in result.examples if e.kind == "accepted"]
    assert [(e.completion, e.split) for e in accepted] == [("x * 2", "train")]
    assert accepted[0].prompt.startswith("<fim_suffix>") and "def double(x)" in accepted[0].prompt
    assert [n["completion"] for n in result.negatives] == ["x ** 2"]
    assert result.stats.accepted_after_split == 1


@pytest.mark.parametrize(
    "setup, message",
    [
        ("plain-folder", "is not a git repository"),
        ("empty-repo", "has no commits"),
        ("docs-only", "no supported source files"),
    ],
    ids=["not-a-repo", "no-history", "no-supported-files"],
)
def test_clear_errors(tmp_path, capsys, setup, message):
    repo = tmp_path / "r"
    if setup == "plain-folder":
        repo.mkdir()
    elif setup == "empty-repo":
        repo.mkdir()
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
    else:
        make_history(repo, [("docs", {"README.md": "# hi\n", "notes.txt": "x\n"})])
    code = cli.main([str(repo), "--mine-only", "--out", str(tmp_path / "o.jsonl"), "-q"])
    assert code == 2
    assert message in capsys.readouterr().err


def test_model_not_found_is_a_clear_error(history_repo, capsys):
    repo, _ = history_repo
    assert cli.main([str(repo), "--model", "no-such-model", "-q"]) == 2
    assert "not installed" in capsys.readouterr().err


def test_examples_use_exactly_the_servers_prompt():
    """The trainer's prompt for a hole equals what the running server sends the model for the
    same file and cursor (same stages, same template, same budget)."""
    from repolsp.models.prompt import template_for
    from repolsp.server.completion import CompletionService
    from repolsp.server.config import Config
    from repolsp.server.context.document import Document
    from repolsp.server.engine.fake import FakeEngine

    engine = FakeEngine()
    template = template_for("repolsp-smollm2")
    body = "".join(f"def helper_{i}(value):\n    return value + {i}\n\n\n" for i in range(60))
    text = body + "def area(width, height):\n    result = width * height\n    return result\n"
    cursor = text.index("width * height")  # mid-line: the server's stable-line layout applies
    middle_end = text.index("\n", cursor)
    service = CompletionService(Config(context_budget_tokens=256), lambda: engine,
                                lambda: (template, 256))
    holed = text[:cursor] + text[middle_end:]
    _, served, _ = service.prepare(Document("file:///pkg/geo.py", holed, path="pkg/geo.py"), cursor)

    renderer = ExampleRenderer.for_template("repolsp-smollm2", engine.count_tokens, 256)
    prompt, context = renderer.fim_example(text, cursor, middle_end, "pkg/geo.py", "single-line", None)
    assert prompt == served.text
    assert "width * height" not in prompt and "helper_0(" not in prompt  # windowed, hole cut
    assert prompt.endswith("result = ") and context["mode"] == "single-line"
