"""Shared fixtures. No test reads or writes the user's model store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# The real default model is pulled once into the clone (CI starts from nothing), then reused.
REAL_STORE = Path(os.environ.get("REPOLSP_TEST_STORE", REPO / ".repolsp-home"))


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    """A folder under pytest's own temporary folder for what test modules need at import time
    (pytest-lsp reads a server's environment when its fixture is defined), so a run leaves
    nothing in the system temp dir. Read through `import_time_dir`."""
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is not None:
        os.environ["REPOLSP_TEST_TMP"] = str(factory.mktemp("at-import"))
        # What the tools the tests start put in the temp dir (nvim's and VS Code's sockets, node's
        # compile cache, torch's kernel cache) lands under pytest's folder too. Short on purpose:
        # a Unix socket's path may not pass 107 bytes.
        import tempfile

        os.environ["TMPDIR"] = str(factory.mktemp("t"))
        tempfile.tempdir = None  # recomputed from TMPDIR on next use


def import_time_dir(name: str) -> Path:
    """A fresh folder `name-N` for a module-level need (see `pytest_configure`)."""
    base = os.environ.get("REPOLSP_TEST_TMP")
    if base is None:  # imported outside pytest (bench/fuzz.py): a folder of its own
        import tempfile

        base = os.environ["REPOLSP_TEST_TMP"] = tempfile.mkdtemp(prefix="repolsp-tests-")
    for number in range(10_000):
        folder = Path(base) / f"{name}-{number}"
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            continue
        return folder
    raise RuntimeError(f"no free folder for {name} in {base}")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own empty REPOLSP_HOME unless it asks for a store."""
    monkeypatch.setenv("REPOLSP_HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def real_store() -> Path:
    """A store holding the real default model, pulled with `lsp-models pull` if absent."""
    proc = subprocess.run(
        [sys.executable, "-m", "repolsp.models.cli", "pull"],
        env={**os.environ, "REPOLSP_HOME": str(REAL_STORE)},
        check=False, capture_output=True, text=True, timeout=1800,
    )
    assert proc.returncode == 0, f"pulling the default model failed:\n{proc.stderr[-3000:]}"
    return REAL_STORE


WORDS = ["def", "return", "if", "else", "elif", "for", "while", "in", "import", "from", "class", "self", "None", "True", "False", "and", "or", "not", "is", "lambda", "yield", "with", "as", "try", "except", "finally", "raise", "pass", "break", "continue", "print", "range", "len", "list", "dict", "set", "tuple", "str", "int", "float", "value", "values", "items", "key", "keys", "name", "path", "data", "result", "total", "count", "index", "item", "items", "open", "read", "write", "append", "sum", "min", "max", "sorted", "x", "y", "z", "a", "b", "=", "==", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", "(", ")", "[", "]", "{", "}", ":", ",", ".", "#", "'", '"', "\\n"]


def build_tiny_llama(folder: Path, seed: int = 0) -> Path:
    """A random-weight float32 Llama with a BPE tokenizer trained here; saved as an HF folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [" ".join(WORDS)] * 3 + [
        (REPO / "server" / "demo_data" / "inventory.py").read_text(),
        ("def add(a, b):\n    return a + b\n\nclass Point:\n    def __init__(self, x, y):\n"
         "        self.x = x\n        self.y = y\n"),
    ]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<s>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    return save_tiny_llama(folder, fast, seed)


def gemma_style_bpe():
    """An untrained tokenizer laid out as Gemma's (and transformers' GemmaTokenizer): BPE with
    byte fallback, spaces as `▁` pieces split after each, decoded back through the byte tokens."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tokenizer.normalizer = normalizers.Replace(" ", "▁")
    tokenizer.pre_tokenizer = pre_tokenizers.Split(" ", "merged_with_previous")
    tokenizer.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    return tokenizer


def save_tiny_llama(folder: Path, fast, seed: int = 0, tie_word_embeddings: bool = False,
                    **token_ids) -> Path:
    """A random-weight float32 Llama for tokenizer `fast`, saved with it as an HF folder.
    `token_ids` (bos_token_id=…, pad_token_id=…) override the tokenizer's own."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    ids = {"bos_token_id": fast.bos_token_id, "eos_token_id": fast.eos_token_id, **token_ids}
    config = LlamaConfig(
        vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        tie_word_embeddings=tie_word_embeddings, **ids,
    )
    return save_scaled(LlamaForCausalLM(config), fast, folder)


def save_scaled(model, fast, folder: Path) -> Path:
    """Save a random-weight model in float32, its weights x8, with tokenizer `fast` as an HF
    folder: larger weights than the default init give peaked, prompt-dependent greedy choices."""
    import torch

    model = model.to(torch.float32)
    with torch.no_grad():
        for param in model.parameters():
            param.mul_(8.0)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_hf_model(tmp_path_factory) -> Path:
    """A tiny random Llama HF folder (built once per session)."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama")
