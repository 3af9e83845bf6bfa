"""Ctrl-C and SIGTERM during the training loop, taken at a step boundary.

torchrun and accelerate launch start each process in a session of its own and turn a Ctrl-C
into SIGTERM to every process (SIGKILL 30 s later); the server's training job sends SIGINT.
Python's default would end the process wherever it is, in the middle of an optimizer update or
while the other processes wait on it. Instead the first signal is only noted: the loop reads it
once per step, before the update, and every process leaves at that same step with a checkpoint
of whole steps. A second signal interrupts at once.
"""

from __future__ import annotations

import signal
import threading
from typing import Self


class DeferredStop:
    """While entered (main thread only): SIGINT / SIGTERM set `requested`; a second raises
    KeyboardInterrupt."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self._previous: dict = {}

    def _note(self, _signum, _frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._note) for s in self.SIGNALS}
        return self

    def __exit__(self, *_exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
