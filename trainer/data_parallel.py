"""Data parallelism across processes (`torchrun` / `accelerate launch`): who does which part of a
step, and the collectives that keep every process's copy of the adapter identical.

Each optimizer step's rows are cut into micro-batches (one forward each) the same way whatever
the number of processes; process r takes micro-batches r, r + N, r + 2N, ... Every loss is
divided by the step's total micro-batch count and the gradients are summed across processes,
so N processes compute the gradient one process computes over the same rows (only the order
of the float additions differs).

Gradients are summed with one all-reduce per step here rather than by wrapping the model in
DistributedDataParallel: DDP synchronises inside each backward, so every process must run the
same number of backwards (a step whose rows do not divide by N would hang) and the forward must
go through its wrapper (the loss's head-on-labelled-positions path could not be used).
"""

from __future__ import annotations

from repolsp.trainer.train_config import pick_device

BUCKET_ELEMENTS = 1 << 24  # 64 MB of float32 per all-reduce: fewer calls, bounded extra memory


def step_micro_batches(rows: list[list[int]], per_forward: int) -> list[list[list[int]]]:
    """A step's rows cut into micro-batches of `per_forward` rows, in order."""
    return [rows[i:i + per_forward] for i in range(0, len(rows), per_forward)]


def share_of_step(micro_batches: list, rank: int, world: int) -> list:
    """The micro-batches process `rank` of `world` runs (possibly none on a short last step)."""
    return micro_batches[rank::world]


def sum_across_processes(params, totals: list[float]) -> list[float]:
    """Sum every process's gradients of `params` in place, and `totals` (numbers each process
    counted for the step); returns the summed totals. A parameter no process has a gradient for
    keeps none, as in one process (AdamW skips it rather than decaying it)."""
    import torch
    import torch.distributed as dist

    device = params[0].device
    head = torch.tensor([*totals, *(float(p.grad is not None) for p in params)],
                        dtype=torch.float64, device=device)
    dist.all_reduce(head)
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    for bucket in _buckets(grads):
        flat = torch.cat([g.reshape(-1) for g in bucket])
        dist.all_reduce(flat)
        for grad, summed in zip(bucket, flat.split([g.numel() for g in bucket])):
            grad.copy_(summed.view_as(grad))
    present = head[len(totals):].tolist()
    for param, grad, count in zip(params, grads, present):
        param.grad = grad if count > 0 else None
    return head[:len(totals)].tolist()


def _buckets(grads):
    """Consecutive gradients of one dtype, up to BUCKET_ELEMENTS each."""
    bucket, size = [], 0
    for grad in grads:
        if bucket and (size + grad.numel() > BUCKET_ELEMENTS or grad.dtype != bucket[0].dtype):
            yield bucket
            bucket, size = [], 0
        bucket.append(grad)
        size += grad.numel()
    if bucket:
        yield bucket


def mean_across_processes(value: float, device) -> float:
    """The mean of each process's `value`: one number every process agrees on (the elapsed time
    that time-budget decisions read, so all stop at the same step instead of one waiting forever)."""
    import torch
    import torch.distributed as dist

    total = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return float(total) / dist.get_world_size()


def same_on_every_process(text: str) -> bool:
    """Whether every process holds the same `text` (e.g. the fingerprint of the examples each mined)."""
    import torch.distributed as dist

    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, text)
    return all(item == text for item in gathered)


def process_state(device_option: str):
    """accelerate's view of this process (its rank, the process count), made as `train` makes its
    Accelerator (on CPU, several processes are gloo's only when asked for with cpu=True)."""
    from accelerate import PartialState

    return PartialState(cpu=pick_device(device_option) == "cpu")
