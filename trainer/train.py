"""Examples -> adapter: a plain PyTorch loop over packed sequences, with peft adapters.

Read top to bottom: tokenizer and FIM tokens -> tokenize -> order by value (newest commits,
most-touched files) -> pack into rows -> model + adapter -> loop (AdamW, warmup + cosine,
accumulation, clipping, validation, early stopping, checkpoints, time budget) -> adapter on disk.

Runs on CPU or CUDA; under `accelerate launch` / `torchrun` the same code trains data-parallel
(each process takes its share of every step's rows, gradients summed: see `data_parallel`; one
step's rows are batch_size x grad_accum x processes). Checkpoints hold everything a run needs to
continue exactly: trainable weights, optimizer, step, RNG state, schedule length.
"""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import replace
from pathlib import Path

from repolsp.models.prompt import template_for
from repolsp.trainer.adapters import (
    add_adapter,
    load_model,
    load_trainable_state,
    save_adapter,
    stored_dtype,
    taught_sentinel_ids,
)
from repolsp.trainer.batches import (
    plan_training,
)
from repolsp.trainer.data_parallel import mean_across_processes, same_on_every_process
from repolsp.trainer.errors import TrainerError
from repolsp.trainer.loop import TrainingLoop
from repolsp.trainer.prompts import tuned_template_name
from repolsp.trainer.tokenizing import (
    fim_sentinels,
    load_tokenizer,
)
from repolsp.trainer.train_config import (
    ADAPTER,
    CHECKPOINT,
    METRICS,
    TOKEN_LR_SCALE,
    TrainConfig,
    TrainResult,
    pick_device,
)

log = logging.getLogger(__name__)


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU multiplies bf16 matrices natively (x86 AVX512-BF16 or AMX, from Linux's
    /proc/cpuinfo); elsewhere bf16 autocast is emulated and no faster than float32."""
    try:
        flags = cpuinfo.read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_precision(precision: str, device: str) -> str:
    """"bf16" or "fp32" for a run on `device` ("cpu" / "cuda") asked for `precision`."""
    import torch

    if precision not in ("auto", "bf16", "fp32"):
        raise TrainerError(f"unknown precision {precision!r} (auto, bf16 or fp32)")
    if precision != "auto":
        if precision == "bf16" and device == "cuda" and not torch.cuda.is_bf16_supported():
            raise TrainerError("--precision bf16: this GPU does not support bf16 (use fp32)")
        return precision
    if device == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_native_bf16() else "fp32"


# -- the run ---------------------------------------------------------------------------------------


def _data_fingerprint(examples, base_name: str) -> str:
    digest = hashlib.sha256(base_name.encode())
    for e in examples:
        digest.update(f"{e.commit}\x00{e.path}\x00{e.kind}\x00{e.completion}\x00{len(e.prompt)}\x01".encode())
    return digest.hexdigest()[:16]


def train(entry, examples, run_dir: Path, config: TrainConfig, tokenizer=None,
          show_progress: bool = True, stop_after_steps: int | None = None) -> TrainResult:
    """Train an adapter for store entry `entry` on the `train` split of `examples`.

    `stop_after_steps` simulates an interruption (tests): the run stops as Ctrl-C would.
    """
    import torch  # lazy, as every torch import of the trainer: `lsp-train --help` stays fast

    manifest = entry.manifest
    template_name = tuned_template_name(manifest.family, manifest.fim_template)
    template = template_for(template_name)
    if tokenizer is None:
        tokenizer = load_tokenizer(entry.hf_dir, template)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    precision = pick_precision(config.precision, device)
    config = replace(config, precision=precision)  # checkpoints and the adapter record the one that ran
    accelerator = _accelerator(device)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    world = accelerator.num_processes
    plan = plan_training(examples, tokenizer, template, config, device, accelerator.device, world)

    # Same seed -> same adapter init, same dropout masks, same data order.
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    model, optimizer, params, added = build_model(entry, tokenizer, template, template_name, config,
                                                  plan.fim_ids, len(plan.batches))
    fingerprint = {"config": config.fingerprint(), "data": _data_fingerprint(plan.train_examples, entry.name)}
    if world > 1:
        fingerprint["processes"] = world  # a step's rows depend on it
        if config.budget_s:  # each process's mining took its own time: one budget for all
            config = replace(config, budget_s=mean_across_processes(config.budget_s, accelerator.device))
        if not same_on_every_process(fingerprint["data"]):
            raise TrainerError("the processes mined different examples (did the history change "
                               "while they started?); run again")
    # On its device before a resumed optimizer state is loaded: that state follows its parameters.
    model.to(accelerator.device)
    state, resumed_from = start_or_resume(run_dir, config, fingerprint, model, optimizer,
                                          len(plan.batches))
    run = TrainingLoop(accelerator, model, optimizer, params, plan, config, state, run_dir, fingerprint)
    stopped = run.loop(show_progress, stop_after_steps, resumed_from)

    unwrapped = accelerator.unwrap_model(run.model)
    best_path = run_dir / "best.pt"
    if state["best_valid"] is not None and best_path.is_file() and stopped == "early-stop":
        load_trainable_state(unwrapped, torch.load(best_path, map_location="cpu", weights_only=False))
    adapter_dir = run_dir / ADAPTER
    if accelerator.is_main_process:
        save_adapter(unwrapped, tokenizer, adapter_dir, config, template_name, entry.name)
    accelerator.wait_for_everyone()
    elapsed = state["elapsed_s"]
    return TrainResult(
        adapter_dir=adapter_dir, method=config.method, steps=state["step"],
        planned_steps=len(plan.batches), stopped=stopped, train_examples=len(plan.train_examples),
        examples_seen=_examples_through(plan.batches, state["step"] - 1), tokens_seen=state["tokens"],
        elapsed_s=elapsed, tokens_per_s=state["tokens"] / elapsed if elapsed > 0 else 0.0,
        first_loss=state["first_loss"], last_loss=state["last_loss"],
        best_valid_loss=state["best_valid"], fim_template=template_name if template.fim else None,
        added_tokens=added, resumed_from_step=resumed_from, context_tokens=config.context_tokens,
        precision=precision,
    )


def _accelerator(device: str):
    from accelerate import Accelerator

    # Autocast is ours (`TrainingLoop.autocast`): accelerate's precision is fixed for the life of
    # a process. The model is never wrapped in DDP (see `data_parallel`): the accelerator gives
    # the process group, the device and the rank.
    return Accelerator(cpu=device == "cpu", mixed_precision="no")


def build_model(entry, tokenizer, template, template_name: str, config: TrainConfig,
                fim_ids: list[int], schedule_steps: int):
    """(model with its adapter, AdamW over what trains, the trainable parameters, FIM tokens the
    tokenizer added)."""
    import torch

    # Under bf16 autocast, frozen weights stored in bf16 stay bf16 (nothing is lost) instead of
    # being cast again in every forward; what trains stays float32.
    frozen_bf16 = (config.precision == "bf16" and config.method != "full"
                   and stored_dtype(entry.hf_dir) == "bfloat16")
    frozen_dtype = torch.bfloat16 if frozen_bf16 else torch.float32
    model = load_model(entry.hf_dir, tokenizer, template_name, dtype=frozen_dtype)
    added = [t for t in fim_sentinels(template) if t in tokenizer.get_added_vocab()] if template.fim else []
    model = add_adapter(model, config, taught_sentinel_ids(template_name, fim_ids), schedule_steps)
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    # The FIM sentinel rows start from nothing the model knows: they learn 10x faster.
    tokens = [p for n, p in named if "token_rows" in n]
    decay = [p for n, p in named if p.ndim >= 2 and "token_rows" not in n]
    no_decay = [p for n, p in named if p.ndim < 2 and "token_rows" not in n]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if tokens:
        groups.append({"params": tokens, "weight_decay": 0.0, "lr_scale": TOKEN_LR_SCALE})
    optimizer = torch.optim.AdamW(groups, lr=config.peak_lr, betas=(0.9, 0.95))
    return model, optimizer, params, added


def start_or_resume(run_dir: Path, config: TrainConfig, fingerprint: dict, model, optimizer,
                    schedule_steps: int) -> tuple[dict, int]:
    """(the loop's state, the step it resumes from): a fresh state, or --resume's checkpoint
    loaded into model, optimizer and the RNGs. The metrics log is emptied on a fresh start."""
    import torch

    ckpt_path = run_dir / CHECKPOINT
    state = {"step": 0, "elapsed_s": 0.0, "tokens": 0, "schedule_steps": schedule_steps,
             "best_valid": None, "bad_evals": 0, "first_loss": None, "last_loss": None}
    resumed_from = 0
    if config.resume:
        if not ckpt_path.is_file():
            raise TrainerError(f"nothing to resume: no checkpoint in {run_dir} (run without --resume)")
        saved = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        made_with = saved["fingerprint"].get("processes", 1)
        if made_with != fingerprint.get("processes", 1):
            raise TrainerError(f"the checkpoint was made by {made_with} process(es): resume with "
                               f"as many (a step's rows depend on it), or run without --resume")
        if saved["fingerprint"] != fingerprint:
            raise TrainerError(
                "the checkpoint was made with other settings or another history; "
                "run without --resume to start over"
            )
        load_trainable_state(model, saved["trainable"])
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["torch_rng"])
        random.setstate(saved["python_rng"])
        state.update(saved["state"])
        resumed_from = state["step"]
    elif ckpt_path.is_file():
        log.warning("starting over; the interrupted run's checkpoint in %s is replaced", run_dir)
        ckpt_path.unlink()
    (run_dir / METRICS).touch()
    if not config.resume:
        (run_dir / METRICS).write_text("")
    return state, resumed_from


def _examples_through(batches, step: int) -> int:
    """Distinct examples in batches[0..step] (all of them once an epoch is complete)."""
    seen = set()
    for rows in batches[: step + 1]:
        for row in rows:
            seen.update(row)
    return len(seen)
