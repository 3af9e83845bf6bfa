"""Export: merge + CTranslate2 conversion + atomic registration, greedy parity with the merged HF
model, rollback, failure safety, the whole `lsp-train` CLI, and the before/after report."""

from __future__ import annotations

import json
import struct

import pytest
from repolsp.models.prompt import template_for
from repolsp.models.store import ModelStore
from repolsp.trainer import cli
from repolsp.trainer.errors import TrainerError
from repolsp.trainer.evaluate import edit_similarity, exact_match
from repolsp.trainer.export import export_tuned_model
from repolsp.trainer.mine import MineConfig, mine_repository
from repolsp.trainer.pipeline import make_renderer
from repolsp.trainer.tokenizing import load_tokenizer
from repolsp.trainer.train import train
from repolsp.trainer.train_config import TrainConfig
from trainer_fixtures import register_tiny_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory, history_repo):
    """(store, base entry, adapter dir, mined examples) in a store of this module's own."""
    home = tmp_path_factory.mktemp("export-home")
    register_tiny_model(home)
    store = ModelStore(home)
    base = store.get("tiny-smollm2")
    tokenizer = load_tokenizer(base.hf_dir, template_for("repolsp-smollm2"))
    examples = mine_repository(history_repo[0], make_renderer(base, 160, tokenizer),
                               MineConfig(test_fraction=0.2)).examples
    config = TrainConfig(rank=8, lr=1e-2, seq_len=256, batch_size=2, max_steps=6, threads=1)
    result = train(base, examples, tmp_path_factory.mktemp("run"), config, tokenizer=tokenizer,
                   show_progress=False)
    return store, base, result.adapter_dir, examples


def test_export_registers_switches_and_keeps_the_base_for_rollback(trained):
    store, base, adapter, _ = trained
    tuned = export_tuned_model(store, base, adapter, "tiny-tuned-a", quantization="float32")
    assert store.default_name() == "tiny-tuned-a"
    assert store.get("tiny-smollm2").name == "tiny-smollm2"  # still installed: `lsp-models use`
    assert tuned.manifest.fim_template == "repolsp-smollm2"
    assert tuned.manifest.base_model == "tiny-smollm2" and tuned.manifest.family == "smollm2"
    assert (tuned.ct2_dir / "model.bin").is_file()
    tokenizer = json.loads((tuned.hf_dir / "tokenizer.json").read_text())
    assert {"<fim_prefix>", "<fim_suffix>"} <= {t["content"] for t in tokenizer["added_tokens"]}
    store.use("tiny-smollm2")


def test_ct2_greedy_output_equals_the_merged_hf_model(trained):
    import ctranslate2
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    store, base, adapter, examples = trained
    tuned = export_tuned_model(store, base, adapter, "tiny-tuned-b", switch=False,
                               quantization="float32")
    assert store.default_name() == "tiny-smollm2"
    tokenizer = AutoTokenizer.from_pretrained(str(tuned.hf_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tuned.hf_dir), dtype=torch.float32).eval()
    generator = ctranslate2.Generator(str(tuned.ct2_dir), device="cpu", compute_type="float32")
    prompts = [e.prompt for e in examples if e.split == "test"][:3]
    assert prompts
    for prompt in prompts:
        ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        with torch.no_grad():
            hf_out = model.generate(torch.tensor([ids]), max_new_tokens=8, do_sample=False,
                                    eos_token_id=None, pad_token_id=0)[0, len(ids):].tolist()
        ct2_out = generator.generate_batch(
            [tokenizer.convert_ids_to_tokens(ids)], max_length=8, sampling_topk=1,
            include_prompt_in_result=False, end_token=[],
        )[0].sequences_ids[0]
        assert ct2_out == hf_out


def test_failed_export_leaves_the_served_model_untouched(trained, monkeypatch):
    store, base, adapter, _ = trained
    from repolsp.models import convert

    def broken(*_args, **_kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(convert, "convert_hf_to_ct2", broken)
    with pytest.raises(OSError):
        export_tuned_model(store, base, adapter, "tiny-tuned-c")
    assert store.default_name() == "tiny-smollm2"
    assert not store.exists("tiny-tuned-c")
    assert not [p for p in store.models_dir.iterdir() if p.name.startswith(".build-")]


def test_export_refuses_an_existing_name(trained):
    store, base, adapter, _ = trained
    with pytest.raises(TrainerError, match="already exists"):
        export_tuned_model(store, base, adapter, "tiny-smollm2")


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("tuned_is_better", [True, False], ids=["switches", "keeps-base"])
def test_lsp_train_end_to_end(history_repo, tmp_path, monkeypatch, capsys, tuned_is_better):
    """mine -> train -> export -> before/after report -> switch (only if no worse), via the CLI."""
    from repolsp.trainer.report import Report

    home = tmp_path / "home"
    register_tiny_model(home)
    monkeypatch.setenv("REPOLSP_HOME", str(home))
    monkeypatch.setattr(Report, "tuned_no_worse", lambda self: tuned_is_better)
    repo, _ = history_repo
    run_dir = tmp_path / "run"
    args = [str(repo), "--test-fraction", "0.2", "--max-steps", "4", "--epochs", "3", "--batch-size", "2",
            "--seq-len", "256", "--max-prompt-tokens", "160", "--threads", "1", "-q",
            "--run-dir", str(run_dir), "--max-eval-examples", "4", "--lr", "1e-2"]
    assert cli.main(args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    store = ModelStore(home)
    (tuned,) = [e for e in store.list() if e.name.startswith("tiny-smollm2-demo-repo-")]
    assert tuned.manifest.extra["training"]["steps"] == 4
    assert "held-out exact match" in out
    if tuned_is_better:
        assert store.default_name() == tuned.name and "now serving" in out
    else:
        assert store.default_name() == "tiny-smollm2" and "kept serving tiny-smollm2" in out
    report = json.loads((run_dir / "report.json").read_text())
    assert report["base"]["n"] == report["tuned"]["n"] == 4
    modes = report["exact_match_by_mode"]
    assert sum(row["n"] for row in modes.values()) == 4
    # The in-hunk lines (the held-out set takes them first), scored apart from multi-line spans.
    from repolsp.trainer.evaluate import exact_match
    rows = [e for e in report["examples"] if e["mode"] == "single-line"]
    assert rows and modes["single-line"]["n"] == len(rows)
    assert modes["single-line"]["tuned"] == sum(exact_match(r["tuned"], r["expected"]) for r in rows) / len(rows)
    # Each held-out hole says where its answer already was, and the rows add up per source.
    sources = report["exact_match_by_source"]
    assert sum(row["n"] for row in sources.values()) == 4
    for source, row in sources.items():
        mine = [e for e in report["examples"] if e["source"] == source]
        assert row["n"] == len(mine)
        assert row["base"] == sum(exact_match(r["base"], r["expected"]) for r in mine) / len(mine)
    markdown = (run_dir / "report.md").read_text()
    assert "| base: `tiny-smollm2` |" in markdown and "| held-out holes | n |" in markdown
    assert "| where the expected lines already were | n |" in markdown
    width, height = _png_size((run_dir / "report.png").read_bytes())
    assert width >= 700 and 300 <= height <= 500  # metrics, gain and split panels (trainer/chart.py)
    assert "](report.png)" in markdown
    # The tuned model's manifest keeps the measured gain, for `repolsp.status`.
    from repolsp.server.model_info import served_model_facts

    facts = served_model_facts(tuned.name, ModelStore(home))
    assert facts["gain"]["n"] == 4 and facts["gain"]["exactMatchBase"] == report["base"]["exact_match"]
    assert facts["summary"].startswith("exact match ") and facts["report"] == str(run_dir / "report.md")


def test_lsp_train_interrupted_then_resumed(history_repo, tmp_path, monkeypatch, capsys):
    import repolsp.trainer.loop as train_module  # the loop looks get_lr up there

    home = tmp_path / "home"
    register_tiny_model(home)
    monkeypatch.setenv("REPOLSP_HOME", str(home))
    repo, _ = history_repo
    args = [str(repo), "--test-fraction", "0.2", "--max-steps", "4", "--epochs", "3", "--batch-size", "2",
            "--seq-len", "256", "--max-prompt-tokens", "160", "--threads", "1", "-q",
            "--run-dir", str(tmp_path / "run"), "--no-export"]
    real_get_lr = train_module.get_lr

    def ctrl_c_in_step_3(step, *rest):
        if step == 2:
            raise KeyboardInterrupt
        return real_get_lr(step, *rest)

    monkeypatch.setattr(train_module, "get_lr", ctrl_c_in_step_3)
    assert cli.main(args) == 1
    assert "checkpoint kept" in capsys.readouterr().err
    monkeypatch.setattr(train_module, "get_lr", real_get_lr)
    assert cli.main([*args, "--resume"]) == 0
    assert "trained 4/4 steps" in capsys.readouterr().out
    assert ModelStore(home).default_name() == "tiny-smollm2"  # --no-export


def test_prefix_method_without_no_export_is_refused(history_repo, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    monkeypatch.setenv("REPOLSP_HOME", str(home))
    assert cli.main([str(history_repo[0]), "--method", "prefix", "-q"]) == 2
    assert "cannot be merged" in capsys.readouterr().err


def test_negative_context_settings_are_refused(history_repo, capsys):
    assert cli.main([str(history_repo[0]), "--context-tokens", "-1", "-q"]) == 2
    assert "must not be negative" in capsys.readouterr().err


@pytest.mark.parametrize(
    "predicted, expected, same, similarity",
    [
        ("return x", "return x", True, 1.0),
        ("  return x  ", "return x", True, 1.0),
        ("return y", "return x", False, 0.875),
        ("", "abcd", False, 0.0),
        ("a\n  b", "a\nb", True, 0.6),
    ],
    ids=["equal", "whitespace", "one-char", "empty", "indent-only"],
)
def test_metrics(predicted, expected, same, similarity):
    assert exact_match(predicted, expected) is same
    assert edit_similarity(predicted, expected) == pytest.approx(similarity)


def test_merged_model_equals_the_trained_adapter(trained, tmp_path):
    """Merging reproduces the model as trained: LoRA merged, and the sentinels' trained rows
    (added by a hook during training) written into the embedding."""
    import torch
    from peft import PeftModel
    from repolsp.trainer.adapters import TOKEN_ROWS_FILE, TokenRows, load_model
    from repolsp.trainer.export import merge_adapter
    from transformers import AutoModelForCausalLM

    _store, base, adapter, examples = trained
    tokenizer = load_tokenizer(base.hf_dir, template_for("repolsp-smollm2"))
    trained_model = PeftModel.from_pretrained(load_model(base.hf_dir, tokenizer, None), str(adapter)).eval()
    saved = torch.load(adapter / TOKEN_ROWS_FILE, weights_only=True)
    embedding, head = trained_model.get_input_embeddings(), trained_model.get_output_embeddings()
    assert head.weight.data_ptr() == embedding.weight.data_ptr()  # tied: the head hook is tested too
    rows = TokenRows(embedding, saved["ids"].tolist(), head)
    delta = saved["rows"] - embedding.weight[saved["ids"]].detach()
    assert delta.abs().max() > 0, "the sentinel rows did not train"
    rows.delta.data.copy_(delta)
    merge_adapter(base.hf_dir, adapter, tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(str(tmp_path / "merged"), dtype=torch.float32).eval()
    prompt = next(e.prompt for e in examples if "<fim_prefix>" in e.prompt)
    ids = torch.tensor([tokenizer(prompt)["input_ids"]])
    assert set(saved["ids"].tolist()) <= set(ids[0].tolist())
    with torch.no_grad():
        assert torch.allclose(trained_model(ids).logits, merged(ids).logits, atol=1e-4)


def test_answer_sources_tell_copying_from_recall_from_new_code():
    from repolsp.trainer.mine import Example
    from repolsp.trainer.report import answer_sources

    def hole(completion, prefix="", suffix="", snippets=()):
        context = {"prefix": prefix, "suffix": suffix, "snippets": [{"text": t} for t in snippets]}
        return Example("c", 0, "a.py", "python", "fim", "", completion, split="test", context=context)

    train = [Example("t", 0, "b.py", "python", "fim", "def helper():\n    return 1\n", "x = helper()")]
    held = [
        hole("return 1", suffix="\n    return 1\n"),         # a line the suffix shows
        hole("  y = 2\n", snippets=["def f():\n    y = 2"]),   # a snippet's line, other indent
        hole("x = helper()"),                                    # a training completion's line
        hole("def helper():\n    return 1"),                    # every line from a training prompt
        hole("def helper():\n    return 2"),                    # one line is new
        hole("   "),                                             # nothing to find: new
    ]
    assert answer_sources(held, train) == ["prompt", "prompt", "history", "history", "new", "new"]
