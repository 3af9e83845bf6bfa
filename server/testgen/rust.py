"""Rust tests (a ``#[cfg(test)] mod tests`` in the same file)."""

from __future__ import annotations

from repolsp.server.context.document import Document
from repolsp.server.context.symbols import (
    DefinitionInfo,
)
from repolsp.server.testgen.edits import GeneratedTest
from repolsp.server.testgen.targets import _owner_name


def _rust_args(doc: Document, info: DefinitionInfo) -> tuple[str, bool]:
    params_node = info.node.child_by_field_name("parameters")
    has_self = False
    count = 0
    for child in params_node.named_children if params_node is not None else []:
        if child.type == "self_parameter":
            has_self = True
        elif child.type == "parameter":
            count += 1
    return ", ".join(["Default::default()"] * count), has_self


def rust_skeleton(doc: Document, info: DefinitionInfo, test_name: str) -> GeneratedTest:
    """A #[test] fn that calls the function with default values (TODO arguments and expectation)."""
    args, has_self = _rust_args(doc, info)
    owner = _owner_name(info)
    lines = ["    // TODO: replace the default arguments and the expected value."]
    if owner and has_self:
        lines.append(f"    let value = {owner}::default();")
        callee = f"value.{info.name}"
    elif owner:
        callee = f"{owner}::{info.name}"
    else:
        callee = info.name
    if info.return_type:
        lines += [f"    let result = {callee}({args});", "    assert_eq!(result, Default::default());"]
    else:
        lines.append(f"    {callee}({args});")
    return GeneratedTest(test_name, f"#[test]\nfn {test_name}() {{\n" + "\n".join(lines) + "\n}")
