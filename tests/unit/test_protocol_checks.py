"""The protocol layer's pure checks: which raw messages are requests, notifications or responses."""

from __future__ import annotations

import pytest
from repolsp.server.protocol import (
    INVALID_REQUEST,
    ClientMistake,
    classify,
    describe_structure_error,
    request_id,
    short,
)

CASES = [
    ("request", {"jsonrpc": "2.0", "id": 1, "method": "x"}, "request"),
    ("string id", {"jsonrpc": "2.0", "id": "a", "method": "x", "params": []}, "request"),
    ("notification", {"jsonrpc": "2.0", "method": "x", "params": {}}, "notification"),
    ("response", {"jsonrpc": "2.0", "id": 3, "result": None}, "response"),
    ("error response", {"jsonrpc": "2.0", "id": None, "error": {"code": 1}}, "response"),
    ("array", [], INVALID_REQUEST),
    ("number", 5, INVALID_REQUEST),
    ("no jsonrpc", {"id": 1, "method": "x"}, INVALID_REQUEST),
    ("jsonrpc 1.0", {"jsonrpc": "1.0", "id": 1, "method": "x"}, INVALID_REQUEST),
    ("method not a string", {"jsonrpc": "2.0", "id": 1, "method": 5}, INVALID_REQUEST),
    ("float id", {"jsonrpc": "2.0", "id": 1.5, "method": "x"}, INVALID_REQUEST),
    ("bool id", {"jsonrpc": "2.0", "id": True, "method": "x"}, INVALID_REQUEST),
    ("null id", {"jsonrpc": "2.0", "id": None, "method": "x"}, INVALID_REQUEST),
    ("neither", {"jsonrpc": "2.0", "id": 1}, INVALID_REQUEST),
]


@pytest.mark.parametrize("message, expected", [(m, e) for _, m, e in CASES], ids=[c[0] for c in CASES])
def test_classify(message, expected):
    if isinstance(expected, str):
        assert classify(message) == expected
    else:
        with pytest.raises(ClientMistake) as caught:
            classify(message)
        assert caught.value.code == expected


@pytest.mark.parametrize("value, expected", [(1, 1), ("a", "a"), (True, None), (1.0, None), ([1], None)],
                         ids=["int", "str", "bool", "float", "list"])
def test_request_id(value, expected):
    assert request_id({"id": value}) == expected


def test_structure_errors_name_the_wire_field():
    from lsprotocol import types
    from pygls.protocol import default_converter

    with pytest.raises(Exception) as caught:
        default_converter().structure({"textDocument": {"uri": "u"}, "position": {"line": "x", "character": 0},
                                       "context": {"triggerKind": 1}}, types.InlineCompletionParams)
    assert "$.position.line" in describe_structure_error(caught.value)


def test_short_is_one_bounded_line_even_with_lone_surrogates():
    text = short("a\nb\ud800" + "x" * 1000)
    assert "\n" not in text and len(text) <= 301 and text.encode("utf-8")
