"""Text edits of docstring generation: insertions, newline and indent of a file, and the re-parse
that refuses an edit adding a syntax error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import tree_sitter
from repolsp.server.context.document import Document
from repolsp.server.context.languages import parser_for


@dataclass(frozen=True)
class Insertion:
    """Replace ``text[start:end]`` with ``new_text`` (``start == end``: a pure insertion)."""

    start: int
    end: int
    new_text: str


def apply_insertions(text: str, insertions: list[Insertion]) -> str:
    """``text`` with non-overlapping insertions applied; insertions at the same offset end up in
    list order (the LSP rule for TextEdits at one position)."""
    ordered = sorted(enumerate(insertions), key=lambda pair: (pair[1].start, pair[1].end, pair[0]), reverse=True)
    for _, ins in ordered:
        text = text[: ins.start] + ins.new_text + text[ins.end :]
    return text


def syntax_error_count(text: str, language: str) -> int:
    """Number of ERROR and MISSING nodes tree-sitter finds in ``text`` (0 for unparsed languages)."""
    parser = parser_for(language)
    if parser is None:
        return 0
    return tree_error_count(parser.parse(text.encode("utf-8", "surrogatepass")))


def tree_error_count(tree: tree_sitter.Tree) -> int:
    """Number of ERROR and MISSING nodes of a parsed tree."""
    if not tree.root_node.has_error:
        return 0
    count = 0
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            count += 1
        if node.has_error:
            stack.extend(node.children)
    return count


def errors_after(doc: Document, insertion: Insertion) -> int:
    """Syntax errors of ``doc`` with ``insertion`` applied, re-parsed incrementally from the
    document's tree (a large file costs about as much as the edited region)."""
    if doc.tree is None:
        return 0
    from repolsp.server.context import coords

    parser = parser_for(doc.language)
    old_bytes = doc.source_bytes
    start_byte, old_end_byte = doc.byte_at(insertion.start), doc.byte_at(insertion.end)
    new_bytes = old_bytes[:start_byte] + coords.encode_text(insertion.new_text) + old_bytes[old_end_byte:]
    new_end_byte = start_byte + len(coords.encode_text(insertion.new_text))
    tree = doc.tree.copy()
    tree.edit(
        start_byte=start_byte, old_end_byte=old_end_byte, new_end_byte=new_end_byte,
        start_point=coords.byte_to_point(old_bytes, start_byte),
        old_end_point=coords.byte_to_point(old_bytes, old_end_byte),
        new_end_point=coords.byte_to_point(new_bytes, new_end_byte),
    )
    return tree_error_count(parser.parse(new_bytes, tree))


def newline_of(text: str, offset: int = 0) -> str:
    """The line ending used around ``offset`` ("\\r\\n", "\\r" or "\\n")."""
    at = text.find("\n", offset)
    if at < 0:
        at = text.rfind("\n", 0, offset)
    if at < 0:
        return "\r" if "\r" in text else "\n"
    return "\r\n" if at > 0 and text[at - 1] == "\r" else "\n"


def indent_unit(text: str) -> str:
    """The file's indentation step: a tab when lines are tab-indented, else four spaces."""
    tabs = len(re.findall(r"^\t", text, flags=re.MULTILINE))
    spaces = len(re.findall(r"^ ", text, flags=re.MULTILINE))
    return "\t" if tabs > spaces else "    "
