"""Token healing's lookup: which tokens re-produce the text of the prompt's removed last token.

The engine drops the prompt's last token and lets the model choose among the tokens consistent
with its text (one that starts with it, or a non-empty prefix of it that a later token goes on).
"""

from __future__ import annotations

import bisect


class TokenTexts:
    """Every token's text, sorted, for prefix lookups (built once: about 0.7 s for 262k tokens)."""

    def __init__(self, tokenizer):
        size = tokenizer.get_vocab_size()
        texts = tokenizer.decode_batch([[i] for i in range(size)], skip_special_tokens=True)
        pairs = sorted((text, i) for i, text in enumerate(texts) if text and "\ufffd" not in text)
        self.texts = [p[0] for p in pairs]
        self.ids = [p[1] for p in pairs]

    def consistent(self, remaining: str) -> tuple[list[int], dict[int, str]]:
        """Token ids whose text starts with `remaining` or is a non-empty prefix of it, and for
        the prefixes the part of `remaining` each covers."""
        texts, ids = self.texts, self.ids
        found: list[int] = []
        partial: dict[int, str] = {}
        lo = bisect.bisect_left(texts, remaining)
        hi = bisect.bisect_left(texts, remaining + "\U0010ffff", lo)
        found.extend(ids[lo:hi])
        for size in range(1, len(remaining)):
            head = remaining[:size]
            at = bisect.bisect_left(texts, head)
            while at < len(texts) and texts[at] == head:
                partial[ids[at]] = head
                at += 1
        return found + list(partial), partial


def heal(generator, tokenizer, texts: TokenTexts, static, dynamic, heal_text: str,
         cache_static: bool) -> list[str]:
    """First tokens that re-produce heal_text (the prompt's removed last token): the most likely
    next token among those consistent with it, from the model's full next-token distribution
    (one decoding step). Rarely a token covers only part of heal_text; then another step
    continues with the rest. LookupError when no token fits."""
    import numpy as np

    chosen: list[str] = []
    remaining = heal_text
    for _ in range(3):
        candidates, partial = texts.consistent(remaining)
        if not candidates:
            break
        results = generator.generate_batch(
            [dynamic + chosen],
            static_prompt=static or None,
            cache_static_prompt=cache_static,
            max_length=1,
            return_logits_vocab=True,
            include_prompt_in_result=False,
            sampling_topk=1,
        )
        logits = np.asarray(results[0].logits[0], dtype=np.float32).reshape(-1)
        index = np.asarray(candidates)
        best = int(index[int(np.argmax(logits[index]))])
        chosen.append(tokenizer.id_to_token(best))
        if best not in partial:
            return chosen
        remaining = remaining[len(partial[best]):]
    raise LookupError("no healing token")
