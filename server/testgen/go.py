"""Go tests (``<file>_test.go``)."""

from __future__ import annotations

from repolsp.server.context.document import Document
from repolsp.server.context.symbols import (
    DefinitionInfo,
)
from repolsp.server.testgen.edits import GeneratedTest
from repolsp.server.testgen.targets import _owner_name

_GO_ZERO = {"string": '""', "bool": "false", "error": "nil"}


def _go_params(doc: Document, info: DefinitionInfo) -> list[tuple[str, str]]:
    params_node = info.node.child_by_field_name("parameters")
    found: list[tuple[str, str]] = []
    for child in params_node.named_children if params_node is not None else []:
        if child.type != "parameter_declaration":
            continue
        type_node = child.child_by_field_name("type")
        type_text = doc.node_text(type_node) if type_node is not None else "any"
        for name in child.children_by_field_name("name"):
            found.append((doc.node_text(name), type_text))
    return found


def _go_result_count(doc: Document, info: DefinitionInfo) -> tuple[int, bool]:
    result = info.node.child_by_field_name("result")
    if result is None:
        return 0, False
    if result.type == "parameter_list":
        kids = [c for c in result.named_children if c.type == "parameter_declaration"]
        count = sum(max(1, len(c.children_by_field_name("name"))) for c in kids)
        last = doc.node_text(kids[-1].child_by_field_name("type")) if kids else ""
        return count, last == "error"
    return 1, doc.node_text(result) == "error"


def go_skeleton(doc: Document, info: DefinitionInfo, test_name: str) -> GeneratedTest:
    """A Go test that calls the function with zero values; the check is a TODO."""
    lines = ["\t// TODO: replace the zero-value arguments and compare with the expected result."]
    args = []
    for name, type_text in _go_params(doc, info):
        if type_text.startswith("..."):
            continue
        lines.append(f"\tvar {name} {type_text}")
        args.append(name)
    callee = info.name
    owner = _owner_name(info)
    if owner:
        lines.append(f"\tvar receiver {owner}")
        callee = f"receiver.{info.name}"
    count, has_error = _go_result_count(doc, info)
    call = f"{callee}({', '.join(args)})"
    if count == 0:
        lines.append(f"\t{call}")
    else:
        names = [f"got{i}" if i else "got" for i in range(count)]
        if has_error:
            names[-1] = "err"
        lines.append(f"\t{', '.join(names)} := {call}")
        if has_error:
            lines += ["\tif err != nil {", '\t\tt.Fatalf("unexpected error: %v", err)', "\t}"]
        for name in names:
            if name != "err":
                lines.append(f'\tt.Logf("TODO: check {name} = %v", {name})')
    return GeneratedTest(test_name, f"func {test_name}(t *testing.T) {{\n" + "\n".join(lines) + "\n}",
                    ['import "testing"'])
