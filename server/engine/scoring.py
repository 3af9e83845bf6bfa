"""Scoring continuations with CTranslate2's `score_batch` (the re-ranker's measure)."""

from __future__ import annotations


def mean_log_probs(generator, tokenizer, prompt: str, continuations: list[str],
                   max_context_tokens: int = 256) -> list[float]:
    """Mean log-probability per token of each continuation right after prompt; the prompt is
    cut to its last max_context_tokens tokens to bound the cost (every continuation re-reads
    the context: scoring has no prompt cache)."""
    if not continuations:
        return []
    head = tokenizer.encode(prompt, add_special_tokens=True)
    bos = head.tokens[:1] if head.special_tokens_mask[:1] == [1] else []
    pairs = []  # (context tokens, continuation tokens)
    for continuation in continuations:
        full = tokenizer.encode(prompt + continuation, add_special_tokens=True)
        common = 0  # tokens shared with the prompt alone: the tail may merge with the text
        while common < min(len(head.ids), len(full.ids)) and head.ids[common] == full.ids[common]:
            common += 1
        pairs.append((list(full.tokens[len(bos):common]), list(full.tokens[common:])))
    # One sequence at a time: CTranslate2 4.8.5 fails on a padded Gemma 3 batch ("Length
    # mask has size ..."), and on a CPU a batch reads the same number of tokens anyway.
    batch = [bos + c[-max_context_tokens:] + t for c, t in pairs]
    results = generator.score_batch(batch, max_input_length=0, max_batch_size=1)
    scores = []
    for result, (_, tokens) in zip(results, pairs):
        # log_probs[i] is the log-probability of token i + 1 given the tokens before it.
        values = list(result.log_probs)[-len(tokens):] if tokens else []
        scores.append(sum(values) / len(values) if values else float("-inf"))
    return scores
