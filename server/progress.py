"""Work-done progress ($/progress) for the server's long work: model loading, indexing, training,
docstrings and test generation all report through one `WorkDone`.

Progress is a courtesy: without the client's `window.workDoneProgress` nothing is sent, and a client
that refuses or ignores it still gets the work done, so every failure here is swallowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Callable

from lsprotocol import types

_CANCELS: dict[str, Callable[[], None]] = {}
_CANCELS_LOCK = threading.Lock()


def new_token(kind: str = "") -> str:
    """A fresh token, `repolsp-<kind>-<8 hex>` (`repolsp-<8 hex>` without a kind)."""
    return f"repolsp-{kind}-{uuid.uuid4().hex[:8]}" if kind else f"repolsp-{uuid.uuid4().hex[:8]}"


def cancel(token) -> bool:
    """window/workDoneProgress/cancel: run the cancel callback registered under ``token``."""
    with _CANCELS_LOCK:
        on_cancel = _CANCELS.get(str(token))
    if on_cancel is None:
        return False
    on_cancel()
    return True


class WorkDone:
    """One progress token; `report` may be called from any thread, `end` once."""

    def __init__(self, ls, token: str | None, loop: asyncio.AbstractEventLoop | None = None):
        self.ls = ls
        self.token = token  # None: the client does not show progress (or refused this one)
        self.loop = loop  # set when begun on the event loop: reports from threads go through it

    @property
    def active(self) -> bool:
        return self.token is not None

    def report(self, message: str | None = None, percentage: int | None = None) -> None:
        if self.token is None:
            return
        value = types.WorkDoneProgressReport(message=message, percentage=percentage)
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._send_report, value)
        else:
            self._send_report(value)

    def end(self, message: str | None = None) -> None:
        token, self.token = self.token, None
        if token is None:
            return
        with _CANCELS_LOCK:
            _CANCELS.pop(token, None)
        with contextlib.suppress(Exception):
            self.ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))

    def _send_report(self, value: types.WorkDoneProgressReport) -> None:
        token = self.token
        if token is None:
            return
        with contextlib.suppress(Exception):  # the client may have ended it (cancel)
            self.ls.work_done_progress.report(token, value)


def _supported(ls) -> bool:
    window = ls.client_capabilities.window
    return bool(window is not None and window.work_done_progress)


def _begin_value(title: str, on_cancel, message, percentage) -> types.WorkDoneProgressBegin:
    return types.WorkDoneProgressBegin(title=title, cancellable=on_cancel is not None,
                                       message=message, percentage=percentage)


def _register(token: str, on_cancel: Callable[[], None] | None) -> None:
    if on_cancel is not None:
        with _CANCELS_LOCK:
            _CANCELS[token] = on_cancel


def begin(ls, title: str, *, token: str | None = None, on_cancel: Callable[[], None] | None = None,
          message: str | None = None, percentage: int | None = None, timeout_s: float = 5) -> WorkDone:
    """Start progress from a worker thread (waits up to ``timeout_s`` for the client's create)."""
    if not _supported(ls):
        return WorkDone(ls, None)
    token = token or new_token()
    try:
        ls.work_done_progress.create(token).result(timeout=timeout_s)
        ls.work_done_progress.begin(token, _begin_value(title, on_cancel, message, percentage))
    except Exception:  # noqa: BLE001 - a client that refuses progress still gets the work
        return WorkDone(ls, None)
    _register(token, on_cancel)
    return WorkDone(ls, token)


async def begin_async(ls, title: str, *, token: str | None = None,
                      on_cancel: Callable[[], None] | None = None, timeout_s: float = 2) -> WorkDone:
    """Start progress from the event loop; its reports may then come from any thread."""
    loop = asyncio.get_running_loop()
    if not _supported(ls):
        return WorkDone(ls, None, loop)
    token = token or new_token()
    try:
        await asyncio.wait_for(ls.work_done_progress.create_async(token), timeout=timeout_s)
        ls.work_done_progress.begin(token, _begin_value(title, on_cancel, None, None))
    except Exception:  # noqa: BLE001 - progress is a courtesy; the edit still comes
        return WorkDone(ls, None, loop)
    _register(token, on_cancel)
    return WorkDone(ls, token, loop)


@contextlib.asynccontextmanager
async def progress(ls, title: str | None, *, kind: str = "", on_cancel: Callable[[], None] | None = None):
    """``async with progress(ls, title) as work:`` begins and always ends; no title: no progress."""
    work = (await begin_async(ls, title, token=new_token(kind), on_cancel=on_cancel)
            if title else WorkDone(ls, None))
    try:
        yield work
    finally:
        work.end()
