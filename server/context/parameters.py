"""A definition's parameter names and return type, from its tree-sitter node, in every
supported language (Python's `self`/`cls` dropped from methods, Go's grouped names split)."""

from __future__ import annotations

import tree_sitter

from .document import Document

_PARAM_SKIP = frozenset({
    "comment", "self_parameter", "keyword_separator", "positional_separator", "(", ")", ",",
    "attribute_item", "line_comment", "block_comment", "this",
})
NAME_LEAVES = frozenset({
    "identifier", "field_identifier", "property_identifier", "type_identifier",
    "shorthand_property_identifier_pattern", "namespace_identifier", "destructor_name",
    "operator_name", "qualified_identifier", "private_property_identifier", "package_identifier",
})


def parameter_names(doc: Document, node: tree_sitter.Node, kind: str) -> list[str]:
    """The parameters' names in order (`*args`, `**kwargs`, `...rest` marked as written)."""
    params_node = node.child_by_field_name("parameters")
    if params_node is None:
        declarator = node.child_by_field_name("declarator")
        while declarator is not None and params_node is None:
            params_node = declarator.child_by_field_name("parameters")
            declarator = declarator.child_by_field_name("declarator")
    if params_node is None:
        return []
    if params_node.type not in ("parameters", "formal_parameters", "parameter_list", "lambda_parameters"):
        # JS arrow with one bare parameter: `x => x`
        return [doc.node_text(params_node)] if params_node.type == "identifier" else []
    names: list[str] = []
    for child in params_node.named_children:
        if child.type in _PARAM_SKIP:
            continue
        if child.type == "parameter_declaration" and doc.language == "go":
            declared = child.children_by_field_name("name")
            names.extend(doc.node_text(n) for n in declared)
            continue
        if child.type == "variadic_parameter":
            names.append("...")
            continue
        name = _parameter_name(doc, child)
        if name:
            names.append(name)
    if doc.language == "python" and kind == "method" and names and names[0] in ("self", "cls"):
        decorators_text = " ".join(
            doc.node_text(c) for c in (node.parent.children if node.parent is not None else [])
            if c.type == "decorator"
        )
        if "staticmethod" not in decorators_text:
            names = names[1:]
    return names


def _parameter_name(doc: Document, node: tree_sitter.Node) -> str:
    prefix = {"list_splat_pattern": "*", "dictionary_splat_pattern": "**", "rest_pattern": "...",
              "variadic_parameter_declaration": "..."}.get(node.type, "")
    if node.type in NAME_LEAVES:
        return doc.node_text(node)
    for field_name in ("name", "pattern", "declarator", "left"):
        inner = node.child_by_field_name(field_name)
        if inner is not None:
            return prefix + _parameter_name(doc, inner)
    for child in node.named_children:
        if child.type in NAME_LEAVES:
            return prefix + doc.node_text(child)
        if child.type in ("list_splat_pattern", "dictionary_splat_pattern", "rest_pattern"):
            return _parameter_name(doc, child)
    if node.type in ("object_pattern", "array_pattern", "tuple_pattern"):
        return doc.node_text(node)
    return ""


def return_type(doc: Document, node: tree_sitter.Node) -> str | None:
    for field_name in ("return_type", "result"):
        target = node.child_by_field_name(field_name)
        if target is not None:
            text = doc.node_text(target).strip()
            return text[1:].strip() if text.startswith(":") else text
    if doc.language in ("c", "cpp", "java") and node.type in ("function_definition", "method_declaration"):
        target = node.child_by_field_name("type")
        if target is not None:
            return doc.node_text(target)
    return None
