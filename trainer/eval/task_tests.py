"""The tests task: new public functions asked of the server's testgen, run with pytest and coverage."""

from __future__ import annotations

import ast
import asyncio
import io
import json
import random
import site
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from repolsp.server.context.document import Document
from repolsp.server.docgen import GenerationSettings
from repolsp.server.testgen import AddTestEdit, generate_tests
from repolsp.trainer.eval.cache import CachingEngine, OutputCache
from repolsp.trainer.eval.holes import EvalError, EvalItem
from repolsp.trainer.eval.loading import Completion, LoadedModel
from repolsp.trainer.eval.metrics import python_parses
from repolsp.trainer.eval.repo import (
    added_line_ranges,
    check_repository,
    decode_source,
    git,
    read_blobs,
)
from repolsp.trainer.eval.sandbox import run_sandboxed
from repolsp.trainer.eval.task_history import history_split
from repolsp.trainer.filters import is_test_path, path_excluded


def new_public_functions(text: str, added: Sequence[tuple[int, int]]) -> list[tuple[str, int, int]]:
    """Top-level public functions whose every line the commit added: (name, first, last line)."""

    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return []
    found = []
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name.startswith("_"):
            continue
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        if all(any(a <= line <= b for a, b in added) for line in range(first, node.end_lineno + 1)):
            found.append((node.name, node.lineno, node.end_lineno))
    return found


def tests_items(repo: Path, holes: int, seed: int = 0, max_commits: int | None = None,
                test_fraction: float = 0.1) -> tuple[list[EvalItem], dict]:
    """Held-out public Python functions that the held-out commits added (outside test files)."""

    root = check_repository(repo)
    split = history_split(root, test_fraction, max_commits)
    candidates = []
    for commit in split.held_out:
        # .py only: stubs (.pyi) hold overloads without bodies, nothing a test can run.
        ranges = {p: r for p, r in added_line_ranges(root, commit).items()
                  if p.endswith(".py") and not is_test_path(p) and not path_excluded(p)}
        paths = sorted(ranges)
        for path, blob in zip(paths, read_blobs(root, [f"{commit.sha}:{p}" for p in paths])):
            text = decode_source(blob)
            if text is None:
                continue
            for name, line, end in new_public_functions(text, ranges[path]):
                lines = text.split("\n")
                offset = sum(len(row) + 1 for row in lines[: line - 1]) + max(
                    0, lines[line - 1].find(name))
                candidates.append(EvalItem(
                    "tests", f"{commit.sha[:10]}:{path}:{line}:{name}", path, text, offset,
                    "\n".join(lines[line - 1:end]), "function", commit.sha,
                    original_parses=True, program_tail=f"{line}-{end}"))
    if not candidates:
        raise EvalError(
            f"nothing to evaluate for tests: the {len(split.held_out)} held-out commit(s) of "
            f"{root} added no public top-level Python function"
        )
    random.Random(seed).shuffle(candidates)
    items = sorted(candidates[:holes], key=lambda i: i.id)
    return items, {"repo": str(root), "held_out_commits": len(split.held_out),
                   "candidates": len(candidates)}


def export_tree(repo: Path, commit: str, folder: Path) -> None:
    """The commit's files written into folder (git archive; links and odd paths skipped)."""

    data = git(repo, "archive", "--format=tar", commit)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(folder, filter="data")


# Runs one test with pytest (and coverage.py when importable) inside the sandbox; prints JSON.
_TEST_RUNNER = '''
import json, sys
sys.path[:0] = {paths!r}
sys.path.extend({site!r})
import pytest
try:
    import coverage
    cov = coverage.Coverage(data_file=None, include=[{source!r}])
except ImportError:
    cov = None
if cov is not None:
    cov.start()
code = pytest.main(["-q", "-x", "-p", "no:cacheprovider", "-p", "no:randomly", {node!r}])
covered = total = None
if cov is not None:
    cov.stop()
    try:
        _, statements, _, missing, _ = cov.analysis2({source!r})
        lines = [n for n in statements if {first} <= n <= {last}]
        total = len(lines)
        covered = len([n for n in lines if n not in set(missing)])
    except Exception:
        pass
print("REPOLSP-RESULT " + json.dumps({{"exit": int(code), "covered": covered, "total": total}}))
'''


def run_generated_test(folder: Path, source: Path, test_path: Path, test_name: str,
                       lines: tuple[int, int], timeout_s: float = 60.0) -> dict:
    """Run the generated test in the sandbox: {"runs", "pass_rate", "coverage"} (0/1 floats,
    coverage of the function's statements when the test passed and coverage.py is there)."""

    program = _TEST_RUNNER.format(
        paths=[str(folder), str(folder / "src")], site=site.getsitepackages(),
        source=str(source), node=f"{test_path.relative_to(folder).as_posix()}::{test_name}",
        first=lines[0], last=lines[1])
    result = run_sandboxed(program, timeout_s, memory_mb=2048, folder=folder)
    report = next((json.loads(row.split(" ", 1)[1]) for row in result.stdout.splitlines()
                   if row.startswith("REPOLSP-RESULT ")), None)
    if report is None:
        return {"run_rate": 0.0, "pass_rate": 0.0, "run_status": result.status}
    passed = report["exit"] == 0
    scores = {"run_rate": float(report["exit"] in (0, 1)), "pass_rate": float(passed),
              "run_status": f"pytest exit {report['exit']}"}
    if passed and report.get("total"):
        scores["coverage"] = report["covered"] / report["total"]
    return scores


def complete_tests(model: LoadedModel, item: EvalItem, repo: Path, cache: OutputCache,
                   timeout_s: float = 30.0, run_timeout_s: float = 60.0) -> Completion:
    """The server's "Generate tests" edit for item's function, written into an export of the
    commit and run there (sandboxed)."""


    engine = CachingEngine(model.engine, cache)
    with tempfile.TemporaryDirectory(prefix="repolsp-tests-") as tmp:
        folder = Path(tmp).resolve()
        export_tree(repo, item.commit, folder)
        source = folder / item.path
        doc = Document(source.as_uri(), item.text, "python", path=item.path)
        settings = GenerationSettings(engine=engine, timeout_s=timeout_s,
                                      max_prompt_tokens=model.max_prompt_tokens)
        started = time.perf_counter()
        result = asyncio.run(generate_tests(doc, item.offset, folder, settings))
        elapsed_ms = (time.perf_counter() - started) * 1000
        completion = Completion("", "tests", prepare_ms=max(0.0, elapsed_ms - engine.engine_ms),
                                engine_ms=engine.engine_ms, cached=engine.hits > 0)
        if not isinstance(result, AddTestEdit):
            completion.raw = str(result)
            completion.extra = {"parse_rate": 0.0, "run_rate": 0.0, "pass_rate": 0.0}
            return completion
        new_text = result.new_text
        completion.text = new_text
        completion.extra = {"parse_rate": float(python_parses(new_text)),
                            "model_text": float(result.from_model)}
        if completion.extra["parse_rate"]:
            result.path.parent.mkdir(parents=True, exist_ok=True)
            result.path.write_text(new_text, encoding="utf-8")
            first, last = (int(n) for n in item.program_tail.split("-"))
            completion.extra.update(run_generated_test(
                folder, source, result.path, result.test_name, (first, last), run_timeout_s))
        else:
            completion.extra.update({"run_rate": 0.0, "pass_rate": 0.0})
        return completion
