"""Adapter -> served model: merge into the base weights, save, convert to CTranslate2, register
a new store version and switch the server's pointer to it atomically.

CTranslate2 cannot load LoRA adapters, hence the merge. Everything is built in a hidden folder of
the store and renamed into place only when complete, so a failed or interrupted export leaves
the served model untouched; the previous model stays installed for `lsp-models use` rollback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from repolsp.models import convert
from repolsp.models.store import Manifest
from repolsp.trainer.adapters import TOKEN_ROWS_FILE, init_new_token_embeddings
from repolsp.trainer.errors import TrainerError


def merge_adapter(base_hf_dir: Path, adapter_dir: Path, out_dir: Path) -> None:
    """Write the base model with the adapter merged in (and the adapter's tokenizer) to out_dir."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    info = json.loads((adapter_dir / "training.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
    if info["method"] == "full":
        model = AutoModelForCausalLM.from_pretrained(str(adapter_dir), dtype=torch.float32)
    elif info["method"] == "prefix":
        raise TrainerError("prefix-tuning adapters cannot be merged into a CTranslate2 model; "
                           "train with --method lora (or keep the adapter with --no-export)")
    else:
        from peft import PeftModel

        model = AutoModelForCausalLM.from_pretrained(str(base_hf_dir), dtype=torch.float32)
        old_vocab = model.get_input_embeddings().weight.shape[0]
        if len(tokenizer) > old_vocab:
            # Added FIM tokens: grown and initialised as in training (then the trained rows below).
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
            init_new_token_embeddings(model, tokenizer, old_vocab)
        model = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
        rows_path = adapter_dir / TOKEN_ROWS_FILE
        if rows_path.is_file():
            saved = torch.load(rows_path, map_location="cpu", weights_only=True)
            with torch.no_grad():
                model.get_input_embeddings().weight[saved["ids"]] = saved["rows"]
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))


def update_manifest_extra(entry, values: dict) -> None:
    """Merge `values` into a stored model's manifest `extra`, atomically (a server reading it
    meanwhile sees the old manifest or the new one, never half)."""
    import os

    path = Path(entry.dir) / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data.setdefault("extra", {}).update(values)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def export_tuned_model(store, base_entry, adapter_dir: Path, name: str, repo: Path | None = None,
                       switch: bool = True, quantization: str | None = None, stats: dict | None = None,
                       say: Callable[[str], None] = lambda _m: None):
    """Merge, convert and register `name`; make it the served model when `switch`."""

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "training.json").is_file():
        raise TrainerError(f"{adapter_dir} is not a trained adapter (no training.json)")
    info = json.loads((adapter_dir / "training.json").read_text())
    base = base_entry.manifest
    quantization = quantization or ("int8" if base.quantization.startswith("int8") else base.quantization)
    if store.exists(name):
        raise TrainerError(f"model {name!r} already exists; pass --name to choose another")
    with store.building(name) as build_dir:
        say("merging the adapter into the base model ...")
        merge_adapter(base_entry.hf_dir, adapter_dir, build_dir / "hf")
        say(f"converting to CTranslate2 {quantization} ...")
        convert.convert_hf_to_ct2(build_dir / "hf", build_dir / "ct2", quantization)
        manifest = Manifest(
            name=name, source=f"lsp-train:{repo}" if repo else "lsp-train",
            architecture=base.architecture, quantization=quantization, tokenizer=base.tokenizer,
            family=base.family, fim_template=info.get("fim_template") or base.fim_template,
            max_prompt_tokens=base.max_prompt_tokens, base_model=base.name, license=base.license,
            extra={"training": stats or {}, "method": info.get("method")},
        )
        entry = store.register_from_dir(build_dir, manifest)
    if switch:
        store.use(name)  # atomic pointer replace; the server reloads within seconds
    return entry
