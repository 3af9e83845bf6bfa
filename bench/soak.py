"""Soak: a long scripted typing session through the real `lsp-serve` over stdio.

Function bodies of the installed pygls package's modules (a temporary copy is the workspace)
are removed and typed back one keystroke at a time, as bench/run.py's session does, file after
file and round after round, for `--minutes` (20 by default): an incremental `didChange` and an
automatic `textDocument/inlineCompletion` per keystroke, each answered before the next, then
`didClose` as an editor does when the tab is left. Reported: the server's RSS after the warm-up
and at the end (target: growth at most 10%), and the p95 latency of the first and of the last
`--window-minutes` (target: last at most 1.2x first), with RSS samples every 30 s.

    python bench/soak.py [--minutes 20] [--threads 1] [--json bench/soak.json]

`--server-pythonpath DIR` starts the server with DIR first on its path (a folder whose
`repolsp/` links to another checkout's server/models/trainer), to measure that checkout's
server with this client.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.run import advance, default_file, typing_script
from tests.editors.lsp_stdio import StdioClient

TARGETS = {"rss_growth": 0.10, "p95_ratio": 1.2}
READY_TIMEOUT_S = 600


def percentile(values: list, q: int) -> float | None:
    """The q-th percentile (inclusive method), None for no values."""
    if not values:
        return None
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def scripts(workspace: Path, package: str, max_chars: int) -> list:
    """One typing script per module of the copied package that has a suitable function."""
    found = []
    for path in sorted((workspace / package).rglob("*.py")):
        rel = path.relative_to(workspace).as_posix()
        try:
            found.append((path.read_text(encoding="utf-8"), typing_script(
                path.read_text(encoding="utf-8"), rel, max_chars)))
        except (SystemExit, SyntaxError, UnicodeDecodeError):
            continue  # no function of the right size in this module
    return found


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def wait_ready(client: StdioClient) -> dict:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        status = client.request("workspace/executeCommand", {"command": "repolsp.status"})["result"]
        if status.get("state") in ("ready", "error"):
            return status
        time.sleep(0.5)
    raise SystemExit("soak: the model did not load in time")


def type_one(client: StdioClient, script, uri: str, deadline: float, latencies: list) -> None:
    """Type one script into a freshly opened document (until the deadline), then close it."""
    client.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": script.text}})
    line, character, version = script.line, script.character, 1
    for typed in script.keystrokes:
        if time.monotonic() >= deadline:
            break
        version += 1
        position = {"line": line, "character": character}
        client.notify("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"range": {"start": position, "end": position}, "text": typed}]})
        line, character = advance(line, character, typed)
        started = time.perf_counter()
        response = client.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": uri}, "position": {"line": line, "character": character},
            "context": {"triggerKind": 2}}, timeout_s=120)
        if "error" in response:
            raise SystemExit(f"soak: inline completion failed: {response['error']}")
        latencies.append((time.monotonic(), (time.perf_counter() - started) * 1000))
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


def soak(workspace: Path, package: str, args) -> dict:
    command = [sys.executable, "-m", "repolsp.server", "--log-level", "warning",
               "--threads", str(args.threads), "--log-file", str(workspace.parent / "server.log")]
    if args.model:
        command += ["--model", args.model]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if args.server_pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [args.server_pythonpath, env.get("PYTHONPATH")]))
    client = StdioClient(command, cwd=workspace, env=env)
    try:
        client.request("initialize", {
            "processId": os.getpid(), "rootUri": workspace.as_uri(),
            "workspaceFolders": [{"uri": workspace.as_uri(), "name": "soak"}],
            "capabilities": {"textDocument": {"inlineCompletion": {}}, "window": {"workDoneProgress": False}}})
        client.notify("initialized", {})
        status = wait_ready(client)
        if status.get("state") != "ready":
            raise SystemExit(f"soak: model not ready: {status.get('error')}")
        time.sleep(2.0)  # the background workspace index
        plan = scripts(workspace, package, args.max_chars)
        started = time.monotonic()
        deadline = started + args.minutes * 60
        warm_at = started + args.warmup_minutes * 60
        latencies: list = []
        samples: list = []
        warm_rss = None
        rounds = 0
        while time.monotonic() < deadline:
            for index, (_, script) in enumerate(plan):
                if time.monotonic() >= deadline:
                    break
                uri = (workspace / script.path).as_uri()
                type_one(client, script, uri, deadline, latencies)
                now = time.monotonic()
                if warm_rss is None and now >= warm_at:
                    warm_rss = rss_mb(client.proc.pid)
                if not samples or now - samples[-1][0] - started >= 30:
                    samples.append((round(now - started, 1), round(rss_mb(client.proc.pid), 1)))
            rounds += 1
        end_rss = rss_mb(client.proc.pid)
        final = client.request("workspace/executeCommand", {"command": "repolsp.status"})["result"]
        client.shutdown()
    finally:
        client.close()
    window = args.window_minutes * 60
    first = [ms for t, ms in latencies if t - started <= window]
    last = [ms for t, ms in latencies if t >= deadline - window]
    return {
        "minutes": args.minutes, "threads": args.threads, "model": final.get("model"),
        "requests": len(latencies), "rounds": rounds, "scripts": len(plan),
        "rss_warm_mb": round(warm_rss or samples[0][1], 1), "rss_end_mb": round(end_rss, 1),
        "rss_growth": round(end_rss / (warm_rss or samples[0][1]) - 1, 4),
        "first_window": {"requests": len(first), "p50_ms": percentile(first, 50), "p95_ms": percentile(first, 95)},
        "last_window": {"requests": len(last), "p50_ms": percentile(last, 50), "p95_ms": percentile(last, 95)},
        "p95_ratio": round(percentile(last, 95) / percentile(first, 95), 3) if first and last else None,
        "rss_samples": samples, "cache_hit_rate": final.get("cacheHitRate"),
        "server_path": args.server_pythonpath or "this checkout",
        "load_before": " / ".join(f"{v:.2f}" for v in os.getloadavg()),
    }


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/soak.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--window-minutes", type=float, default=5.0, help="first/last window for p95")
    parser.add_argument("--warmup-minutes", type=float, default=1.0, help="RSS is read after this")
    parser.add_argument("--threads", type=int, default=1, help="model threads (1: two soaks side by side)")
    parser.add_argument("--model", default="", help="model name (default: the store's default)")
    parser.add_argument("--max-chars", type=int, default=160, help="keystrokes per function")
    parser.add_argument("--server-pythonpath", default="", help="put this first on the server's path")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    source_dir, _ = default_file()
    with tempfile.TemporaryDirectory(prefix="repolsp-soak-") as tmp:
        workspace = Path(tmp) / "workspace"
        shutil.copytree(source_dir, workspace / source_dir.name, ignore=shutil.ignore_patterns("__pycache__"))
        result = soak(workspace, source_dir.name, args)
    verdict = (result["rss_growth"] <= TARGETS["rss_growth"]
               and (result["p95_ratio"] or 0) <= TARGETS["p95_ratio"])
    result["meets_targets"] = verdict
    text = json.dumps(result, indent=1)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
