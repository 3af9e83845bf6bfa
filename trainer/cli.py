"""`lsp-train`: mine the repository's history, fine-tune the model on it, export and serve it.

    lsp-train [REPO=.] [--model NAME] [--method lora|adalora|prefix|full] [--rank R]
              [--epochs E] [--lr LR] [--max-commits N] [--since DATE] [--test-fraction F]
              [--device auto|cpu|cuda] [--precision auto|bf16|fp32] [--budget 30m] [--resume]
              [--incremental]
              [--mine-only --out FILE.jsonl] [--no-export]

Progress and results go to stdout (the server's training job reads the last line); errors are
one line on stderr with exit status 2 (1 for an interrupted run whose checkpoint was kept).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import warnings
from pathlib import Path

from repolsp.models.cli_common import EXIT_FAILED, fail, log_to_stderr, unexpected
from repolsp.models.convert import offline_env
from repolsp.models.errors import ModelError
from repolsp.trainer.errors import TrainerError, TrainingInterrupted

log = logging.getLogger("repolsp.trainer")

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*$")


def parse_duration_s(text: str) -> float:
    """'30m' -> 1800, '1h30m' -> 5400, '90s' or '90' -> 90; ValueError when unreadable."""
    match = _DURATION.match(text or "")
    if not match or not any(match.groups()):
        raise ValueError(f"cannot read duration {text!r}: use e.g. 30m, 1h, 90s")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def copy_first_s(text: str | None, budget_s: float | None) -> float:
    """Seconds for `--copy-first`: as given, else 2 minutes capped at 7% of the budget."""
    if text is not None:
        return 0.0 if text.strip() in ("0", "off") else parse_duration_s(text)
    return min(120.0, 0.07 * budget_s) if budget_s else 120.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lsp-train",
        description="Fine-tune the completion model on this repository's history and serve it.",
    )
    p.add_argument("repo", nargs="?", default=".", help="git repository to learn from (default: .)")
    p.add_argument("--model", help="base model in the store (default: the served model)")
    p.add_argument("--method", choices=("lora", "adalora", "prefix", "full"), default="lora")
    p.add_argument("--rank", type=int, default=16, help="LoRA rank (default 16)")
    p.add_argument("--alpha", type=float, default=None, help="LoRA alpha (default 2 x rank)")
    p.add_argument("--dropout", type=float, default=0.0,
                   help="LoRA dropout (default 0: 0.05 cost a fifth of each CPU step)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default per method: LoRA 3e-4)")
    p.add_argument("--context-tokens", type=int, default=128,
                   help="completion examples also train on the last N tokens before the cursor "
                        "(default 128; 0 turns it off)")
    p.add_argument("--context-weight", type=float, default=2.0,
                   help="weight of that loss against the completion's (default 2)")
    p.add_argument("--context-softmax", choices=("repository", "full"), default="repository",
                   help="that loss's softmax runs over the tokens of the training data (default: "
                        "cheaper with a large vocabulary) or over the whole vocabulary")
    p.add_argument("--max-commits", type=int, help="mine only the newest N commits")
    p.add_argument("--since", help="mine commits newer than this date (git --since syntax)")
    p.add_argument("--snapshot-lines", type=int, default=None,
                   help="single-line holes cut from the code at the last training commit, in the "
                        "files the history touched most (default 1500, 200 with --incremental; "
                        "0: history only)")
    p.add_argument("--no-history", action="store_true",
                   help="build training prompts without the git history's lines (the server shows "
                        "them with its `history` setting on, the default)")
    p.add_argument("--copy-first", default=None,
                   help="time for the base model to find the training holes whose answer the "
                        "prompt shows but which it misses; those train first (default 2m, at most "
                        "7%% of --budget; 0 turns it off)")
    p.add_argument("--test-fraction", type=float, default=0.1,
                   help="newest fraction of commits held out as test (default 0.1)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                   help="auto (default): bf16 autocast on GPUs that support it and on CPUs with "
                        "native bf16 (AVX512-BF16, AMX), where it about halves a step; else fp32")
    p.add_argument("--budget", help="wall-time budget for mining + training + export, e.g. 30m "
                   "(the before/after evaluation comes on top; default: none)")
    p.add_argument("--resume", action="store_true", help="continue the last interrupted run")
    p.add_argument("--incremental", action="store_true",
                   help="continue from the served tuned model on the commits since it was trained "
                        "and the completions accepted since (default budget 5m); it is served "
                        "only if no worse than that model on the newest of those commits")
    p.add_argument("--mine-only", action="store_true", help="only mine examples, write --out")
    p.add_argument("--out", type=Path, help="JSONL file for --mine-only")
    p.add_argument("--no-export", action="store_true", help="train but do not export or serve")
    p.add_argument("--no-switch", action="store_true", help="export but keep serving the old model")
    p.add_argument("--no-eval", action="store_true",
                   help="skip the before/after evaluation (and switch without checking)")
    p.add_argument("--force-switch", action="store_true",
                   help="serve the tuned model even if it did worse on the held-out commits")
    p.add_argument("--name", help="name of the exported model (default <base>-<repo>-<date>)")
    p.add_argument("--max-prompt-tokens", type=int, default=None,
                   help="prompt length cap of training examples (default: model's cap or 512)")
    p.add_argument("--seq-len", type=int, default=None, help="packed sequence length (tokens)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="packed sequences per step (default 2 on CPU, 8 on CUDA)")
    p.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--checkpoint-every", type=int, default=20, help="steps between checkpoints")
    p.add_argument("--eval-every", type=int, default=None,
                   help="steps between validation runs (default: five per run)")
    p.add_argument("--max-eval-examples", type=int, default=400,
                   help="test examples in the before/after evaluation (default 400: at 100 the "
                        "95%% interval of an exact-match difference is about +-7 points)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-dir", type=Path, help="checkpoints and metrics (default: data folder)")
    p.add_argument("--events", type=Path, help="completion events JSONL (default: the server's)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return p


def _fail(message: str) -> int:
    return fail("lsp-train", f"error: {message}")


def _quiet_libraries() -> None:
    """Our own progress bars and messages only: no library load bars or advice warnings."""

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(peft|transformers|torch)\.")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point of `lsp-train`; returns the exit status."""
    args = build_parser().parse_args(argv)
    log_to_stderr()
    offline_env()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _quiet_libraries()
    if args.mine_only and args.out is None:
        return _fail("--mine-only needs --out FILE.jsonl")
    if not 0 <= args.test_fraction < 0.5:
        return _fail("--test-fraction must be in [0, 0.5)")
    if args.context_tokens < 0 or args.context_weight < 0:
        return _fail("--context-tokens and --context-weight must not be negative")
    if args.incremental and (args.resume or args.mine_only):
        return _fail("--incremental cannot be combined with --resume or --mine-only")
    if args.snapshot_lines is None:
        from repolsp.trainer.incremental import INCREMENTAL_SNAPSHOT_LINES

        args.snapshot_lines = INCREMENTAL_SNAPSHOT_LINES if args.incremental else 1500
    try:
        budget_s = parse_duration_s(args.budget) if args.budget else None
        args.copy_first_s = copy_first_s(args.copy_first, budget_s)
    except ValueError as exc:
        return _fail(str(exc))
    try:
        from repolsp.trainer.pipeline import run

        return run(args, budget_s)
    except TrainingInterrupted as exc:
        return fail("lsp-train", str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        return fail("lsp-train", "interrupted", EXIT_FAILED)
    except (TrainerError, ModelError) as exc:
        return _fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - anything unforeseen: one clear line
        return unexpected("lsp-train", exc, log)


if __name__ == "__main__":
    sys.exit(main())
