"""The extension inside the real VS Code (code-server 4.139, driven through chromium by
playwright-core) against the real `lsp-serve` and the real default model.

editors/vscode/e2e/run.js does the clicking; this test installs what it needs (vscode_real.py),
builds the .vsix, runs it and reads its result.json. Set REPOLSP_SKIP_VSCODE_E2E=1 to skip it
where it cannot run; REPOLSP_VSCODE_E2E_OUT=DIR keeps the screenshots and logs in DIR.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import psutil
import pytest
from editor_helpers import run_bounded
from test_vscode import EXTENSION, built_extension  # noqa: F401 - the fixture, shared
from vscode_real import E2E, Missing, prepare

DRIVER_TIMEOUT_S = 600
LATENCY_SAMPLES = 5


def _left_over(out: Path) -> list[psutil.Process]:
    """Processes of this run: their command line names its folder, or their model store is in it."""
    me = psutil.Process()
    ours = {me.pid, *(p.pid for p in me.parents())}  # this test names the folder too
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if proc.pid in ours:
                continue
            if any(str(out) in part for part in proc.info["cmdline"] or []) or \
                    proc.environ().get("REPOLSP_HOME", "").startswith(str(out)):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


@pytest.mark.real_model
def test_extension_in_real_vscode(built_extension, real_store, tmp_path, capsys):  # noqa: F811
    if os.environ.get("REPOLSP_SKIP_VSCODE_E2E"):
        pytest.skip("REPOLSP_SKIP_VSCODE_E2E is set")
    try:
        env = prepare()
    except Missing as exc:
        pytest.fail(f"the real-VS-Code test cannot run: {exc}", pytrace=False)
    vsix = tmp_path / "repolsp.vsix"
    packaged = run_bounded([str(EXTENSION / "node_modules" / ".bin" / "vsce"), "package", "--skip-license",
                            "--allow-missing-repository", "--out", str(vsix)],
                           cwd=EXTENSION, env=built_extension, timeout_s=180)
    assert packaged.returncode == 0, packaged.stdout[-3000:]
    out = Path(os.environ.get("REPOLSP_VSCODE_E2E_OUT") or tmp_path / "vscode-e2e").resolve()
    with capsys.disabled():  # shown in `make test` too, where output is otherwise captured
        print(f"\nreal VS Code: screenshots and logs in {out}", flush=True)
    server = Path(sys.executable).parent / "lsp-serve"
    started = time.monotonic()
    run = run_bounded(["node", "run.js", "--vsix", str(vsix), "--server", str(server), "--home", str(real_store),
                       "--out", str(out), "--python", sys.executable],
                      cwd=E2E, env=env, timeout_s=DRIVER_TIMEOUT_S)
    print(run.stdout[-6000:], f"\n(driver: {time.monotonic() - started:.0f} s)", flush=True)
    with capsys.disabled():
        print(next((line for line in run.stdout.splitlines() if line.startswith("keystroke")), ""), flush=True)
    left = _left_over(out)
    for proc in left:
        proc.kill()
    assert not left, f"processes outlived the run: {[p.info['cmdline'] for p in left]}"
    result = json.loads((out / "result.json").read_text())
    failed = [f"{c['name']}: {c['detail'][:500]}" for c in result["checks"] if not c["ok"]]
    assert not failed, "\n".join(failed) + f"\n(screenshots and logs: {out})"
    assert run.returncode == 0, run.stdout[-3000:]
    assert len(result["latenciesMs"]) == LATENCY_SAMPLES and all(ms > 0 for ms in result["latenciesMs"])
    names = {c["name"] for c in result["checks"]}
    for step in ("Tab accepts it", "Generate docstring", "Show status", "no completion-list item",
                 "Show training report", "Switch model", "Restart server", "Train on this repository", "Show log"):
        assert any(step in name for name in names), f"the run did not check {step!r}"
