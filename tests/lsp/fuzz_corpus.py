"""The fuzzer's corpus: seeded hostile LSP messages, each with what must come back.

Bodies that are not JSON or not JSON-RPC, every served method with damaged params (wrong types,
missing fields, huge or negative numbers, bad URIs, lone surrogates, NUL bytes, reversed ranges,
edits past the end), unserved methods, a second `initialize`, cancelled requests, commands with
random arguments, notifications and stray responses. tests/lsp/fuzz.py sends them and checks.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
INTERNAL_ERROR, SERVER_NOT_INITIALIZED, REQUEST_CANCELLED = -32603, -32002, -32800

PROBE_TEXT = (
    "import os\n\n\n"
    "def read_config(path):\n"
    "    with open(path) as handle:\n"
    "        return handle.read()\n\n\n"
    "def add(a, b):\n"
    "    return a + b\n\n\n"
    "def total(values):\n"
    "    result = 0\n"
    "    for value in values:\n"
    "        "
)
PROBE_LINE, PROBE_CHARACTER = PROBE_TEXT.count("\n"), 8

# Hostile scalars and shapes: wrong types, out-of-range numbers, NULs, lone surrogates,
# bidi controls, long strings, URIs that are not file URIs or do not decode.
HOSTILE_VALUES = [
    None, True, False, 0, -1, -(2**31), 2**31, 2**53 + 1, 2**64, 10**30, 1.5, -0.0, 1e308,
    "", "\x00", "\x00\x00abc\x00", "\ud800", "\udfff\ud800x", "\u202egnp.exe", "😀" * 40,
    "file://", "file:///", "file:///%ZZ%", "file:///tmp/../../etc/passwd", "untitled:Untitled-1",
    "http://example.invalid/x.py", "not a uri", "\\\\server\\share\\x.py",
    [], {}, [[[]]], {"a": {"b": {"c": {}}}}, [1, "two", None], {"uri": 5}, {"line": -1},
]
BAD_BODIES = [
    b"{this is not json", b"", b"   ", b"\xff\xfe\xfd", b'{"jsonrpc": "2.0", "id": 1, "method": ',
    b"\x00\x01\x02", b'{"jsonrpc":"2.0","id":1,"method":"x"}}}', b"NaNx", b"\xc3\x28", b"[" * 50_000,
    "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"é\"".encode("latin-1"), b"1" * 5000,
]
NOT_OBJECTS = [[], [{"jsonrpc": "2.0", "id": 1, "method": "shutdown"}], 1, "text", None, True, 3.5]
BAD_IDS = [None, 1.5, True, [1], {"id": 1}, -0.5]
UNSERVED_REQUESTS = ["textDocument/hover", "textDocument/definition", "textDocument/formatting",
                     "workspace/symbol", "completionItem/resolve", "textDocument/signatureHelp",
                     "repolsp/noSuchMethod", "", "$/unknownRequest", "initialized/x"]
# Commands fuzzed with random arguments. `repolsp.train` (starts a real training job),
# `repolsp.reloadModel` and a string for `repolsp.useModel` (switch the served model away) are
# left out: they are valid requests whose effect would end the session's use of the model.
COMMANDS = ["repolsp.status", "repolsp.acceptCompletion", "repolsp.generateDocstring",
            "repolsp.generateTests", "repolsp.useModel", "repolsp.noSuchCommand", ""]


@dataclass
class Expect:
    """What must come back for one message."""

    kind: str  # "id": one response with msg_id; "null": one error with id null; "none": nothing
    label: str
    msg_id: int | str | None = None
    codes: frozenset = frozenset()  # error codes allowed (besides a result, if result_ok)
    result_ok: bool = False


@dataclass
class Message:
    body: bytes
    expect: Expect


def defang(params):
    """Damaged params that could still switch the served model (`repolsp.useModel` with a string
    argument) get that argument replaced: the rest of the session must still meet the model."""
    if isinstance(params, dict) and params.get("command") == "repolsp.useModel":
        arguments = params.get("arguments")
        if isinstance(arguments, list) and arguments and isinstance(arguments[0], str):
            return {**params, "arguments": [None, *arguments[1:]]}
    return params


class Corpus:
    """Seeded hostile messages for a server whose workspace folder is `workspace`."""

    def __init__(self, seed: int, workspace: Path):
        self.rng = random.Random(seed)
        self.workspace = workspace
        self.probe_uri = (workspace / "probe.py").as_uri()
        self.uris = [self.probe_uri] + [(workspace / name).as_uri() for name in (
            "a.py", "sub dir/b.py", "ünï/c.py", "d.js", "e.rs", "sub/../f.py")]
        self.next_id = 1000
        self.recent_ids: list = []
        self.version = 1
        self.probes = 0

    # --- identifiers -------------------------------------------------------------------
    def new_id(self) -> int | str:
        self.next_id += 1
        value = self.next_id if self.rng.random() < 0.8 else f"fz-{self.next_id}"
        self.recent_ids = (self.recent_ids + [value])[-20:]
        return value

    def _pick(self, values):
        return values[self.rng.randrange(len(values))]

    def _position(self, hostile: bool = False) -> dict:
        if hostile and self.rng.random() < 0.5:
            return {"line": self._pick([0, 3, 10**6, 2**31 - 1]), "character": self._pick([0, 9, 10**6, 2**31 - 1])}
        return {"line": self.rng.randrange(0, PROBE_LINE + 3), "character": self.rng.randrange(0, 30)}

    def _range(self) -> dict:
        start, end = self._position(hostile=True), self._position(hostile=True)
        return {"start": start, "end": end}  # often reversed or past the end

    def _text(self) -> str:
        return self._pick([
            "", "x", "\n", "    return 1\n", "\r\n\r\n", "\x00" * 8, "\ud800 lone", "é😀\u200d👩",
            "def f(:\n  ))\n", "a" * 20_000, "\t" * 100, PROBE_TEXT, "\u2028\u2029", "\ufeffbom",
        ])

    # --- valid params per method ---------------------------------------------------------
    def valid_params(self, method: str) -> dict:
        uri = self._pick(self.uris)
        doc = {"uri": uri}
        if method == "textDocument/inlineCompletion":
            return {"textDocument": doc, "position": self._position(),
                    "context": {"triggerKind": self._pick([1, 2])}}
        if method == "textDocument/completion":
            return {"textDocument": doc, "position": self._position(), "context": {"triggerKind": 1}}
        if method == "textDocument/codeAction":
            return {"textDocument": doc, "range": {"start": self._position(), "end": self._position()},
                    "context": {"diagnostics": []}}
        if method == "codeAction/resolve":
            return {"title": "Generate docstring", "kind": "refactor.rewrite.repolsp.docstring",
                    "data": {"action": self._pick(["docstring", "tests", "nope"]), "uri": uri,
                             "position": self._position()}}
        if method == "workspace/executeCommand":
            command = self._pick(COMMANDS)
            return {"command": command, "arguments": self._arguments(command, uri)}
        if method == "textDocument/didOpen":
            self.version += 1
            return {"textDocument": {"uri": uri, "languageId": self._pick(["python", "javascript", "rust", ""]),
                                     "version": self.version, "text": self._text()}}
        if method == "textDocument/didChange":
            self.version += self._pick([1, 1, 1, -5])
            change = {"range": self._range(), "text": self._text()} if self.rng.random() < 0.8 \
                else {"text": self._text()}
            return {"textDocument": {"uri": uri, "version": self.version}, "contentChanges": [change]}
        if method in ("textDocument/didSave", "textDocument/didClose"):
            return {"textDocument": doc}
        if method == "workspace/didChangeConfiguration":
            return {"settings": {"repolsp": self._settings()}}
        if method == "$/cancelRequest":
            return {"id": self._pick(self.recent_ids or [1])}
        if method == "$/setTrace":
            return {"value": self._pick(["off", "messages", "verbose"])}
        if method == "window/workDoneProgress/cancel":
            return {"token": self._pick(["repolsp-deadbeef", 7])}
        return {}

    def _arguments(self, command: str, uri: str) -> list:
        arguments = self._pick([[], [uri, self._position()], [uri, [1, 2]], [self._pick(HOSTILE_VALUES)],
                                [uri], [None, None, None], [{"deep": [[[{}]]]}], ["s" * 1000, 2**64]])
        if command == "repolsp.useModel" and arguments and isinstance(arguments[0], str) and arguments[0]:
            return [None, *arguments[1:]]  # refused ("needs a model name"), never a switch
        return arguments

    def _settings(self) -> dict:
        # Never model/engine/logFile: a fuzzed value there would switch the model off or
        # write a log file anywhere on disk; everything else takes hostile values.
        keys = ["temperature", "debounceMs", "contextBudgetTokens", "enabledLanguages", "logLevel",
                "requestTimeoutMs", "completionItems", "maxTokens", "noSuchSetting"]
        return {self._pick(keys): self._pick(HOSTILE_VALUES + [0.5, 5, "always", ["python"]])
                for _ in range(self.rng.randrange(1, 4))}

    # --- damage ----------------------------------------------------------------------------
    def damage(self, value, depth: int = 0):
        """`value` with one random part deleted, retyped or replaced by a hostile value."""
        if isinstance(value, dict) and value and depth < 6 and self.rng.random() < 0.7:
            key = self._pick(sorted(value))
            copy = dict(value)
            roll = self.rng.random()
            if roll < 0.2:
                del copy[key]
            elif roll < 0.3:
                copy[self._pick(["extra", "__proto__", "\x00", "id"])] = self._pick(HOSTILE_VALUES)
            else:
                copy[key] = self.damage(value[key], depth + 1)
            return copy
        if isinstance(value, list) and value and depth < 6 and self.rng.random() < 0.7:
            index = self.rng.randrange(len(value))
            return value[:index] + [self.damage(value[index], depth + 1)] + value[index + 1:]
        return self._pick(HOSTILE_VALUES)

    # --- messages --------------------------------------------------------------------------
    def request(self, method: str, params, label: str, codes=frozenset({INVALID_PARAMS}),
                result_ok: bool = True, msg_id=None) -> Message:
        msg_id = self.new_id() if msg_id is None else msg_id
        body = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not _OMIT:
            body["params"] = params
        return Message(dump(body), Expect("id", label, msg_id, frozenset(codes) | {REQUEST_CANCELLED}, result_ok))

    def notification(self, method: str, params, label: str) -> Message:
        return Message(dump({"jsonrpc": "2.0", "method": method, "params": params}), Expect("none", label))

    def probe(self) -> list[Message]:
        """Settings back to defaults, the probe document reopened, one explicit inline completion."""
        self.version += 1
        self.probes += 1
        # A first line of its own per probe: the prefix differs, so each probe reaches the model
        # instead of the typing-through cache.
        text = f"# probe {self.probes}\n" + PROBE_TEXT
        return [
            self.notification("workspace/didChangeConfiguration",
                              {"settings": {"repolsp": {"debounceMs": 0, "enabledLanguages": ["*"],
                                                        "requestTimeoutMs": 60_000}}}, "probe settings"),
            self.notification("textDocument/didOpen", {"textDocument": {
                "uri": self.probe_uri, "languageId": "python", "version": self.version, "text": text}},
                "probe open"),
            self.request("textDocument/inlineCompletion", {
                "textDocument": {"uri": self.probe_uri},
                "position": {"line": PROBE_LINE + 1, "character": PROBE_CHARACTER},
                "context": {"triggerKind": 1}}, "probe", codes=frozenset(), msg_id=f"probe-{self.probes}"),
        ]

    def hostile(self) -> list[Message]:
        """One fuzzed message (two when a request is followed by its cancellation)."""
        roll = self.rng.random()
        served = ["textDocument/inlineCompletion", "textDocument/completion", "textDocument/codeAction",
                  "codeAction/resolve", "workspace/executeCommand"]
        notifications = ["textDocument/didOpen", "textDocument/didChange", "textDocument/didSave",
                         "textDocument/didClose", "workspace/didChangeConfiguration", "$/cancelRequest",
                         "$/setTrace", "window/workDoneProgress/cancel", "initialized", "$/unknown",
                         "repolsp/noSuchNotification"]
        if roll < 0.04:
            return [Message(self._pick(BAD_BODIES), Expect("null", "not JSON", codes=frozenset({PARSE_ERROR})))]
        if roll < 0.07:
            return [Message(dump(self._pick(NOT_OBJECTS)), Expect("null", "not an object",
                                                                    codes=frozenset({INVALID_REQUEST})))]
        if roll < 0.10:
            body = {"jsonrpc": "2.0", "id": self._pick(BAD_IDS), "method": self._pick(served)}
            return [Message(dump(body), Expect("null", "bad id", codes=frozenset({INVALID_REQUEST})))]
        if roll < 0.13:
            msg_id = self.new_id()
            body = {"jsonrpc": self._pick(["1.0", 2.0, None, ""]), "id": msg_id, "method": self._pick(served)}
            if self.rng.random() < 0.3:
                del body["jsonrpc"]
            return [Message(dump(body), Expect("id", "not JSON-RPC 2.0", msg_id, frozenset({INVALID_REQUEST})))]
        if roll < 0.15:
            msg_id = self.new_id()
            body = {"jsonrpc": "2.0", "id": msg_id, "method": self._pick([5, None, ["x"], {"m": 1}])}
            return [Message(dump(body), Expect("id", "method not a string", msg_id, frozenset({INVALID_REQUEST})))]
        if roll < 0.17:
            body = {"jsonrpc": "2.0", "id": self.new_id(), "result": self._pick(HOSTILE_VALUES)}
            return [Message(dump(body), Expect("none", "stray response"))]
        if roll < 0.19:
            body = {"jsonrpc": "2.0", "id": self.new_id()}  # neither a request nor a response
            return [Message(dump(body), Expect("id", "no method", body["id"], frozenset({INVALID_REQUEST})))]
        if roll < 0.25:
            method = self._pick(UNSERVED_REQUESTS)
            params = self.damage(self.valid_params("textDocument/completion")) if self.rng.random() < 0.5 \
                else self.valid_params("textDocument/completion")
            return [self.request(method, params, f"unserved {method}", {METHOD_NOT_FOUND}, result_ok=False)]
        if roll < 0.27:
            return [self.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}},
                                 "second initialize", {INVALID_REQUEST}, result_ok=False)]
        if roll < 0.30:
            method = self._pick(served)
            params = self._pick([5, "params", True])
            return [self.request(method, params, f"{method} scalar params", {INVALID_PARAMS}, result_ok=False)]
        if roll < 0.40:
            message = self.request("textDocument/inlineCompletion", self.valid_params("textDocument/inlineCompletion"),
                                   "cancelled inlineCompletion")
            return [message, self.notification("$/cancelRequest", {"id": message.expect.msg_id}, "cancel")]
        if roll < 0.72:
            method = self._pick(served)
            params = self.valid_params(method)
            damaged = self.rng.random() < 0.6
            return [self.request(method, defang(self.damage(params)) if damaged else params,
                                 f"{method} {'damaged' if damaged else 'valid'}")]
        method = self._pick(notifications)
        params = self.valid_params(method)
        if self.rng.random() < 0.4:
            params = self.damage(params)
        return [self.notification(method, params, f"notification {method}")]


_OMIT = object()


def dump(value) -> bytes:
    return json.dumps(value).encode("utf-8")


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body
