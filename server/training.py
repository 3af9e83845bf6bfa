"""`repolsp.train`: run `lsp-train` on the workspace in a subprocess, with $/progress; and the
opt-in idle run of `lsp-train --incremental` (`IdleTrainer`, setting `trainWhenIdle`)."""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lsprotocol import types
from repolsp.server import progress

log = logging.getLogger(__name__)
_PERCENT_RE = re.compile(r"(\d{1,3})%")


class TrainingJob:
    """One training run; cancel() interrupts it (the trainer keeps its checkpoint)."""

    def __init__(self, server, root: Path, extra_args: list[str] | None = None,
                 title: str = "repolsp: training on this repository", reload_after: bool = True):
        self.server = server
        self.title = title
        # The idle run leaves reloading to the store watcher: it reloads only when the run
        # switched the served model (most idle runs find nothing new or keep the old one).
        self.reload_after = reload_after
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
        self.work = progress.begin(self.server, self.title, token=self.token,
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
            if self.reload_after:
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


INCREMENTAL_ARGS = ["--incremental", "-q"]


class IdleTrainer:
    """Runs `lsp-train --incremental` once the editor has been idle for `idle_train_after_s`
    (no edits, no completion requests), when the user opted in (`trainWhenIdle`) and a model
    `lsp-train` made is served. One try per idle spell: after it, the next try waits for new
    activity. The run is an ordinary TrainingJob: $/progress, cancellable, held-out guard."""

    def __init__(self, server, check_s: float = 15.0, clock: Callable[[], float] = time.monotonic):
        self.server = server
        self.check_s = check_s
        self.clock = clock
        self._last_key = None
        self._since = clock()
        self._tried_key = None
        self._stop = threading.Event()

    def activity_key(self) -> tuple:
        """Changes whenever the user types (document versions) or asks for completions."""
        documents = list(self.server.documents.values())
        return (self.server.completions.metrics.requests, len(documents),
                sum(doc.version or 0 for doc in documents))

    def tick(self) -> bool:
        """One check; True when it started a run."""
        key = self.activity_key()
        if key != self._last_key:
            self._last_key, self._since = key, self.clock()
        server, config = self.server, self.server.config
        if (not config.train_when_idle or key == self._tried_key
                or self.clock() - self._since < config.idle_train_after_s
                or server.workspace_root is None or not server.initialized_received
                or (server.training is not None and server.training.running)):
            return False
        from repolsp.server.model_info import served_model_facts

        if not served_model_facts(server.model_name)["tuned"]:
            return False  # nothing to continue: a full `lsp-train` comes first
        self._tried_key = key
        log.info("idle for %ds: starting lsp-train --incremental", config.idle_train_after_s)
        server.training = TrainingJob(server, server.workspace_root, list(INCREMENTAL_ARGS),
                                      title="repolsp: learning from new commits (idle)",
                                      reload_after=False)
        server.training.start()
        return True

    def start(self) -> None:
        threading.Thread(target=self._run, name="repolsp-idle-train", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.check_s):
            try:
                self.tick()
            except Exception:
                log.warning("idle training check failed", exc_info=True)
