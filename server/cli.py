"""`lsp-serve`: the language server over stdio (or TCP for debugging), and `--demo FILE`."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from repolsp.server.config import ENGINES, LOG_LEVELS, Config


def setup_logging(level: str, log_file: str) -> None:
    """Log to a file or stderr, never stdout (the protocol channel)."""
    handler: logging.Handler
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("repolsp").setLevel(level.upper())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lsp-serve", description=__doc__)
    parser.add_argument("--tcp", action="store_true", help="listen on TCP instead of stdio")
    parser.add_argument("--host", default="127.0.0.1", help="TCP host (default: loopback only)")
    parser.add_argument("--port", type=int, default=2087, help="TCP port (default 2087)")
    parser.add_argument("--model", default="", help="model name (default: `lsp-models use`)")
    parser.add_argument("--engine", choices=ENGINES, default="ct2",
                        help="ct2 = CTranslate2 (real); fake = deterministic test engine")
    parser.add_argument("--log-file", default=os.environ.get("REPOLSP_LOG_FILE", ""))
    parser.add_argument("--log-level", choices=LOG_LEVELS,
                        default=os.environ.get("REPOLSP_LOG_LEVEL", "info").lower())
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for the model")
    parser.add_argument("--demo", nargs="?", const="", metavar="FILE",
                        help="drive the server over stdio on FILE and print what an editor shows")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.demo is not None:
        from repolsp.server.demo import run_demo

        return run_demo(args.demo or None, model=args.model, engine=args.engine)
    setup_logging(args.log_level, args.log_file)
    config = Config(model=args.model, engine=args.engine, log_level=args.log_level,
                    log_file=args.log_file, threads=args.threads)
    from repolsp.server.app import create_server

    server = create_server(config)
    if args.tcp:
        logging.getLogger("repolsp").info("listening on %s:%d", args.host, args.port)
        server.start_tcp(args.host, args.port)
    else:
        server.start_io()
    return 0
