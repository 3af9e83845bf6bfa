"""A thousand hostile messages over stdio: every request answered exactly once, with the
code the specification gives; notifications never answered; no server-fault traceback."""

from __future__ import annotations

import sys
import time

from tests.lsp.clients import server_env
from tests.lsp.fuzz import run_fuzz
from tests.lsp.fuzz_corpus import SERVER_NOT_INITIALIZED, Corpus

FAKE_SERVER = [sys.executable, "-m", "repolsp.server", "--engine", "fake", "--log-level", "info"]


def test_a_thousand_fuzzed_messages_each_request_answered_once(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    started = time.monotonic()
    report = run_fuzz(FAKE_SERVER, workspace, server_env(), count=1000, seed=16,
                      probe_every=50, probe_timeout_s=30, settle_s=30)
    assert report.failures() == []
    assert report.alive and report.exit_code == 0 and report.final_status["state"] == "ready"
    assert report.probes == 20 and len(report.probe_ms) == 20  # the probe answered every 50
    assert sum(1 for n in report.probe_items if n) == 20  # and each time the engine suggested
    assert report.requests > 400 and report.notifications > 250 and len(report.null_received) > 50
    assert time.monotonic() - started < 60


def test_corpus_is_seeded_and_hostile(tmp_path):
    def bodies(seed: int) -> list[bytes]:
        corpus = Corpus(seed, tmp_path)
        return [m.body for _ in range(300) for m in corpus.hostile()]

    assert bodies(1) == bodies(1)
    assert bodies(1) != bodies(2)
    corpus = Corpus(3, tmp_path)
    kinds = {m.expect.label.split(" ")[0] for _ in range(500) for m in corpus.hostile()}
    assert {"not", "bad", "unserved", "second", "cancelled", "notification"} <= kinds


def test_the_ledger_catches_a_server_that_does_not_answer(tmp_path):
    """The fuzzer itself can fail: this "server" reads everything and answers nothing."""
    silent = [sys.executable, "-c", "import sys; sys.stdin.buffer.read()"]
    report = run_fuzz(silent, tmp_path, server_env(), count=60, seed=1, probe_every=50,
                      probe_timeout_s=0.5, settle_s=0.5)
    failures = "\n".join(report.failures())
    assert report.unanswered and report.hung_probes
    assert "null-id errors" in failures and str(SERVER_NOT_INITIALIZED) in failures
