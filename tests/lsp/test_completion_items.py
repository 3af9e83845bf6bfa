"""`completionItems`: the model's suggestion in the completion list only where it is not already
ghost text (auto), everywhere (always) or nowhere (never)."""

from __future__ import annotations

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient
from repolsp.server.features.completion import offers_items

from tests.lsp.clients import CLIENTS, SERVER, capabilities, server_env
from tests.lsp.test_inline_completion import _items, _open, _params, _ready

TEXT = "def add(a, b):\n    total = \n"


@pytest_lsp.fixture(
    params=CLIENTS,
    config=ClientServerConfig(server_command=SERVER, server_env=server_env(REPOLSP_FAKE_COMPLETION="x = 1\n")),
)
async def client(request, lsp_client: LanguageClient):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=capabilities(request.param), root_uri="file:///tmp/ws",
        initialization_options={"debounceMs": 0}))
    await _ready(lsp_client)
    lsp_client.kind = request.param
    yield
    await lsp_client.shutdown_session()


async def _completion_items(client: LanguageClient, uri: str) -> list[types.CompletionItem]:
    _open(client, uri, TEXT)
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(1, 12)))
    return list(result.items)


def _set(client: LanguageClient, value) -> None:
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"repolsp": {"completionItems": value}}))


async def test_auto_offers_the_item_only_to_clients_without_inline(client: LanguageClient):
    items = await _completion_items(client, "file:///tmp/ws/auto.py")
    if client.kind == "vscode":
        assert items == []
        # The suggestion is still there, as ghost text.
        inline = _items(await client.text_document_inline_completion_async(_params("file:///tmp/ws/auto.py", 1, 12)))
        assert [i.insert_text for i in inline] == ["x = 1"]
        return
    assert len(items) == 1
    item = items[0]
    assert item.label == "x = 1" and item.text_edit.new_text == "x = 1"
    assert item.sort_text.startswith("~") and item.detail.startswith("repolsp")


@pytest.mark.parametrize("value, offered", [("always", True), ("never", False), ("ALWAYS", True)],
                         ids=["always", "never", "case-insensitive"])
async def test_always_and_never_override_the_client(client: LanguageClient, value, offered):
    _set(client, value)
    items = await _completion_items(client, f"file:///tmp/ws/{value}.py")
    assert [i.label for i in items] == (["x = 1"] if offered else [])


async def test_a_bad_value_is_named_and_auto_kept(client: LanguageClient):
    _set(client, "sometimes")
    items = await _completion_items(client, "file:///tmp/ws/bad.py")
    assert len(items) == (0 if client.kind == "vscode" else 1)
    status = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="repolsp.status", arguments=[]))
    assert status["config"]["completionItems"] == "auto"
    assert any("completionItems" in m.message for m in client.messages)


@pytest.mark.parametrize("setting, has_inline, offered", [
    ("auto", True, False), ("auto", False, True),
    ("always", True, True), ("always", False, True),
    ("never", True, False), ("never", False, False),
], ids=["auto-inline", "auto-plain", "always-inline", "always-plain", "never-inline", "never-plain"])
def test_completion_items_setting(setting, has_inline, offered):
    assert offers_items(setting, has_inline) is offered
