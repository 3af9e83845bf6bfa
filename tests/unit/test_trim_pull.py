"""`lsp-models pull` of a trimmed known model: from the installed base, or built in scratch only."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest
from repolsp.models import pull as pull_mod
from repolsp.models import trim as trim_mod
from repolsp.models.convert import import_model
from repolsp.models.store import ModelStore
from repolsp.models.vocab import Ranking, count_tokens, rank

from tests.conftest import REPO

SHA = "0" * 64


@pytest.fixture
def known_tiny(monkeypatch, tiny_hf_model):
    """Known models "tiny-full" (the tiny Llama) and "tiny" (it, trimmed to 100 tokens)."""
    from tokenizers import Tokenizer

    full = replace(pull_mod.KNOWN_MODELS["gemma3-270m-full"], name="tiny-full", sha256=SHA,
                   family="llama", max_prompt_tokens=None)
    trimmed = replace(full, name="tiny", trim_of="tiny-full", keep=100)
    monkeypatch.setitem(pull_mod.KNOWN_MODELS, "tiny-full", full)
    monkeypatch.setitem(pull_mod.KNOWN_MODELS, "tiny", trimmed)
    tokenizer = Tokenizer.from_file(str(tiny_hf_model / "tokenizer.json"))
    counts, _ = count_tokens(tokenizer, [REPO / "server" / "demo_data" / "inventory.py"])
    ranking = rank(tokenizer, {"python": counts}, "inventory.py")
    monkeypatch.setattr(trim_mod, "shipped_ranking", lambda tok: ranking)
    monkeypatch.setattr(trim_mod, "shipped_ranking_sources", lambda: {"inventory.py"})
    return tiny_hf_model


def test_pull_re_trims_a_default_trimmed_with_another_keep_and_keeps_the_base(
        tmp_path, known_tiny, monkeypatch, capsys):
    store = ModelStore(tmp_path)
    import_model(str(known_tiny), store, name="tiny-full")
    monkeypatch.setattr(pull_mod, "download_wheels", lambda *a, **k: pytest.fail("downloaded"))
    entry, built = pull_mod.pull("tiny", store)
    assert built and entry.manifest.extra["trim"]["keep"] == 100
    # A newer version ships another N: the pull re-trims from the installed base.
    monkeypatch.setitem(pull_mod.KNOWN_MODELS, "tiny",
                        replace(pull_mod.KNOWN_MODELS["tiny"], keep=150))
    entry, built = pull_mod.pull("tiny", store)
    assert built and entry.manifest.extra["trim"]["keep"] == 150
    assert sorted(e.name for e in store.list()) == ["tiny", "tiny-full"]
    assert not pull_mod.pull("tiny", store)[1]  # now current: nothing to do
    # Another ranking, and the base is gone: the model stays as it is, and the user is told how.
    monkeypatch.setattr(trim_mod, "shipped_ranking_sources", lambda: {"another ranking"})
    store.remove("tiny-full")
    again, built = pull_mod.pull("tiny", store)
    assert not built and again.manifest.extra["trim"]["keep"] == 150
    assert "lsp-models pull tiny-full" in capsys.readouterr().err




def test_pull_moves_an_untrimmed_default_aside_and_trims_it(tmp_path, known_tiny, monkeypatch):
    store = ModelStore(tmp_path)
    import_model(str(known_tiny), store, name="tiny")
    # As pulled before the default was trimmed: the full model under the default's name.
    manifest_path = store.get("tiny").dir / "manifest.json"
    manifest_path.write_text(manifest_path.read_text().replace('"sha256": ""', f'"sha256": "{SHA}"'))
    store.use("tiny")
    monkeypatch.setattr(pull_mod, "download_wheels", lambda *a, **k: pytest.fail("downloaded"))
    entry, built = pull_mod.pull("tiny", store)
    assert built
    assert sorted(e.name for e in store.list()) == ["tiny", "tiny-full"]
    assert entry.manifest.extra["trim"]["base"] == "tiny-full"
    assert entry.manifest.extra["trim"]["keep"] == 100
    assert entry.manifest.extra["trim"]["ranking"] == "inventory.py"
    assert store.get("tiny-full").manifest.name == "tiny-full"
    assert "trim" not in store.get("tiny-full").manifest.extra
    assert store.default_name() == "tiny"
    again, built = pull_mod.pull("tiny", store)
    assert not built and again.manifest.extra["trim"]["vocab_size"] < 400


def test_pull_without_the_base_registers_only_the_trimmed_model(tmp_path, known_tiny,
                                                                monkeypatch):
    store = ModelStore(tmp_path)

    def fake_base(known, scratch_dir, hf_dir, stages):  # the download + dequantize stand-in
        assert scratch_dir in hf_dir.parents  # the full model is built in scratch only
        shutil.copytree(known_tiny, hf_dir)
        return "llama"

    monkeypatch.setattr(pull_mod, "_base_hf", fake_base)
    entry, built = pull_mod.pull("tiny", store)
    assert built and [e.name for e in store.list()] == ["tiny"]
    assert entry.manifest.architecture == "llama" and entry.manifest.source == "trim:tiny-full"
    assert [p.name for p in store.models_dir.iterdir()] == ["tiny"]
    assert store.default_name() == "tiny"


def test_the_default_is_the_trimmed_gemma_and_the_full_one_stays_known():
    default = pull_mod.KNOWN_MODELS[pull_mod.DEFAULT_MODEL]
    assert default.trim_of == "gemma3-270m-full" and default.keep == 32_768
    assert pull_mod.KNOWN_MODELS["gemma3-270m-full"].trim_of is None
    shipped = Ranking.load(REPO / "models" / "data" / trim_mod.SHIPPED_RANKINGS[0])
    assert len(shipped.tokens) >= default.keep and "▁return" in shipped.tokens[:500]


@pytest.mark.real_model
def test_the_pulled_default_is_trimmed_and_keeps_its_sentinels(real_store):
    from tokenizers import Tokenizer

    entry = ModelStore(real_store).get(pull_mod.DEFAULT_MODEL)
    record = entry.manifest.extra["trim"]
    keep = pull_mod.KNOWN_MODELS[pull_mod.DEFAULT_MODEL].keep
    assert record["base"] == "gemma3-270m-full" and record["keep"] == keep
    assert keep < record["vocab_size"] < keep * 1.15
    assert (entry.ct2_dir / "model.bin").stat().st_size < 150_000_000
    tokenizer = Tokenizer.from_file(str(entry.hf_dir / "tokenizer.json"))
    for sentinel in ("<unused0>", "<unused1>", "<eos>", "<bos>"):
        assert tokenizer.encode(sentinel, add_special_tokens=False).tokens == [sentinel]
    text = "def f(x):\n    return x ** 2  # 平方 ✓\n"
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    assert tokenizer.token_to_id("<unk>") not in ids and tokenizer.decode(ids) == text
