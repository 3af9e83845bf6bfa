"""What a training run is configured with (`TrainConfig`), what it returns (`TrainResult`), the
file names of a run folder, and the device it picks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from repolsp.trainer.errors import TrainerError

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
ADAPTER = "adapter"

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


def pick_device(device: str) -> str:
    """"cuda" or "cpu" for --device auto|cuda|cpu; TrainerError when CUDA is asked for and absent."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainerError("--device cuda: no CUDA device is available (use --device cpu)")
    return device
