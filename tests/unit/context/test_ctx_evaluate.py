"""The context measurements used by bench/: definition recall and build_context latency."""

import pathlib
import shutil

from repolsp.server.context.document import Document
from repolsp.server.context.evaluate import context_latency_ms, definition_recall, index_repository

FIXTURE = pathlib.Path(__file__).parents[2] / "data" / "context" / "workspace"


def test_definition_recall_on_fixture_workspace(tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(FIXTURE, root)
    index, figures = index_repository(root)
    assert figures["files"] == 13 and figures["chunks"] > 0
    report = definition_recall(index, root, sample=50)
    # Every cross-file call of the fixture (Python, JS, Go, Rust, Java, C) must be found.
    assert report.calls >= 6
    assert report.rate == 1.0, report.misses


def test_context_latency_reports_percentiles():
    doc = Document("file:///w/a.py", "def f(x):\n    return x\n" * 200, path="a.py")
    figures = context_latency_ms(doc, None, lambda s: len(s.split()), cursors=20)
    assert set(figures) == {"p50", "p95", "max"}
    assert 0 <= figures["p50"] <= figures["p95"] <= figures["max"]
