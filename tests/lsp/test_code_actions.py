"""Code actions and commands "Generate docstring" / "Generate tests", end to end over stdio.

Each test runs against a VS Code-like and a Neovim-like client. The fake engine's text is the
"model output": prose for the docstring server, a pytest body for the tests server.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient
from repolsp.server.context import coords
from repolsp.server.context.document import Document, path_to_uri, uri_to_path
from repolsp.server.context.symbols import enclosing_definition
from repolsp.server.docgen import syntax_error_count

from tests.conftest import import_time_dir
from tests.lsp.clients import SERVER, capabilities, server_env

FIXTURE = Path(__file__).resolve().parent.parent / "data" / "code_actions" / "calc_project"
CLIENTS = ["vscode", "neovim"]
PROSE = "Combine the two inputs into one value.\n"
# The model continues the seed `assert <function>(` of the test body.
TEST_BODY = "1, 2) == 3\n    assert add(-1, 1) == 0\n"


def client_capabilities(kind: str) -> types.ClientCapabilities:
    """The shared capability sets plus what code actions need, as each editor declares it."""
    caps = capabilities(kind)
    literal = types.ClientCodeActionLiteralOptions(types.ClientCodeActionKindOptions(
        value_set=["", "quickfix", "refactor", "refactor.rewrite", "source"]))
    if kind == "vscode":
        resolve = types.ClientCodeActionResolveOptions(properties=["edit"])
        edit = types.WorkspaceEditClientCapabilities(
            document_changes=True, resource_operations=[types.ResourceOperationKind.Create])
    else:  # Neovim 0.11: resolves edit and command; declares resource operations only
        resolve = types.ClientCodeActionResolveOptions(properties=["edit", "command"])
        edit = types.WorkspaceEditClientCapabilities(resource_operations=[
            types.ResourceOperationKind.Rename, types.ResourceOperationKind.Create,
            types.ResourceOperationKind.Delete])
    caps.text_document.code_action = types.CodeActionClientCapabilities(
        code_action_literal_support=literal, resolve_support=resolve, data_support=True)
    caps.workspace.workspace_edit = edit
    caps.workspace.apply_edit = True
    caps.window.show_document = types.ShowDocumentClientCapabilities(support=True)
    return caps


def copy_project() -> Path:
    """A fresh copy of the fixture project (``*.txt`` fixtures renamed to their real names)."""
    root = import_time_dir("calc") / "calc_project"
    shutil.copytree(FIXTURE, root)
    for path in root.rglob("*.txt"):
        path.rename(path.with_suffix(""))
    return root


async def start(client: LanguageClient, kind: str) -> Path:
    root = copy_project()
    client.applied = []  # workspace/applyEdit requests the server sent

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams):
        client.applied.append(params)
        return types.ApplyWorkspaceEditResult(applied=True)

    result = await client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities(kind), root_uri=path_to_uri(root),
        workspace_folders=[types.WorkspaceFolder(uri=path_to_uri(root), name="calc")],
        initialization_options={"debounceMs": 0}))
    client.encoding = str(getattr(result.capabilities.position_encoding, "value", None) or "utf-16")
    client.root = root
    for _ in range(200):
        status = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="repolsp.status", arguments=[]))
        if status["state"] != "loading":
            break
        await asyncio.sleep(0.05)
    return root


@pytest_lsp.fixture(params=CLIENTS, config=ClientServerConfig(
    server_command=SERVER, server_env=server_env(REPOLSP_FAKE_COMPLETION=PROSE)))
async def prose_client(request, lsp_client: LanguageClient):
    await start(lsp_client, request.param)
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(params=CLIENTS, config=ClientServerConfig(
    server_command=SERVER, server_env=server_env(REPOLSP_FAKE_COMPLETION=TEST_BODY)))
async def code_client(request, lsp_client: LanguageClient):
    await start(lsp_client, request.param)
    yield
    await lsp_client.shutdown_session()


NO_MODEL_SERVER = [arg for arg in SERVER if arg not in ("--engine", "fake")]  # ct2 with an empty store


@pytest_lsp.fixture(params=CLIENTS, config=ClientServerConfig(
    server_command=NO_MODEL_SERVER, server_env=server_env(REPOLSP_HOME=str(import_time_dir("empty-home")))))
async def no_model_client(request, lsp_client: LanguageClient):
    await start(lsp_client, request.param)
    yield
    await lsp_client.shutdown_session()


# -- helpers -------------------------------------------------------------------------------------


def open_file(client: LanguageClient, rel: str) -> tuple[str, str]:
    path = client.root / rel
    text = path.read_text(encoding="utf-8")
    uri = path_to_uri(path)
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
    return uri, text


def position_of(client: LanguageClient, text: str, needle: str, delta: int = 0) -> types.Position:
    return types.Position(*coords.offset_to_lsp_position(text, text.index(needle) + delta, client.encoding))


async def actions_at(client: LanguageClient, uri: str, position: types.Position, only=None):
    result = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(position, position),
        context=types.CodeActionContext(diagnostics=[], only=only)))
    return list(result or [])


def apply_workspace_edit(client: LanguageClient, edit: types.WorkspaceEdit, files: dict[str, str]) -> dict[str, str]:
    """Apply a WorkspaceEdit the way an editor does; ``files`` maps URIs to current texts."""
    files = dict(files)

    def apply_text_edits(uri: str, edits) -> None:
        text = files.get(uri)
        assert text is not None, f"edit for a file that does not exist: {uri}"
        spans = []
        for index, e in enumerate(edits):
            start = coords.lsp_position_to_offset(text, e.range.start.line, e.range.start.character, client.encoding)
            end = coords.lsp_position_to_offset(text, e.range.end.line, e.range.end.character, client.encoding)
            spans.append((start, end, index, e.new_text))
        # From the end backwards; inserts at one position keep their array order (LSP rule).
        for start, end, _, new in sorted(spans, reverse=True):
            text = text[:start] + new + text[end:]
        files[uri] = text

    for uri, edits in (edit.changes or {}).items():
        apply_text_edits(uri, edits)
    for change in edit.document_changes or []:
        if isinstance(change, types.CreateFile):
            assert change.options is None or not change.options.overwrite
            files.setdefault(change.uri, "")
        elif isinstance(change, types.TextDocumentEdit):
            apply_text_edits(change.text_document.uri, change.edits)
        else:
            pytest.fail(f"unexpected change {change!r}")
    return files


def disk_text(uri: str) -> str | None:
    path = Path(uri_to_path(uri))
    return path.read_text(encoding="utf-8") if path.exists() else None


async def resolve(client: LanguageClient, action) -> types.WorkspaceEdit:
    assert isinstance(action, types.CodeAction), action
    assert action.edit is None  # computed lazily
    resolved = await client.code_action_resolve_async(action)
    assert resolved.edit is not None, resolved
    return resolved.edit


# -- docstring -----------------------------------------------------------------------------------


async def test_docstring_action_offered_only_where_it_applies(prose_client: LanguageClient):
    uri, text = open_file(prose_client, "src/calc/ops.py")
    titles = [a.title for a in await actions_at(prose_client, uri, position_of(prose_client, text, "def add", 5))]
    assert "Generate docstring for 'add'" in titles
    assert "Generate tests for 'add'" in titles
    documented = [a.title for a in await actions_at(prose_client, uri, position_of(prose_client, text, "def documented", 5))]
    assert not any("docstring" in t for t in documented)
    module_level = await actions_at(prose_client, uri, types.Position(0, 0))
    assert module_level == []
    only_refactor_rewrite = await actions_at(
        prose_client, uri, position_of(prose_client, text, "def add", 5), only=["refactor.rewrite"])
    assert [a.title for a in only_refactor_rewrite] == ["Generate docstring for 'add'"]


async def test_no_actions_for_a_language_switched_off(prose_client: LanguageClient):
    uri, text = open_file(prose_client, "src/calc/ops.py")
    position = position_of(prose_client, text, "def add", 5)
    assert len(await actions_at(prose_client, uri, position)) == 2
    prose_client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"repolsp": {"enabledLanguages": ["go"]}}))
    assert await actions_at(prose_client, uri, position) == []


async def test_docstring_resolve_inserts_a_parsing_first_statement(prose_client: LanguageClient):
    uri, text = open_file(prose_client, "src/calc/ops.py")
    actions = await actions_at(prose_client, uri, position_of(prose_client, text, "raise ZeroDivisionError"))
    action = next(a for a in actions if a.title == "Generate docstring for 'divide'")
    edit = await resolve(prose_client, action)
    new = apply_workspace_edit(prose_client, edit, {uri: text})[uri]
    assert syntax_error_count(new, "python") == 0
    info = enclosing_definition(Document(uri, new), new.index("def divide") + 5)
    assert info.docstring is not None  # the first statement of the body
    assert new.count("\n") > text.count("\n")
    expected = (
        '    """Combine the two inputs into one value.\n'
        "\n"
        "    Args:\n"
        "        a (float): Combine the two inputs into one value.\n"
        "        b (float): TODO: describe. Defaults to 1.0.\n"
        "\n"
        "    Returns:\n"
        "        float: TODO: describe the result.\n"
        "\n"
        "    Raises:\n"
        "        ZeroDivisionError: TODO: say when.\n"
        '    """\n'
        "    if b == 0:\n"
    )
    assert expected in new
    assert new.replace(expected, "    if b == 0:\n") == text  # nothing else changed
    ours = [rs for rs in prose_client.progress_reports.values()
            if rs and getattr(rs[0], "title", "") == "repolsp: writing the docstring"]
    assert len(ours) == 1  # work-done progress while the model writes
    assert [type(r).__name__ for r in ours[0]] == ["WorkDoneProgressBegin", "WorkDoneProgressEnd"]


async def test_docstring_for_method_and_class(prose_client: LanguageClient):
    uri, text = open_file(prose_client, "src/calc/ops.py")
    for needle, name, indent in (("def push", "push", " " * 8), ("class Accumulator", "Accumulator", " " * 4)):
        actions = await actions_at(prose_client, uri, position_of(prose_client, text, needle, 2))
        action = next(a for a in actions if a.title == f"Generate docstring for '{name}'")
        new = apply_workspace_edit(prose_client, await resolve(prose_client, action), {uri: text})[uri]
        assert syntax_error_count(new, "python") == 0
        assert f'{needle.split()[0]} {name}' in new
        after_header = new.split(needle, 1)[1].split("\n", 2)[1]
        assert after_header.startswith(indent + '"""Combine the two inputs')


async def test_docstring_template_when_model_output_is_code(code_client: LanguageClient):
    """The fake engine writes code: the summary is rejected and a TODO template is used."""
    uri, text = open_file(code_client, "src/calc/ops.py")
    actions = await actions_at(code_client, uri, position_of(code_client, text, "def add", 5))
    action = next(a for a in actions if "docstring" in a.title)
    new = apply_workspace_edit(code_client, await resolve(code_client, action), {uri: text})[uri]
    assert '    """TODO: summarize `add`.\n' in new
    assert "assert" not in new.split("def add", 1)[1].split("return", 1)[0]
    assert syntax_error_count(new, "python") == 0


async def test_docstring_command_applies_the_edit(prose_client: LanguageClient):
    uri, text = open_file(prose_client, "src/calc/stats.py")
    position = position_of(prose_client, text, "def mean", 4)
    result = await prose_client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="repolsp.generateDocstring",
        arguments=[uri, {"line": position.line, "character": position.character}]))
    assert result == {"applied": True, "message": ""}
    assert len(prose_client.applied) == 1
    new = apply_workspace_edit(prose_client, prose_client.applied[0].edit, {uri: text})[uri]
    assert '    """Combine the two inputs into one value.\n' in new
    assert "        values (list[float]):" in new
    assert syntax_error_count(new, "python") == 0
    # The non-ASCII comment line after the insertion point is untouched (positions in the
    # negotiated encoding were right).
    assert "(héllo, 😀 non-ASCII on purpose)." in new


async def test_commands_with_bad_arguments_answer_without_crashing(prose_client: LanguageClient):
    uri, _ = open_file(prose_client, "src/calc/ops.py")
    for command, args in (("repolsp.generateDocstring", []), ("repolsp.generateTests", [uri, "nowhere"]),
                          ("repolsp.generateDocstring", ["file:///not/open.py", {"line": 0, "character": 0}]),
                          ("repolsp.generateDocstring", [uri, {"line": 9999, "character": 0}])):
        result = await prose_client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=command, arguments=args))
        assert result["applied"] is False and result["message"]
    assert prose_client.applied == []
    status = await prose_client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="repolsp.status", arguments=[]))
    assert status["state"] == "ready"


async def test_without_a_model_the_actions_still_work(no_model_client: LanguageClient):
    status = await no_model_client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="repolsp.status", arguments=[]))
    assert status["state"] == "error"
    uri, text = open_file(no_model_client, "src/calc/ops.py")
    actions = await actions_at(no_model_client, uri, position_of(no_model_client, text, "def add", 5))
    docstring = next(a for a in actions if "docstring" in a.title)
    new = apply_workspace_edit(no_model_client, await resolve(no_model_client, docstring), {uri: text})[uri]
    assert '    """TODO: summarize `add`.\n' in new and syntax_error_count(new, "python") == 0
    tests = next(a for a in actions if "tests" in a.title)
    target = path_to_uri(no_model_client.root / "tests" / "test_ops.py")
    before = disk_text(target)
    new = apply_workspace_edit(no_model_client, await resolve(no_model_client, tests), {target: before})[target]
    # Without a model the calls still run: tests that pass, no placeholders.
    assert _without_added_imports(new, before).startswith(before) and "def test_add_2(" in new
    assert "TODO" not in new[len(before):]
    assert any(re.fullmatch(r"repolsp: \d+ tests pass, 100% of add covered", m.message) for m in no_model_client.messages)


# -- tests ---------------------------------------------------------------------------------------


def _without_added_imports(new: str, before: str) -> str:
    """The new text without the import lines the edit added."""
    return "".join(line for line in new.splitlines(keepends=True)
                   if not line.startswith(("import ", "from ")) or line in before)


async def test_tests_action_creates_the_test_file(code_client: LanguageClient):
    uri, text = open_file(code_client, "src/calc/stats.py")
    target = path_to_uri(code_client.root / "tests" / "test_stats.py")
    assert disk_text(target) is None
    actions = await actions_at(code_client, uri, position_of(code_client, text, "return sum"))
    action = next(a for a in actions if a.title == "Generate tests for 'mean'")
    edit = await resolve(code_client, action)
    assert isinstance(edit.document_changes[0], types.CreateFile)
    assert edit.document_changes[0].uri == target
    new = apply_workspace_edit(code_client, edit, {uri: text})[target]
    assert syntax_error_count(new, "python") == 0
    assert "from calc.stats import mean\n" in new  # the real module path (src/ layout)
    assert "def test_mean(" in new
    # The fake "model" calls add(), not mean(): the tests come from running mean itself.
    assert "== pytest.approx(expected)" in new and "TODO" not in new


async def test_tests_action_appends_to_the_existing_test_file(code_client: LanguageClient):
    uri, text = open_file(code_client, "src/calc/ops.py")
    target = path_to_uri(code_client.root / "tests" / "test_ops.py")
    before = disk_text(target)
    actions = await actions_at(code_client, uri, position_of(code_client, text, "def add", 5))
    action = next(a for a in actions if a.title == "Generate tests for 'add'")
    edit = await resolve(code_client, action)
    changes = edit.document_changes or []
    assert not any(isinstance(c, types.CreateFile) for c in changes)
    new = apply_workspace_edit(code_client, edit, {target: before})[target]
    assert _without_added_imports(new, before).startswith(before)  # the existing content is untouched
    added = new[new.index("def test_add(") + len("def test_add("):]
    # The "model" proposed add(1, 2) == 3 and add(-1, 1) == 0: both hold, so both are kept.
    assert "@pytest.mark.parametrize(" in added and "        (1, 2, 3),\n        (-1, 1, 0),\n" in added
    assert "def test_add_2(a, b, expected):\n    assert add(a, b) == expected\n" in added
    assert syntax_error_count(new, "python") == 0


async def test_tests_for_method_imports_its_class(code_client: LanguageClient):
    uri, text = open_file(code_client, "src/calc/ops.py")
    target = path_to_uri(code_client.root / "tests" / "test_ops.py")
    before = disk_text(target)
    position = position_of(code_client, text, "def push", 5)
    result = await code_client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="repolsp.generateTests", arguments=[uri, {"line": position.line, "character": position.character}]))
    assert result["applied"] is True
    new = apply_workspace_edit(code_client, code_client.applied[-1].edit, {target: before})[target]
    assert "from calc.ops import Accumulator\n" in new.split("def test_add")[0]
    assert "    accumulator = Accumulator(" in new and "accumulator.push(value)" in new
    shown = code_client.shown_documents[-1]  # the test file opens at the new test
    assert shown.uri == target and not shown.take_focus
    assert new.splitlines()[shown.selection.start.line].startswith("def test_push")
    assert syntax_error_count(new, "python") == 0
    # Only insertions: removing the added imports gives the old file plus the appended test.
    assert _without_added_imports(new, before).startswith(before)


# -- capability fallbacks (no server process needed) ---------------------------------------------


@pytest.mark.parametrize("code_action_caps, expected", [
    (types.CodeActionClientCapabilities(
        code_action_literal_support=types.ClientCodeActionLiteralOptions(
            types.ClientCodeActionKindOptions(value_set=["refactor"])),
        resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"])), "lazy"),
    (types.CodeActionClientCapabilities(
        code_action_literal_support=types.ClientCodeActionLiteralOptions(
            types.ClientCodeActionKindOptions(value_set=["refactor"]))), "command inside"),
    (types.CodeActionClientCapabilities(), "bare command"),
    (None, "bare command"),
], ids=["resolve support", "no resolve", "no literal support", "no code action caps"])
def test_action_shape_follows_client_capabilities(code_action_caps, expected):
    from types import SimpleNamespace

    from repolsp.server.features.code_actions import _action

    ls = SimpleNamespace(client_capabilities=types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(code_action=code_action_caps)))
    position = {"line": 3, "character": 4}
    action = _action(ls, "docstring", "Generate docstring for 'f'", "file:///a.py", position)
    if expected == "lazy":
        assert action.data == {"action": "docstring", "uri": "file:///a.py", "position": position}
        assert action.edit is None and action.command is None
    elif expected == "command inside":
        assert isinstance(action, types.CodeAction)
        assert action.command.command == "repolsp.generateDocstring"
        assert action.command.arguments == ["file:///a.py", position]
    else:
        assert isinstance(action, types.Command) and action.command == "repolsp.generateDocstring"


# -- cancellation ----------------------------------------------------------------------------------

SLOW = "Add the numbers together " * 60  # 0.1 s per word: each model call runs for seconds


@pytest_lsp.fixture(params=["vscode"], config=ClientServerConfig(
    server_command=SERVER, server_env=server_env(REPOLSP_FAKE_COMPLETION=SLOW, REPOLSP_FAKE_DELAY_S="0.1")))
async def slow_client(request, lsp_client: LanguageClient):
    await start(lsp_client, request.param)
    lsp_client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        # completionItems "always": this VS Code-like client has inline completion, and the
        # completion below must reach the engine to show that the engine is free.
        settings={"repolsp": {"debounceMs": 0, "maxNewTokens": {"singleLine": 2, "multiLine": 2},
                              "completionItems": "always"}}))
    yield
    await lsp_client.shutdown_session()


async def test_cancelled_resolve_frees_the_engine(slow_client: LanguageClient):
    """$/cancelRequest on a resolve stops the model within a step: completions are not held up."""
    uri, text = open_file(slow_client, "src/calc/ops.py")
    actions = await actions_at(slow_client, uri, position_of(slow_client, text, "def add", 5))
    action = next(a for a in actions if "docstring" in a.title)
    pending_before = set(slow_client.protocol._request_futures)
    task = asyncio.ensure_future(slow_client.code_action_resolve_async(action))
    await asyncio.sleep(0.4)  # the summary call (40 words, 4 s) is running in the engine thread
    (request_id,) = set(slow_client.protocol._request_futures) - pending_before
    slow_client.protocol.notify("$/cancelRequest", types.CancelParams(id=request_id))
    started = asyncio.get_running_loop().time()
    completion = await slow_client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(slow_client, text, "return a + b", 7)))
    waited_s = asyncio.get_running_loop().time() - started
    assert completion is not None
    assert waited_s < 2.0, f"the completion waited {waited_s:.1f} s behind the cancelled docstring"
    with contextlib.suppress(Exception):  # a cancelled request answers with an error
        await asyncio.wait_for(task, 5)


async def test_tests_append_to_the_unsaved_editor_text(code_client: LanguageClient):
    """An open test file is edited as the editor has it, with its version checked."""
    uri, text = open_file(code_client, "src/calc/ops.py")
    target = path_to_uri(code_client.root / "tests" / "test_ops.py")
    unsaved = disk_text(target) + "\n\ndef test_unsaved():\n    assert True\n"
    code_client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=target, language_id="python", version=7, text=unsaved)))
    actions = await actions_at(code_client, uri, position_of(code_client, text, "def add", 5))
    edit = await resolve(code_client, next(a for a in actions if a.title == "Generate tests for 'add'"))
    changes = edit.document_changes or []
    if changes:  # documentChanges carry the version the edit was computed for
        assert [c.text_document.version for c in changes if isinstance(c, types.TextDocumentEdit)] == [7]
    new = apply_workspace_edit(code_client, edit, {target: unsaved})[target]
    assert _without_added_imports(new, unsaved).startswith(unsaved)
    assert "def test_add_2(" in new.split("def test_unsaved")[1]


# -- tests that run: progress, responsiveness, cancel, bad buffers ---------------------------------

SLEEPY = ("import time\n\n\ndef slow_double(x: int) -> int:\n    time.sleep(0.2)\n    return 2 * x\n\n\n"
          "def add(a: int, b: int) -> int:\n    return a + b\n")


def _open_unsaved(client: LanguageClient, rel: str, text: str) -> str:
    """An editor buffer whose text differs from the file on disk (which stays as it was)."""
    uri = path_to_uri(client.root / rel)
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
    return uri


async def test_tests_run_with_progress_while_completions_answer(code_client: LanguageClient):
    uri = _open_unsaved(code_client, "src/calc/ops.py", SLEEPY)
    actions = await actions_at(code_client, uri, position_of(code_client, SLEEPY, "def slow_double", 5))
    task = asyncio.ensure_future(resolve(code_client, next(a for a in actions if "tests" in a.title)))
    await asyncio.sleep(0.5)  # the sandbox is running slow_double (0.4 s a call)
    started = asyncio.get_running_loop().time()
    await code_client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(code_client, SLEEPY, "return a + b", 7)))
    waited_s = asyncio.get_running_loop().time() - started
    assert not task.done(), "the tests finished before the completion could be checked against them"
    assert waited_s < 2.0, f"the completion waited {waited_s:.1f} s behind the test generation"
    target = path_to_uri(code_client.root / "tests" / "test_ops.py")
    new = apply_workspace_edit(code_client, await asyncio.wait_for(task, 60), {target: disk_text(target)})[target]
    assert "assert slow_double(x) == expected" in new  # the unsaved buffer's function ran
    ours = [r for token, r in code_client.progress_reports.items() if str(token).startswith("repolsp-tests-")]
    assert ours and ours[-1][0].cancellable is True and isinstance(ours[-1][-1], types.WorkDoneProgressEnd)
    assert any(isinstance(r, types.WorkDoneProgressReport) and "in the sandbox" in (r.message or "") for r in ours[-1])


async def test_cancelling_the_progress_stops_the_tests(code_client: LanguageClient):
    text = "def forever(n: int) -> int:\n    while True:\n        n += 1\n"
    uri = _open_unsaved(code_client, "src/calc/ops.py", text)
    actions = await actions_at(code_client, uri, position_of(code_client, text, "def forever", 5))
    task = asyncio.ensure_future(code_client.code_action_resolve_async(next(a for a in actions if "tests" in a.title)))
    for _ in range(100):
        tokens = [t for t in code_client.progress_reports if str(t).startswith("repolsp-tests-")]
        if tokens and len(code_client.progress_reports[tokens[-1]]) >= 2:
            break
        await asyncio.sleep(0.05)
    started = asyncio.get_running_loop().time()
    code_client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=tokens[-1]))
    resolved = await asyncio.wait_for(task, 10)
    assert asyncio.get_running_loop().time() - started < 3
    assert resolved.edit is None and resolved.disabled.reason == "cancelled"


async def test_a_buffer_that_does_not_parse_gets_a_reason_and_the_server_stays_up(code_client: LanguageClient):
    text = "def add(a, b):\n    return a + b\n\n\ndef broken(:\n    pass\n"
    uri = _open_unsaved(code_client, "src/calc/ops.py", text)
    actions = await actions_at(code_client, uri, position_of(code_client, text, "def add", 5))
    await resolve(code_client, next(a for a in actions if "tests" in a.title))
    reason = "the module has a syntax error at line 5 (invalid syntax): nothing was run"
    assert any(m.message == f"repolsp: tests not run: {reason}; offered a skeleton" for m in code_client.messages)
    status = await code_client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="repolsp.status", arguments=[]))
    assert status["state"] == "ready"
