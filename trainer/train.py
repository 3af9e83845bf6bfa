"""Examples -> adapter: a plain PyTorch loop over packed sequences, with peft adapters.

Read top to bottom: tokenizer and FIM tokens -> tokenize -> order by value (newest commits,
most-touched files) -> pack into rows -> model + adapter -> loop (AdamW, warmup + cosine,
accumulation, clipping, validation, early stopping, checkpoints, time budget) -> adapter on disk.

Runs on CPU or CUDA; under `accelerate launch` / `torchrun` the same code trains with DDP
(each process takes its share of every batch). Checkpoints hold everything a run needs to
continue exactly: trainable weights, optimizer, step, RNG state, schedule length.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from repolsp.trainer.errors import TrainerError, TrainingInterrupted

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
ADAPTER = "adapter"
IGNORE = -100  # label of tokens that carry no loss (prompt, padding)

# LoRA targets per transformers model_type; anything else gets peft's "all-linear".
TARGET_MODULES = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gemma": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gemma2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gemma3_text": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "starcoder2": ["q_proj", "k_proj", "v_proj", "o_proj", "c_fc", "c_proj"],
    "gpt_bigcode": ["c_attn", "c_proj", "c_fc"],
}
# LoRA tolerates (and a short CPU run needs) a higher rate than full fine-tuning; on attrs'
# history a half-hour CPU run reached a lower validation loss at 3e-4 than at 1e-3 (1.87 / 1.96).
DEFAULT_LR = {"lora": 3e-4, "adalora": 1e-3, "prefix": 1e-2, "full": 2e-5}
TOKEN_LR_SCALE = 10.0
DEFAULT_BATCH_ROWS = {"cpu": 4, "cuda": 8}  # CPU: examples per step; CUDA: packed rows


@dataclass
class TrainConfig:
    """Everything that shapes a training run (saved in checkpoints; resume checks it)."""

    method: str = "lora"
    rank: int = 16
    alpha: float | None = None
    dropout: float = 0.0  # LoRA dropout 0.05 cost 21% of a CPU step (232 vs 293 tokens/s)
    epochs: float = 1.0
    lr: float | None = None
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.1
    clip_norm: float = 1.0
    batch_size: int = 2  # rows per optimizer step (per process)
    grad_accum: int = 1
    seq_len: int = 1024  # tokens per packed row (two or three examples)
    # Packing with block-diagonal masks pays on GPUs; on CPU, one example per forward with no
    # mask at all is cheaper (no padding either, and PyTorch's fused causal attention instead
    # of an L x L mask). None: pack on CUDA only.
    pack: bool | None = None
    max_completion_tokens: int = 128
    # Completion examples also teach the code just before the cursor: the last `context_tokens`
    # tokens of the prefix carry loss too (weight `context_weight` against the completion's),
    # from the same forward pass. A completion is ~15 tokens of a ~600-token prompt, so this
    # multiplies what one CPU second teaches about the repository's own code. `lsp-train`
    # uses 128 (measured on attrs: better than 0 and than 256) and weight 2 (better than 1 on
    # the newest 300 commits; see bench/eval).
    context_tokens: int = 0
    context_weight: float = 1.0
    # "repository": the context term's softmax runs over the tokens of the training data only
    # (see completion_loss); "full": over the whole vocabulary.
    context_softmax: str = "repository"
    max_steps: int | None = None
    checkpoint_every: int = 20
    checkpoint_every_s: float = 300.0  # also checkpoint at least this often (slow CPU steps)
    eval_every: int | None = None  # None: five validations per run
    max_eval_rows: int = 8
    patience: int = 3  # validations without improvement before stopping early
    seed: int = 0
    device: str = "auto"
    # "auto": bf16 autocast on CUDA devices that support it and on CPUs with native bf16
    # instructions (AVX512-BF16, AMX), float32 elsewhere. The adapter and optimizer state stay
    # float32. Default model, attrs, 2 cores: 156 tokens/s in float32, 227 with autocast, 302
    # with the frozen weights kept in their stored bf16 (401 with the repository softmax).
    precision: str = "auto"
    budget_s: float | None = None
    resume: bool = False
    threads: int | None = None
    shuffle_window: int = 64  # examples shuffled within windows of this many (priority order kept)

    @classmethod
    def from_args(cls, args, budget_s: float | None, max_prompt_tokens: int) -> TrainConfig:
        batch_size = args.batch_size or DEFAULT_BATCH_ROWS[pick_device(args.device)]
        return cls(
            method=args.method, rank=args.rank, alpha=args.alpha, dropout=args.dropout,
            epochs=args.epochs, lr=args.lr, batch_size=batch_size, grad_accum=args.grad_accum,
            context_tokens=args.context_tokens, context_weight=args.context_weight,
            context_softmax=args.context_softmax,
            seq_len=args.seq_len or max(1024, max_prompt_tokens + 128), max_steps=args.max_steps,
            checkpoint_every=args.checkpoint_every, eval_every=args.eval_every, seed=args.seed,
            device=args.device, precision=args.precision, budget_s=budget_s, resume=args.resume,
            threads=args.threads,
        )

    @property
    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.method]

    def fingerprint(self) -> dict:
        """Settings that must be equal for --resume to continue a run exactly."""
        keep = ("method", "rank", "alpha", "dropout", "epochs", "lr", "weight_decay",
                "warmup_fraction", "min_lr_ratio", "batch_size", "grad_accum", "seq_len",
                "max_completion_tokens", "context_tokens", "context_weight", "context_softmax",
                "max_steps", "seed", "shuffle_window", "pack", "precision")
        return {k: getattr(self, k) for k in keep}


@dataclass
class TrainResult:
    """What a run did; `summary()` is the line the CLI prints."""

    adapter_dir: Path
    method: str
    steps: int
    planned_steps: int
    stopped: str  # "done" | "budget" | "early-stop" | "max-steps"
    train_examples: int
    examples_seen: int
    tokens_seen: int
    elapsed_s: float
    tokens_per_s: float
    first_loss: float | None
    last_loss: float | None
    best_valid_loss: float | None
    fim_template: str | None
    added_tokens: list[str] = field(default_factory=list)
    resumed_from_step: int = 0
    context_tokens: int = 0  # the training loss includes the context term when > 0
    precision: str = "fp32"

    @property
    def fraction_seen(self) -> float:
        return self.examples_seen / self.train_examples if self.train_examples else 0.0

    def summary(self) -> str:
        losses = (f"loss {self.first_loss:.3f} -> {self.last_loss:.3f}"
                  if self.first_loss is not None and self.last_loss is not None else "no loss")
        if self.context_tokens and self.first_loss is not None:
            losses += f" (completion + {self.context_tokens} context tokens)"
        valid = f", best valid loss {self.best_valid_loss:.3f}" if self.best_valid_loss is not None else ""
        return (
            f"trained {self.steps}/{self.planned_steps} steps ({self.stopped}) in {self.elapsed_s:.0f}s: "
            f"{losses}{valid}; saw {self.fraction_seen:.0%} of {self.train_examples} examples; "
            f"{self.tokens_per_s:.0f} tokens/s in {self.precision} (plain-loop baseline on 2 cores: 94)"
        )

    def stats_for_manifest(self) -> dict:
        data = asdict(self)
        data["adapter_dir"] = str(self.adapter_dir)
        data["fraction_seen"] = round(self.fraction_seen, 4)
        return data


# -- tokenizer and FIM tokens -------------------------------------------------------------------


def load_tokenizer(hf_dir: Path, template=None):
    """The model's tokenizer, with the template's FIM sentinels added as special tokens when the
    vocabulary lacks them (SmolLM2); existing tokens (Gemma's <unusedN>) are reused."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(hf_dir))
    except (OSError, ValueError) as exc:
        raise TrainerError(f"cannot load the tokenizer from {hf_dir}: {exc}") from exc
    if template is not None and template.fim:
        missing = [t for t in fim_sentinels(template) if not _single_token(tokenizer, t)]
        if missing:
            tokenizer.add_special_tokens({"additional_special_tokens": missing},
                                         replace_extra_special_tokens=False)
    return tokenizer


def fim_sentinels(template) -> list[str]:
    return [t for t in (template.fim_prefix, template.fim_suffix, template.fim_middle) if t.strip()]


def _single_token(tokenizer, text: str) -> bool:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return len(ids) == 1 and ids[0] != tokenizer.unk_token_id


# -- data -----------------------------------------------------------------------------------------


@dataclass
class Tokenized:
    input_ids: list[int]
    labels: list[int]
    index: int  # position in the training example list
    context_labels: list[int] | None = None  # prefix tokens that carry context loss (see TrainConfig)


def context_vocabulary(tokenized, excluded=()):
    """Sorted ids of the tokens in the training data, less `excluded` (the FIM sentinels, whose
    learned rows only the output head's forward hook adds): the context term's softmax runs
    over these. A context label outside them (a sentinel written in the code) stops carrying loss."""
    import torch

    vocab = set()
    for t in tokenized:
        vocab.update(t.input_ids)
    vocab.difference_update(excluded)
    for t in tokenized:
        if t.context_labels is not None:
            t.context_labels = [i if i in vocab else IGNORE for i in t.context_labels]
    return torch.tensor(sorted(vocab), dtype=torch.long)


def tokenize_example(tokenizer, prompt: str, completion: str, seq_len: int,
                     max_completion_tokens: int, prompt_ids: list[int] | None = None,
                     ) -> tuple[list[int], list[int]]:
    """(input_ids, labels): the prompt as the server encodes it (special tokens included; or
    `prompt_ids`, that encoding made by the caller), then the completion and EOS; only completion
    and EOS carry loss. Long prompts lose their start."""
    if prompt_ids is None:
        prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    completion_ids = completion_ids[:max_completion_tokens]
    if len(completion_ids) < max_completion_tokens and tokenizer.eos_token_id is not None:
        completion_ids = completion_ids + [tokenizer.eos_token_id]
    room = seq_len - len(completion_ids)
    if len(prompt_ids) > room:
        keep_head = 1 if tokenizer.bos_token_id is not None and prompt_ids[:1] == [tokenizer.bos_token_id] else 0
        prompt_ids = prompt_ids[:keep_head] + prompt_ids[len(prompt_ids) - room + keep_head:]
    return prompt_ids + completion_ids, [IGNORE] * len(prompt_ids) + completion_ids


COMPLETION_KINDS = ("fim", "snapshot", "accepted")


def prefix_span(prompt: str, prefix: str) -> tuple[int, int] | None:
    """(start, end) characters of the prompt that are the example's prefix, the code before the
    cursor, as far as the prompt kept it (the prompt builder drops whole lines from its start)."""
    if not prefix:
        return None
    tail = prefix[-200:]
    at = prompt.rfind(tail)
    while at < 0 and "\n" in tail[:-1]:  # a short prefix the prompt trimmed: its kept lines
        tail = tail[tail.index("\n") + 1:]
        at = prompt.rfind(tail)
    if at < 0:
        return None
    end = at + len(tail)
    before = prompt[:end]
    kept = prefix
    if len(kept) > end:  # cannot all be there: skip to the first line that could be
        cut = kept.find("\n", len(kept) - end)
        kept = kept[cut + 1:] if cut >= 0 else ""
    while kept and not before.endswith(kept):
        cut = kept.find("\n")
        kept = kept[cut + 1:] if cut >= 0 else ""
    return (end - len(kept), end) if kept else None


def context_labels(offsets: list[tuple[int, int]], span: tuple[int, int], count: int,
                   ids: list[int], labels: list[int]) -> list[int]:
    """Labels for the last `count` prompt tokens inside `span` (characters of the prompt; the
    tokens' `offsets` from the prompt's encoding), aligned with `ids`/`labels` from
    `tokenize_example` (whose prompt may have lost its start)."""
    start, end = span
    inside = [p for p, (a, b) in enumerate(offsets) if start <= a < b <= end]
    prompt_len = next((i for i, label in enumerate(labels) if label != IGNORE), len(labels))
    shift = len(offsets) - prompt_len  # tokens the prompt lost at its start
    out = [IGNORE] * len(ids)
    for p in inside[-count:]:
        if p - shift >= 1:
            out[p - shift] = ids[p - shift]
    return out


def tokenize_for_training(tokenizer, example, index: int, config: TrainConfig) -> Tokenized:
    """An example as `tokenize_example` makes it, plus context labels on its prefix's last
    `config.context_tokens` tokens when it is a completion example (one encoding of the prompt)."""
    span = None
    if config.context_tokens and example.kind in COMPLETION_KINDS and example.context:
        span = prefix_span(example.prompt, example.context.get("prefix", ""))
    if span is None:
        ids, labels = tokenize_example(tokenizer, example.prompt, example.completion, config.seq_len,
                                       config.max_completion_tokens)
        return Tokenized(ids, labels, index)
    encoded = tokenizer(example.prompt, add_special_tokens=True, return_offsets_mapping=True)
    ids, labels = tokenize_example(tokenizer, example.prompt, example.completion, config.seq_len,
                                   config.max_completion_tokens, prompt_ids=encoded["input_ids"])
    extra = context_labels(encoded["offset_mapping"], span, config.context_tokens, ids, labels)
    return Tokenized(ids, labels, index, extra)


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
    return merged + history[shared:] + snapshot[shared:]


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


def plan_batches(priority: list[int], lengths: dict[int, int], config: TrainConfig) -> list[list[list[int]]]:
    """All optimizer steps' batches for the whole run: steps -> rows -> example indices."""
    per_step = config.batch_size * config.grad_accum
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


# -- model --------------------------------------------------------------------------------------


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainerError("--device cuda: no CUDA device is available (use --device cpu)")
    return device


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


def stored_dtype(hf_dir: Path) -> str | None:
    """The dtype a transformers folder's weights were saved in ("bfloat16", "float32", ...)."""
    try:
        config = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config.get("dtype") or config.get("torch_dtype")


def load_model(hf_dir: Path, tokenizer, template_name: str | None, dtype=None):
    """The base model (float32 unless `dtype`), its embeddings grown for added FIM tokens
    (initialised from their words)."""
    import torch
    from transformers import AutoModelForCausalLM

    if not any((hf_dir / name).exists() for name in ("model.safetensors", "model.safetensors.index.json",
                                                    "pytorch_model.bin")):
        raise TrainerError(f"{hf_dir} has no transformers weights to train (re-import the model)")
    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=dtype or torch.float32)
    old_vocab = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > old_vocab:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        init_new_token_embeddings(model, tokenizer, old_vocab)
    return model


def sentinel_words(token: str) -> str:
    """The word a FIM sentinel stands for: '<fim_prefix>' -> 'prefix'."""
    return token.strip("<>|").replace("fim_", "").replace("_", " ").strip() or token


def init_new_token_embeddings(model, tokenizer, old_vocab: int) -> None:
    """Start each added token (FIM sentinel) at the mean embedding of the word it stands for,
    so the sentinels are distinct and meaningful from the first step (mean-of-vocabulary
    initialisation makes them near-identical, and a short CPU run cannot separate them)."""
    import torch

    layers = [model.get_input_embeddings().weight]
    output = model.get_output_embeddings()
    if output is not None and output.weight.data_ptr() != layers[0].data_ptr():
        layers.append(output.weight)
    with torch.no_grad():
        for new_id in range(old_vocab, len(tokenizer)):
            word = sentinel_words(tokenizer.convert_ids_to_tokens(new_id))
            ids = [i for i in tokenizer(" " + word, add_special_tokens=False)["input_ids"] if i < old_vocab]
            for weight in layers:
                weight[new_id] = weight[ids].mean(0) if ids else weight[:old_vocab].mean(0)


class TokenRows:
    """Trainable embedding rows for a few token ids (the FIM sentinels), trained beside the
    adapter.

    Written here rather than with peft's `trainable_token_indices`: that layer rebuilds the
    whole embedding matrix (and the tied output head: 262k x 640 for Gemma 3) on every forward
    and back-propagates a dense vocabulary-sized gradient. Measured in one process on Gemma 3
    270M (LoRA r16, dropout 0, 512 tokens, 2 cores): 81 tokens/s with peft's layer, 87 with
    these hooks. Forward hooks add a learned delta (in weight space) where the sentinels occur
    in the input, and to their logits when the output head shares the embedding's weights;
    `merged_rows` gives the final rows for export.
    """

    def __init__(self, embedding, token_ids: list[int], tied_head=None):
        import torch

        self.embedding = embedding
        self.ids = torch.tensor(token_ids, dtype=torch.long)
        self.delta = torch.nn.Parameter(torch.zeros(len(token_ids), embedding.weight.shape[1]))
        scale = getattr(embedding, "embed_scale", None)  # Gemma scales embeddings by sqrt(hidden)
        self.scale = float(scale) if scale is not None else 1.0
        self.handles = [embedding.register_forward_hook(self._input_hook)]
        if tied_head is not None:
            self.handles.append(tied_head.register_forward_hook(self._output_hook))

    def _input_hook(self, _module, args, output):
        match = (args[0].unsqueeze(-1) == self.ids.to(args[0].device)).to(output.dtype)
        return output + (match @ self.delta.to(output.dtype)) * self.scale

    def _output_hook(self, _module, args, output):
        hidden = args[0]
        extra = hidden @ self.delta.to(hidden.dtype).T
        return output.index_add(-1, self.ids.to(output.device), extra.to(output.dtype))

    def merged_rows(self):
        """(ids, rows): the sentinels' embedding rows with the learned delta added."""
        weight = self.embedding.weight.detach()
        return self.ids.clone(), weight[self.ids].float() + self.delta.detach().to(weight.device).float()


def add_adapter(model, config: TrainConfig, trainable_token_ids: list[int], total_steps: int):
    """Wrap `model` for the chosen method; FIM token embeddings train alongside the adapter
    (parameter `token_rows_delta`, see TokenRows)."""
    method = config.method
    model_type = getattr(model.config, "model_type", "")
    if method == "full":
        for param in model.parameters():
            param.requires_grad_(True)
        return model
    import peft

    targets = TARGET_MODULES.get(model_type, "all-linear")
    alpha = config.alpha if config.alpha is not None else 2 * config.rank
    if method == "lora":
        peft_config = peft.LoraConfig(
            r=config.rank, lora_alpha=alpha, lora_dropout=config.dropout, target_modules=targets,
            task_type="CAUSAL_LM",
        )
    elif method == "adalora":
        peft_config = peft.AdaLoraConfig(
            init_r=max(config.rank * 3 // 2, config.rank), target_r=config.rank, lora_alpha=alpha,
            lora_dropout=config.dropout, target_modules=targets, total_step=max(total_steps, 10),
            tinit=max(1, total_steps // 10), tfinal=max(1, total_steps // 5), task_type="CAUSAL_LM",
        )
    elif method == "prefix":
        return peft.get_peft_model(model, peft.PrefixTuningConfig(num_virtual_tokens=config.rank,
                                                                  task_type="CAUSAL_LM"))
    else:
        raise TrainerError(f"unknown method {method!r}")
    model = peft.get_peft_model(model, peft_config)
    if trainable_token_ids:
        embedding, head = model.get_input_embeddings(), model.get_output_embeddings()
        tied = head is not None and head.weight.data_ptr() == embedding.weight.data_ptr()
        rows = TokenRows(embedding, trainable_token_ids, head if tied else None)
        model.register_parameter("token_rows_delta", rows.delta)  # optimizer, checkpoints, DDP
        model._token_rows = rows
    return model


def token_rows_of(model) -> TokenRows | None:
    return getattr(model, "_token_rows", None)


TOKEN_ROWS_FILE = "token_rows.pt"


def causal_lm_of(model):
    """The transformers *ForCausalLM inside peft wrappers."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def completion_loss(model, batch: dict, fast: bool = True, context_weight: float = 1.0,
                    context_vocab=None):
    """Mean cross-entropy over the labelled (completion) tokens of a batch, plus
    `context_weight` x the mean over its context-labelled tokens when it has any.

    The fast path runs the output head only on labelled positions: prompts are most of each
    row, and the head (vocabulary x hidden) is about a fifth of a small model's compute.
    It calls the decoder directly, so it is used only where that is equivalent to the
    wrapper's forward (not under DDP, not with prefix tuning).

    `context_vocab` (sorted token ids holding every context label) makes the context term a
    softmax over those tokens only (a sampled softmax): the repository's own tokens are the
    ones that compete for a position in its code, and Gemma's 262k-row head at 128 context
    positions was a quarter of each step. The completion term always uses the whole vocabulary."""
    import torch
    import torch.nn.functional as F

    context = batch.get("context_labels")
    inputs = {k: v for k, v in batch.items() if k != "context_labels"}

    def context_cross_entropy(logits, targets):
        if context_vocab is not None:
            targets = torch.searchsorted(context_vocab, targets)
        return F.cross_entropy(logits.float(), targets)

    if not fast:
        out = model(**inputs)
        if context is None or not bool((context[:, 1:] != IGNORE).any()):
            return out.loss
        targets = context[:, 1:]
        keep = targets != IGNORE
        logits = out.logits[:, :-1][keep]
        if context_vocab is not None:
            logits = logits[:, context_vocab]
        return out.loss + context_weight * context_cross_entropy(logits, targets[keep])

    lm = causal_lm_of(model)
    decoder = getattr(lm, lm.base_model_prefix)
    del inputs["labels"]
    hidden = decoder(**inputs, use_cache=False).last_hidden_state[:, :-1]  # [B, L-1, H]
    targets = batch["labels"][:, 1:]  # position t predicts token t+1
    keep = targets != IGNORE
    cap = getattr(lm.config, "final_logit_softcapping", None)
    head = lm.get_output_embeddings()

    def capped(logits):
        return torch.tanh(logits / cap) * cap if cap else logits

    loss = F.cross_entropy(capped(head(hidden[keep])).float(), targets[keep])  # [N, V], N labelled
    if context is not None:
        context_targets = context[:, 1:]
        context_keep = context_targets != IGNORE
        if bool(context_keep.any()):
            if context_vocab is None:
                logits = head(hidden[context_keep])
            else:
                bias = head.bias[context_vocab] if head.bias is not None else None
                logits = F.linear(hidden[context_keep], head.weight[context_vocab], bias)
            loss = loss + context_weight * context_cross_entropy(capped(logits), context_targets[context_keep])
    return loss


def trainable_state(model) -> dict:
    """The trained parameters only (adapter, FIM token embeddings), by name, on CPU."""
    return {n: p.detach().to("cpu").clone() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model, state: dict) -> None:
    params = dict(model.named_parameters())
    missing = [n for n in state if n not in params]
    if missing:
        raise TrainerError(f"checkpoint does not match the model ({missing[0]}); start over without --resume")
    import torch

    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value.to(params[name].device))


# -- the run ---------------------------------------------------------------------------------------


def _data_fingerprint(examples, base_name: str) -> str:
    digest = hashlib.sha256(base_name.encode())
    for e in examples:
        digest.update(f"{e.commit}\x00{e.path}\x00{e.kind}\x00{e.completion}\x00{len(e.prompt)}\x01".encode())
    return digest.hexdigest()[:16]


def _atomic_torch_save(obj, path: Path) -> None:
    import torch

    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(entry, examples, run_dir: Path, config: TrainConfig, tokenizer=None,
          show_progress: bool = True, stop_after_steps: int | None = None) -> TrainResult:
    """Train an adapter for store entry `entry` on the `train` split of `examples`.

    `stop_after_steps` simulates an interruption (tests): the run stops as Ctrl-C would.
    """
    import torch
    from accelerate import Accelerator
    from repolsp.models.prompt import template_for
    from repolsp.trainer.prompts import tuned_template_name

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
    from accelerate.utils import DistributedDataParallelKwargs

    # Under DDP a batch of instruction examples leaves the FIM token rows without gradients.
    accelerator = Accelerator(
        # Autocast is ours (below): accelerate's precision is fixed for the life of a process.
        cpu=device == "cpu", mixed_precision="no",
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)

    def autocast():
        return torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=precision == "bf16")

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
        context_vocab = context_vocabulary(data.values(), excluded=fim_ids).to(accelerator.device)
    elif config.context_softmax not in ("repository", "full"):
        raise TrainerError(f"unknown context softmax {config.context_softmax!r} (repository or full)")
    lengths = {i: len(t.input_ids) for i, t in data.items()}
    priority = priority_order(train_examples)
    batches = plan_batches(priority, lengths if pack else {i: config.seq_len for i in data}, config)
    valid_data = {}
    for i, e in enumerate(valid_examples):
        ids, labels = tokenize_example(tokenizer, e.prompt, e.completion, config.seq_len,
                                       config.max_completion_tokens)
        valid_data[i] = Tokenized(ids, labels, i)
    valid_rows = pack_rows(list(valid_data), {i: len(t.input_ids) for i, t in valid_data.items()},
                           config.seq_len if pack else 1)[: config.max_eval_rows * (1 if pack else 2)]

    # Same seed -> same adapter init, same dropout masks, same data order.
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    # Under bf16 autocast, frozen weights stored in bf16 stay bf16 (nothing is lost) instead of
    # being cast again in every forward; what trains stays float32.
    frozen_bf16 = precision == "bf16" and config.method != "full" and stored_dtype(entry.hf_dir) == "bfloat16"
    frozen_dtype = torch.bfloat16 if frozen_bf16 else torch.float32
    model = load_model(entry.hf_dir, tokenizer, template_name, dtype=frozen_dtype)
    added = [t for t in fim_sentinels(template) if t in tokenizer.get_added_vocab()] if template.fim else []
    model = add_adapter(model, config, fim_ids, len(batches))
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

    fingerprint = {"config": config.fingerprint(), "data": _data_fingerprint(train_examples, entry.name)}
    ckpt_path = run_dir / CHECKPOINT
    state = {"step": 0, "elapsed_s": 0.0, "tokens": 0, "schedule_steps": len(batches),
             "best_valid": None, "bad_evals": 0, "first_loss": None, "last_loss": None}
    resumed_from = 0
    if config.resume:
        if not ckpt_path.is_file():
            raise TrainerError(f"nothing to resume: no checkpoint in {run_dir} (run without --resume)")
        saved = torch.load(ckpt_path, map_location="cpu", weights_only=False)
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

    model, optimizer = accelerator.prepare(model, optimizer)
    world, rank = accelerator.num_processes, accelerator.process_index
    fast = world == 1 and config.method != "prefix"

    # RNG state at the start of the current step: an interruption mid-step resumes that step
    # with the same dropout masks an uninterrupted run would have drawn.
    rng_at_step_start = [torch.get_rng_state()]

    def save_checkpoint() -> None:
        if not accelerator.is_main_process:
            return
        _atomic_torch_save({
            "fingerprint": fingerprint,
            "trainable": trainable_state(accelerator.unwrap_model(model)),
            "optimizer": optimizer.state_dict(),
            "torch_rng": rng_at_step_start[0],
            "python_rng": random.getstate(),
            "state": dict(state),
        }, ckpt_path)

    def valid_loss() -> float | None:
        if not valid_rows:
            return None
        model.eval()
        total = count = 0.0
        with torch.no_grad():
            step_rows = config.batch_size if pack else 1
            for start in range(0, len(valid_rows), step_rows):
                batch = collate(valid_rows[start:start + step_rows], valid_data, pack)
                batch = {k: v.to(accelerator.device) for k, v in batch.items()}
                with autocast():
                    loss = completion_loss(model, batch, fast)
                n = int((batch["labels"][:, 1:] != IGNORE).sum())
                total += float(loss) * n
                count += n
        model.train()
        return total / count if count else None

    bar = None
    if show_progress and accelerator.is_main_process:
        from tqdm import tqdm

        bar = tqdm(total=state["schedule_steps"], initial=state["step"], desc="training", unit="step",
                   file=sys.stdout, dynamic_ncols=True, mininterval=0.5)
    metrics = open(run_dir / METRICS, "a", encoding="utf-8")  # noqa: SIM115 - closed in finally
    started = time.monotonic()
    last_checkpoint = [started]
    elapsed_before = state["elapsed_s"]
    stopped = "done"
    model.train()
    try:
        while state["step"] < state["schedule_steps"]:
            step = state["step"]
            if stop_after_steps is not None and step - resumed_from >= stop_after_steps:
                raise KeyboardInterrupt
            lr = get_lr(step, state["schedule_steps"], config.peak_lr, config.warmup_fraction, config.min_lr_ratio)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            rows = batches[step]
            # Each process takes its share of the step's rows (DDP averages the gradients).
            own_rows = rows[rank::world] or rows[:1]
            per_forward = config.batch_size if pack else 1  # unpacked: one example per forward
            micro = [own_rows[i:i + per_forward] for i in range(0, len(own_rows), per_forward)]
            step_loss = 0.0
            step_tokens = 0
            for micro_batch in micro:
                batch = collate(micro_batch, data, pack)
                step_tokens += int(batch["input_ids"].numel()) * world
                batch = {k: v.to(accelerator.device) for k, v in batch.items()}
                with autocast():
                    loss = completion_loss(model, batch, fast, config.context_weight,
                                           context_vocab) / len(micro)
                accelerator.backward(loss)
                step_loss += float(loss.detach())
            if config.clip_norm:
                accelerator.clip_grad_norm_(params, config.clip_norm)
            optimizer.step()
            if config.method == "adalora":
                accelerator.unwrap_model(model).base_model.update_and_allocate(step)
            optimizer.zero_grad(set_to_none=True)
            state["step"] = step + 1
            rng_at_step_start[0] = torch.get_rng_state()
            state["tokens"] += step_tokens
            state["last_loss"] = step_loss
            if state["first_loss"] is None:
                state["first_loss"] = step_loss
            elapsed = elapsed_before + time.monotonic() - started
            state["elapsed_s"] = elapsed
            tokens_per_s = state["tokens"] / elapsed if elapsed > 0 else 0.0
            record = {"step": state["step"], "loss": round(step_loss, 5), "lr": lr,
                      "tokens_per_s": round(tokens_per_s, 1), "elapsed_s": round(elapsed, 2)}
            if state["step"] == 1:
                state["first_step_s"] = elapsed  # warm-up (allocation, lazy init): not typical
            # A time budget: shorten the schedule to what fits, so the learning rate still
            # decays to its floor by the end; re-fitted as the step time becomes clearer.
            if config.budget_s and state["step"] in BUDGET_FIT_STEPS:
                fit = fit_schedule_steps(state["step"], elapsed, state.get("first_step_s", 0.0),
                                         config.budget_s, len(batches))
                state["schedule_steps"] = fit
                if bar is not None:
                    bar.total = fit
            eval_every = config.eval_every or max(5, state["schedule_steps"] // 5)
            if valid_rows and (state["step"] % eval_every == 0 or state["step"] == state["schedule_steps"]):
                v = valid_loss()
                record["valid_loss"] = round(v, 5)
                if state["best_valid"] is None or v < state["best_valid"] - 1e-4:
                    state["best_valid"] = v
                    state["bad_evals"] = 0
                    if accelerator.is_main_process:
                        _atomic_torch_save(trainable_state(accelerator.unwrap_model(model)), run_dir / "best.pt")
                else:
                    state["bad_evals"] += 1
            if accelerator.is_main_process:
                metrics.write(json.dumps(record) + "\n")
                metrics.flush()
            if bar is not None:
                bar.set_postfix(loss=f"{step_loss:.3f}", tok_s=f"{tokens_per_s:.0f}", refresh=False)
                bar.update(1)
            if (state["step"] % config.checkpoint_every == 0
                    or time.monotonic() - last_checkpoint[0] >= config.checkpoint_every_s):
                save_checkpoint()
                last_checkpoint[0] = time.monotonic()
            if state["bad_evals"] >= config.patience:
                stopped = "early-stop"
                break
            if config.budget_s and elapsed >= config.budget_s:
                stopped = "budget"
                break
        else:
            if config.budget_s and state["schedule_steps"] < len(batches):
                stopped = "budget"  # the schedule was fitted to the time budget
            elif config.max_steps and state["step"] >= config.max_steps:
                stopped = "max-steps"
            else:
                stopped = "done"
    except KeyboardInterrupt:
        save_checkpoint()
        raise TrainingInterrupted(
            f"interrupted at step {state['step']}/{state['schedule_steps']}; checkpoint kept in "
            f"{run_dir}; run `lsp-train --resume` with the same options to continue"
        ) from None
    finally:
        metrics.close()
        if bar is not None:
            bar.close()
    save_checkpoint()

    unwrapped = accelerator.unwrap_model(model)
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
        planned_steps=len(batches), stopped=stopped, train_examples=len(train_examples),
        examples_seen=_examples_through(batches, state["step"] - 1), tokens_seen=state["tokens"], elapsed_s=elapsed,
        tokens_per_s=state["tokens"] / elapsed if elapsed > 0 else 0.0,
        first_loss=state["first_loss"], last_loss=state["last_loss"],
        best_valid_loss=state["best_valid"], fim_template=template_name if template.fim else None,
        added_tokens=added, resumed_from_step=resumed_from, context_tokens=config.context_tokens,
        precision=precision,
    )


def _examples_through(batches, step: int) -> int:
    """Distinct examples in batches[0..step] (all of them once an epoch is complete)."""
    seen = set()
    for rows in batches[: step + 1]:
        for row in rows:
            seen.update(row)
    return len(seen)


def save_adapter(model, tokenizer, adapter_dir: Path, config: TrainConfig, template_name: str,
                 base_name: str) -> None:
    """The adapter (or the full model for --method full), the tokenizer with its FIM tokens, and
    training.json (what export needs), written to a fresh folder then renamed into place."""
    import shutil

    tmp = adapter_dir.with_name(adapter_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    rows = token_rows_of(model)
    if rows is not None:
        import torch

        ids, values = rows.merged_rows()
        torch.save({"ids": ids, "rows": values.cpu()}, tmp / TOKEN_ROWS_FILE)
    (tmp / "training.json").write_text(json.dumps({
        "method": config.method, "fim_template": template_name, "base_model": base_name,
        "config": config.fingerprint(),
    }, indent=2))
    shutil.rmtree(adapter_dir, ignore_errors=True)
    os.replace(tmp, adapter_dir)
