"""The `lsp-train` run, top to bottom: resolve repo and model -> mine -> train -> export -> report.

Each stage lives in its own module (`mine`, `train`, `export`, `evaluate`, `report`); this one
only wires them together and prints what a user wants to see.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import time
from pathlib import Path

from repolsp.models.prompt import template_for
from repolsp.models.store import ModelStore
from repolsp.server.context.build import approx_token_count
from repolsp.server.workspace_data import data_dir_for
from repolsp.trainer import gitlog
from repolsp.trainer.data_parallel import process_state
from repolsp.trainer.errors import TrainerError
from repolsp.trainer.export import export_tuned_model, update_manifest_extra
from repolsp.trainer.incremental import head_commit, plan_incremental, root_base_name
from repolsp.trainer.mine import (
    MineConfig,
    MineResult,
    MineStats,
    mine_repository,
    read_jsonl,
    write_jsonl,
)
from repolsp.trainer.mine_priority import mark_copy_first
from repolsp.trainer.progress_bar import stdout_bar
from repolsp.trainer.prompts import ExampleRenderer, tuned_template_name
from repolsp.trainer.report import before_after_report, evaluation_for_manifest
from repolsp.trainer.tokenizing import load_tokenizer
from repolsp.trainer.train import train
from repolsp.trainer.train_config import TrainConfig

DEFAULT_MAX_PROMPT_TOKENS = 512


def say(message: str) -> None:
    """One progress line on stdout (flushed: the server's training job reads it live)."""
    print(message, flush=True)


def resolve_base_model(model_name: str | None, required: bool):
    """The store entry of the base model (explicit, else the served one), or None if not
    `required` and none is installed."""

    store = ModelStore()
    name = model_name or store.default_name()
    if name is None:
        if required:
            raise TrainerError(
                "no model is installed: run `lsp-models pull` first, or pass --model NAME"
            )
        return store, None
    return store, store.get(name)


def make_renderer(entry, max_prompt_tokens: int | None, tokenizer=None):
    """An ExampleRenderer for the tuned model's template and tokenizer (a character estimate
    when no model is installed, for --mine-only)."""

    if entry is None:
        return ExampleRenderer.for_template("repolsp-smollm2", approx_token_count,
                                            max_prompt_tokens or DEFAULT_MAX_PROMPT_TOKENS)
    manifest = entry.manifest
    cap = max_prompt_tokens or min(manifest.max_prompt_tokens or DEFAULT_MAX_PROMPT_TOKENS,
                                   DEFAULT_MAX_PROMPT_TOKENS)
    template = tuned_template_name(manifest.family, manifest.fim_template)

    def count_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return ExampleRenderer.for_template(template, count_tokens if tokenizer else approx_token_count, cap)


def mine_with_progress(repo: Path, renderer, args: argparse.Namespace):

    events = args.events
    if events is None:

        events = data_dir_for(repo) / "events.jsonl"
    config = MineConfig(max_commits=args.max_commits, since=args.since,
                        test_fraction=args.test_fraction, events_path=events,
                        snapshot_lines=args.snapshot_lines,
                        events_since=getattr(args, "events_since", None),
                        history=not getattr(args, "no_history", False))
    bar = _bar(args, "mining", unit="commit")
    last = [0]

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - last[0])
            last[0] = done

    try:
        return mine_repository(repo, renderer, config, progress)
    finally:
        if bar is not None:
            bar.close()


def _bar(args: argparse.Namespace, desc: str, **kw):
    return None if args.quiet else stdout_bar(desc, **kw)


def default_run_dir(repo: Path) -> Path:
    """Checkpoints and metrics live in the workspace's data folder, never in the repository."""

    return data_dir_for(repo) / "train"


def tuned_model_name(base: str, repo: Path, when: dt.datetime | None = None) -> str:
    """`<base>-<repo>-<date>` made safe as a store name (time added to stay unique)."""
    when = when or dt.datetime.now()
    repo_part = re.sub(r"[^A-Za-z0-9._-]+", "-", repo.name).strip("-.") or "repo"
    return f"{base}-{repo_part}-{when:%Y%m%d-%H%M}"[:100]


def unused_model_name(store, name: str) -> str:
    """`name`, or `name-2`, `name-3`, ... when the store has it already: a rerun within the same
    minute, or after a run killed between registering its model and switching to it."""
    candidate, number = name, 1
    while store.exists(candidate):
        number += 1
        candidate = f"{name[:100 - len(str(number)) - 1]}-{number}"
    return candidate


def training_budget_s(budget_s: float | None, spent_s: float, exporting: bool) -> float | None:
    """What a wall-time budget leaves for the training loop after mining, keeping room for the
    export (merge + conversion) so the run still ends with a usable model."""
    if budget_s is None:
        return None
    reserve = max(30.0, 0.1 * budget_s) if exporting else 0.0
    left = budget_s - spent_s - reserve
    if left < 10:
        raise TrainerError(
            f"the budget is used up before training ({spent_s:.0f}s of mining, {reserve:.0f}s kept "
            "for the export); give more time or mine fewer commits (--max-commits / --since)"
        )
    return left


def run(args: argparse.Namespace, budget_s: float | None) -> int:
    """The whole `lsp-train` run; returns the exit status."""
    started = time.monotonic()
    repo = gitlog.repo_root(Path(args.repo).expanduser().resolve())
    main_process = process_state(args.device).is_main_process
    if not main_process:
        # Under torchrun / accelerate launch: one set of messages and progress bars, rank 0's.
        args.quiet = True
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - for the process's life
    if args.method == "prefix" and not (args.no_export or args.mine_only):
        raise TrainerError("prefix-tuning adapters cannot be merged into a CTranslate2 model; "
                           "use --method lora, or --no-export to keep the adapter only")
    store, entry = resolve_base_model(args.model, required=not args.mine_only)
    trained_at = head_commit(repo)  # before mining: the next --incremental starts after it
    if getattr(args, "incremental", False):
        planned = plan_incremental(args, store, repo, budget_s, say)
        if planned is None:
            return 0
        entry, budget_s = planned
    tokenizer = None
    if entry is not None:

        template = template_for(tuned_template_name(entry.manifest.family, entry.manifest.fim_template))
        tokenizer = load_tokenizer(entry.hf_dir, template)
    renderer = make_renderer(entry, args.max_prompt_tokens, tokenizer)

    run_dir = args.run_dir or default_run_dir(repo)
    saved_examples = run_dir / "examples.jsonl"
    if args.resume and not args.mine_only and not (run_dir / "checkpoint.pt").is_file():
        raise TrainerError(f"nothing to resume: no checkpoint in {run_dir} (run without --resume)")
    if args.resume and not args.mine_only and saved_examples.is_file():
        # The interrupted run's own examples: new commits since then must not change its data.

        mined = MineResult(read_jsonl(saved_examples), [], MineStats())
        say(f"resuming with the {len(mined.examples)} examples mined by the interrupted run")
    else:
        say(f"mining {repo} ...")
        mined = mine_with_progress(repo, renderer, args)
        say("mined " + mined.stats.summary())
    if args.mine_only:

        count = write_jsonl(mined.examples, args.out)
        if mined.negatives:
            negatives_path = args.out.with_name(args.out.stem + ".negatives.jsonl")
            with open(negatives_path, "w", encoding="utf-8") as handle:
                handle.writelines(json.dumps(item, ensure_ascii=False) + "\n" for item in mined.negatives)
        say(f"wrote {count} examples to {args.out}")
        return 0
    if getattr(args, "incremental", False) and not any(e.split == "train" for e in mined.examples):
        say("nothing new to learn: the new commits gave no training examples")
        return 0
    if not any(e.split == "train" for e in mined.examples):
        raise TrainerError("the history gave no training examples (all filtered out); "
                           "try a longer history (--since / --max-commits) or another repository")


    if (not args.resume and getattr(args, "copy_first_s", 0) > 0
            and process_state(args.device).num_processes == 1):
        # One process only: the marks order the data, and every process must plan the same steps.
        say(mark_copy_first(mined.examples, entry, args.copy_first_s))
    if not args.resume and main_process:
        write_jsonl(mined.examples, saved_examples)
    train_budget = training_budget_s(budget_s, time.monotonic() - started, not args.no_export)
    config = TrainConfig.from_args(args, train_budget, renderer.max_prompt_tokens)
    result = train(entry, mined.examples, run_dir, config, tokenizer=tokenizer,
                   show_progress=not args.quiet)
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return 0  # under accelerate launch / torchrun, one process exports and reports
    say(result.summary())
    if args.no_export:
        say(f"adapter saved in {result.adapter_dir} (--no-export: the served model is unchanged)")
        return 0


    name = args.name or unused_model_name(store, tuned_model_name(root_base_name(entry), repo))
    # Switch only after the evaluation says the tuned model is no worse, so a short or
    # unlucky run never makes the user's completions worse (`--force-switch` overrides).
    tuned = export_tuned_model(store, entry, result.adapter_dir, name, repo=repo, switch=False,
                               stats=result.stats_for_manifest(), say=say)
    update_manifest_extra(tuned, {"trainedCommit": trained_at, "repo": str(repo),
                                  "rootBase": root_base_name(entry),
                                  "incremental": bool(getattr(args, "incremental", False))})
    report = None
    if not args.no_eval:

        report = before_after_report(entry, tuned, mined.examples, run_dir,
                                     max_examples=args.max_eval_examples, say=say,
                                     training=result, show_progress=not args.quiet)
        update_manifest_extra(tuned, {"evaluation": evaluation_for_manifest(report, entry.name)})
        say(report.summary_line())
    if args.no_switch:
        say(f"exported {tuned.name}; serve it with `lsp-models use {tuned.name}`")
    elif (report is not None and report.tuned.n == 0 and getattr(args, "incremental", False)
          and not args.force_switch):
        say(f"exported {tuned.name} but kept serving {entry.name}: the new commits gave no "
            f"held-out examples to check it against (serve it anyway with "
            f"`lsp-models use {tuned.name}`)")
    elif report is not None and not report.tuned_no_worse() and not args.force_switch:
        say(f"exported {tuned.name} but kept serving {store.default_name() or entry.name}: it did "
            f"worse than {entry.name} on the held-out commits (train longer with --budget, or "
            f"serve it anyway with `lsp-models use {tuned.name}`)")
    else:
        store.use(tuned.name)  # atomic pointer replace; the server reloads within seconds
        say(f"now serving {tuned.name} (roll back with `lsp-models use {entry.name}`)")
    return 0
