"""server/progress.py: one reporter for every $/progress the server sends."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from types import SimpleNamespace

import pytest
from lsprotocol import types
from repolsp.server import progress


class _Progress:
    """pygls' work_done_progress, recording what would go on the wire."""

    def __init__(self, refuse: bool = False):
        self.refuse = refuse
        self.sent: list[tuple[str, str, object]] = []

    def create(self, token):
        future = Future()
        if self.refuse:
            future.set_exception(RuntimeError("client refused"))
        else:
            future.set_result(None)
        return future

    async def create_async(self, token):
        if self.refuse:
            raise RuntimeError("client refused")

    def begin(self, token, value):
        self.sent.append(("begin", token, value))

    def report(self, token, value):
        self.sent.append(("report", token, value))

    def end(self, token, value):
        self.sent.append(("end", token, value))


def _server(supported: bool = True, refuse: bool = False):
    window = types.WindowClientCapabilities(work_done_progress=supported)
    return SimpleNamespace(client_capabilities=types.ClientCapabilities(window=window),
                           work_done_progress=_Progress(refuse))


def test_begin_report_end_from_a_thread():
    ls = _server()
    work = progress.begin(ls, "repolsp: loading m", percentage=0)
    work.report("3/6 files", 50)
    work.end("ready")
    work.end("twice")  # ends once
    kinds = [(kind, type(value).__name__) for kind, _, value in ls.work_done_progress.sent]
    assert kinds == [("begin", "WorkDoneProgressBegin"), ("report", "WorkDoneProgressReport"),
                     ("end", "WorkDoneProgressEnd")]
    begin, report, end = (value for _, _, value in ls.work_done_progress.sent)
    assert (begin.title, begin.cancellable, begin.percentage) == ("repolsp: loading m", False, 0)
    assert (report.message, report.percentage) == ("3/6 files", 50)
    assert end.message == "ready"
    assert {token for _, token, _ in ls.work_done_progress.sent} == {work_token(ls)}


def work_token(ls) -> str:
    token = ls.work_done_progress.sent[0][1]
    assert token.startswith("repolsp-") and len(token) == len("repolsp-") + 8
    return token


@pytest.mark.parametrize("supported,refuse", [(False, False), (True, True)],
                         ids=["client-without-progress", "client-refuses-create"])
def test_nothing_is_sent_without_support_or_after_a_refusal(supported, refuse):
    ls = _server(supported, refuse)
    work = progress.begin(ls, "t", on_cancel=lambda: None)
    work.report("x")
    work.end("done")
    assert not work.active and ls.work_done_progress.sent == []


def test_cancel_runs_the_callback_while_the_progress_shows():
    ls = _server()
    cancelled = []
    work = progress.begin(ls, "t", token=progress.new_token("train"), on_cancel=lambda: cancelled.append(1))
    token = work.token
    assert token.startswith("repolsp-train-") and ls.work_done_progress.sent[0][2].cancellable is True
    assert progress.cancel(token) is True and cancelled == [1]
    work.end()
    assert progress.cancel(token) is False and cancelled == [1]


def test_async_progress_reports_from_threads_through_the_loop():
    ls = _server()

    async def run():
        async with progress.progress(ls, "repolsp: generating tests", kind="tests") as work:
            await asyncio.to_thread(work.report, "running f")
            await asyncio.sleep(0)  # the report is handed to the loop
        async with progress.progress(ls, None) as nothing:
            nothing.report("not sent")
        return work

    asyncio.run(run())
    sent = ls.work_done_progress.sent
    assert [kind for kind, _, _ in sent] == ["begin", "report", "end"]
    assert sent[0][1].startswith("repolsp-tests-") and sent[1][2].message == "running f"
