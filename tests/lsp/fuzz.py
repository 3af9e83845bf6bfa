"""repolsp's own LSP fuzzer: a seeded corpus of hostile messages and a ledger of their answers.

`Corpus(seed)` (tests/lsp/fuzz_corpus.py) yields message bodies, each with what the specification
says must come back: exactly one response with its id (a result, or an error with an allowed code), exactly
one error with `"id": null` (bodies that are not JSON or not JSON-RPC), or nothing
(notifications and client responses). `run_fuzz` sends a corpus to a real server over stdio
the way an editor does (pipelined, Content-Length framed), probes it with a valid inline
completion every `probe_every` messages, and returns a `FuzzReport` that the test suite and
bench/fuzz.py assert on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty

from tests.editors.lsp_stdio import StdioClient
from tests.lsp.fuzz_corpus import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    SERVER_NOT_INITIALIZED,
    Corpus,
    Expect,
    Message,
    dump,
    frame,
)


@dataclass
class FuzzReport:
    """What came back, and every way it departed from the specification."""

    messages: int = 0
    requests: int = 0
    notifications: int = 0
    probes: int = 0
    probe_ms: list = field(default_factory=list)
    unanswered: list = field(default_factory=list)  # (id, label)
    answered_twice: list = field(default_factory=list)
    wrong_codes: list = field(default_factory=list)  # (id, label, code, message)
    internal_errors: list = field(default_factory=list)
    unknown_ids: list = field(default_factory=list)
    null_expected: list = field(default_factory=list)  # codes, in order sent
    null_received: list = field(default_factory=list)  # codes, in order received
    hung_probes: list = field(default_factory=list)
    probe_items: list = field(default_factory=list)  # suggestions per answered probe
    model_state: str = ""  # the server's engine state when fuzzing began
    final_status: dict = field(default_factory=dict)  # repolsp.status after the last message
    alive: bool = True
    exit_code: int | None = None
    after_shutdown_code: int | None = None
    before_initialize_code: int | None = None
    tracebacks: int = 0
    error_lines: list = field(default_factory=list)  # log lines at ERROR (client mistakes are WARNING)
    stderr_tail: str = ""
    seconds: float = 0.0

    @property
    def null_mismatch(self) -> bool:
        return self.null_expected != self.null_received

    def failures(self) -> list[str]:
        """One line per departure; empty when the server conformed."""
        found = []
        for name in ("unanswered", "answered_twice", "wrong_codes", "internal_errors", "unknown_ids",
                     "hung_probes"):
            values = getattr(self, name)
            if values:
                found.append(f"{len(values)} {name.replace('_', ' ')}: {values[:5]}")
        if self.null_mismatch:
            found.append(f"null-id errors: expected {len(self.null_expected)} {self.null_expected[:8]}, "
                         f"got {len(self.null_received)} {self.null_received[:8]}")
        if not self.alive:
            found.append("the server died")
        if self.model_state != "ready":
            found.append(f"the model was not ready when fuzzing began ({self.model_state or 'no status'})")
        if self.before_initialize_code != SERVER_NOT_INITIALIZED:
            found.append(f"a request before initialize got {self.before_initialize_code}, not -32002")
        if self.after_shutdown_code != INVALID_REQUEST:
            found.append(f"a request after shutdown got {self.after_shutdown_code}, not -32600")
        if self.exit_code != 0:
            found.append(f"exit code {self.exit_code}")
        if self.error_lines:
            found.append(f"{len(self.error_lines)}+ lines logged at ERROR: {self.error_lines[:3]}")
        if self.tracebacks:
            found.append(f"{self.tracebacks} tracebacks in stderr:\n{self.stderr_tail}")
        return found

    def summary(self) -> dict:
        return {"messages": self.messages, "requests": self.requests, "notifications": self.notifications,
                "probes": self.probes, "probes_with_suggestion": sum(1 for n in self.probe_items if n),
                "model_state": self.model_state, "unanswered": len(self.unanswered),
                "answered_twice": len(self.answered_twice), "wrong_codes": len(self.wrong_codes),
                "internal_errors": len(self.internal_errors), "hung_probes": len(self.hung_probes),
                "null_expected": len(self.null_expected), "null_received": len(self.null_received),
                "alive": self.alive, "exit_code": self.exit_code, "tracebacks": self.tracebacks,
                "error_lines": len(self.error_lines),
                "seconds": round(self.seconds, 1)}


class Ledger:
    """Per-request bookkeeping of answers."""

    def __init__(self, report: FuzzReport):
        self.report = report
        self.expected: dict = {}  # id -> Expect
        self.answers: dict = {}  # id -> count
        self.codes: dict = {}  # id -> error code of the first answer, or "result"
        self.results: dict = {}  # id -> result, for the probes and the readiness checks

    def sent(self, expect: Expect) -> None:
        self.report.messages += 1
        if expect.kind == "id":
            self.report.requests += 1
            self.expected[expect.msg_id] = expect
        elif expect.kind == "null":
            self.report.null_expected.append(min(expect.codes))
        else:
            self.report.notifications += 1

    def received(self, response: dict) -> None:
        msg_id = response.get("id")
        error = response.get("error")
        if msg_id is None:
            self.report.null_received.append(error.get("code") if isinstance(error, dict) else "result")
            return
        expect = self.expected.get(msg_id)
        if expect is None:
            self.report.unknown_ids.append(msg_id)
            return
        self.answers[msg_id] = self.answers.get(msg_id, 0) + 1
        self.codes.setdefault(msg_id, error.get("code") if isinstance(error, dict) else "result")
        if self.answers[msg_id] == 2:
            self.report.answered_twice.append((msg_id, expect.label))
        if error is None and expect.label in ("probe", "ready"):
            self.results[msg_id] = response.get("result")
        if error is None:
            if not expect.result_ok:
                self.report.wrong_codes.append((msg_id, expect.label, "result", ""))
            return
        code = error.get("code")
        if code == INTERNAL_ERROR:
            self.report.internal_errors.append((msg_id, expect.label, str(error.get("message"))[:200]))
        elif code not in expect.codes:
            self.report.wrong_codes.append((msg_id, expect.label, code, str(error.get("message"))[:120]))

    def pending(self) -> list:
        return [i for i in self.expected if i not in self.answers]


class FuzzSession:
    """A server process over stdio, fed raw framed bodies; all responses go into the ledger."""

    def __init__(self, cmd: list[str], cwd: Path, env: dict[str, str], report: FuzzReport):
        self.client = StdioClient(cmd, cwd=cwd, env=env)
        self.report = report
        self.ledger = Ledger(report)

    def send(self, message: Message) -> None:
        self.ledger.sent(message.expect)
        # One write call per message: the client's reader thread answers server requests on
        # the same pipe, and a single buffered write is never interleaved with another.
        self.client.proc.stdin.write(frame(message.body))
        self.client.proc.stdin.flush()

    def drain(self, timeout_s: float = 0.0, until=None) -> None:
        """Move responses into the ledger until `until()` holds or the timeout passes."""
        deadline = time.monotonic() + timeout_s
        while until is None or not until():
            remaining = deadline - time.monotonic()
            try:
                response = self.client._responses.get(timeout=max(0.0, remaining)) if remaining > 0 \
                    else self.client._responses.get_nowait()
            except Empty:
                return
            self.ledger.received(response)

    def answered(self, msg_id) -> bool:
        return self.ledger.answers.get(msg_id, 0) > 0


def run_fuzz(cmd: list[str], workspace: Path, env: dict[str, str], count: int, seed: int,
             probe_every: int = 50, probe_timeout_s: float = 30.0, settle_s: float = 60.0,
             progress=None, settle_before_probe: bool = False) -> FuzzReport:
    """Send `count` fuzzed messages to the server `cmd` and check every answer.

    `settle_before_probe` waits (up to `settle_s`) for the requests sent so far before each
    probe, so that with a real model the probe times the server, not a queue of model runs."""
    started = time.monotonic()
    report = FuzzReport()
    corpus = Corpus(seed, workspace)
    session = FuzzSession(cmd, workspace, env, report)
    try:
        _handshake(session, corpus, probe_timeout_s)
        sent = 0
        while sent < count and report.alive:
            for message in corpus.hostile():
                session.send(message)
                sent += 1
            session.drain()
            if sent // probe_every > report.probes:
                if settle_before_probe:
                    session.drain(settle_s, until=lambda: not session.ledger.pending())
                _probe(session, corpus, probe_timeout_s)
                if progress is not None:
                    progress(sent, report)
            report.alive = session.client.proc.poll() is None
        session.drain(settle_s, until=lambda: not session.ledger.pending())
        report.unanswered = [(i, session.ledger.expected[i].label) for i in session.ledger.pending()]
        _close(session, corpus, probe_timeout_s)
    except (BrokenPipeError, OSError):
        report.alive = False
    finally:
        session.client.close()
        time.sleep(0.2)  # the stderr thread's last lines
        stderr = session.client.stderr
        report.tracebacks = stderr.count("Traceback")
        report.error_lines = [line[:300] for line in stderr.splitlines() if " ERROR " in line][:10]
        report.stderr_tail = _traceback_excerpts(stderr)
        report.seconds = time.monotonic() - started
    return report


def _traceback_excerpts(stderr: str, limit: int = 3) -> str:
    """The first tracebacks in stderr, each with the log line before it."""
    excerpts, start = [], stderr.find("Traceback")
    while start >= 0 and len(excerpts) < limit:
        excerpts.append(stderr[max(0, stderr.rfind("\n", 0, max(0, start - 1)) + 1):start + 4000])
        start = stderr.find("Traceback", start + 1)
    return "\n----\n".join(excerpts)


def _handshake(session: FuzzSession, corpus: Corpus, timeout_s: float) -> None:
    before = corpus.request("textDocument/inlineCompletion", corpus.valid_params("textDocument/inlineCompletion"),
                            "before initialize", {SERVER_NOT_INITIALIZED}, result_ok=False)
    session.send(corpus.notification("textDocument/didOpen", corpus.valid_params("textDocument/didOpen"),
                                     "notification before initialize"))
    session.send(before)
    init = corpus.request("initialize", {
        "processId": None, "rootUri": corpus.workspace.as_uri(),
        "workspaceFolders": [{"uri": corpus.workspace.as_uri(), "name": "fuzz"}],
        "initializationOptions": {"debounceMs": 0},
        "capabilities": {"textDocument": {"inlineCompletion": {}, "completion": {},
                                          "codeAction": {"resolveSupport": {"properties": ["edit"]},
                                                         "codeActionLiteralSupport": {"codeActionKind": {
                                                             "valueSet": ["refactor"]}}}},
                         "workspace": {"applyEdit": True}, "window": {"workDoneProgress": True}},
    }, "initialize", frozenset(), msg_id="init")
    session.send(init)
    session.drain(timeout_s, until=lambda: session.answered("init") and session.answered(before.expect.msg_id))
    session.report.before_initialize_code = session.ledger.codes.get(before.expect.msg_id)
    session.send(corpus.notification("initialized", {}, "initialized"))
    _wait_ready(session, corpus, timeout_s)


def _wait_ready(session: FuzzSession, corpus: Corpus, timeout_s: float) -> None:
    """Poll `repolsp.status` until the model is loaded (or failed), so the fuzz meets the model."""
    deadline, polls = time.monotonic() + timeout_s, 0
    while time.monotonic() < deadline:
        polls += 1  # its own ids: drawing them from the corpus would make the corpus depend on load time
        status = corpus.request("workspace/executeCommand", {"command": "repolsp.status", "arguments": []},
                                "ready", frozenset(), msg_id=f"ready-{polls}")
        status_id = status.expect.msg_id
        session.send(status)
        session.drain(timeout_s, until=lambda status_id=status_id: session.answered(status_id))
        result = session.ledger.results.get(status_id) or {}
        session.report.model_state = result.get("state", "") if isinstance(result, dict) else ""
        if session.report.model_state in ("ready", "error"):
            return
        time.sleep(0.25)


def _probe(session: FuzzSession, corpus: Corpus, timeout_s: float) -> None:
    messages = corpus.probe()
    for message in messages:
        session.send(message)
    probe_id = messages[-1].expect.msg_id
    started = time.monotonic()
    session.drain(timeout_s, until=lambda: session.answered(probe_id))
    session.report.probes += 1
    if session.answered(probe_id):
        session.report.probe_ms.append((time.monotonic() - started) * 1000)
        result = session.ledger.results.get(probe_id)
        session.report.probe_items.append(len(result.get("items", [])) if isinstance(result, dict) else 0)
    else:
        session.report.hung_probes.append(probe_id)


def _close(session: FuzzSession, corpus: Corpus, timeout_s: float) -> None:
    status = corpus.request("workspace/executeCommand", {"command": "repolsp.status", "arguments": []},
                            "ready", frozenset(), msg_id="final-status")
    session.send(status)
    session.drain(timeout_s, until=lambda: session.answered("final-status"))
    session.report.final_status = session.ledger.results.get("final-status") or {}
    shutdown = corpus.request("shutdown", None, "shutdown", frozenset(), msg_id="shutdown")
    session.send(shutdown)
    session.drain(timeout_s, until=lambda: session.answered("shutdown"))
    after = corpus.request("textDocument/completion", corpus.valid_params("textDocument/completion"),
                           "after shutdown", {INVALID_REQUEST}, result_ok=False, msg_id="after-shutdown")
    session.send(after)
    session.drain(timeout_s, until=lambda: session.answered("after-shutdown"))
    session.report.after_shutdown_code = session.ledger.codes.get("after-shutdown")
    session.client.proc.stdin.write(frame(dump({"jsonrpc": "2.0", "method": "exit"})))
    session.client.proc.stdin.flush()
    try:
        session.report.exit_code = session.client.proc.wait(timeout=timeout_s)
    except Exception:  # noqa: BLE001 - reported as a missing exit code
        session.report.exit_code = None
