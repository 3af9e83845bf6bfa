"""bench/train.py (`make bench-train`) end to end on the tiny model and the test's history:
mining figures, our loop and transformers.Trainer on the same examples, a budgeted lsp-train."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from trainer_fixtures import register_tiny_model


def _bench_train():
    path = Path(__file__).resolve().parents[2] / "bench" / "train.py"
    spec = importlib.util.spec_from_file_location("repolsp_bench_train", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_bench_train_reports_mining_throughput_and_before_after(history_repo, tmp_path, monkeypatch):
    home = tmp_path / "home"
    register_tiny_model(home)
    monkeypatch.setenv("REPOLSP_HOME", str(home))
    bench = _bench_train()
    out, data = tmp_path / "TRAINING.md", tmp_path / "training.json"
    repo, _ = history_repo
    status = bench.main([str(repo), "--steps", "2", "--threads", "1", "--train-budget", "50s",
                         "--holdout", "3", "--out", str(out), "--json", str(data)])
    assert status == 0
    results = json.loads(data.read_text())
    mining = results["mining"]
    assert mining["commits"] > 0 and mining["commits_per_s"] > 0
    assert sum(mining["by_kind"].values()) == mining["examples"] > 0
    speed = results["throughput"]
    for loop in ("ours", "trainer"):
        row = speed[loop]
        assert "error" not in row, row
        assert row["steps"] == 2 and row["tokens"] > 0 and row["tokens_per_s"] > 0
        assert row["peak_rss_mb"] > 50  # its own process: torch and the model at least
    # Both loops saw the same examples: the same real tokens.
    assert speed["ours"]["tokens"] == speed["trainer"]["tokens"]
    run = results["before_after"]
    assert "error" not in run, run
    assert run["base"]["model"] == "tiny-smollm2" and run["tuned"]["n"] == run["base"]["n"] > 0
    assert run["training"]["stopped"] in ("budget", "done", "early-stop")
    report = out.read_text()
    assert "| repolsp (`lsp-train`) |" in report and "| plain `transformers.Trainer` |" in report
    assert "Exact match ratio tuned / base" in report
    assert sum(row["n"] for row in run["exact_match_by_source"].values()) == run["tuned"]["n"]
    assert "| where the expected lines already were |" in report
