"""Initialization, configuration and document synchronization."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from lsprotocol import types
from repolsp.server.context.document import uri_to_path
from repolsp.server.server import RepolspServer

log = logging.getLogger(__name__)

MAX_DOCUMENT_CHARS = 50_000_000  # beyond this a document is not kept at all
# A JSON "\ud800" escape decodes to a lone surrogate, which no encoder (UTF-8 for tree-sitter,
# the tokenizer, the events log) accepts. U+FFFD is one UTF-16 unit and one code point too, so
# every position the client sends still lands where it meant.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def _workspace_root(params: types.InitializeParams) -> Path | None:
    folders = params.workspace_folders or []
    uri = folders[0].uri if folders else params.root_uri
    path = uri_to_path(uri) if uri else None
    return Path(path) if path else None


def register(server: RepolspServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: RepolspServer, params: types.InitializeParams) -> None:
        encoding = ls.workspace.position_encoding
        ls.position_encoding = str(getattr(encoding, "value", encoding) or "utf-16")
        ls.set_workspace(_workspace_root(params))
        ls.apply_settings(params.initialization_options, "initializationOptions")

    @server.feature(types.INITIALIZED)
    def initialized(ls: RepolspServer, params: types.InitializedParams) -> None:
        if ls.initialized_received:
            log.warning("ignored a second `initialized` notification")
            return
        ls.initialized_received = True
        if ls.engine is None:
            ls.start_loading()  # in the background: initialize has already been answered
            ls.start_watching_store()
        ls.start_indexing()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(ls: RepolspServer, params: types.DidChangeConfigurationParams):
        settings = params.settings
        if isinstance(settings, dict) and isinstance(settings.get("repolsp"), dict):
            settings = settings["repolsp"]
        ls.apply_settings(settings, "settings")

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: RepolspServer, params: types.DidOpenTextDocumentParams) -> None:
        item = params.text_document
        if len(item.text) > MAX_DOCUMENT_CHARS:
            ls.show(f"{item.uri} is too large to assist with ({len(item.text)} characters)",
                    types.MessageType.Warning)
            return
        # lsprotocol's converter lets any JSON value through where a string or an integer is
        # expected in a union; the document layer needs the real types.
        language_id = item.language_id if isinstance(item.language_id, str) else ""
        ls.open_document(item.uri, clean_text(item.text), language_id, item.version)
        ls.note_document_changed(item.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: RepolspServer, params: types.DidChangeTextDocumentParams) -> None:
        doc = ls.document(params.text_document.uri)
        if doc is None:
            return
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                start, end = change.range.start, change.range.end
                doc.apply_change(clean_text(change.text),
                                 ((start.line, start.character), (end.line, end.character)))
            else:
                doc.apply_change(clean_text(change.text), None)
        doc.version = params.text_document.version
        ls.note_document_changed(doc.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: RepolspServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.note_document_changed(params.text_document.uri, saved=True)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: RepolspServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.documents.pop(params.text_document.uri, None)
        ls.completions.forget(params.text_document.uri)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: RepolspServer, params) -> None:
        ls._stop_watching.set()
        ls.stop_training()
        ls.completions.shutdown()
        index = ls.workspace_index
        if index is not None:
            try:
                index.close()  # saves updates still waiting
            except Exception as exc:  # noqa: BLE001
                log.warning("could not save the workspace index: %s", exc)
