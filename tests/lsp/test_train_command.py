"""`repolsp.train` runs `lsp-train` in a subprocess with $/progress, and can be cancelled."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.conftest import import_time_dir
from tests.lsp.clients import capabilities
from tests.trainer.trainer_fixtures import make_history, register_tiny_model

WORK = import_time_dir("train-cmd")  # only named here: the fixture fills it
HOME, REPO = WORK / "home", WORK / "repo"


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=[sys.executable, "-m", "repolsp.server", "--engine", "fake"],
    server_env={**os.environ, "REPOLSP_HOME": str(HOME)}))
async def client(lsp_client: LanguageClient):
    # The repository and the tiny model are built here, not at import: `lsp-train` reads them
    # only when the command runs.
    if not REPO.exists():
        make_history(REPO)
        register_tiny_model(HOME)
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=capabilities("vscode"), root_uri=REPO.as_uri()))
    yield
    await lsp_client.shutdown_session()


async def _wait_for_end(client: LanguageClient, timeout_s: float = 120) -> tuple[str, list]:
    for _ in range(int(timeout_s * 10)):
        for token, reports in client.progress_reports.items():
            if (str(token).startswith("repolsp-train") and reports
                    and isinstance(reports[-1], types.WorkDoneProgressEnd)):
                return token, reports
        await asyncio.sleep(0.1)
    raise AssertionError(f"training did not finish: {client.progress_reports}")


async def test_train_command_reports_progress_and_finishes(client: LanguageClient):
    out = WORK / "examples.jsonl"
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="repolsp.train", arguments=[REPO.as_uri(), "--mine-only", "--out", str(out), "-q"]))
    assert result["started"] is True and result["token"].startswith("repolsp-train")
    again = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="repolsp.train", arguments=["--mine-only", "--out", str(WORK / "again.jsonl"), "-q"]))
    token, reports = await _wait_for_end(client)
    assert token == result["token"]
    assert isinstance(reports[0], types.WorkDoneProgressBegin) and reports[0].cancellable
    assert reports[-1].message == "done", reports
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and {"commit", "path", "kind", "prompt", "completion", "split"} <= set(rows[0])
    assert again == {"started": False}  # one training at a time


async def test_train_command_without_a_repository_is_a_clear_message(client: LanguageClient):
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="repolsp.train", arguments=["file:///no/such/folder"]))
    assert result == {"started": False}
    await asyncio.sleep(0.1)
    assert any("open a folder" in m.message for m in client.messages)


async def test_train_command_can_be_cancelled(client: LanguageClient):
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="repolsp.train", arguments=["--max-steps", "100000", "--no-export", "--no-eval", "-q"]))
    assert result["started"] is True
    token = None
    for _ in range(100):
        token = next((t for t in client.progress_reports if str(t).startswith("repolsp-train")), None)
        if token:
            break
        await asyncio.sleep(0.1)
    assert token == result["token"]  # what a client cancels with from its own UI
    await asyncio.sleep(3)
    client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=result["token"]))
    _, reports = await _wait_for_end(client, 60)
    assert "cancelled" in reports[-1].message
