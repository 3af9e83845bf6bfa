"""Characterization tests from observed behaviour: which calls to keep, and their test code.

Values whose ``repr`` round-trips become ``==`` assertions (``pytest.approx`` when floats are in
them), the function's own exceptions ``pytest.raises``, an exception on an input the repository
itself uses an ``xfail`` (a likely bug), and simple type hints a Hypothesis property test.
Several value cases of one shape become one ``pytest.mark.parametrize`` test.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from repolsp.server.testgen.arguments import Candidate
from repolsp.server.testgen.python_target import PyTarget, call_expression

MAX_VALUE_CASES = 6
_STRATEGIES = {"int": "st.integers()", "float": "st.floats(allow_nan=False, allow_infinity=False)",
               "str": "st.text()", "bool": "st.booleans()", "bytes": "st.binary()"}
_RESULT_TYPES = {"int": "int", "float": "(int, float)", "str": "str", "bool": "bool", "bytes": "bytes",
                 "list": "list", "dict": "dict", "tuple": "tuple", "set": "set"}


@dataclass
class TestBlock:
    """One test function's code, the names its body needs and what kind of test it is."""

    name: str
    text: str
    kind: str  # value | raises | xfail | property
    cases: list[int] = field(default_factory=list)  # call indices, in parametrize order
    needs_pytest: bool = False
    needs_hypothesis: bool = False
    expressions: list[str] = field(default_factory=list)  # code whose module names are imported


@dataclass
class Case:
    call: Candidate
    index: int
    outcome: dict
    expected: str  # the expected-value text
    form: str  # approx | eq | is


def snake(name: str) -> str:
    """``BankAccount`` -> ``bank_account``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def value_case(call: Candidate, index: int, outcome: dict) -> Case | None:
    """How one observed value is asserted, or None when it cannot be (not repeatable, no repr)."""
    if outcome.get("kind") != "value" or not outcome.get("deterministic"):
        return None
    text = outcome["repr"]
    if call.expected is not None and outcome.get("check_holds"):
        text = call.expected  # the model's own expected value, checked to hold
    if outcome.get("is_none") or outcome.get("is_bool"):
        return Case(call, index, outcome, text, "is")
    if outcome.get("approx"):
        return Case(call, index, outcome, text, "approx")
    if outcome.get("round_trips"):
        return Case(call, index, outcome, text, "eq")
    if (outcome.get("type_in_module") or outcome.get("type_module") == "builtins") and (
            outcome.get("attrs") or outcome.get("str") or outcome.get("str_items")):
        return Case(call, index, outcome, outcome["type"], "object")  # isinstance + attributes
    return None


def _object_lines(case: Case) -> list[str]:
    """Checks on a result whose repr does not round-trip: its type, str and plain attributes."""
    lines = [f"    assert isinstance(result, {case.outcome['type']})"]
    if case.outcome.get("str_items"):
        lines.append(f"    assert [str(item) for item in result] == {case.outcome['str_items']!r}")
    elif case.outcome.get("str") is not None:
        lines.append(f"    assert str(result) == {case.outcome['str']!r}")
    for name, attr in list((case.outcome.get("attrs") or {}).items())[:4]:
        compare = f"== pytest.approx({attr['repr']})" if attr.get("approx") else f"== {attr['repr']}"
        lines.append(f"    assert result.{name} {compare}")
    return lines


def select_cases(calls: list[Candidate], outcomes: dict[int, dict]) -> list[Case]:
    """Value cases that each add covered lines or a different result, best sources first."""
    chosen: list[Case] = []
    lines: set[int] = set()
    results: set[str] = set()
    for index, call in enumerate(calls):
        outcome = outcomes.get(index)
        case = value_case(call, index, outcome) if outcome else None
        if case is None:
            continue
        new_lines = set(outcome.get("lines", [])) - lines
        trusted = call.source in ("doctest", "call site", "model")
        if new_lines or (outcome["repr"] not in results and (trusted or len(chosen) < 3)):
            chosen.append(case)
            lines |= new_lines
            results.add(outcome["repr"])
        if len(chosen) >= MAX_VALUE_CASES:
            break
    return chosen


def _mapping(target: PyTarget, args: str) -> dict[str, str] | None:
    """Parameter name -> argument text for a call's arguments; None when it cannot be mapped."""
    try:
        call = ast.parse(f"f({args})", mode="eval").body
    except SyntaxError:
        return None
    params = target.params
    positional = [p.name for p in params if p.kind == "positional"]
    if len(call.args) > len(positional) or any(k.arg is None for k in call.keywords):
        return None
    found = {name: ast.unparse(a) for name, a in zip(positional, call.args)}
    for keyword in call.keywords:
        found[keyword.arg] = ast.unparse(keyword.value)
    return found


def _compare(form: str, expected: str) -> str:
    if form == "approx":
        return f"== pytest.approx({expected})"
    return f"is {expected}" if form == "is" else f"== {expected}"


def _receiver_lines(target: PyTarget, receiver: str | None) -> tuple[list[str], str]:
    if receiver is None or target.style not in ("method", "property"):
        return [], "{receiver}"
    variable = snake(target.owner or "obj")
    return [f"    {variable} = {receiver}"], variable


def value_tests(target: PyTarget, cases: list[Case], receiver: str | None, base: str) -> list[TestBlock]:
    """One parametrized test for the cases that share a shape, plain tests for the rest."""
    setup, variable = _receiver_lines(target, receiver)
    groups: dict[tuple, list[Case]] = {}
    for case in cases:
        if case.call.extra.get("receiver"):
            groups[("own receiver", case.index)] = [case]
            continue
        mapping = _mapping(target, case.call.args) if target.style != "property" else None
        numeric = case.form == "approx" or case.outcome.get("type") == "int"
        key = (numeric, tuple(mapping) if mapping is not None else ("#", case.index))
        if case.form in ("is", "object"):
            key = (case.form, case.index)  # `is True`, isinstance checks: no parametrize
        groups.setdefault(key, []).append(case)
    blocks = []
    for number, group in enumerate(groups.values()):
        name = base if number == 0 else f"{base}_{number + 1}"
        mapping = _mapping(target, group[0].call.args) if target.style != "property" else None
        if len(group) >= 2 and mapping:
            blocks.append(_parametrized(target, group, name, setup, variable, list(mapping)))
            continue
        case = group[0]
        own = case.call.extra.get("receiver")
        case_setup, case_variable = _receiver_lines(target, own or receiver)
        call = call_expression(target, case.call.args, case_variable)
        if case.form == "object":
            checks = _object_lines(case)
            body = [*case_setup, f"    result = {call}", *checks]
        else:
            body = [*case_setup, f"    assert {call} {_compare(case.form, case.expected)}"]
        text = f"def {name}():\n" + "\n".join(body)
        blocks.append(TestBlock(name, text, "value", [case.index], needs_pytest="pytest.approx" in text,
                                expressions=[case.call.args, case.expected, own or receiver or "", *body]))
    return blocks


def _parametrized(target: PyTarget, group: list[Case], name: str, setup: list[str], variable: str,
                  columns: list[str]) -> TestBlock:
    result_column = "expected" if "expected" not in columns else "expected_result"
    names = ", ".join(f'"{c}"' for c in [*columns, result_column])
    rows = []
    for case in group:
        mapping = _mapping(target, case.call.args) or {}
        rows.append(f"        ({', '.join([*(mapping[c] for c in columns), case.expected])}),")
    from repolsp.server.testgen.arguments import render_args

    params = [p for p in target.params if p.name in columns]
    call = call_expression(target, render_args(params, {c: c for c in columns}), variable)
    compare = _compare("approx" if any(c.form == "approx" for c in group) else "eq", result_column)
    text = "\n".join([
        f"@pytest.mark.parametrize(\n    ({names}),\n    [", *rows, "    ],\n)",
        f"def {name}({', '.join([*columns, result_column])}):", *setup, f"    assert {call} {compare}"])
    receiver = setup[0].split(" = ", 1)[1] if setup else ""
    return TestBlock(name, text, "value", [c.index for c in group], needs_pytest=True,
                     expressions=[*(c.call.args for c in group), *(c.expected for c in group), receiver])


def raises_tests(target: PyTarget, calls: list[Candidate], outcomes: dict[int, dict], receiver: str | None,
                 base: str) -> list[TestBlock]:
    """``pytest.raises`` for the exceptions the function raises itself; ``xfail`` for an
    exception on an input the repository itself uses (doctest, call site, the model's)."""
    setup, variable = _receiver_lines(target, receiver)
    blocks: list[TestBlock] = []
    seen: set[str] = set()
    for index, call in enumerate(calls):
        outcome = outcomes.get(index) or {}
        kind = outcome.get("type")
        if outcome.get("kind") != "raised" or kind in seen or not (outcome.get("builtin") or outcome.get("type_in_module")):
            continue
        own = call.extra.get("receiver")
        setup, variable = _receiver_lines(target, own or receiver)
        expression = call_expression(target, call.args, variable)
        # Its own `raise`, or an exception class of the project (InvalidVersion): deliberate.
        if kind in target.raised or (outcome.get("type_in_module") and not outcome.get("builtin")):
            seen.add(kind)
            name = f"{base}_raises_{snake(kind)}"
            text = f"def {name}():\n" + "\n".join([*setup, f"    with pytest.raises({kind}):", f"        {expression}"])
            blocks.append(TestBlock(name, text, "raises", [index], needs_pytest=True,
                                    expressions=[call.args, kind, own or receiver or ""]))
        elif call.source in ("doctest", "call site", "model") and kind not in ("TypeError",):
            seen.add(kind)
            name = f"{base}_{snake(kind)}_on_a_{call.source.replace(' ', '_')}_input"
            reason = f"likely bug: {kind} on an input from a {call.source}: {outcome.get('message', '')}"
            text = (f"@pytest.mark.xfail(reason={reason[:120]!r}, raises={kind}, strict=True)\n"
                    f"def {name}():\n" + "\n".join([*setup, f"    {expression}"]))
            blocks.append(TestBlock(name, text, "xfail", [index], needs_pytest=True,
                                    expressions=[call.args, kind, own or receiver or ""]))
    return blocks


def _strategy(annotation: str | None) -> str | None:
    text = (annotation or "").replace(" ", "")
    if text in _STRATEGIES:
        return _STRATEGIES[text]
    inner = re.fullmatch(r"(?:list|List)\[(\w+)\]", text)
    if inner and inner.group(1) in _STRATEGIES:
        return f"st.lists({_STRATEGIES[inner.group(1)]})"
    return None


def property_test(target: PyTarget, outcomes: dict[int, dict], receiver: str | None, base: str) -> TestBlock | None:
    """A Hypothesis test over the hinted parameters that the result keeps its type, when every
    required parameter has a simple hint and the result type is known (hint or observed)."""
    params = [p for p in target.params if p.kind in ("positional", "keyword") and p.default is None]
    if any(p.kind in ("varargs", "varkw") for p in target.params) or target.style == "property":
        return None
    strategies = {p.name: _strategy(p.annotation) for p in params}
    if not params or None in strategies.values():
        return None
    returns = ast.unparse(target.func.returns).replace(" ", "") if target.func.returns else None
    observed = {o["type"] for o in outcomes.values() if o.get("kind") == "value" and o.get("type_module") == "builtins"}
    kind = _RESULT_TYPES.get(returns or (observed.pop() if len(observed) == 1 else ""))
    if kind is None or target.is_generator:
        return None
    setup, variable = _receiver_lines(target, receiver)
    from repolsp.server.testgen.arguments import render_args

    call = call_expression(target, render_args(target.params, {p.name: p.name for p in params}), variable)
    given = ", ".join(f"{name}={strategy}" for name, strategy in strategies.items())
    name = f"{base}_returns_{'a_number' if kind == '(int, float)' else kind}"
    text = (f"@given({given})\n@settings(max_examples=25, deadline=None)\n"
            f"def {name}({', '.join(strategies)}):\n" + "\n".join([*setup, f"    assert isinstance({call}, {kind})"]))
    return TestBlock(name, text, "property", needs_hypothesis=True, expressions=[receiver or ""])
