"""VS Code extension: unit tests (mocked `vscode`), the stdio smoke test against the real server,
and the offline .vsix build. Runs `npm ci` first when node_modules is missing or stale."""

from __future__ import annotations

import json
import re
import shutil
import sys
import tomllib
import zipfile

import pytest
from editor_helpers import REPO_ROOT, run_bounded

EXTENSION = REPO_ROOT / "editors" / "vscode"
NPM_CI_TIMEOUT_S = 240


def _tap_counts(output: str) -> dict[str, int]:
    """The `# pass N` / `# fail N` / `# skipped N` summary of node:test's TAP output."""
    return {k: int(v) for k, v in re.findall(r"^# (pass|fail|skipped|cancelled) (\d+)$", output, re.MULTILINE)}


def _installed_is_current() -> bool:
    marker = EXTENSION / "node_modules" / ".package-lock.json"
    lock = EXTENSION / "package-lock.json"
    return marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime


@pytest.fixture(scope="module")
def built_extension(isolated_env) -> dict[str, str]:
    """node_modules installed (npm ci) and the TypeScript compiled; returns the env to use."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the VS Code extension tests")
    env = dict(isolated_env)
    if not _installed_is_current():
        # --ignore-scripts: no install script is needed to compile, test or package, and
        # @vscode/vsce-sign's would try to fetch a binary.
        result = run_bounded(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"],
            cwd=EXTENSION, env=env, timeout_s=NPM_CI_TIMEOUT_S,
        )
        assert result.returncode == 0, f"npm ci failed:\n{result.stdout}"
    result = run_bounded(["npm", "run", "--silent", "compile"], cwd=EXTENSION, env=env, timeout_s=120)
    assert result.returncode == 0, f"tsc failed:\n{result.stdout}"
    return env


def test_unit_tests_with_mocked_vscode(built_extension):
    result = run_bounded(["node", "--test", "out/test/unit/"], cwd=EXTENSION, env=built_extension, timeout_s=120)
    counts = _tap_counts(result.stdout)
    assert result.returncode == 0 and counts.get("fail") == 0, result.stdout[-6000:]
    assert counts.get("pass", 0) >= 60, counts


def test_smoke_drives_real_server_over_stdio(built_extension, fake_server_cmd):
    env = dict(built_extension, REPOLSP_SERVER_PYTHON=sys.executable)
    result = run_bounded(["node", "--test", "out/test/smoke/"], cwd=EXTENSION, env=env, timeout_s=120)
    counts = _tap_counts(result.stdout)
    assert result.returncode == 0, result.stdout[-6000:]
    assert counts.get("pass") == 1 and counts.get("skipped") == 0, result.stdout[-6000:]


def test_package_builds_vsix_offline(built_extension, tmp_path):
    vsix = EXTENSION / "repolsp.vsix"
    vsix.unlink(missing_ok=True)
    try:
        result = run_bounded(["npm", "run", "--silent", "package"], cwd=EXTENSION, env=built_extension, timeout_s=180)
        assert result.returncode == 0, result.stdout[-6000:]
        with zipfile.ZipFile(vsix) as archive:
            names = set(archive.namelist())
            manifest = json.loads(archive.read("extension/package.json"))
    finally:
        vsix.unlink(missing_ok=True)
    assert "extension/out/extension.js" in names
    assert any(n.startswith("extension/node_modules/vscode-languageclient/") for n in names)
    assert not any(n.startswith(("extension/out/test/", "extension/src/")) for n in names)
    assert not any(n.startswith("extension/node_modules/typescript/") for n in names), "dev dependency packaged"
    assert manifest["version"] == _python_version()


def _python_version() -> str:
    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["version"]


def test_extension_is_versioned_with_the_python_package():
    manifest = json.loads((EXTENSION / "package.json").read_text())
    assert manifest["version"] == _python_version(), "run `npm run sync-version` in editors/vscode"


def test_settings_defaults_match_the_server_config():
    """The extension's setting defaults are the server's, so an untouched setting changes nothing."""
    from repolsp.server.config import Config, config_to_wire

    server = config_to_wire(Config())
    properties = json.loads((EXTENSION / "package.json").read_text())["contributes"]["configuration"]["properties"]
    for key, spec in properties.items():
        name = key.removeprefix("repolsp.")
        if name.startswith(("server.", "trace.")):
            continue
        value = server
        for part in name.split("."):
            value = value[part]
        assert spec["default"] == value, f"{key}: extension default {spec['default']!r}, server {value!r}"
