"""The `openai` engine: the server's prompts completed by a team's OpenAI-compatible server.

Any server with `/v1/completions` (vLLM, llama.cpp's `llama-server`, llama-cpp-python, TGI)
gets the prompt the server built, rendered with the FIM template of the remote model's family,
and streams the completion back (server-sent events). The only host this engine talks to is the
configured endpoint. The stdlib's `http.client`, no HTTP library: one POST and a line reader, and
the connection's own socket, which a watcher thread shuts down to end a read blocked in the
engine thread at once ($/cancelRequest, a newer keystroke, the timeout).
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterator

from repolsp.models.prompt import LEFT_TO_RIGHT, TEMPLATES, PromptTemplate, template_for
from repolsp.server.engine.base import Engine, GenerationRequest, GenerationResult, find_stop
from repolsp.server.engine.http_stream import StreamWatch, completions_url, error_text, reason_of

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 3.0  # no tokenizer of the remote model here; code runs 3.5 chars/token or more
MAX_REMOTE_STOPS = 4  # OpenAI's limit; the rest are applied here
CONNECT_TIMEOUT_S = 3.0  # a host that drops packets must not hold the engine thread long
RETRY_AFTER_S = 30.0  # how long the local fallback serves before the endpoint is tried again

# Model-name fragments -> the FIM template of that family (a remote model named like its hub id).
_NAME_TEMPLATES = (
    ("qwen2.5-coder", "qwen2.5-coder"), ("qwen2-coder", "qwen2.5-coder"),
    ("deepseek-coder", "deepseek-coder"), ("starcoder", "starcoder"), ("codellama", "codellama"),
    ("codegemma", "codegemma"),
)


class RemoteError(Exception):
    """The endpoint could not be reached or answered something unusable (a one-line message).

    `kind` ("unreachable", "timeout", "error", "garbage", "broken") decides whether the user is
    told again: once per kind of failure, not once per keystroke."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class _Cancelled(Exception):
    """The request was cancelled while the endpoint was being asked."""


def remote_template(fim_template: str, model: str) -> PromptTemplate:
    """The prompt template for the remote model: the one named, else the one its name implies."""
    if fim_template:
        if fim_template not in TEMPLATES:
            raise ValueError(f"unknown FIM template {fim_template!r}; known: {', '.join(TEMPLATES)}")
        return template_for(fim_template)
    lowered = model.lower()
    for fragment, name in _NAME_TEMPLATES:
        if fragment in lowered.replace("_", "-"):
            return template_for(name)
    return LEFT_TO_RIGHT


class OpenAIEngine:
    """Completions from a remote `/v1/completions`, optionally backed by a local engine.

    While the endpoint fails, requests rendered with the local model's template go to the local
    engine (`fallback`) for `RETRY_AFTER_S`; then the endpoint is tried again.
    """

    name = "openai"

    def __init__(self, endpoint: str, model: str, *, api_key: str = "", timeout_s: float = 10.0,
                 template: PromptTemplate = LEFT_TO_RIGHT, fallback: Engine | None = None,
                 fallback_template: tuple[PromptTemplate, int | None] = (LEFT_TO_RIGHT, None),
                 on_problem: Callable[[str], None] | None = None):
        self.endpoint = endpoint
        self.scheme, self.host, self.port, self.path = completions_url(endpoint)
        self.model_name = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.template = template
        self.fallback = fallback
        self.fallback_template = fallback_template
        self.on_problem = on_problem or (lambda message: None)
        self._down_until = 0.0
        self._problem = ""  # the last problem reported (reported again only when it changes)
        self.remote_requests = 0
        self.remote_errors = 0
        self.remote_cancelled = 0  # streams closed by $/cancelRequest or a newer keystroke
        self.fallback_requests = 0

    # --- routing -------------------------------------------------------------------------
    def _routed_local(self) -> bool:
        return self.fallback is not None and time.monotonic() < self._down_until

    def serving_template(self) -> tuple[PromptTemplate, int | None]:
        """Template and prompt cap for the next prompt: the local model's while it stands in."""
        return self.fallback_template if self._routed_local() else (self.template, None)

    def count_tokens(self, text: str) -> int:
        if self._routed_local():
            return self.fallback.count_tokens(text)
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    def _for_local(self, request: GenerationRequest) -> bool:
        """Whether the request's prompt was rendered for the local model."""
        local_name = self.fallback_template[0].name
        if self.fallback is None or local_name == self.template.name:
            return self._routed_local()
        return request.template == local_name

    # --- generation ----------------------------------------------------------------------
    def generate(self, request: GenerationRequest, cancel: threading.Event | None = None) -> GenerationResult:
        result = GenerationResult(text="")
        for _ in self._pieces(request, cancel, result):
            pass
        return result

    def generate_stream(self, request: GenerationRequest, cancel: threading.Event | None = None) -> Iterator[str]:
        yield from self._pieces(request, cancel, GenerationResult(text=""))

    def _pieces(self, request, cancel, result: GenerationResult) -> Iterator[str]:
        """Pieces of the completion, filling `result`; the local engine where it stands in."""
        if self._for_local(request):
            yield from self._local(request, cancel, result)
            return
        try:
            yield from self._remote(request, cancel, result)
        except RemoteError as exc:
            self._failed(exc)
            result.extra["error"] = str(exc)
            same_template = self.fallback_template[0].name == self.template.name
            if self.fallback is not None and same_template and not result.text:
                yield from self._local(request, cancel, result)
            else:
                result.text, result.finish_reason = "", "error"  # a cut answer is not offered
            return
        self._recovered()

    def _local(self, request, cancel, result: GenerationResult) -> Iterator[str]:
        self.fallback_requests += 1
        local = self.fallback.generate(request, cancel)
        for name in ("text", "prompt_tokens", "new_tokens", "finish_reason", "first_token_ms",
                     "total_ms", "healed"):
            setattr(result, name, getattr(local, name))
        result.extra["engine"] = getattr(self.fallback, "name", "local")
        if local.text:
            yield local.text

    def _remote(self, request: GenerationRequest, cancel, result: GenerationResult) -> Iterator[str]:
        start = time.perf_counter()
        self.remote_requests += 1
        result.prompt_tokens = self.count_tokens(request.prompt)
        try:
            conn, response, watch = self._open(request, cancel, start)
        except _Cancelled:
            self.remote_cancelled += 1
            result.finish_reason = "cancelled"
            return
        text, reason = "", "length"
        try:
            for chunk, finish in self._events(response, watch):
                if chunk:
                    if not result.first_token_ms:
                        result.first_token_ms = (time.perf_counter() - start) * 1000
                    result.new_tokens += 1  # servers send one event per token
                    full, ruled = text + chunk, False
                    cut = find_stop(full, request.stop)
                    if cut >= 0:
                        full, ruled = full[:cut], True
                    elif request.should_stop is not None and request.should_stop(full):
                        ruled = True
                    if len(full) > len(text):
                        yield full[len(text):]
                    text = full
                    if ruled:
                        reason = "rule"  # closing the connection ends the server's decoding
                        break
                if finish:
                    reason = finish
                    break
        except OSError as exc:
            if isinstance(exc, TimeoutError) and not watch.why:
                watch.why = "timeout"
            if not watch.why:
                raise RemoteError("broken", f"{self._where()} broke off the stream ({reason_of(exc)})") from exc
        finally:
            watch.finish()
            conn.close()
            result.text = text
        if watch.why == "cancelled":
            self.remote_cancelled += 1
            log.debug("stream closed by cancellation after %d tokens", result.new_tokens)
            reason = "cancelled"
        elif watch.why == "timeout":
            raise RemoteError("timeout", f"{self._where()} did not finish within {self.timeout_s:g} s")
        # The server's "stop" is its end token (or a template stop string): our "eos".
        result.finish_reason = {"rule": "stop", "length": "length", "cancelled": "cancelled"}.get(reason, "eos")
        result.total_ms = (time.perf_counter() - start) * 1000

    def _connection(self) -> http.client.HTTPConnection:
        timeout = min(self.timeout_s, CONNECT_TIMEOUT_S)
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _open(self, request: GenerationRequest, cancel, start: float):
        """Connect and send the request; (connection, response, the stream's watcher)."""
        body = {"model": self.model_name, "prompt": request.prompt, "max_tokens": request.max_new_tokens,
                "temperature": request.temperature, "stream": True}
        stops = [s for s in request.stop if s][:MAX_REMOTE_STOPS]
        if stops:
            body["stop"] = stops
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        conn = self._connection()
        try:
            conn.connect()
            conn.sock.settimeout(self.timeout_s)
        except OSError as exc:
            conn.close()
            raise RemoteError("unreachable", f"{self._where()} is unreachable ({reason_of(exc)})") from exc
        watch = StreamWatch(conn.sock, cancel, start + self.timeout_s)
        try:
            conn.request("POST", self.path, body=json.dumps(body).encode("utf-8"), headers=headers)
            response = conn.getresponse()
            if response.status != 200:
                raise RemoteError("error", f"{self._where()} answered {error_text(response.status, response.read(4000))}")
        except (OSError, http.client.HTTPException) as exc:
            watch.finish()
            conn.close()
            if watch.why == "cancelled":
                raise _Cancelled() from exc
            if watch.why == "timeout" or isinstance(exc, TimeoutError):
                raise RemoteError("timeout", f"{self._where()} did not answer within {self.timeout_s:g} s") from exc
            if isinstance(exc, OSError):
                raise RemoteError("unreachable", f"{self._where()} is unreachable ({reason_of(exc)})") from exc
            raise RemoteError("garbage", f"{self._where()} answered something that is not HTTP ({exc!r})") from exc
        except RemoteError:
            watch.finish()
            conn.close()
            raise
        return conn, response, watch

    def _events(self, response, watch) -> Iterator[tuple[str, str]]:
        """(text, finish reason or "") per event of the answer; a JSON answer is one event."""
        if "text/event-stream" not in (response.getheader("Content-Type") or ""):
            yield self._choice(response.read(4_000_000))
            return
        while True:
            try:
                line = response.readline(1_000_000)
            except http.client.HTTPException as exc:
                raise RemoteError("broken", f"{self._where()} broke off the stream ({exc!r})") from exc
            if not line:
                if watch.why:
                    return
                raise RemoteError("broken", f"{self._where()} ended the stream without [DONE]")
            line = line.strip()
            if not line.startswith(b"data:"):
                continue  # blank separators, comments (": ping"), event names
            data = line[5:].strip()
            if data == b"[DONE]":
                return
            yield self._choice(data)

    def _choice(self, data: bytes) -> tuple[str, str]:
        """(text, finish reason) of one completion event."""
        try:
            event = json.loads(data)
            if "error" in event:
                error = event["error"]
                detail = error.get("message", error) if isinstance(error, dict) else error
                raise RemoteError("error", f"{self._where()} reported an error: {' '.join(str(detail).split())[:200]}")
            choice = event["choices"][0]
            return str(choice.get("text") or ""), str(choice.get("finish_reason") or "")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            sample = data[:60].decode("utf-8", "replace")
            raise RemoteError("garbage", f"{self._where()} answered something that is not an OpenAI "
                              f"completion ({sample!r})") from exc

    # --- reporting -----------------------------------------------------------------------
    def _where(self) -> str:
        return f"the inference server {self.endpoint}"

    def _failed(self, exc: RemoteError) -> None:
        """Log every failure; tell the user once per kind of failure."""
        self.remote_errors += 1
        message = str(exc)
        if self.fallback is not None:
            self._down_until = time.monotonic() + RETRY_AFTER_S
            message += f"; the local model answers, the server is tried again in {RETRY_AFTER_S:g} s"
        else:
            message += "; no completions until it answers"
        log.warning("%s", message)
        if exc.kind != self._problem:
            self._problem = exc.kind
            self.on_problem(message)

    def _recovered(self) -> None:
        self._down_until = 0.0
        if self._problem:
            self._problem = ""
            self.on_problem(f"{self._where()} answers again")

    # --- the rest of the seam ------------------------------------------------------------
    def reload(self) -> None:
        if self.fallback is not None:
            self.fallback.reload()

    def trim_cache(self) -> None:
        trim = getattr(self.fallback, "trim_cache", None)
        if trim is not None:
            trim()

    def close(self) -> None:
        close = getattr(self.fallback, "close", None)
        if close is not None:
            close()

    def stats(self) -> dict:
        return {
            "engine": self.name, "model": self.model_name, "endpoint": self.endpoint,
            "template": self.template.name, "remoteRequests": self.remote_requests,
            "remoteErrors": self.remote_errors, "remoteCancelled": self.remote_cancelled,
            "fallbackRequests": self.fallback_requests,
            "fallback": getattr(self.fallback, "model_name", None),
            "servingLocally": self._routed_local(),
        }


def api_key_from_env(variable: str) -> str:
    """The API key from the named environment variable ("" when none is named)."""
    if not variable:
        return ""
    key = os.environ.get(variable, "")
    if not key:
        raise ValueError(f"the environment variable {variable} (the API key) is not set")
    return key


def engine_from_config(config, fallback: Engine | None = None,
                       fallback_template: tuple[PromptTemplate, int | None] = (LEFT_TO_RIGHT, None),
                       on_problem: Callable[[str], None] | None = None) -> OpenAIEngine:
    """The engine for `engine: "openai"`; ValueError names the missing or bad setting."""
    if not config.endpoint:
        raise ValueError("the openai engine needs the server's address: --endpoint http://HOST:PORT/v1 "
                         "(setting `endpoint`)")
    if not config.remote_model:
        raise ValueError("the openai engine needs the name the server serves its model under: "
                         "--model NAME (setting `remoteModel`)")
    return OpenAIEngine(
        config.endpoint, config.remote_model, api_key=api_key_from_env(config.api_key_env),
        timeout_s=config.request_timeout_ms / 1000,
        template=remote_template(config.fim_template, config.remote_model),
        fallback=fallback, fallback_template=fallback_template, on_problem=on_problem,
    )
