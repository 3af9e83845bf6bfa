"""The test prompt the server sends to the model (and the trainer renders its examples with)."""

from __future__ import annotations

import re

from repolsp.server.context.document import Document
from repolsp.server.context.symbols import (
    DefinitionInfo,
)
from repolsp.server.testgen.model_body import body_seed
from repolsp.server.testgen.targets import _owner_name


def python_test_prompt(doc: Document, info: DefinitionInfo, test_name: str) -> str:
    """Left-to-right prompt: the source file's imports and the function (its class header for a
    method), then the opened test function right below it, as if tests lived in the same file,
    ending with the seed (``assert f(``)."""
    text = doc.text.replace("\r\n", "\n")
    start = doc.text.rfind("\n", 0, info.start) + 1
    source = doc.text[start:info.end].replace("\r\n", "\n")
    owner = _owner_name(info)
    if owner:
        class_line = re.search(rf"^class {re.escape(owner)}\b.*$", text, flags=re.MULTILINE)
        source = (class_line.group(0) + "\n" if class_line else "") + source
    imports = "\n".join(line for line in text.splitlines()[:60] if line.startswith(("import ", "from ")))
    imports = imports + "\n\n\n" if imports else ""
    source = textwrap_dedent_keep(source[:3000])
    seed = body_seed(doc, info)
    opened = f"def {test_name}():\n    {seed}" if seed else f"def {test_name}():"
    return f"{imports}{source.rstrip()}\n\n\n{opened}"


def textwrap_dedent_keep(source: str) -> str:
    """The source unchanged unless every line is indented (a method without its class)."""
    import textwrap

    return source if source[:1] not in (" ", "\t") or source.lstrip().startswith("class ") else textwrap.dedent(source)
