"""Training: real LoRA steps on a tiny model (loss falls), FIM tokens, checkpoints and resume,
and the pure helpers of the loop (schedule, packing, order, masks)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from repolsp.models.prompt import template_for
from repolsp.models.store import ModelStore
from repolsp.trainer.batches import (
    collate,
    epoch_order,
    get_lr,
    pack_rows,
    plan_batches,
    priority_order,
)
from repolsp.trainer.errors import TrainingInterrupted
from repolsp.trainer.mine import Example, MineConfig, mine_repository
from repolsp.trainer.pipeline import make_renderer
from repolsp.trainer.tokenizing import (
    IGNORE,
    Tokenized,
    load_tokenizer,
    prefix_span,
    tokenize_example,
    tokenize_for_training,
)
from repolsp.trainer.train import cpu_has_native_bf16, pick_precision, train
from repolsp.trainer.train_config import TrainConfig
from trainer_fixtures import register_tiny_model


@pytest.fixture(scope="module")
def setup(tiny_home, history_repo):
    """(store entry of the tiny model, its tokenizer with FIM tokens, mined examples)."""
    repo, _ = history_repo
    entry = ModelStore(tiny_home).get("tiny-smollm2")
    tokenizer = load_tokenizer(entry.hf_dir, template_for("repolsp-smollm2"))
    renderer = make_renderer(entry, 160, tokenizer)
    examples = mine_repository(repo, renderer, MineConfig(test_fraction=0.2)).examples
    return entry, tokenizer, examples


def _config(**overrides) -> TrainConfig:
    base = {"rank": 8, "lr": 3e-3, "seq_len": 256, "batch_size": 2, "max_steps": 6,
            "checkpoint_every": 2, "eval_every": 3, "dropout": 0.1, "threads": 1, "epochs": 4}
    base.update(overrides)
    return TrainConfig(**base)


def _adapter_weights(adapter_dir) -> dict:
    from safetensors.torch import load_file

    return load_file(str(adapter_dir / "adapter_model.safetensors"))


def test_fim_tokens_added_as_single_tokens(setup):
    import json

    entry, tokenizer, _ = setup
    base_vocab = json.loads((entry.hf_dir / "config.json").read_text())["vocab_size"]
    for sentinel in ("<fim_prefix>", "<fim_suffix>"):
        ids = tokenizer(sentinel, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and ids[0] >= base_vocab  # new ids past the base vocabulary


@pytest.mark.parametrize("pack", [False, True], ids=["one-example-per-forward", "packed"])
def test_loss_falls_on_a_memorizable_set(setup, tmp_path, pack):
    entry, tokenizer, examples = setup
    small = [dataclasses.replace(e, split="train") for e in examples if e.kind == "fim"][:4]
    config = _config(max_steps=12, epochs=30, eval_every=100, lr=1e-2, dropout=0.0, pack=pack)
    result = train(entry, small, tmp_path / "run", config, tokenizer=tokenizer, show_progress=False)
    assert result.steps == 12
    assert result.last_loss < 0.3 * result.first_loss, (result.first_loss, result.last_loss)
    # The FIM sentinels' embeddings trained with the adapter and were saved with it.
    weights = _adapter_weights(result.adapter_dir)
    assert any("embed_tokens" in name for name in weights)
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("\n") == 12


@pytest.fixture(scope="module")
def straight_run(setup, tmp_path_factory):
    """An uninterrupted 6-step run: the reference for the resume tests."""
    entry, tokenizer, examples = setup
    return train(entry, examples, tmp_path_factory.mktemp("straight"), _config(), tokenizer=tokenizer,
                 show_progress=False)


def _assert_same_weights(reference, other) -> None:
    a, b = _adapter_weights(reference.adapter_dir), _adapter_weights(other.adapter_dir)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_resume_after_interruption_gives_the_same_weights(setup, straight_run, tmp_path):
    entry, tokenizer, examples = setup
    with pytest.raises(TrainingInterrupted, match="--resume"):
        train(entry, examples, tmp_path, _config(), tokenizer=tokenizer, show_progress=False,
              stop_after_steps=3)
    assert (tmp_path / "checkpoint.pt").is_file()
    resumed = train(entry, examples, tmp_path, _config(resume=True), tokenizer=tokenizer,
                    show_progress=False)
    assert resumed.resumed_from_step == 3 and resumed.steps == straight_run.steps == 6
    _assert_same_weights(straight_run, resumed)
    assert resumed.last_loss == straight_run.last_loss


def test_resume_after_a_crash_uses_the_last_periodic_checkpoint(setup, straight_run, tmp_path,
                                                                monkeypatch):
    """kill -9 in the middle of step 5 leaves only the periodic checkpoint of step 4."""
    import repolsp.trainer.loop as train_module  # the loop looks get_lr up there

    entry, tokenizer, examples = setup
    real_get_lr = train_module.get_lr

    def crash_in_step_5(step, *args):
        if step == 4:
            raise SystemExit("killed")
        return real_get_lr(step, *args)

    monkeypatch.setattr(train_module, "get_lr", crash_in_step_5)
    with pytest.raises(SystemExit):
        train(entry, examples, tmp_path, _config(), tokenizer=tokenizer, show_progress=False)
    monkeypatch.setattr(train_module, "get_lr", real_get_lr)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["state"]["step"] == 4
    resumed = train(entry, examples, tmp_path, _config(resume=True), tokenizer=tokenizer,
                    show_progress=False)
    assert resumed.resumed_from_step == 4
    _assert_same_weights(straight_run, resumed)


def test_resume_refuses_other_settings(setup, tmp_path):
    entry, tokenizer, examples = setup
    with pytest.raises(TrainingInterrupted):
        train(entry, examples, tmp_path / "r", _config(), tokenizer=tokenizer, show_progress=False,
              stop_after_steps=2)
    from repolsp.trainer.errors import TrainerError

    with pytest.raises(TrainerError, match="other settings"):
        train(entry, examples, tmp_path / "r", _config(resume=True, rank=4), tokenizer=tokenizer,
              show_progress=False)


def test_resume_refuses_another_precision(setup, tmp_path):
    entry, tokenizer, examples = setup
    with pytest.raises(TrainingInterrupted):
        train(entry, examples, tmp_path / "r", _config(precision="bf16"), tokenizer=tokenizer,
              show_progress=False, stop_after_steps=1)
    from repolsp.trainer.errors import TrainerError

    with pytest.raises(TrainerError, match="other settings"):
        train(entry, examples, tmp_path / "r", _config(resume=True, precision="fp32"), tokenizer=tokenizer,
              show_progress=False)


@pytest.mark.parametrize("flags, native", [
    ("fpu avx2 avx512f avx512_bf16 avx512vl", True),  # AMD Zen 4, Intel Cooper Lake
    ("fpu avx2 avx512f amx_bf16 amx_tile", True),     # Intel Sapphire Rapids
    ("fpu avx2 fma", False),
])
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, flags, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert cpu_has_native_bf16(cpuinfo) is native
    assert cpu_has_native_bf16(tmp_path / "absent") is False  # not Linux: float32


def test_pick_precision(monkeypatch):
    import repolsp.trainer.train as train_module
    from repolsp.trainer.errors import TrainerError

    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(train_module, "cpu_has_native_bf16", lambda native=native: native)
        assert pick_precision("auto", "cpu") == expected
        assert pick_precision("fp32", "cpu") == "fp32" and pick_precision("bf16", "cpu") == "bf16"
    with pytest.raises(TrainerError, match="unknown precision"):
        pick_precision("fp16", "cpu")


@pytest.mark.parametrize("stored", ["float32", "bfloat16"])
def test_bf16_training_matches_float32(setup, tmp_path, monkeypatch, stored):
    """Autocast bf16 is a speed setting: the same steps give (nearly) the same losses, and what
    trains stays float32, also when the frozen weights stay in the bf16 they were stored in."""
    import repolsp.trainer.train as train_module

    _, tokenizer, examples = setup
    home = tmp_path / "home"
    entry = ModelStore(home).get(register_tiny_model(home, "tiny-" + stored, dtype=stored))
    small = [dataclasses.replace(e, split="train") for e in examples if e.kind == "fim"][:4]
    frozen = []
    real_load_model = train_module.load_model

    def recording_load_model(*args, **kwargs):
        model = real_load_model(*args, **kwargs)
        frozen.append(model.get_input_embeddings().weight.dtype)
        return model

    monkeypatch.setattr(train_module, "load_model", recording_load_model)
    results = {}
    for precision in ("fp32", "bf16"):
        config = _config(max_steps=8, epochs=30, eval_every=100, lr=1e-2, dropout=0.0, precision=precision)
        results[precision] = train(entry, small, tmp_path / precision, config, tokenizer=tokenizer,
                                   show_progress=False)
        assert results[precision].precision == precision
        assert f"in {precision}" in results[precision].summary()
        weights = _adapter_weights(results[precision].adapter_dir)
        assert all(w.dtype == torch.float32 for name, w in weights.items() if "lora_" in name)
    # Frozen weights: float32 in a float32 run; in a bf16 run, the dtype they were stored in.
    assert frozen == [torch.float32, torch.bfloat16 if stored == "bfloat16" else torch.float32]
    fp32, bf16 = results["fp32"], results["bf16"]
    assert bf16.last_loss != fp32.last_loss  # the bf16 run did compute in bf16
    assert bf16.first_loss == pytest.approx(fp32.first_loss, rel=0.02)
    assert bf16.last_loss < 0.5 * bf16.first_loss
    assert bf16.last_loss == pytest.approx(fp32.last_loss, rel=0.25, abs=0.05)


@pytest.mark.parametrize("softmax, restricted", [("repository", True), ("full", False)])
def test_training_passes_the_context_vocabulary(setup, tmp_path, monkeypatch, softmax, restricted):
    import repolsp.trainer.loop as train_module  # the loop looks completion_loss up there

    entry, tokenizer, examples = setup
    seen = []
    real_loss = train_module.completion_loss

    def recording_loss(model, batch, fast=True, context_weight=1.0, context_vocab=None):
        seen.append(context_vocab)
        return real_loss(model, batch, fast, context_weight, context_vocab)

    monkeypatch.setattr(train_module, "completion_loss", recording_loss)
    config = _config(max_steps=2, eval_every=100, context_tokens=16, context_softmax=softmax)
    train(entry, examples, tmp_path / "run", config, tokenizer=tokenizer, show_progress=False)
    training_calls = [vocab for vocab in seen if vocab is not None]
    if restricted:
        assert training_calls and len(training_calls[0]) < len(tokenizer)
    else:
        assert not training_calls


def test_unknown_context_softmax_is_refused(setup, tmp_path):
    from repolsp.trainer.errors import TrainerError

    entry, tokenizer, examples = setup
    with pytest.raises(TrainerError, match="unknown context softmax"):
        train(entry, examples, tmp_path / "run", _config(context_tokens=16, context_softmax="sampled"),
              tokenizer=tokenizer, show_progress=False)


def test_budget_stops_cleanly(setup, tmp_path):
    entry, tokenizer, examples = setup
    result = train(entry, examples, tmp_path / "run", _config(max_steps=None, epochs=50, budget_s=2.0, eval_every=1000),
                   tokenizer=tokenizer, show_progress=False)
    assert result.stopped in ("budget", "done")
    assert result.steps < result.planned_steps
    assert (result.adapter_dir / "training.json").is_file()
    assert 0 < result.fraction_seen <= 1


# -- pure helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "step, elapsed, first, budget, planned, expected",
    [
        (3, 70.0, 50.0, 300.0, 1000, 26),  # 10 s/step after a 50 s warm-up: 230 s left -> 23 more
        (3, 30.0, 10.0, 300.0, 20, 20),  # fits easily: the planned length stays
        (8, 400.0, 50.0, 300.0, 1000, 9),  # over budget already: one more step, then stop
    ],
    ids=["warm-up-excluded", "planned-fits", "over-budget"],
)
def test_fit_schedule_steps(step, elapsed, first, budget, planned, expected):
    from repolsp.trainer.batches import fit_schedule_steps

    assert fit_schedule_steps(step, elapsed, first, budget, planned) == expected


@pytest.mark.parametrize(
    "step, expected",
    [(0, 0.1), (4, 0.5), (9, 1.0), (10, 1.0), (55, 0.55), (100, 0.1)],
    ids=["warmup-start", "warmup-mid", "warmup-end", "peak", "cosine-mid", "floor"],
)
def test_get_lr(step, expected):
    assert get_lr(step, 100, 1.0, 0.1, 0.1) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    "lengths, seq_len, rows",
    [
        ({0: 3, 1: 3, 2: 3}, 6, [[0, 1], [2]]),
        ({0: 5, 1: 2, 2: 2}, 6, [[0], [1, 2]]),
        ({0: 4, 1: 4, 2: 2, 3: 2}, 6, [[0, 2], [1, 3]]),
        ({0: 9}, 6, [[0]]),
        ({}, 6, []),
    ],
    ids=["pairs", "first-fit", "fills-earlier-rows", "oversized-alone", "empty"],
)
def test_pack_rows(lengths, seq_len, rows):
    assert pack_rows(list(lengths), lengths, seq_len) == rows


def test_epoch_order_is_seeded_and_keeps_priority_windows():
    priority = list(range(10))
    first = epoch_order(priority, 0, seed=1, window=5)
    assert first == epoch_order(priority, 0, seed=1, window=5)
    assert first != epoch_order(priority, 1, seed=1, window=5)
    assert sorted(first[:5]) == [0, 1, 2, 3, 4] and sorted(first[5:]) == [5, 6, 7, 8, 9]


def test_priority_order_prefers_newest_then_most_touched():
    def ex(t, path, commit):
        return Example(commit, t, path, "python", "fim", "p", "c")

    examples = [ex(1, "a.py", "c1"), ex(3, "b.py", "c3"), ex(2, "a.py", "c2"), ex(3, "c.py", "c3")]
    order = priority_order(examples)
    assert order[:2] == [1, 3] and order[-1] == 0


def test_priority_order_alternates_snapshot_holes_with_history():
    history = [Example(f"c{t}", t, "a.py", "python", "fim", "p", "c") for t in range(4)]
    snapshot = [Example("c3", 3, "a.py", "python", "snapshot", "p", f"s{i}") for i in range(2)]
    order = priority_order(history + snapshot)
    assert order == [3, 4, 2, 5, 1, 0]  # newest history first, a snapshot hole after each


def test_plan_batches_fractional_epochs_and_max_steps():
    lengths = {i: 10 for i in range(8)}
    config = TrainConfig(batch_size=2, seq_len=10, epochs=1.5, shuffle_window=4)
    steps = plan_batches(list(range(8)), lengths, config)
    assert len(steps) == 6  # 4 steps per epoch, half of the second
    assert sorted(i for rows in steps[:4] for row in rows for i in row) == list(range(8))
    assert len(plan_batches(list(range(8)), lengths, dataclasses.replace(config, max_steps=3))) == 3


def test_tokenize_example_puts_loss_on_completion_and_eos_only(setup):
    _, tokenizer, _ = setup
    ids, labels = tokenize_example(tokenizer, "<fim_suffix>\n<fim_prefix>def f(x):\n    ",
                                   "return x", seq_len=64, max_completion_tokens=32)
    completion = tokenizer("return x", add_special_tokens=False)["input_ids"]
    assert labels[-1] == tokenizer.eos_token_id and ids[-1] == tokenizer.eos_token_id
    assert labels[-len(completion) - 1:-1] == completion
    assert all(label == IGNORE for label in labels[: len(ids) - len(completion) - 1])
    short_ids, short_labels = tokenize_example(tokenizer, "x " * 200, "return x", 40, 32)
    assert len(short_ids) == 40 and short_labels[-1] == tokenizer.eos_token_id


def test_collate_block_diagonal_mask_and_positions():
    data = {0: Tokenized([5, 6], [IGNORE, 6], 0), 1: Tokenized([7, 8, 9], [IGNORE, 8, 9], 1),
            2: Tokenized([4], [4], 2)}
    batch = collate([[0, 1], [2]], data)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9], [4, 0, 0, 0, 0]]
    assert batch["position_ids"].tolist()[0] == [0, 1, 0, 1, 2]
    mask = batch["attention_mask"][0, 0]
    assert mask[3].tolist() == [False, False, True, True, False]  # no attention across examples
    assert mask[1].tolist() == [True, True, False, False, False]
    assert batch["labels"][1].tolist() == [4, IGNORE, IGNORE, IGNORE, IGNORE]
    assert batch["attention_mask"][1, 0].any(dim=-1).all()  # padding rows never all-False


def test_fast_completion_loss_equals_the_model_loss(setup):
    """The head-on-labelled-positions-only loss is the model's own loss, packed rows included."""
    from repolsp.trainer.adapters import add_adapter, load_model
    from repolsp.trainer.loss import completion_loss

    entry, tokenizer, examples = setup
    data = {}
    for i, e in enumerate(examples[:5]):
        ids, labels = tokenize_example(tokenizer, e.prompt, e.completion, 256, 64)
        data[i] = Tokenized(ids, labels, i)
    rows = pack_rows(list(data), {i: len(t.input_ids) for i, t in data.items()}, 256)
    batch = collate(rows, data)
    torch.manual_seed(0)
    model = add_adapter(load_model(entry.hf_dir, tokenizer, "repolsp-smollm2"), _config(), [], 10).eval()
    with torch.no_grad():
        slow = completion_loss(model, batch, fast=False)
        fast = completion_loss(model, batch, fast=True)
    assert float(fast) == pytest.approx(float(slow), rel=1e-5)


def test_prefix_span_is_the_code_before_the_cursor_as_the_prompt_kept_it():
    prompt = "<fim_suffix>\nx = 1\n<fim_prefix># Path: a.py\nb = 2\ndef f():\n    "
    assert prompt[slice(*prefix_span(prompt, "import os\nb = 2\ndef f():\n    "))] == "b = 2\ndef f():\n    "
    assert prompt[slice(*prefix_span(prompt, "b = 2\ndef f():\n    "))] == "b = 2\ndef f():\n    "
    assert prefix_span(prompt, "") is None
    assert prefix_span(prompt, "not in the prompt") is None


def test_context_labels_are_the_last_prefix_tokens_of_completion_examples(setup):
    _, tokenizer, examples = setup
    example = next(e for e in examples if e.kind == "fim" and e.context["prefix"].count("\n") > 3)
    plain = tokenize_for_training(tokenizer, example, 7, _config())
    assert plain.context_labels is None and plain.index == 7
    labelled = tokenize_for_training(tokenizer, example, 7, _config(context_tokens=12))
    assert labelled.input_ids == plain.input_ids and labelled.labels == plain.labels
    marked = [p for p, label in enumerate(labelled.context_labels) if label != IGNORE]
    prompt_len = next(p for p, label in enumerate(labelled.labels) if label != IGNORE)
    # The 12 prompt tokens right before the completion, labelled with themselves.
    assert marked == list(range(prompt_len - 12, prompt_len))
    assert all(labelled.context_labels[p] == labelled.input_ids[p] for p in marked)
    assert example.context["prefix"].endswith(tokenizer.decode([labelled.input_ids[p] for p in marked]))
    # Instruction examples never get any: their prompt is not code before a cursor.
    other = next(e for e in examples if e.kind not in ("fim", "snapshot", "accepted"))
    assert tokenize_for_training(tokenizer, other, 0, _config(context_tokens=12)).context_labels is None


def test_context_loss_adds_the_weighted_mean_over_context_tokens(setup):
    """Fast and slow paths agree with context labels, and the context term is its weighted
    mean: weight 0 gives the completion loss alone."""
    from repolsp.trainer.adapters import add_adapter, load_model
    from repolsp.trainer.loss import completion_loss

    entry, tokenizer, examples = setup
    completion = [e for e in examples if e.kind == "fim"][:3]
    config = _config(context_tokens=16)
    data = {i: tokenize_for_training(tokenizer, e, i, config) for i, e in enumerate(completion)}
    rows = pack_rows(list(data), {i: len(t.input_ids) for i, t in data.items()}, 256)
    batch = collate(rows, data)
    counts = [sum(label != IGNORE for label in t.context_labels) for t in data.values()]
    assert all(0 < count <= 16 for count in counts)  # at most 16: a short prefix has fewer
    assert int((batch["context_labels"] != IGNORE).sum()) == sum(counts)
    torch.manual_seed(0)
    model = add_adapter(load_model(entry.hf_dir, tokenizer, "repolsp-smollm2"), _config(), [], 10).eval()
    with torch.no_grad():
        alone = completion_loss(model, {k: v for k, v in batch.items() if k != "context_labels"})
        zero = completion_loss(model, batch, fast=True, context_weight=0.0)
        fast = completion_loss(model, batch, fast=True, context_weight=0.5)
        slow = completion_loss(model, batch, fast=False, context_weight=0.5)
    assert float(zero) == pytest.approx(float(alone), rel=1e-6)
    assert float(fast) == pytest.approx(float(slow), rel=1e-5)
    assert float(fast) > float(alone)


def test_context_softmax_over_the_repository_vocabulary(setup):
    """The context term's softmax over the training data's tokens: the same on both paths, equal
    to the full softmax when that vocabulary is everything, and smaller than it otherwise (fewer
    competitors). Sentinels are left out of the vocabulary, and context labels outside it drop."""
    from repolsp.trainer.adapters import add_adapter, load_model
    from repolsp.trainer.loss import completion_loss
    from repolsp.trainer.tokenizing import context_vocabulary

    entry, tokenizer, examples = setup
    completion = [e for e in examples if e.kind == "fim"][:3]
    config = _config(context_tokens=16)
    data = {i: tokenize_for_training(tokenizer, e, i, config) for i, e in enumerate(completion)}
    sentinel = tokenizer.convert_tokens_to_ids("<fim_prefix>")
    assert any(sentinel in t.input_ids for t in data.values())
    data[0].context_labels[-1] = sentinel  # as if the code itself contained the sentinel
    vocab = context_vocabulary(data.values(), excluded=[sentinel])
    assert vocab.tolist() == sorted({i for t in data.values() for i in t.input_ids} - {sentinel})
    assert data[0].context_labels[-1] == IGNORE
    assert all(label in vocab.tolist() for t in data.values() for label in t.context_labels if label != IGNORE)

    rows = pack_rows(list(data), {i: len(t.input_ids) for i, t in data.items()}, 256)
    batch = collate(rows, data)
    torch.manual_seed(0)
    model = add_adapter(load_model(entry.hf_dir, tokenizer, "repolsp-smollm2"), _config(), [], 10).eval()
    everything = torch.arange(model.get_output_embeddings().weight.shape[0])
    with torch.no_grad():
        full = completion_loss(model, batch, fast=True, context_weight=0.5)
        as_full = completion_loss(model, batch, fast=True, context_weight=0.5, context_vocab=everything)
        fast = completion_loss(model, batch, fast=True, context_weight=0.5, context_vocab=vocab)
        slow = completion_loss(model, batch, fast=False, context_weight=0.5, context_vocab=vocab)
    assert float(as_full) == pytest.approx(float(full), rel=1e-5)
    assert float(fast) == pytest.approx(float(slow), rel=1e-5)
    assert float(fast) < float(full)


@pytest.mark.parametrize("method", ["adalora", "prefix", "full"], ids=["adalora", "prefix", "full"])
def test_other_methods_train(setup, tmp_path, method):
    from repolsp.trainer.export import merge_adapter

    entry, tokenizer, examples = setup
    result = train(entry, examples, tmp_path / "run", _config(method=method, max_steps=3, rank=4),
                   tokenizer=tokenizer, show_progress=False)
    assert result.steps == 3 and result.last_loss < 20
    if method == "prefix":
        with pytest.raises(Exception, match="cannot be merged"):
            merge_adapter(entry.hf_dir, result.adapter_dir, tmp_path / "merged")
    else:
        merge_adapter(entry.hf_dir, result.adapter_dir, tmp_path / "merged")
        assert (tmp_path / "merged" / "config.json").is_file()


def test_new_sentinels_start_at_their_words_embeddings(setup):
    """<fim_prefix>/<fim_suffix> start distinct, at the words they stand for."""
    from repolsp.trainer.adapters import load_model, sentinel_words

    entry, tokenizer, _ = setup
    model = load_model(entry.hf_dir, tokenizer, "repolsp-smollm2")
    weight = model.get_input_embeddings().weight
    rows = []
    for sentinel in ("<fim_prefix>", "<fim_suffix>"):
        new_id = tokenizer.convert_tokens_to_ids(sentinel)
        word_ids = tokenizer(" " + sentinel_words(sentinel), add_special_tokens=False)["input_ids"]
        assert torch.allclose(weight[new_id], weight[word_ids].mean(0))
        rows.append(weight[new_id])
    assert not torch.allclose(rows[0], rows[1])
