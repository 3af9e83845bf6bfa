"""JSON-RPC conformance in one place: every request gets exactly one answer.

pygls 2.1 leaves several requests unanswered: a body that is not JSON, a message that is not
JSON-RPC, and params that do not deserialize ("Unable to deserialize message" is logged with a
traceback and nothing is sent, so the editor waits forever). It also serves requests before
`initialize`, runs a second `initialize`, and logs client mistakes as tracebacks at ERROR.

`RepolspProtocol` checks each raw message before pygls sees it and answers what pygls would
drop with the code the specification gives (-32700, -32600, -32601, -32602, -32002); only
well-formed messages reach pygls' dispatch. Client mistakes are one WARNING line each;
tracebacks are kept for faults of the server itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from concurrent.futures import Future
from typing import Any

import cattrs
from lsprotocol import types
from pygls.exceptions import FeatureNotificationError, JsonRpcException, JsonRpcInvalidParams
from pygls.protocol import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    LanguageServerProtocol,
    lsp_method,
)

log = logging.getLogger("repolsp.protocol")

PARSE_ERROR = types.ErrorCodes.ParseError.value  # -32700
INVALID_REQUEST = types.ErrorCodes.InvalidRequest.value  # -32600
METHOD_NOT_FOUND = types.ErrorCodes.MethodNotFound.value  # -32601
INVALID_PARAMS = types.ErrorCodes.InvalidParams.value  # -32602
SERVER_NOT_INITIALIZED = types.ErrorCodes.ServerNotInitialized.value  # -32002
REQUEST_CANCELLED = types.LSPErrorCodes.RequestCancelled.value  # -32800
# Codes that mean "the client sent something wrong": a warning line, never a traceback.
CLIENT_ERROR_CODES = frozenset({PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS,
                                SERVER_NOT_INITIALIZED, REQUEST_CANCELLED})
# Notifications that are always delivered: `exit` may come at any time, and pygls answers
# `$/cancelRequest` itself without a registered handler.
ALWAYS_DELIVERED = frozenset({types.EXIT, types.CANCEL_REQUEST})
# Array params that the converter also accepts as a string (a str is a Sequence): pygls would
# then pass each character as a command argument.
ARRAY_PARAMS = {types.WORKSPACE_EXECUTE_COMMAND: "arguments"}
MAX_REASON_CHARS = 300  # a hostile message must not turn one log line into megabytes


class ClientMistake(Exception):
    """A message the server refuses; `code` is its JSON-RPC error code."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def request_id(message: Any) -> int | str | None:
    """The message's id when it is a valid JSON-RPC id (integer or string), else None."""
    value = message.get("id") if isinstance(message, dict) else None
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    return None


def classify(message: Any) -> str:
    """"request", "notification" or "response"; raises ClientMistake for anything else."""
    if not isinstance(message, dict):
        kind = "an array (LSP has no batches)" if isinstance(message, list) else type(message).__name__
        raise ClientMistake(INVALID_REQUEST, f"a message must be a JSON object, not {kind}")
    if message.get("jsonrpc") != "2.0":
        raise ClientMistake(INVALID_REQUEST, 'the "jsonrpc" member must be "2.0"')
    if "method" in message:
        if not isinstance(message["method"], str):
            raise ClientMistake(INVALID_REQUEST, '"method" must be a string')
        if "id" not in message:
            return "notification"
        if request_id(message) is None:
            raise ClientMistake(INVALID_REQUEST, '"id" must be an integer or a string')
        return "request"
    if "id" in message and ("result" in message or "error" in message):
        return "response"
    raise ClientMistake(INVALID_REQUEST, 'a message needs a "method", or an "id" with "result" or "error"')


def _camel(path: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), path)


def describe_structure_error(exc: Exception) -> str:
    """The bad fields of a failed deserialization, in wire names: "expected int @ $.params.position.line"."""
    lines: list[str] = []
    if isinstance(exc, cattrs.BaseValidationError):
        try:
            lines = cattrs.transform_error(exc)[:3]
        except Exception:  # noqa: BLE001 - the description is best effort; the answer's code is not
            lines = []
    return "; ".join(_camel(line) for line in lines) if lines else f"{type(exc).__name__}: {exc}"


def short(text: str) -> str:
    """One log line of at most MAX_REASON_CHARS, however hostile the input."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\n", " ")
    return text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS] + "…"


class RepolspProtocol(LanguageServerProtocol):
    """LanguageServerProtocol that checks raw messages first and answers every request once."""

    def __init__(self, server, converter):
        super().__init__(server, converter)
        self.initialize_received = False

    # --- input ---------------------------------------------------------------------------
    def structure_message(self, data: dict[str, Any]):
        """Keep bodies as plain JSON: `handle_message` checks and structures the whole message
        (pygls' hook runs on every nested object and raises out of the read loop)."""
        return data

    def handle_body(self, body: bytes) -> None:
        """One framed message body off the wire."""
        try:
            message = json.loads(body)
        except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, nested too deeply
            self.refuse(None, "", ClientMistake(PARSE_ERROR, f"the message is not JSON ({exc})"))
            return
        self.handle_message(message)

    def handle_message(self, message: Any) -> None:
        """Check a raw message, answer it if it is refused, else hand it to pygls' dispatch."""
        method = message.get("method") if isinstance(message, dict) else None
        method = method if isinstance(method, str) else ""
        msg_id = request_id(message)
        try:
            kind = classify(message)
            if kind == "response":
                self._deliver_response(message)
                return
            structured = self._admit(kind, method, message)
        except ClientMistake as mistake:
            if msg_id is not None or mistake.code in (PARSE_ERROR, INVALID_REQUEST):
                self.refuse(msg_id, method, mistake)
            else:  # a notification is never answered, even when it is wrong
                log.warning("ignored notification %s: %s", short(method), short(mistake.reason))
            return
        if structured is not None:
            super().handle_message(structured)

    def _admit(self, kind: str, method: str, message: dict) -> Any | None:
        """The structured message if it may be dispatched now; None for a notification that is
        dropped; raises ClientMistake for a request that is refused."""
        if kind == "notification":
            if method not in ALWAYS_DELIVERED and (self._shutdown or not self.initialize_received):
                log.debug("dropped notification %s (%s)", method,
                          "after shutdown" if self._shutdown else "before initialize")
                return None
            if method not in ALWAYS_DELIVERED and not self._has_handler(method):
                if not method.startswith("$/"):  # "$/" notifications may be ignored silently
                    log.warning("ignored notification for unknown method %s", short(method))
                return None
        else:
            if self._shutdown:
                raise ClientMistake(INVALID_REQUEST, "the server is shutting down")
            if method == types.INITIALIZE and self.initialize_received:
                raise ClientMistake(INVALID_REQUEST, "initialize was already received")
            if method != types.INITIALIZE and not self.initialize_received:
                raise ClientMistake(SERVER_NOT_INITIALIZED, "the server is not initialized yet")
            if not self._has_handler(method):
                raise ClientMistake(METHOD_NOT_FOUND, f"method not found: {method}")
        params = message.get("params")
        if params is not None and not isinstance(params, (dict, list)):
            raise ClientMistake(INVALID_PARAMS, '"params" must be an object or an array')
        array = ARRAY_PARAMS.get(method)
        if array and isinstance(params, dict) and params.get(array) is not None \
                and not isinstance(params[array], list):
            raise ClientMistake(INVALID_PARAMS, f"invalid params: expected an array @ $.params.{array}")
        structured = self._structure(kind, method, message)
        if method == types.INITIALIZE:
            self.initialize_received = True
        return structured

    def _has_handler(self, method: str) -> bool:
        return method in self.fm.builtin_features or method in self.fm.features

    def _structure(self, kind: str, method: str, message: dict) -> Any:
        fallback = JsonRPCRequestMessage if kind == "request" else JsonRPCNotification
        message_type = self.get_message_type(method) or fallback
        try:
            if message_type in (JsonRPCRequestMessage, JsonRPCNotification):
                return message_type(**{k: message.get(k) for k in (
                    ("id", "method", "jsonrpc", "params") if kind == "request"
                    else ("method", "jsonrpc", "params"))})
            return self._converter.structure(message, message_type)
        except Exception as exc:  # whatever the converter raises, the client sent it
            raise ClientMistake(INVALID_PARAMS, f"invalid params: {describe_structure_error(exc)}") from exc

    def _deliver_response(self, message: dict) -> None:
        """A response to one of the server's own requests (progress, applyEdit, configuration)."""
        msg_id = request_id(message)
        if msg_id is None or msg_id not in self._result_types:
            # Never resolve a pending *incoming* request's future with a client "response".
            log.warning("ignored a response to an unknown request id %s", short(repr(message.get("id"))))
            return
        result_type = self._result_types.pop(msg_id) or JsonRPCResponseMessage
        future = self._request_futures.get(msg_id)
        if future is not None and future.done():  # the server stopped waiting (timed out)
            self._request_futures.pop(msg_id, None)
            log.debug("late response to %s dropped", msg_id)
            return
        try:
            if "error" in message:
                structured = self._converter.structure(message, types.ResponseErrorMessage)
            else:
                structured = self._converter.structure(message, result_type)
        except Exception as exc:  # noqa: BLE001
            log.warning("the client's response %s is malformed: %s", msg_id, short(describe_structure_error(exc)))
            future = self._request_futures.pop(msg_id, None)
            if future is not None and not future.done():
                future.set_exception(JsonRpcInvalidParams(f"malformed response: {exc}"))
            return
        super().handle_message(structured)

    def _handle_cancel_notification(self, msg_id) -> None:
        # The converter lets any JSON value through as an id; pygls then looks it up in a dict.
        if request_id({"id": msg_id}) is None:
            log.warning("ignored $/cancelRequest whose id is not an integer or a string")
            return
        super()._handle_cancel_notification(msg_id)

    # --- documents -----------------------------------------------------------------------
    # The server keeps its own documents (server/context/document.py). pygls' builtins kept a
    # second copy, applied every keystroke to it, and raised on a change to a document that was
    # never opened; these hand the notification straight to the server's handler.
    def _to_handler(self, method: str, params):
        if (handler := self.fm.features.get(method)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams):
        yield from self._to_handler(types.TEXT_DOCUMENT_DID_OPEN, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):
        yield from self._to_handler(types.TEXT_DOCUMENT_DID_CHANGE, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams):
        yield from self._to_handler(types.TEXT_DOCUMENT_DID_CLOSE, params)

    @lsp_method(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def lsp_work_done_progress_cancel(self, params: types.WorkDoneProgressCancelParams):
        # The converter lets any JSON value through as a token; pygls then looks it up in a dict.
        if not isinstance(params.token, (int, str)):
            log.warning("ignored a progress cancel whose token is not an integer or a string")
            return
        yield from super().lsp_work_done_progress_cancel(params)

    # --- output --------------------------------------------------------------------------
    def refuse(self, msg_id: int | str | None, method: str, mistake: ClientMistake) -> None:
        """Answer a refused message with its error: one warning line, no traceback."""
        log.warning("refused %s (id %s): %s [%d]", short(method) or "a message", short(repr(msg_id)),
                    short(mistake.reason), mistake.code)
        # Written by hand: lsprotocol's converter drops `"id": null`, which JSON-RPC requires.
        self._send_data({"jsonrpc": "2.0", "id": msg_id,
                         "error": {"code": mistake.code, "message": short(mistake.reason)}})

    def _send_handler_result(self, future: Future[Any], *, msg_id) -> None:
        """pygls' answer path, except that a client mistake raised by a handler (unknown command,
        bad command arguments) is one warning line instead of a traceback."""
        exc = None if future.cancelled() else future.exception()
        if isinstance(exc, JsonRpcException) and exc.code in CLIENT_ERROR_CODES:
            self._request_futures.pop(msg_id, None)
            log.warning("refused request %s: %s [%d]", short(repr(msg_id)), short(exc.message or ""), exc.code)
            self._send_response(msg_id, error=exc.to_response_error())
            return
        super()._send_handler_result(future, msg_id=msg_id)

    def _check_handler_result(self, future: Future[Any]) -> None:
        """A notification handler that raised is a server fault: log its traceback."""
        if future.cancelled() or future.exception() is None:
            return
        exc = future.exception()
        log.error("a notification handler failed: %s", exc, exc_info=(type(exc), exc, exc.__traceback__))
        self._server._report_server_error(exc, FeatureNotificationError)


CONTENT_LENGTH = re.compile(rb"^Content-Length: (\d+)\r\n$")


async def read_messages(reader, protocol: RepolspProtocol, stop_event) -> None:
    """pygls' Content-Length read loop, handing each body to `protocol.handle_body` (so a body
    that is not JSON is answered instead of being logged as a traceback)."""
    content_length: int | None = None  # None until this message's Content-Length header
    while not stop_event.is_set():
        try:
            header = await reader.readline()
        except (asyncio.IncompleteReadError, ConnectionError):
            break
        if not header:
            break
        if content_length is None:
            match = CONTENT_LENGTH.fullmatch(header)
            if match:
                content_length = int(match.group(1))
        if content_length is not None and not header.strip():
            try:
                body = await reader.readexactly(content_length) if content_length else b""
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            if content_length and not body:
                break
            content_length = None
            try:
                protocol.handle_body(body)  # an empty body too: it is answered as a parse error
            except Exception:  # a fault of the server itself: logged, and the loop goes on
                log.exception("fault while handling a message")
    log.debug("input closed (%s)", "stop requested" if stop_event.is_set() else "end of stream")
