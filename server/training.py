"""`repolsp.train`: run `lsp-train` on the workspace in a subprocess, with $/progress."""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from lsprotocol import types
from repolsp.server import progress

log = logging.getLogger(__name__)
_PERCENT_RE = re.compile(r"(\d{1,3})%")


class TrainingJob:
    """One training run; cancel() interrupts it (the trainer keeps its checkpoint)."""

    def __init__(self, server, root: Path, extra_args: list[str] | None = None):
        self.server = server
        self.root = root
        self.extra_args = extra_args or []
        self.token = progress.new_token("train")
        self.work = progress.WorkDone(server, None)
        self.process: subprocess.Popen | None = None
        self.running = False
        self.cancelled = False
        self.last_line = ""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "repolsp.trainer.cli", str(self.root), *self.extra_args]

    def start(self) -> None:
        self.running = True
        threading.Thread(target=self._run, name="repolsp-train", daemon=True).start()

    def _begin(self) -> None:
        self.work = progress.begin(self.server, "repolsp: training on this repository", token=self.token,
                                   on_cancel=self.cancel, message="starting", percentage=0)

    def _run(self) -> None:
        self._begin()
        try:
            self.process = subprocess.Popen(
                self.command(), cwd=self.root, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            )
        except OSError as exc:
            self.running = False
            self.server.show(f"cannot start lsp-train: {exc}", types.MessageType.Error)
            self.work.end("failed")
            return
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            # tqdm redraws with \r: the last segment is the current state.
            line = raw.rstrip("\n").split("\r")[-1].strip()
            if not line:
                continue
            self.last_line = line
            match = _PERCENT_RE.search(line)
            self.work.report(line[:200], int(match.group(1)) if match else None)
        code = self.process.wait()
        self.running = False
        self.server.training = None
        if self.cancelled:
            self.work.end("cancelled; the checkpoint is kept (resume with lsp-train --resume)")
            self.server.show("training cancelled; resume later with `lsp-train --resume`")
        elif code == 0:
            self.work.end("done")
            self.server.show(f"training finished: {self.last_line}")
            self.server.start_loading()
        else:
            self.work.end("failed")
            self.server.show(f"training failed: {self.last_line}", types.MessageType.Error)

    def cancel(self) -> None:
        """Interrupt the trainer (it saves a checkpoint and exits); kill it if it hangs."""
        self.cancelled = True
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)

        def reap() -> None:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()

        threading.Thread(target=reap, name="repolsp-train-reap", daemon=True).start()
