"""Trimming a tiny model's vocabulary: same tokens for kept text, bytes for the rest, same output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from repolsp.models import trim as trim_mod
from repolsp.models.cli import main as models_main
from repolsp.models.convert import convert_hf_to_ct2, import_model
from repolsp.models.errors import ModelError
from repolsp.models.store import ModelStore
from repolsp.models.vocab import count_tokens, rank, trim_tokenizer

from tests.conftest import REPO, WORDS, build_tiny_llama, gemma_style_bpe, save_tiny_llama

KEEP = 120
CODE = [
    (REPO / "server" / "demo_data" / "inventory.py").read_text(),
    ("def add(a, b):\n    return a + b\n\nclass Point:\n    def __init__(self, x, y):\n"
    "        self.x = x\n        self.y = y\n"),
    " ".join(WORDS),
]
PLACEHOLDERS = [f"<unused{i}>" for i in range(8)]


def build_byte_fallback_llama(folder: Path) -> Path:
    """A tiny tied-embedding Llama with a Gemma-style tokenizer: SentencePiece-BPE, byte fallback,
    `<unusedN>` placeholders, a non-special added token and `<bos>` added by the post-processor."""
    from tokenizers import Tokenizer, processors, trainers
    from transformers import PreTrainedTokenizerFast

    # Placeholders before <bos> make the trim renumber it.
    specials = ["<pad>", "<eos>", *PLACEHOLDERS, "<bos>", "<unk>"]
    tokenizer = gemma_style_bpe()
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=specials)
    tokenizer.train_from_iterator(CODE * 3, trainer)
    data = json.loads(tokenizer.to_str())
    vocab = data["model"]["vocab"]
    for byte in range(256):  # byte-fallback tokens live in the vocabulary, as in Gemma's
        vocab.setdefault(f"<0x{byte:02X}>", len(vocab))
    tokenizer = Tokenizer.from_str(json.dumps(data))
    tokenizer.add_tokens(["\t\t"])  # like Gemma's whitespace runs: added, not special
    bos = tokenizer.token_to_id("<bos>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", bos)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<bos>",
                                   eos_token="<eos>", unk_token="<unk>", pad_token="<pad>")
    return save_tiny_llama(folder, fast, seed=1, tie_word_embeddings=True, bos_token_id=bos,
                           pad_token_id=fast.pad_token_id)


@pytest.fixture(scope="module", params=["byte-fallback", "byte-level"])
def trimmed_pair(request, tmp_path_factory):
    """(full HF folder, trimmed HF folder, kept old ids) of one tiny model."""
    from tokenizers import Tokenizer

    root = tmp_path_factory.mktemp(request.param)
    build = build_byte_fallback_llama if request.param == "byte-fallback" else build_tiny_llama
    full = build(root / "full")
    (root / "corpus").mkdir()
    for index, text in enumerate(CODE):
        (root / "corpus" / f"f{index}.py").write_text(text)
    record = trim_mod.trim_hf_folder(full, root / "trimmed", KEEP, corpus=[root / "corpus"],
                                     extra_tokens=["<unused0>", "<unused1>"])
    trimmed = Tokenizer.from_file(str(root / "trimmed" / "tokenizer.json"))
    old_ids = [Tokenizer.from_file(str(full / "tokenizer.json")).token_to_id(t)
               for t, _ in sorted(trimmed.get_vocab().items(), key=lambda item: item[1])]
    assert record["vocab_size"] == len(old_ids) < record["base_vocab_size"]
    return full, root / "trimmed", old_ids


def _tokenizers(pair):
    from tokenizers import Tokenizer

    full, trimmed, _ = pair
    return (Tokenizer.from_file(str(full / "tokenizer.json")),
            Tokenizer.from_file(str(trimmed / "tokenizer.json")))


def _kept_lines(pair) -> list[str]:
    full_tok, _ = _tokenizers(pair)
    kept = set(pair[2])
    lines = {line for text in CODE for line in text.splitlines() if line.strip()}
    lines |= {f"x = {a} {b}" for a in WORDS[:12] for b in WORDS[12:24]}
    return sorted(line for line in lines
                  if all(i in kept for i in full_tok.encode(line, add_special_tokens=False).ids))


def test_text_of_kept_tokens_tokenizes_identically(trimmed_pair):
    full_tok, cut_tok = _tokenizers(trimmed_pair)
    lines = _kept_lines(trimmed_pair)
    assert len(lines) >= 10
    for line in lines:
        assert cut_tok.encode(line).tokens == full_tok.encode(line).tokens, line


def test_other_text_falls_back_to_smaller_pieces_never_unk(trimmed_pair):
    full_tok, cut_tok = _tokenizers(trimmed_pair)
    kept = set(trimmed_pair[2])
    text = "zebra_quokka = façade('日本') ✓  # ünïcödé\n" + CODE[0][:400]
    dropped = [i for i in full_tok.encode(text, add_special_tokens=False).ids if i not in kept]
    assert dropped, "the text must contain tokens the trim dropped"
    enc = cut_tok.encode(text, add_special_tokens=False)
    assert cut_tok.token_to_id("<unk>") not in enc.ids
    assert cut_tok.decode(enc.ids) == full_tok.decode(full_tok.encode(text).ids, True)
    assert len(enc.ids) > len(full_tok.encode(text, add_special_tokens=False).ids)


def test_fim_sentinels_specials_and_added_tokens_are_kept(trimmed_pair):
    full_tok, cut_tok = _tokenizers(trimmed_pair)
    vocab = cut_tok.get_vocab()
    for token in ("<unused0>", "<unused1>"):
        if token in full_tok.get_vocab():
            assert cut_tok.encode(token, add_special_tokens=False).tokens == [token]
    first = full_tok.encode("x = 1").tokens[0]
    if first == "<bos>":  # added by the post-processor, whose id must follow the renumbering
        assert cut_tok.encode("x = 1").ids[0] == vocab["<bos>"] != full_tok.token_to_id("<bos>")
    if "<unused5>" in full_tok.get_vocab():
        assert "<unused5>" not in vocab  # a placeholder no template uses is dropped
        assert cut_tok.encode("\t\t", add_special_tokens=False).tokens == ["\t\t"]
    config = json.loads((trimmed_pair[1] / "config.json").read_text())
    assert config["vocab_size"] == len(vocab)
    assert config["eos_token_id"] == vocab.get("<eos>", vocab.get("</s>"))


def test_trimmed_hf_model_gives_the_full_logits_of_kept_tokens(trimmed_pair):
    """The trainer starts from the trimmed folder: same model, smaller output layer."""
    import torch
    from transformers import AutoModelForCausalLM

    full_dir, cut_dir, old_ids = trimmed_pair
    full = AutoModelForCausalLM.from_pretrained(full_dir, dtype=torch.float32)
    cut = AutoModelForCausalLM.from_pretrained(cut_dir, dtype=torch.float32)
    assert cut.get_output_embeddings().weight.shape[0] == len(old_ids)
    full_tok, cut_tok = _tokenizers(trimmed_pair)
    line = _kept_lines(trimmed_pair)[0]
    with torch.no_grad():
        expected = full(torch.tensor([full_tok.encode(line).ids])).logits[0][:, old_ids]
        got = cut(torch.tensor([cut_tok.encode(line).ids])).logits[0]
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_trimmed_ctranslate2_greedy_output_equals_full(trimmed_pair, tmp_path):
    import ctranslate2

    full_dir, cut_dir, old_ids = trimmed_pair
    convert_hf_to_ct2(full_dir, tmp_path / "full", "float32")
    convert_hf_to_ct2(cut_dir, tmp_path / "cut", "float32")
    full = ctranslate2.Generator(str(tmp_path / "full"), compute_type="float32", intra_threads=1)
    cut = ctranslate2.Generator(str(tmp_path / "cut"), compute_type="float32", intra_threads=1)
    full_tok, cut_tok = _tokenizers(trimmed_pair)
    kept = set(old_ids)
    # The full model may pick a token the trim dropped; forbid those and the outputs must agree.
    dropped = [[full_tok.id_to_token(i)] for i in range(full_tok.get_vocab_size()) if i not in kept]
    lines = _kept_lines(trimmed_pair)[:8]
    compared = 0
    for line in lines:
        tokens = full_tok.encode(line).tokens
        assert tokens == cut_tok.encode(line).tokens
        want = full.generate_batch([tokens], max_length=12, sampling_topk=1,
                                   include_prompt_in_result=False, suppress_sequences=dropped)
        got = cut.generate_batch([tokens], max_length=12, sampling_topk=1,
                                 include_prompt_in_result=False)
        assert got[0].sequences[0] == want[0].sequences[0], line
        compared += 1
    assert compared >= 5


def test_trim_cli_registers_a_model_with_its_record(tmp_path, tiny_hf_model, capsys,
                                                    monkeypatch):
    store = ModelStore(tmp_path / "home")
    import_model(str(tiny_hf_model), store, name="tiny")
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.py").write_text(CODE[0])
    argv = ["trim", "tiny", "--keep", str(KEEP), "--corpus", str(tmp_path / "corpus"),
            "--name", "tiny-code"]
    monkeypatch.setenv("REPOLSP_HOME", str(store.home))
    assert models_main(argv) == 0
    entry = store.get("tiny-code")
    record = entry.manifest.extra["trim"]
    assert record["base"] == "tiny" and record["keep"] == KEEP
    assert str(tmp_path / "corpus") in record["ranking"]
    assert entry.manifest.source == "trim:tiny" and entry.manifest.base_model == "tiny"
    assert (entry.ct2_dir / "model.bin").stat().st_size < (store.get("tiny").ct2_dir / "model.bin").stat().st_size
    assert "tiny-code" in capsys.readouterr().out


def test_interrupted_trim_leaves_the_store_unchanged(tmp_path, tiny_hf_model, monkeypatch):
    store = ModelStore(tmp_path / "home")
    import_model(str(tiny_hf_model), store, name="tiny")
    store.use("tiny")
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.py").write_text(CODE[0])
    before = sorted(p.name for p in store.models_dir.iterdir())

    def explode(*args, **kwargs):
        raise KeyboardInterrupt  # as if Ctrl-C hit mid-conversion

    monkeypatch.setattr("repolsp.models.convert.convert_hf_to_ct2", explode)
    with pytest.raises(KeyboardInterrupt):
        trim_mod.trim_model(store, "tiny", keep=KEEP, corpus=[tmp_path / "corpus"])
    assert sorted(p.name for p in store.models_dir.iterdir()) == before
    assert store.default_name() == "tiny"


def test_a_tokenizer_without_ranking_needs_a_corpus(tmp_path, tiny_hf_model):
    store = ModelStore(tmp_path / "home")
    import_model(str(tiny_hf_model), store, name="tiny")
    with pytest.raises(ModelError, match="--corpus"):
        trim_mod.trim_model(store, "tiny")


def test_top_of_the_ranking_is_the_most_frequent_token(tiny_hf_model):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tiny_hf_model / "tokenizer.json"))
    counts, _ = count_tokens(tokenizer, [REPO / "server" / "demo_data" / "inventory.py"])
    ranking = rank(tokenizer, {"py": counts}, "test")
    assert ranking.tokens[0] == tokenizer.id_to_token(int(counts.argmax()))
    trimmed, old_ids = trim_tokenizer(tokenizer, ranking, 10)
    assert int(counts.argmax()) in old_ids and trimmed.get_vocab_size() == len(old_ids)


def test_a_source_weighted_higher_ranks_its_tokens_first(tiny_hf_model):
    import numpy as np
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tiny_hf_model / "tokenizer.json"))
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    code, prose = np.zeros(size, dtype=np.int64), np.zeros(size, dtype=np.int64)
    code[[5, 6]], prose[7] = [10, 9], 8  # per source: token 5 60%, 6 40%... and 7 100%
    equal = rank(tokenizer, {"code": code, "prose": prose}, "test")
    assert equal.tokens[0] == tokenizer.id_to_token(7)  # 0.5 > 0.5 * 10 / 19
    weighted = rank(tokenizer, {"code": code, "prose": prose}, "test", {"code": 3.0})
    assert weighted.tokens[:2] == [tokenizer.id_to_token(5), tokenizer.id_to_token(6)]
    assert abs(sum(weighted.scores) - 1.0) < 1e-9


def test_count_tokens_counts_only_what_extract_keeps(tiny_hf_model, tmp_path):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tiny_hf_model / "tokenizer.json"))
    source = tmp_path / "a.py"
    source.write_text("x = 1  # a comment\n", encoding="utf-8")
    whole, read_whole = count_tokens(tokenizer, [source])
    comment, read_comment = count_tokens(tokenizer, [source],
                                         extract=lambda path, text: text.split("#", 1)[1])
    assert read_comment == len(" a comment\n") < read_whole
    assert 0 < comment.sum() < whole.sum()
