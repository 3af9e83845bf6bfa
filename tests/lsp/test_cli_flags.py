"""`lsp-serve` takes the flags LSP clients put on its command line (vscode-languageclient's stdio
transport adds `--stdio`; `--clientProcessId` ties the server's life to the editor's)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from repolsp.server.parent_watch import process_alive, start_time

from tests.editors.lsp_stdio import StdioClient
from tests.lsp.clients import server_env

SERVE = [sys.executable, "-m", "repolsp.server", "--engine", "fake"]


def _wait_exit(proc: subprocess.Popen, timeout_s: float) -> int | None:
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None


@pytest.mark.parametrize("pid_args", [lambda pid: [f"--clientProcessId={pid}"],
                                      lambda pid: ["--clientProcessId", str(pid)]],
                         ids=["equals", "separate"])
def test_stdio_server_answers_then_exits_when_the_client_process_dies(tmp_path: Path, pid_args):
    editor = subprocess.Popen(["sleep", "60"])
    client = StdioClient([*SERVE, "--stdio", *pid_args(editor.pid)], cwd=tmp_path, env=server_env())
    try:
        init = client.request("initialize", {"processId": editor.pid, "rootUri": None, "capabilities": {}})
        assert "inlineCompletionProvider" in init["result"]["capabilities"], init
        client.notify("initialized", {})
        time.sleep(1.5)
        assert client.proc.poll() is None, f"exited while the client lives:\n{client.stderr}"
        editor.kill()
        editor.wait()
        # stdin stays open (this test holds it): only the pid watch can end the server.
        assert _wait_exit(client.proc, 10) == 0, client.stderr
        assert "client process" in client.stderr and "gone" in client.stderr
    finally:
        editor.kill()
        client.close()


def test_a_client_pid_that_is_already_gone_ends_the_server(tmp_path: Path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    client = StdioClient([*SERVE, f"--clientProcessId={dead.pid}"], cwd=tmp_path, env=server_env())
    try:
        assert _wait_exit(client.proc, 20) == 0, client.stderr
    finally:
        client.close()


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--pipe=/tmp/repolsp-test.sock"], "--pipe is not supported; use stdio (the default) or --tcp"),
    (["--socket=5007"], "--socket is not supported; use stdio (the default) or --tcp"),
    (["--stdio", "--tcp"], "not allowed with argument --stdio"),
    (["--clientProcessId=abc"], "invalid int value: 'abc'"),
], ids=["unknown", "pipe", "socket", "stdio-and-tcp", "bad-pid"])
def test_unsupported_flags_get_one_line_and_exit_code_2(args, message):
    result = subprocess.run([*SERVE, *args], env=server_env(), capture_output=True, text=True, timeout=60, check=False,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lsp-serve: error: ") and message in lines[0], result.stderr
    assert result.stdout == ""  # stdout is the protocol channel


def test_a_reused_pid_is_not_the_client():
    me = psutil.Process()
    assert process_alive(me.pid, start_time(me.pid))
    assert not process_alive(me.pid, me.create_time() - 100)  # same pid, another process's start
    assert start_time(2**22 + 7) is None  # above Linux's pid_max

