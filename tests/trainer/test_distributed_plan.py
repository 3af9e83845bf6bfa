"""Who trains on what under N processes (pure), and a checkpoint refusing another process count."""

from __future__ import annotations

import pytest
import torch
from repolsp.trainer.batches import plan_batches
from repolsp.trainer.data_parallel import share_of_step, step_micro_batches
from repolsp.trainer.errors import TrainerError
from repolsp.trainer.train import start_or_resume
from repolsp.trainer.train_config import CHECKPOINT, TrainConfig

ROWS = [[0], [1], [2], [3], [4]]


@pytest.mark.parametrize(
    "rows, per_forward, world, shares",
    [
        (ROWS[:4], 1, 2, [[[[0]], [[2]]], [[[1]], [[3]]]]),
        (ROWS, 1, 2, [[[[0]], [[2]], [[4]]], [[[1]], [[3]]]]),
        (ROWS[:1], 1, 2, [[[[0]]], []]),
        (ROWS[:4], 2, 2, [[[[0], [1]]], [[[2], [3]]]]),
        (ROWS[:3], 2, 1, [[[[0], [1]], [[2]]]]),
    ],
    ids=["even", "uneven", "one-row-two-processes", "packed-pairs", "one-process"],
)
def test_share_of_step(rows, per_forward, world, shares):
    micro = step_micro_batches(rows, per_forward)
    got = [share_of_step(micro, rank, world) for rank in range(world)]
    assert got == shares
    # Together the processes run every micro-batch of the step exactly once.
    assert sorted(m for share in got for m in share) == sorted(micro)


def test_a_step_takes_each_process_its_batch():
    config = TrainConfig(batch_size=2, grad_accum=1, seq_len=8, epochs=1.0)
    lengths = {i: 8 for i in range(12)}
    one, two = plan_batches(list(range(12)), lengths, config), plan_batches(list(range(12)), lengths, config, 2)
    assert [len(step) for step in one] == [2] * 6 and [len(step) for step in two] == [4] * 3
    # Two processes at batch 2 see the steps of one process at batch 2 x grad_accum 2.
    assert two == plan_batches(list(range(12)), lengths, TrainConfig(batch_size=2, grad_accum=2,
                                                                     seq_len=8, epochs=1.0))


def test_resume_refuses_another_process_count(tmp_path):
    config = TrainConfig(resume=True)
    made = {"config": config.fingerprint(), "data": "abc", "processes": 2}
    torch.save({"fingerprint": made}, tmp_path / CHECKPOINT)
    with pytest.raises(TrainerError, match="made by 2 process"):
        start_or_resume(tmp_path, config, {"config": config.fingerprint(), "data": "abc"}, None, None, 4)
