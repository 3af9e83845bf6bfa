"""Fuzz the real server with the real default model: 10,000 hostile messages over stdio.

The corpus and the bookkeeping are the test suite's (tests/lsp/fuzz.py); here the server runs
the real model (the store's default, `REPOLSP_HOME`), and the run is ten times longer. Before
each health probe (a valid inline completion every 50 messages) the requests sent so far are
waited for, so the probe's latency is the server's, not a queue of model runs. Exit status 0
only when the server stayed alive, answered every request exactly once with an allowed code,
answered every probe, never sent an internal error, and wrote no traceback to stderr.

    REPOLSP_HOME=/work/main/.repolsp-home python bench/fuzz.py [--messages 10000] [--seed 16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.lsp.fuzz import run_fuzz


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/fuzz.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--engine", default="ct2", choices=("ct2", "fake"))
    parser.add_argument("--threads", type=int, default=0, help="model threads (0: the server's default)")
    parser.add_argument("--probe-timeout-s", type=float, default=120.0, help="a probe slower than this hangs")
    parser.add_argument("--settle-s", type=float, default=600.0,
                        help="how long to wait for outstanding answers before each probe and at the end")
    parser.add_argument("--server-pythonpath", default="", help="put this first on the server's path")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    import os

    args = parse_args(argv)
    command = [sys.executable, "-m", "repolsp.server", "--engine", args.engine, "--log-level", "warning",
               "--threads", str(args.threads)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if args.server_pythonpath:
        env["PYTHONPATH"] = args.server_pythonpath

    def progress(sent: int, report) -> None:
        if sent % 1000 < 50:
            print(f"fuzz: {sent}/{args.messages} messages, {len(report.hung_probes)} hung probes, "
                  f"{len(report.internal_errors)} internal errors", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="repolsp-fuzz-") as tmp:
        workspace = Path(tmp) / "ws"
        workspace.mkdir()
        report = run_fuzz(command, workspace, env, args.messages, args.seed, probe_every=50,
                          probe_timeout_s=args.probe_timeout_s, settle_s=args.settle_s, progress=progress,
                          settle_before_probe=True)
    failures = report.failures()
    final_state = report.final_status.get("state")
    if final_state != "ready":  # the fuzz must not have switched the model off midway
        failures.append(f"the model was {final_state!r} at the end: {report.final_status.get('error')}")
    summary = report.summary()
    summary.update(seed=args.seed, engine=args.engine,
                   probe_p50_ms=round(statistics.median(report.probe_ms), 1) if report.probe_ms else None,
                   probe_max_ms=round(max(report.probe_ms), 1) if report.probe_ms else None,
                   final_state=final_state, failures=failures)
    text = json.dumps(summary, indent=1)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
