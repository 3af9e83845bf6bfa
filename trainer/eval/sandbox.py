"""Run a generated program in a subprocess without network, with time and memory limits."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# Prepended to every program: memory/CPU/file-size limits, no sockets, no child processes,
# no deleting files. (Set inside the child: preexec_fn is unsafe beside the engine's threads.)
_SANDBOX_PRELUDE = '''\
import os as _os, resource as _resource, socket as _socket, subprocess as _subprocess
import shutil as _shutil
for _limit, _value in ((_resource.RLIMIT_AS, {memory_bytes}), (_resource.RLIMIT_CPU, {cpu_s}),
                       (_resource.RLIMIT_FSIZE, 10_000_000)):
    _resource.setrlimit(_limit, (_value, _value))
def _denied(*_a, **_k):
    raise PermissionError("blocked by the repolsp evaluation sandbox")
class _Denied(_socket.socket):
    def __init__(self, *_a, **_k):
        _denied()
_socket.socket = _Denied
for _name in ("create_connection", "create_server", "getaddrinfo", "socketpair", "fromfd"):
    setattr(_socket, _name, _denied)
_subprocess.Popen = _Denied
for _name in ("system", "popen", "fork", "forkpty", "execv", "execve", "kill", "killpg"):
    if hasattr(_os, _name):
        setattr(_os, _name, _denied)
if {deny_file_changes}:
    for _name in ("remove", "unlink", "rmdir", "removedirs", "rename", "replace", "truncate"):
        setattr(_os, _name, _denied)
    _shutil.rmtree = _shutil.move = _denied
'''


@lru_cache(maxsize=1)
def _network_namespace_prefix() -> tuple[str, ...]:
    """`unshare -rn` when this machine allows a private network namespace, else nothing."""
    tool = shutil.which("unshare")
    if tool is None:
        return ()
    try:
        probe = subprocess.run([tool, "-rn", "true"], capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return ()
    return (tool, "-rn") if probe.returncode == 0 else ()


@dataclass
class SandboxResult:
    """How a sandboxed program ended."""

    passed: bool
    status: str  # "passed" | "failed" | "timeout"
    detail: str = ""
    stdout: str = ""


def run_sandboxed(program: str, timeout_s: float = 10.0, memory_mb: int = 1024,
                  folder: Path | None = None) -> SandboxResult:
    """Run untrusted Python in a subprocess: a temporary folder (or `folder`, a throw-away copy
    the caller made and owns), time/memory limits, no network (a private network namespace
    where allowed, and sockets disabled in the interpreter), no child processes; deleting or
    renaming files is refused too, except in `folder` runs (pytest needs temporary files).
    stdout comes back in `SandboxResult.stdout`."""
    with tempfile.TemporaryDirectory(prefix="repolsp-sandbox-") as scratch:
        workdir = Path(folder) if folder is not None else Path(scratch)
        script = Path(scratch, "program.py")
        prelude = _SANDBOX_PRELUDE.replace("{memory_bytes}", str(memory_mb * 1024 * 1024))
        prelude = prelude.replace("{deny_file_changes}", str(folder is None))
        script.write_text(prelude.replace("{cpu_s}", str(int(timeout_s) + 1)) + program,
                          encoding="utf-8")
        command = [*_network_namespace_prefix(), sys.executable, "-I", "-S", "-B", str(script)]
        env = {"PATH": "/usr/bin:/bin", "HOME": scratch, "TMPDIR": scratch, "PYTHONHASHSEED": "0",
               "LANG": "C.UTF-8", "http_proxy": "http://127.0.0.1:9",
               "https_proxy": "http://127.0.0.1:9"}
        try:
            process = subprocess.Popen(
                command, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True,
            )
        except OSError as exc:
            return SandboxResult(False, "failed", f"cannot start python: {exc}")
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.communicate()
            return SandboxResult(False, "timeout", f"killed after {timeout_s:g} s")
    out = stdout.decode("utf-8", "replace")
    if process.returncode == 0:
        return SandboxResult(True, "passed", stdout=out)
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    return SandboxResult(False, "failed", lines[-1] if lines else f"exit {process.returncode}",
                         stdout=out)
