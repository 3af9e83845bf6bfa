"""What the CTranslate2 engine does about memory: the allocator's threshold, the KV cache's size.

Measured on Gemma 3 270M trimmed (bench/RESULTS.md): the server's peak is the model (~150 MB
resident), the tokenizer (37 MB; 288 MB untrimmed), the Python side (imports, index), the rotary
tables CTranslate2 builds on the first request (75 MB: one per layer, 2,048 positions), each
cached static prompt (61-68 MB at 480 tokens) and a request's transient buffers (~100 MB at 500
tokens, the same for the full vocabulary: float32 keys and values of all 4 heads, 147 KB a
token, and activations).
"""

from __future__ import annotations

from pathlib import Path

# glibc keeps freed memory in its heaps: CTranslate2's per-request activations (a prefill's
# logits for every prompt position) and the old weights after a cache-clearing reload stay
# resident. malloc_trim gives the free pages back (it never touches memory in use): peak RSS
# 711 -> 601 MB for a loaded model and three cached prompts, 603 -> 203 MB after a reload.
# (A fixed 1 MB mmap threshold did as well but made a test process abort once in three runs:
# CTranslate2 threads touching freed buffers, harmless on a heap, fatal once unmapped.)


def release_free_memory() -> None:
    """Return the allocator's free pages to the OS (glibc only; elsewhere a no-op)."""
    import ctypes

    global _LIBC
    try:
        if _LIBC is None:
            _LIBC = ctypes.CDLL("libc.so.6")
        _LIBC.malloc_trim(0)
    except (OSError, AttributeError):
        _LIBC = False  # not glibc: its allocator decides


_LIBC = None


def kv_bytes_per_token(hf_dir: Path) -> int | None:
    """Bytes CTranslate2 keeps per cached prompt token: float32 keys and values of every
    layer, for all attention heads (it does not share Gemma 3's one key/value head)."""
    import json

    try:
        config = json.loads((Path(hf_dir) / "config.json").read_text())
        config = config.get("text_config", config)
        heads = config["num_attention_heads"]
        head_dim = config.get("head_dim") or config["hidden_size"] // heads
        return config["num_hidden_layers"] * 2 * heads * head_dim * 4
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
        return None
