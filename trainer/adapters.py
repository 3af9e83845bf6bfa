"""The model side of a run: load the base model, add the peft adapter and the FIM token rows,
save and restore what trains, and write the finished adapter folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from repolsp.trainer.errors import TrainerError
from repolsp.trainer.train_config import TARGET_MODULES, TrainConfig


def stored_dtype(hf_dir: Path) -> str | None:
    """The dtype a transformers folder's weights were saved in ("bfloat16", "float32", ...)."""
    try:
        config = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config.get("dtype") or config.get("torch_dtype")


def load_model(hf_dir: Path, tokenizer, template_name: str | None, dtype=None):
    """The base model (float32 unless `dtype`), its embeddings grown for added FIM tokens
    (initialised from their words)."""
    import torch
    from transformers import AutoModelForCausalLM

    if not any((hf_dir / name).exists() for name in ("model.safetensors", "model.safetensors.index.json",
                                                    "pytorch_model.bin")):
        raise TrainerError(f"{hf_dir} has no transformers weights to train (re-import the model)")
    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=dtype or torch.float32)
    old_vocab = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > old_vocab:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        init_new_token_embeddings(model, tokenizer, old_vocab)
    return model


def sentinel_words(token: str) -> str:
    """The word a FIM sentinel stands for: '<fim_prefix>' -> 'prefix'."""
    return token.strip("<>|").replace("fim_", "").replace("_", " ").strip() or token


def init_new_token_embeddings(model, tokenizer, old_vocab: int) -> None:
    """Start each added token (FIM sentinel) at the mean embedding of the word it stands for,
    so the sentinels are distinct and meaningful from the first step (mean-of-vocabulary
    initialisation makes them near-identical, and a short CPU run cannot separate them)."""
    import torch

    layers = [model.get_input_embeddings().weight]
    output = model.get_output_embeddings()
    if output is not None and output.weight.data_ptr() != layers[0].data_ptr():
        layers.append(output.weight)
    with torch.no_grad():
        for new_id in range(old_vocab, len(tokenizer)):
            word = sentinel_words(tokenizer.convert_ids_to_tokens(new_id))
            ids = [i for i in tokenizer(" " + word, add_special_tokens=False)["input_ids"] if i < old_vocab]
            for weight in layers:
                weight[new_id] = weight[ids].mean(0) if ids else weight[:old_vocab].mean(0)


class TokenRows:
    """Trainable embedding rows for a few token ids (the FIM sentinels), trained beside the
    adapter.

    Written here rather than with peft's `trainable_token_indices`: that layer rebuilds the
    whole embedding matrix (and the tied output head: 262k x 640 for Gemma 3) on every forward
    and back-propagates a dense vocabulary-sized gradient. Measured in one process on Gemma 3
    270M (LoRA r16, dropout 0, 512 tokens, 2 cores): 81 tokens/s with peft's layer, 87 with
    these hooks. Forward hooks add a learned delta (in weight space) where the sentinels occur
    in the input, and to their logits when the output head shares the embedding's weights;
    `merged_rows` gives the final rows for export.
    """

    def __init__(self, embedding, token_ids: list[int], tied_head=None):
        import torch

        self.embedding = embedding
        self.ids = torch.tensor(token_ids, dtype=torch.long)
        self.delta = torch.nn.Parameter(torch.zeros(len(token_ids), embedding.weight.shape[1]))
        scale = getattr(embedding, "embed_scale", None)  # Gemma scales embeddings by sqrt(hidden)
        self.scale = float(scale) if scale is not None else 1.0
        self.handles = [embedding.register_forward_hook(self._input_hook)]
        if tied_head is not None:
            self.handles.append(tied_head.register_forward_hook(self._output_hook))

    def _input_hook(self, _module, args, output):
        match = (args[0].unsqueeze(-1) == self.ids.to(args[0].device)).to(output.dtype)
        return output + (match @ self.delta.to(output.dtype)) * self.scale

    def _output_hook(self, _module, args, output):
        hidden = args[0]
        extra = hidden @ self.delta.to(hidden.dtype).T
        return output.index_add(-1, self.ids.to(output.device), extra.to(output.dtype))

    def merged_rows(self):
        """(ids, rows): the sentinels' embedding rows with the learned delta added."""
        weight = self.embedding.weight.detach()
        return self.ids.clone(), weight[self.ids].float() + self.delta.detach().to(weight.device).float()


def taught_sentinel_ids(template_name: str, fim_ids: list[int]) -> list[int]:
    """The FIM sentinels whose embedding rows train: those of a template `lsp-train` teaches (new
    tokens, or Gemma's never-trained <unusedN>). A model's own FIM tokens (Qwen2.5-Coder,
    DeepSeek-Coder, CodeGemma) were pretrained for the job and keep their rows: at the rows'
    10x learning rate a short run would move them away from what the model learned."""
    from repolsp.trainer.prompts import TUNED_TEMPLATES

    return list(fim_ids) if template_name in TUNED_TEMPLATES.values() else []


def add_adapter(model, config: TrainConfig, trainable_token_ids: list[int], total_steps: int):
    """Wrap `model` for the chosen method; FIM token embeddings train alongside the adapter
    (parameter `token_rows_delta`, see TokenRows)."""
    method = config.method
    model_type = getattr(model.config, "model_type", "")
    if method == "full":
        for param in model.parameters():
            param.requires_grad_(True)
        return model
    import peft

    targets = TARGET_MODULES.get(model_type, "all-linear")
    alpha = config.alpha if config.alpha is not None else 2 * config.rank
    if method == "lora":
        peft_config = peft.LoraConfig(
            r=config.rank, lora_alpha=alpha, lora_dropout=config.dropout, target_modules=targets,
            task_type="CAUSAL_LM",
        )
    elif method == "adalora":
        peft_config = peft.AdaLoraConfig(
            init_r=max(config.rank * 3 // 2, config.rank), target_r=config.rank, lora_alpha=alpha,
            lora_dropout=config.dropout, target_modules=targets, total_step=max(total_steps, 10),
            tinit=max(1, total_steps // 10), tfinal=max(1, total_steps // 5), task_type="CAUSAL_LM",
        )
    elif method == "prefix":
        return peft.get_peft_model(model, peft.PrefixTuningConfig(num_virtual_tokens=config.rank,
                                                                  task_type="CAUSAL_LM"))
    else:
        raise TrainerError(f"unknown method {method!r}")
    model = peft.get_peft_model(model, peft_config)
    if trainable_token_ids:
        embedding, head = model.get_input_embeddings(), model.get_output_embeddings()
        tied = head is not None and head.weight.data_ptr() == embedding.weight.data_ptr()
        rows = TokenRows(embedding, trainable_token_ids, head if tied else None)
        model.register_parameter("token_rows_delta", rows.delta)  # optimizer, checkpoints, DDP
        model._token_rows = rows
    return model


def token_rows_of(model) -> TokenRows | None:
    return getattr(model, "_token_rows", None)


TOKEN_ROWS_FILE = "token_rows.pt"


def causal_lm_of(model):
    """The transformers *ForCausalLM inside peft wrappers."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def trainable_state(model) -> dict:
    """The trained parameters only (adapter, FIM token embeddings), by name, on CPU."""
    return {n: p.detach().to("cpu").clone() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model, state: dict) -> None:
    params = dict(model.named_parameters())
    missing = [n for n in state if n not in params]
    if missing:
        raise TrainerError(f"checkpoint does not match the model ({missing[0]}); start over without --resume")
    import torch

    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value.to(params[name].device))


def save_adapter(model, tokenizer, adapter_dir: Path, config: TrainConfig, template_name: str,
                 base_name: str) -> None:
    """The adapter (or the full model for --method full), the tokenizer with its FIM tokens, and
    training.json (what export needs), written to a fresh folder then renamed into place."""
    import shutil

    tmp = adapter_dir.with_name(adapter_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    rows = token_rows_of(model)
    if rows is not None:
        import torch

        ids, values = rows.merged_rows()
        torch.save({"ids": ids, "rows": values.cpu()}, tmp / TOKEN_ROWS_FILE)
    (tmp / "training.json").write_text(json.dumps({
        "method": config.method, "fim_template": template_name, "base_model": base_name,
        "config": config.fingerprint(),
    }, indent=2))
    shutil.rmtree(adapter_dir, ignore_errors=True)
    os.replace(tmp, adapter_dir)
