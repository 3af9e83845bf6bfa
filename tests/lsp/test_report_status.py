"""`repolsp.status` names the served model, the gain `lsp-train` measured for it, and the
training report the editors open ("repolsp: show training report")."""

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
from tests.trainer.trainer_fixtures import register_tiny_model

WORK = import_time_dir("report-status")
HOME, REPO = WORK / "home", WORK / "repo"
EVALUATION = {"baseModel": "tiny-smollm2", "n": 400, "exactMatchBase": 0.1, "exactMatchTuned": 0.25,
              "ratio": 2.5, "meanDiff": 0.15, "ci95": [0.1, 0.2],
              "bySource": {"prompt": {"n": 60, "base": 0.3, "tuned": 0.7}}}


def _install_tuned_model() -> None:
    """The tiny model registered as if `lsp-train` had made and evaluated it, served."""
    from repolsp.models.store import ModelStore
    from repolsp.server.workspace_data import data_dir_for

    REPO.mkdir(parents=True)
    register_tiny_model(HOME, name="tiny-smollm2-repo-tuned")
    report = data_dir_for(REPO, HOME) / "train" / "report.md"
    report.parent.mkdir(parents=True)
    report.write_text("# lsp-train: before / after\n\n![chart](report.png)\n")
    store = ModelStore(HOME)
    path = store.models_dir / "tiny-smollm2-repo-tuned" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["base_model"] = "tiny-smollm2"
    manifest["extra"] = {"training": {"steps": 4}, "evaluation": {**EVALUATION, "report": str(report),
                                        "chart": str(report.with_suffix(".png"))}}
    path.write_text(json.dumps(manifest))


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=[sys.executable, "-m", "repolsp.server"],
    server_env={**os.environ, "REPOLSP_HOME": str(HOME)}))
async def client(lsp_client: LanguageClient):
    if not REPO.exists():
        _install_tuned_model()
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=capabilities("neovim"), root_uri=REPO.as_uri()))
    yield
    await lsp_client.shutdown_session()


async def test_status_names_the_served_model_and_its_measured_gain(client: LanguageClient):
    status = {}
    for _ in range(300):
        status = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="repolsp.status", arguments=[]))
        if status["state"] != "loading":
            break
        await asyncio.sleep(0.1)
    assert status["state"] == "ready", status
    served = status["servedModel"]
    assert served["name"] == status["model"] == "tiny-smollm2-repo-tuned"
    assert served["baseModel"] == "tiny-smollm2" and served["tuned"] is True
    assert served["gain"]["exactMatchTuned"] == 0.25
    assert served["summary"] == ("exact match 10.0% -> 25.0% (2.50x; paired 95% CI [+10.0, +20.0] "
                                 "points; n=400) on held-out commits")
    assert status["trainingReport"] == served["report"] and status["trainingReport"].endswith("report.md")
