"""The real import -> CTranslate2 path with a tiny random Llama built by the test."""

from __future__ import annotations

import threading

import pytest
from repolsp.models.convert import import_model
from repolsp.models.store import ModelStore
from repolsp.server.engine.base import GenerationRequest
from repolsp.server.engine.ct2 import CT2Engine

PROMPTS = [
    "def add(a, b):\n    return",
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n",
    "total = sum(item.value for item in items",
]


@pytest.fixture(scope="module")
def tiny_entry(tiny_hf_model, tmp_path_factory):
    store = ModelStore(tmp_path_factory.mktemp("store"))
    return import_model(str(tiny_hf_model), store, name="tiny", quantization="float32")


@pytest.fixture(scope="module")
def engine(tiny_entry):
    return CT2Engine(tiny_entry.ct2_dir, tiny_entry.hf_dir, threads=1, compute_type="float32")


@pytest.mark.parametrize("prompt", PROMPTS, ids=["return", "class", "call"])
def test_ct2_greedy_equals_transformers_greedy(tiny_entry, engine, prompt):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_entry.hf_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_entry.hf_dir, dtype=torch.float32)
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=12, do_sample=False, min_new_tokens=12)
    expected = out[0, ids.shape[1]:].tolist()

    tokens = engine.tokenizer.encode(prompt, add_special_tokens=True).tokens
    assert tokenizer.convert_ids_to_tokens(ids[0].tolist()) == tokens
    steps = engine.generator.generate_batch(
        [tokens], max_length=12, min_length=12, sampling_topk=1, include_prompt_in_result=False
    )
    assert steps[0].sequences_ids[0] == expected


def test_manifest_of_import(tiny_entry):
    assert tiny_entry.manifest.architecture == "llama"
    assert tiny_entry.manifest.quantization == "float32"
    assert (tiny_entry.ct2_dir / "model.bin").is_file()


def test_generate_respects_stop_and_length(engine):
    result = engine.generate(GenerationRequest(PROMPTS[0], max_new_tokens=5, heal=False))
    assert result.new_tokens <= 5
    assert result.finish_reason in ("length", "eos", "stop")
    first = result.text
    stopped = engine.generate(GenerationRequest(PROMPTS[0], max_new_tokens=5, heal=False,
                                                should_stop=lambda text: len(text) > 0))
    assert stopped.finish_reason == "stop" and first.startswith(stopped.text)


def test_cancelled_generation_stops_within_a_step(engine):
    cancel = threading.Event()
    cancel.set()
    result = engine.generate(GenerationRequest(PROMPTS[1], max_new_tokens=50), cancel)
    assert result.finish_reason == "cancelled"
    assert result.new_tokens == 0


def test_static_prefix_cache_gives_same_text_and_hits(engine):
    prompt = PROMPTS[1] + "        self.y ="
    plain = engine.generate(GenerationRequest(prompt, max_new_tokens=8, heal=False))
    static = len(PROMPTS[1])
    first = engine.generate(GenerationRequest(prompt, max_new_tokens=8, heal=False,
                                              static_prefix_chars=static))
    hits = engine.prefix_cache_hits
    second = engine.generate(GenerationRequest(prompt, max_new_tokens=8, heal=False,
                                               static_prefix_chars=static))
    assert plain.text == first.text == second.text
    assert engine.prefix_cache_hits == hits + 1


def test_token_healing_reproduces_removed_text(engine):
    # The prompt ends inside a word: healing backs off one token and constrains the first
    # generated token to start with what was removed; the result never repeats it.
    prompt = "def add(a, b):\n    ret"
    result = engine.generate(GenerationRequest(prompt, max_new_tokens=6, heal=True))
    assert result.healed and prompt.endswith(result.healed)
    unhealed = engine.generate(GenerationRequest(prompt, max_new_tokens=6, heal=False))
    assert unhealed.healed == ""


def test_cache_is_bounded(engine):
    engine.max_cached_prefixes = 2
    base = "x = 1\n" * 5
    for i in range(4):
        engine.generate(GenerationRequest(base + f"y{i} = 2\nz", max_new_tokens=2, heal=False,
                                          static_prefix_chars=len(base) + 7))
        engine.trim_cache()
    assert engine.stats()["prefixCacheEntries"] <= 2
    assert engine.reloads >= 1


def test_stream_yields_the_same_text_and_stops_when_dropped(engine):
    request = GenerationRequest(PROMPTS[1], max_new_tokens=10, heal=False)
    pieces = list(engine.generate_stream(request))
    assert "".join(pieces) == engine.generate(request).text
    stream = engine.generate_stream(GenerationRequest(PROMPTS[1], max_new_tokens=200, heal=False))
    next(stream, None)
    stream.close()  # the consumer stops: generation ends within a step, no thread left behind


def test_interrupted_generation_leaves_a_clean_exit(tiny_entry):
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import threading
        from pathlib import Path
        from repolsp.server.engine.ct2 import CT2Engine
        from repolsp.server.engine.base import GenerationRequest
        engine = CT2Engine(Path({str(tiny_entry.ct2_dir)!r}), Path({str(tiny_entry.hf_dir)!r}), threads=1)
        engine.generate(GenerationRequest("def f(x):", max_new_tokens=50,
                                          should_stop=lambda text: True))
        stream = engine.generate_stream(GenerationRequest("def g(x):", max_new_tokens=50))
        next(stream, None)
        stream.close()
    """)
    proc = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "terminate called" not in proc.stderr


@pytest.mark.parametrize("cpus, threads", [(None, 1), (1, 1), (2, 1), (4, 2), (16, 8), (64, 8)])
def test_default_threads_are_half_the_cpus(monkeypatch, cpus, threads):
    import repolsp.server.engine.ct2 as ct2

    monkeypatch.setattr(ct2.os, "cpu_count", lambda: cpus)
    assert ct2.default_threads() == threads
