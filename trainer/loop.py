"""The training loop of one run: optimizer steps, validation and early stopping, checkpoints,
the metrics log, the time budget, and Ctrl-C (checkpoint, then `TrainingInterrupted`).

`train.train` prepares everything the loop needs (the plan, the model, the resumed state) and
hands it over; the loop reads top to bottom in `TrainingLoop.loop`.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

from repolsp.trainer.adapters import trainable_state
from repolsp.trainer.batches import (
    BUDGET_FIT_STEPS,
    TrainingPlan,
    collate,
    fit_schedule_steps,
    get_lr,
)
from repolsp.trainer.data_parallel import (
    mean_across_processes,
    share_of_step,
    step_micro_batches,
    sum_across_processes,
)
from repolsp.trainer.errors import TrainingInterrupted
from repolsp.trainer.interrupt import DeferredStop
from repolsp.trainer.loss import completion_loss
from repolsp.trainer.progress_bar import stdout_bar
from repolsp.trainer.tokenizing import IGNORE
from repolsp.trainer.train_config import CHECKPOINT, METRICS, TrainConfig


def atomic_torch_save(obj, path: Path) -> None:
    """torch.save to a temporary name, then rename: a crash never leaves half a checkpoint."""
    import torch

    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class TrainingLoop:
    """The training loop of one run: steps, validation, checkpoints, the metrics log, stopping."""

    def __init__(self, accelerator, model, optimizer, params, plan: TrainingPlan,
                 config: TrainConfig, state: dict, run_dir: Path, fingerprint: dict):
        import torch

        self.accelerator, self.model, self.optimizer, self.params = accelerator, model, optimizer, params
        self.plan, self.config, self.state = plan, config, state
        self.run_dir, self.fingerprint = run_dir, fingerprint
        self.world, self.rank = accelerator.num_processes, accelerator.process_index
        self.fast = config.method != "prefix"
        # RNG state at the start of the current step: an interruption mid-step resumes that step
        # with the same dropout masks an uninterrupted run would have drawn.
        self.rng_at_step_start = torch.get_rng_state()
        self.bar = None
        self.stop = DeferredStop()

    def autocast(self):
        import torch

        return torch.autocast(device_type=self.accelerator.device.type, dtype=torch.bfloat16,
                              enabled=self.config.precision == "bf16")

    def save_checkpoint(self) -> None:
        if not self.accelerator.is_main_process:
            return
        atomic_torch_save({
            "fingerprint": self.fingerprint,
            "trainable": trainable_state(self.accelerator.unwrap_model(self.model)),
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": self.rng_at_step_start,
            "python_rng": random.getstate(),
            "state": dict(self.state),
        }, self.run_dir / CHECKPOINT)

    def valid_loss(self) -> float | None:
        """Mean completion loss per label token over the validation rows (None without any)."""
        import torch

        plan = self.plan
        if not plan.valid_rows:
            return None
        self.model.eval()
        total = count = 0.0
        with torch.no_grad():
            step_rows = self.config.batch_size if plan.pack else 1
            for start in range(0, len(plan.valid_rows), step_rows):
                batch = collate(plan.valid_rows[start:start + step_rows], plan.valid_data, plan.pack)
                batch = {k: v.to(self.accelerator.device) for k, v in batch.items()}
                with self.autocast():
                    loss = completion_loss(self.model, batch, self.fast)
                n = int((batch["labels"][:, 1:] != IGNORE).sum())
                total += float(loss) * n
                count += n
        self.model.train()
        return total / count if count else None

    def train_step(self, step: int, lr: float) -> tuple[float, int]:
        """One optimizer step over batch `step` at learning rate lr: (loss, tokens, all processes)."""
        config, plan = self.config, self.plan
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        per_forward = config.batch_size if plan.pack else 1  # unpacked: one example per forward
        micro = step_micro_batches(plan.batches[step], per_forward)
        step_loss = 0.0
        step_tokens = 0
        for micro_batch in share_of_step(micro, self.rank, self.world):
            batch = collate(micro_batch, plan.data, plan.pack)
            step_tokens += int(batch["input_ids"].numel())
            batch = {k: v.to(self.accelerator.device) for k, v in batch.items()}
            with self.autocast():
                # Divided by the step's micro-batches on all processes: the summed gradient is
                # the one-process gradient of the same rows.
                loss = completion_loss(self.model, batch, self.fast, config.context_weight,
                                       plan.context_vocab) / len(micro)
            self.accelerator.backward(loss)
            step_loss += float(loss.detach())
        stop = float(self.stop.requested)
        if self.world > 1:
            step_loss, step_tokens, stop = sum_across_processes(self.params,
                                                                [step_loss, step_tokens, stop])
            step_tokens = int(step_tokens)
        if stop:
            # Ctrl-C or SIGTERM on any process: all leave here, before the update (see interrupt).
            raise KeyboardInterrupt
        if config.clip_norm:
            self.accelerator.clip_grad_norm_(self.params, config.clip_norm)
        self.optimizer.step()
        if config.method == "adalora":
            self.accelerator.unwrap_model(self.model).base_model.update_and_allocate(step)
        self.optimizer.zero_grad(set_to_none=True)
        return step_loss, step_tokens

    def fit_budget(self, elapsed: float) -> None:
        """A time budget: shorten the schedule to what fits, so the learning rate still decays
        to its floor by the end; re-fitted as the step time becomes clearer."""
        state = self.state
        if self.config.budget_s and state["step"] in BUDGET_FIT_STEPS:
            fit = fit_schedule_steps(state["step"], elapsed, state.get("first_step_s", 0.0),
                                     self.config.budget_s, len(self.plan.batches))
            state["schedule_steps"] = fit
            if self.bar is not None:
                self.bar.total = fit

    def validate(self, record: dict) -> None:
        """Every eval_every steps and at the end: the validation loss into record, the best
        weights saved, and the count of evaluations without improvement (early stopping)."""
        state = self.state
        eval_every = self.config.eval_every or max(5, state["schedule_steps"] // 5)
        if not self.plan.valid_rows or not (state["step"] % eval_every == 0
                                            or state["step"] == state["schedule_steps"]):
            return
        v = self.valid_loss()
        record["valid_loss"] = round(v, 5)
        if state["best_valid"] is None or v < state["best_valid"] - 1e-4:
            state["best_valid"] = v
            state["bad_evals"] = 0
            if self.accelerator.is_main_process:
                atomic_torch_save(trainable_state(self.accelerator.unwrap_model(self.model)),
                                   self.run_dir / "best.pt")
        else:
            state["bad_evals"] += 1

    def loop(self, show_progress: bool, stop_after_steps: int | None, resumed_from: int) -> str:
        """Run steps until the schedule ends or a stop rule fires; returns why it stopped
        ("done", "budget", "early-stop", "max-steps"). Ctrl-C checkpoints, then raises
        TrainingInterrupted."""
        import torch

        config, state = self.config, self.state
        if show_progress and self.accelerator.is_main_process:
            self.bar = stdout_bar("training", total=state["schedule_steps"], initial=state["step"],
                                  unit="step")
        metrics = open(self.run_dir / METRICS, "a", encoding="utf-8")  # noqa: SIM115 - closed in finally
        started = time.monotonic()
        last_checkpoint = started
        elapsed_before = state["elapsed_s"]
        stopped = "done"
        self.model.train()
        self.stop.__enter__()  # left in `finally`
        try:
            while state["step"] < state["schedule_steps"]:
                step = state["step"]
                if stop_after_steps is not None and step - resumed_from >= stop_after_steps:
                    raise KeyboardInterrupt
                lr = get_lr(step, state["schedule_steps"], config.peak_lr, config.warmup_fraction,
                            config.min_lr_ratio)
                if self.world > 1:
                    # Each process's dropout masks come from (seed, step, rank): a resumed run
                    # draws what an uninterrupted one would, though the checkpoint holds rank 0's
                    # RNG state only.
                    torch.manual_seed((config.seed * 1_000_003 + step) * self.world + self.rank)
                step_loss, step_tokens = self.train_step(step, lr)
                state["step"] = step + 1
                self.rng_at_step_start = torch.get_rng_state()
                state["tokens"] += step_tokens
                state["last_loss"] = step_loss
                if state["first_loss"] is None:
                    state["first_loss"] = step_loss
                elapsed = elapsed_before + time.monotonic() - started
                if self.world > 1:  # one clock for all: the budget stops every process at one step
                    elapsed = mean_across_processes(elapsed, self.accelerator.device)
                state["elapsed_s"] = elapsed
                tokens_per_s = state["tokens"] / elapsed if elapsed > 0 else 0.0
                record = {"step": state["step"], "loss": round(step_loss, 5), "lr": lr,
                          "tokens_per_s": round(tokens_per_s, 1), "elapsed_s": round(elapsed, 2)}
                if state["step"] == 1:
                    state["first_step_s"] = elapsed  # warm-up (allocation, lazy init): not typical
                self.fit_budget(elapsed)
                self.validate(record)
                if self.accelerator.is_main_process:
                    metrics.write(json.dumps(record) + "\n")
                    metrics.flush()
                if self.bar is not None:
                    self.bar.set_postfix(loss=f"{step_loss:.3f}", tok_s=f"{tokens_per_s:.0f}", refresh=False)
                    self.bar.update(1)
                if (state["step"] % config.checkpoint_every == 0
                        or time.monotonic() - last_checkpoint >= config.checkpoint_every_s):
                    self.save_checkpoint()
                    last_checkpoint = time.monotonic()
                if state["bad_evals"] >= config.patience:
                    stopped = "early-stop"
                    break
                if config.budget_s and elapsed >= config.budget_s:
                    stopped = "budget"
                    break
            else:
                if config.budget_s and state["schedule_steps"] < len(self.plan.batches):
                    stopped = "budget"  # the schedule was fitted to the time budget
                elif config.max_steps and state["step"] >= config.max_steps:
                    stopped = "max-steps"
                else:
                    stopped = "done"
        except KeyboardInterrupt:
            self.save_checkpoint()
            raise TrainingInterrupted(
                f"interrupted at step {state['step']}/{state['schedule_steps']}; checkpoint kept in "
                f"{self.run_dir}; run `lsp-train --resume` with the same options to continue"
            ) from None
        finally:
            self.stop.__exit__()
            metrics.close()
            if self.bar is not None:
                self.bar.close()
        self.save_checkpoint()
        return stopped
