"""Decide whether and how far to complete at a cursor: none, single-line or multi-line.

Rules, in order (the first that applies wins):

1. Inside a string or comment -> NONE, with one documented exception: when the cursor is at the
   end of a line of a comment or a docstring (nothing but closing quotes / comment end after it)
   and some words are already typed on that line, the user is writing prose that a completion
   can finish -> SINGLE_LINE. Code inside string interpolation (``f"{x}"``, ``${x}``) is code.
   A string or comment not closed yet (no closing quote: tree-sitter sees an error, not a
   string) is text being typed at the end of a line -> SINGLE_LINE by rule 5, which lets the
   model finish the literal.
2. Inside a word (identifier characters on both sides) -> NONE: completing the middle of a name
   only produces noise.
3. Text after the cursor on the line -> SINGLE_LINE ("mid-line").
4. Code before the cursor that ends with a block opener (``:`` in Python, ``{`` ``(`` ``[``)
   -> MULTI_LINE: the user is about to write the body.
5. Other code before the cursor -> SINGLE_LINE ("end of line").
6. A blank line: MULTI_LINE when it is in an unfinished body (right after a block opener, at
   the end of a body: the next code line is less indented, is a closing bracket at the same
   indentation, or there is none); SINGLE_LINE when it sits between statements of a body.

``block_indent``: the indentation (columns) of the header of the block being completed; a
generated line indented no deeper than this leaves the block. None at top level.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import tree_sitter

from .coords import LineIndex, indent_width, leading_whitespace
from .document import Document
from .languages import LanguageSpec, spec_for
from .types import CompletionMode

_CLOSERS_ONLY = re.compile(r"^[\s\)\]\}'\"`;,:>]*$")
_TRAILING_COMMENT = re.compile(r"\s+(#|//).*$")
_WORD = re.compile(r"\w")
_DOCSTRING_PARENTS = frozenset({"function_definition", "class_definition", "module"})


@dataclass(frozen=True)
class CompletionDecision:
    """What kind of completion fits at a cursor, and why (``reason`` is for logs and tests)."""

    mode: CompletionMode
    block_indent: int | None
    reason: str


def should_complete(doc: Document, offset: int) -> CompletionDecision:
    """Decide none / single-line / multi-line at str ``offset`` of ``doc`` (rules in the module doc)."""
    offset = max(0, min(offset, len(doc.text)))
    lines = doc.lines
    line_no = lines.line_of(offset)
    line_start, line_end = lines.line_bounds(line_no)
    offset = min(offset, line_end)  # an offset inside "\r\n" belongs to the line's end
    line_prefix = doc.text[line_start:offset]
    line_suffix = doc.text[offset:line_end]
    spec = spec_for(doc.language)
    line_indent = indent_width(leading_whitespace(line_prefix + line_suffix))

    if doc.tree is not None:
        literal = literal_at(doc, offset)
        if literal is not None:
            kind, node = literal
            return _decide_in_literal(doc, kind, node, offset, line_prefix, line_suffix,
                                      enclosing_indent(lines, line_no, line_indent))

    if line_suffix.strip():
        before = line_prefix[-1:]
        after = line_suffix[:1]
        if before and _WORD.match(before) and _WORD.match(after):
            return CompletionDecision(CompletionMode.NONE, None, "inside a word")
        reason = "before closing brackets" if _CLOSERS_ONLY.match(line_suffix) else "mid-line"
        return CompletionDecision(CompletionMode.SINGLE_LINE,
                                  enclosing_indent(lines, line_no, line_indent), reason)

    if line_prefix.strip():
        if opens_block(line_prefix, spec):
            return CompletionDecision(CompletionMode.MULTI_LINE, line_indent, "after a block opener")
        return CompletionDecision(CompletionMode.SINGLE_LINE,
                                  enclosing_indent(lines, line_no, line_indent), "end of line")

    return _decide_on_blank_line(lines, line_no, indent_width(line_prefix), spec)


def _decide_on_blank_line(lines: LineIndex, line_no: int, cursor_indent: int,
                          spec: LanguageSpec) -> CompletionDecision:
    prev_no = _neighbour_code_line(lines, line_no, -1)
    next_no = _neighbour_code_line(lines, line_no, +1)
    if prev_no is not None:
        prev_text = lines.line_text(prev_no)
        if opens_block(prev_text, spec):
            return CompletionDecision(CompletionMode.MULTI_LINE,
                                      indent_width(leading_whitespace(prev_text)), "empty body")
    header_indent = enclosing_indent(lines, line_no, cursor_indent)
    if next_no is None:
        return CompletionDecision(CompletionMode.MULTI_LINE, header_indent, "end of file")
    next_text = lines.line_text(next_no)
    next_indent = indent_width(leading_whitespace(next_text))
    if next_indent < cursor_indent or (
        next_indent == cursor_indent and next_text.strip()[:1] in (")", "]", "}")
    ):
        return CompletionDecision(CompletionMode.MULTI_LINE, header_indent, "end of body")
    return CompletionDecision(CompletionMode.SINGLE_LINE, header_indent, "between statements")


def _decide_in_literal(doc: Document, kind: str, node: tree_sitter.Node, offset: int,
                       line_prefix: str, line_suffix: str,
                       block_indent: int | None) -> CompletionDecision:
    """Rule 1: none inside strings/comments, except prose at the end of a comment/docstring line."""
    if kind == "string":
        return CompletionDecision(CompletionMode.NONE, None, "inside a string")
    at_line_end = not line_suffix.strip() or (
        kind == "docstring" and line_suffix.strip() in ('"""', "'''")
    ) or (kind == "comment" and line_suffix.strip() == "*/")
    node_start, _ = doc.node_offsets(node)
    # Only the part of this line that lies inside the literal counts as typed prose.
    typed = line_prefix[max(0, len(line_prefix) - (offset - node_start)):]
    words = re.sub(r"^\s*(#+|//+!?|/\*+!?|\*|[rRbBuUfF]*(\"\"\"|'''|\"|'))", "", typed)
    if at_line_end and re.search(r"\w", words):
        return CompletionDecision(CompletionMode.SINGLE_LINE, block_indent, f"writing a {kind}")
    return CompletionDecision(CompletionMode.NONE, None, f"inside a {kind}")


def literal_at(doc: Document, offset: int) -> tuple[str, tree_sitter.Node] | None:
    """("string" | "docstring" | "comment", node) when str ``offset`` is inside one, else None.

    A cursor right after a line comment (``# foo|``) is inside it; right after a closing quote
    or ``*/`` is outside. Code in string interpolation is outside.
    """
    if doc.tree is None:
        return None
    spec = spec_for(doc.language)
    byte = doc.byte_at(offset)
    root = doc.tree.root_node
    candidates = [root.descendant_for_byte_range(byte, byte)]
    if byte > 0:
        candidates.append(root.descendant_for_byte_range(byte - 1, byte))
    for node in candidates:
        while node is not None:
            node_type = node.type
            if node_type in spec.interpolation_types and node.start_byte < byte < node.end_byte:
                return None
            if node_type in spec.string_types and node.start_byte < byte < node.end_byte:
                if doc.language == "python" and is_docstring(node):
                    return "docstring", node
                return "string", node
            if node_type in spec.comment_types:
                inside = node.start_byte < byte < node.end_byte
                is_line_comment = not doc.source_bytes[node.start_byte:node.end_byte].endswith(b"*/")
                if inside or (byte == node.end_byte and is_line_comment):
                    return "comment", node
            node = node.parent
    return None


def is_docstring(string_node: tree_sitter.Node) -> bool:
    """True when a Python string node is the first statement of a module, class or function."""
    statement = string_node.parent
    if statement is None or statement.type != "expression_statement" or statement.named_child_count != 1:
        return False
    body = statement.parent
    if body is None:
        return False
    if body.type == "block":
        owner = body.parent
        if owner is None or owner.type not in _DOCSTRING_PARENTS:
            return False
    elif body.type != "module":
        return False
    first = body.named_children[0] if body.named_child_count else None
    # Comments before a docstring are allowed by Python; skip them.
    for child in body.named_children:
        if child.type != "comment":
            first = child
            break
    return first is not None and first.id == statement.id


def opens_block(code_line: str, spec: LanguageSpec) -> bool:
    """True when a line's code (trailing line comment ignored) ends with a block opener."""
    code = _TRAILING_COMMENT.sub("", code_line).rstrip()
    openers = spec.block_openers
    if spec.name == "python":
        openers = openers + ("(", "[", "{", "\\")
        if code.endswith(":") and _bracket_depth(code) > 0:
            return False  # a dict entry or slice (`{"a":`), not a block header
    return bool(code) and code.endswith(openers)


def _bracket_depth(code: str) -> int:
    """Open minus closed brackets on a line (strings not excluded: a heuristic)."""
    return sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")


def _neighbour_code_line(lines: LineIndex, line_no: int, step: int) -> int | None:
    """The nearest non-blank line above (step -1) or below (step +1) ``line_no``."""
    current = line_no + step
    while 0 <= current < lines.line_count:
        if lines.line_text(current).strip():
            return current
        current += step
    return None


def enclosing_indent(lines: LineIndex, line_no: int, indent: int) -> int | None:
    """Indentation of the nearest line above ``line_no`` that is less indented than ``indent``
    (the header of the block the line is in); None at top level."""
    if indent <= 0:
        return None
    current = line_no - 1
    while current >= 0:
        text = lines.line_text(current)
        if text.strip():
            width = indent_width(leading_whitespace(text))
            if width < indent:
                return width
        current -= 1
    return None
