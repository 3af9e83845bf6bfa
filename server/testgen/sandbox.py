"""Run user code in a sandbox: a subprocess, never the server process.

Each run gets a fresh temporary working folder (also its HOME and TMPDIR; removed afterwards),
stdin closed, a wall-clock timeout (the whole process group is killed), and limits on CPU time,
address space and file size that the runner sets on itself with ``resource.setrlimit`` before any
user code runs (not in ``preexec_fn``: that is unsafe in a server with threads). The network is cut
twice where possible: the process runs in its own network namespace (``unshare --net
--map-root-user``, when the kernel allows it here) and, always, an audit hook in the runner refuses
sockets, new processes, stdin reads and file changes outside the working folder (see `_runner`).
The audit hook guards against accidents, not against code written to escape it (ctypes can).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

RUNNER = Path(__file__).with_name("_runner.py")


@dataclass(frozen=True)
class SandboxLimits:
    """What one sandboxed run may use."""

    timeout_s: float = 20.0  # wall clock for the whole run
    cpu_s: int = 20
    memory_mb: int = 2048  # address space: Python, pytest and Hypothesis need a few hundred MB
    file_mb: int = 64
    python: str = field(default_factory=lambda: sys.executable)


@dataclass
class SandboxRun:
    """The outcome of one run: the runner's result, or a one-line reason it has none."""

    result: dict | None
    reason: str = ""
    seconds: float = 0.0
    partial: list[dict] = field(default_factory=list)  # calls recorded before a run was killed
    stdout: str = ""  # the last 64 KB the run printed (a test runner's report)
    network_namespace: bool = False


@functools.cache
def network_namespace_available() -> bool:
    """True when ``unshare --net --map-root-user`` works for this user on this kernel."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    try:
        done = subprocess.run([unshare, "--net", "--map-root-user", "true"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _environment(workdir: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "VIRTUAL_ENV", "SYSTEMROOT")}
    return {**keep, "HOME": workdir, "TMPDIR": workdir, "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONIOENCODING": "utf-8", "NO_COLOR": "1",
            # The generated tests need no plugin; loading every installed one costs seconds.
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "HYPOTHESIS_STORAGE_DIRECTORY": hypothesis_cache_dir()}


def hypothesis_cache_dir() -> str:
    """Where Hypothesis keeps its caches between sandboxed runs (the one folder outside the run's
    own that the run may write to): building its Unicode tables costs seconds on every fresh run."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "repolsp", "hypothesis")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return tempfile.mkdtemp(prefix="repolsp-hypothesis-")
    return folder


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.wait()


def _reason_from_exit(code: int, stderr_tail: str, limits: SandboxLimits) -> str:
    if code in (-signal.SIGXCPU, -signal.SIGKILL, 128 + signal.SIGXCPU):
        return f"the code used more than {limits.cpu_s} s of CPU"
    if code == -signal.SIGXFSZ:
        return f"the code wrote a file larger than {limits.file_mb} MB"
    last = [line for line in stderr_tail.splitlines() if line.strip()]
    if last and "MemoryError" in last[-1]:
        return "the code needs more memory than the sandbox allows"
    return f"the sandbox exited with code {code}: {last[-1][:200] if last else 'no output'}"


def run_in_sandbox(job: dict, limits: SandboxLimits | None = None, cancel: threading.Event | None = None) -> SandboxRun:
    """Run one job (see `_runner`) in a fresh sandbox; blocks until it ends (call it off the loop)."""
    limits = limits or SandboxLimits()
    workdir = tempfile.mkdtemp(prefix="repolsp-sandbox-")
    started = time.monotonic()
    netns = network_namespace_available()
    try:
        job = {**job, "limits": {"cpu_s": limits.cpu_s, "memory_mb": limits.memory_mb, "file_mb": limits.file_mb}}
        for name, text in job.get("files", {}).items():  # sources and tests the run needs, in its folder
            os.makedirs(os.path.dirname(os.path.join(workdir, name)), exist_ok=True)  # a crate's src/
            with open(os.path.join(workdir, name), "w", encoding="utf-8") as handle:
                handle.write(text)
        job = {**job, "argv": [a.replace("{workdir}", workdir) for a in job.get("argv", [])]}
        job_path = os.path.join(workdir, "job.json")
        with open(job_path, "w", encoding="utf-8") as handle:
            json.dump(job, handle)
        command = [limits.python, "-I", "-B", str(RUNNER), job_path]
        if netns:
            command = ["unshare", "--net", "--map-root-user", *command]
        with open(os.path.join(workdir, "stdout.txt"), "wb") as out, \
                open(os.path.join(workdir, "stderr.txt"), "wb") as err:
            process = subprocess.Popen(command, cwd=workdir, env=_environment(workdir), stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=err, start_new_session=True)
            reason = _wait(process, limits, cancel)
        seconds = time.monotonic() - started
        partial = _read_lines(os.path.join(workdir, "calls.jsonl"))
        printed = _tail(os.path.join(workdir, "stdout.txt"), 65536)
        if reason:
            return SandboxRun(None, reason, seconds, partial, stdout=printed, network_namespace=netns)
        if job["kind"] == "exec":
            return SandboxRun({"exit_code": process.returncode}, "", seconds, partial, stdout=printed,
                              network_namespace=netns)
        result_path = os.path.join(workdir, "result.json")
        if process.returncode == 0 and os.path.isfile(result_path):
            with open(result_path, encoding="utf-8") as handle:
                return SandboxRun(json.load(handle), "", seconds, partial, network_namespace=netns)
        tail = _tail(os.path.join(workdir, "stderr.txt"), 4000)
        log.info("sandbox run failed (%s): %s", process.returncode, tail[-1000:])
        return SandboxRun(None, _reason_from_exit(process.returncode, tail, limits), seconds, partial,
                          network_namespace=netns)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _wait(process: subprocess.Popen, limits: SandboxLimits, cancel: threading.Event | None) -> str:
    """Wait for the process; kill its group on timeout or cancel. A reason, or "" when it ended."""
    deadline = time.monotonic() + limits.timeout_s
    while True:
        try:
            process.wait(timeout=0.05)
            return ""
        except subprocess.TimeoutExpired:
            pass
        if cancel is not None and cancel.is_set():
            _kill(process)
            return "cancelled"
        if time.monotonic() > deadline:
            _kill(process)
            return f"the code did not finish within {limits.timeout_s:g} s"


def _read_lines(path: str) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except (OSError, ValueError):
        return []


def _tail(path: str, size: int) -> str:
    """The end of a file the run wrote; "" when the code under test deleted it."""
    try:
        return Path(path).read_bytes()[-size:].decode("utf-8", "replace")
    except OSError:
        return ""
