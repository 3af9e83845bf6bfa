"""Inline completion, completion, cache, debounce, cancellation and configuration, end to end."""

from __future__ import annotations

import asyncio
import time

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.lsp.clients import CLIENTS, SERVER, capabilities, server_env

BODY = "x = 1\n    y = 2\n    return x + y\n\ndef other():\n    pass\n"


def _params(uri, line, character, automatic=False):
    kind = types.InlineCompletionTriggerKind.Automatic if automatic else types.InlineCompletionTriggerKind.Invoked
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=kind),
    )


def _open(client: LanguageClient, uri: str, text: str, language="python", version=1):
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)))


async def _status(client) -> dict:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="repolsp.status", arguments=[]))


async def _ready(client) -> dict:
    for _ in range(100):
        status = await _status(client)
        if status["state"] != "loading":
            return status
        await asyncio.sleep(0.05)
    return status


def _items(result):
    if result is None:
        return []
    return list(result.items if isinstance(result, types.InlineCompletionList) else result)


@pytest_lsp.fixture(
    params=CLIENTS,
    config=ClientServerConfig(server_command=SERVER, server_env=server_env(REPOLSP_FAKE_COMPLETION=BODY)),
)
async def client(request, lsp_client: LanguageClient):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=capabilities(request.param), root_uri="file:///tmp/ws",
        initialization_options={"debounceMs": 0}))
    status = await _ready(lsp_client)
    assert status["state"] == "ready", status
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(
    params=CLIENTS,
    config=ClientServerConfig(server_command=SERVER, server_env=server_env(
        REPOLSP_FAKE_COMPLETION="x = x + 1\n    " * 100, REPOLSP_FAKE_DELAY_S="0.05")),
)
async def slow_client(request, lsp_client: LanguageClient):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=capabilities(request.param), root_uri="file:///tmp/ws",
        initialization_options={"debounceMs": 150}))
    await _ready(lsp_client)
    yield
    await lsp_client.shutdown_session()


async def test_status_reports_the_engine(client: LanguageClient):
    result = await _status(client)
    assert result["engine"] == "fake" and result["state"] == "ready"
    assert result["config"]["debounceMs"] == 0  # the initializationOptions reached the server


async def test_single_line_mid_line(client: LanguageClient):
    uri = "file:///tmp/ws/a.py"
    _open(client, uri, "def add(a, b):\n    total = \n")
    items = _items(await client.text_document_inline_completion_async(_params(uri, 1, 12)))
    assert len(items) == 1
    assert items[0].insert_text == "x = 1"  # only the first line of the generation
    assert items[0].range.start == types.Position(line=1, character=12)
    assert items[0].command.command == "repolsp.acceptCompletion"


async def test_multi_line_stops_at_block_end(client: LanguageClient):
    uri = "file:///tmp/ws/b.py"
    _open(client, uri, "def compute():\n    \n")
    items = _items(await client.text_document_inline_completion_async(_params(uri, 1, 4)))
    assert items and items[0].insert_text == "x = 1\n    y = 2\n    return x + y"


async def test_typing_through_is_answered_from_cache(client: LanguageClient):
    uri = "file:///tmp/ws/d.py"
    _open(client, uri, "def add(a, b):\n    total = \n")
    first = _items(await client.text_document_inline_completion_async(_params(uri, 1, 12)))
    assert first[0].insert_text == "x = 1"
    calls = (await _status(client))["engineStats"]["calls"]
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        [types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(1, 12), types.Position(1, 12)), text="x =")]))
    second = _items(await client.text_document_inline_completion_async(_params(uri, 1, 15)))
    assert second[0].insert_text == " 1"
    status = await _status(client)
    assert status["engineStats"]["calls"] == calls  # the model was not asked again
    assert status["cacheHits"] == 1


async def test_acceptance_is_recorded(client: LanguageClient):
    uri = "file:///tmp/ws/e.py"
    _open(client, uri, "def add(a, b):\n    total = \n")
    items = _items(await client.text_document_inline_completion_async(_params(uri, 1, 12)))
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=items[0].command.command, arguments=items[0].command.arguments))
    assert result == {"recorded": True}
    again = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="repolsp.acceptCompletion", arguments=items[0].command.arguments))
    assert again == {"recorded": False}


async def test_configuration_change_applies_and_bad_values_are_named(client: LanguageClient):
    uri = "file:///tmp/ws/f.py"
    _open(client, uri, "def compute():\n    \n")
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"repolsp": {"maxNewTokens": {"multiLine": 5}, "temperature": "hot"}}))
    items = _items(await client.text_document_inline_completion_async(_params(uri, 1, 4)))
    assert items[0].insert_text == "x = 1"  # five fake tokens: "x", " ", "=", " ", "1"
    status = await _status(client)
    assert status["config"]["maxNewTokens"]["multiLine"] == 5
    assert status["config"]["temperature"] == 0.0
    await asyncio.sleep(0.1)
    assert any("temperature" in m.message for m in client.messages)


async def test_disabled_language_gets_nothing(client: LanguageClient):
    uri = "file:///tmp/ws/g.py"
    _open(client, uri, "def add(a, b):\n    total = \n")
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"repolsp": {"enabledLanguages": ["go"]}}))
    items = _items(await client.text_document_inline_completion_async(_params(uri, 1, 12)))
    assert list(items) == []


async def test_debounce_collapses_a_burst(slow_client: LanguageClient):
    client = slow_client
    uri = "file:///tmp/ws/h.py"
    _open(client, uri, "def add(a, b):\n    total = \n")
    tasks = [client.text_document_inline_completion_async(_params(uri, 1, 12, automatic=True))
             for _ in range(5)]
    results = await asyncio.gather(*tasks)
    answered = [r for r in results if _items(r)]
    assert len(answered) == 1 and _items(results[-1])  # only the newest reaches the model
    status = await _status(client)
    assert status["engineStats"]["calls"] == 1
    assert status["superseded"] == 4


async def test_newer_request_cancels_older(slow_client: LanguageClient):
    client = slow_client
    uri = "file:///tmp/ws/i.py"
    _open(client, uri, "def compute():\n    \n")
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"repolsp": {"debounceMs": 0, "maxNewTokens": {"multiLine": 100}}}))
    started = time.perf_counter()
    first = asyncio.ensure_future(client.text_document_inline_completion_async(_params(uri, 1, 4)))
    await asyncio.sleep(0.3)  # the first is decoding (50 ms per token) by now
    second = asyncio.ensure_future(client.text_document_inline_completion_async(_params(uri, 1, 4)))
    first_result, second_result = await asyncio.gather(first, second)
    assert _items(first_result) == []
    assert _items(second_result)
    status = await _status(client)
    assert status["cancelled"] >= 1
    # Each takes 100 tokens x 50 ms = 5 s; run one after the other they would take 10 s.
    assert time.perf_counter() - started < 8


async def test_cancel_request_stops_generation(slow_client: LanguageClient):
    client = slow_client
    uri = "file:///tmp/ws/j.py"
    _open(client, uri, "def compute():\n    \n")
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"repolsp": {"debounceMs": 0, "maxNewTokens": {"multiLine": 400}}}))
    request_id = "cancel-me"
    future = client.protocol.send_request(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, _params(uri, 1, 4), msg_id=request_id)
    await asyncio.sleep(0.3)
    started = time.perf_counter()
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=request_id))
    while not future.done() and time.perf_counter() - started < 4:
        await asyncio.sleep(0.05)
    # Answered (with the cancellation error) long before the 5 s generation would end.
    assert future.done()
    assert "cancel" in repr(future.exception()).lower()
    status = await _status(client)
    assert status["cancelled"] >= 1
