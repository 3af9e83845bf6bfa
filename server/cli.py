"""`lsp-serve`: the language server over stdio (or TCP for debugging), and `--demo FILE`.

It takes the flags LSP clients add to a server's command line: `--stdio` (vscode-languageclient's
stdio transport), `--clientProcessId N` (exit when that process is gone); `--pipe` and `--socket`
are refused with a one-line message.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from repolsp.server.config import ENGINES, FIM_TEMPLATES, LOG_LEVELS, Config


def setup_logging(level: str, log_file: str) -> None:
    """Log to a file or stderr, never stdout (the protocol channel)."""
    handler: logging.Handler
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        # backslashreplace: a lone surrogate from a client (a JSON "\ud800") must not turn
        # one log line into a "Logging error" traceback.
        handler = logging.FileHandler(log_file, encoding="utf-8", errors="backslashreplace")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("repolsp").setLevel(level.upper())


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _refuse_transport(flag: str) -> type[argparse.Action]:
    class Refuse(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            parser.exit(2, f"{parser.prog}: error: {flag} is not supported; use stdio (the default) or --tcp\n")

    return Refuse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _Parser(prog="lsp-serve", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    transport = parser.add_mutually_exclusive_group()
    transport.add_argument("--stdio", action="store_true", help="speak LSP on stdin/stdout (the default)")
    transport.add_argument("--tcp", action="store_true", help="listen on TCP instead of stdio")
    transport.add_argument("--pipe", nargs="?", action=_refuse_transport("--pipe"), help=argparse.SUPPRESS)
    transport.add_argument("--socket", nargs="?", action=_refuse_transport("--socket"), help=argparse.SUPPRESS)
    parser.add_argument("--clientProcessId", "--client-process-id", dest="client_process_id", type=int,
                        metavar="PID", help="exit when this process (the editor) is gone")
    parser.add_argument("--host", default="127.0.0.1", help="TCP host (default: loopback only)")
    parser.add_argument("--port", type=int, default=2087, help="TCP port (default 2087)")
    parser.add_argument("--model", default="",
                        help="model name (default: `lsp-models use`); with --engine openai, the name "
                             "the endpoint serves")
    parser.add_argument("--engine", choices=ENGINES, default="ct2",
                        help="ct2 = CTranslate2 (real); openai = an OpenAI-compatible server at "
                             "--endpoint; fake = deterministic test engine")
    parser.add_argument("--endpoint", default="", metavar="URL",
                        help="with --engine openai: the server's base URL, http://HOST:PORT/v1")
    parser.add_argument("--api-key-env", default="", metavar="VAR",
                        help="with --engine openai: the environment variable holding the API key")
    parser.add_argument("--fim-template", default="", choices=FIM_TEMPLATES, metavar="FAMILY",
                        help="with --engine openai: the remote model's prompt template "
                             f"({', '.join(t for t in FIM_TEMPLATES if t)}; default: from --model)")
    parser.add_argument("--fallback-to-local", action="store_true",
                        help="with --engine openai: the local model answers while the endpoint fails")
    parser.add_argument("--log-file", default=os.environ.get("REPOLSP_LOG_FILE", ""))
    parser.add_argument("--log-level", choices=LOG_LEVELS,
                        default=os.environ.get("REPOLSP_LOG_LEVEL", "info").lower())
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for the model (default 0: half the CPUs)")
    parser.add_argument("--demo", nargs="?", const="", metavar="FILE",
                        help="drive the server over stdio on FILE and print what an editor shows")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.demo is not None:
        from repolsp.server.demo import run_demo

        return run_demo(args.demo or None, model=args.model, engine=args.engine)
    setup_logging(args.log_level, args.log_file)
    remote = args.engine == "openai"
    config = Config(model="" if remote else args.model, engine=args.engine, log_level=args.log_level,
                    log_file=args.log_file, threads=args.threads, endpoint=args.endpoint,
                    remote_model=args.model if remote else "", fim_template=args.fim_template,
                    api_key_env=args.api_key_env, fallback_to_local=args.fallback_to_local)
    from repolsp.server.app import create_server

    server = create_server(config)
    if args.client_process_id is not None:
        from repolsp.server.parent_watch import watch_parent

        watch_parent(args.client_process_id, lambda: _exit_orphaned(server))
    if args.tcp:
        logging.getLogger("repolsp").info("listening on %s:%d", args.host, args.port)
        server.start_tcp(args.host, args.port)
    else:
        server.start_io()
    return 0


def _exit_orphaned(server) -> None:
    """The editor died without `exit`: stop a training child, then end the process at once.

    A hard exit, because the event loop may be blocked reading a pipe nobody will write to.
    """
    try:
        server.stop_training()
    except Exception as exc:  # noqa: BLE001 - exiting anyway
        logging.getLogger("repolsp").warning("could not stop training: %s", exc)
    logging.shutdown()
    os._exit(0)
