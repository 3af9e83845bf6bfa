"""Trainer benchmark (`make bench-train`): mining, training throughput, and a budgeted run.

    python bench/train.py REPO [--model NAME] [--mine-commits N] [--steps N] [--train-budget 30m]

On a real repository used in place (never copied here):

1. **Mining.** `lsp-train`'s first stage over the newest `--mine-commits` commits: commits/s,
   examples per kind and split, files skipped and why, secrets and duplicates dropped.
2. **Throughput.** The same training examples (the mined `train` split, most valuable first),
   the same LoRA configuration (rank 16, alpha 32, all projections, fp32, AdamW, 4 examples a
   step, the same steps and threads) through our loop (`trainer.train.train`) and through a plain
   `transformers.Trainer`, each in its own process: tokens/s (real tokens, padding not counted)
   and peak RSS. The issue's plain-loop baseline (SmolLM2-135M, 2 cores) was 94 tokens/s.
3. **Before / after.** `lsp-train REPO --budget B --no-switch` as a user runs it (mining,
   training, export, evaluation on the held-out newest commits): exact match and edit
   similarity of the base and tuned models. `--train-budget 0` skips it.

Writes `bench/TRAINING.md` and `bench/training.json`. The machine is shared: the load average
before the run is printed; compare figures from the same run only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from repolsp.trainer.train_config import DEFAULT_LR
from run import _cpu_name  # bench/run.py, the speed benchmark

LORA = {"rank": 16, "alpha": 32.0, "dropout": 0.0, "lr": DEFAULT_LR["lora"], "batch": 4}  # lsp-train defaults


def mining_stage(repo: Path, entry, max_commits: int | None) -> tuple[dict, list]:
    """Mine `repo` with the model's renderer; (figures, examples)."""
    from repolsp.models.prompt import template_for
    from repolsp.trainer.mine import MineConfig, mine_repository
    from repolsp.trainer.pipeline import make_renderer
    from repolsp.trainer.prompts import tuned_template_name
    from repolsp.trainer.tokenizing import load_tokenizer
    from tqdm import tqdm

    template = template_for(tuned_template_name(entry.manifest.family, entry.manifest.fim_template))
    renderer = make_renderer(entry, None, load_tokenizer(entry.hf_dir, template))
    bar = tqdm(desc="mining", unit="commit", file=sys.stderr, mininterval=1.0)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    started = time.perf_counter()
    result = mine_repository(repo, renderer, MineConfig(max_commits=max_commits), progress)
    bar.close()
    seconds = time.perf_counter() - started
    stats = result.stats
    return {
        "repo": repo.name, "commits": stats.commits, "seconds": round(seconds, 1),
        "commits_per_s": round(stats.commits / seconds, 2),
        "examples": len(result.examples), "by_kind": dict(stats.examples_by_kind),
        "by_split": dict(stats.examples_by_split), "files_mined": stats.files_mined,
        "files_skipped": dict(stats.files_skipped), "secrets_dropped": stats.secrets_dropped,
        "duplicates_dropped": stats.duplicates_dropped,
    }, result.examples


# --- throughput workers (each in its own process, so peak memory is its own) ----------------

def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _chosen_examples(examples_path: Path, count: int) -> list:
    """The first `count` training examples in the trainer's priority order (training examples
    only, so our loop runs no validation passes: they would not be throughput)."""
    from repolsp.trainer.batches import priority_order
    from repolsp.trainer.mine import read_jsonl

    train = [e for e in read_jsonl(examples_path) if e.split == "train"]
    return [train[i] for i in priority_order(train)[:count]]


def worker_ours(entry, examples: list, steps: int, threads: int) -> dict:
    from repolsp.trainer.train import train
    from repolsp.trainer.train_config import TrainConfig

    config = TrainConfig(rank=LORA["rank"], alpha=LORA["alpha"], dropout=LORA["dropout"],
                         lr=LORA["lr"], batch_size=LORA["batch"], epochs=1.0, max_steps=steps,
                         seq_len=640, device="cpu", threads=threads, checkpoint_every=10**6,
                         checkpoint_every_s=10**9)
    with tempfile.TemporaryDirectory(prefix="repolsp-bench-train-") as run_dir:
        result = train(entry, examples, Path(run_dir), config, show_progress=False)
    return {"steps": result.steps, "tokens": result.tokens_seen, "seconds": round(result.elapsed_s, 1),
            "tokens_per_s": round(result.tokens_per_s, 1), "first_loss": result.first_loss,
            "last_loss": result.last_loss, "precision": result.precision}


def worker_trainer(entry, examples: list, steps: int, threads: int) -> dict:
    """A plain `transformers.Trainer` run: same tokenization, LoRA, optimizer, batch size and
    precision (bf16 autocast where ours uses it); dynamic padding per batch, loss over the whole
    vocabulary at every position (its default)."""
    import peft
    import torch
    from repolsp.models.prompt import template_for
    from repolsp.trainer.adapters import load_model
    from repolsp.trainer.prompts import tuned_template_name
    from repolsp.trainer.tokenizing import load_tokenizer, tokenize_example
    from repolsp.trainer.train import pick_precision
    from repolsp.trainer.train_config import TARGET_MODULES
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    precision = pick_precision("auto", "cpu")
    template_name = tuned_template_name(entry.manifest.family, entry.manifest.fim_template)
    tokenizer = load_tokenizer(entry.hf_dir, template_for(template_name))
    model = load_model(entry.hf_dir, tokenizer, template_name)
    targets = TARGET_MODULES.get(model.config.model_type, "all-linear")
    model = peft.get_peft_model(model, peft.LoraConfig(
        r=LORA["rank"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
        target_modules=targets, task_type="CAUSAL_LM"))
    rows = []
    for e in examples[: steps * LORA["batch"]]:
        ids, labels = tokenize_example(tokenizer, e.prompt, e.completion, 640, 128)
        rows.append({"input_ids": ids, "labels": labels, "attention_mask": [1] * len(ids)})
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    with tempfile.TemporaryDirectory(prefix="repolsp-bench-trainer-") as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=LORA["batch"], max_steps=steps,
            learning_rate=LORA["lr"], weight_decay=0.01, warmup_steps=1, lr_scheduler_type="cosine",
            adam_beta2=0.95, max_grad_norm=1.0, use_cpu=True, report_to=[], save_strategy="no",
            logging_steps=10**6, dataloader_num_workers=0, seed=0, disable_tqdm=True,
            bf16=precision == "bf16",
        )
        trainer = Trainer(model=model, args=args, train_dataset=rows,
                          data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True))
        output = trainer.train()
    seconds = output.metrics["train_runtime"]
    tokens = sum(len(r["input_ids"]) for r in rows)
    return {"steps": steps, "tokens": tokens, "seconds": round(seconds, 1),
            "tokens_per_s": round(tokens / seconds, 1), "last_loss": output.training_loss,
            "precision": precision}


def run_worker(kind: str, model: str, examples_path: Path, steps: int, threads: int) -> dict:
    command = [sys.executable, str(Path(__file__)), "--worker", kind, "--model", model,
               "--examples", str(examples_path), "--steps", str(steps), "--threads", str(threads)]
    print(f"bench: throughput, {kind} ({steps} steps)…", file=sys.stderr)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def before_after(repo: Path, model: str, budget: str, commits: int | None, holdout: int) -> dict:
    """A user's `lsp-train` run with a time budget; its report.json plus wall time."""
    print(f"bench: lsp-train {repo.name} --budget {budget}…", file=sys.stderr)
    user_args = [str(repo), "--model", model, "--budget", budget, "--no-switch",
                 "--max-eval-examples", str(holdout)]
    if commits:
        user_args += ["--max-commits", str(commits)]
    with tempfile.TemporaryDirectory(prefix="repolsp-bench-run-") as run_dir:
        command = [sys.executable, "-m", "repolsp.trainer.cli", *user_args, "--run-dir", run_dir, "-q"]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        report_path = Path(run_dir) / "report.json"
        if done.returncode != 0 or not report_path.is_file():
            return {"error": (done.stderr.strip().splitlines() or ["no report"])[-1]}
        report = json.loads(report_path.read_text())
    report["wall_s"] = round(wall, 1)
    report["command"] = " ".join(["lsp-train", *user_args])
    report["log_tail"] = done.stdout.strip().splitlines()[-3:]
    return report


# --- report ---------------------------------------------------------------------------------

def render(results: dict) -> str:
    env = results["environment"]
    lines = ["# Trainer benchmark", "",
             (f"`{results['command']}` — {env['date']}, {env['cpu']}, {env['cores']} cores, "
             f"load before {env['load_before']}, torch {env.get('torch', '?')}, "
             f"transformers {env.get('transformers', '?')}, peft {env.get('peft', '?')}."), ""]
    mining = results.get("mining") or {}
    if mining:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(mining["by_kind"].items()))
        splits = ", ".join(f"{k} {v}" for k, v in sorted(mining["by_split"].items()))
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(mining["files_skipped"].items()))
        lines += ["## Mining", "",
                  (f"{mining['repo']}: {mining['commits']} commits in {mining['seconds']} s "
                  f"(**{mining['commits_per_s']} commits/s**), {mining['examples']} examples "
                  f"({kinds}; splits {splits}); {mining['files_mined']} files mined, skipped: "
                  f"{skipped or 'none'}; dropped {mining['secrets_dropped']} with secrets, "
                  f"{mining['duplicates_dropped']} duplicates."), ""]
    speed = results.get("throughput") or {}
    if speed:
        ours, plain = speed.get("ours", {}), speed.get("trainer", {})
        precisions = sorted({row.get("precision", "fp32") for row in (ours, plain) if "error" not in row})
        lines += ["## Training throughput", "",
                  (f"{speed['model']}, LoRA r{LORA['rank']} on all projections, "
                  f"{' / '.join(precisions) or 'fp32'}, "
                  f"{LORA['batch']} examples a step, {speed['steps']} steps, {speed['threads']} "
                  f"threads, the same {speed['examples']} examples (mean {speed['mean_tokens']:.0f} "
                  "tokens):"), "",
                  "| loop | tokens/s | seconds | peak RSS |", "|---|---|---|---|"]
        for name, row in (("repolsp (`lsp-train`)", ours), ("plain `transformers.Trainer`", plain)):
            if "error" in row:
                lines.append(f"| {name} | failed: {row['error']} | | |")
            else:
                lines.append(f"| {name} | {row['tokens_per_s']:.0f} | {row['seconds']:.0f} | "
                             f"{row['peak_rss_mb']:.0f} MB |")
        if ours.get("tokens_per_s") and plain.get("tokens_per_s"):
            lines += ["", (f"Ratio: **{ours['tokens_per_s'] / plain['tokens_per_s']:.2f}×** the "
                      "Trainer's tokens/s; the issue's plain-loop baseline (SmolLM2-135M) was 94.")]
        lines.append("")
    run = results.get("before_after") or {}
    if run:
        lines += ["## Before / after (budgeted `lsp-train`)", ""]
        if "error" in run:
            lines += [f"failed: {run['error']}", ""]
        else:
            base, tuned, training = run["base"], run["tuned"], run.get("training", {})
            ratio = (f"{tuned['exact_match'] / base['exact_match']:.2f}×" if base["exact_match"]
                     else "n/a (base 0)")
            lines += [f"`{run['command']}`: {run['wall_s']:.0f} s wall in all.", "",
                      "| model | exact match | edit similarity | completion loss | n |",
                      "|---|---|---|---|---|"]
            for label, row in (("base", base), ("tuned", tuned)):
                loss = f"{row['loss']:.3f}" if row.get("loss") is not None else "—"
                lines.append(f"| {label}: `{row['model']}` | {row['exact_match']:.1%} | "
                             f"{row['edit_similarity']:.3f} | {loss} | {row['n']} |")
            lines += ["", f"Exact match ratio tuned / base: **{ratio}**.",
                      (f"Training: {training.get('steps')}/{training.get('planned_steps')} steps "
                      f"({training.get('stopped')}) in {training.get('elapsed_s', 0):.0f} s, "
                      f"{training.get('tokens_per_s', 0):.0f} tokens/s, saw "
                      f"{training.get('fraction_seen', 0):.0%} of {training.get('train_examples')} "
                      "training examples."), ""]
            sources = run.get("exact_match_by_source") or {}
            if sources:
                from repolsp.trainer.report import source_table

                lines += [*source_table(sources), ""]
    return "\n".join(lines) + "\n"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/train.py", description=__doc__.split("\n\n")[0])
    p.add_argument("repo", nargs="?", type=Path, help="git repository used in place")
    p.add_argument("--model", default="", help="model in the store (default: the store's default)")
    p.add_argument("--mine-commits", type=int, default=0, help="newest N commits (0 = all)")
    p.add_argument("--steps", type=int, default=12, help="optimizer steps per throughput run")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: all cores)")
    p.add_argument("--train-budget", default="30m", help="lsp-train --budget (0 = skip)")
    p.add_argument("--train-commits", type=int, default=300,
                   help="newest commits the budgeted run mines (0 = all)")
    p.add_argument("--holdout", type=int, default=400, help="held-out examples evaluated")
    p.add_argument("--out", type=Path, default=HERE / "TRAINING.md")
    p.add_argument("--json", type=Path, default=HERE / "training.json")
    p.add_argument("--worker", choices=("ours", "trainer"), help=argparse.SUPPRESS)
    p.add_argument("--examples", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    threads = args.threads or os.cpu_count() or 1
    from repolsp.models.errors import ModelError
    from repolsp.models.store import ModelStore

    store = ModelStore()
    try:
        entry = store.get(args.model or store.default_name() or "gemma3-270m")
    except ModelError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    if args.worker:
        examples = _chosen_examples(args.examples, args.steps * LORA["batch"])
        work = worker_ours if args.worker == "ours" else worker_trainer
        figures = work(entry, examples, args.steps, threads)
        figures["peak_rss_mb"] = round(_peak_rss_mb(), 1)
        print(json.dumps(figures))
        return 0
    if args.repo is None or not (args.repo / ".git").exists() and not (args.repo / "HEAD").exists():
        print("bench: give a git repository to mine (used in place)", file=sys.stderr)
        return 2
    repo = args.repo.resolve()
    load_before = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"bench: mining {repo} with {entry.name}…", file=sys.stderr)
    mining, examples = mining_stage(repo, entry, args.mine_commits or None)
    results: dict = {"mining": mining}
    with tempfile.TemporaryDirectory(prefix="repolsp-bench-") as tmp:
        from repolsp.trainer.mine import write_jsonl

        examples_path = Path(tmp) / "examples.jsonl"
        write_jsonl(examples, examples_path)
        count = min(args.steps * LORA["batch"], sum(e.split == "train" for e in examples))
        ours = run_worker("ours", entry.name, examples_path, args.steps, threads)
        plain = run_worker("trainer", entry.name, examples_path, args.steps, threads)
        tokens = ours.get("tokens") or plain.get("tokens") or 0  # both count the same tokens
        results["throughput"] = {
            "model": entry.name, "steps": args.steps, "threads": threads, "examples": count,
            "mean_tokens": tokens / max(1, count), "ours": ours, "trainer": plain,
        }
    if args.train_budget not in ("", "0"):
        results["before_after"] = before_after(repo, entry.name, args.train_budget,
                                               args.train_commits or None, args.holdout)
    import peft
    import torch
    import transformers

    command = "python bench/train.py " + " ".join(argv if argv is not None else sys.argv[1:])
    results["command"] = command.strip()
    results["environment"] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": _cpu_name(),
        "cores": os.cpu_count(), "load_before": load_before, "python": platform.python_version(),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "peft": peft.__version__,
    }
    args.out.write_text(render(results), encoding="utf-8")
    args.json.write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    print(render(results))
    print(f"bench: wrote {args.out} and {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
