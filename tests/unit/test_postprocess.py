"""The last completion stage: stop rules on raw generations."""

from __future__ import annotations

import pytest
from repolsp.server.context.types import CompletionMode
from repolsp.server.postprocess import (
    cut_at_block_end,
    cut_suffix_overlap,
    drop_repetition,
    postprocess,
    strip_trailing_whitespace,
)

SINGLE, MULTI, NONE = CompletionMode.SINGLE_LINE, CompletionMode.MULTI_LINE, CompletionMode.NONE


@pytest.mark.parametrize(
    "text, indent, expected",
    [
        ("x = 1\n    return x\n\ndef g():\n    pass", 0, "x = 1\n    return x\n"),
        ("x = 1\n        y = 2\n    z = 3", 4, "x = 1\n        y = 2"),
        ("a\n\n\n    b", 0, "a\n\n\n    b"),
        ("only", 0, "only"),
        ("x\ny", None, "x\ny"),
    ],
    ids=["dedent-to-def", "dedent-to-header", "blank-lines-kept", "one-line", "unknown-block"],
)
def test_cut_at_block_end(text, indent, expected):
    assert cut_at_block_end(text, indent) == expected


@pytest.mark.parametrize(
    "text, suffix, expected",
    [
        ("foo(a, b))", ")", "foo(a, b)"),
        ("foo(a, b)", ")\n", "foo(a, b"),
        ("name]", "]", "name"),
        ("x + 1", "", "x + 1"),
        ("x + 1", "  # comment", "x + 1"),
        ("a = 1\n    b = 2\n    return a + b", "\n    return a + b\n", "a = 1\n    b = 2"),
    ],
    ids=["double-paren", "closing-paren", "bracket", "no-suffix", "unrelated-suffix", "next-lines"],
)
def test_cut_suffix_overlap(text, suffix, expected):
    assert cut_suffix_overlap(text, suffix) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("x = 1\nx = 1\nx = 1\nx = 1", "x = 1\nx = 1"),
        ("items_of_items_of_items_of_items_of_items", "items_of_items_of_"),
        ("a = 1\nb = 2", "a = 1\nb = 2"),
    ],
    ids=["same-line", "pattern-in-line", "normal"],
)
def test_drop_repetition(text, expected):
    assert drop_repetition(text) == expected


def test_strip_trailing_whitespace():
    assert strip_trailing_whitespace("a  \n  b \n\n  ") == "a\n  b"


@pytest.mark.parametrize(
    "text, mode, suffix, indent, expected",
    [
        ("x + 1\nmore", SINGLE, "", None, "x + 1"),
        ("x = 1\n    return x\nprint()", MULTI, "", 0, "x = 1\n    return x"),
        ("anything", NONE, "", None, ""),
        ("   \n  ", MULTI, "", 0, ""),
    ],
    ids=["single", "multi", "none", "blank"],
)
def test_postprocess(text, mode, suffix, indent, expected):
    assert postprocess(text, mode, suffix, indent) == expected
