"""History retrieval: what real git repositories built here say reaches the prompt, as of a commit,
within the budget and with a byte-identical head while typing."""

from pathlib import Path

import pytest
from repolsp.models.prompt import template_for
from repolsp.server.context.build import (
    ContextBudget,
    approx_token_count,
    build_context,
    context_tokens,
)
from repolsp.server.context.document import Document
from repolsp.server.context.history import HistoryIndex
from repolsp.server.context.index import WorkspaceIndex
from repolsp.server.prepare import StableContextCache, prepare_prompt

from tests.trainer.trainer_fixtures import git, make_history

OLD_LINE = "    return normalise_record(record, strict=settings.strict_mode)"
LOADER_V1 = (
    "from pkg.settings import settings\n\n\n"
    "def load_record(record):\n"
    "    record = parse_record(record)\n"
    f"{OLD_LINE}\n"
)
LOADER_V2 = (
    "from pkg.settings import settings\n\n\n"
    "def load_record(record):\n"
    "    record = parse_record(record)\n"
    "    return record\n"
)
FILLER = "".join(f"def helper_{i}(value):\n    return value + {i}\n\n\n" for i in range(40))
CURSOR_FILE = (
    "from pkg.settings import settings\n\n\n" + FILLER
    + "def load_other(record):\n    record = parse_record(record)\n<|>\n"
)

# (message, files): a line is added, then deleted; pkg/a.py changes with pkg/b.py three times
# and with pkg/c.py once.
HISTORY = [
    ("loader", {"pkg/loader.py": LOADER_V1, "pkg/settings.py": "settings = None\n"}),
    ("simplify loader", {"pkg/loader.py": LOADER_V2}),
    ("a+b 1", {"pkg/a.py": "alpha = 1\n", "pkg/b.py": "beta_value = 1\n"}),
    ("a+b 2", {"pkg/a.py": "alpha = 2\n", "pkg/b.py": "beta_value = 2\n"}),
    ("a+b 3", {"pkg/a.py": "alpha = 3\n", "pkg/b.py": "beta_value = 3\n"}),
    ("a+c", {"pkg/a.py": "alpha = 4\n", "pkg/c.py": "gamma_value = 1\n"}),
    ("future", {"pkg/future.py": "def future_only_function():\n    return 'from the future'\n"}),
]


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("history") / "repo"
    return root, make_history(root, HISTORY)


def _doc(source: str, path: str = "pkg/other.py") -> tuple[Document, int]:
    offset = source.index("<|>")
    return Document(f"file:///w/{path}", source.replace("<|>", ""), path=path), offset


def _prompt(doc, offset, history, workspace=None, budget=512, cache=None):
    return prepare_prompt(doc, offset, workspace, template_for(None), approx_token_count, budget,
                          cache, history)


def test_a_line_added_then_deleted_is_retrieved_into_the_prompt(repo):
    root, _ = repo
    history = HistoryIndex.from_git(root)
    doc, offset = _doc(CURSOR_FILE)
    _, prompt, ctx = _prompt(doc, offset, history)
    assert OLD_LINE.strip() in prompt.text
    assert any(s.kind == "history" and s.path == "pkg/loader.py" for s in ctx.snippets)
    _, without, _ = _prompt(doc, offset, None)
    assert OLD_LINE.strip() not in without.text


def test_until_excludes_the_commit_and_everything_after_it(repo):
    root, shas = repo
    future = shas[-1]
    before = HistoryIndex.from_git(root, until=future)
    assert future not in before.shas and set(shas[:-1]) <= before.shas
    assert not before.retrieve("future_only_function from the future", limit=5)
    assert not before.lines_starting("def future_only")
    everything = HistoryIndex.from_git(root)
    assert future in everything.shas
    assert everything.lines_starting("def future_only") == ["def future_only_function():"]
    # The first commit has no history before it.
    assert len(HistoryIndex.from_git(root, until=shas[0])) == 0


def test_files_that_change_together_rank_up(repo):
    root, _ = repo
    history = HistoryIndex.from_git(root)
    weights = history.co_change("pkg/a.py")
    assert weights["pkg/b.py"] == 1.0
    assert 0 < weights["pkg/c.py"] < weights["pkg/b.py"]
    assert history.co_change("pkg/nowhere.py") == {}
    # Equally similar pieces: the one of a file that changes with the current one comes first.
    ranked = history.retrieve("value", path="pkg/a.py", limit=20, boosts=weights)
    paths = [piece.path for _, piece in ranked]
    assert paths.index("pkg/b.py") < paths.index("pkg/c.py")


def test_max_commits_keeps_the_newest_and_advance_adds_one(repo):
    root, shas = repo
    history = HistoryIndex.from_git(root, until=shas[-1], max_commits=2)
    assert history.shas == set(shas[-3:-1])
    history.advance(root, shas[-1])
    assert history.shas == set(shas[-2:])
    assert history.lines_starting("def future_only") == ["def future_only_function():"]


def test_static_prefix_is_byte_identical_while_typing_with_history(repo):
    root, _ = repo
    history = HistoryIndex.from_git(root)
    cache = StableContextCache()
    heads = set()
    base, offset = _doc(CURSOR_FILE)
    for typed in ["", "    ", "    ret", "    return norm", "    return normalise_record("]:
        text = base.text[:offset] + typed + base.text[offset:]
        doc = Document(base.uri, text, path=base.path)
        _, prompt, _ = _prompt(doc, offset + len(typed), history, cache=cache)
        if typed:
            heads.add(prompt.text[:prompt.static_prefix_chars])
        assert prompt.text.endswith(typed)
    assert len(heads) == 1
    assert OLD_LINE.strip() in heads.pop()


@pytest.mark.parametrize("max_prompt_tokens", [64, 128, 256, 512], ids=lambda n: f"{n}tok")
def test_budget_is_respected_with_history(repo, max_prompt_tokens):
    root, _ = repo
    history = HistoryIndex.from_git(root)
    workspace = WorkspaceIndex([root])
    workspace.build()
    doc, offset = _doc(CURSOR_FILE)
    budget = ContextBudget(max_prompt_tokens=max_prompt_tokens)
    ctx = build_context(doc, offset, workspace, budget, approx_token_count, history=history)
    assert context_tokens(ctx, approx_token_count) + budget.reserved_tokens <= max_prompt_tokens
    history_tokens = sum(approx_token_count(s.text) for s in ctx.snippets if s.kind in ("history", "lines"))
    assert history_tokens <= max(budget.max_line_share * max_prompt_tokens, 1)


def test_a_folder_without_git_or_with_a_broken_git_has_no_history(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "m.py").write_text("x = 1\n")
    assert len(HistoryIndex.from_git(plain)) == 0
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / ".git").write_text("gitdir: /nonexistent/elsewhere\n")
    history = HistoryIndex.from_git(broken)
    assert len(history) == 0 and history.built
    assert history.retrieve("anything at all", limit=3) == []
    doc, offset = _doc(CURSOR_FILE)
    _, prompt, _ = _prompt(doc, offset, history)
    assert prompt is not None


def test_an_unknown_until_commit_reads_as_no_history(repo):
    root, _ = repo
    assert len(HistoryIndex.from_git(root, until="0" * 40)) == 0


def test_a_merge_brings_its_branch_lines(tmp_path):
    root = tmp_path / "merge"
    make_history(root, HISTORY[:1])
    git(root, "checkout", "-q", "-b", "side")
    (root / "pkg" / "side.py").write_text("def side_branch_feature():\n    return 'side'\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "side")
    git(root, "checkout", "-q", "main")
    git(root, "merge", "-q", "--no-ff", "-m", "merge side", "side")
    history = HistoryIndex.from_git(root)
    assert history.lines_starting("def side_branch") == ["def side_branch_feature():"]


def test_reading_stops_at_the_byte_limit(repo):
    root, shas = repo
    history = HistoryIndex()
    history.build(root, max_bytes=1)  # stops after the first (newest) commit's diff
    assert history.shas == {shas[-1]} and history.built


def test_catch_up_adds_the_commits_made_since_the_index_was_read(tmp_path, monkeypatch):
    import repolsp.server.context.history as history_module

    root = tmp_path / "repo"
    make_history(root, HISTORY[:2])
    history = HistoryIndex.from_git(root)
    assert history.lines_starting("def later_") == []
    make_history(root, [("later", {"pkg/later.py": "def later_helper():\n    return 'made while serving'\n"}),
                        ("later 2", {"pkg/later.py": "def later_helper():\n    return 'changed'\n"})])
    assert history.catch_up(root) == 2
    assert len(history.shas) == 4
    assert history.lines_starting("def later_") == ["def later_helper():"]
    assert any("made while serving" in piece.text
               for _, piece in history.retrieve("later_helper made serving", "x.py", 5))

    def no_log(*args, **kwargs):
        raise AssertionError("a HEAD already caught up with reads no log")

    monkeypatch.setattr(history_module, "read_commits", no_log)
    assert history.catch_up(root) == 0


def test_catch_up_without_git_or_after_a_reset_adds_nothing(tmp_path):
    assert HistoryIndex.empty().catch_up(tmp_path) == 0
    root = tmp_path / "repo"
    shas = make_history(root, HISTORY[:3])
    history = HistoryIndex.from_git(root)
    git(root, "reset", "-q", "--hard", shas[0])  # HEAD back to a commit the index holds
    assert history.catch_up(root) == 0 and len(history.shas) == 3
