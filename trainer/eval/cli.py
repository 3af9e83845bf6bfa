"""`lsp-eval`: compare models on held-out holes of a repository's history and on HumanEval.

    lsp-eval [REPO=.] [--models a,b] [--holes N] [--tasks history,humaneval,docstring,tests]
             [--json OUT.json] [--report OUT.md] [--seed S]

Bad input (no history, a shallow clone, no supported files, an unknown model) ends with one
line on stderr and exit status 2; Ctrl-C keeps every finished item in the output cache.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from repolsp.models.cli_common import EXIT_INTERRUPTED, fail
from repolsp.models.convert import offline_env


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="lsp-eval", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("repo", nargs="?", default=".", help="git repository (default: .)")
    parser.add_argument("--models", default="",
                        help="comma-separated model names (default: the store's default model); "
                             "the first is the baseline of the comparisons")
    parser.add_argument("--holes", type=int, default=100, help="items per task (default 100)")
    parser.add_argument("--tasks", default="history,humaneval",
                        help="comma-separated: history, humaneval, docstring, tests "
                             "(default: history,humaneval)")
    parser.add_argument("--json", dest="json_out", type=Path, help="write results as JSON")
    parser.add_argument("--report", type=Path, help="write a markdown report (+ PNG charts)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--max-commits", type=int, default=None,
                        help="consider only the newest N commits (as `lsp-train --max-commits`)")
    parser.add_argument("--test-fraction", type=float, default=0.1,
                        help="newest share of commits held out, as `lsp-train --test-fraction` "
                             "(default 0.1)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for the model")
    parser.add_argument("--timeout-s", type=float, default=10.0,
                        help="time limit for executing one generated program")
    parser.add_argument("--cache-dir", type=Path,
                        help="model output cache (default: $REPOLSP_HOME/eval-cache)")
    parser.add_argument("--no-cache", action="store_true", help="always run the models")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--no-retrieval", action="store_true",
                        help="history: no workspace index (by default the training split's tree "
                             "is indexed, as the server indexes the workspace)")
    return parser.parse_args(argv)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    """Entry point of `lsp-eval`; returns the exit status."""
    args = parse_args(argv)
    offline_env()
    # Imported after the offline switches above: the engine's tokenizer (transformers) reads them
    # when it is first imported.
    from repolsp.models.store import ModelStore, default_home
    from repolsp.trainer.eval.holes import EvalError
    from repolsp.trainer.eval.loading import load_store_model
    from repolsp.trainer.eval.options import EvalOptions
    from repolsp.trainer.eval.reports import results_table, write_json, write_report
    from repolsp.trainer.eval.runner import run_evaluation

    home = default_home()
    cache_dir = None if args.no_cache else (args.cache_dir or home / "eval-cache")
    models = _split(args.models)
    if not models:
        from repolsp.models.pull import DEFAULT_MODEL

        models = [ModelStore(home).default_name() or DEFAULT_MODEL]
    if not 0 < args.test_fraction < 1:
        return fail("lsp-eval", "--test-fraction must be between 0 and 1")
    if len(set(models)) != len(models):
        return fail("lsp-eval", "a model is listed twice in --models")
    options = EvalOptions(
        repo=Path(args.repo), models=models, holes=args.holes, tasks=_split(args.tasks),
        seed=args.seed, cache_dir=cache_dir, max_commits=args.max_commits,
        test_fraction=args.test_fraction, retrieval=not args.no_retrieval,
        timeout_s=args.timeout_s, progress=not args.no_progress,
    )

    def load(name: str):
        return load_store_model(name, home, args.threads, cache_dir)

    try:
        results = run_evaluation(options, load)
    except EvalError as exc:
        return fail("lsp-eval", str(exc))
    except KeyboardInterrupt:
        where = f" (finished items are cached in {cache_dir})" if cache_dir else ""
        return fail("lsp-eval", f"interrupted{where}; run the same command again to resume",
                    EXIT_INTERRUPTED)
    print(results_table(results))
    for name, info in results["models"].items():
        print(f"{name}: model.bin sha256 {str(info.get('hash', ''))[:16]}…, "
              f"CTranslate2 {info.get('ctranslate2', results['ctranslate2'])}, "
              f"compute type {info.get('compute_type', '?')}")
    try:
        if args.json_out:
            write_json(results, args.json_out)
            print(f"wrote {args.json_out}")
        if args.report:
            for path in write_report(results, args.report):
                print(f"wrote {path}")
    except OSError as exc:
        return fail("lsp-eval", f"cannot write results: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
