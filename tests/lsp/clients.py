"""Clients for the headless end-to-end tests: the real `lsp-serve` over stdio. Test modules
import these helpers from here (`tests.lsp.clients`), never from a conftest.

Every test runs against two client capability sets: a VS Code-like one (inline completion,
UTF-16) and a Neovim-like one (no inline completion capability declared, UTF-8 preferred).
"""

from __future__ import annotations

import os
import sys

from lsprotocol import types

from tests.conftest import import_time_dir

SERVER = [sys.executable, "-m", "repolsp.server", "--engine", "fake", "--log-level", "debug"]
_HOME: list[str] = []


def lsp_home() -> str:
    """The servers' REPOLSP_HOME, made on first use under pytest's temporary folder."""
    if not _HOME:
        _HOME.append(str(import_time_dir("lsp-home")))
    return _HOME[0]


def server_env(**extra: str) -> dict[str, str]:
    """The environment of a test server: its own REPOLSP_HOME, unbuffered output, `extra`."""
    env = {**os.environ, "REPOLSP_HOME": lsp_home(), "PYTHONUNBUFFERED": "1"}
    env.update(extra)
    return env


def capabilities(kind: str) -> types.ClientCapabilities:
    """Client capabilities declared by hand (pytest-lsp's snapshots lack inlineCompletion)."""
    window = types.WindowClientCapabilities(work_done_progress=True)
    sync = types.TextDocumentSyncClientCapabilities(did_save=True)
    if kind == "vscode":
        return types.ClientCapabilities(
            text_document=types.TextDocumentClientCapabilities(
                synchronization=sync,
                inline_completion=types.InlineCompletionClientCapabilities(),
                completion=types.CompletionClientCapabilities(),
                code_action=types.CodeActionClientCapabilities(
                    resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"])),
            ),
            workspace=types.WorkspaceClientCapabilities(apply_edit=True, configuration=True),
            window=window,
            general=types.GeneralClientCapabilities(position_encodings=["utf-16"]),
        )
    return types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            synchronization=sync, completion=types.CompletionClientCapabilities(),
            code_action=types.CodeActionClientCapabilities(
                resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"])),
        ),
        workspace=types.WorkspaceClientCapabilities(apply_edit=True),
        window=window,
        general=types.GeneralClientCapabilities(position_encodings=["utf-8", "utf-16"]),
    )


CLIENTS = ["vscode", "neovim"]
