"""What a test can call: the function or method at the cursor, and its owner class."""

from __future__ import annotations

import tree_sitter
from repolsp.server.context.document import Document
from repolsp.server.context.symbols import (
    DefinitionInfo,
    describe_definition,
    enclosing_definitions,
)

TEST_LANGUAGES = frozenset({"python", "go", "javascript", "typescript", "tsx", "rust", "java"})


def target_for_tests(doc: Document, offset: int) -> DefinitionInfo | None:
    """The function or method at ``offset`` that a test can call from outside: not nested in
    another function, named, not itself a test; None otherwise."""
    if doc.language not in TEST_LANGUAGES or doc.tree is None:
        return None
    nodes = enclosing_definitions(doc, offset)
    infos = [describe_definition(doc, node) for node in nodes]
    callables = [i for i in infos if i.is_callable]
    if not callables:
        return None
    outer = callables[0]  # a function nested in a function is not reachable from a test
    name = outer.name
    if not name or name.startswith(("test_", "Test")) or (name.startswith("__") and name.endswith("__")):
        return None  # already a test, or a dunder method that tests reach through the class
    if doc.language == "rust" and outer.node is not None and outer.node.type == "function_signature_item":
        return None
    return outer


def _owner_name(info: DefinitionInfo) -> str | None:
    """The class (or Go receiver / Rust impl type) a method belongs to."""
    if info.kind != "method" or "." not in info.qualified_name:
        return None
    return info.qualified_name.rsplit(".", 1)[0].split(".")[0]


def _top_level_class(doc: Document, name: str) -> tree_sitter.Node | None:
    for child in doc.tree.root_node.named_children if doc.tree is not None else []:
        target = child.child_by_field_name("definition") if child.type == "decorated_definition" else child
        if target is not None and target.type == "class_definition" and \
                doc.node_text(target.child_by_field_name("name")) == name:
            return target
    return None


def _returns_value(info: DefinitionInfo) -> bool:
    annotation = (info.return_type or "").strip()
    return info.has_return_value if not annotation else annotation not in ("None", "NoReturn")
