"""`kill -9` in each stage of `lsp-train` after mining: while writing a checkpoint, while
exporting (converting the merged model), while registering it, and between registering and
switching the served model. The store and the served model stay usable and a rerun completes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from repolsp.models.store import ModelStore
from trainer_fixtures import register_tiny_model

DRIVER = Path(__file__).resolve().parents[1] / "unit" / "kill9_driver.py"


@pytest.fixture(scope="module")
def served_store(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("kill9-train-store")
    register_tiny_model(home)
    return home


def _drive(home: Path, stage: str, run_dir: Path, repo: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DRIVER), "train", str(home), stage, str(run_dir), str(repo), *extra],
                          check=False, capture_output=True, text=True, timeout=600)


def _usable(store: ModelStore) -> str:
    """The served model's name, after checking it loads and generates."""
    import ctranslate2

    name = store.default_name()
    generator = ctranslate2.Generator(str(store.get(name).ct2_dir), device="cpu", intra_threads=1)
    assert generator.generate_batch([["<s>"]], max_length=2, include_prompt_in_result=False)[0].sequences_ids
    return name


@pytest.mark.parametrize("stage", ["checkpoint", "export", "register", "switch"])
def test_kill9_in_a_training_stage_keeps_the_served_model_and_a_rerun_completes(stage, served_store, history_repo,
                                                                                tmp_path):
    home, run_dir = tmp_path / "home", tmp_path / "run"
    shutil.copytree(served_store, home)
    repo, _ = history_repo
    killed = _drive(home, stage, run_dir, repo)
    assert killed.returncode == -9, killed.stderr[-3000:]
    store = ModelStore(home)
    names = [e.name for e in store.list()]
    assert _usable(store) == "tiny-smollm2"  # still serving the old model
    if stage == "switch":  # registered whole before the kill, just not served
        assert len(names) == 2 and store.get(next(n for n in names if n != "tiny-smollm2")).ct2_dir.is_dir()
    else:
        assert names == ["tiny-smollm2"]
    if stage == "checkpoint":
        assert (run_dir / "checkpoint.pt").is_file()  # the previous, whole checkpoint

    rerun = _drive(home, "none", run_dir, repo, *(["--resume"] if stage == "checkpoint" else []))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    tuned = _usable(store)
    assert tuned != "tiny-smollm2" and store.get(tuned).manifest.base_model == "tiny-smollm2"
    assert [p.name for p in store.models_dir.iterdir() if p.name.startswith(".")] == []
