"""Neovim plugin: pure Lua unit tests, and the plugin against the real `lsp-serve` (fake engine)
in headless Neovim: native inline completion (0.12), the ghost-text fallback, and the Neovim 0.10
start path (vim.lsp.start) with the fallback."""

from __future__ import annotations

import ast
import json
import re
import shutil

import pytest
from editor_helpers import REPO_ROOT, nvim_version, run_bounded

LUA_TESTS = REPO_ROOT / "tests" / "editors" / "nvim"
LIVE_TIMEOUT_S = 90

# Line 2 is the indented, empty body where the inline suggestion is requested.
EXAMPLE = "def add(a, b):\n    \n\n\ndef scale(values, factor):\n    return [v * factor for v in values]\n"



def _parse(output: str) -> dict[str, tuple[str, str]]:
    """Harness lines `ok - name (..)`, `skip - name: why`, `not ok - name` -> {name: (status, detail)}."""
    results: dict[str, tuple[str, str]] = {}
    for line in output.splitlines():
        if m := re.match(r"^ok - (.*) \(\d+ ms\)$", line):
            results[m.group(1)] = ("ok", "")
        elif m := re.match(r"^skip - (.*?): (.*)$", line):
            results[m.group(1)] = ("skip", m.group(2))
        elif m := re.match(r"^not ok - (.*)$", line):
            results[m.group(1)] = ("fail", output)
    return results


def test_lua_unit_tests(nvim, isolated_env):
    result = run_bounded([nvim, "--headless", "--clean", "-l", str(LUA_TESTS / "test_unit.lua")],
                         cwd=REPO_ROOT, env=isolated_env, timeout_s=60)
    assert result.returncode == 0, result.stdout
    assert re.search(r"^(\d+) tests, 0 failed$", result.stdout, re.MULTILINE), result.stdout
    assert len(_parse(result.stdout)) >= 30


def _training_report(project, home: str):
    """A report where `lsp-train` leaves the workspace's newest one (markdown + chart)."""
    from pathlib import Path

    from repolsp.server.workspace_data import data_dir_for

    report = data_dir_for(project, Path(home)) / "train" / "report.md"
    report.parent.mkdir(parents=True)
    report.write_text("# lsp-train: before / after\n\n![chart](report.png)\n")
    (report.parent / "report.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return report


@pytest.fixture(scope="module", params=["native", "fallback", "legacy"])
def live(request, nvim, isolated_env, fake_server_cmd, tmp_path_factory):
    """One headless Neovim session against the real server; results by Lua test name."""
    mode = request.param
    if mode == "native" and nvim_version(nvim) < (0, 12):
        pytest.skip("native inline completion needs Neovim 0.12")
    project = tmp_path_factory.mktemp(f"nvim-{mode}")
    (project / ".git").mkdir()  # a root marker, as in a real repository
    (project / "example.py").write_text(EXAMPLE)
    report = _training_report(project, isolated_env["REPOLSP_HOME"])
    env = dict(isolated_env, REPOLSP_TEST_CMD=json.dumps(fake_server_cmd), REPOLSP_TEST_INLINE=mode,
               REPOLSP_TEST_WORKDIR=str(project), REPOLSP_TEST_OUT=str(project),
               REPOLSP_TEST_REPORT=str(report))
    result = run_bounded([nvim, "--headless", "--clean", "-l", str(LUA_TESTS / "test_live.lua")],
                         cwd=REPO_ROOT, env=env, timeout_s=LIVE_TIMEOUT_S)
    return {"mode": mode, "project": project, "output": result.stdout, "rc": result.returncode,
            "results": _parse(result.stdout)}


def _expect(live, name: str) -> None:
    status, detail = live["results"].get(name, ("missing", live["output"]))
    if status == "skip":
        pytest.skip(detail)
    assert status == "ok", f"[{live['mode']}] {name}: {status}\n{detail}"


def test_attaches_to_lsp_serve(live):
    _expect(live, "setup finds the server and the plugin attaches to lsp-serve")


def test_inline_suggestion_appears_and_is_accepted(live):
    _expect(live, "an inline suggestion appears in insert mode and Tab accepts it")


def test_status_command(live):
    _expect(live, ":RepolspStatus reports the served model")


def test_report_command_opens_the_training_report(live):
    _expect(live, ":RepolspReport opens the training report in a split and names its chart")


def test_settings_change_without_restart(live):
    _expect(live, "configure() reaches the running server without a restart")


def test_checkhealth_reports_ok(live):
    _expect(live, ":checkhealth repolsp reports OK")
    report = (live["project"] / "checkhealth.txt").read_text()
    assert "ERROR" not in report and "OK" in report, report


def test_docstring_code_action_gives_a_file_that_parses(live):
    _expect(live, "the docstring code action changes the buffer to a file that parses")
    tree = ast.parse((live["project"] / "docstring_result.py").read_text())
    add = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "add")
    assert ast.get_docstring(add), "no docstring on add()"


def test_generate_commands_apply_server_edits(live):
    _expect(live, ":RepolspDocstring and :RepolspTests apply the server's edits")
    ast.parse((live["project"] / "tests_result.py").read_text())


def test_session_ends_cleanly(live):
    assert live["rc"] == 0, live["output"]


def test_help_file_has_the_tags_messages_point_to(nvim, isolated_env, tmp_path):
    """`:help repolsp-install` (named in the missing-server message) and each command resolve."""
    plugin = tmp_path / "repolsp"
    shutil.copytree(REPO_ROOT / "editors" / "nvim", plugin)
    tags = ["repolsp-install", ":RepolspTrain", ":RepolspModel", ":RepolspReport", "repolsp-setup"]
    script = tmp_path / "help.lua"
    script.write_text(
        f"vim.opt.runtimepath:prepend({json.dumps(str(plugin))})\n"
        f"vim.cmd.helptags({json.dumps(str(plugin / 'doc'))})\n"
        f"for _, tag in ipairs(vim.json.decode({json.dumps(json.dumps(tags))})) do\n"
        "  local ok = pcall(vim.cmd.help, tag)\n"
        "  io.stdout:write(tag .. ' ' .. tostring(ok and vim.fn.expand('%:t') == 'repolsp.txt') .. '\\n')\n"
        "end\n"
    )
    result = run_bounded([nvim, "--headless", "--clean", "-l", str(script)], cwd=tmp_path, env=isolated_env, timeout_s=30)
    for tag in tags:
        assert f"{tag} true" in result.stdout, result.stdout
