"""HTTP plumbing of the `openai` engine: the completions URL, one-line error texts, and the
watcher that ends a blocked read by shutting the connection's socket down."""

from __future__ import annotations

import json
import socket
import threading
import time
from urllib.parse import urlsplit

WATCH_S = 0.02  # how often a stream checks for cancellation and its deadline


def completions_url(endpoint: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path of /completions) from `http://HOST:PORT/v1`."""
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint must look like http://HOST:PORT/v1, got {endpoint!r}")
    path = parts.path.rstrip("/")
    path = path.removesuffix("/completions")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, parts.hostname, port, f"{path}/completions"


def error_text(status: int, body: bytes) -> str:
    """One line from an error answer: the server's own message when it sends one."""
    message = body.decode("utf-8", "replace")
    try:
        data = json.loads(message)
        error = data.get("error", data) if isinstance(data, dict) else data
        # OpenAI and vLLM: {"error": {"message"}}; FastAPI (llama-cpp-python): {"detail"}.
        message = str(error.get("message") or error.get("detail") or error) if isinstance(error, dict) else str(error)
    except ValueError:
        pass
    message = " ".join(message.split())[:200]
    return f"HTTP {status}" + (f": {message}" if message else "")


def reason_of(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, TimeoutError):
        return "connection timed out"
    return exc.strerror or str(exc) or type(exc).__name__


class StreamWatch:
    """Closes a stream's socket from the outside when the request is cancelled or its deadline
    passes: a read blocked in the engine thread then returns at once."""

    def __init__(self, sock: socket.socket, cancel: threading.Event | None, deadline: float):
        self.why = ""
        self._done = threading.Event()
        # The socket itself: http.client drops its own reference once a response that ends with
        # the connection is under way.
        self._sock, self._cancel, self._deadline = sock, cancel, deadline
        threading.Thread(target=self._run, name="repolsp-remote-watch", daemon=True).start()

    def _run(self) -> None:
        while not self._done.wait(WATCH_S):
            if self._cancel is not None and self._cancel.is_set():
                self.why = "cancelled"
            elif time.perf_counter() > self._deadline:
                self.why = "timeout"
            else:
                continue
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return

    def finish(self) -> None:
        self._done.set()
