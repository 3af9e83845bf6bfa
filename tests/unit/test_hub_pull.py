"""Code models from the hub, end to end against a loopback hub (tests/hub_server.py): a tiny
Qwen2 with Qwen2.5-Coder's FIM tokens, a tiny Llama with DeepSeek-Coder's and a tiny Gemma with
CodeGemma's, pulled by name with
`lsp-models pull` through huggingface_hub, converted, compared with transformers, served with
their family's FIM template, and LoRA-trained; an interrupted or damaged download changes nothing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from repolsp.models.store import ModelStore

from tests.hub_models import build_tiny_codegemma, build_tiny_deepseek, build_tiny_qwen
from tests.hub_server import LoopbackHub


@dataclass(frozen=True)
class Family:
    name: str  # the known name the test points at its tiny repository
    repo_id: str
    build: object
    architecture: str
    template: str
    prefix: str
    suffix: str
    middle: str


FAMILIES = {
    "qwen": Family("qwen2.5-coder-0.5b", "tiny-org/tiny-qwen2.5-coder", build_tiny_qwen, "qwen2",
                   "qwen2.5-coder", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
    "deepseek": Family("deepseek-coder-1.3b", "tiny-org/tiny-deepseek-coder", build_tiny_deepseek,
                       "llama", "deepseek-coder", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),
    "codegemma": Family("codegemma-2b", "tiny-org/tiny-codegemma", build_tiny_codegemma, "gemma",
                        "codegemma", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub-repos")
    with LoopbackHub() as server:
        for key, family in FAMILIES.items():
            server.add(family.repo_id, family.build(root / key))
        yield server


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Path:
    """Known names pointed at the tiny repositories (as $REPOLSP_HUB_REGISTRY)."""
    path = tmp_path_factory.mktemp("registry") / "hub.json"
    path.write_text(json.dumps({f.name: {"repo_id": f.repo_id, "size_bytes": 1_000_000}
                                for f in FAMILIES.values()}))
    return path


def pull_env(hub: LoopbackHub, registry: Path, home: Path, hf_home: Path) -> dict:
    env = {**os.environ, "REPOLSP_HOME": str(home), "HF_ENDPOINT": hub.endpoint,
           "HF_HOME": str(hf_home), "REPOLSP_HUB_REGISTRY": str(registry),
           "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN"):
        env.pop(var, None)
    return env


def lsp_models(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "repolsp.models.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module", params=list(FAMILIES))
def pulled(request, hub, registry, tmp_path_factory):
    """(family, store home, stdout) after `lsp-models pull NAME` in a fresh store."""
    family = FAMILIES[request.param]
    home = tmp_path_factory.mktemp(f"home-{request.param}")
    before = len(hub.requests)
    proc = lsp_models(pull_env(hub, registry, home, tmp_path_factory.mktemp("hf")), "pull", family.name)
    assert proc.returncode == 0, proc.stderr[-3000:]
    routes = [path for _, path, _ in hub.requests[before:]]
    assert any(p.startswith(f"/api/models/{family.repo_id}/revision/main") for p in routes)
    assert f"/{family.repo_id}/resolve/{hub.repos[family.repo_id].commit}/model.safetensors" in routes
    return family, home, proc.stdout


def test_pull_by_name_registers_the_family_and_its_fim_template(pulled, hub):
    family, home, stdout = pulled
    store = ModelStore(home)
    entry = store.get(family.name)
    commit = hub.repos[family.repo_id].commit
    assert f"pulled {family.name}" in stdout and store.default_name() == family.name
    assert entry.manifest.source == f"hub:{family.repo_id}@{commit}"
    assert entry.manifest.architecture == family.architecture
    assert entry.manifest.fim_template == family.template and entry.manifest.quantization == "int8"
    assert (entry.ct2_dir / "model.bin").is_file() and (entry.hf_dir / "model.safetensors").is_file()
    assert not (home / ".downloads" / family.name).exists()  # the links hold the data


def test_ctranslate2_greedy_equals_transformers_greedy_on_a_fim_prompt(pulled, tmp_path):
    import ctranslate2
    import torch
    from repolsp.models.convert import convert_hf_to_ct2
    from repolsp.server.engine.ct2 import CT2Engine
    from transformers import AutoModelForCausalLM, AutoTokenizer

    family, home, _ = pulled
    entry = ModelStore(home).get(family.name)
    # Parity is checked in float32 (int8 rounds differently from transformers' float32).
    convert_hf_to_ct2(entry.hf_dir, tmp_path / "ct2", "float32")
    prompt = f"{family.prefix}def add(a, b):\n    return {family.suffix}\n\nclass Point:\n{family.middle}"
    tokenizer = AutoTokenizer.from_pretrained(entry.hf_dir)
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    tokens = tokenizer.convert_ids_to_tokens(ids[0].tolist())
    for sentinel in (family.prefix, family.suffix, family.middle):
        assert sentinel in tokens  # one special token each, never split into bytes
    served = CT2Engine(entry.ct2_dir, entry.hf_dir, threads=1)
    assert served.tokenizer.encode(prompt, add_special_tokens=True).tokens == tokens
    model = AutoModelForCausalLM.from_pretrained(entry.hf_dir, dtype=torch.float32)
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=10, min_new_tokens=10, do_sample=False)
    generator = ctranslate2.Generator(str(tmp_path / "ct2"), device="cpu", compute_type="float32")
    steps = generator.generate_batch([tokens], max_length=10, min_length=10, sampling_topk=1,
                                     include_prompt_in_result=False)
    assert steps[0].sequences_ids[0] == out[0, ids.shape[1]:].tolist()


# Records every prompt the real server hands the real CTranslate2 engine.
RECORDER = '''
import json, os
from repolsp.server.engine import ct2 as _ct2
_generate = _ct2.CT2Engine.generate
def _recorded(self, request, *args, **kwargs):
    with open(os.environ["REPOLSP_TEST_PROMPTS"], "a", encoding="utf-8") as out:
        out.write(json.dumps(request.prompt) + "\\n")
    return _generate(self, request, *args, **kwargs)
_ct2.CT2Engine.generate = _recorded
'''


def test_served_by_the_real_server_with_the_family_fim_template(pulled, tmp_path):
    from tests.lsp.test_real_engines import _session

    family, home, _ = pulled
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(RECORDER)
    prompts = tmp_path / "prompts.jsonl"
    env = {**os.environ, "REPOLSP_HOME": str(home), "REPOLSP_TEST_PROMPTS": str(prompts),
           "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")])}
    text = "def add(a, b):\n    total = a + b\n    return \n\n\ndef sub(a, b):\n    return a - b\n"
    _items, status, messages = asyncio.run(_session(env, text, 2, 11))
    assert status["state"] == "ready" and status["model"] == family.name, (status, messages)
    assert status["template"] == family.template
    sent = [json.loads(line) for line in prompts.read_text(encoding="utf-8").splitlines()]
    assert sent, "the server sent no prompt to the engine"
    head, fim = sent[-1].split(family.prefix)
    if family.template == "qwen2.5-coder":  # other files, then this file's path, as Qwen's layout
        assert head.startswith("<|file_sep|>") and head.endswith("<|file_sep|>demo_probe.py\n")
    else:
        assert head == ""
    assert fim.endswith(family.middle)
    before, after = fim[:-len(family.middle)].split(family.suffix)
    assert before.endswith("    total = a + b\n    return ")
    assert after.startswith("\n\n\ndef sub(a, b):\n    return a - b")


def test_lora_trains_with_the_model_own_fim_tokens(pulled, tmp_path, monkeypatch, capsys):
    from repolsp.trainer import cli as train_cli
    from repolsp.trainer.train_config import TARGET_MODULES
    from transformers import AutoTokenizer

    from tests.trainer.trainer_fixtures import make_history

    family, home, _ = pulled
    repo = tmp_path / "repo"
    make_history(repo)
    monkeypatch.setenv("REPOLSP_HOME", str(home))
    run_dir = tmp_path / "run"
    code = train_cli.main([str(repo), "--model", family.name, "--max-steps", "2", "--epochs", "1",
                           "--batch-size", "2", "--seq-len", "192", "--max-prompt-tokens", "128",
                           "--snapshot-lines", "20", "--threads", "1", "--no-eval", "--no-switch",
                           "-q", "--run-dir", str(run_dir), "--name", f"{family.name}-tuned"])
    assert code == 0, capsys.readouterr().err
    adapter = run_dir / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert set(config["target_modules"]) == set(TARGET_MODULES[family.architecture])
    training = json.loads((adapter / "training.json").read_text())
    assert training["fim_template"] == family.template
    base = ModelStore(home).get(family.name)
    assert len(AutoTokenizer.from_pretrained(adapter)) == len(AutoTokenizer.from_pretrained(base.hf_dir))
    assert not (adapter / "token_rows.pt").exists()  # its pretrained sentinels stay as they are
    tuned = ModelStore(home).get(f"{family.name}-tuned")
    assert tuned.manifest.fim_template == family.template
    assert tuned.manifest.base_model == family.name and ModelStore(home).default_name() == family.name
