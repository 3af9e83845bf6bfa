"""Examples -> token ids: the tokenizer with its FIM tokens, prompt/completion labels, and the
context labels of the prefix tokens (`--context-tokens`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from repolsp.trainer.errors import TrainerError
from repolsp.trainer.train_config import TrainConfig

IGNORE = -100  # label of tokens that carry no loss (prompt, padding)


# -- tokenizer and FIM tokens -------------------------------------------------------------------


def load_tokenizer(hf_dir: Path, template=None):
    """The model's tokenizer, with the template's FIM sentinels added as special tokens when the
    vocabulary lacks them (SmolLM2); existing tokens (Gemma's <unusedN>) are reused."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(hf_dir))
    except (OSError, ValueError) as exc:
        raise TrainerError(f"cannot load the tokenizer from {hf_dir}: {exc}") from exc
    if template is not None and template.fim:
        missing = [t for t in fim_sentinels(template) if not _single_token(tokenizer, t)]
        if missing:
            tokenizer.add_special_tokens({"additional_special_tokens": missing},
                                         replace_extra_special_tokens=False)
    return tokenizer


def fim_sentinels(template) -> list[str]:
    return [t for t in (template.fim_prefix, template.fim_suffix, template.fim_middle) if t.strip()]


def _single_token(tokenizer, text: str) -> bool:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return len(ids) == 1 and ids[0] != tokenizer.unk_token_id


# -- data -----------------------------------------------------------------------------------------


@dataclass
class Tokenized:
    input_ids: list[int]
    labels: list[int]
    index: int  # position in the training example list
    context_labels: list[int] | None = None  # prefix tokens that carry context loss (see TrainConfig)


def context_vocabulary(tokenized, excluded=()):
    """Sorted ids of the tokens in the training data, less `excluded` (the FIM sentinels, whose
    learned rows only the output head's forward hook adds): the context term's softmax runs
    over these. A context label outside them (a sentinel written in the code) stops carrying loss."""
    import torch

    vocab = set()
    for t in tokenized:
        vocab.update(t.input_ids)
    vocab.difference_update(excluded)
    for t in tokenized:
        if t.context_labels is not None:
            t.context_labels = [i if i in vocab else IGNORE for i in t.context_labels]
    return torch.tensor(sorted(vocab), dtype=torch.long)


def tokenize_example(tokenizer, prompt: str, completion: str, seq_len: int,
                     max_completion_tokens: int, prompt_ids: list[int] | None = None,
                     ) -> tuple[list[int], list[int]]:
    """(input_ids, labels): the prompt as the server encodes it (special tokens included; or
    `prompt_ids`, that encoding made by the caller), then the completion and EOS; only completion
    and EOS carry loss. Long prompts lose their start."""
    if prompt_ids is None:
        prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    completion_ids = completion_ids[:max_completion_tokens]
    if len(completion_ids) < max_completion_tokens and tokenizer.eos_token_id is not None:
        completion_ids = completion_ids + [tokenizer.eos_token_id]
    room = seq_len - len(completion_ids)
    if len(prompt_ids) > room:
        keep_head = 1 if tokenizer.bos_token_id is not None and prompt_ids[:1] == [tokenizer.bos_token_id] else 0
        prompt_ids = prompt_ids[:keep_head] + prompt_ids[len(prompt_ids) - room + keep_head:]
    return prompt_ids + completion_ids, [IGNORE] * len(prompt_ids) + completion_ids


COMPLETION_KINDS = ("fim", "snapshot", "accepted")


def prefix_span(prompt: str, prefix: str) -> tuple[int, int] | None:
    """(start, end) characters of the prompt that are the example's prefix, the code before the
    cursor, as far as the prompt kept it (the prompt builder drops whole lines from its start)."""
    if not prefix:
        return None
    tail = prefix[-200:]
    at = prompt.rfind(tail)
    while at < 0 and "\n" in tail[:-1]:  # a short prefix the prompt trimmed: its kept lines
        tail = tail[tail.index("\n") + 1:]
        at = prompt.rfind(tail)
    if at < 0:
        return None
    end = at + len(tail)
    before = prompt[:end]
    kept = prefix
    if len(kept) > end:  # cannot all be there: skip to the first line that could be
        cut = kept.find("\n", len(kept) - end)
        kept = kept[cut + 1:] if cut >= 0 else ""
    while kept and not before.endswith(kept):
        cut = kept.find("\n")
        kept = kept[cut + 1:] if cut >= 0 else ""
    return (end - len(kept), end) if kept else None


def context_labels(offsets: list[tuple[int, int]], span: tuple[int, int], count: int,
                   ids: list[int], labels: list[int]) -> list[int]:
    """Labels for the last `count` prompt tokens inside `span` (characters of the prompt; the
    tokens' `offsets` from the prompt's encoding), aligned with `ids`/`labels` from
    `tokenize_example` (whose prompt may have lost its start)."""
    start, end = span
    inside = [p for p, (a, b) in enumerate(offsets) if start <= a < b <= end]
    prompt_len = next((i for i, label in enumerate(labels) if label != IGNORE), len(labels))
    shift = len(offsets) - prompt_len  # tokens the prompt lost at its start
    out = [IGNORE] * len(ids)
    for p in inside[-count:]:
        if p - shift >= 1:
            out[p - shift] = ids[p - shift]
    return out


def tokenize_for_training(tokenizer, example, index: int, config: TrainConfig) -> Tokenized:
    """An example as `tokenize_example` makes it, plus context labels on its prefix's last
    `config.context_tokens` tokens when it is a completion example (one encoding of the prompt)."""
    span = None
    if config.context_tokens and example.kind in COMPLETION_KINDS and example.context:
        span = prefix_span(example.prompt, example.context.get("prefix", ""))
    if span is None:
        ids, labels = tokenize_example(tokenizer, example.prompt, example.completion, config.seq_len,
                                       config.max_completion_tokens)
        return Tokenized(ids, labels, index)
    encoded = tokenizer(example.prompt, add_special_tokens=True, return_offsets_mapping=True)
    ids, labels = tokenize_example(tokenizer, example.prompt, example.completion, config.seq_len,
                                   config.max_completion_tokens, prompt_ids=encoded["input_ids"])
    extra = context_labels(encoded["offset_mapping"], span, config.context_tokens, ids, labels)
    return Tokenized(ids, labels, index, extra)
