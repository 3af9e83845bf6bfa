"""A generation cut by the token limit is served without its unfinished statement, end to end."""

from __future__ import annotations

import asyncio

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient
from repolsp.server.docgen.edits import syntax_error_count
from repolsp.server.engine.base import GenerationRequest
from repolsp.server.engine.fake import FakeEngine

from tests.lsp.clients import CLIENTS, SERVER, capabilities, server_env

# The model keeps printing areas, so the 64-token multi-line limit cuts it inside an f-string.
FIRST = 'print(f"The area is {math.pi * radius ** 2}")'
SCRIPT = "\n    ".join(
    [FIRST] + [f'print(f"The area is {{math.pi * radius ** {n} / 4 * radius ** {n}}}")' for n in range(3, 9)])
SOURCE = 'import math\n\n\ndef circle_area(radius):\n    """Area of a circle."""\n    \n'
CURSOR = (5, 4)


@pytest_lsp.fixture(
    params=CLIENTS,
    config=ClientServerConfig(server_command=SERVER, server_env=server_env(REPOLSP_FAKE_COMPLETION=SCRIPT)),
)
async def client(request, lsp_client: LanguageClient):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=capabilities(request.param), root_uri="file:///tmp/ws",
        initialization_options={"debounceMs": 0}))
    yield
    await lsp_client.shutdown_session()


async def test_a_suggestion_cut_by_the_limit_ends_at_a_complete_statement(client: LanguageClient):
    # What the server gets from the engine: the default limit stops it inside the second f-string.
    raw = FakeEngine(SCRIPT).generate(GenerationRequest("p", max_new_tokens=64))
    head, _, cut_line = raw.text.partition("\n    ")
    assert raw.finish_reason == "length" and head == FIRST and not cut_line.endswith('")')
    uri = "file:///tmp/ws/shapes.py"
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="python", version=1, text=SOURCE)))
    line, character = CURSOR
    result = None
    for _ in range(100):  # the fake engine loads in the background
        result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
        if result is not None and result.items:
            break
        await asyncio.sleep(0.05)
    assert result is not None and result.items
    text = result.items[0].insert_text
    assert text == FIRST  # the whole first statement, not the second one's head
    lines = SOURCE.split("\n")
    accepted = "\n".join(lines[:line] + [lines[line][:character] + text + lines[line][character:]] + lines[line + 1:])
    assert syntax_error_count(accepted, "python") == 0
