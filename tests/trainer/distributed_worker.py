"""`lsp-train` as one process of a torchrun / accelerate launch run, watched by the distributed
tests: each process records the examples of every micro-batch it trains on, every file it
writes and a digest of its trained weights, in RECORD_DIR/rank-N.jsonl.

CTRL_C_AT_STEP=k: at step k rank 0 sends the launcher SIGINT, as Ctrl-C in a terminal does (the
launcher turns it into SIGTERM to each process), and waits until its own SIGTERM has arrived,
so the stop lands in that step. RANK1_LATE_S=s starts rank 1's training loop s seconds late.
TRAIN_BUDGET_S=a,b gives rank 0 a training-time budget of a seconds and rank 1 b (as if their
mining had taken different times).

    torchrun --nproc_per_node 2 distributed_worker.py REPO [lsp-train options]
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path


def _record(item: dict) -> None:
    rank = int(os.environ.get("RANK", "0"))
    path = Path(os.environ["RECORD_DIR"]) / f"rank-{rank}.jsonl"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"rank": rank, **item}) + "\n")


def _digest(params) -> str:
    digest = hashlib.sha256()
    for param in params:
        digest.update(param.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _wait_for_sigterm(limit_s: float = 30.0) -> None:
    """Until the launcher's SIGTERM has reached the training loop's handler (a DeferredStop)."""
    stop = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    deadline = time.monotonic() + limit_s
    while not getattr(stop, "requested", False) and time.monotonic() < deadline:
        time.sleep(0.05)


def _watch() -> None:
    from repolsp.trainer import loop, train

    real_share, real_save, real_adapter = loop.share_of_step, loop.atomic_torch_save, train.save_adapter
    real_get_lr = loop.get_lr
    ctrl_c_at = int(os.environ.get("CTRL_C_AT_STEP", "-1"))
    current = {"step": None}

    def get_lr(step, *rest):
        if step == ctrl_c_at and os.environ.get("RANK") == "0":
            os.kill(os.getppid(), signal.SIGINT)
            _wait_for_sigterm()
        current["step"] = step
        return real_get_lr(step, *rest)

    def share_of_step(micro, rank, world):
        own = real_share(micro, rank, world)
        _record({"step": current["step"], "world": world,
                 "examples": sorted(i for batch in own for row in batch for i in row)})
        return own

    def atomic_torch_save(obj, path):
        _record({"wrote": Path(path).name})
        return real_save(obj, path)

    def save_adapter(model, tokenizer, adapter_dir, *rest):
        _record({"wrote": Path(adapter_dir).name})
        return real_adapter(model, tokenizer, adapter_dir, *rest)

    loop.get_lr, loop.share_of_step, loop.atomic_torch_save = get_lr, share_of_step, atomic_torch_save
    from repolsp.trainer import pipeline

    real_jsonl = pipeline.write_jsonl

    def write_jsonl(examples, path):
        _record({"wrote": Path(path).name})
        return real_jsonl(examples, path)

    pipeline.write_jsonl = write_jsonl
    budgets = os.environ.get("TRAIN_BUDGET_S")
    if budgets:
        own = float(budgets.split(",")[int(os.environ.get("RANK", "0"))])
        pipeline.training_budget_s = lambda *_args: own
    late_s = float(os.environ.get("RANK1_LATE_S", "0")) if os.environ.get("RANK") == "1" else 0.0
    real_loop = loop.TrainingLoop.loop

    def watched_loop(self, *args):
        time.sleep(late_s)  # this process's clock starts later: its elapsed time reads less
        stopped = real_loop(self, *args)
        _record({"weights": _digest(self.params)})  # each process's copy of what trained
        return stopped

    loop.TrainingLoop.loop = watched_loop
    train.save_adapter = save_adapter


if __name__ == "__main__":
    _watch()
    from repolsp.trainer import cli

    sys.exit(cli.main(sys.argv[1:]))
