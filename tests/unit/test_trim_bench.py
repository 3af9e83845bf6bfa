"""bench/decode.py's table rows (the measurement itself needs the real models: `make bench`)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "decode.py"


def _decode_module():
    name = "repolsp_bench_decode"
    if name not in sys.modules:  # bench/ is scripts, not a package: load the file itself
        spec = importlib.util.spec_from_file_location(name, BENCH)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


def _figures(served_ms: float, full_ms: float) -> dict:
    side = {"prefill_p50_ms": 100.0, "model_bin_mb": 124.0}
    return {
        "ct2": {"served": {**side, "name": "gemma3-270m", "decode_ms_per_token": served_ms},
                "full": {**side, "name": "gemma3-270m-full", "decode_ms_per_token": full_ms,
                         "prefill_p50_ms": 200.0, "model_bin_mb": 270.0},
                "prompts": 4, "rounds": 2, "prompt_tokens_mean": 400, "new_tokens": 32,
                "threads": 2, "same_greedy_text": 3, "decode_ratio": served_ms / full_ms,
                "prefill_ratio": 0.5},
        "trim": {"vocab_size": 35946, "base_vocab_size": 262144},
        "llama_cpp": {"prefill_p50_ms": 90.0, "decode_ms_per_token": 9.5, "version": "0.3.36",
                      "gguf_mb": 253.0, "prompt_tokens_mean": 401},
        "memory": [{"stage": "server imports", "rss_mb": 77.2, "hwm_mb": 77.2}],
    }


def test_rows_give_the_ratio_against_the_target_and_the_anchor():
    rows = _decode_module().render_rows(_figures(16.0, 31.0))
    decode = next(r for r in rows if r[0].startswith("Decode ms/token"))
    assert "16.0 / 31.0 ms (0.52x)" in decode[1] and decode[3] == "met"
    assert any(r[0].startswith("Anchor: llama.cpp") and "9.5 ms/token" in r[1] for r in rows)
    assert any(r[0] == "Memory: server imports" and r[1] == "77 MB" for r in rows)
    slow = _decode_module().render_rows(_figures(20.0, 31.0))
    assert next(r for r in slow if r[0].startswith("Decode ms/token"))[3] == "missed"


def test_skips_say_why():
    rows = _decode_module().render_rows({"skipped": "its base x is not installed",
                                         "llama_cpp_skipped": "not asked for", "memory": []})
    assert [r[1] for r in rows] == ["not measured", "not measured"]
    assert "its base x is not installed" in rows[0][4]
    assert _decode_module().render_rows({}) == []
