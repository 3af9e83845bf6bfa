"""Bench "Generate tests": this generator against the one before it, in the same run.

    .venv/bin/python bench/testgen.py [--per-repo 20] [--model gemma3-270m] [--out bench/testgen.json]

Functions: public top-level functions of two real code bases: a pure-Python package from
site-packages copied into a temporary folder (``packaging``), and this repository, used in place
(its ``server/context``, ``models`` and ``trainer`` helpers). For each function and generator the
whole edited test file is run with pytest in the sandbox (coverage on) and recorded: at least one
passing test, line coverage of the function, seconds per action, placeholders (``TODO``) in the
added tests. The old generator is ``server/testgen.py`` of the base commit, written into this
run's temporary folder only (it imports the rest of the server as it is now).
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from repolsp.server.context.document import Document, path_to_uri
from repolsp.server.docgen import GenerationSettings
from repolsp.server.testgen import generate_tests
from repolsp.server.testgen.python_flow import coverage_percent, import_roots
from repolsp.server.testgen.python_target import locate
from repolsp.server.testgen.sandbox import run_in_sandbox

REPO = Path(__file__).resolve().parents[1]
BASE_COMMIT = "17bb8a3"  # the last commit with the single-module generator
THIS_REPO_FILES = ["server/context/coords.py", "models/prompt.py", "server/context/index.py",
                   "trainer/filters.py", "server/testgen/arguments.py", "server/config.py"]


def old_generator(workdir: Path):
    """The base commit's ``generate_tests``, loaded from a copy in the run's temporary folder."""
    text = subprocess.run(["git", "show", f"{BASE_COMMIT}:server/testgen.py"], cwd=REPO, check=True,
                          capture_output=True, text=True).stdout
    path = workdir / "testgen_old.py"
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("repolsp_bench_testgen_old", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.generate_tests


def functions_of(path: Path, limit: int) -> list[tuple[str, int]]:
    """(name, line) of public top-level functions, in file order."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(n.name, n.lineno) for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and not n.name.startswith("_")][:limit]


def run_file(test_text: str, source: Path, module: str, root: Path, name: str, line: int) -> tuple[int, int]:
    """(passing tests, % of the function covered) for a whole test file, run in the sandbox."""
    text = source.read_text(encoding="utf-8")
    job = {"kind": "pytest", "module": module, "path": str(source), "source": text,
           "sys_path": import_roots(source, module, root), "test_text": test_text}
    run = run_in_sandbox(job)
    if run.result is None:
        return 0, 0
    passed = sum(1 for t in run.result["tests"] if t["outcome"] == "passed")
    target = locate(ast.parse(text), name, line)
    return passed, coverage_percent(target, set(run.result["lines"])) if target and passed else 0


def measure(generate, source: Path, root: Path, name: str, line: int, settings) -> dict:
    from repolsp.server.testgen.locations import python_module_path

    text = source.read_text(encoding="utf-8")
    doc = Document(path_to_uri(source), text, "python")
    offset = sum(len(s) for s in text.splitlines(keepends=True)[:line - 1]) + 4
    started = time.monotonic()
    edit = asyncio.run(generate(doc, offset, root, settings))
    seconds = time.monotonic() - started
    if isinstance(edit, str):
        return {"function": name, "seconds": seconds, "passed": 0, "coverage": 0, "placeholder": False, "error": edit}
    added = "".join(i.new_text for i in edit.insertions)
    module = python_module_path(source, root)
    # Only what the edit adds (with the file's own imports): the rest of an existing test file
    # may need the project's fixtures, and is the same for both generators.
    own_imports = [ln for ln in edit.existing.splitlines() if ln.startswith(("import ", "from "))]
    test_text = edit.new_text if edit.create else "\n".join([*own_imports, *(i.new_text for i in edit.insertions)])
    passed, covered = run_file(test_text, source, module, root, name, line)
    return {"function": name, "seconds": round(seconds, 2), "passed": passed, "coverage": covered,
            "placeholder": "TODO" in added or "Skeleton" in added, "message": getattr(edit, "message", "")}


def summary(rows: list[dict]) -> dict:
    n = len(rows) or 1
    return {"functions": len(rows), "with_passing_test": round(sum(r["passed"] > 0 for r in rows) / n, 3),
            "median_coverage": statistics.median([r["coverage"] for r in rows]) if rows else 0,
            "median_seconds": statistics.median([r["seconds"] for r in rows]) if rows else 0,
            "with_placeholder": round(sum(r["placeholder"] for r in rows) / n, 3)}


def code_bases(workdir: Path, per_repo: int) -> list[tuple[str, Path, list[tuple[Path, str, int]]]]:
    import packaging

    copy = workdir / "packaging_copy"
    shutil.copytree(Path(packaging.__file__).parent, copy / "packaging")
    picked = []
    for rel in ["packaging/utils.py", "packaging/version.py", "packaging/_parser.py", "packaging/tags.py"]:
        picked += [(copy / rel, n, ln) for n, ln in functions_of(copy / rel, per_repo)]
    ours = [(REPO / rel, n, ln) for rel in THIS_REPO_FILES for n, ln in functions_of(REPO / rel, per_repo)]
    return [("packaging (site-packages copy)", copy, picked[:per_repo]), ("repolsp (in place)", REPO, ours[:per_repo])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-repo", type=int, default=20)
    parser.add_argument("--model", default=None, help="a model of the store for both generators (default: none)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "testgen.json")
    args = parser.parse_args(argv)
    engine = None
    if args.model:
        from repolsp.models.store import ModelStore
        from repolsp.server.engine.ct2 import CT2Engine

        entry = ModelStore().get(args.model)
        engine = CT2Engine(entry.ct2_dir, entry.hf_dir, model_name=args.model)
    from concurrent.futures import ThreadPoolExecutor

    settings = GenerationSettings(engine=engine, executor=ThreadPoolExecutor(max_workers=1), timeout_s=30)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                          check=False).stdout.strip()
    report: dict = {"model": args.model, "base_commit": BASE_COMMIT, "head": head, "repos": {}}
    with tempfile.TemporaryDirectory(prefix="repolsp-bench-testgen-") as tmp:
        workdir = Path(tmp)
        generators = {"new": generate_tests, "old": old_generator(workdir)}
        for label, root, functions in code_bases(workdir, args.per_repo):
            rows: dict[str, list[dict]] = {"new": [], "old": []}
            for source, name, line in functions:
                for which, generate in generators.items():
                    row = measure(generate, source, root, name, line, settings)
                    rows[which].append(row)
                    print(f"{label[:10]:10} {which} {name:28} pass={row['passed']:2} cov={row['coverage']:3}% "
                          f"{row['seconds']:5.2f}s placeholder={row['placeholder']}", file=sys.stderr)
            report["repos"][label] = {w: {"summary": summary(r), "rows": r} for w, r in rows.items()}
    for label, data in report["repos"].items():
        for which in ("new", "old"):
            print(label, which, json.dumps(data[which]["summary"]))
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
