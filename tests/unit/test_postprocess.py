"""The last completion stage: stop rules on raw generations."""

from __future__ import annotations

import pytest
from repolsp.server.context.document import Document
from repolsp.server.context.types import CompletionMode
from repolsp.server.postprocess import (
    cut_at_block_end,
    cut_suffix_overlap,
    drop_partial_line,
    drop_repetition,
    postprocess,
    statement_window,
    strip_trailing_whitespace,
    syntax_check,
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


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a = 1\n    b = (2", "a = 1"),
        ("a = 1\n    b = 2\n", "a = 1\n    b = 2"),
        ("a = (1", "a = (1"),
    ],
    ids=["partial-last-line", "ends-at-newline", "one-line-kept"],
)
def test_drop_partial_line(text, expected):
    assert drop_partial_line(text) == expected


PY_FUNC = 'import math\n\n\ndef circle_area(radius):\n    """Area of a circle."""\n    |\n\n\ndef f():\n    pass\n'
PY_BROKEN = 'def broken(:\n    pass\n\n\ndef circle_area(radius):\n    |\n'
PY_MID = "def circle_area(radius):\n    return |\n"
JS_FUNC = "function area(r) {\n  |\n}\n"
PY_UNICODE = 'def área(r):\n    """Área — of a circle 🙂."""\n    |\n\n\ndef f():\n    pass\n'
PY_TOP = "import math\n\n|\n\ndef f():\n    pass\n"
AREA_PRINTS = ('print(f"The area is {math.pi * radius ** 2}")\n'
               '    print(f"The area is {math.pi * radius ** 3 / 4 * radius **')


@pytest.mark.parametrize(
    "source, language, raw, mode, finish, expected",
    [
        (PY_FUNC, "python", AREA_PRINTS, MULTI, "length", 'print(f"The area is {math.pi * radius ** 2}")'),
        (PY_FUNC, "python", "items = [\n        1,\n        2,\n        3", MULTI, "length", ""),
        (PY_FUNC, "python", "x = 1\n    y = (2,\n        3)\n    z = x +", MULTI, "length",
         "x = 1\n    y = (2,\n        3)"),
        (PY_FUNC, "python", 'print("area', MULTI, "length", ""),
        (PY_FUNC, "python", "return radius ** 2", SINGLE, "length", "return radius ** 2"),
        (PY_FUNC, "python", "return math.pi * (radius", SINGLE, "length", ""),
        (PY_FUNC, "python", 'print("area of', SINGLE, "length", ""),
        (PY_MID, "python", "math.pi * radius ** 2", SINGLE, "length", "math.pi * radius ** 2"),
        (PY_BROKEN, "python", "return radius * 2", SINGLE, "length", "return radius * 2"),
        (JS_FUNC, "javascript", 'console.log("area', SINGLE, "length", ""),
        (PY_FUNC, "text", "x = 1\n    y = (2", MULTI, "length", "x = 1"),
        (PY_TOP, "python", "TAU = 2 * math.", SINGLE, "length", ""),
        (PY_UNICODE, "python", "return r * 2  # 🙂 done", SINGLE, "length", "return r * 2  # 🙂 done"),
        (PY_UNICODE, "python", 'return "área', SINGLE, "length", ""),
        (PY_TOP, "python", "TAU = 2 * math.pi", SINGLE, "length", "TAU = 2 * math.pi"),
        # The model ended by itself (stop string, scope end, end of sequence): nothing is cut.
        (PY_FUNC, "python", "x = 1\n    y = (2", MULTI, "stop", "x = 1\n    y = (2"),
        (PY_FUNC, "python", 'print("area', SINGLE, "eos", 'print("area'),
        (PY_FUNC, "python", "x = 1\n    y = (2", MULTI, "", "x = 1\n    y = (2"),
    ],
    ids=["multi-unterminated-fstring", "multi-open-list", "multi-bracket-spans-kept-lines",
         "multi-one-partial-line", "single-complete", "single-open-paren", "single-open-string",
         "single-completes-the-line", "document-already-broken", "javascript-open-string",
         "no-tree-drops-partial-line", "top-level-dangling-dot", "non-ascii-complete",
         "non-ascii-open-string", "top-level-statement", "stopped-by-rule-kept",
         "end-of-sequence-kept", "unknown-reason-kept"],
)
def test_postprocess_cut_by_the_token_limit(source, language, raw, mode, finish, expected):
    offset = source.index("|")
    text = source.replace("|", "", 1)
    doc = Document("file:///cut.txt", text, language)
    suffix = text[offset:]
    assert postprocess(raw, mode, suffix, 0 if mode is MULTI else None, finish_reason=finish,
                       adds_error=syntax_check(doc, offset)) == expected


def test_a_failing_syntax_check_keeps_the_line_drop():
    def broken(_text):
        raise RuntimeError("parser gone")

    assert postprocess("x = 1\n    y = (2", MULTI, "", 0, finish_reason="length",
                       adds_error=broken) == "x = 1"


WINDOW_SOURCE = "import os\n\ndef a():\n    pass\n\ndef b():\n    pass\n\ndef c():\n    pass\n"


@pytest.mark.parametrize(
    "cursor_after, expected",
    [
        ("def b():\n    ", "def b():\n    pass\n\ndef c():\n    pass"),
        ("import os\n", "import os\n\ndef a():\n    pass"),
        ("def c():\n    ", "def c():\n    pass\n"),
    ],
    ids=["in-a-function", "between-statements", "last-statement"],
)
def test_statement_window_is_the_cursor_statement_and_the_next(cursor_after, expected):
    doc = Document("file:///w.py", WINDOW_SOURCE, "python")
    start, end = statement_window(doc, WINDOW_SOURCE.index(cursor_after) + len(cursor_after))
    assert WINDOW_SOURCE.encode()[start:end].decode() == expected
