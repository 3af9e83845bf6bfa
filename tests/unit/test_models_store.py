"""Model store, import through the real CTranslate2 converter, and pull's no-op path."""

from __future__ import annotations

import json
import time

import pytest
from repolsp.models import convert as convert_mod
from repolsp.models.convert import import_model
from repolsp.models.errors import ModelError, ModelNotFoundError
from repolsp.models.pull import KNOWN_MODELS, pull
from repolsp.models.store import Manifest, ModelStore


def _fake_build(store: ModelStore, name: str) -> None:
    """Register a minimal model folder (no real weights) for store tests."""
    build = store.new_build_dir(name)
    (build / "ct2").mkdir()
    (build / "ct2" / "model.bin").write_bytes(b"x")
    (build / "hf").mkdir()
    store.register_from_dir(build, Manifest(name=name, source="test", architecture="llama",
                                            quantization="int8", fim_template="starcoder",
                                            extra={"k": [1, 2]}))


def test_manifest_round_trip(tmp_path):
    store = ModelStore(tmp_path)
    _fake_build(store, "m1")
    entry = ModelStore(tmp_path).get("m1")
    assert entry.manifest.architecture == "llama"
    assert entry.manifest.fim_template == "starcoder"
    assert entry.manifest.extra == {"k": [1, 2]}
    assert entry.manifest.created  # stamped at registration
    raw = json.loads((entry.dir / "manifest.json").read_text())
    assert raw["source"] == "test"


def test_use_remove_and_default(tmp_path):
    store = ModelStore(tmp_path)
    _fake_build(store, "a")
    _fake_build(store, "b")
    assert store.default_name() is None
    store.use("b")
    assert store.default_name() == "b"
    with pytest.raises(ModelNotFoundError, match="lsp-models pull"):
        store.use("nope")
    store.remove("b")
    assert store.default_name() is None
    assert [e.name for e in store.list()] == ["a"]
    with pytest.raises(ModelNotFoundError):
        store.remove("b")


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "x" * 200], ids=str)
def test_invalid_names_rejected(tmp_path, name):
    with pytest.raises(ModelError):
        ModelStore(tmp_path).get(name)


def test_corrupt_manifest_is_a_clear_error(tmp_path):
    store = ModelStore(tmp_path)
    _fake_build(store, "m")
    (store.models_dir / "m" / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match="corrupt manifest"):
        store.get("m")
    assert store.list() == []


def test_incomplete_model_is_reported(tmp_path):
    store = ModelStore(tmp_path)
    _fake_build(store, "m")
    (store.models_dir / "m" / "ct2" / "model.bin").unlink()
    with pytest.raises(ModelError, match="incomplete"):
        store.get("m")


def test_interrupted_conversion_leaves_store_unchanged(tmp_path, tiny_hf_model, monkeypatch):
    store = ModelStore(tmp_path)
    _fake_build(store, "keep")
    store.use("keep")

    def explode(*args, **kwargs):
        raise KeyboardInterrupt  # as if Ctrl-C hit mid-conversion

    monkeypatch.setattr(convert_mod, "convert_hf_to_ct2", explode)
    with pytest.raises(KeyboardInterrupt):
        import_model(str(tiny_hf_model), store, name="tiny")
    assert [e.name for e in store.list()] == ["keep"]
    assert store.default_name() == "keep"
    leftovers = [p.name for p in store.models_dir.iterdir() if p.name != "keep"]
    assert leftovers == []


def test_pull_of_installed_model_is_a_fast_no_op(tmp_path, monkeypatch):
    store = ModelStore(tmp_path)
    _fake_build(store, "smollm2-135m")
    monkeypatch.setattr("repolsp.models.pull.download_wheels",
                        lambda *a, **k: pytest.fail("must not download"))
    started = time.perf_counter()
    entry, built = pull("smollm2-135m", store)
    assert not built and entry.name == "smollm2-135m"
    assert time.perf_counter() - started < 2.0
    assert store.default_name() == "smollm2-135m"


def test_pull_unknown_name_says_how_to_import(tmp_path):
    with pytest.raises(ModelNotFoundError, match="lsp-models import"):
        pull("no-such-model", ModelStore(tmp_path))


def test_known_models_default_is_capped():
    assert KNOWN_MODELS["gemma3-270m"].max_prompt_tokens == 512


def test_import_rejects_non_models(tmp_path):
    store = ModelStore(tmp_path / "home")
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.txt").write_text("hi")
    with pytest.raises(ModelError, match="no config.json"):
        import_model(str(tmp_path / "folder"), store)
    with pytest.raises(ModelError, match="not a model"):
        import_model(str(tmp_path / "file.txt"), store)
    with pytest.raises(ModelError, match="no such file"):
        import_model(str(tmp_path / "missing"), store)


def test_builds_of_dead_processes_are_cleaned(tmp_path):
    store = ModelStore(tmp_path)
    store.models_dir.mkdir(parents=True)
    dead = store.models_dir / ".build-m-999999999-abc"  # no such pid
    dead.mkdir()
    mine = store.new_build_dir("m")  # cleans on the way
    assert not dead.exists() and mine.exists()
    assert store.clean_stale_builds() == 0  # our own live build is kept


@pytest.mark.parametrize(
    "argv, message",
    [(["info", "nope"], "not installed"), (["pull", "nope"], "unknown model"),
     (["use", "nope"], "lsp-models pull"), (["import", "/no/such/file.gguf"], "no such file")],
    ids=["info", "pull", "use", "import"],
)
def test_cli_errors_are_one_line_and_non_zero(argv, message, capsys):
    from repolsp.models.cli import main

    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("lsp-models: error:") and message in err and "\n" not in err


def test_cli_list_on_empty_store(capsys):
    from repolsp.models.cli import main

    assert main(["list"]) == 0
    assert "lsp-models pull" in capsys.readouterr().out
