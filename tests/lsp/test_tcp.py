"""`lsp-serve --tcp` listens on loopback by default and speaks LSP there."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import psutil

from tests.lsp.clients import server_env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_tcp_listens_on_loopback_only():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "repolsp.server", "--tcp", "--port", str(port),
                             "--engine", "fake"], env=server_env(), stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        conn = None
        while time.monotonic() < deadline:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        assert conn is not None, "server did not listen"
        addresses = {c.laddr.ip for c in psutil.Process(proc.pid).net_connections("tcp")
                     if c.status == psutil.CONN_LISTEN}
        assert addresses == {"127.0.0.1"}
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                           "params": {"capabilities": {}, "processId": None, "rootUri": None}}).encode()
        conn.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        conn.settimeout(20)
        data = b""
        while b"inlineCompletionProvider" not in data:
            chunk = conn.recv(65536)
            assert chunk, "connection closed"
            data += chunk
        conn.close()
    finally:
        proc.kill()
        proc.wait()
