"""The training loss: completion cross-entropy plus the weighted context term.
"""

from __future__ import annotations

from repolsp.trainer.adapters import causal_lm_of
from repolsp.trainer.tokenizing import IGNORE


def completion_loss(model, batch: dict, fast: bool = True, context_weight: float = 1.0,
                    context_vocab=None):
    """Mean cross-entropy over the labelled (completion) tokens of a batch, plus
    `context_weight` x the mean over its context-labelled tokens when it has any.

    The fast path runs the output head only on labelled positions: prompts are most of each
    row, and the head (vocabulary x hidden) is about a fifth of a small model's compute.
    It calls the decoder directly, so it is used only where that is equivalent to the
    wrapper's forward (not with prefix tuning).

    `context_vocab` (sorted token ids holding every context label) makes the context term a
    softmax over those tokens only (a sampled softmax): the repository's own tokens are the
    ones that compete for a position in its code, and Gemma's 262k-row head at 128 context
    positions was a quarter of each step. The completion term always uses the whole vocabulary."""
    import torch
    import torch.nn.functional as F

    context = batch.get("context_labels")
    inputs = {k: v for k, v in batch.items() if k != "context_labels"}

    def context_cross_entropy(logits, targets):
        if context_vocab is not None:
            targets = torch.searchsorted(context_vocab, targets)
        return F.cross_entropy(logits.float(), targets)

    if not fast:
        out = model(**inputs)
        if context is None or not bool((context[:, 1:] != IGNORE).any()):
            return out.loss
        targets = context[:, 1:]
        keep = targets != IGNORE
        logits = out.logits[:, :-1][keep]
        if context_vocab is not None:
            logits = logits[:, context_vocab]
        return out.loss + context_weight * context_cross_entropy(logits, targets[keep])

    lm = causal_lm_of(model)
    decoder = getattr(lm, lm.base_model_prefix)
    del inputs["labels"]
    hidden = decoder(**inputs, use_cache=False).last_hidden_state[:, :-1]  # [B, L-1, H]
    targets = batch["labels"][:, 1:]  # position t predicts token t+1
    keep = targets != IGNORE
    cap = getattr(lm.config, "final_logit_softcapping", None)
    head = lm.get_output_embeddings()

    def capped(logits):
        return torch.tanh(logits / cap) * cap if cap else logits

    loss = F.cross_entropy(capped(head(hidden[keep])).float(), targets[keep])  # [N, V], N labelled
    if context is not None:
        context_targets = context[:, 1:]
        context_keep = context_targets != IGNORE
        if bool(context_keep.any()):
            if context_vocab is None:
                logits = head(hidden[context_keep])
            else:
                bias = head.bias[context_vocab] if head.bias is not None else None
                logits = F.linear(hidden[context_keep], head.weight[context_vocab], bias)
            loss = loss + context_weight * context_cross_entropy(capped(logits), context_targets[context_keep])
    return loss
