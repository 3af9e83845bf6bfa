"""Where the calls of generated tests come from, and how observed results become assertions."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest
from repolsp.server.context.document import Document, path_to_uri
from repolsp.server.docgen import GenerationSettings
from repolsp.server.testgen import generate_tests
from repolsp.server.testgen.arguments import (
    Candidate,
    call_arguments,
    doctest_arguments,
    hint_values,
)
from repolsp.server.testgen.assertions import value_case
from repolsp.server.testgen.python_flow import coverage_percent, import_roots
from repolsp.server.testgen.python_target import call_expression, candidate_calls, locate

HINTS = [
    ("int", "int", "3"), ("optional", "Optional[float]", "0.5"), ("optional is last None", "int | None", "3"),
    ("list of str", "list[str]", "['abc', '', 'a']"), ("dict", "dict[str, int]", "{'abc': 3}"),
    ("tuple", "tuple[int, str]", "(3, 'abc')"), ("literal", "Literal['fast', 'slow']", "'fast'"),
    ("a class is built in the sandbox", "Tokenizer", "__repolsp_build__('Tokenizer')"),
    ("typing names are not classes", "Callable", None),
]


@pytest.mark.parametrize("annotation, first", [c[1:] for c in HINTS], ids=[c[0] for c in HINTS])
def test_hint_values(annotation, first):
    values = hint_values(annotation)
    assert (values[0] if values else None) == first
    if annotation.startswith(("Optional", "int |")):
        assert values[-1] == "None"


CALLS = [
    ("literals", "x = scale(2, 3)\n", {"scale"}, ["2, 3"]),
    ("keywords", "scale(2, factor=3.5)\n", set(), ["2, factor=3.5"]),
    ("a module constant", "scale(LIMIT, 1)\n", {"LIMIT"}, ["LIMIT, 1"]),
    ("a local variable cannot be rebuilt", "scale(n, 1)\n", set(), []),
    ("a method call", "obj.scale([1, 2], 'a)b')\n", set(), ["[1, 2], 'a)b'"]),
    ("not another name", "rescale(1, 2)\n", set(), []),
]


@pytest.mark.parametrize("text, allowed, expected", [c[1:] for c in CALLS], ids=[c[0] for c in CALLS])
def test_call_arguments(text, allowed, expected):
    assert call_arguments(text, "scale", allowed | {"len"}) == expected


def test_doctest_arguments():
    doc = "Scale.\n\n    >>> scale(2, 3)\n    6\n    >>> print(scale(-1, 0))\n    0\n"
    assert doctest_arguments(doc, "scale", set()) == ["2, 3", "-1, 0"]


SOURCE = '''LIMIT = 10


def clip(value, low=0, *, high: int = LIMIT):
    """Clip.

    >>> clip(12)
    10
    """
    if value < low:
        return low
    if value > high:
        return high
    return value
'''


def test_candidates_come_from_doctests_call_sites_and_compared_literals():
    tree = ast.parse(SOURCE)
    target = locate(tree, "clip", 4)
    assert [p.kind for p in target.params] == ["positional", "positional", "keyword"]
    calls = candidate_calls(target, SOURCE, ["clip(-5, low=-1)\n"], None)
    assert [c.source for c in calls[:2]] == ["doctest", "call site"]
    assert [c.args for c in calls[:2]] == ["12", "-5, low=-1"]
    # Then variations: an untyped value from the generic pool, the hinted keyword by name.
    assert calls[2].args == "0.5" and "0.5, high=3" in [c.args for c in calls]
    assert call_expression(target, "1") == "clip(1)"


@pytest.mark.parametrize("outcome, form, expected", [
    ({"kind": "value", "deterministic": True, "repr": "(0.5, 0.25)", "approx": True}, "approx", "(0.5, 0.25)"),
    ({"kind": "value", "deterministic": True, "repr": "'abc'", "round_trips": True}, "eq", "'abc'"),
    ({"kind": "value", "deterministic": True, "repr": "None", "is_none": True}, "is", "None"),
    ({"kind": "value", "deterministic": False, "repr": "0.1", "approx": True}, None, None),
    ({"kind": "value", "deterministic": True, "repr": "<T at 0x1>", "type": "T", "type_in_module": True,
      "str": "t"}, "object", "T"),
    ({"kind": "value", "deterministic": True, "repr": "<T at 0x1>", "type": "T"}, None, None),
], ids=["floats: approx", "round-trips: ==", "None: is", "differs on a second call", "object: isinstance + str",
        "nothing to compare"])
def test_value_case_forms(outcome, form, expected):
    case = value_case(Candidate("1", "variation"), 0, outcome)
    assert (case.form, case.expected) == (form, expected) if form else case is None


def test_coverage_counts_statements_not_lines():
    tree = ast.parse(SOURCE)
    target = locate(tree, "clip", 4)
    assert coverage_percent(target, {10, 11}) == 40  # 2 of 5 statements (docstring excluded)
    assert coverage_percent(target, set(range(1, 15))) == 100


def test_import_roots(tmp_path):
    assert import_roots(tmp_path / "src" / "calc" / "ops.py", "calc.ops", tmp_path) == [str(tmp_path / "src"), str(tmp_path)]
    assert import_roots(tmp_path / "server" / "x.py", "acme.server.x", tmp_path) == [str(tmp_path)]


def _generate(root: Path, files: dict[str, str], rel: str, name: str):
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text, encoding="utf-8")
    text = files[rel]
    doc = Document(path_to_uri(root / rel), text, "python")
    return asyncio.run(generate_tests(doc, text.index(f"def {name}(") + 5, root, GenerationSettings(engine=None)))


def test_an_exception_on_an_input_the_repository_uses_is_an_xfail(tmp_path):
    files = {"stats.py": "def mean(values):\n    return sum(values) / len(values)\n",
             "report.py": "from stats import mean\n\nEMPTY = mean([])\nFULL = mean([1, 2])\n"}
    edit = _generate(tmp_path, files, "stats.py", "mean")
    assert "@pytest.mark.xfail(reason='likely bug: ZeroDivisionError on an input from a call site: division by zero', " \
           "raises=ZeroDivisionError, strict=True)\ndef test_mean_zero_division_error_on_a_call_site_input():\n" \
           "    mean([])\n" in edit.new_text
    assert edit.message.endswith("; 1 marked xfail (likely bug)")


def test_doctest_calls_come_first(tmp_path):
    edit = _generate(tmp_path, {"clip.py": SOURCE}, "clip.py", "clip")
    assert "        (12, 10),\n" in edit.new_text and edit.message.endswith("100% of clip covered")
