"""Bad input gets a clear answer and never a crash."""

from __future__ import annotations

import asyncio
import json
import re
import select
import subprocess
import sys
import time

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.lsp.clients import CLIENTS, SERVER, capabilities, server_env
from tests.lsp.test_inline_completion import _items, _open, _params, _ready, _status


@pytest_lsp.fixture(
    params=CLIENTS,
    config=ClientServerConfig(server_command=SERVER, server_env=server_env(REPOLSP_FAKE_COMPLETION="value\n")),
)
async def client(request, lsp_client: LanguageClient):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=capabilities(request.param), root_uri="file:///tmp/ws",
        initialization_options={"debounceMs": 0}))
    await _ready(lsp_client)
    yield
    await lsp_client.shutdown_session()


async def _alive(client) -> None:
    assert (await _status(client))["state"] == "ready"


async def test_unknown_uri_is_empty(client: LanguageClient):
    result = await client.text_document_inline_completion_async(_params("file:///nope.py", 0, 0))
    assert _items(result) == []
    await _alive(client)


async def test_position_past_end_is_clamped(client: LanguageClient):
    uri = "file:///tmp/ws/p.py"
    _open(client, uri, "x = ")
    for line, character in [(0, 999), (50, 3), (0, 4)]:
        result = await client.text_document_inline_completion_async(_params(uri, line, character))
        assert _items(result)[0].insert_text == "value"
    await _alive(client)


async def test_empty_file(client: LanguageClient):
    uri = "file:///tmp/ws/empty.py"
    _open(client, uri, "")
    await client.text_document_inline_completion_async(_params(uri, 0, 0))
    await _alive(client)


async def test_binary_like_and_non_utf8_content(client: LanguageClient):
    uri = "file:///tmp/ws/bin.py"
    # What an editor sends for a binary / mis-decoded file: NULs, replacement chars, lone
    # surrogate-ish garbage and emoji.
    _open(client, uri, "\x00\x01\x02\ufffd\ufffd x = 'é😀'\n\x00y = ")
    result = await client.text_document_inline_completion_async(_params(uri, 1, 5))
    # After `y = ` the fake model's answer is offered as it is, with nothing of the binary
    # content leaking into it.
    assert [item.insert_text for item in _items(result)] == ["value"]
    await _alive(client)


async def test_huge_file_still_answers(client: LanguageClient):
    uri = "file:///tmp/ws/huge.py"
    text = ("def f(x):\n    return x\n" * 260_000) + "y = "  # about 6 MB
    _open(client, uri, text)
    last = text.count("\n")
    result = await client.text_document_inline_completion_async(_params(uri, last, 4))
    assert _items(result)[0].insert_text == "value"
    await _alive(client)


async def test_request_flood(client: LanguageClient):
    uri = "file:///tmp/ws/flood.py"
    _open(client, uri, "x = \n")
    results = await asyncio.wait_for(asyncio.gather(*[
        client.text_document_inline_completion_async(_params(uri, 0, 4)) for _ in range(200)
    ]), timeout=30)
    assert len(results) == 200
    assert any(_items(r) for r in results)
    await _alive(client)


def _frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _read_messages(stream, timeout_s: float, until) -> list[dict]:
    """Messages from the server until `until(messages)` or the deadline (never blocks past it)."""
    deadline, buffer, messages = time.monotonic() + timeout_s, b"", []
    while time.monotonic() < deadline and not until(messages):
        ready, _, _ = select.select([stream], [], [], 0.2)
        if ready:
            buffer += stream.read1(1 << 16)
        while b"\r\n\r\n" in buffer:
            head, rest = buffer.split(b"\r\n\r\n", 1)
            length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
            if len(rest) < length:
                break
            messages.append(json.loads(rest[:length]))
            buffer = rest[length:]
    return messages


def test_malformed_messages_get_errors_not_a_crash():
    proc = subprocess.Popen(SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=server_env())
    try:
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"capabilities": {}, "processId": None, "rootUri": None}}
        bad_params = {"jsonrpc": "2.0", "id": 2, "method": "textDocument/inlineCompletion",
                      "params": {"bogus": True}}
        unknown = {"jsonrpc": "2.0", "id": 3, "method": "repolsp/noSuchMethod", "params": {}}
        status = {"jsonrpc": "2.0", "id": 4, "method": "workspace/executeCommand",
                  "params": {"command": "repolsp.status", "arguments": []}}
        for body in (b"{this is not json", json.dumps(init).encode(),
                     json.dumps(bad_params).encode(), json.dumps(unknown).encode(),
                     json.dumps(status).encode()):
            proc.stdin.write(_frame(body))
        proc.stdin.flush()
        messages = _read_messages(proc.stdout, 20, lambda ms: any(m.get("id") == 4 for m in ms))
        by_id = {m["id"]: m for m in messages if "id" in m}
        assert by_id[None]["error"]["code"] == -32700  # bad JSON: a parse error, id null
        assert "inlineCompletionProvider" in by_id[1]["result"]["capabilities"]
        assert by_id[2]["error"]["code"] == -32602  # answered, naming the missing field
        assert "textDocument" in by_id[2]["error"]["message"]
        assert by_id[3]["error"]["code"] == -32601  # method not found
        assert by_id[4]["result"]["engine"] == "fake"  # still serving
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


@pytest_lsp.fixture(
    params=CLIENTS,
    config=ClientServerConfig(
        server_command=[sys.executable, "-m", "repolsp.server", "--model", "not-installed"],
        server_env=server_env()),
)
async def no_model_client(request, lsp_client: LanguageClient):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=capabilities(request.param), root_uri="file:///tmp/ws"))
    yield
    await lsp_client.shutdown_session()


async def test_missing_model_says_which_command_fixes_it(no_model_client: LanguageClient):
    client = no_model_client
    status = await _ready(client)
    assert status["state"] == "error"
    await asyncio.sleep(0.1)
    assert any("lsp-models pull" in m.message for m in client.messages), client.messages
    uri = "file:///tmp/ws/m.py"
    _open(client, uri, "x = ")
    assert _items(await client.text_document_inline_completion_async(_params(uri, 0, 4))) == []
