"""The editor configurations in editors/README.md, checked against the real server: each client's
exact command line and settings (Helix, Emacs eglot, Zed), and the Neovim install recipes
(packpath, lazy.nvim spec) in a headless Neovim."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tomllib
from pathlib import Path

import pytest
from editor_helpers import REPO_ROOT, run_bounded
from lsp_stdio import StdioClient

README = REPO_ROOT / "editors" / "README.md"


def section(title: str) -> str:
    """The README text under `## title`, up to the next `## ` heading."""
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.DOTALL)


_TOKEN_RE = re.compile(r"\(|\)|\"(?:[^\"\\]|\\.)*\"|[^\s()]+")


def parse_plist(text: str):
    """An Emacs Lisp plist literal (`(:key value ...)`, numbers, strings) -> JSON-like Python."""
    tokens = _TOKEN_RE.findall(text)

    def value(i: int):
        token = tokens[i]
        if token == "(":
            items, i = [], i + 1
            while tokens[i] != ")":
                item, i = value(i)
                items.append(item)
            if items and isinstance(items[0], str) and items[0].startswith(":"):
                return {items[k][1:]: items[k + 1] for k in range(0, len(items), 2)}, i + 1
            return items, i + 1
        if token.startswith('"'):
            return json.loads(token), i + 1
        if re.fullmatch(r"-?\d+", token):
            return int(token), i + 1
        if re.fullmatch(r"-?\d+\.\d*", token):
            return float(token), i + 1
        return {"t": True, "nil": None}.get(token, token), i + 1

    return value(0)[0]


@pytest.fixture(scope="module")
def server_env(isolated_env) -> dict[str, str]:
    """PATH starts with this interpreter's scripts, where `lsp-serve` is installed."""
    scripts = str(Path(sys.executable).parent)
    env = dict(isolated_env, PATH=scripts + os.pathsep + isolated_env.get("PATH", ""))
    if shutil.which("lsp-serve", path=env["PATH"]) is None:
        pytest.skip("the lsp-serve console script is not installed")
    return env


def handshake(cmd: list[str], env: dict[str, str], project: Path, *, init_options=None, settings=None) -> dict:
    """initialize -> (didChangeConfiguration) -> didOpen -> completion -> status -> shutdown."""
    (project / "example.py").write_text("def add(a, b):\n    return a + b\n")
    client = StdioClient(cmd, cwd=project, env=env)
    try:
        init = client.request("initialize", {
            "processId": os.getpid(), "rootUri": project.as_uri(),
            "capabilities": {"textDocument": {"completion": {"completionItem": {"snippetSupport": True}}},
                             "workspace": {"configuration": True}},
            "initializationOptions": init_options,
        })
        assert "result" in init, init
        client.notify("initialized", {})
        if settings is not None:
            client.notify("workspace/didChangeConfiguration", {"settings": settings})
        uri = (project / "example.py").as_uri()
        client.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": (project / "example.py").read_text()}})
        completion = client.request("textDocument/completion", {
            "textDocument": {"uri": uri}, "position": {"line": 1, "character": 4}})
        status = client.request("workspace/executeCommand", {"command": "repolsp.status", "arguments": []})
        code = client.shutdown()
        warnings = [n["params"]["message"] for n in client.notifications
                    if n["method"] == "window/showMessage" and "setting" in n["params"]["message"].lower()]
        return {"capabilities": init["result"]["capabilities"], "completion": completion,
                "status": status.get("result"), "warnings": warnings, "exit_code": code, "stderr": client.stderr}
    finally:
        client.close()


def assert_configured(outcome: dict, single_line: int, debounce_ms: int) -> None:
    assert outcome["capabilities"].get("completionProvider"), outcome["capabilities"]
    assert "error" not in outcome["completion"], outcome["completion"]
    assert outcome["warnings"] == [], outcome["warnings"]
    config = outcome["status"]["config"]
    assert config["maxNewTokens"]["singleLine"] == single_line and config["debounceMs"] == debounce_ms, config
    assert outcome["exit_code"] == 0, outcome["stderr"]


def test_helix_languages_toml(server_env, tmp_path):
    config = tomllib.loads(code_blocks(section("Helix"), "toml")[0])
    server = config["language-server"]["repolsp"]
    assert all("repolsp" in lang["language-servers"] for lang in config["language"])
    outcome = handshake([server["command"], *server["args"]], server_env, tmp_path, init_options=server["config"])
    assert_configured(outcome, server["config"]["maxNewTokens"]["singleLine"], server["config"]["debounceMs"])


def test_emacs_eglot(server_env, tmp_path):
    elisp = code_blocks(section("Emacs (eglot)"), "elisp")[0]
    contact = parse_plist(re.search(r"\.\s*(\(\"lsp-serve\"[^)]*\))", elisp).group(1))
    workspace = parse_plist(re.search(r"eglot-workspace-configuration\s+'(\(.*?\)\))\)", elisp, re.DOTALL).group(1))
    outcome = handshake(contact, server_env, tmp_path, settings=workspace)
    repolsp = workspace["repolsp"]
    assert_configured(outcome, repolsp["maxNewTokens"]["singleLine"], repolsp["debounceMs"])


def test_zed_settings(server_env, tmp_path):
    settings = json.loads(code_blocks(section("Zed"), "json")[0])
    lsp = settings["lsp"]["repolsp"]
    assert "repolsp" in settings["languages"]["Python"]["language_servers"]
    outcome = handshake([lsp["binary"]["path"], *lsp["binary"]["arguments"]], server_env, tmp_path,
                        init_options=lsp["initialization_options"])
    init = lsp["initialization_options"]
    assert_configured(outcome, init["maxNewTokens"]["singleLine"], init["debounceMs"])


def test_zed_extension_declares_the_server():
    manifest = tomllib.loads((REPO_ROOT / "editors" / "zed" / "extension.toml").read_text())
    assert manifest["id"] == "repolsp"
    assert "Python" in manifest["language_servers"]["repolsp"]["languages"]
    source = (REPO_ROOT / "editors" / "zed" / "src" / "lib.rs").read_text()
    assert 'worktree.which("lsp-serve")' in source and "register_extension!" in source


NVIM_CHECK = r"""
local out = { messages = {} }
-- Collect messages (the server's own window/showMessage among them) instead of raising them.
vim.notify = function(msg) table.insert(out.messages, msg) end
local ok, err = pcall(function()
  vim.cmd.edit(vim.env.REPOLSP_TEST_PROJECT .. '/example.py')
  local attached = vim.wait(20000, function()
    return #vim.lsp.get_clients({ name = 'repolsp', bufnr = 0 }) > 0
  end, 50)
  out.attached = attached
  out.single_line = require('repolsp').opts.server_settings.maxNewTokens.singleLine
  out.commands = vim.fn.exists(':RepolspStatus') == 2 and vim.fn.exists(':RepolspDocstring') == 2
  vim.cmd('checkhealth repolsp')
  local report = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  out.health_ok = report:find('OK[^\n]*server command') ~= nil and report:find('OK[^\n]*client %d+ running') ~= nil
  out.health = report
end)
out.error = not ok and tostring(err) or nil
for _, c in ipairs(vim.lsp.get_clients()) do c:stop() end
vim.wait(5000, function() return #vim.lsp.get_clients() == 0 end, 50)
vim.fn.writefile({ vim.json.encode(out) }, vim.env.REPOLSP_TEST_RESULT)
vim.cmd('qall!')
"""


def run_nvim_check(nvim: str, env: dict[str, str], init_lua: str, tmp_path: Path) -> dict:
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "example.py").write_text("def add(a, b):\n    return a + b\n")
    (tmp_path / "init.lua").write_text(init_lua)
    (tmp_path / "check.lua").write_text(NVIM_CHECK)
    result_file = tmp_path / "result.json"
    env = dict(env, REPOLSP_TEST_PROJECT=str(project), REPOLSP_TEST_RESULT=str(result_file))
    result = run_bounded([nvim, "--headless", "-u", str(tmp_path / "init.lua"), "-c", f"luafile {tmp_path / 'check.lua'}"],
                         cwd=project, env=env, timeout_s=90)
    assert result_file.exists(), result.stdout
    return json.loads(result_file.read_text())


def assert_nvim_ok(out: dict, single_line: int) -> None:
    assert out.get("error") is None, out
    assert out["attached"], out
    assert out["commands"], out
    assert out["single_line"] == single_line
    assert out["health_ok"], out["health"]
    # No model is installed in the test's store: the only error allowed is the one that says how
    # to install one, in :checkhealth as in the server's message.
    errors = [line for line in out["health"].splitlines() if "ERROR" in line]
    assert all("model" in line for line in errors), out["health"]
    if errors:
        assert "lsp-models pull" in out["health"], out["health"]


def test_neovim_packpath_install(nvim, server_env, tmp_path):
    """The README's packpath recipe, verbatim, with ~ mapped to a temp home and the checkout."""
    text = section("Neovim")
    shell = code_blocks(text, "sh")[0]
    init_lua = code_blocks(text, "lua")[1]
    home = tmp_path / "home"
    data = home / ".local" / "share"
    env = dict(server_env, HOME=str(home), XDG_DATA_HOME=str(data))
    for line in shell.strip().splitlines():
        args = [a.replace("~/src/repolsp", str(REPO_ROOT)).replace("~", str(home)) for a in line.split()]
        if args[0] == "mkdir":
            Path(args[-1]).mkdir(parents=True, exist_ok=True)
        elif args[0] == "ln":
            Path(args[-1]).symlink_to(args[-2])
    out = run_nvim_check(nvim, env, init_lua, tmp_path)
    assert_nvim_ok(out, single_line=48)


def test_neovim_lazy_spec(nvim, server_env, tmp_path):
    """The README's lazy.nvim spec, loaded the way lazy.nvim uses it: `dir` on the runtimepath,
    then require(main).setup(opts). (lazy.nvim itself cannot be downloaded here.)"""
    spec = code_blocks(section("Neovim"), "lua")[0].replace("~/src/repolsp", str(REPO_ROOT))
    init_lua = (
        f"local spec = (function() return {spec} end)()\n"
        "vim.opt.runtimepath:prepend(vim.fs.normalize(spec.dir))\n"
        "assert(spec.name == 'repolsp')\n"
        "require(spec.main).setup(spec.opts)\n"
    )
    out = run_nvim_check(nvim, server_env, init_lua, tmp_path)
    assert_nvim_ok(out, single_line=48)
