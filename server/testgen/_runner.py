"""Entry point of a sandboxed run; executed ONLY in the sandbox subprocess (see `sandbox`).

``python -I -B _runner.py JOB_JSON``: applies the resource limits to itself before any user code
runs, installs the guard (an audit hook that blocks the network, processes and file changes
outside the temporary folder, and a stdin that refuses reads), makes the target module import from
the editor's text under its real path, then runs the job ("probe": call candidates, see `_probe`;
"pytest": run a test file with coverage) and writes ``result.json`` into the temporary folder.

It imports nothing from repolsp: the sandbox must not load the server.
"""

import importlib.abc
import importlib.util
import json
import os
import resource
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


class SandboxViolation(RuntimeError):
    """The code tried something the sandbox forbids."""


VIOLATIONS: list[str] = []
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATH_EVENTS = {
    "os.remove": "deletes", "os.rmdir": "deletes", "shutil.rmtree": "deletes", "os.rename": "moves",
    "os.mkdir": "creates", "os.chmod": "changes", "os.chown": "changes", "os.link": "links",
    "os.symlink": "links", "os.truncate": "truncates", "os.utime": "touches", "shutil.move": "moves",
}
_PROCESS_EVENTS = {"os.fork", "os.forkpty", "os.posix_spawn", "os.exec", "os.spawn", "os.system",
                   "subprocess.Popen", "os.kill", "os.killpg", "pty.spawn"}
_NETWORK_EVENTS = {"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
                   "socket.gethostbyname", "socket.gethostbyaddr", "urllib.Request"}


def apply_limits(cpu_s: int, memory_mb: int, file_mb: int) -> None:
    """CPU seconds, address space and file size of this process (and anything it could start)."""
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_mb << 20, file_mb << 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _inside(path, folder: str) -> bool:
    if isinstance(path, int) or path is None:
        return True  # a file descriptor already open (stdout, a temp file)
    try:
        real = os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return False
    return real == folder or real.startswith(folder + os.sep) or real in ("/dev/null", "/dev/tty")


def install_guard(workdir: str, also_writable: tuple[str, ...] = ()) -> None:
    """An audit hook that refuses what a test of ordinary code never needs to do."""
    folder = os.path.realpath(workdir)
    extra = tuple(os.path.realpath(p) for p in also_writable)

    def allowed(path) -> bool:
        return _inside(path, folder) or any(_inside(path, other) for other in extra)

    def refuse(what: str) -> None:
        VIOLATIONS.append(what)
        raise SandboxViolation(f"sandbox: the code {what}")

    def hook(event: str, args) -> None:
        if event == "open":
            path, mode, flags = args
            writes = bool(mode and set(str(mode)) & set("wax+")) or bool(
                mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS)
            if writes and not allowed(path):
                refuse(f"writes {os.fsdecode(path)} outside its working folder")
        elif event in _PATH_EVENTS:
            for path in args[:2] if event in ("os.rename", "os.link", "os.symlink", "shutil.move") else args[:1]:
                if not allowed(path):
                    refuse(f"{_PATH_EVENTS[event]} {path} outside its working folder")
        elif event in _PROCESS_EVENTS:
            if event in ("os.kill", "os.killpg") and args and args[0] in (os.getpid(), 0):
                return
            refuse("starts or signals a process" if event != "os.fork" else "forks")
        elif event in _NETWORK_EVENTS:
            refuse("uses the network")

    sys.addaudithook(hook)
    sys.stdin = _NoStdin()


class _NoStdin:
    """stdin of the sandbox: closed; reading it is a violation rather than a silent EOF."""

    closed = True

    def _refuse(self, *args, **kwargs):
        VIOLATIONS.append("reads stdin")
        raise SandboxViolation("sandbox: the code reads stdin")

    read = readline = readlines = __iter__ = __next__ = _refuse

    def fileno(self):
        return self._refuse()

    def isatty(self):
        return False


class _BufferFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports the target module from the editor's text, with its real path as ``__file__``
    (so coverage, tracebacks and relative imports see the real file)."""

    def __init__(self, module: str, path: str, source: str):
        self.module, self.path, self.source = module, path, source

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.module:
            return None
        package = os.path.basename(self.path) == "__init__.py"
        spec = importlib.util.spec_from_loader(fullname, self, origin=self.path, is_package=package)
        spec.has_location = True
        if package:
            spec.submodule_search_locations = [os.path.dirname(self.path)]
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.__file__ = self.path
        code = compile(self.source, self.path, "exec", dont_inherit=True)
        exec(code, module.__dict__)  # noqa: S102 - the user's own module, inside the sandbox


def prepare_imports(job: dict) -> None:
    """sys.path from the job (the project's import roots), the buffer finder first in meta_path."""
    sys.path[:0] = [p for p in job.get("sys_path", []) if p not in sys.path]
    sys.meta_path.insert(0, _BufferFinder(job["module"], job["path"], job["source"]))


def run_pytest(job: dict, workdir: str) -> dict:
    """Run the job's test file with pytest under coverage; per-test outcomes and covered lines."""
    import coverage
    import pytest

    test_path = os.path.join(workdir, job.get("test_file", "test_generated.py"))
    with open(test_path, "w", encoding="utf-8") as handle:
        handle.write(job["test_text"])
    with open(os.path.join(workdir, "pytest.ini"), "w", encoding="utf-8") as handle:
        handle.write("[pytest]\n")
    outcomes: list[dict] = []

    class Recorder:
        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_makereport(self, item, call):
            report = (yield).get_result()
            if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
                callspec = getattr(item, "callspec", None)
                outcome = "xfailed" if hasattr(report, "wasxfail") and report.skipped else (
                    "xpassed" if hasattr(report, "wasxfail") else report.outcome)
                crash = getattr(report.longrepr, "reprcrash", None)
                outcomes.append({
                    "function": item.originalname, "index": callspec.indices if callspec else None,
                    "outcome": outcome, "message": (crash.message if crash else "")[:300],
                })

    cov = coverage.Coverage(data_file=None, include=[job["path"]], branch=False)
    cov.start()
    try:
        code = pytest.main([test_path, "-q", "-p", "no:cacheprovider", "-c", os.path.join(workdir, "pytest.ini"),
                            "--rootdir", workdir, "-W", "ignore::DeprecationWarning"], plugins=[Recorder()])
    finally:
        cov.stop()
    lines = sorted(cov.get_data().lines(job["path"]) or [])
    return {"exit_code": int(code), "tests": outcomes, "lines": lines, "violations": VIOLATIONS}


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        job = json.load(handle)
    workdir = os.getcwd()
    limits = job["limits"]
    apply_limits(limits["cpu_s"], limits["memory_mb"], limits["file_mb"])
    if job["kind"] == "exec":  # another runtime (node): the limits stay on across exec
        os.execvp(job["argv"][0], job["argv"])
    sys.path[:] = [p for p in sys.path if os.path.realpath(p) != _HERE]
    sys.dont_write_bytecode = True
    prepare_imports(job)
    if job["kind"] == "pytest":
        import hypothesis  # noqa: F401 - loaded before the guard: it writes its own folders
        import pytest  # noqa: F401
    # Hypothesis's own cache (its Unicode tables take seconds to build): kept between runs.
    install_guard(workdir, tuple(p for p in [os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY")] if p))
    if job["kind"] == "probe":
        sys.path.insert(0, _HERE)
        import _probe

        sys.path.remove(_HERE)
        result = _probe.run(job, os.path.join(workdir, "calls.jsonl"), VIOLATIONS)
    else:
        result = run_pytest(job, workdir)
    with open(os.path.join(workdir, "result.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
