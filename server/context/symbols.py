"""Definitions found with tree-sitter: the function/method/class around a cursor (for scope
headers, docstring and test generation) and every definition of a file (for the workspace index).

All offsets here are Python ``str`` offsets into ``Document.text``. How one definition is
described lives in `describe` (its names are re-exported here).
"""

from __future__ import annotations

from collections.abc import Iterator

import tree_sitter
from repolsp.server.context.describe import (
    WS_BYTES,
    DefinitionInfo,
    definition_kind,
    definition_name,
    describe_definition,
    line_indent,
)

from .coords import indent_width, leading_whitespace
from .document import Document
from .languages import spec_for

__all__ = [
    "DefinitionInfo", "definition_kind", "definition_name", "describe_definition",
    "enclosing_callable", "enclosing_definition", "enclosing_definitions", "file_definitions",
    "import_nodes", "iter_definitions", "scope_header_text", "signature_text",
]


# Nodes that can hold definitions without being one (bodies, wrappers, conditional blocks).
_DEFINITION_CONTAINERS = frozenset({
    "module", "program", "source_file", "translation_unit", "block", "class_body", "declaration_list",
    "field_declaration_list", "interface_body", "enum_body", "decorated_definition", "export_statement",
    "lexical_declaration", "variable_declaration", "variable_declarator", "type_declaration",
    "template_declaration", "linkage_specification", "preproc_ifdef", "preproc_if", "preproc_else",
    "preproc_elif", "if_statement", "else_clause", "elif_clause", "try_statement", "except_clause",
    "finally_clause", "internal_module", "statement_block", "type_definition", "ambient_declaration",
    "namespace_definition", "expression_statement",
})


def iter_definitions(doc: Document, node: tree_sitter.Node | None = None,
                     into_callables: bool = True) -> Iterator[tree_sitter.Node]:
    """Definition nodes of ``doc`` (under ``node``) in document order.

    With ``into_callables`` False, functions' bodies are not searched (no closures or local
    classes) and only containers that can hold definitions are entered: much faster on big
    files, which is what the workspace index needs.
    """
    if doc.tree is None:
        return
    spec = spec_for(doc.language)
    start = node or doc.tree.root_node
    if not into_callables:
        stack = [start]
        while stack:
            current = stack.pop()
            kind = definition_kind(current, spec)
            if kind is not None:
                yield current
                if kind in ("function", "method") and current is not start:
                    continue
            elif current is not start and current.type not in _DEFINITION_CONTAINERS \
                    and current.type not in spec.wrapper_types:
                continue
            stack.extend(reversed(current.named_children))
        return
    cursor = start.walk()
    reached_root = False
    while not reached_root:
        current = cursor.node
        if definition_kind(current, spec) is not None:
            yield current
        if cursor.goto_first_child():
            continue
        if cursor.goto_next_sibling():
            continue
        while True:
            if not cursor.goto_parent():
                reached_root = True
                break
            if cursor.goto_next_sibling():
                break


def enclosing_definitions(doc: Document, offset: int) -> list[tree_sitter.Node]:
    """Definition nodes around str ``offset``, outermost first.

    At the end of an unfinished body the node under the cursor is the root, so the search steps
    back over whitespace to the last code before the cursor and keeps a definition found that way
    only if the cursor is strictly inside it or indented deeper than its header.
    """
    if doc.tree is None:
        return []
    spec = spec_for(doc.language)
    offset = max(0, min(offset, len(doc.text)))
    byte = doc.byte_at(offset)
    data = doc.source_bytes
    probe = byte
    while probe > 0 and data[probe - 1] in WS_BYTES:
        probe -= 1
    root = doc.tree.root_node
    node = root.descendant_for_byte_range(max(probe - 1, 0), probe) if probe > 0 else root
    cursor_indent = _cursor_indent(doc, offset)
    found: list[tree_sitter.Node] = []
    while node is not None:
        if definition_kind(node, spec) is not None and (
            node.start_byte < byte < node.end_byte
            or (byte >= node.end_byte and cursor_indent > _line_indent_width(doc, node.start_byte))
        ):
            found.append(node)
        node = node.parent
    found.reverse()
    return found


def _cursor_indent(doc: Document, offset: int) -> int:
    lines = doc.lines
    line_no = lines.line_of(offset)
    start, end = lines.line_bounds(line_no)
    line = doc.text[start:end]
    if line.strip():
        return indent_width(leading_whitespace(line))
    return indent_width(doc.text[start:offset])


def _line_indent_width(doc: Document, byte: int) -> int:
    return indent_width(line_indent(doc, byte))


def enclosing_definition(doc: Document, offset: int) -> DefinitionInfo | None:
    """The innermost function, method or class (or other type definition) around ``offset``."""
    nodes = enclosing_definitions(doc, offset)
    return describe_definition(doc, nodes[-1]) if nodes else None


def enclosing_callable(doc: Document, offset: int) -> DefinitionInfo | None:
    """The innermost function or method around ``offset`` (a class is skipped)."""
    spec = spec_for(doc.language)
    for node in reversed(enclosing_definitions(doc, offset)):
        if definition_kind(node, spec) in ("function", "method"):
            return describe_definition(doc, node)
    return None


def file_definitions(doc: Document) -> list[DefinitionInfo]:
    """Every definition of ``doc`` described, in document order."""
    return [describe_definition(doc, node) for node in iter_definitions(doc)]




def import_nodes(doc: Document) -> list[tree_sitter.Node]:
    """Top-level import statements (and package clauses) of ``doc`` in order.

    Python imports nested in ``try``/``if`` blocks at top level are included; C/C++ includes
    inside preprocessor conditionals are too.
    """
    if doc.tree is None:
        return []
    spec = spec_for(doc.language)
    found: list[tree_sitter.Node] = []
    stack = list(reversed(doc.tree.root_node.children))
    while stack:
        current = stack.pop()
        if current.type in spec.import_types:
            found.append(current)
        elif current.type in ("try_statement", "if_statement", "block", "preproc_ifdef", "preproc_if",
                              "preproc_else", "except_clause", "else_clause", "linkage_specification",
                              "declaration_list") and _depth(current) <= 3:
            stack.extend(reversed(current.children))
    found.sort(key=lambda n: n.start_byte)
    return found


def _depth(node: tree_sitter.Node) -> int:
    depth = 0
    while node.parent is not None:
        node = node.parent
        depth += 1
    return depth


def scope_header_text(doc: Document, node: tree_sitter.Node, max_doc_lines: int = 6) -> str:
    """Source lines of a definition's header as written: decorators and signature (up to and
    including ``{`` in brace languages), with its docstring (Python) or doc comment above (others)
    trimmed to ``max_doc_lines`` lines (0: without it)."""
    info = describe_definition(doc, node, with_effects=False)
    lines_start = doc.lines.line_bounds(doc.lines.line_of(info.start))[0]
    if info.body_start is None:
        end = info.end
    elif doc.language == "python":
        end = doc.offset_of_byte(node.child_by_field_name("body").start_byte) if node.child_by_field_name("body") else info.end
    else:
        end = info.body_start
    text = doc.text[lines_start:end].rstrip()
    docstring = (_trim_doc(info.docstring, info.language, max_doc_lines, _doc_indent(info))
                 if info.docstring and max_doc_lines > 0 else None)
    if docstring is None:
        return text
    if doc.language == "python":
        return text + "\n" + info.body_indent + docstring
    return info.indent + docstring + "\n" + text


def _trim_doc(docstring: str, language: str, max_doc_lines: int, indent: str = "") -> str:
    """The first ``max_doc_lines`` lines of a docstring/doc comment, closed again (``indent``
    goes before the closing quotes or ``*/``)."""
    doc_lines = docstring.splitlines()
    if len(doc_lines) <= max_doc_lines:
        return docstring
    doc_lines = doc_lines[:max_doc_lines]
    stripped = docstring.lstrip("rRbBuUfF")
    if language == "python":
        doc_lines.append(indent + (stripped[:3] if stripped[:3] in ('"""', "'''") else stripped[:1]))
    elif docstring.lstrip().startswith("/*"):
        doc_lines.append(indent + " */")
    return "\n".join(doc_lines)


def _doc_indent(info: DefinitionInfo) -> str:
    return info.body_indent if info.language == "python" else info.indent


def signature_text(info: DefinitionInfo, max_doc_lines: int = 6) -> str:
    """A short rendering of a definition for prompts: doc comment, header, docstring (trimmed)."""
    docstring = _trim_doc(info.docstring, info.language, max_doc_lines, _doc_indent(info)) if info.docstring else None
    text = info.indent + info.header
    if docstring and info.language == "python":
        return text + "\n" + info.body_indent + docstring
    if docstring:
        return info.indent + docstring + "\n" + text
    return text
