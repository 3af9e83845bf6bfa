"""Tiny random code models with the real families' FIM tokens, for the hub pull tests: a Qwen2
with Qwen2.5-Coder's special tokens and a Llama with DeepSeek-Coder's. Tokenizers are trained
here on a little code; weights are random."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import REPO, WORDS, gemma_style_bpe, save_scaled, save_tiny_llama

QWEN_SPECIALS = ["<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
                 "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"]
DEEPSEEK_BOS, DEEPSEEK_EOS = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
DEEPSEEK_SPECIALS = [DEEPSEEK_BOS, DEEPSEEK_EOS, "<｜fim▁hole｜>", "<｜fim▁begin｜>", "<｜fim▁end｜>"]


def _corpus() -> list[str]:
    return [" ".join(WORDS)] * 3 + [
        (REPO / "server" / "demo_data" / "inventory.py").read_text(),
        ("def add(a, b):\n    return a + b\n\nclass Point:\n    def __init__(self, x, y):\n"
         "        self.x = x\n        self.y = y\n"),
    ]


# Qwen2's split pattern (its published tokenizer.json; transformers 5 rebuilds Qwen2Tokenizer with
# it, so a tiny tokenizer without it would tokenize differently in the trainer and the server).
QWEN_SPLIT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"""
              r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")


def _byte_level_bpe(specials: list[str], qwen_split: bool = False):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    if qwen_split:
        tokenizer.normalizer = normalizers.NFC()
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(_corpus(), trainer)
    return tokenizer


def build_tiny_qwen(folder: Path, seed: int = 0, intermediate_size: int = 128) -> Path:
    """A random-weight Qwen2 (tied embeddings, q/k/v biases, as Qwen2.5-Coder 0.5B/1.5B) whose
    tokenizer has Qwen2.5-Coder's FIM and repository tokens and no BOS, as Qwen's."""
    import torch
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    fast = PreTrainedTokenizerFast(tokenizer_object=_byte_level_bpe(QWEN_SPECIALS, qwen_split=True),
                                   eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=QWEN_SPECIALS[1:])
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(fast), hidden_size=64, intermediate_size=intermediate_size,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=512, tie_word_embeddings=True, eos_token_id=fast.eos_token_id,
        bos_token_id=None, pad_token_id=fast.pad_token_id, rope_theta=1_000_000.0,  # as Qwen2.5's
    )
    save_scaled(Qwen2ForCausalLM(config), fast, folder)
    return _tokenizer_class(folder, "Qwen2Tokenizer")


def _tokenizer_class(folder: Path, name: str) -> Path:
    """Name the tokenizer class the published repository names (transformers picks by it)."""
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**config, "tokenizer_class": name}, indent=2), encoding="utf-8")
    return folder


def build_tiny_deepseek(folder: Path, seed: int = 0) -> Path:
    """A random-weight Llama with DeepSeek-Coder's RoPE scaling, whose tokenizer has its BOS/EOS
    and FIM tokens and adds the BOS, as DeepSeek-Coder's."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    tokenizer = _byte_level_bpe(DEEPSEEK_SPECIALS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{DEEPSEEK_BOS} $A", special_tokens=[(DEEPSEEK_BOS, tokenizer.token_to_id(DEEPSEEK_BOS))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=DEEPSEEK_BOS,
                                   eos_token=DEEPSEEK_EOS, pad_token=DEEPSEEK_EOS,
                                   additional_special_tokens=DEEPSEEK_SPECIALS[2:])
    # DeepSeek-Coder 1.3B stretches RoPE linearly (factor 4, theta 100000) to 16k positions.
    save_tiny_llama(folder, fast, seed, pad_token_id=fast.pad_token_id,
                    rope_scaling={"type": "linear", "factor": 4.0}, rope_theta=100_000.0)
    return _tokenizer_class(folder, "LlamaTokenizerFast")


CODEGEMMA_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<|fim_prefix|>",
                      "<|fim_middle|>", "<|fim_suffix|>", "<|file_separator|>"]


def build_tiny_codegemma(folder: Path, seed: int = 0) -> Path:
    """A random-weight Gemma (multi-query attention, tied embeddings, as CodeGemma 2B) whose
    tokenizer is built as transformers' GemmaTokenizer builds one (SentencePiece-style BPE with
    byte fallback, the BOS added) and has CodeGemma's FIM tokens."""
    import torch
    from tokenizers import processors, trainers
    from transformers import GemmaConfig, GemmaForCausalLM, PreTrainedTokenizerFast

    tokenizer = gemma_style_bpe()
    byte_tokens = [f"<0x{byte:02X}>" for byte in range(256)]
    tokenizer.train_from_iterator(_corpus(), trainers.BpeTrainer(
        vocab_size=700, special_tokens=CODEGEMMA_SPECIALS + byte_tokens))
    bos = tokenizer.token_to_id("<bos>")
    tokenizer.post_processor = processors.TemplateProcessing(single="<bos> $A",
                                                             special_tokens=[("<bos>", bos)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<eos>",
                                   unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                                   additional_special_tokens=CODEGEMMA_SPECIALS[5:])
    torch.manual_seed(seed)
    config = GemmaConfig(
        vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=1, head_dim=16, max_position_embeddings=512,
        bos_token_id=bos, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
    )
    save_scaled(GemmaForCausalLM(config), fast, folder)
    return _tokenizer_class(folder, "GemmaTokenizer")
