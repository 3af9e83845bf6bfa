"""One open (or indexed) file: text, language, line index and tree-sitter tree, kept in sync
through LSP incremental changes with incremental re-parsing."""

from __future__ import annotations

import bisect
import logging
import os
import pathlib
import urllib.parse
import urllib.request

import tree_sitter

from . import coords
from .languages import TEXT, language_for, parser_for

log = logging.getLogger(__name__)

Range = tuple[tuple[int, int], tuple[int, int]]


def uri_to_path(uri: str) -> str | None:
    """Filesystem path of a ``file:`` URI, or None for other schemes (untitled:, etc.)."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme != "file":
        return None
    path = urllib.request.url2pathname(urllib.parse.unquote(parsed.path))
    if parsed.netloc and parsed.netloc != "localhost":
        path = f"//{parsed.netloc}{path}"
    return path


def path_to_uri(path: str | os.PathLike) -> str:
    """``file:`` URI of a filesystem path."""
    return pathlib.Path(os.path.abspath(path)).as_uri()


def display_path(path: str | os.PathLike, root: str | os.PathLike | None = None) -> str:
    """'/'-separated path relative to ``root`` when inside it, else the path as given."""
    p = pathlib.PurePath(os.fspath(path))
    if root is not None:
        try:
            p = pathlib.Path(os.path.abspath(p)).relative_to(os.path.abspath(root))
        except ValueError:
            pass
    return p.as_posix()


class Document:
    """A text document with its language and (for the eight tree-sitter languages) its tree.

    Offsets in this API are Python ``str`` indices; LSP positions are ``(line, character)`` in
    the document's negotiated ``encoding``. ``tree`` is None for "text" documents.
    """

    def __init__(
        self,
        uri: str,
        text: str,
        language_id: str | None = None,
        version: int = 0,
        encoding: str = "utf-16",
        path: str | None = None,
    ):
        self.uri = uri
        self.version = version
        self.encoding = coords.normalize_encoding(encoding)
        if path is None:
            fs_path = uri_to_path(uri)
            path = display_path(fs_path) if fs_path else uri
        self.path = path
        self.language_id = language_id  # as the client sent it (settings name these)
        self.language = language_for(language_id, path if path else uri)
        self.tree: tree_sitter.Tree | None = None
        self._text = ""
        self._bytes = b""
        self._lines: coords.LineIndex | None = None
        self._set_text(text)
        self._reparse(old_tree=None)

    # -- text and coordinates ---------------------------------------------------------------

    @property
    def text(self) -> str:
        """The whole text."""
        return self._text

    @property
    def source_bytes(self) -> bytes:
        """UTF-8 bytes of the text, as parsed by tree-sitter."""
        return self._bytes

    @property
    def lines(self) -> coords.LineIndex:
        """Line index of the current text (built lazily, once per version)."""
        if self._lines is None:
            self._lines = coords.LineIndex(self._text)
        return self._lines

    def offset_at(self, line: int, character: int) -> int:
        """str offset of the LSP position (0-based, ``character`` in the document's encoding)."""
        return self.lines.offset_at(line, character, self.encoding)

    def position_at(self, offset: int) -> tuple[int, int]:
        """LSP position (0-based, document encoding) of str ``offset``."""
        return self.lines.position_at(offset, self.encoding)

    def byte_at(self, offset: int) -> int:
        """UTF-8 byte offset of str ``offset``."""
        offset = max(0, min(offset, len(self._text)))
        if self._is_ascii:
            return offset
        # Convert only within the line: whole-prefix encoding is O(file) per call.
        lines = self.lines
        line = lines.line_of(offset)
        line_start = lines.line_starts[line]
        head = self._text[line_start:offset]
        width = len(head) if head.isascii() else len(coords.encode_text(head))
        return self._line_byte_starts()[line] + width

    def offset_of_byte(self, byte_offset: int) -> int:
        """str offset of a UTF-8 byte offset (e.g. a tree-sitter node boundary)."""
        byte_offset = max(0, min(byte_offset, len(self._bytes)))
        if self._is_ascii:
            return byte_offset
        byte_starts = self._line_byte_starts()
        line = bisect.bisect_right(byte_starts, byte_offset) - 1
        line_byte_start = byte_starts[line]
        return self.lines.line_starts[line] + coords.byte_to_offset(
            self._bytes[line_byte_start:byte_offset + 4], byte_offset - line_byte_start)

    def _line_byte_starts(self) -> list[int]:
        """Byte offset of every line start (same lines as ``lines``), built once per version."""
        if self._byte_starts is None:
            starts = self.lines.line_starts
            text = self._text
            result = [0] * len(starts)
            extra = 0  # bytes beyond one per code point, accumulated over non-ASCII lines
            for index in range(1, len(starts)):
                segment = text[starts[index - 1]:starts[index]]
                if not segment.isascii():
                    extra += len(coords.encode_text(segment)) - len(segment)
                result[index] = starts[index] + extra
            self._byte_starts = result
        return self._byte_starts

    def node_text(self, node: tree_sitter.Node) -> str:
        """Text of a tree-sitter node of this document."""
        return self._bytes[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def node_offsets(self, node: tree_sitter.Node) -> tuple[int, int]:
        """(start, end) str offsets of a tree-sitter node of this document."""
        return self.offset_of_byte(node.start_byte), self.offset_of_byte(node.end_byte)

    # -- changes ------------------------------------------------------------------------------

    def apply_change(self, text: str, range: Range | None, version: int | None = None) -> None:
        """Apply one LSP content change: replace ``range`` (LSP positions in the document's
        encoding) with ``text``, or the whole text when ``range`` is None; re-parse incrementally."""
        if version is not None:
            self.version = version
        if range is None:
            self._set_text(text)
            self._reparse(old_tree=None)
            return
        (start_line, start_char), (end_line, end_char) = range
        start = self.offset_at(start_line, start_char)
        end = self.offset_at(end_line, end_char)
        if end < start:
            start, end = end, start
        old_text, old_bytes = self._text, self._bytes
        start_byte = self.byte_at(start)
        old_end_byte = self.byte_at(end)
        new_text = old_text[:start] + text + old_text[end:]
        self._set_text(new_text)
        if self.tree is None:
            self._reparse(old_tree=None)
            return
        new_end_byte = start_byte + len(coords.encode_text(text))
        self.tree.edit(
            start_byte=start_byte,
            old_end_byte=old_end_byte,
            new_end_byte=new_end_byte,
            start_point=coords.byte_to_point(old_bytes, start_byte),
            old_end_point=coords.byte_to_point(old_bytes, old_end_byte),
            new_end_point=coords.byte_to_point(self._bytes, new_end_byte),
        )
        self._reparse(old_tree=self.tree)

    def _set_text(self, text: str) -> None:
        self._text = text
        self._bytes = coords.encode_text(text)
        self._is_ascii = len(self._bytes) == len(text)
        self._lines = None
        self._byte_starts: list[int] | None = None

    def _reparse(self, old_tree: tree_sitter.Tree | None) -> None:
        if self.language == TEXT:
            self.tree = None
            return
        parser = parser_for(self.language)
        if parser is None:
            self.tree = None
            return
        try:
            self.tree = parser.parse(self._bytes, old_tree) if old_tree else parser.parse(self._bytes)
        except Exception:  # never let one bad file break the server; fall back to no tree
            log.warning("tree-sitter parse failed for %s", self.path, exc_info=True)
            self.tree = None

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_path(cls, path: str | os.PathLike, root: str | os.PathLike | None = None) -> Document:
        """Read a file (UTF-8, undecodable bytes replaced) into a Document whose ``path`` is
        relative to ``root`` when given; the language comes from the extension."""
        data = pathlib.Path(path).read_bytes()
        text = data.decode("utf-8", errors="replace")
        return cls(path_to_uri(path), text, path=display_path(path, root))

    def __repr__(self) -> str:
        return f"Document({self.path!r}, language={self.language!r}, version={self.version})"
