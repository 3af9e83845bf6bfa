"""JSON-RPC conformance over raw stdio, the way editors talk: each refusal has the code the
specification gives, names what was wrong, and is logged as one warning line."""

from __future__ import annotations

import sys
import time

import pytest

from tests.editors.lsp_stdio import StdioClient
from tests.lsp.clients import server_env
from tests.lsp.fuzz_corpus import PROBE_TEXT, frame

SERVER = [sys.executable, "-m", "repolsp.server", "--engine", "fake", "--log-level", "info"]
INIT = {"processId": None, "rootUri": None, "capabilities": {
    "textDocument": {"inlineCompletion": {}, "codeAction": {"resolveSupport": {"properties": ["edit"]},
                                                            "codeActionLiteralSupport": {
                                                                "codeActionKind": {"valueSet": ["refactor"]}}}}}}


@pytest.fixture
def server(tmp_path):
    # Slow fake tokens (about 2 s an answer) keep a request in flight long enough to cancel it.
    client = StdioClient(SERVER, cwd=tmp_path, env=server_env(
        REPOLSP_FAKE_COMPLETION="value = 1\n" * 40, REPOLSP_FAKE_DELAY_S="0.05"))
    yield client
    client.close()


def _init(client: StdioClient) -> None:
    assert "capabilities" in client.request("initialize", INIT)["result"]
    client.notify("initialized", {})


def _open(client: StdioClient, uri: str = "file:///tmp/ws/p.py") -> str:
    client.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": PROBE_TEXT}})
    return uri


def _collect(client: StdioClient, last_id, settle_s: float = 0.0, timeout_s: float = 30) -> list[dict]:
    """Every response until the one with `last_id`, then whatever comes in `settle_s` more.
    (StdioClient.request drops the responses it is not waiting for.)"""
    answers, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline and not any(a.get("id") == last_id for a in answers):
        answers.append(client._responses.get(timeout=max(0.01, deadline - time.monotonic())))
    time.sleep(settle_s)
    while not client._responses.empty():
        answers.append(client._responses.get())
    return answers


STATUS = {"jsonrpc": "2.0", "id": "status", "method": "workspace/executeCommand",
          "params": {"command": "repolsp.status"}}


def _error(response: dict) -> tuple[int, str]:
    return response["error"]["code"], response["error"]["message"]


def test_requests_before_initialize_and_a_second_initialize_are_refused(server):
    assert _error(server.request("textDocument/hover", {}))[0] == -32002
    _init(server)
    code, message = _error(server.request("initialize", INIT))
    assert code == -32600 and "initialize" in message
    assert "result" in server.request("workspace/executeCommand", {"command": "repolsp.status"})


def test_unserved_method_and_bad_params_name_the_problem(server):
    _init(server)
    uri = _open(server)
    code, message = _error(server.request("textDocument/hover", {"textDocument": 5}))
    assert code == -32601 and "textDocument/hover" in message  # not served, whatever the params
    code, message = _error(server.request("textDocument/inlineCompletion", {
        "textDocument": {"uri": uri}, "position": {"line": "one", "character": 0},
        "context": {"triggerKind": 1}}))
    assert code == -32602 and "$.params.position.line" in message
    code, message = _error(server.request("textDocument/codeAction", {"textDocument": {"uri": uri}}))
    assert code == -32602 and "range" in message
    code, _ = _error(server.request("workspace/executeCommand", {"command": "repolsp.noSuch"}))
    assert code == -32602
    # A string is not an argument list (the converter would pass each character as one).
    code, message = _error(server.request("workspace/executeCommand", {
        "command": "repolsp.useModel", "arguments": "evil"}))
    assert code == -32602 and "$.params.arguments" in message


def test_a_cancelled_request_is_answered_once_with_request_cancelled(server):
    _init(server)
    uri = _open(server)
    server._send({"jsonrpc": "2.0", "id": "slow", "method": "textDocument/inlineCompletion", "params": {
        "textDocument": {"uri": uri}, "position": {"line": PROBE_TEXT.count("\n"), "character": 8},
        "context": {"triggerKind": 1}}})
    time.sleep(0.3)  # the engine is generating
    server.notify("$/cancelRequest", {"id": "slow"})
    server._send(STATUS)
    # Long enough for the fake engine to finish (2 s): a second answer would show up here.
    answers = _collect(server, "slow", settle_s=3)
    assert any(a.get("id") == "status" and "result" in a for a in answers)
    slow = [a for a in answers if a.get("id") == "slow"]
    assert len(slow) == 1 and slow[0]["error"]["code"] == -32800


def test_parse_errors_and_non_objects_get_null_id_errors_and_one_warning_line(server):
    _init(server)
    for body in (b"{oops", b"[]", b'{"jsonrpc": "2.0", "id": 1.5, "method": "shutdown"}'):
        server.proc.stdin.write(frame(body))
    server.proc.stdin.flush()
    server.notify("textDocument/didChange", {"textDocument": {"uri": 7}})  # bad notification: no answer
    server._send(STATUS)
    answers = _collect(server, "status")
    assert "result" in answers[-1]
    nulls = answers[:-1]
    assert [(n["id"], n["error"]["code"]) for n in nulls] == [(None, -32700), (None, -32600), (None, -32600)]
    time.sleep(0.3)
    stderr = server.stderr
    assert "Traceback" not in stderr
    refused = [line for line in stderr.splitlines() if "repolsp.protocol" in line]
    assert len(refused) == 4 and all(" WARNING " in line for line in refused)


def test_disabled_code_action_uses_the_real_lsprotocol_type(server):
    """codeAction/resolve of an action whose document is gone answers a disabled action."""
    _init(server)
    response = server.request("codeAction/resolve", {
        "title": "Generate docstring", "data": {"action": "docstring", "uri": "file:///tmp/ws/gone.py",
                                                "position": {"line": 0, "character": 0}}})
    assert "not open" in response["result"]["disabled"]["reason"]
    assert "Traceback" not in server.stderr


def test_requests_after_shutdown_are_refused_and_exit_is_clean(server):
    _init(server)
    assert server.request("shutdown", None)["result"] is None
    assert _error(server.request("textDocument/completion", {}))[0] == -32600
    server.notify("exit")
    assert server.proc.wait(timeout=10) == 0


def test_a_lone_surrogate_is_logged_to_the_log_file_without_a_logging_error(tmp_path):
    log_file = tmp_path / "server.log"
    client = StdioClient([*SERVER, "--log-file", str(log_file)], cwd=tmp_path, env=server_env())
    try:
        _init(client)
        response = client.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": "file:///tmp/\ud800.py"}, "position": {"line": 0, "character": 0},
            "context": {"triggerKind": 1}})
        assert "result" in response
        assert client.shutdown() == 0
    finally:
        client.close()
    assert "\\ud800.py" in log_file.read_text(encoding="utf-8")
    assert "Logging error" not in client.stderr and "Traceback" not in client.stderr
