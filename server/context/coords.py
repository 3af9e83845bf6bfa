"""All coordinate conversions between LSP positions, Python string offsets, UTF-8 byte offsets
and tree-sitter points.

Units used throughout (every name says which one it takes):

- *offset*: 0-based index into the Python ``str`` (one unit per code point).
- *byte offset*: 0-based index into the UTF-8 encoding of the text (what tree-sitter uses).
  Lone surrogates (which JSON can carry) are encoded with ``surrogatepass`` so every string
  has a byte form and conversions never raise.
- *LSP position*: ``(line, character)``, both 0-based; ``character`` is counted in the
  negotiated ``PositionEncodingKind``: ``"utf-16"`` code units (the LSP default), ``"utf-8"``
  bytes or ``"utf-32"`` code points. Lines end at ``\\n``, ``\\r\\n`` or ``\\r`` (LSP rule).
- *tree-sitter point*: ``(row, column)``, both 0-based; ``row`` counts ``\\n`` only (tree-sitter's
  rule) and ``column`` is in UTF-8 bytes from the last ``\\n``.
"""

from __future__ import annotations

import bisect
import re

UTF8 = "utf-8"
UTF16 = "utf-16"
UTF32 = "utf-32"
ENCODINGS = (UTF8, UTF16, UTF32)

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_TEXT_CODEC_ERRORS = "surrogatepass"


def encode_text(text: str) -> bytes:
    """UTF-8 bytes of ``text`` exactly as tree-sitter sees them (lone surrogates kept)."""
    return text.encode("utf-8", _TEXT_CODEC_ERRORS)


def normalize_encoding(encoding: str | None) -> str:
    """Map an LSP ``PositionEncodingKind`` value (or None) to one of ENCODINGS; default utf-16."""
    if not encoding:
        return UTF16
    value = str(encoding).lower().replace("_", "-")
    if value in ("utf8", UTF8):
        return UTF8
    if value in ("utf32", UTF32):
        return UTF32
    return UTF16


def char_units(ch: str, encoding: str) -> int:
    """Width of one code point in units of ``encoding`` (UTF-16 code units, bytes or 1)."""
    code = ord(ch)
    if encoding == UTF16:
        return 2 if code > 0xFFFF else 1
    if encoding == UTF8:
        if code < 0x80:
            return 1
        if code < 0x800:
            return 2
        if code < 0x10000:
            return 3
        return 4
    return 1


def units_in(text: str, encoding: str) -> int:
    """Length of ``text`` in units of ``encoding``."""
    if encoding == UTF32 or text.isascii():
        return len(text)
    if encoding == UTF8:
        return len(encode_text(text))
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def units_to_chars(line_text: str, units: int, encoding: str) -> int:
    """Number of code points of ``line_text`` covered by its first ``units`` units.

    A unit count that falls inside a code point (half a surrogate pair, part of a UTF-8
    sequence) rounds down to the code point's start; a count past the end clamps to the end.
    """
    if units <= 0:
        return 0
    if encoding == UTF32 or line_text.isascii():
        return min(units, len(line_text))
    used = 0
    for index, ch in enumerate(line_text):
        width = char_units(ch, encoding)
        if used + width > units:
            return index
        used += width
    return len(line_text)


class LineIndex:
    """Start offsets of every line of a text, for fast LSP position <-> offset conversion.

    Build once per text version (``O(n)``); each conversion is then ``O(log lines + line length)``.
    """

    def __init__(self, text: str):
        self.text = text
        # line_starts[i] = offset of the first character of line i (0-based).
        self.line_starts = [0] + [m.end() for m in _LINE_BREAK.finditer(text)]

    @property
    def line_count(self) -> int:
        """Number of lines (a text ending with a line break has an empty last line)."""
        return len(self.line_starts)

    def line_of(self, offset: int) -> int:
        """0-based line containing str ``offset`` (clamped to the text)."""
        offset = max(0, min(offset, len(self.text)))
        return bisect.bisect_right(self.line_starts, offset) - 1

    def line_bounds(self, line: int) -> tuple[int, int]:
        """(start, end) str offsets of ``line`` without its line break; end==start for empty lines."""
        start = self.line_starts[line]
        if line + 1 < len(self.line_starts):
            end = self.line_starts[line + 1]
            # Strip the break itself: "\r\n", "\n" or "\r".
            if end > start and self.text[end - 1] == "\n":
                end -= 1
            if end > start and self.text[end - 1] == "\r":
                end -= 1
        else:
            end = len(self.text)
        return start, end

    def line_text(self, line: int) -> str:
        """Text of ``line`` without its line break."""
        start, end = self.line_bounds(line)
        return self.text[start:end]

    def offset_at(self, line: int, character: int, encoding: str = UTF16) -> int:
        """str offset of LSP ``(line, character)`` (0-based, ``character`` in ``encoding`` units).

        Clamps as the LSP spec asks: a character past the line's end means the line's end
        (before its line break); a line past the last line means the end of the text.
        Negative values clamp to 0.
        """
        encoding = normalize_encoding(encoding)
        if line < 0:
            return 0
        if line >= len(self.line_starts):
            return len(self.text)
        start, end = self.line_bounds(line)
        return start + units_to_chars(self.text[start:end], character, encoding)

    def position_at(self, offset: int, encoding: str = UTF16) -> tuple[int, int]:
        """LSP ``(line, character)`` (0-based, ``character`` in ``encoding`` units) of str ``offset``.

        An offset inside a ``\\r\\n`` pair maps to the end of that line.
        """
        encoding = normalize_encoding(encoding)
        offset = max(0, min(offset, len(self.text)))
        line = self.line_of(offset)
        start, end = self.line_bounds(line)
        return line, units_in(self.text[start:min(offset, end)], encoding)


def lsp_position_to_offset(text: str, line: int, character: int, encoding: str = UTF16) -> int:
    """str offset of the 0-based LSP position ``(line, character)`` in ``text``.

    ``character`` is in units of ``encoding`` ("utf-16" default, "utf-8", "utf-32"). A character
    past the line end clamps to the line end; a line past the end gives ``len(text)``.
    """
    return LineIndex(text).offset_at(line, character, encoding)


def offset_to_lsp_position(text: str, offset: int, encoding: str = UTF16) -> tuple[int, int]:
    """0-based LSP ``(line, character)`` of str ``offset``, ``character`` in ``encoding`` units."""
    return LineIndex(text).position_at(offset, encoding)


def offset_to_byte(text: str, offset: int) -> int:
    """UTF-8 byte offset of str ``offset`` (both 0-based)."""
    offset = max(0, min(offset, len(text)))
    head = text[:offset]
    return offset if head.isascii() else len(encode_text(head))


def byte_to_offset(data: bytes, byte_offset: int) -> int:
    """str offset of the 0-based UTF-8 ``byte_offset`` into ``data`` (the encoded text).

    A byte offset inside a multi-byte sequence rounds down to the code point's start.
    """
    byte_offset = max(0, min(byte_offset, len(data)))
    # Continuation bytes look like 0b10xxxxxx: back off to a code point boundary.
    while 0 < byte_offset < len(data) and (data[byte_offset] & 0xC0) == 0x80:
        byte_offset -= 1
    head = data[:byte_offset]
    return byte_offset if head.isascii() else len(head.decode("utf-8", _TEXT_CODEC_ERRORS))


def byte_to_point(data: bytes, byte_offset: int) -> tuple[int, int]:
    """tree-sitter point ``(row, byte column)`` of a 0-based byte offset; rows count ``\\n`` only."""
    byte_offset = max(0, min(byte_offset, len(data)))
    row = data.count(b"\n", 0, byte_offset)
    line_start = data.rfind(b"\n", 0, byte_offset) + 1
    return row, byte_offset - line_start


def point_to_byte(data: bytes, point: tuple[int, int]) -> int:
    """0-based byte offset of a tree-sitter point ``(row, byte column)``; clamps past the end."""
    row, column = point
    start = 0
    for _ in range(row):
        found = data.find(b"\n", start)
        if found < 0:
            return len(data)
        start = found + 1
    end = data.find(b"\n", start)
    end = len(data) if end < 0 else end
    return min(start + max(column, 0), end)


def offset_to_point(text: str, offset: int) -> tuple[int, int]:
    """tree-sitter point ``(row, byte column)`` of str ``offset``."""
    offset = max(0, min(offset, len(text)))
    row = text.count("\n", 0, offset)
    line_start = text.rfind("\n", 0, offset) + 1
    return row, offset_to_byte(text[line_start:], offset - line_start)


def indent_width(whitespace: str, tab_size: int = 4) -> int:
    """Width in columns of a run of leading whitespace (tabs advance to the next ``tab_size`` stop)."""
    column = 0
    for ch in whitespace:
        if ch == "\t":
            column += tab_size - column % tab_size
        elif ch in " \f":
            column += 1
        else:
            break
    return column


def leading_whitespace(line: str) -> str:
    """The run of spaces and tabs at the start of ``line``."""
    return line[: len(line) - len(line.lstrip(" \t"))]
