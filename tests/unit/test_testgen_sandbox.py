"""Generated tests run in a sandbox: bad code (hangs, deletes, reads stdin, forks, allocates 10 GB,
uses the network, does not import, does not parse) gets a one-line reason and a marked skeleton,
and nothing outside the sandbox's temporary folder changes."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import pytest
from repolsp.server.context.document import Document, path_to_uri
from repolsp.server.docgen import GenerationSettings
from repolsp.server.testgen import generate_tests
from repolsp.server.testgen.sandbox import (
    SandboxLimits,
    network_namespace_available,
    run_in_sandbox,
)

BAD_CODE = [
    ("never returns", "def spin(n):\n    while True:\n        n += 1\n", "spin",
     "spin did not return within the time limit for any input tried"),
    ("deletes a project file", "import os\n\n\ndef wipe(name):\n    os.remove(SENTINEL)\n    return 1\n", "wipe",
     "wipe could not run in the sandbox: it deletes {sentinel} outside its working folder"),
    ("reads stdin", "def ask(prompt):\n    return input(prompt)\n", "ask",
     "ask could not run in the sandbox: it reads stdin"),
    ("forks", "import os\n\n\ndef split(x):\n    return os.fork()\n", "split",
     "split could not run in the sandbox: it forks"),
    ("allocates 10 GB", "def hog(n):\n    return bytearray(10 * 1024 ** 3)\n", "hog",
     "hog could not run in the sandbox: it needs more memory than the sandbox allows"),
    ("uses the network", "import socket\n\n\ndef fetch(port):\n    return socket.create_connection(('127.0.0.1', 9))\n",
     "fetch", "fetch could not run in the sandbox: it uses the network"),
    ("fails to import", "import not_a_module_anywhere\n\n\ndef f(x):\n    return x\n", "f",
     "importing mod failed: ModuleNotFoundError: No module named 'not_a_module_anywhere'"),
    ("syntax error in the buffer", "def f(x):\n    return x\n\n\ndef g(:\n    pass\n", "f",
     "the module has a syntax error at line 5 (invalid syntax): nothing was run"),
]


def _snapshot(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in root.rglob("*")}


def _generate(root: Path, text: str, name: str, disk_text: str | None = None):
    path = root / "mod.py"
    if disk_text is not None or not path.exists():
        path.write_text(disk_text if disk_text is not None else text, encoding="utf-8")
    doc = Document(path_to_uri(path), text, "python")
    return asyncio.run(generate_tests(doc, text.index(f"def {name}(") + 5, root, GenerationSettings(engine=None)))


@pytest.mark.parametrize("source, name, reason", [c[1:] for c in BAD_CODE], ids=[c[0] for c in BAD_CODE])
def test_bad_code_gets_a_reason_and_a_marked_skeleton(tmp_path, monkeypatch, source, name, reason):
    temp = tmp_path / "temp"  # where the sandbox makes its working folder
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    root = tmp_path / "project"
    root.mkdir()
    sentinel = root / "keep.txt"
    sentinel.write_text("precious", encoding="utf-8")
    source = source.replace("SENTINEL", repr(str(sentinel)))
    (root / "mod.py").write_text(source, encoding="utf-8")
    before = _snapshot(root)
    started = time.monotonic()
    edit = _generate(root, source, name)
    assert time.monotonic() - started < 20
    reason = reason.format(sentinel=sentinel)
    assert edit.message == f"tests not run: {reason}; offered a skeleton"
    assert "\n" not in edit.message
    assert f"    # Skeleton, not run: {reason}.\n" in edit.new_text
    assert sentinel.read_text(encoding="utf-8") == "precious"
    assert _snapshot(root) == before  # nothing in the project changed (the edit is not applied here)
    assert not list(temp.iterdir())  # the sandbox's folder is gone


def test_deleting_files_in_its_working_folder_stays_there(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    (root / "keep.txt").write_text("precious", encoding="utf-8")
    source = ("import os\n\n\ndef tidy(n: int) -> int:\n    for name in os.listdir('.'):\n"
              "        if os.path.isfile(name):\n            os.remove(name)\n    return n\n")
    edit = _generate(root, source, "tidy")
    assert edit.message.endswith("100% of tidy covered") and "TODO" not in edit.new_text
    assert (root / "keep.txt").read_text(encoding="utf-8") == "precious" and (root / "mod.py").is_file()


def test_the_editor_text_runs_not_the_file_on_disk(tmp_path):
    edit = _generate(tmp_path, "def combine(a: int, b: int) -> int:\n    return a * b\n", "combine",
                     disk_text="def combine(a: int, b: int) -> int:\n    return a + b\n")
    assert "        (3, 3, 9),\n" in edit.new_text  # 3 * 3; the saved file would give 6


def test_a_cancelled_run_stops_at_once(tmp_path):
    import threading

    cancel = threading.Event()
    source = "import time\n\n\ndef nap():\n    time.sleep(30)\n"
    job = {"kind": "probe", "module": "nap", "path": str(tmp_path / "nap.py"), "source": source,
           "sys_path": [str(tmp_path)], "lines": [4, 5], "calls": [{"expression": "nap()"}], "per_call_s": 30}
    threading.Timer(0.5, cancel.set).start()
    started = time.monotonic()
    run = run_in_sandbox(job, SandboxLimits(timeout_s=30), cancel)
    assert run.reason == "cancelled" and time.monotonic() - started < 5


def test_the_network_is_cut_by_namespace_where_the_kernel_allows():
    # Not a tautology: the audit hook blocks sockets either way; this records which guard ran.
    job = {"kind": "probe", "module": "m", "path": "/nonexistent/m.py", "source": "x = 1\n", "sys_path": [],
           "lines": [1, 1], "calls": []}
    run = run_in_sandbox(job)
    assert run.result == {"imported": True, "receiver": None, "calls": []}
    assert run.network_namespace is network_namespace_available()
