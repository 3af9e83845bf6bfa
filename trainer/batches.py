"""Token ids -> the step plan: value order (newest commits, most-touched files), epochs, packing
into rows, collation into tensors, and the learning-rate schedule fitted to a time budget.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from repolsp.trainer.errors import TrainerError
from repolsp.trainer.tokenizing import (
    IGNORE,
    Tokenized,
    context_vocabulary,
    fim_sentinels,
    tokenize_example,
    tokenize_for_training,
)
from repolsp.trainer.train_config import TrainConfig


def priority_order(examples) -> list[int]:
    """Indices of `examples`, most valuable first: newest commits, then most-touched files."""
    if not examples:
        return []
    times = [e.time for e in examples]
    t_min, t_max = min(times), max(times)
    touches: dict[str, set] = {}
    for e in examples:
        touches.setdefault(e.path, set()).add(e.commit)
    most = max(len(s) for s in touches.values())

    def score(i: int) -> float:
        e = examples[i]
        recency = (e.time - t_min) / (t_max - t_min) if t_max > t_min else 1.0
        return 0.7 * recency + 0.3 * len(touches[e.path]) / most

    ranked = sorted(range(len(examples)), key=lambda i: (-score(i), i))
    # Snapshot holes all carry the last training commit's time; alternate them with the
    # history's examples instead of letting them fill the front of a budget-cut run.
    history = [i for i in ranked if examples[i].kind != "snapshot"]
    snapshot = [i for i in ranked if examples[i].kind == "snapshot"]
    merged = [i for pair in zip(history, snapshot) for i in pair]
    shared = min(len(history), len(snapshot))
    order = merged + history[shared:] + snapshot[shared:]
    # Holes the prompt answers but the base model misses go first (trainer/mine_priority.py).
    first = [i for i in order if getattr(examples[i], "first", False)]
    return first + [i for i in order if not getattr(examples[i], "first", False)] if first else order


def epoch_order(priority: list[int], epoch: int, seed: int, window: int) -> list[int]:
    """The epoch's example order: priority order, shuffled only within consecutive windows
    (so a budget-cut run still sees the most valuable examples first). Deterministic."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order: list[int] = []
    for start in range(0, len(priority), window):
        chunk = priority[start:start + window]
        rng.shuffle(chunk)
        order.extend(chunk)
    return order


def pack_rows(order: list[int], lengths: dict[int, int], seq_len: int, max_open: int = 8) -> list[list[int]]:
    """First-fit packing that keeps the order roughly: each example goes into the first of up
    to `max_open` open rows with room for it (whole examples, lengths summing to <= seq_len);
    the oldest open row is closed when too many are open. Rows come out nearly full, so little
    compute goes to padding, and a budget-cut run still sees the most valuable examples first."""
    rows: list[list[int]] = []
    open_rows: list[tuple[list[int], list[int]]] = []  # (examples, [tokens used])
    for i in order:
        n = lengths[i]
        for members, used in open_rows:
            if used[0] + n <= seq_len:
                members.append(i)
                used[0] += n
                break
        else:
            open_rows.append(([i], [n]))
            if len(open_rows) > max_open:
                rows.append(open_rows.pop(0)[0])
    rows.extend(members for members, _ in open_rows)
    return rows


def plan_batches(priority: list[int], lengths: dict[int, int], config: TrainConfig,
                 processes: int = 1) -> list[list[list[int]]]:
    """All optimizer steps' batches for the whole run: steps -> rows -> example indices.
    `batch_size` counts rows per process: N processes take N times the rows per step."""
    per_step = config.batch_size * config.grad_accum * processes
    steps: list[list[list[int]]] = []
    full_epochs = math.ceil(config.epochs)
    for epoch in range(full_epochs):
        order = epoch_order(list(priority), epoch, config.seed, config.shuffle_window)
        rows = pack_rows(order, lengths, config.seq_len)
        epoch_steps = [rows[i:i + per_step] for i in range(0, len(rows), per_step)]
        if epoch == full_epochs - 1 and config.epochs < full_epochs:
            epoch_steps = epoch_steps[: max(1, round(len(epoch_steps) * (config.epochs - epoch)))]
        steps.extend(epoch_steps)
    if config.max_steps:
        steps = steps[: config.max_steps]
    return steps


def collate(rows: list[list[int]], data: dict[int, Tokenized], pack: bool = True):
    """Tensors for rows of packed examples: input_ids and labels [B, L], position_ids that
    restart at each example, and a block-diagonal causal mask [B, 1, L, L] so packed examples
    never attend to each other (the model sees each exactly as served). A single example
    alone needs no mask: plain causal attention."""
    import torch

    with_context = any(data[i].context_labels for row in rows for i in row)
    if len(rows) == 1 and len(rows[0]) == 1:
        only = data[rows[0][0]]
        out = {"input_ids": torch.tensor([only.input_ids]), "labels": torch.tensor([only.labels])}
        if with_context:
            out["context_labels"] = torch.tensor([only.context_labels])
        return out

    width = max(sum(len(data[i].input_ids) for i in row) for row in rows)
    batch = len(rows)
    input_ids = torch.zeros(batch, width, dtype=torch.long)
    labels = torch.full((batch, width), IGNORE, dtype=torch.long)
    context = torch.full((batch, width), IGNORE, dtype=torch.long)
    positions = torch.zeros(batch, width, dtype=torch.long)
    if not pack:
        mask2d = torch.zeros(batch, width, dtype=torch.long)
    mask = torch.zeros(batch, 1, width, width, dtype=torch.bool)
    for b, row in enumerate(rows):
        cursor = 0
        for i in row:
            ids = data[i].input_ids
            n = len(ids)
            input_ids[b, cursor:cursor + n] = torch.tensor(ids)
            labels[b, cursor:cursor + n] = torch.tensor(data[i].labels)
            if data[i].context_labels:
                context[b, cursor:cursor + n] = torch.tensor(data[i].context_labels)
            positions[b, cursor:cursor + n] = torch.arange(n)
            mask[b, 0, cursor:cursor + n, cursor:cursor + n] = torch.tril(torch.ones(n, n, dtype=torch.bool))
            if not pack:
                mask2d[b, cursor:cursor + n] = 1
            cursor += n
        # Padding attends to itself only (an all-False row would give NaN in attention).
        pad = torch.arange(cursor, width)
        mask[b, 0, pad, pad] = True
    out = {"input_ids": input_ids, "labels": labels}
    if with_context:
        out["context_labels"] = context
    if not pack:
        return {**out, "attention_mask": mask2d}
    return {**out, "attention_mask": mask, "position_ids": positions}


BUDGET_FIT_STEPS = (3, 8, 20, 50)


def fit_schedule_steps(step: int, elapsed_s: float, first_step_s: float, budget_s: float,
                       planned_steps: int) -> int:
    """Steps that fit a time budget, from the time of steps 2..`step` (the first is warm-up)."""
    per_step = (elapsed_s - first_step_s) / max(1, step - 1) if step > 1 else elapsed_s
    per_step = max(per_step, 1e-6)
    fit = step + int(max(0.0, budget_s - elapsed_s) / per_step)
    return max(step + 1, min(planned_steps, fit))


def get_lr(step: int, total_steps: int, peak_lr: float, warmup_fraction: float, min_ratio: float) -> float:
    """Linear warmup, then cosine decay to `min_ratio` x peak at `total_steps`."""
    warmup = max(1, round(total_steps * warmup_fraction))
    if step < warmup:
        return peak_lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return peak_lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


@dataclass
class TrainingPlan:
    """The tokenized examples of one run and its steps (each a list of rows of example indices)."""

    train_examples: list
    data: dict[int, Tokenized]
    batches: list[list[list[int]]]
    valid_data: dict[int, Tokenized]
    valid_rows: list[list[int]]
    pack: bool
    fim_ids: list[int]
    context_vocab: object | None  # tensor of the repository's token ids, or None (full softmax)


def plan_training(examples, tokenizer, template, config: TrainConfig, device: str,
                  tensor_device, processes: int = 1) -> TrainingPlan:
    """Tokenize the train and valid splits and plan the steps; TrainerError when nothing trains."""
    train_examples = [e for e in examples if e.split == "train"]
    valid_examples = [e for e in examples if e.split == "valid"]
    if not train_examples:
        raise TrainerError("no training examples")
    # Prefix tuning prepends keys of its own, so it never packs.
    pack = config.method != "prefix" and (config.pack if config.pack is not None else device == "cuda")
    data = {}
    for i, e in enumerate(train_examples):
        data[i] = tokenize_for_training(tokenizer, e, i, config)
    fim_ids = [tokenizer.convert_tokens_to_ids(t) for t in fim_sentinels(template)] if template.fim else []
    context_vocab = None
    if config.context_tokens and config.context_softmax == "repository":
        context_vocab = context_vocabulary(data.values(), excluded=fim_ids).to(tensor_device)
    elif config.context_softmax not in ("repository", "full"):
        raise TrainerError(f"unknown context softmax {config.context_softmax!r} (repository or full)")
    lengths = {i: len(t.input_ids) for i, t in data.items()}
    priority = priority_order(train_examples)
    batches = plan_batches(priority, lengths if pack else {i: config.seq_len for i in data}, config,
                           processes)
    valid_data = {}
    for i, e in enumerate(valid_examples):
        ids, labels = tokenize_example(tokenizer, e.prompt, e.completion, config.seq_len,
                                       config.max_completion_tokens)
        valid_data[i] = Tokenized(ids, labels, i)
    valid_rows = pack_rows(list(valid_data), {i: len(t.input_ids) for i, t in valid_data.items()},
                           config.seq_len if pack else 1)[: config.max_eval_rows * (1 if pack else 2)]
    return TrainingPlan(train_examples, data, batches, valid_data, valid_rows, pack, fim_ids,
                        context_vocab)
