"""Python tests that run and pass: find calls, run them in the sandbox, turn what they did into
assertions, run the whole file with pytest (coverage on), keep only what passed.

Blocking (sandbox subprocesses): call `run_python_flow` off the event loop.
"""

from __future__ import annotations

import ast
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from repolsp.server.testgen.arguments import BUILD, Candidate
from repolsp.server.testgen.assertions import (
    TestBlock,
    property_test,
    raises_tests,
    select_cases,
    value_case,
    value_tests,
)
from repolsp.server.testgen.edits import GeneratedTest, python_file_edit
from repolsp.server.testgen.python_target import (
    PyTarget,
    call_expression,
    candidate_calls,
    constructors,
    import_lines,
    locate,
    names_used,
)
from repolsp.server.testgen.sandbox import SandboxLimits, run_in_sandbox

log = logging.getLogger(__name__)


@dataclass
class FlowOutcome:
    """Passing tests and the message for the user, or no tests and the one-line reason."""

    code: GeneratedTest | None
    message: str
    target_imports: list[str] = field(default_factory=list)
    passed: int = 0
    coverage_pct: int | None = None
    seconds: float = 0.0


@dataclass
class FlowInput:
    """What the flow needs from the editor and the workspace."""

    source: str  # the module's text as the editor has it
    path: Path  # its real path
    module: str  # its dotted import name
    root: Path
    name: str  # the function under test
    line: int  # a 1-based line inside its definition
    base: str  # the test name to start from (unique in the test file)
    other_texts: list[str] = field(default_factory=list)  # files that may call it
    model_raw: str | None = None


def import_roots(path: Path, module: str, root: Path) -> list[str]:
    """Folders that make ``module`` importable by its dotted name, then the project root."""
    parts = module.split(".")
    depth = len(parts) if path.stem == "__init__" else len(parts) - 1
    roots = []
    if depth < len(path.parents):
        base = path.parents[depth]
        tail = path.parent.relative_to(base).parts if depth else ()
        if list(tail) == parts[:len(tail)]:
            roots.append(str(base))
    roots.append(str(root))
    return list(dict.fromkeys(roots))


def statement_lines(target: PyTarget) -> list[tuple[int, int]]:
    """(first, last) line ranges of the function's statements (its docstring excluded)."""
    body = target.func.body
    skip = body[0] if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
        and isinstance(body[0].value.value, str) else None
    found = []
    for node in ast.walk(target.func):
        if isinstance(node, ast.stmt) and node is not target.func and node is not skip:
            inner = getattr(node, "body", None)
            last = inner[0].lineno - 1 if isinstance(inner, list) and inner else node.end_lineno
            found.append((node.lineno, max(node.lineno, last)))
    return found


def coverage_percent(target: PyTarget, executed: set[int]) -> int:
    """Share of the function's statements that ran (a statement counts when one of its lines ran)."""
    statements = statement_lines(target)
    if not statements:
        return 100
    hit = sum(1 for first, last in statements if any(line in executed for line in range(first, last + 1)))
    return round(100 * hit / len(statements))


def _why_nothing(outcomes: list[dict], name: str) -> str:
    kinds = [o.get("kind") for o in outcomes]
    if not outcomes:
        return f"no call of {name} could be built"
    blocked = [o["what"] for o in outcomes if o.get("kind") == "blocked"]
    if blocked:
        return f"{name} could not run in the sandbox: it {blocked[0]}"
    if "timeout" in kinds and "value" not in kinds:
        return f"{name} did not return within the time limit for any input tried"
    raised = [o for o in outcomes if o.get("kind") == "raised"]
    if raised:
        first = raised[0]
        message = (first.get("message") or "").splitlines()
        return f"every call of {name} raised ({first['type']}: {message[0][:80] if message else ''})"
    return f"no result of {name} could be asserted (not repeatable, or no repr to compare)"


def run_python_flow(flow: FlowInput, cancel: threading.Event, progress: Callable[[str], None] | None = None,
                    limits: SandboxLimits | None = None) -> FlowOutcome:
    """The passing tests for one function, or the reason there are none."""
    report = progress or (lambda message: None)
    limits = limits or SandboxLimits()
    try:
        tree = ast.parse(flow.source)
    except SyntaxError as exc:
        return FlowOutcome(None, f"the module has a syntax error at line {exc.lineno} ({exc.msg}): nothing was run")
    target = locate(tree, flow.name, flow.line)
    if target is None:
        return FlowOutcome(None, f"{flow.name} is not a top-level function or method")
    calls = candidate_calls(target, flow.source, flow.other_texts, flow.model_raw)
    receivers = constructors(target, flow.source, flow.other_texts)
    if receivers and not [p for p in target.params if p.kind in ("positional", "keyword")]:
        # Nothing to vary but the object: each way of building it is a call of its own.
        calls = [Candidate("", "variation", extra={"receiver": r}) for r in receivers]
        receivers = []
    job = _job(flow, target, calls, receivers)
    report(f"running {len(calls)} calls of {flow.name} in the sandbox")
    probe = run_in_sandbox(job, limits, cancel)
    if cancel.is_set():
        return FlowOutcome(None, "cancelled")
    result = probe.result or {"imported": True, "receiver": None, "calls": probe.partial}
    if not result.get("imported"):
        return FlowOutcome(None, f"importing {flow.module} failed: {result.get('reason', '')}"[:240])
    if probe.result is None and not probe.partial:
        return FlowOutcome(None, f"{flow.name} could not run: {probe.reason}")
    receiver = result.get("receiver")
    if receivers and receiver is None:
        return FlowOutcome(None, f"no way to construct {target.owner} was found (tried {receivers[0]})")
    outcomes = {o["index"]: o for o in result.get("calls", [])}
    for index, outcome in outcomes.items():
        if "args" in outcome:  # objects the sandbox built for class-typed parameters
            calls[index].args = outcome["args"]
        if BUILD in calls[index].args:  # an object it could not build: nothing to rebuild in a test
            outcomes[index] = {"kind": "unbuilt", "index": index, "lines": []}
    if any(o.get("iterator") for o in outcomes.values()):
        target.is_generator = True  # it returns an iterator: the tests compare list(f(...))
    blocks = _blocks(target, calls, outcomes, receiver, flow.base)
    if not any(b.kind in ("value", "raises") for b in blocks):
        return FlowOutcome(None, _why_nothing(list(outcomes.values()), flow.name))
    report(f"running the {len(blocks)} new tests with pytest")
    return _verify(flow, target, (calls, outcomes, receiver), blocks, cancel, limits)


def _job(flow: FlowInput, target: PyTarget, calls: list[Candidate], receivers: list[str]) -> dict:
    entries = []
    for call in calls:
        own = call.extra.get("receiver")
        expression = call_expression(target, call.args, f"({own})" if own else "{receiver}")
        entry = {"expression": expression, "args": call.args}
        if call.expected is not None:
            entry["check"] = f"({expression}) == ({call.expected})"
        entries.append(entry)
    return {"kind": "probe", "module": flow.module, "path": str(flow.path), "source": flow.source,
            "sys_path": import_roots(flow.path, flow.module, flow.root), "lines": [target.first_line, target.last_line],
            "calls": entries, "constructors": receivers, "per_call_s": 1.0, "budget_s": 6.0,
            "needs_asyncio": target.is_async}


def _blocks(target: PyTarget, calls: list[Candidate], outcomes: dict[int, dict], receiver: str | None,
            base: str) -> list[TestBlock]:
    cases = select_cases(calls, outcomes)
    blocks = value_tests(target, cases, receiver, base) if cases else []
    blocks += raises_tests(target, calls, outcomes, receiver, base)
    prop = property_test(target, outcomes, receiver, base) if cases else None
    return blocks + ([prop] if prop else [])


def render(flow: FlowInput, target: PyTarget, blocks: list[TestBlock]) -> tuple[GeneratedTest, list[str]]:
    """(the test code with its helper imports, the imports of the module's names)."""
    imports = []
    if target.is_async:
        imports.append("import asyncio")
    if any(b.needs_pytest for b in blocks):
        imports.append("import pytest")
    if any(b.needs_hypothesis for b in blocks):
        imports += ["from hypothesis import given", "from hypothesis import settings",
                    "from hypothesis import strategies as st"]
    names = names_used([e for b in blocks for e in b.expressions], target) | {target.owner or target.name}
    code = GeneratedTest(blocks[0].name, "\n\n\n".join(b.text for b in blocks), imports,
                         from_model=flow.model_raw is not None)
    return code, import_lines(names, target, flow.module)


def _pytest_job(flow: FlowInput, target: PyTarget, blocks: list[TestBlock]) -> tuple[dict, GeneratedTest, list[str]]:
    code, target_imports = render(flow, target, blocks)
    _, (insertion,) = python_file_edit(None, flow.module, code, target_imports)
    job = {"kind": "pytest", "module": flow.module, "path": str(flow.path), "source": flow.source,
           "sys_path": import_roots(flow.path, flow.module, flow.root), "test_text": insertion.new_text,
           "test_file": f"test_{flow.name}_generated.py"}
    return job, code, target_imports


def _verify(flow: FlowInput, target: PyTarget, observed: tuple[list[Candidate], dict[int, dict], str | None],
            blocks: list[TestBlock], cancel: threading.Event, limits: SandboxLimits) -> FlowOutcome:
    """Run the file; drop failing tests (and failing parametrize cases) and run it again."""
    dropped = 0
    for _attempt in range(3):
        job, code, target_imports = _pytest_job(flow, target, blocks)
        run = run_in_sandbox(job, limits, cancel)
        if cancel.is_set():
            return FlowOutcome(None, "cancelled")
        if run.result is None:
            return FlowOutcome(None, f"running the generated tests failed: {run.reason}")
        tests = run.result["tests"]
        failed = [t for t in tests if t["outcome"] not in ("passed", "xfailed")]
        if not failed and tests:
            passed = sum(1 for t in tests if t["outcome"] == "passed")
            xfails = sum(1 for t in tests if t["outcome"] == "xfailed")
            percent = coverage_percent(target, set(run.result["lines"]))
            message = f"{passed} {'tests pass' if passed != 1 else 'test passes'}, {percent}% of {flow.name} covered"
            if xfails:
                message += f"; {xfails} marked xfail (likely bug{'s' if xfails > 1 else ''})"
            if dropped:
                message += f"; {dropped} failing test{'s' if dropped > 1 else ''} dropped"
            return FlowOutcome(code, message, target_imports, passed, percent)
        kept, removed = _without_failures(target, blocks, failed, observed)
        dropped += removed
        if not kept or not removed:
            reason = failed[0]["message"].splitlines()[0] if failed and failed[0]["message"] else "no test was collected"
            return FlowOutcome(None, f"none of the generated tests passed ({reason[:160]})")
        blocks = kept
    return FlowOutcome(None, "the generated tests did not settle after dropping the failing ones")


def _without_failures(target: PyTarget, blocks: list[TestBlock], failed: list[dict],
                      observed: tuple[list[Candidate], dict[int, dict], str | None]) -> tuple[list[TestBlock], int]:
    """The blocks minus failing tests; a parametrized test loses only its failing cases."""
    calls, outcomes, receiver = observed
    kept: list[TestBlock] = []
    removed = 0
    for block in blocks:
        failures = [t for t in failed if t["function"] == block.name]
        if not failures:
            kept.append(block)
            continue
        bad = {block.cases[next(iter(t["index"].values()))] for t in failures if t.get("index")}
        if block.kind == "value" and bad and len(bad) < len(block.cases):
            cases = [value_case(calls[i], i, outcomes[i]) for i in block.cases if i not in bad]
            kept += value_tests(target, [c for c in cases if c], receiver, block.name)
            removed += len(bad)
        else:
            removed += max(1, len(failures))
    return kept, removed
