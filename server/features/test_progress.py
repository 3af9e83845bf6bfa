"""Work-done progress for "Generate tests": cancellable, with a line per step (the steps run in
other threads, so reports are handed to the event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import AsyncIterator, Callable

from lsprotocol import types

_CANCELS: dict[str, threading.Event] = {}


def cancel_by_token(token) -> bool:
    """Cancel the test generation shown under ``token`` (window/workDoneProgress/cancel)."""
    event = _CANCELS.get(str(token))
    if event is None:
        return False
    event.set()
    return True


@contextlib.asynccontextmanager
async def tests_progress(ls, cancel: threading.Event,
                         title: str = "repolsp: generating tests") -> AsyncIterator[Callable[[str], None]]:
    """Yields ``report(message)``, callable from any thread; a no-op without client support."""
    loop = asyncio.get_running_loop()
    window = ls.client_capabilities.window
    token = None
    if window is not None and window.work_done_progress:
        token = f"repolsp-tests-{uuid.uuid4().hex[:8]}"
        try:
            await asyncio.wait_for(ls.work_done_progress.create_async(token), timeout=2)
            ls.work_done_progress.begin(token, types.WorkDoneProgressBegin(title=title, cancellable=True))
            _CANCELS[token] = cancel
        except Exception:  # noqa: BLE001 - progress is a courtesy; the tests still come
            token = None

    def report(message: str) -> None:
        if token is not None:
            loop.call_soon_threadsafe(_report, ls, token, message)

    try:
        yield report
    finally:
        if token is not None:
            _CANCELS.pop(token, None)
            with contextlib.suppress(Exception):
                ls.work_done_progress.end(token, types.WorkDoneProgressEnd())


def _report(ls, token: str, message: str) -> None:
    with contextlib.suppress(Exception):  # the client may have ended it (cancel)
        ls.work_done_progress.report(token, types.WorkDoneProgressReport(message=message))
