"""The real default model (pulled once into the clone): prompt cap and CTranslate2 == transformers."""

from __future__ import annotations

from pathlib import Path

import pytest
from repolsp.models.convert import convert_hf_to_ct2
from repolsp.models.prompt import template_for
from repolsp.models.pull import DEFAULT_MODEL
from repolsp.models.store import ModelStore
from repolsp.server.completion import CompletionService
from repolsp.server.config import Config
from repolsp.server.context.document import Document
from repolsp.server.engine.ct2 import CT2Engine

pytestmark = pytest.mark.real_model
LONG_FILE = Path(__file__).resolve().parents[2] / "server" / "completion.py"


@pytest.fixture(scope="module")
def default_entry(real_store):
    return ModelStore(real_store).get(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def engine(default_entry):
    return CT2Engine(default_entry.ct2_dir, default_entry.hf_dir, threads=2)


def test_served_gemma_prompt_never_exceeds_the_cap(default_entry, engine):
    cap = default_entry.manifest.max_prompt_tokens
    assert cap == 512
    service = CompletionService(
        Config(context_budget_tokens=4096), engine_getter=lambda: engine,
        template_getter=lambda: (template_for(default_entry.manifest.fim_template), cap))
    text = LONG_FILE.read_text()
    doc = Document(LONG_FILE.as_uri(), text, "python")
    checked = 0
    for offset in range(len(text) // 3, len(text), len(text) // 12):
        offset = text.find("\n", offset) + 1
        if offset <= 0:
            continue
        _decision, prompt, _ = service.prepare(doc, offset)
        if prompt is None:
            continue
        tokens = engine.tokenizer.encode(prompt.text, add_special_tokens=True).ids
        assert len(tokens) <= cap
        checked += 1
    assert checked >= 3


def test_ctranslate2_agrees_with_transformers_at_the_cap(default_entry, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(default_entry.hf_dir)
    ids = tokenizer(LONG_FILE.read_text()).input_ids[:500]  # BOS + 499 tokens, under the cap
    model = AutoModelForCausalLM.from_pretrained(default_entry.hf_dir, dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=6, do_sample=False)
    expected = out[0, len(ids):].tolist()
    del model

    ct2_dir = tmp_path / "ct2-f32"
    convert_hf_to_ct2(default_entry.hf_dir, ct2_dir, "float32")
    import ctranslate2

    generator = ctranslate2.Generator(str(ct2_dir), compute_type="float32", intra_threads=2)
    tokens = tokenizer.convert_ids_to_tokens(ids)
    result = generator.generate_batch([tokens], max_length=6, sampling_topk=1,
                                      include_prompt_in_result=False)
    assert result[0].sequences_ids[0][:4] == expected[:4]


@pytest.mark.parametrize(
    "prompt, starts",
    [("def add(a, b):\n    ret", "urn"), ("import os\n\nfiles = os.listd", "ir("),
     ("def add(a, b):\n    return a +", " b")],
    ids=["mid-keyword", "mid-identifier", "after-operator"],
)
def test_token_healing_continues_the_word(engine, prompt, starts):
    from repolsp.server.engine.base import GenerationRequest

    result = engine.generate(GenerationRequest(prompt, max_new_tokens=4, heal=True))
    assert result.healed and prompt.endswith(result.healed)
    assert result.text.startswith(starts), result.text


def test_fim_sentinel_at_the_prompt_end_is_never_healed(engine):
    """Gemma's tokenizer does not flag <unusedN> as special; a prompt that ends with one (a
    model's own FIM format, e.g. StarCoder-style <fim_middle>) must reach the model whole.
    Indentation is still healed."""
    from repolsp.server.engine.base import GenerationRequest

    prompt = "<unused0>def add(a, b):\n    <unused1>\n\nprint(add(1, 2))\n<unused2>"
    result = engine.generate(GenerationRequest(prompt, max_new_tokens=3, heal=True))
    assert result.healed == ""
    indented = engine.generate(GenerationRequest("def add(a, b):\n    ", max_new_tokens=3, heal=True))
    assert indented.healed == "    "
