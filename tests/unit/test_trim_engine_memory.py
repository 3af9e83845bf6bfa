"""The engine's prompt cache stays within its byte budget (the server's peak RSS depends on it)."""

from __future__ import annotations

import pytest
from repolsp.models.convert import import_model
from repolsp.models.store import ModelStore
from repolsp.server.engine.base import GenerationRequest
from repolsp.server.engine.ct2 import CT2Engine
from repolsp.server.engine.memory import kv_bytes_per_token


@pytest.fixture(scope="module")
def tiny_entry(tiny_hf_model, tmp_path_factory):
    store = ModelStore(tmp_path_factory.mktemp("store"))
    return import_model(str(tiny_hf_model), store, name="tiny", quantization="float32")


def test_kv_bytes_per_token_counts_every_head_of_every_layer(tiny_entry):
    # The tiny Llama: 2 layers, 4 heads of 16 dims, float32 keys and values.
    assert kv_bytes_per_token(tiny_entry.hf_dir) == 2 * 2 * 4 * 16 * 4
    assert kv_bytes_per_token(tiny_entry.hf_dir.parent / "missing") is None


def test_a_prefix_beyond_the_byte_budget_runs_uncached_until_the_idle_reload(tiny_entry):
    per_token = kv_bytes_per_token(tiny_entry.hf_dir)
    # Room for one ~30-token static prefix, not two.
    engine = CT2Engine(tiny_entry.ct2_dir, tiny_entry.hf_dir, threads=1, compute_type="float32",
                       cache_budget_mb=45 * per_token / 2**20)
    bodies = ["x = 1\n" * 6 + "def f(a, b):\n", "y = 2\n" * 6 + "class P:\n"]
    texts = []
    for body in bodies:
        prompt = body + "    return a"
        texts.append(engine.generate(GenerationRequest(
            prompt, max_new_tokens=4, heal=False, static_prefix_chars=len(body))).text)
    assert engine.stats()["prefixCacheEntries"] == 1  # the second did not fit
    assert 0 < engine._cached_bytes() <= engine.cache_budget_bytes
    engine.trim_cache()  # idle: clears the cache so the newer prefix can be cached next time
    assert engine.reloads == 1 and engine.stats()["prefixCacheEntries"] == 0
    body = bodies[1]
    again = engine.generate(GenerationRequest(body + "    return a", max_new_tokens=4, heal=False,
                                              static_prefix_chars=len(body)))
    assert again.text == texts[1] and engine.stats()["prefixCacheEntries"] == 1
    engine.trim_cache()
    assert engine.reloads == 1  # nothing waited for room: no reload
    engine.close()


@pytest.mark.parametrize("prompt", ["def add(a, b):\n    retu", "x = 1\nfor it"], ids=["word", "keyword"])
def test_greedy_healing_in_one_call_equals_the_separate_healing_step(tiny_entry, monkeypatch, prompt):
    engine = CT2Engine(tiny_entry.ct2_dir, tiny_entry.hf_dir, threads=1, compute_type="float32")
    calls = []

    class Counting:  # the generator, counting generate_batch calls by their max_length
        def __init__(self, generator):
            self._generator = generator

        def __getattr__(self, name):
            return getattr(self._generator, name)

        def generate_batch(self, *args, **kwargs):
            calls.append(kwargs.get("max_length"))
            return self._generator.generate_batch(*args, **kwargs)

    monkeypatch.setattr(engine, "generator", Counting(engine.generator))
    request = GenerationRequest(prompt, max_new_tokens=6, heal=True)
    one_call = engine.generate(request)
    used = list(calls)
    # Make the model's own first token never re-produce the removed text: healing takes its step.
    monkeypatch.setattr(engine, "_piece_text", lambda token_id: "\0")
    calls.clear()
    two_steps = engine.generate(request)
    assert one_call.healed and prompt.endswith(one_call.healed)
    assert (one_call.text, one_call.healed, one_call.new_tokens, one_call.finish_reason) == (
        two_steps.text, two_steps.healed, two_steps.new_tokens, two_steps.finish_reason)
    assert used[0] == 6 + 3 and one_call.new_tokens <= 6
    # The failed try, then the healing step(s) of one token, then the generation itself.
    assert calls[0] == 6 + 3 and calls[1:-1] and set(calls[1:-1]) == {1} and calls[-1] == 6
    monkeypatch.undo()
    engine.close()  # now, not when collected in another test (CTranslate2's threads)


def test_the_idle_reload_starts_a_new_generator_without_the_cached_prompts(tiny_entry):
    engine = CT2Engine(tiny_entry.ct2_dir, tiny_entry.hf_dir, threads=1, compute_type="float32",
                       max_cached_prefixes=0)
    body = "x = 1\n" * 6 + "def f(a, b):\n"
    first = engine.generate(GenerationRequest(body + "    return a", max_new_tokens=4, heal=False,
                                              static_prefix_chars=len(body)))
    engine.trim_cache()  # the prefix found no room: reload
    assert engine.reloads == 1 and engine.stats()["prefixCacheEntries"] == 0
    again = engine.generate(GenerationRequest(body + "    return a", max_new_tokens=4, heal=False,
                                              static_prefix_chars=len(body)))
    assert again.text == first.text
    engine.close()
