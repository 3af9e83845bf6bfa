"""The test prompt the server sends to the model (and the trainer renders its examples with)."""

from __future__ import annotations

import re

from repolsp.server.context.document import Document
from repolsp.server.context.symbols import (
    DefinitionInfo,
)
from repolsp.server.testgen.model_body import body_seed
from repolsp.server.testgen.targets import _owner_name


def render_test_prompt(function_source: str, opened_test: str = "") -> str:
    """The one test prompt format, for the server and the trainer: the function under test
    (a method with its class line above), two blank lines, then ``opened_test``: the server opens
    the test function (``def test_f():\n    assert f(``); the trainer's examples leave it empty and
    the answer is the whole test function, so training teaches the continuation the server asks for."""
    source = textwrap_dedent_keep(function_source.replace("\r\n", "\n")[:3000])
    return f"{source.rstrip()}\n\n\n{opened_test}"


def python_test_prompt(doc: Document, info: DefinitionInfo, test_name: str) -> str:
    """The server's prompt (`render_test_prompt`): the function, then the opened test ending with
    the seed (``assert f(``)."""
    text = doc.text.replace("\r\n", "\n")
    start = doc.text.rfind("\n", 0, info.start) + 1
    source = doc.text[start:info.end].replace("\r\n", "\n")
    owner = _owner_name(info)
    if owner:
        class_line = re.search(rf"^class {re.escape(owner)}\b.*$", text, flags=re.MULTILINE)
        source = (class_line.group(0) + "\n" if class_line else "") + source
    seed = body_seed(doc, info)
    return render_test_prompt(source, f"def {test_name}():\n    {seed}" if seed else f"def {test_name}():")


def textwrap_dedent_keep(source: str) -> str:
    """The source unchanged unless every line is indented (a method without its class)."""
    import textwrap

    return source if source[:1] not in (" ", "\t") or source.lstrip().startswith("class ") else textwrap.dedent(source)
