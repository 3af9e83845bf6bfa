"""`lsp-serve --engine openai` against a real OpenAI-compatible server on loopback:
llama-cpp-python's server on the default model's GGUF, the editor side over raw stdio.

Inline completions come back through the stream, a stop rule and `$/cancelRequest` close the
stream (llama.cpp's own decode counts show it stopped), and with `--fallback-to-local` the local
CTranslate2 model answers while the endpoint is down. Nothing but loopback is reachable.
"""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from tests.lsp.openai_servers import LlamaServer, LspSession, default_gguf, free_port

# Any connection beyond loopback fails (the server's own HTTP client included).
NO_NETWORK = textwrap.dedent('''
    import socket
    _LOOPBACK = ("127.0.0.1", "::1", "localhost")
    _connect, _create = socket.socket.connect, socket.create_connection
    def _guarded(self, address):
        if self.family == socket.AF_UNIX or (isinstance(address, tuple) and address[0] in _LOOPBACK):
            return _connect(self, address)
        raise OSError("network disabled by the test")
    def _guarded_create(address, *args, **kwargs):
        if address[0] in _LOOPBACK:
            return _create(address, *args, **kwargs)
        raise OSError("network disabled by the test")
    socket.socket.connect = _guarded
    socket.create_connection = _guarded_create
''')

pytestmark = pytest.mark.real_model

ADD = "def add(a, b):\n    return"


@pytest.fixture(scope="module")
def llama(real_store, tmp_path_factory):
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"llama-cpp-python[server] is not installed ({exc}); `make venv` builds it")
    server = LlamaServer(default_gguf(real_store), tmp_path_factory.mktemp("llama") / "server.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _env(tmp_path: Path, home: Path) -> dict[str, str]:
    guard = tmp_path / "guard"
    guard.mkdir(exist_ok=True)
    (guard / "sitecustomize.py").write_text(NO_NETWORK)
    return {**os.environ, "REPOLSP_HOME": str(home), "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join([str(guard), os.environ.get("PYTHONPATH", "")])}


def _session(tmp_path: Path, endpoint: str, home: Path, *extra: str, options: dict | None = None) -> LspSession:
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    args = ["--engine", "openai", "--endpoint", endpoint, "--model", "gemma3-270m", "--log-level", "debug",
            "--log-file", str(tmp_path / "server.log"), *extra]
    # A loaded 2-core machine decodes a few tokens a second: a generous timeout.
    return LspSession(args, workspace, _env(tmp_path, home),
                      options={"requestTimeoutMs": 120_000, **(options or {})})


def _items(answer: dict) -> list[str]:
    result = answer.get("result") or {}
    return [item["insertText"] for item in result.get("items", [])]


def test_inline_completion_streams_from_the_server_and_a_stop_rule_closes_the_stream(llama, tmp_path):
    lsp = _session(tmp_path, llama.endpoint, tmp_path / "home")
    try:
        status = lsp.ready()
        assert (status["state"], status["engine"], status["model"]) == ("ready", "openai", "gemma3-270m")
        uri = (tmp_path / "ws" / "calc.py").as_uri()
        lsp.open(uri, ADD)
        finished = llama.finished()
        items = _items(lsp.wait(lsp.inline(uri, 1, 10), 120))
        assert items and items[0].strip() == "a + b", items
        stats = lsp.status()["engineStats"]
        assert stats["remoteRequests"] == 1 and stats["remoteErrors"] == 0
        # Single-line mode stops at the line's end, where the stream is closed: the server's
        # generation never reaches its 48 tokens (the model goes on, "\n\ndef sub(a, b)"). Had it
        # run on, the next request would wait for it and two generations would finish.
        assert llama.complete(ADD, 8).startswith(" a + b\n")
        assert llama.finished() == finished + 1
    finally:
        lsp.close()


def test_cancel_request_closes_the_stream(llama, tmp_path):
    lsp = _session(tmp_path, llama.endpoint, tmp_path / "home",
                   options={"maxNewTokens": {"singleLine": 500}})
    try:
        lsp.ready()
        uri = (tmp_path / "ws" / "nums.py").as_uri()
        text = "NUMBERS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"
        lsp.open(uri, text)
        finished = llama.finished()
        request = lsp.inline(uri, 0, len(text))
        time.sleep(1.5)  # the stream is under way (counting on to 500 tokens takes far longer)
        lsp.client.notify("$/cancelRequest", {"id": request})
        cancelled_at = time.monotonic()
        answer = lsp.wait(request, 30)
        assert time.monotonic() - cancelled_at < 5
        assert "error" in answer or not _items(answer)
        # The answer goes out at once; the engine thread closes the stream within its next poll.
        deadline = time.monotonic() + 5
        while (stats := lsp.status()["engineStats"])["remoteCancelled"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stats["remoteCancelled"] == 1 and stats["remoteErrors"] == 0
        # The cancelled generation never finished (its 500 tokens), and the server is free.
        assert llama.complete(ADD, 4)
        assert llama.finished() == finished + 1
    finally:
        lsp.close()


def test_the_local_model_answers_while_the_endpoint_is_down(real_store, tmp_path):
    down = f"http://127.0.0.1:{free_port()}/v1"
    lsp = _session(tmp_path, down, real_store, "--fallback-to-local")
    try:
        status = lsp.ready(300)
        assert status["state"] == "ready" and status["engineStats"]["fallback"] == "gemma3-270m"
        uri = (tmp_path / "ws" / "calc.py").as_uri()
        lsp.open(uri, ADD)
        # Same template (left-to-right) both sides: the failed request itself is answered locally.
        items = _items(lsp.wait(lsp.inline(uri, 1, 10), 120))
        assert items and "a + b" in items[0], items
        stats = lsp.status()["engineStats"]
        assert stats["fallbackRequests"] == 1 and stats["servingLocally"] is True
        [message] = [m for m in lsp.messages() if "inference server" in m]
        assert f"{down} is unreachable (connection refused)" in message and "local model answers" in message
    finally:
        lsp.close()
