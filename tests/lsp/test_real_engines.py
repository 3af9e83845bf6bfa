"""The real CTranslate2 path end to end: the test's tiny model (offline) and the real default model."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.lsp.client import LanguageClient
from repolsp.models.convert import import_model
from repolsp.models.store import ModelStore

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "server" / "demo_data" / "inventory.py"

# Any attempt to reach the network fails; loopback and Unix sockets keep working.
NO_NETWORK = textwrap.dedent('''
    import socket
    _connect = socket.socket.connect
    def _guarded(self, address):
        if self.family == socket.AF_UNIX or (isinstance(address, tuple) and address[0] in ("127.0.0.1", "::1", "localhost")):
            return _connect(self, address)
        raise OSError("network disabled by the test")
    socket.socket.connect = _guarded
    socket.create_connection = lambda *a, **k: (_ for _ in ()).throw(OSError("network disabled by the test"))
''')


async def _session(env: dict, text: str, line: int, character: int) -> tuple[list, dict, list]:
    client = LanguageClient("test", "1")
    messages: list[str] = []

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def _show(params):
        messages.append(params.message)

    await client.start_io(sys.executable, "-m", "repolsp.server", env=env)
    await client.initialize_async(types.InitializeParams(
        capabilities=types.ClientCapabilities(text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities())),
        root_uri=SAMPLE.parent.as_uri(), initialization_options={"debounceMs": 0}))
    client.initialized(types.InitializedParams())
    status = {}
    for _ in range(600):
        status = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="repolsp.status", arguments=[]))
        if status["state"] != "loading":
            break
        await asyncio.sleep(0.1)
    uri = (SAMPLE.parent / "demo_probe.py").as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
    result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line, character),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    status = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="repolsp.status", arguments=[]))
    await client.shutdown_async(None)
    client.exit(None)
    items = list(result.items) if isinstance(result, types.InlineCompletionList) else list(result or [])
    return items, status, messages


def test_tiny_model_served_through_ctranslate2_with_network_blocked(tiny_hf_model, tmp_path):
    home = tmp_path / "home"
    store = ModelStore(home)
    import_model(str(tiny_hf_model), store, name="tiny", quantization="int8")
    store.use("tiny")
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(NO_NETWORK)
    env = {**os.environ, "REPOLSP_HOME": str(home),
           "PYTHONPATH": os.pathsep.join([str(guard), os.environ.get("PYTHONPATH", "")])}
    for proxy in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        env.pop(proxy, None)  # the server must switch itself offline
    text = "def add(a, b):\n    return a +"
    items, status, messages = asyncio.run(_session(env, text, 1, 16))
    assert status["state"] == "ready", (status, messages)
    assert status["engine"] == "ctranslate2" and status["model"] == "tiny"
    assert status["requests"] == 1
    assert status["engineStats"]["prefixCacheMisses"] >= 1  # the prompt went through the model
    assert isinstance(items, list)


@pytest.mark.real_model
def test_real_default_model_completes_a_python_file(real_store):
    text = SAMPLE.read_text()
    marker = "        return [item for item in self.items.values() if item.quantity < threshold]"
    line = text.split("\n").index(marker)
    cut = len("        return [item for item in self.")
    lines = text.split("\n")
    lines[line] = marker[:cut]
    env = {**os.environ, "REPOLSP_HOME": str(real_store)}
    items, status, messages = asyncio.run(_session(env, "\n".join(lines), line, cut))
    assert status["state"] == "ready", (status, messages)
    assert status["engine"] == "ctranslate2"
    assert items and items[0].insert_text.strip(), status


def test_server_follows_the_store_default_within_seconds(tiny_hf_model, tmp_path):
    """`lsp-train` (or `lsp-models use`) switches the store's default pointer; a running server
    with no explicit model loads the new default by itself."""
    import time

    home = tmp_path / "home"
    store = ModelStore(home)
    for name in ("tiny", "tiny-tuned"):
        import_model(str(tiny_hf_model), store, name=name, quantization="int8")
    store.use("tiny")
    env = {**os.environ, "REPOLSP_HOME": str(home)}

    async def session() -> tuple[str, str, float]:
        client = LanguageClient("test", "1")
        await client.start_io(sys.executable, "-m", "repolsp.server", env=env)
        await client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(), root_uri=SAMPLE.parent.as_uri()))
        client.initialized(types.InitializedParams())

        async def status() -> dict:
            return await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="repolsp.status", arguments=[]))

        first = await status()
        for _ in range(300):
            if first["state"] != "loading":
                break
            await asyncio.sleep(0.1)
            first = await status()
        store.use("tiny-tuned")
        switched = time.monotonic()
        after = first
        while time.monotonic() - switched < 15:
            after = await status()
            if after["model"] == "tiny-tuned" and after["state"] == "ready":
                break
            await asyncio.sleep(0.1)
        waited = time.monotonic() - switched
        await client.shutdown_async(None)
        client.exit(None)
        return first["model"], after["model"], waited

    before, after, waited = asyncio.run(session())
    assert (before, after) == ("tiny", "tiny-tuned")
    assert waited < 5, waited
