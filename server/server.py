"""The language server object: state shared by the feature handlers in server/features/."""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import sys
import threading
from pathlib import Path

from lsprotocol import types
from pygls.io_ import StdinAsyncReader, StdoutWriter
from pygls.lsp.server import LanguageServer
from repolsp.models.errors import ModelError
from repolsp.models.prompt import LEFT_TO_RIGHT, PromptTemplate
from repolsp.server import progress
from repolsp.server.completion import CompletionService
from repolsp.server.config import Config, config_to_wire, parse_config
from repolsp.server.context.document import Document, uri_to_path
from repolsp.server.engine.base import Engine
from repolsp.server.engine.select import engine_settings, load_engine
from repolsp.server.protocol import RepolspProtocol, read_messages
from repolsp.server.workspace_data import EventLog, data_dir_for

log = logging.getLogger("repolsp")

VERSION = "0.1.0"


def read_history(server, root: Path, max_commits: int):
    """The workspace's git history for prompts (`context.history`), with $/progress; an empty
    index when there is no git or reading fails."""
    from repolsp.server.context.history import HistoryIndex

    work = progress.begin(server, "repolsp: reading git history", percentage=0)
    history = HistoryIndex(max_commits=max_commits)

    def report(done: int, total: int) -> None:
        if done % 50 == 0:
            work.report(f"{done} commits", min(99, int(100 * done / max(total, 1))))

    try:
        history.build(root, progress=report)
    finally:
        work.end()
    return history


def forbid_network() -> None:
    """Nothing the server does may reach the network: switch the hub libraries offline."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[name] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"


class EngineState(enum.StrEnum):
    """Where the model stands; the values are what repolsp.status sends as "state"."""

    LOADING = "loading"
    READY = "ready"
    ERROR = "error"


class RepolspServer(LanguageServer):
    """pygls server plus repolsp state: documents, engine, completion service, events."""

    def __init__(self, config: Config | None = None, engine: Engine | None = None):
        super().__init__("repolsp", VERSION, text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
                         protocol_cls=RepolspProtocol)
        forbid_network()
        self.config = config or Config()
        self.cli_config = self.config  # flags given on the command line; options override them
        self.documents: dict[str, Document] = {}
        self.position_encoding = "utf-16"
        self.engine: Engine | None = engine
        self.engine_state = EngineState.READY if engine is not None else EngineState.LOADING
        self.engine_error = ""
        self.model_name = getattr(engine, "model_name", "") if engine is not None else ""
        self.template: PromptTemplate = LEFT_TO_RIGHT
        self.max_prompt_tokens: int | None = None
        self.workspace_root: Path | None = None
        self.workspace_index = None
        self.history_index = None  # context.history.HistoryIndex, read after the workspace index
        self.events: EventLog | None = None
        self.shown: dict[str, dict] = {}  # suggestion id -> event, until accepted or replaced
        self.training = None  # the running `lsp-train` job, if any
        self.initialized_received = False  # a second `initialized` must not start a second load
        self._load_lock = threading.Lock()
        self._stop_watching = threading.Event()
        self._failed_default: str | None = None
        self.completions = CompletionService(
            self.config,
            engine_getter=lambda: self.engine if self.engine_state == EngineState.READY else None,
            template_getter=self._serving_template,
            workspace_getter=lambda: self.workspace_index,
            history_getter=lambda: self.history_index if self.config.history else None,
        )

    # --- transport -----------------------------------------------------------------------
    # pygls' own loops log a body that is not JSON as a traceback and answer nothing; these
    # run the same framing through RepolspProtocol.handle_body instead.
    def start_io(self, stdin=None, stdout=None) -> None:
        """Serve over stdio until the client closes it or sends `exit`."""
        self._stop_event = threading.Event()
        reader = StdinAsyncReader(stdin or sys.stdin.buffer, self.thread_pool)
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        try:
            asyncio.run(read_messages(reader, self.protocol, self._stop_event))
        except BrokenPipeError:
            log.warning("the client closed the connection; shutting down")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()

    def start_tcp(self, host: str, port: int) -> None:
        """Serve one TCP client at a time (debugging) until the server is stopped."""
        self._stop_event = stop_event = threading.Event()

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.protocol.set_writer(writer)
            await read_messages(reader, self.protocol, stop_event)
            self.shutdown()

        async def serve() -> None:
            self._server = await asyncio.start_server(connection, host, port)
            async with self._server:
                await self._server.serve_forever()

        try:
            asyncio.run(serve())
        except asyncio.CancelledError:
            pass

    # --- messages ------------------------------------------------------------------------
    def show(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        """window/showMessage, also logged."""
        log.log(logging.ERROR if kind == types.MessageType.Error else logging.INFO, message)
        try:
            self.window_show_message(types.ShowMessageParams(type=kind, message=f"repolsp: {message}"))
        except Exception as exc:  # noqa: BLE001 - no client attached (tests, shutdown)
            log.debug("could not show the message to the client: %s", exc)

    # --- configuration -------------------------------------------------------------------
    def apply_settings(self, data, source: str) -> None:
        """Apply wire settings over the CLI config; report bad fields, keep defaults."""
        config, problems = parse_config(data, self.cli_config)
        model_changed = engine_settings(config) != engine_settings(self.config)
        log_changed = (config.log_file, config.log_level) != (self.config.log_file, self.config.log_level)
        for field_name in config.__dataclass_fields__:
            setattr(self.config, field_name, getattr(config, field_name))
        for problem in problems:
            self.show(f"{source}: {problem}", types.MessageType.Warning)
        if log_changed:
            from repolsp.server.cli import setup_logging

            try:
                setup_logging(self.config.log_level, self.config.log_file)
            except OSError as exc:
                self.show(f"{source}: cannot write the log file {self.config.log_file!r}: {exc}",
                          types.MessageType.Warning)
                setup_logging(self.config.log_level, "")
        if model_changed and self.engine_state != EngineState.LOADING:
            self.start_loading()

    def status(self) -> dict:
        """What `repolsp.status` returns."""
        engine_stats = {}
        if self.engine is not None:
            try:
                engine_stats = self.engine.stats()
            except Exception:  # noqa: BLE001
                engine_stats = {}
        return {
            "model": self.model_name,
            "engine": getattr(self.engine, "name", self.config.engine),
            "state": "training" if self.training is not None and self.engine_state == EngineState.READY
            else str(self.engine_state),
            "error": self.engine_error,
            "template": self.template.name,
            "maxPromptTokens": self.max_prompt_tokens,
            **self.completions.metrics.snapshot(),
            "engineStats": engine_stats,
            "config": config_to_wire(self.config),
        }

    # --- documents -----------------------------------------------------------------------
    def document(self, uri: str) -> Document | None:
        return self.documents.get(uri)

    def open_document(self, uri: str, text: str, language_id: str, version: int) -> Document:
        path = uri_to_path(uri)
        rel = None
        if path and self.workspace_root is not None:
            try:
                rel = Path(path).resolve().relative_to(self.workspace_root).as_posix()
            except (ValueError, OSError):
                rel = None
        doc = Document(uri, text, language_id, version, encoding=self.position_encoding, path=rel)
        self.documents[uri] = doc
        return doc

    def document_for_request(self, uri: str) -> Document | None:
        """The open document for a request, or None (logged) for an unknown URI."""
        doc = self.documents.get(uri)
        if doc is None:
            log.warning("request for a document that is not open: %s", uri)
        return doc

    def checked_offset(self, doc: Document, position: types.Position) -> int:
        """Offset of an LSP position; positions past the end are clamped (and logged)."""
        lines = doc.lines.line_count
        if position.line >= lines or position.line < 0 or position.character < 0:
            log.warning("position %d:%d is outside %s (%d lines); clamped",
                        position.line, position.character, doc.uri, lines)
        return doc.offset_at(max(0, position.line), max(0, position.character))

    # --- acceptance feedback -------------------------------------------------------------
    def _event(self, doc: Document | None, suggestion_id: str, kind: str, **extra) -> dict:
        return {"event": kind, "id": suggestion_id, "model": self.model_name, **extra}

    def record_shown(self, doc: Document, suggestion) -> None:
        """A suggestion was sent; the previous unaccepted one of this document is rejected."""
        for old_id, old in list(self.shown.items()):
            if old["uri"] == doc.uri and old_id != suggestion.id:
                self._log_event({**old["event"], "event": "rejected"})
                del self.shown[old_id]
        text = doc.text
        event = self._event(
            doc, suggestion.id, "shown",
            path=doc.path, language=doc.language,
            position=list(doc.position_at(suggestion.offset)),
            prefix=text[max(0, suggestion.offset - 4000):suggestion.offset],
            suffix=text[suggestion.offset:suggestion.offset + 1000],
            completion=suggestion.text, mode=suggestion.mode.value,
            fromCache=suggestion.from_cache, latencyMs=round(suggestion.latency_ms, 1),
        )
        self.shown[suggestion.id] = {"uri": doc.uri, "event": event}
        self._log_event(event)

    def record_accepted(self, suggestion_id: str) -> bool:
        entry = self.shown.pop(str(suggestion_id), None)
        if entry is None:
            return False
        self._log_event({**entry["event"], "event": "accepted"})
        return True

    def _log_event(self, event: dict) -> None:
        if self.events is not None:
            self.events.append(event)

    # --- workspace index -----------------------------------------------------------------
    def start_indexing(self) -> None:
        """Build the workspace index in the background (retrieval context)."""
        if self.workspace_root is None:
            return
        try:
            from repolsp.server.context.index import WorkspaceIndex
        except ImportError:
            return
        root = self.workspace_root

        def run() -> None:
            work = progress.begin(self, "repolsp: indexing workspace", percentage=0)
            try:
                index = WorkspaceIndex([root], data_dir=data_dir_for(root))

                def report(done: int, total: int, path: str) -> None:
                    if total and done % 50 == 0:
                        work.report(f"{done}/{total} files", int(100 * done / total))

                index.build(progress=report)
                self.workspace_index = index
            except Exception as exc:  # noqa: BLE001 - retrieval degrades to no context
                log.warning("workspace indexing failed: %s", exc)
            finally:
                work.end()
            if self.config.history:
                self.history_index = read_history(self, root, self.config.history_max_commits)
                self._follow_history(root)

        threading.Thread(target=run, name="repolsp-index", daemon=True).start()

    HISTORY_POLL_S = float(os.environ.get("REPOLSP_HISTORY_POLL_S", "10"))

    def _follow_history(self, root: Path) -> None:
        """Commits made while the server runs join the history (HEAD checked every few seconds)."""
        while not self._stop_watching.wait(self.HISTORY_POLL_S):
            history = self.history_index
            if history is not None and self.config.history:
                history.catch_up(root)

    def note_document_changed(self, uri: str, saved: bool = False) -> None:
        """Keep the index fresh for open and saved documents (cheap; debounced by the index)."""
        index = self.workspace_index
        doc = self.documents.get(uri)
        path = uri_to_path(uri)
        if index is None or doc is None or path is None:
            return
        try:
            index.note_recent(path)
            if saved or doc.version % 20 == 0:
                index.update_file(path, doc.text)
        except Exception as exc:  # noqa: BLE001
            log.debug("index update failed for %s: %s", uri, exc)

    def stop_training(self) -> None:
        job = self.training
        if job is not None:
            job.cancel()

    # --- model loading -------------------------------------------------------------------
    STORE_POLL_S = 1.0

    def start_watching_store(self) -> None:
        """Follow the store's `default` pointer (what `lsp-models use` and `lsp-train` switch):
        when no model is configured explicitly and the pointer names another model, load it.
        A running server picks up a newly trained model within about a second."""
        def watch() -> None:
            from repolsp.models.store import ModelStore

            store = ModelStore()
            while not self._stop_watching.wait(self.STORE_POLL_S):
                if self.config.engine in ("fake", "openai") or self.config.model \
                        or self.engine_state == EngineState.LOADING:
                    continue
                try:
                    name = store.default_name()
                except OSError:
                    continue
                if name and name != self.model_name and name != self._failed_default:
                    log.info("the store's default model is now %s: loading it", name)
                    self._failed_default = name  # cleared when it loads; no retry loop on failure
                    self.start_loading()

        thread = threading.Thread(target=watch, name="repolsp-store-watch", daemon=True)
        thread.start()

    def start_loading(self) -> None:
        """Load the configured model in the background, reporting $/progress."""
        self.engine_state = EngineState.LOADING
        thread = threading.Thread(target=self._load_engine, name="repolsp-load", daemon=True)
        thread.start()

    def _load_engine(self) -> None:
        with self._load_lock:
            work = progress.WorkDone(self, None)
            try:
                engine, name, template, cap, work = load_engine(self)
                old = self.engine
                self.engine, self.model_name = engine, name
                self.template, self.max_prompt_tokens = template, cap
                self.engine_state, self.engine_error = EngineState.READY, ""
                if old is not None and old is not engine and hasattr(old, "close"):
                    # Released on the engine thread, where it generated (CTranslate2 has
                    # aborted the process when a generator was destroyed elsewhere).
                    self.completions.executor.submit(old.close)
                self._failed_default = None
                log.info("model %s ready (%s)", name, engine.name)
            except (ModelError, Exception) as exc:  # noqa: BLE001 - any load failure is reported
                self.engine, self.engine_state = None, EngineState.ERROR
                self.engine_error = str(exc)
                hint = "" if "lsp-models" in str(exc) or self.config.engine == "openai" else (
                    "; run `lsp-models pull` (or `lsp-models remove NAME` then pull) to fix it"
                )
                self.show(f"cannot load the model: {exc}{hint}", types.MessageType.Error)
            finally:
                work.end(str(self.engine_state))

    def _serving_template(self) -> tuple[PromptTemplate, int | None]:
        """Template and prompt cap for the next prompt (an engine may switch to its fallback)."""
        serving = getattr(self.engine, "serving_template", None)
        return serving() if serving is not None else (self.template, self.max_prompt_tokens)

    # --- workspace -----------------------------------------------------------------------
    def set_workspace(self, root: Path | None) -> None:
        self.workspace_root = root.resolve() if root else None
        if root is not None:
            self.events = EventLog(data_dir_for(root) / "events.jsonl")
