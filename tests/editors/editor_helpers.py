"""Helpers for the editor tests (a uniquely named module: several test folders have a conftest)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_bounded(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout_s: float) -> subprocess.CompletedProcess:
    """Runs `cmd` in its own process group; on timeout kills the whole group and fails the test.

    A group kill matters: nvim and node start `lsp-serve` children that must not outlive the test.
    """
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} ran past {timeout_s:.0f} s; output:\n{out}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


def nvim_version(binary: str) -> tuple[int, int]:
    """(major, minor) of an nvim binary; (0, 0) when it does not say."""
    out = subprocess.run([binary, "--version"], check=False, capture_output=True, text=True, timeout=30).stdout
    match = re.search(r"NVIM v(\d+)\.(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)
