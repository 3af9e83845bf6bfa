"""Turn model sources (GGUF file, HF folder, HF id) into a stored CTranslate2 model.

Heavy libraries (torch, transformers, ctranslate2) are imported inside the functions so that
`lsp-models list` and a no-op `pull` answer at once.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from repolsp.models.errors import ModelError, UnsupportedModelError
from repolsp.models.store import Manifest, ModelEntry, ModelStore

# CTranslate2 compute types a user may ask for when importing.
QUANTIZATIONS = ("int8", "int8_float32", "int8_float16", "int8_bfloat16", "float32", "float16", "bfloat16")

Progress = Callable[[str], None]  # called with a short stage description


def offline_env() -> None:
    """Forbid hub downloads: models come from local files only."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def gguf_to_hf(gguf_path: Path, hf_dir: Path, dtype: str = "bfloat16") -> str:
    """Dequantize a GGUF file through transformers + gguf and save it as an HF folder.

    Returns the transformers `model_type`.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, filename = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
        model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=filename, dtype=getattr(torch, dtype)
        )
    except (ValueError, KeyError, OSError) as exc:
        raise UnsupportedModelError(f"cannot read {gguf_path} as a GGUF model: {exc}") from exc
    # transformers refuses to save a GGUF-loaded model while it still carries its quantizer.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    return model.config.model_type


def convert_hf_to_ct2(hf_dir: Path, out_dir: Path, quantization: str = "int8") -> None:
    """Convert a transformers folder to a CTranslate2 model folder (out_dir must not exist)."""
    import ctranslate2.converters

    if quantization not in QUANTIZATIONS:
        raise ModelError(f"unknown quantization {quantization!r}; choose one of {QUANTIZATIONS}")
    try:
        converter = ctranslate2.converters.TransformersConverter(str(hf_dir), low_cpu_mem_usage=True)
        converter.convert(str(out_dir), quantization=quantization, force=False)
    except ValueError as exc:
        if "No conversion is registered" in str(exc) or "not supported" in str(exc):
            raise UnsupportedModelError(f"CTranslate2 cannot serve this architecture: {exc}") from exc
        raise


def model_type_of(hf_dir: Path) -> str:
    """The `model_type` of a transformers folder."""
    import json

    try:
        return json.loads((hf_dir / "config.json").read_text())["model_type"]
    except (OSError, ValueError, KeyError) as exc:
        raise UnsupportedModelError(f"{hf_dir} is not a transformers model folder: {exc}") from exc


def guess_family(model_type: str, name: str) -> str:
    """Prompt family from architecture and name (decides the FIM template)."""
    lowered = name.lower()
    for needle, family in (
        ("qwen2.5-coder", "qwen2.5-coder"),
        ("qwen2.5_coder", "qwen2.5-coder"),
        ("deepseek-coder", "deepseek-coder"),
        ("starcoder", "starcoder"),
        ("codellama", "codellama"),
        ("codegemma", "codegemma"),
        ("code-llama", "codellama"),
        ("smollm", "smollm2"),
    ):
        if needle in lowered:
            return family
    if model_type.startswith("gemma3"):
        return "gemma3"
    if model_type in ("starcoder2", "gpt_bigcode"):
        return "starcoder"
    return model_type


def check_disk_space(folder: Path, needed_bytes: int) -> None:
    """Fail early, with a clear message, when the store's disk cannot hold the build."""
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise ModelError(
            f"not enough disk space in {folder}: {free / 1e9:.1f} GB free, "
            f"about {needed_bytes / 1e9:.1f} GB needed; free some space or set REPOLSP_HOME"
        )


def build_model(
    store: ModelStore,
    manifest: Manifest,
    build: Callable[[Path], None],
    force: bool = False,
) -> ModelEntry:
    """Run `build(build_dir)` (which must fill hf/ and ct2/) and register the result atomically.

    Any exception, Ctrl-C included, removes the build folder: the store is unchanged.
    """
    with store.building(manifest.name) as build_dir:
        try:
            build(build_dir)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise ModelError(
                    f"disk full while building {manifest.name!r} in {store.home}; "
                    "nothing was registered; free some space and try again"
                ) from exc
            raise
        return store.register_from_dir(build_dir, manifest, force=force)


def import_model(
    source: str,
    store: ModelStore,
    name: str | None = None,
    quantization: str = "int8",
    force: bool = False,
    progress: Progress | None = None,
) -> ModelEntry:
    """Import a local GGUF file, a local HF folder or (online only) an HF model id."""
    say = progress or (lambda _msg: None)
    path = Path(source).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        kind, default_name = "gguf", path.stem
    elif path.is_dir():
        if not (path / "config.json").is_file():
            raise UnsupportedModelError(f"{path} is not a model folder (no config.json)")
        kind, default_name = "hf", path.name
    elif path.exists():
        raise UnsupportedModelError(f"{path} is not a model: expected a .gguf file or an HF folder")
    elif "/" in source and not source.startswith((".", "/", "~")):
        kind, default_name = "hub", source.split("/")[-1]
    else:
        raise ModelError(f"{source}: no such file or folder")
    name = name or default_name.replace(" ", "-")
    if store.exists(name) and not force:
        raise ModelError(f"model {name!r} already exists; pass --force to replace it")
    if kind != "hub":
        size = path.stat().st_size if kind == "gguf" else sum(
            p.stat().st_size for p in path.rglob("*") if p.is_file()
        )
        check_disk_space(store.home, 4 * size + 200_000_000)

    def build(build_dir: Path) -> None:
        hf_dir = build_dir / "hf"
        if kind == "gguf":
            say("dequantizing GGUF")
            offline_env()
            model_type = gguf_to_hf(path, hf_dir)
        elif kind == "hf":
            say("copying HF folder")
            shutil.copytree(path, hf_dir)
            model_type = model_type_of(hf_dir)
        else:
            say(f"downloading {source} from the model hub")
            from repolsp.models import hub

            done = hub.download(hub.adhoc_model(name, source), hub.downloads_dir(store.home, name))
            hub.link_files(done, hf_dir)
            manifest.source = f"hub:{source}@{done.commit}"
            model_type = model_type_of(hf_dir)
        manifest.architecture = model_type
        # The name counts too: a folder imported as `qwen2.5-coder-0.5b` (what the offline
        # message of a hub pull suggests) gets that family's FIM template.
        manifest.family = guess_family(model_type, f"{name} {source}")
        from repolsp.models.prompt import template_name_for_family

        manifest.fim_template = template_name_for_family(manifest.family)
        say(f"converting to CTranslate2 {quantization}")
        convert_hf_to_ct2(hf_dir, build_dir / "ct2", quantization)

    manifest = Manifest(
        name=name,
        source=str(path.resolve()) if kind != "hub" else f"hub:{source}",
        architecture="",
        quantization=quantization,
        sha256=sha256_file(path) if kind == "gguf" else "",
    )
    if kind == "hub":
        from repolsp.models import hub

        hub.check_online(hub.adhoc_model(name, source))
    entry = build_model(store, manifest, build, force=force)
    if kind == "hub":
        shutil.rmtree(hub.downloads_dir(store.home, name), ignore_errors=True)
    return entry
