"""`lsp-models trim`: a stored model with its vocabulary cut to the tokens of code.

Decoding a small model on a CPU is bound by memory bandwidth, and Gemma 3 270M's 262,144 x 640
output layer is 63% of the weights read per token. Keeping the ~36k tokens code uses (see
models/vocab.py) halves the bytes read per token and the model file, and shrinks the tokenizer
the server holds. The HF folder is trimmed too, so `lsp-train` starts from the same vocabulary.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import replace
from importlib import resources
from pathlib import Path

from repolsp.models.errors import ModelError
from repolsp.models.store import ModelEntry, ModelStore
from repolsp.models.vocab import (
    Ranking,
    code_files,
    count_tokens,
    merge_rankings,
    rank,
    trim_tokenizer,
    vocab_fingerprint,
)

DEFAULT_KEEP = 32_768
SHIPPED_RANKINGS = ("gemma3-code-ranking.json.gz",)
# Tokenizer files whose content names token ids; copied with those ids renumbered.
_TOKENIZER_FILES = ("tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")
_ID_FIELDS = ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id",
              "decoder_start_token_id")

Progress = Callable[[str], None]


def shipped_ranking(tokenizer) -> Ranking | None:
    """The ranking shipped for this tokenizer's vocabulary, or None."""
    fingerprint = vocab_fingerprint(tokenizer)
    for name in SHIPPED_RANKINGS:
        with resources.as_file(resources.files("repolsp.models") / "data" / name) as path:
            if path.is_file():
                ranking = Ranking.load(path)
                if ranking.fingerprint == fingerprint:
                    return ranking
    return None


def shipped_ranking_sources() -> set[str]:
    """The `source` of each ranking this version ships (what a trim's manifest record names)."""
    import gzip

    sources = set()
    for name in SHIPPED_RANKINGS:
        with resources.as_file(resources.files("repolsp.models") / "data" / name) as path:
            if path.is_file():
                with gzip.open(path, "rt", encoding="utf-8") as handle:
                    sources.add(json.load(handle)["source"])
    return sources


def ranking_for(tokenizer, corpus: Iterable[Path] = (), progress: Progress | None = None) -> Ranking:
    """The shipped ranking, with the corpus's counts added when given (each weighted half)."""
    say = progress or (lambda _msg: None)
    shipped = shipped_ranking(tokenizer)
    corpus = [Path(p) for p in corpus]
    if corpus:
        files = list(code_files(corpus))
        if not files:
            raise ModelError(f"no code files under {', '.join(map(str, corpus))}")
        say(f"ranking tokens over {len(files)} files")
        counts, read = count_tokens(tokenizer, files)
        own = rank(tokenizer, {"corpus": counts},
                   f"corpus {', '.join(map(str, corpus))} ({read / 1e6:.1f} MB)")
        return merge_rankings(shipped, own) if shipped else own
    if shipped is None:
        raise ModelError("no token ranking ships for this model's tokenizer; pass "
                         "--corpus PATH (a folder of code) to rank its tokens")
    return shipped


def _remap_ids(value, new_id: dict[int, int]):
    if isinstance(value, list):
        return [new_id[v] for v in value if v in new_id]
    return new_id.get(value) if isinstance(value, int) else value


def slice_weights(src_hf: Path, dst_hf: Path, old_ids: list[int]) -> None:
    """Save src_hf's model with only the embedding / output rows of old_ids, in that order."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    model = AutoModelForCausalLM.from_pretrained(str(src_hf), dtype="auto")
    index = torch.tensor(old_ids, dtype=torch.long)
    embed = model.get_input_embeddings()
    output = model.get_output_embeddings()
    tied = output is not None and output.weight.data_ptr() == embed.weight.data_ptr()
    with torch.no_grad():
        embed.weight = torch.nn.Parameter(embed.weight.data[index].clone())
        embed.num_embeddings = len(old_ids)
        if tied:
            output.weight = embed.weight
        elif output is not None:
            output.weight = torch.nn.Parameter(output.weight.data[index].clone())
            if getattr(output, "bias", None) is not None:
                output.bias = torch.nn.Parameter(output.bias.data[index].clone())
        if output is not None:
            output.out_features = len(old_ids)
    new_id = {old: new for new, old in enumerate(old_ids)}
    if getattr(embed, "padding_idx", None) is not None:
        embed.padding_idx = new_id.get(embed.padding_idx)
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    for cfg in {id(c): c for c in (model.config, config)}.values():
        cfg.vocab_size = len(old_ids)
        for name in _ID_FIELDS:
            if getattr(cfg, name, None) is not None:
                setattr(cfg, name, _remap_ids(getattr(cfg, name), new_id))
    try:
        generation = GenerationConfig.from_pretrained(str(src_hf))
        for name in _ID_FIELDS:
            if getattr(generation, name, None) is not None:
                setattr(generation, name, _remap_ids(getattr(generation, name), new_id))
        model.generation_config = generation
    except OSError:
        pass
    model.save_pretrained(str(dst_hf))


def save_tokenizer(trimmed, src_hf: Path, dst_hf: Path, old_ids: list[int]) -> None:
    """Write the trimmed tokenizer.json and the other tokenizer files with ids renumbered."""
    dst_hf.mkdir(parents=True, exist_ok=True)
    trimmed.save(str(dst_hf / "tokenizer.json"))
    new_id = {old: new for new, old in enumerate(old_ids)}
    for name in _TOKENIZER_FILES:
        src = src_hf / name
        if not src.is_file():
            continue
        if name != "tokenizer_config.json":
            shutil.copy2(src, dst_hf / name)
            continue
        config = json.loads(src.read_text(encoding="utf-8"))
        decoder = config.get("added_tokens_decoder")
        if isinstance(decoder, dict):
            config["added_tokens_decoder"] = {
                str(new_id[int(k)]): v for k, v in decoder.items() if int(k) in new_id}
        (dst_hf / name).write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")


def trim_hf_folder(src_hf: Path, dst_hf: Path, keep: int, corpus: Iterable[Path] = (),
                   extra_tokens: Iterable[str] = (), progress: Progress | None = None) -> dict:
    """Trim an HF folder into dst_hf; returns what the manifest records about the trim."""
    from tokenizers import Tokenizer

    say = progress or (lambda _msg: None)
    tok_file = src_hf / "tokenizer.json"
    if not tok_file.is_file():
        raise ModelError(f"cannot trim: {src_hf} has no tokenizer.json")
    tokenizer = Tokenizer.from_file(str(tok_file))
    ranking = ranking_for(tokenizer, corpus, progress)
    say(f"keeping the top {keep} tokens")
    trimmed, old_ids = trim_tokenizer(tokenizer, ranking, keep, extra_tokens)
    say(f"slicing the weights to {len(old_ids)} tokens")
    slice_weights(src_hf, dst_hf, old_ids)
    save_tokenizer(trimmed, src_hf, dst_hf, old_ids)
    return {"keep": keep, "vocab_size": len(old_ids),
            "base_vocab_size": tokenizer.get_vocab_size(with_added_tokens=True),
            "ranking": ranking.source}


def template_tokens() -> set[str]:
    """Every FIM sentinel and stop string a prompt template may send (kept in any trim)."""
    from repolsp.models.prompt import TEMPLATES

    found: set[str] = set()
    for template in TEMPLATES.values():
        found.update(t.strip() for t in (template.fim_prefix, template.fim_suffix,
                                         template.fim_middle, *template.stop) if t.strip())
    return found


def has_weights(hf_dir: Path) -> bool:
    return any(hf_dir.glob("*.safetensors")) or any(hf_dir.glob("pytorch_model*.bin"))


def trim_into(build_dir: Path, src_hf: Path, keep: int, corpus: Iterable[Path] = (),
              quantization: str = "int8", progress: Progress | None = None) -> dict:
    """Fill build_dir/hf and build_dir/ct2 with the trimmed model; returns the trim record."""
    from repolsp.models.convert import convert_hf_to_ct2

    record = trim_hf_folder(src_hf, build_dir / "hf", keep, corpus, template_tokens(), progress)
    (progress or (lambda _msg: None))(f"converting to CTranslate2 {quantization}")
    convert_hf_to_ct2(build_dir / "hf", build_dir / "ct2", quantization)
    return record


def trim_model(store: ModelStore, name: str, keep: int = DEFAULT_KEEP,
               corpus: Iterable[Path] = (), new_name: str | None = None, force: bool = False,
               progress: Progress | None = None) -> ModelEntry:
    """Register `new_name`: model `name` with its vocabulary trimmed to the top `keep` tokens."""
    from repolsp.models.convert import build_model, check_disk_space, offline_env

    if keep < 1:
        raise ModelError(f"--keep must be a positive number of tokens, not {keep}")
    base = store.get(name)
    if not has_weights(base.hf_dir):
        raise ModelError(f"cannot trim {name!r}: {base.hf_dir} holds no weights (an exported "
                         "tuned model keeps only its tokenizer there); trim its base model")
    if not new_name:
        new_name = f"{name}-{keep // 1024}k" if keep % 1024 == 0 else f"{name}-{keep}"
    if store.exists(new_name) and not force:
        raise ModelError(f"model {new_name!r} already exists; pass --force to replace it")
    check_disk_space(store.home, 2 * base.size_bytes())
    offline_env()
    corpus = [Path(p) for p in corpus]
    manifest = replace(base.manifest, name=new_name, source=f"trim:{name}", created="",
                       base_model=name, extra=dict(base.manifest.extra))

    def build(build_dir: Path) -> None:
        record = trim_into(build_dir, base.hf_dir, keep, corpus, base.manifest.quantization,
                           progress)
        manifest.extra["trim"] = {"base": name, **record}

    with store.lock():
        return build_model(store, manifest, build, force=force)
