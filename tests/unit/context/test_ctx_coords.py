"""Coordinate conversions: LSP positions (utf-8/16/32) <-> str offsets <-> bytes <-> points."""

import pytest
from repolsp.server.context import coords

# text, (line, character) per encoding, expected str offset
POSITION_CASES = [
    ("ascii", "abc\ndef\n", "utf-16", (1, 2), 6),
    ("ascii-past-line-end-clamps", "abc\ndef\n", "utf-16", (0, 99), 3),
    ("line-past-end-is-text-end", "abc\ndef", "utf-16", (5, 0), 7),
    ("last-empty-line", "abc\n", "utf-16", (1, 0), 4),
    ("latin1-utf16", "héllo", "utf-16", (0, 2), 2),
    ("latin1-utf8", "héllo", "utf-8", (0, 3), 2),
    ("latin1-utf32", "héllo", "utf-32", (0, 2), 2),
    ("emoji-utf16-after", "a😀b", "utf-16", (0, 3), 2),
    ("emoji-utf16-inside-pair-rounds-down", "a😀b", "utf-16", (0, 2), 1),
    ("emoji-utf8-after", "a😀b", "utf-8", (0, 5), 2),
    ("emoji-utf8-inside-rounds-down", "a😀b", "utf-8", (0, 3), 1),
    ("emoji-utf32-after", "a😀b", "utf-32", (0, 2), 2),
    ("crlf-second-line", "ab\r\ncd\r\n", "utf-16", (1, 1), 5),
    ("crlf-clamps-before-break", "ab\r\ncd\r\n", "utf-16", (0, 5), 2),
    ("lone-cr-is-a-line-break", "ab\rcd", "utf-16", (1, 1), 4),
    ("cjk-utf8", "x = '日本'\ny", "utf-8", (0, 8), 6),
]


@pytest.mark.parametrize("text,encoding,position,offset", [c[1:] for c in POSITION_CASES],
                         ids=[c[0] for c in POSITION_CASES])
def test_position_to_offset(text, encoding, position, offset):
    assert coords.lsp_position_to_offset(text, *position, encoding=encoding) == offset


ROUND_TRIP_TEXTS = {
    "ascii": "def f(x):\n    return x\n",
    "unicode": "s = 'héllo wörld'\nπ = 3.14\n",
    "emoji": "print('😀👍🏽')\n# 🎉 done\n",
    "crlf-emoji": "a = '😀'\r\nb = 2\r\n",
    "cjk-no-final-newline": "名前 = '太郎'\nx",
}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
@pytest.mark.parametrize("text", list(ROUND_TRIP_TEXTS.values()), ids=list(ROUND_TRIP_TEXTS))
def test_every_offset_round_trips(text, encoding):
    index = coords.LineIndex(text)
    for offset in range(len(text) + 1):
        if 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n":
            continue  # between \r and \n is not a position LSP can name
        line, character = index.position_at(offset, encoding)
        assert index.offset_at(line, character, encoding) == offset, (offset, line, character)


@pytest.mark.parametrize("text", list(ROUND_TRIP_TEXTS.values()), ids=list(ROUND_TRIP_TEXTS))
def test_utf16_units_match_python_encoder(text):
    index = coords.LineIndex(text)
    for offset in range(len(text) + 1):
        line, character = index.position_at(offset, "utf-16")
        start = index.line_starts[line]
        expected = len(text[start:min(offset, index.line_bounds(line)[1])].encode("utf-16-le")) // 2
        assert character == expected


@pytest.mark.parametrize("text", list(ROUND_TRIP_TEXTS.values()), ids=list(ROUND_TRIP_TEXTS))
def test_bytes_and_points_round_trip(text):
    data = coords.encode_text(text)
    for offset in range(len(text) + 1):
        byte = coords.offset_to_byte(text, offset)
        assert byte == len(text[:offset].encode("utf-8"))
        assert coords.byte_to_offset(data, byte) == offset
        point = coords.offset_to_point(text, offset)
        assert point == coords.byte_to_point(data, byte)
        assert coords.point_to_byte(data, point) == byte


def test_lone_surrogate_does_not_crash():
    text = "a\ud800b"
    data = coords.encode_text(text)
    assert coords.byte_to_offset(data, coords.offset_to_byte(text, 2)) == 2


@pytest.mark.parametrize("value,expected", [(None, "utf-16"), ("utf-8", "utf-8"), ("UTF-32", "utf-32"),
                                            ("utf-16", "utf-16"), ("bogus", "utf-16")],
                         ids=["none", "utf8", "utf32-upper", "utf16", "unknown"])
def test_normalize_encoding(value, expected):
    assert coords.normalize_encoding(value) == expected


@pytest.mark.parametrize("whitespace,width", [("", 0), ("    ", 4), ("\t", 4), ("  \t", 4), ("\t  ", 6)],
                         ids=["none", "spaces", "tab", "spaces-tab", "tab-spaces"])
def test_indent_width(whitespace, width):
    assert coords.indent_width(whitespace) == width
