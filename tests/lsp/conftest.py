"""Clients for the headless end-to-end tests: the real `lsp-serve` over stdio.

Every test runs against two client capability sets: a VS Code-like one (inline completion,
UTF-16) and a Neovim-like one (no inline completion capability declared, UTF-8 preferred).
"""

from __future__ import annotations

import os
import sys
import tempfile

from lsprotocol import types

SERVER = [sys.executable, "-m", "repolsp.server", "--engine", "fake", "--log-level", "debug"]
HOME = tempfile.mkdtemp(prefix="repolsp-lsp-home-")


def server_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "REPOLSP_HOME": HOME, "PYTHONUNBUFFERED": "1"}
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
