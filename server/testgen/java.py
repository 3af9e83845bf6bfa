"""Java tests (JUnit 5, ``src/test/java/.../<Class>Test.java``)."""

from __future__ import annotations

import re

from repolsp.server.context.document import Document
from repolsp.server.context.symbols import (
    DefinitionInfo,
)
from repolsp.server.testgen.edits import GeneratedTest
from repolsp.server.testgen.targets import _owner_name

_JAVA_ZERO = {"int": "0", "long": "0L", "short": "(short) 0", "byte": "(byte) 0", "double": "0.0",
              "float": "0.0f", "boolean": "false", "char": "'\\0'"}


def java_skeleton(doc: Document, info: DefinitionInfo, test_name: str) -> GeneratedTest:
    """A JUnit 5 @Test method that calls the method (TODO arguments and expected value)."""
    params_node = info.node.child_by_field_name("parameters")
    args = []
    for child in params_node.named_children if params_node is not None else []:
        type_node = child.child_by_field_name("type")
        type_text = doc.node_text(type_node) if type_node is not None else "Object"
        args.append(_JAVA_ZERO.get(type_text, "null"))
    owner = _owner_name(info) or doc.path.rsplit("/", 1)[-1].removesuffix(".java")
    static = bool(re.search(r"\bstatic\b", info.header))
    lines = ["    // TODO: replace the placeholder arguments and the expected value."]
    if static:
        callee = f"{owner}.{info.name}"
    else:
        lines.append(f"    {owner} subject = new {owner}();")
        callee = f"subject.{info.name}"
    call = f"{callee}({', '.join(args)})"
    if info.return_type and info.return_type != "void":
        lines += [f"    {info.return_type} result = {call};",
                  f"    assertEquals({_JAVA_ZERO.get(info.return_type, 'null')}, result);"]
    else:
        lines += [f"    {call};", "    // TODO: assert on the effect."]
    return GeneratedTest(test_name, f"@Test\nvoid {test_name}() {{\n" + "\n".join(lines) + "\n}",
                    ["import static org.junit.jupiter.api.Assertions.assertEquals;",
                     "import org.junit.jupiter.api.Test;"])
