"""What the command-line tools share (`lsp-models`, `lsp-train`, `lsp-eval`): exit statuses, the
one-line error on stderr, logging from REPOLSP_LOG_LEVEL and the last-resort error line.

Lives in `models` (the lowest package) so that every CLI can use it; the offline switches for
the Hugging Face libraries are `repolsp.models.convert.offline_env`.
"""

from __future__ import annotations

import logging
import os
import sys

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and failed (lsp-models), or stopped keeping its checkpoint (lsp-train)
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # the shell's status for SIGINT

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def fail(prog: str, message: str, code: int = EXIT_BAD_INPUT) -> int:
    """Print `prog: message` on stderr; returns ``code`` for the caller to return."""
    print(f"{prog}: {message}", file=sys.stderr)
    return code


def log_to_stderr(default_level: str = "WARNING") -> None:
    """Library logs on stderr (stdout carries results and progress) at $REPOLSP_LOG_LEVEL."""
    logging.basicConfig(level=os.environ.get("REPOLSP_LOG_LEVEL", default_level), stream=sys.stderr,
                        format=LOG_FORMAT)


def unexpected(prog: str, exc: BaseException, log: logging.Logger) -> int:
    """An error no handler foresaw: one clear line, the traceback only at DEBUG."""
    log.debug("unexpected failure", exc_info=exc)
    return fail(prog, f"error: {exc.__class__.__name__}: {exc} (set REPOLSP_LOG_LEVEL=DEBUG for details)")
