"""Code actions and commands "Generate docstring" and "Generate tests".

The actions are cheap to list (tree-sitter only); the edit is computed lazily in
`codeAction/resolve` (model in the engine executor). Clients without resolve support get the
same work through the commands, which apply the edit with `workspace/applyEdit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from pathlib import Path

from lsprotocol import types
from repolsp.server.context import coords
from repolsp.server.context.document import Document, path_to_uri, uri_to_path
from repolsp.server.docgen import (
    DocstringEdit,
    GenerationSettings,
    docstring_target,
    generate_docstring,
)
from repolsp.server.progress import progress
from repolsp.server.server import EngineState, RepolspServer
from repolsp.server.testgen import AddTestEdit, generate_tests, target_for_tests

log = logging.getLogger(__name__)

DOCSTRING_COMMAND = "repolsp.generateDocstring"
TESTS_COMMAND = "repolsp.generateTests"
DOCSTRING_KIND = "refactor.rewrite.repolsp.docstring"
TESTS_KIND = "refactor.repolsp.tests"
MAX_UINTEGER = 2**31 - 1  # LSP's uinteger: what types.Position accepts
_KINDS = {"docstring": (DOCSTRING_KIND, DOCSTRING_COMMAND), "tests": (TESTS_KIND, TESTS_COMMAND)}


def register(server: RepolspServer) -> None:
    """textDocument/codeAction, codeAction/resolve and the two generate commands."""
    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[types.CodeActionKind.RefactorRewrite, types.CodeActionKind.Refactor],
            resolve_provider=True,
        ),
    )
    def code_action(ls: RepolspServer, params: types.CodeActionParams):
        doc = ls.document_for_request(params.text_document.uri)
        language_id = getattr(doc, "language_id", None) or getattr(doc, "language", "")
        if doc is None or not (ls.config.language_enabled(language_id) or ls.config.language_enabled(doc.language)):
            return []  # unknown document, or a language the user switched off
        offset = ls.checked_offset(doc, params.range.start)
        position = {"line": params.range.start.line, "character": params.range.start.character}
        return [_action(ls, kind, title, doc.uri, position)
                for kind, title in available_actions(doc, offset)
                if _kind_wanted(_KINDS[kind][0], params.context.only)]

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def resolve(ls: RepolspServer, action: types.CodeAction) -> types.CodeAction:
        data = action.data if isinstance(action.data, dict) else {}
        result = await compute_edit(ls, data.get("action"), data.get("uri"), data.get("position"))
        if isinstance(result, str):
            ls.show(result, types.MessageType.Warning)
            action.disabled = types.CodeActionDisabled(reason=result)
        else:
            action.edit = result
        return action

    @server.command(DOCSTRING_COMMAND)
    async def docstring_command(ls: RepolspServer, *args) -> dict:
        return await _apply(ls, "docstring", args)

    @server.command(TESTS_COMMAND)
    async def tests_command(ls: RepolspServer, *args) -> dict:
        return await _apply(ls, "tests", args)


def available_actions(doc: Document, offset: int) -> list[tuple[str, str]]:
    """(action, title) pairs offered at ``offset``: docstring for an undocumented definition,
    tests for a callable a test can reach."""
    found = []
    target = docstring_target(doc, offset)
    if target is not None and not target.has_docstring:
        found.append(("docstring", f"Generate docstring for '{target.name}'"))
    callable_ = target_for_tests(doc, offset)
    if callable_ is not None:
        found.append(("tests", f"Generate tests for '{callable_.name}'"))
    return found


def _kind_wanted(kind: str, only: list[str] | None) -> bool:
    return not only or any(kind == o or kind.startswith(f"{o}.") for o in only)


def _action(ls: RepolspServer, kind: str, title: str, uri: str, position: dict):
    code_kind, command = _KINDS[kind]
    text_caps = ls.client_capabilities.text_document
    caps = text_caps.code_action if text_caps else None
    resolvable = bool(caps and caps.resolve_support and "edit" in caps.resolve_support.properties)
    if caps is None or caps.code_action_literal_support is None:
        return types.Command(title=title, command=command, arguments=[uri, position])
    if resolvable:
        return types.CodeAction(title=title, kind=code_kind,
                                data={"action": kind, "uri": uri, "position": position})
    return types.CodeAction(title=title, kind=code_kind,
                            command=types.Command(title=title, command=command, arguments=[uri, position]))


def parse_position(value) -> tuple[int, int] | None:
    """(line, character) from a wire position: {"line", "character"}, [line, character] or a
    Position; None when malformed or out of LSP's range."""
    if isinstance(value, types.Position):
        return value.line, value.character
    if isinstance(value, dict):
        value = (value.get("line"), value.get("character"))
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_UINTEGER for v in value):
        return value[0], value[1]
    return None


async def compute_edit(ls: RepolspServer, kind, uri, position) -> types.WorkspaceEdit | str:
    """The WorkspaceEdit for a docstring/tests request, or a message for the user."""
    result = await generate(ls, kind, uri, position)
    if isinstance(result, str):
        return result
    if isinstance(result, DocstringEdit):
        doc = ls.documents.get(uri)
        return _docstring_workspace_edit(ls, doc, result) if doc is not None else f"{uri} was closed"
    return _tests_workspace_edit(ls, result)


async def generate(ls: RepolspServer, kind, uri, position) -> DocstringEdit | AddTestEdit | str:
    """Run docstring or test generation for a wire request (model in the engine executor)."""
    parsed = parse_position(position)
    if not isinstance(kind, str) or kind not in _KINDS or not isinstance(uri, str) or parsed is None:
        return "malformed request: expected (uri, position)"
    doc = ls.document_for_request(uri)
    if doc is None:
        return f"{uri} is not open"
    offset = ls.checked_offset(doc, types.Position(*parsed))
    engine = ls.engine if ls.engine_state == EngineState.READY else None
    settings = GenerationSettings(
        engine=engine, executor=ls.completions.executor,
        timeout_s=ls.config.request_timeout_ms / 1000, max_prompt_tokens=ls.max_prompt_tokens,
    )
    cancel = threading.Event()
    try:
        async with progress(ls, "repolsp: writing the docstring" if engine is not None and kind == "docstring" else None):
            if kind == "docstring":
                result = await generate_docstring(doc, offset, settings, cancel)
            else:
                open_docs = {str(Path(p).resolve()): d for u, d in ls.documents.items()
                             if (p := uri_to_path(u)) is not None}
                versions = {path: d.version for path, d in open_docs.items()}
                open_texts = {path: d.text for path, d in open_docs.items()}
                async with progress(ls, "repolsp: generating tests", kind="tests", on_cancel=cancel.set) as work:
                    result = await generate_tests(doc, offset, ls.workspace_root, settings, open_texts, cancel,
                                                  progress=work.report, workspace=ls.workspace_index)
                if isinstance(result, AddTestEdit):
                    # The edit is for the text read before the model ran: the editor must still
                    # have that version, or it rejects the edit instead of misplacing it.
                    result.existing_version = versions.get(str(result.path.resolve()))
    except asyncio.CancelledError:
        cancel.set()  # $/cancelRequest: stop the sandboxed runs too
        raise
    except Exception as exc:
        log.exception("%s generation failed", kind)
        return f"generating the {kind} failed: {exc}"
    if isinstance(result, AddTestEdit) and result.message:
        ls.show(result.message, types.MessageType.Info)  # "3 tests pass, 85% of f covered"
    elif not isinstance(result, str) and engine is None:
        why = "the model is still loading" if ls.engine_state == EngineState.LOADING else (
            "no model is loaded (run `lsp-models pull`)")
        ls.show(f"{why}: the {kind} are a template with TODOs" if kind == "tests"
                else f"{why}: the docstring is a template with TODOs", types.MessageType.Info)
    return result


def _supports_document_changes(ls: RepolspServer) -> tuple[bool, bool]:
    """(documentChanges, create-file operations) from the client's capabilities."""
    workspace = ls.client_capabilities.workspace
    caps = workspace.workspace_edit if workspace else None
    if caps is None:
        return False, False
    operations = [str(getattr(op, "value", op)) for op in (caps.resource_operations or [])]
    create = "create" in operations
    return bool(caps.document_changes) or create, create


def _text_edits(ls: RepolspServer, uri: str, version: int | None, edits: list[types.TextEdit],
                document_changes: bool) -> types.WorkspaceEdit:
    if document_changes:
        identifier = types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version)
        return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(identifier, edits)])
    return types.WorkspaceEdit(changes={uri: edits})


def _docstring_workspace_edit(ls: RepolspServer, doc: Document, edit: DocstringEdit) -> types.WorkspaceEdit:
    ins = edit.insertion
    text_edit = types.TextEdit(
        types.Range(types.Position(*doc.position_at(ins.start)), types.Position(*doc.position_at(ins.end))),
        ins.new_text,
    )
    document_changes, _ = _supports_document_changes(ls)
    return _text_edits(ls, doc.uri, doc.version, [text_edit], document_changes)


def _tests_workspace_edit(ls: RepolspServer, edit: AddTestEdit) -> types.WorkspaceEdit:
    uri = path_to_uri(edit.path)
    open_doc = ls.documents.get(uri)
    encoding = open_doc.encoding if open_doc is not None else ls.position_encoding

    def position(offset: int) -> types.Position:
        return types.Position(*coords.offset_to_lsp_position(edit.existing, offset, encoding))

    edits = [types.TextEdit(types.Range(position(i.start), position(i.end)), i.new_text)
             for i in edit.insertions]
    version = edit.existing_version if open_doc is not None else None
    document_changes, can_create = _supports_document_changes(ls)
    if not edit.create:
        return _text_edits(ls, uri, version, edits, document_changes)
    if can_create:
        create = types.CreateFile(uri=uri, options=types.CreateFileOptions(overwrite=False, ignore_if_exists=True))
        identifier = types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=None)
        return types.WorkspaceEdit(document_changes=[create, types.TextDocumentEdit(identifier, edits)])
    # The client cannot create files: create it empty here, then edit it like any other file.
    edit.path.parent.mkdir(parents=True, exist_ok=True)
    with open(edit.path, "a", encoding="utf-8"):  # "a": never truncates a file made meanwhile
        pass
    return _text_edits(ls, uri, None, edits, document_changes)


async def _apply(ls: RepolspServer, kind: str, args) -> dict:
    """Run a generate command: compute the edit, `workspace/applyEdit` it, then show a new test."""
    uri, position = (args[0], args[1]) if len(args) >= 2 else (None, None)
    result = await generate(ls, kind, uri, position)
    if isinstance(result, str):
        ls.show(result, types.MessageType.Warning)
        return {"applied": False, "message": result}
    if isinstance(result, DocstringEdit):
        doc = ls.documents.get(uri)
        if doc is None:  # closed while the model was writing
            return {"applied": False, "message": f"{uri} was closed"}
        edit, label = _docstring_workspace_edit(ls, doc, result), "Generate docstring"
    else:
        edit, label = _tests_workspace_edit(ls, result), "Generate tests"
    try:
        response = await ls.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(edit=edit, label=label))
    except Exception as exc:  # noqa: BLE001 - a client that rejects the request
        ls.show(f"the editor did not apply the edit: {exc}", types.MessageType.Warning)
        return {"applied": False, "message": str(exc)}
    if response.applied and isinstance(result, AddTestEdit):
        await _show_test(ls, result)
    return {"applied": bool(response.applied), "message": response.failure_reason or ""}


def new_test_line(edit: AddTestEdit) -> int:
    """0-based line of the new test's definition in the edited test file."""
    text = edit.new_text
    name = re.escape(edit.test_name)
    found = None
    for match in re.finditer(rf"^[ \t]*(?:async def|def|fn|func|void|test\(')[ ]?{name}\b", text, flags=re.MULTILINE):
        found = match  # the last one: new tests are appended
    return text.count("\n", 0, found.start()) if found else 0


async def _show_test(ls: RepolspServer, edit: AddTestEdit) -> None:
    """Open the test file at the new test (`window/showDocument`), when the client can."""
    window = ls.client_capabilities.window
    if window is None or window.show_document is None or not window.show_document.support:
        return
    line = new_test_line(edit)
    at = types.Range(types.Position(line, 0), types.Position(line, 0))
    with contextlib.suppress(Exception):  # showing the file is a courtesy
        await ls.window_show_document_async(types.ShowDocumentParams(
            # Without focus: Neovim's focusing path reads the word under the cursor and fails
            # (E348) when the cursor is on a blank; the user stays where they were anyway.
            uri=path_to_uri(edit.path), take_focus=False, selection=at))
