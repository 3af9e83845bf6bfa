"""One definition described (`DefinitionInfo`): kind, name, header, body, indentation,
parameters, return type, docstring and effects, from its tree-sitter node.

All offsets here are Python ``str`` offsets into ``Document.text``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import tree_sitter

from .coords import leading_whitespace
from .document import Document
from .languages import LanguageSpec, spec_for
from .parameters import NAME_LEAVES, parameter_names, return_type

_BODY_FIELDS = ("body",)
WS_BYTES = b" \t\r\n\f"
_JS_FUNCTION_VALUES = frozenset({"arrow_function", "function_expression", "function", "generator_function"})
_NEEDS_BODY = frozenset({"struct_specifier", "enum_specifier", "union_specifier", "class_specifier"})
_RUST_PANICS = frozenset({"panic", "unreachable", "todo", "unimplemented"})


@dataclass
class DefinitionInfo:
    """A function, method, class or other type definition of a document.

    ``start``/``end`` include decorators, annotations and wrappers such as ``export`` or
    ``template<>`` (where a doc comment goes above); ``header_start`` is where the definition
    keyword/signature itself starts. ``body_start`` is the offset of the first body statement
    (Python) or just after the opening ``{``; it is None when the definition has no body
    (prototypes, interface signatures). ``parameters`` are names in order, ``*``/``**``/``...``
    kept, without a Python ``self``/``cls`` receiver.
    """

    kind: str
    name: str
    qualified_name: str
    language: str
    start: int
    end: int
    header_start: int
    header: str
    body_start: int | None
    body_indent: str
    indent: str
    parameters: list[str] = field(default_factory=list)
    return_type: str | None = None
    decorators: list[str] = field(default_factory=list)
    docstring: str | None = None
    has_return_value: bool = False
    has_raise: bool = False
    has_yield: bool = False
    is_async: bool = False
    node: tree_sitter.Node | None = field(default=None, repr=False, compare=False)

    @property
    def has_docstring(self) -> bool:
        """True when a docstring (Python) or a doc comment right above the definition exists."""
        return self.docstring is not None

    @property
    def is_callable(self) -> bool:
        """True for functions and methods."""
        return self.kind in ("function", "method")




def definition_kind(node: tree_sitter.Node, spec: LanguageSpec) -> str | None:
    """Kind of a definition node ("function", "method", "class", ...) or None if it is not one."""
    kinds = spec.definition_kinds
    kind = kinds.get(node.type)
    if kind is None:
        if node.type in _JS_FUNCTION_VALUES and spec.name in ("javascript", "typescript", "tsx"):
            parent = node.parent
            if parent is not None and parent.type == "variable_declarator":
                return "function"
        return None
    # Only a struct/class with a body defines it; `struct S *p;` merely uses it.
    if node.type in _NEEDS_BODY and node.child_by_field_name("body") is None:
        return None
    if kind == "function" and _is_method(node, spec):
        return "method"
    return kind


def _is_method(node: tree_sitter.Node, spec: LanguageSpec) -> bool:
    parent = node.parent
    while parent is not None and parent.type in spec.wrapper_types | {"block", "declaration_list",
                                                                     "field_declaration_list",
                                                                     "template_declaration"}:
        if parent.type == "block" and spec.name != "python":
            return False
        if parent.type == "declaration_list" and spec.name == "rust":
            owner = parent.parent
            return owner is not None and owner.type in ("impl_item", "trait_item")
        parent = parent.parent
    if parent is None:
        return False
    return parent.type in ("class_definition", "class_specifier", "struct_specifier")


def _outer(node: tree_sitter.Node, spec: LanguageSpec) -> tree_sitter.Node:
    """The node including decorators/export/template wrappers (JS arrow: the whole declaration)."""
    outer = node
    if node.type in _JS_FUNCTION_VALUES:
        declarator = node.parent
        declaration = declarator.parent if declarator is not None else None
        if declaration is not None and declaration.type in ("lexical_declaration", "variable_declaration"):
            outer = declaration
    while outer.parent is not None and outer.parent.type in spec.wrapper_types:
        outer = outer.parent
    return outer


def line_indent(doc: Document, byte: int) -> str:
    offset = doc.offset_of_byte(byte)
    start, end = doc.lines.line_bounds(doc.lines.line_of(offset))
    return leading_whitespace(doc.text[start:end])




def describe_definition(doc: Document, node: tree_sitter.Node, with_effects: bool = True) -> DefinitionInfo:
    """A DefinitionInfo for a definition node of ``doc``; ``with_effects`` False skips the body
    walk behind ``has_return_value``/``has_raise``/``has_yield`` (left False)."""
    spec = spec_for(doc.language)
    kind = definition_kind(node, spec) or "function"
    outer = _outer(node, spec)
    name = definition_name(doc, node)
    qualified = ".".join([*(_qualifier_names(doc, node, spec)), name]) if name else name
    body = _body_node(node)
    header_node = outer if node.type in _JS_FUNCTION_VALUES else node
    header_end_byte = body.start_byte if body is not None else node.end_byte
    header = doc.source_bytes[header_node.start_byte:header_end_byte].decode("utf-8", "replace").rstrip()
    indent = line_indent(doc, outer.start_byte)
    body_start, body_indent = _body_position(doc, body, indent, spec)
    decorators = [doc.node_text(child) for child in (outer.children if outer is not node else [])
                  if child.type == "decorator"]
    # Rust attributes (`#[derive(..)]`) are siblings above the item: they belong to it.
    attributes = _leading_attributes(outer)
    decorators = [doc.node_text(a) for a in attributes] + decorators
    first = attributes[0] if attributes else outer
    info = DefinitionInfo(
        kind=kind,
        name=name,
        qualified_name=qualified,
        language=doc.language,
        start=doc.offset_of_byte(first.start_byte),
        end=doc.offset_of_byte(outer.end_byte),
        header_start=doc.offset_of_byte(header_node.start_byte),
        header=header,
        body_start=body_start,
        body_indent=body_indent,
        indent=indent,
        parameters=parameter_names(doc, node, kind),
        return_type=return_type(doc, node),
        decorators=decorators,
        docstring=_docstring(doc, node, first, body, spec),
        is_async=any(child.type == "async" for child in (*header_node.children, *node.children)),
        node=node,
    )
    if with_effects and body is not None and info.is_callable:
        info.has_return_value, info.has_raise, info.has_yield = _body_effects(doc, node, body, spec)
    return info


def _leading_attributes(outer: tree_sitter.Node) -> list[tree_sitter.Node]:
    attributes: list[tree_sitter.Node] = []
    sibling = outer.prev_sibling
    while sibling is not None and sibling.type == "attribute_item":
        attributes.insert(0, sibling)
        sibling = sibling.prev_sibling
    return attributes


def definition_name(doc: Document, node: tree_sitter.Node) -> str:
    """The declared name of a definition node ("" when anonymous)."""
    if node.type in _JS_FUNCTION_VALUES:
        declarator = node.parent
        target = declarator.child_by_field_name("name") if declarator is not None else None
        return doc.node_text(target) if target is not None else ""
    if node.type == "impl_item":
        type_node = node.child_by_field_name("type")
        return doc.node_text(type_node) if type_node is not None else ""
    target = node.child_by_field_name("name")
    if target is not None:
        return doc.node_text(target)
    declarator = node.child_by_field_name("declarator")
    while declarator is not None:
        if declarator.type in NAME_LEAVES:
            return doc.node_text(declarator)
        inner = declarator.child_by_field_name("declarator")
        if inner is None:
            break
        declarator = inner
    if node.type in _NEEDS_BODY and node.parent is not None and node.parent.type == "type_definition":
        alias = node.parent.child_by_field_name("declarator")
        if alias is not None:
            return doc.node_text(alias)
    return ""


def _qualifier_names(doc: Document, node: tree_sitter.Node, spec: LanguageSpec) -> list[str]:
    names: list[str] = []
    if node.type == "method_declaration" and spec.name == "go":
        receiver = node.child_by_field_name("receiver")
        if receiver is not None:
            types = [n for n in _walk(receiver) if n.type == "type_identifier"]
            if types:
                names.append(doc.node_text(types[0]))
    parent = node.parent
    while parent is not None:
        if definition_kind(parent, spec) is not None:
            parent_name = definition_name(doc, parent)
            if parent_name:
                names.append(parent_name)
        parent = parent.parent
    if spec.name == "go":
        return names[:1] + list(reversed(names[1:]))
    return list(reversed(names))


def _walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def _body_node(node: tree_sitter.Node) -> tree_sitter.Node | None:
    for name in _BODY_FIELDS:
        body = node.child_by_field_name(name)
        if body is not None:
            return body
    if node.type == "type_spec":
        type_node = node.child_by_field_name("type")
        if type_node is not None:
            for child in type_node.children:
                if child.type in ("field_declaration_list", "method_spec_list"):
                    return child
    return None


def _body_position(doc: Document, body: tree_sitter.Node | None, indent: str,
                   spec: LanguageSpec) -> tuple[int | None, str]:
    unit = "\t" if "\t" in indent or spec.name == "go" else "    "
    if body is None:
        return None, indent + unit
    if spec.name == "python":
        first = body.named_children[0] if body.named_child_count else None
        if first is None or body.start_byte == body.end_byte:
            return doc.offset_of_byte(body.start_byte), indent + unit
        first_line_indent = line_indent(doc, first.start_byte)
        header_row = body.parent.start_point[0] if body.parent is not None else -1
        if first.start_point[0] == header_row:  # `def f(): pass`
            return doc.offset_of_byte(first.start_byte), indent + unit
        return doc.offset_of_byte(first.start_byte), first_line_indent
    start_byte = body.start_byte
    if doc.source_bytes[start_byte:start_byte + 1] == b"{":
        start_byte += 1
    inner = [child for child in body.named_children]
    if inner and inner[0].start_point[0] > body.start_point[0]:
        return doc.offset_of_byte(start_byte), line_indent(doc, inner[0].start_byte)
    return doc.offset_of_byte(start_byte), indent + unit


def _docstring(doc: Document, node: tree_sitter.Node, outer: tree_sitter.Node,
               body: tree_sitter.Node | None, spec: LanguageSpec) -> str | None:
    if spec.name == "python":
        if body is None:
            return None
        for child in body.named_children:
            if child.type == "comment":
                continue
            if child.type == "expression_statement" and child.named_child_count == 1 \
                    and child.named_children[0].type in ("string", "concatenated_string"):
                return doc.node_text(child.named_children[0])
            return None
        return None
    # Doc comments: the run of comments directly above the definition (no blank line between).
    comments: list[tree_sitter.Node] = []
    expected_row = outer.start_point[0]
    sibling = outer.prev_sibling
    while sibling is not None and sibling.type in spec.comment_types and sibling.end_point[0] >= expected_row - 1:
        comments.append(sibling)
        expected_row = sibling.start_point[0]
        sibling = sibling.prev_sibling
    if not comments:
        return None
    comments.reverse()
    # A comment that ends on the line where a previous statement ends is that statement's comment.
    first = comments[0]
    before = first.prev_sibling
    if before is not None:
        # A node that swallowed its line break (`#include <x>\n`) ends at column 0 of the next row.
        before_end_row = before.end_point[0] - (1 if before.end_point[1] == 0 else 0)
        if before_end_row == first.start_point[0]:
            comments = comments[1:]
    if not comments:
        return None
    start, end = comments[0].start_byte, comments[-1].end_byte
    return doc.source_bytes[start:end].decode("utf-8", "replace").rstrip()


def _body_effects(doc: Document, node: tree_sitter.Node, body: tree_sitter.Node,
                  spec: LanguageSpec) -> tuple[bool, bool, bool]:
    """(returns a value, raises/throws/panics, yields) inside ``body``, nested functions excluded."""
    returns = raises = yields = False
    if spec.name == "go" and node.child_by_field_name("result") is not None:
        returns = True
    if spec.name == "rust":
        returns = node.child_by_field_name("return_type") is not None
    stack = list(body.children)
    while stack:
        current = stack.pop()
        node_type = current.type
        if node_type in spec.nested_function_types:
            continue
        if node_type in spec.return_types:
            if any(child.type not in spec.comment_types for child in current.named_children):
                returns = True
        elif node_type in spec.raise_types:
            raises = True
        elif node_type in spec.yield_types:
            yields = True
        elif node_type == "call_expression" and spec.name == "go":
            function = current.child_by_field_name("function")
            if function is not None and doc.node_text(function) == "panic":
                raises = True
        elif node_type == "macro_invocation" and spec.name == "rust":
            macro = current.child_by_field_name("macro")
            if macro is not None and doc.node_text(macro) in _RUST_PANICS:
                raises = True
        stack.extend(current.children)
    return returns, raises, yields
