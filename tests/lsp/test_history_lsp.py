"""History retrieval end to end: the real server reads the workspace's git history, and a line an
earlier commit added (since deleted from the working tree) reaches the prompt the model is sent.
The fake engine writes every prompt it gets to a file (REPOLSP_FAKE_PROMPT_LOG)."""

from __future__ import annotations

import asyncio

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.conftest import import_time_dir
from tests.lsp.clients import CLIENTS, SERVER, capabilities, server_env
from tests.lsp.test_inline_completion import _items, _open, _params, _ready
from tests.trainer.trainer_fixtures import git, make_history

FOLDER = import_time_dir("lsp-history")
PROMPTS = FOLDER / "prompts.log"
DELETED = "return normalise_record(record, strict=settings.strict_mode)"
LOADER_V1 = ("from pkg.settings import settings\n\n\ndef load_record(record):\n"
             f"    record = parse_record(record)\n    {DELETED}\n")
LOADER_V2 = ("from pkg.settings import settings\n\n\ndef load_record(record):\n"
             "    record = parse_record(record)\n    return record\n")
EDITED = ("from pkg.settings import settings\n\n\n"
          + "".join(f"def helper_{i}(value):\n    return value + {i}\n\n\n" for i in range(30))
          + "def load_other(record):\n    record = parse_record(record)\n    \n")


@pytest_lsp.fixture(
    params=CLIENTS,
    config=ClientServerConfig(server_command=SERVER, server_env=server_env(
        REPOLSP_FAKE_COMPLETION="return record\n", REPOLSP_FAKE_PROMPT_LOG=str(PROMPTS),
        REPOLSP_HISTORY_POLL_S="0.2")),
)
async def client(request, lsp_client: LanguageClient):
    repo = FOLDER / f"repo-{request.param}"
    if not repo.exists():
        make_history(repo, [("loader", {"pkg/loader.py": LOADER_V1, "pkg/settings.py": "settings = 1\n"}),
                            ("simplify", {"pkg/loader.py": LOADER_V2})])
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=capabilities(request.param), root_uri=repo.as_uri(),
        initialization_options={"debounceMs": 0}))
    assert (await _ready(lsp_client))["state"] == "ready"
    lsp_client.repo = repo
    yield
    await lsp_client.shutdown_session()


async def _prompts_after(client: LanguageClient, uri: str, text: str, line: int, character: int,
                         tries: int = 100, wanted: str = DELETED) -> list[str]:
    """Ask for completions until the server's history is read (it reads in the background)."""
    _open(client, uri, text)
    seen: list[str] = []
    for attempt in range(tries):
        PROMPTS.write_text("")
        _items(await client.text_document_inline_completion_async(_params(uri, line, character)))
        seen = [p for p in PROMPTS.read_text().split("\n\0\n") if p]
        if any(wanted in p for p in seen):
            break
        # A changed line above the cursor: neither the suggestion cache nor the line-head
        # context cache answers the next request.
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=uri, version=attempt + 2),
            [types.TextDocumentContentChangeWholeDocument(text=f"# attempt {attempt}\n" + text)]))
        line, text = line + 1, f"# attempt {attempt}\n" + text
        await asyncio.sleep(0.1)
    return seen


async def test_a_line_deleted_from_the_working_tree_reaches_the_prompt(client: LanguageClient):
    repo = client.repo
    assert DELETED not in (repo / "pkg" / "loader.py").read_text()
    uri = (repo / "pkg" / "other.py").as_uri()
    line = EDITED.count("\n") - 1
    prompts = await _prompts_after(client, uri, EDITED, line, 4)
    assert prompts, "the model was never asked"
    assert any(DELETED in p for p in prompts), prompts[-1][-800:]


async def test_a_commit_made_while_the_server_runs_reaches_the_prompt(client: LanguageClient):
    """With the server running, commit a function like the one being written, then take it
    out again: its line is in no file, only in the history the server caught up with."""
    line = EDITED.count("\n") - 1
    assert await _prompts_after(client, (client.repo / "pkg" / "fourth.py").as_uri(), EDITED, line, 4)
    committed = "return merge_records(record, defaults=settings.fallback_values)"
    with_it = LOADER_V2 + f"\n\ndef load_other(record):\n    record = parse_record(record)\n    {committed}\n"
    head = git(client.repo, "rev-parse", "HEAD").strip()
    make_history(client.repo, [("merge", {"pkg/loader.py": with_it}), ("unmerge", {"pkg/loader.py": LOADER_V2})])
    try:
        uri = (client.repo / "pkg" / "fifth.py").as_uri()
        prompts = await _prompts_after(client, uri, EDITED, line, 4, wanted=committed)
        assert any(committed in p for p in prompts), prompts[-1][:1500]
    finally:  # the other tests' servers read the history as it was
        git(client.repo, "reset", "-q", "--hard", head)


async def test_history_off_keeps_it_out(client: LanguageClient):
    line = EDITED.count("\n") - 1
    on = await _prompts_after(client, (client.repo / "pkg" / "second.py").as_uri(), EDITED, line, 4)
    assert any(DELETED in p for p in on)  # so that "off" below is not vacuous
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"repolsp": {"history": False, "debounceMs": 0}}))
    await asyncio.sleep(0.2)
    uri = (client.repo / "pkg" / "third.py").as_uri()
    prompts = await _prompts_after(client, uri, EDITED, line, 4, tries=3)
    assert prompts and not any(DELETED in p for p in prompts)
