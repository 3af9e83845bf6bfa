"""A minimal LSP client over stdio for handshake checks (Content-Length framing, JSON-RPC)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from queue import Empty, Queue


class StdioClient:
    """Starts a server command and exchanges JSON-RPC messages with it; records notifications."""

    def __init__(self, cmd: list[str], *, cwd: Path, env: dict[str, str]):
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.notifications: list[dict] = []
        self._responses: Queue = Queue()
        self._next_id = 0
        self._stderr: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self._stderr.extend(self.proc.stderr), daemon=True).start()

    @property
    def stderr(self) -> str:
        return b"".join(self._stderr).decode("utf-8", "replace")

    def _send(self, message: dict) -> None:
        body = json.dumps(message).encode("utf-8")
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def _read(self) -> None:
        stream = self.proc.stdout
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value.strip())
            message = json.loads(stream.read(length))
            if "id" in message and "method" in message:
                # Requests from the server (progress tokens, configuration, registrations).
                result = [None] * len(message.get("params", {}).get("items", [])) \
                    if message["method"] == "workspace/configuration" else None
                self._send({"jsonrpc": "2.0", "id": message["id"], "result": result})
            elif "id" in message:
                self._responses.put(message)
            else:
                self.notifications.append(message)

    def request(self, method: str, params: dict | None = None, timeout_s: float = 30) -> dict:
        """Sends a request and returns its response message (with `result` or `error`)."""
        self._next_id += 1
        request_id = self._next_id
        self._send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                response = self._responses.get(timeout=max(0.01, deadline - time.monotonic()))
            except Empty:
                raise TimeoutError(f"{method}: no response in {timeout_s} s; stderr:\n{self.stderr}") from None
            if response["id"] == request_id:
                return response

    def notify(self, method: str, params: dict | None = None) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def shutdown(self, timeout_s: float = 10) -> int:
        """shutdown + exit; returns the exit code (kills the server if it does not exit)."""
        try:
            self.request("shutdown", None, timeout_s)
            self.notify("exit")
            return self.proc.wait(timeout=timeout_s)
        except (TimeoutError, subprocess.TimeoutExpired, BrokenPipeError):
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
            return -9

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
