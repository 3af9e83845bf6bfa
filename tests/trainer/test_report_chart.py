"""The one report chart (trainer/chart.py, matplotlib): `lsp-train`'s report and `lsp-eval`'s."""

from __future__ import annotations

import struct
import zlib

from repolsp.trainer.chart import ChartData, draw_chart
from repolsp.trainer.eval.reports import chart_data
from repolsp.trainer.evaluate import EvalScores
from repolsp.trainer.report import render_markdown, report_chart_data


def png_facts(data: bytes) -> tuple[int, int, dict[str, str]]:
    """(width, height, tEXt metadata) of a PNG file."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    text, offset = {}, 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind, body = data[offset + 4:offset + 8], data[offset + 8:offset + 8 + length]
        if kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            text[key.decode()] = value.decode("latin-1")
        offset += 12 + length
    return width, height, text


def pixel_rows(data: bytes) -> int:
    """How many distinct colours a PNG's decompressed data holds, roughly (0 = nothing drawn)."""
    idat = b""
    offset = 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        if data[offset + 4:offset + 8] == b"IDAT":
            idat += data[offset + 8:offset + 8 + length]
        offset += 12 + length
    return len(set(zlib.decompress(idat)))


def test_trainer_chart_has_three_panels_and_is_drawn_by_matplotlib(tmp_path):
    base_hits = [1, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    tuned_hits = [1, 1, 0, 1, 1, 0, 1, 0, 0, 0]
    from repolsp.trainer.eval.metrics import paired_bootstrap_ci

    diff = paired_bootstrap_ci(base_hits, tuned_hits)
    by_source = {"prompt": {"n": 4, "base": 0.25, "tuned": 0.75},
                 "history": {"n": 3, "base": 0.33, "tuned": 0.33},
                 "new": {"n": 3, "base": 0.0, "tuned": 0.33}}
    data = report_chart_data(base_hits, tuned_hits, [0.5] * 10, [0.6] * 10, diff, by_source)
    assert list(data.gains) and data.gains[next(iter(data.gains))][0] == diff["mean_diff"]
    assert list(data.split) == ["in the prompt", "in training", "new code"]
    assert data.metrics["exact match"]["tuned"][0] == 0.5
    low, high = data.metrics["exact match"]["tuned"][1]
    assert low <= 0.5 <= high
    path = draw_chart(tmp_path / "report.png", data)
    width, height, text = png_facts(path.read_bytes())
    assert text.get("Software", "").startswith("Matplotlib")
    assert 900 <= width <= 1600 and 300 <= height <= 500, (width, height)
    assert pixel_rows(path.read_bytes()) > 20  # anti-aliased bars and text, not a blank canvas
    # One panel only: narrower.
    alone = draw_chart(tmp_path / "alone.png", ChartData("t", ["base"], {"m": {"base": (0.1, None)}}))
    assert png_facts(alone.read_bytes())[0] < width


def test_report_markdown_links_its_chart():
    scores = EvalScores("m", 10, 0.1, 0.4)
    text = render_markdown(scores, scores, chart_name="report.png")
    assert "](report.png)" in text


def test_evaluator_chart_shows_the_paired_difference_and_the_split(tmp_path):
    def metric(mean):
        return {"mean": mean, "ci95": [mean - 0.05, mean + 0.05], "n": 20}

    def task(exact):
        return {"exact_match": metric(exact), "edit_similarity": metric(0.5),
                "by_kind": {"line": {"n": 12, "exact_match": exact, "edit_similarity": 0.5},
                            "span": {"n": 8, "exact_match": exact / 2, "edit_similarity": 0.4}}}

    results = {"options": {"tasks": ["history"]},
               "models": {"base": {"tasks": {"history": task(0.1)}},
                          "tuned": {"tasks": {"history": task(0.3)}}},
               "comparisons": [{"task": "history", "metric": "exact_match", "baseline": "base",
                                "model": "tuned", "mean_diff": 0.2, "ci95": [0.05, 0.35], "n": 20}]}
    data = chart_data(results, "history")
    assert data.gains == {"exact match\ntuned − base": (0.2, (0.05, 0.35))}
    assert data.split == {"line": {"n": 12, "base": 0.1, "tuned": 0.3},
                          "span": {"n": 8, "base": 0.05, "tuned": 0.15}}
    from repolsp.trainer.eval.reports import write_charts

    charts = write_charts(results, tmp_path, "eval")
    width, _, text = png_facts((tmp_path / charts["history"]).read_bytes())
    assert text.get("Software", "").startswith("Matplotlib") and width >= 900
