"""Exit when the editor that started us is gone (`--clientProcessId`).

An editor that crashes or is killed cannot send `shutdown`/`exit`, and the pipe to a server
started through a wrapper can stay open; without this the server (and its model, and any
`lsp-train` child) would outlive the editor.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psutil

log = logging.getLogger(__name__)

POLL_S = 1.0


def process_alive(pid: int, started_at: float | None) -> bool:
    """True while `pid` runs and is the same process (a reused pid has a new start time)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started_at is None or process.create_time() == started_at
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        return False


def start_time(pid: int) -> float | None:
    """The process's start time, or None when it is not running."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def watch_parent(pid: int, on_gone: Callable[[], None], poll_s: float = POLL_S) -> threading.Thread:
    """Calls `on_gone` (from a daemon thread) once `pid` is no longer running."""
    started_at = start_time(pid)

    def run() -> None:
        while started_at is not None and process_alive(pid, started_at):
            time.sleep(poll_s)
        log.info("client process %d is gone; exiting", pid)
        on_gone()

    thread = threading.Thread(target=run, name="repolsp-parent-watch", daemon=True)
    thread.start()
    return thread
