"""lsp-eval: metrics, bootstrap, hole cutting, sandbox, cache, and end-to-end runs with fakes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
from repolsp.models.prompt import LEFT_TO_RIGHT
from repolsp.server.engine.base import GenerationRequest
from repolsp.server.engine.fake import FakeEngine
from repolsp.trainer.eval import cli as eval_cli
from repolsp.trainer.eval.cache import OutputCache
from repolsp.trainer.eval.holes import EvalError, cut_columns, line_hole, span_hole
from repolsp.trainer.eval.loading import LoadedModel, load_store_model
from repolsp.trainer.eval.metrics import (
    bootstrap_mean_ci,
    edit_distance,
    edit_similarity,
    first_line,
    normalize,
    paired_bootstrap_ci,
    percentile,
    python_parses,
)
from repolsp.trainer.eval.options import EvalOptions
from repolsp.trainer.eval.repo import added_line_ranges, check_repository
from repolsp.trainer.eval.reports import render_report, write_json, write_report
from repolsp.trainer.eval.runner import run_evaluation, score_item
from repolsp.trainer.eval.sandbox import run_sandboxed
from repolsp.trainer.eval.task_history import history_items, history_split
from repolsp.trainer.eval.task_humaneval import humaneval_line_tasks, load_humaneval

# --- metrics -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b, distance",
    [("", "", 0), ("abc", "abc", 0), ("abc", "", 3), ("kitten", "sitting", 3),
     ("flaw", "lawn", 2), ("x = 1", "x = 10", 1)],
    ids=["empty", "same", "delete-all", "kitten", "flaw", "append"],
)
def test_edit_distance(a, b, distance):
    assert edit_distance(a, b) == distance
    assert edit_distance(b, a) == distance


@pytest.mark.parametrize(
    "prediction, target, expected",
    [("return x", "return x", 1.0), ("", "", 1.0), ("", "abcd", 0.0), ("abcd", "abce", 0.75),
     ("return x  \n", "return x", 1.0), ("zzzzzzzz", "return x", 0.0)],
    ids=["same", "both-empty", "empty-prediction", "one-off", "trailing-space", "disjoint"],
)
def test_edit_similarity(prediction, target, expected):
    assert edit_similarity(prediction, target) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text, expected_normal, expected_first",
    [("a  \n  b \n\n", "a\n  b", "a"), ("\n\n  x = 1\ny", "x = 1\ny", "x = 1"), ("", "", "")],
    ids=["trailing", "leading-blank", "empty"],
)
def test_normalize_and_first_line(text, expected_normal, expected_first):
    assert normalize(text) == expected_normal
    assert first_line(text) == expected_first


@pytest.mark.parametrize(
    "values, q, expected",
    [([1, 2, 3, 4, 5], 50, 3), ([1, 2, 3, 4], 50, 2.5), ([10], 95, 10), ([], 50, None),
     ([0, 100], 95, 95)],
    ids=["odd", "even", "single", "empty", "interpolated"],
)
def test_percentile(values, q, expected):
    assert percentile(values, q) == expected


def test_python_parses_tells_valid_from_broken_code():
    assert python_parses("def f(x):\n    return x\n")
    assert not python_parses("def f(x):\n    return (x\n")


# --- bootstrap -----------------------------------------------------------------------------


def test_bootstrap_interval_contains_the_mean_and_narrows_with_more_items():
    few = [1.0, 0.0] * 5
    many = [1.0, 0.0] * 200
    low_few, high_few = bootstrap_mean_ci(few, seed=1)
    low_many, high_many = bootstrap_mean_ci(many, seed=1)
    assert low_few <= 0.5 <= high_few and low_many <= 0.5 <= high_many
    assert high_many - low_many < high_few - low_few
    assert bootstrap_mean_ci([], seed=1) is None


@pytest.mark.parametrize(
    "a, b, sign",
    [([0.0, 1.0, 0.0, 1.0] * 10, [0.0, 1.0, 0.0, 1.0] * 10, 0),
     ([0.0, 0.0, 1.0, 0.0] * 10, [1.0, 1.0, 1.0, 0.0] * 10, 1),
     ([1.0, 1.0, 1.0, 0.0] * 10, [0.0, 1.0, 0.0, 0.0] * 10, -1)],
    ids=["equal", "b-better", "b-worse"],
)
def test_paired_bootstrap_ci_sign(a, b, sign):
    result = paired_bootstrap_ci(a, b, seed=3)
    low, high = result["ci95"]
    assert result["n"] == len(a)
    if sign == 0:
        assert result["mean_diff"] == 0 and low == high == 0
    elif sign > 0:
        assert result["mean_diff"] > 0 and low > 0
    else:
        assert result["mean_diff"] < 0 and high < 0


def test_paired_bootstrap_needs_the_same_items():
    with pytest.raises(ValueError):
        paired_bootstrap_ci([1.0], [1.0, 0.0])


# --- hole cutting --------------------------------------------------------------------------

SOURCE = "def f(a, b):\n    total = a + b\n    return total * 2\n\nx = f(1, 2)\n"


@pytest.mark.parametrize(
    "line_index, column, target",
    [(1, 4, "total = a + b"), (2, 11, "total * 2"),
     (4, 4, "f(1, 2)")],
    ids=["code-start", "after-keyword", "call"],
)
def test_line_hole_removes_the_rest_of_the_line(line_index, column, target):
    text, offset, cut_target = line_hole(SOURCE, line_index, column)
    assert cut_target == target
    assert text[:offset] + cut_target + text[offset:] == SOURCE
    assert text[offset] == "\n"


def test_span_hole_removes_whole_lines_and_keeps_the_indentation():
    text, offset, target = span_hole(SOURCE, 1, 2)
    assert target == "total = a + b\n    return total * 2"
    assert text[:offset] + target + text[offset:] == SOURCE
    assert text[:offset].endswith("\n    ")


@pytest.mark.parametrize(
    "line, columns",
    [("    x = foo(a, b)", [4, 8, 11]), ("return values", [0, 7]), ("return x", [0]), ("x", [0])],
    ids=["assignment", "return", "short-rest", "tiny"],
)
def test_cut_columns_are_word_boundaries(line, columns):
    assert cut_columns(line) == columns


# --- a throw-away repository ---------------------------------------------------------------

OLD_CODE = '''\
import os


def load(path):
    with open(path) as handle:
        return handle.read()


def shared_helper(items):
    return sorted(set(items))
'''

NEW_FUNCTION = '''

def count_words(text):
    words = text.split()
    counts = {}
    for word in words:
        counts[word] = counts.get(word, 0) + 1
    return counts
'''

MID_CODE = '''\
def middle_value(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]
'''

UTIL_CODE = '''\
def shared_helper(items):
    return sorted(set(items))


def scale_vector(vector, factor):
    scaled = [value * factor for value in vector]
    return tuple(scaled)
'''


def _git(repo: Path, *args: str, stamp: int = 1_700_000_000) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "GIT_AUTHOR_DATE": f"{stamp} +0000", "GIT_COMMITTER_DATE": f"{stamp} +0000"}
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True,
                          text=True, check=True)
    return done.stdout


def _commit(repo: Path, files: dict[str, str], message: str, stamp: int) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
        _git(repo, "add", name)
    _git(repo, "commit", "-q", "-m", message, stamp=stamp)
    return _git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture(scope="module")
def history_repo(tmp_path_factory) -> dict:
    repo = tmp_path_factory.mktemp("history-repo")
    _git(repo, "init", "-q", "-b", "main")
    old = _commit(repo, {"app.py": OLD_CODE, "README.md": "notes\n"}, "old code", 1_700_000_000)
    docs = _commit(repo, {"README.md": "more notes\n"}, "docs only", 1_700_050_000)
    mid = _commit(repo, {"mid.py": MID_CODE}, "validation slice", 1_700_060_000)
    grow = _commit(repo, {"app.py": OLD_CODE + NEW_FUNCTION}, "count words", 1_700_100_000)
    util = _commit(repo, {"util.py": UTIL_CODE}, "util", 1_700_200_000)
    return {"repo": repo, "old": old, "docs": docs, "mid": mid, "grow": grow, "util": util}


def _file_at(repo: Path, commit: str, path: str) -> str:
    return _git(repo, "show", f"{commit}:{path}")


def test_held_out_commits_follow_the_trainers_time_split(history_repo):
    split = history_split(history_repo["repo"], test_fraction=0.4)
    # Four commits changed code (the docs-only one does not count): 1 train, 1 valid, 2 test.
    assert split.commits == 5 and split.commits_with_code == 4
    assert [c.sha for c in split.held_out] == [history_repo["util"], history_repo["grow"]]
    assert split.training_rev == history_repo["mid"]
    grow = split.held_out[1]
    start = OLD_CODE.count("\n") + 1
    assert added_line_ranges(history_repo["repo"], grow) == {
        "app.py": [(start, start + NEW_FUNCTION.count("\n") - 1)]}


def test_history_holes_are_where_the_commits_changed_code(history_repo):
    repo = history_repo["repo"]
    items, facts = history_items(repo, holes=30, seed=5, span_share=0.3, test_fraction=0.4)
    assert items, "expected holes"
    assert facts["training_split_rev"] == history_repo["mid"]
    new_lines = {line.strip() for line in (NEW_FUNCTION + UTIL_CODE).split("\n") if line.strip()}
    for item in items:
        original = _file_at(repo, item.commit, item.path)
        # The target is exact: putting it back gives the file as it was at that commit.
        assert item.text[: item.offset] + item.target + item.text[item.offset:] == original
        assert item.commit in (history_repo["grow"], history_repo["util"])
        line_no = original[: item.offset].count("\n")
        assert original.split("\n")[line_no].strip() in new_lines
        # Lines that already existed before the held-out commits are never targets.
        assert "sorted(set(items))" not in item.target
        assert item.path.endswith(".py") and item.kind in ("line", "span")
    assert facts["dropped_seen_in_training"] >= 1
    assert {item.kind for item in items} == {"line", "span"}


def test_history_holes_are_reproducible_for_a_seed(history_repo):
    first, _ = history_items(history_repo["repo"], holes=6, seed=11, test_fraction=0.4)
    again, _ = history_items(history_repo["repo"], holes=6, seed=11, test_fraction=0.4)
    assert [(i.id, i.target) for i in first] == [(i.id, i.target) for i in again]


# --- errors --------------------------------------------------------------------------------


def test_not_a_repository(tmp_path):
    with pytest.raises(EvalError, match="not inside a git repository"):
        check_repository(tmp_path)


def test_repository_without_history(tmp_path):
    _git(tmp_path, "init", "-q")
    with pytest.raises(EvalError, match="no commits"):
        check_repository(tmp_path)


def test_shallow_clone(history_repo, tmp_path):
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", history_repo["repo"].as_uri(), str(clone)],
                   check=True, capture_output=True)
    with pytest.raises(EvalError, match="shallow clone.*unshallow"):
        check_repository(clone)


def test_a_bare_mirror_is_a_repository(history_repo, tmp_path):
    bare = tmp_path / "mirror.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(history_repo["repo"]), str(bare)],
                   check=True, capture_output=True)
    assert check_repository(bare) == bare.resolve()
    items, _ = history_items(bare, holes=3, seed=1, test_fraction=0.4)
    assert items


def test_no_supported_files(tmp_path):
    _git(tmp_path, "init", "-q")
    _commit(tmp_path, {"README.md": "# docs\nsome words here\n", "data.csv": "a,b\n1,2\n"}, "docs", 1_700_000_000)
    with pytest.raises(EvalError, match="no files in a supported language"):
        history_items(tmp_path, holes=5)


def test_unregistered_model(tmp_path):
    with pytest.raises(EvalError, match="not installed.*lsp-models pull"):
        load_store_model("no-such-model", home=tmp_path)


@pytest.mark.parametrize(
    "make_repo, message",
    [("plain", "not inside a git repository"), ("empty", "no commits"),
     ("docs", "no files in a supported language")],
    ids=["no-repo", "no-history", "no-supported-files"],
)
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, make_repo, message):
    repo = tmp_path / "repo"
    repo.mkdir()
    if make_repo != "plain":
        _git(repo, "init", "-q")
    if make_repo == "docs":
        _commit(repo, {"notes.txt": "hello\n"}, "docs", 1_700_000_000)
    code = eval_cli.main([str(repo), "--models", "fake", "--tasks", "history", "--no-progress",
                          "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_cli_unregistered_model(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("REPOLSP_HOME", str(tmp_path / "home"))
    code = eval_cli.main(["--models", "missing-model", "--tasks", "humaneval", "--holes", "1",
                          "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "missing-model" in err and "lsp-models pull" in err
    assert len(err.splitlines()) == 1


# --- humaneval and the sandbox -------------------------------------------------------------


def test_humaneval_builder_yields_the_1033_single_line_tasks():
    problems = load_humaneval()
    tasks = humaneval_line_tasks(problems)
    assert len(problems) == 164 and len(tasks) == 1033
    first = tasks[0]
    assert first.id == "HumanEval/0/L0" and first.target == "for idx, elem in enumerate(numbers):"
    assert first.text[: first.offset].endswith('"""\n    ')


def test_canonical_fill_passes_where_the_null_fill_fails():
    task = humaneval_line_tasks(load_humaneval()[:1])[0]
    assert score_item(task, task.target)["pass_at_1"] == 1.0
    null = score_item(task, "pass")
    assert null["pass_at_1"] == 0.0 and null["exact_match"] == 0.0


def test_sandbox_kills_an_infinite_loop():
    result = run_sandboxed("while True:\n    pass\n", timeout_s=1.0)
    assert result.status == "timeout" and not result.passed


def test_sandbox_blocks_network_calls():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        program = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        result = run_sandboxed(program, timeout_s=5)
        raw = f"import _socket\ns = _socket.socket()\ns.settimeout(2)\ns.connect(('127.0.0.1', {port}))\n"
        raw_result = run_sandboxed(raw, timeout_s=5)
    finally:
        listener.close()
    assert result.status == "failed" and "blocked" in result.detail
    assert not raw_result.passed


def test_sandbox_passes_a_good_program():
    assert run_sandboxed("assert sum([1, 2]) == 3\n").passed


# --- cache ---------------------------------------------------------------------------------


def test_output_cache_survives_a_reload_and_a_cut_last_line(tmp_path):
    cache = OutputCache(tmp_path, "abc123")
    key = OutputCache.key("prompt", 48, 0.0)
    assert cache.get(key) is None
    cache.put(key, {"text": "return 1", "engine_ms": 5.0})
    with cache.path.open("a") as handle:
        handle.write('{"key": "half-writ')  # an interrupted write
    again = OutputCache(tmp_path, "abc123")
    assert again.get(key)["text"] == "return 1"
    assert OutputCache(tmp_path, "other").get(key) is None
    assert OutputCache.key("prompt", 48, 0.0) != OutputCache.key("prompt", 49, 0.0)


# --- end to end with fake engines ----------------------------------------------------------


class OracleEngine(FakeEngine):
    """Answers each hole with its real target (found by the end of the prompt), or a fixed
    wrong answer when `wrong` is set."""

    def __init__(self, items, wrong: str | None = None):
        super().__init__(model_name="oracle")
        self.items = items
        self.wrong = wrong

    def _pieces(self, request: GenerationRequest) -> list[str]:
        if self.wrong is not None:
            return [self.wrong]
        for item in self.items:
            if request.prompt.endswith(item.text[: item.offset][-300:]):
                return [item.target]
        return ["no_idea()"]


def _loader(engine_for):
    def load(name: str) -> LoadedModel:
        return LoadedModel(name, engine_for(name), LEFT_TO_RIGHT, None, f"hash-{name}",
                           {"compute_type": "fake", "threads": 1})
    return load


def test_lsp_eval_end_to_end_right_answers_score_1_and_wrong_answers_0(history_repo, tmp_path):
    from repolsp.trainer.eval.runner import build_items

    options = EvalOptions(repo=history_repo["repo"], models=["right", "wrong"], holes=4,
                          tasks=["history", "humaneval"], seed=2, cache_dir=tmp_path / "cache",
                          test_fraction=0.4, progress=False, span_share=0.0,
                          bootstrap_resamples=200)
    items, _ = build_items(options)
    every = items["history"] + items["humaneval"]
    engines = {"right": OracleEngine(every), "wrong": OracleEngine(every, wrong="zzz_qqq(9)")}
    results = run_evaluation(options, _loader(engines.__getitem__))

    # Retrieval as in the server: the training split's tree is the indexed workspace, for the
    # history holes only (HumanEval prompts never carry the repository's snippets).
    assert results["facts"]["history"]["index_files"] == 2  # app.py and mid.py at `mid`
    humaneval_prompts = [p for p in engines["right"].prompts if "humaneval/" in p]
    assert humaneval_prompts and not any("Path: app.py" in p or "Path: mid.py" in p
                                         for p in humaneval_prompts)
    right, wrong = results["models"]["right"], results["models"]["wrong"]
    assert right["tasks"]["history"]["exact_match"]["mean"] == 1.0
    assert right["tasks"]["history"]["edit_similarity"]["mean"] == 1.0
    assert right["tasks"]["humaneval"]["pass_at_1"]["mean"] == 1.0
    assert wrong["tasks"]["history"]["exact_match"]["mean"] == 0.0
    assert wrong["tasks"]["humaneval"]["pass_at_1"]["mean"] == 0.0
    assert wrong["edit_similarity"] < 0.5
    assert results["humaneval_null_fill"]["pass_at_1"]["mean"] < 1.0
    diff = next(c for c in results["comparisons"]
            if c["task"] == "history" and c["metric"] == "exact_match")
    assert diff["mean_diff"] == -1.0 and diff["ci95"] == [-1.0, -1.0]

    # The documented JSON keys.
    out = tmp_path / "out.json"
    write_json(results, out)
    data = json.loads(out.read_text())
    for name in ("right", "wrong"):
        assert {"exact_match", "edit_similarity", "p50_ms", "hash", "compute_type"} <= set(
            data["models"][name])
    assert data["ctranslate2"] and data["items"]

    # The report, with charts when matplotlib is there.
    written = write_report(results, tmp_path / "report.md")
    report = written[0].read_text()
    assert "## history" in report and "null fill" in report and "Paired differences" in report

    # A repeat run reads every output from the cache and calls no model.
    again = {"right": OracleEngine(every), "wrong": OracleEngine(every, wrong="zzz_qqq(9)")}
    repeat = run_evaluation(options, _loader(again.__getitem__))
    assert again["right"].calls == 0 and again["wrong"].calls == 0
    assert repeat["models"]["right"]["cached_items"] == repeat["models"]["right"]["n"]
    assert repeat["models"]["right"]["exact_match"] == 1.0


def test_render_report_without_charts_names_every_model():
    results = {
        "created": "now", "ctranslate2": "4.8.5", "facts": {}, "comparisons": [],
        "humaneval_null_fill": None,
        "options": {"seed": 0, "holes": 1, "tasks": ["history"]},
        "models": {"m": {"hash": "ab" * 32, "compute_type": "int8", "threads": 2,
                         "tasks": {"history": {
                             "n": 1, "exact_match": {"mean": 1.0, "ci95": [1.0, 1.0], "n": 1},
                             "first_line_exact": {"mean": 1.0, "ci95": None, "n": 1},
                             "edit_similarity": {"mean": 1.0, "ci95": None, "n": 1},
                             "first_line_edit_similarity": {"mean": 1.0, "ci95": None, "n": 1},
                             "parse_rate": {"mean": None, "ci95": None, "n": 0},
                             "pass_at_1": {"mean": None, "ci95": None, "n": 0},
                             "p50_ms": 12.0, "p95_ms": 20.0, "by_kind": {}}}}},
    }
    text = render_report(results)
    assert "| m | 1 | 100.0% [100.0, 100.0]" in text and "abababababababab" in text


# --- bench/run.py (make bench) -------------------------------------------------------------


def _bench_module():
    import importlib.util
    import sys

    name = "repolsp_bench_run"
    if name not in sys.modules:  # bench/ is scripts, not a package: load the file itself
        path = Path(__file__).resolve().parents[2] / "bench" / "run.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while being created
        spec.loader.exec_module(module)
    return sys.modules[name]


BENCH_SOURCE = "\n".join(
    [f"CONSTANT_{i} = {i}" for i in range(300)]
    + ["", "", "def combine(left, right):", '    """Join two lists."""',
       "    merged = list(left)", "    for item in right:", "        if item not in merged:",
       "            merged.append(item)", "    return merged", ""]
    + [f"OTHER_{i} = {i}" for i in range(300)]
) + "\n"


def test_bench_typing_script_types_the_removed_body_back():
    bench = _bench_module()
    script = bench.typing_script(BENCH_SOURCE, "big.py")
    assert script.function == "combine"
    assert "merged.append" not in script.text and '"""Join two lists."""' in script.text
    text, _ = bench.replay_text(script, len(script.keystrokes) - 1)
    assert text == BENCH_SOURCE
    assert "\n        " in script.keystrokes  # Enter arrives with the auto-indentation
    line, character = script.line, script.character
    for typed in script.keystrokes:
        line, character = bench.advance(line, character, typed)
    assert (line, character) == (script.line + 4, len("    return merged"))


@pytest.mark.parametrize(
    "typed, expected",
    [("a", (3, 5)), ("\n    ", (4, 4)), ("\n", (4, 0))],
    ids=["char", "enter-with-indent", "bare-enter"],
)
def test_bench_advance(typed, expected):
    assert _bench_module().advance(3, 4, typed) == expected


def test_bench_smoke_run_with_the_fake_engine_writes_the_table(history_repo, tmp_path, monkeypatch):
    bench = _bench_module()
    monkeypatch.setenv("REPOLSP_HOME", str(tmp_path / "home"))
    out, data = tmp_path / "RESULTS.md", tmp_path / "results.json"
    code = bench.main(["--engine", "fake", "--max-chars", "6", "--history-holes", "2",
                       "--history-repo", str(history_repo["repo"]), "--mine-commits", "5",
                       "--out", str(out), "--json", str(data)])
    assert code == 0
    table = out.read_text()
    assert "Inline latency p50, all requests" in table and "Server peak RSS" in table
    session = json.loads(data.read_text())["session"]
    assert session["requests"] == 6
    assert session["model_requests"] + session["cache_hits"] + session["no_model_requests"] == 6
    assert session["peak_rss_mb"] > 0
    assert session["history_holes"] == 2  # lsp-eval's held-out holes, over the LSP
    assert "Trainer mining" in table


# --- docstring task ------------------------------------------------------------------------

SHAPES = '''\
import math


def area(radius):
    return math.pi * radius ** 2


def perimeter(radius):
    return 2 * math.pi * radius
'''

SHAPES_DOCUMENTED = '''\
import math


def area(radius):
    """Return the area of a circle with the given radius."""
    return math.pi * radius ** 2


def perimeter(radius):
    return 2 * math.pi * radius


def diameter(radius):
    """Return the diameter of a circle."""
    value = 2 * radius
    return value
'''


@pytest.fixture(scope="module")
def docstring_repo(tmp_path_factory) -> dict:
    repo = tmp_path_factory.mktemp("docstring-repo")
    _git(repo, "init", "-q", "-b", "main")
    _commit(repo, {"shapes.py": SHAPES}, "shapes", 1_700_000_000)
    _commit(repo, {"other.py": "def other(x):\n    return x + 1\n"}, "other", 1_700_001_000)
    documented = _commit(repo, {"shapes.py": SHAPES_DOCUMENTED}, "docstrings", 1_700_002_000)
    return {"repo": repo, "documented": documented}


def test_docstring_items_are_the_docstrings_the_held_out_commits_added(docstring_repo):
    from repolsp.trainer.eval.task_docstring import docstring_items

    items, facts = docstring_items(docstring_repo["repo"], holes=5, test_fraction=0.4)
    assert sorted(item.target for item in items) == [
        "Return the area of a circle with the given radius.", "Return the diameter of a circle."]
    for item in items:
        assert item.commit == docstring_repo["documented"]
        assert item.target not in item.text and python_parses(item.text)
        name = item.id.rsplit(":", 1)[1]
        assert item.text[item.offset:].startswith(name)
    assert facts["candidates"] == 2


def test_docstring_task_end_to_end_scores_the_right_summary_higher(docstring_repo, tmp_path):
    from repolsp.trainer.eval.runner import build_items

    options = EvalOptions(repo=docstring_repo["repo"], models=["right", "wrong"], holes=5,
                          tasks=["docstring"], cache_dir=tmp_path / "cache", test_fraction=0.4,
                          progress=False, bootstrap_resamples=100)
    items, _ = build_items(options)

    class SummaryEngine(FakeEngine):
        def __init__(self, wrong: bool):
            super().__init__(model_name="summary")
            self.wrong = wrong

        def _pieces(self, request):
            if self.wrong:
                return ["zzz", " qqq", " xxx", "\n"]
            for item in items["docstring"]:
                name = item.id.rsplit(":", 1)[1]
                if f"def {name}(" in request.prompt[-400:]:
                    words = item.target.split(" ")
                    return [words[0]] + [" " + w for w in words[1:]] + ["\n"]
            return ["Something", "\n"]

    engines = {"right": SummaryEngine(False), "wrong": SummaryEngine(True)}
    results = run_evaluation(options, _loader(engines.__getitem__))
    right = results["models"]["right"]["tasks"]["docstring"]
    wrong = results["models"]["wrong"]["tasks"]["docstring"]
    assert right["n"] == wrong["n"] == 2
    assert right["first_line_exact"]["mean"] == 1.0 and wrong["first_line_exact"]["mean"] == 0.0
    assert right["bleu4"]["mean"] > wrong["bleu4"]["mean"] + 0.1
    assert right["chrf"]["mean"] > wrong["chrf"]["mean"]
    assert right["parse_rate"]["mean"] == 1.0
    assert "BLEU-4" in render_report(results)


# --- tests task ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tests_repo(tmp_path_factory) -> dict:
    repo = tmp_path_factory.mktemp("tests-repo")
    _git(repo, "init", "-q", "-b", "main")
    ops = "def add(a, b):\n    return a + b\n"
    _commit(repo, {"calc/__init__.py": "", "calc/ops.py": ops}, "ops", 1_700_000_000)
    _commit(repo, {"calc/util.py": "def ident(x):\n    return x\n"}, "util", 1_700_001_000)
    grown = ops + "\n\ndef multiply(a, b):\n    product = a * b\n    return product\n"
    added = _commit(repo, {"calc/ops.py": grown}, "multiply", 1_700_002_000)
    return {"repo": repo, "added": added}


def test_tests_items_are_the_public_functions_the_held_out_commits_added(tests_repo):
    from repolsp.trainer.eval.task_tests import tests_items

    items, _ = tests_items(tests_repo["repo"], holes=5, test_fraction=0.4)
    assert [item.id.rsplit(":", 1)[1] for item in items] == ["multiply"]
    assert items[0].commit == tests_repo["added"] and items[0].path == "calc/ops.py"
    assert items[0].text[items[0].offset:].startswith("multiply(a, b)")


@pytest.mark.parametrize(
    "answer", ["2, 3) == 6\n", "2, 3) == 7\n"], ids=["right", "wrong"])
def test_tests_task_runs_the_generated_test_against_the_commit(tests_repo, tmp_path, answer):
    from repolsp.trainer.eval.runner import build_items

    options = EvalOptions(repo=tests_repo["repo"], models=["m"], holes=3, tasks=["tests"],
                          cache_dir=None, test_fraction=0.4, progress=False,
                          bootstrap_resamples=50)
    build_items(options)

    class AnswerEngine(FakeEngine):
        def _pieces(self, request):
            return [answer]

    results = run_evaluation(options, _loader(lambda name: AnswerEngine(model_name=name)))
    row = results["models"]["m"]["tasks"]["tests"]
    item = results["items"][0]
    assert row["n"] == 1 and row["parse_rate"]["mean"] == 1.0, item
    assert row["run_rate"]["mean"] == 1.0, item
    # "Generate tests" runs what it writes: the model's call is kept with the value it returned,
    # so a wrong expected value (7) never reaches the file.
    assert row["pass_rate"]["mean"] == 1.0, item
    assert row["coverage"]["mean"] == 1.0  # both statements of multiply ran
    assert "(2, 3, 6)," in item["completion"] and "(2, 3, 7)," not in item["completion"]
