"""Re-ranking single-line completions against repository lines that start with the typed head:
candidates, the engine's scores (fake and the real CTranslate2 one on a tiny model), the choice."""

import math

import pytest
from repolsp.models.prompt import template_for
from repolsp.server.context.build import approx_token_count
from repolsp.server.context.document import Document
from repolsp.server.context.history import HistoryIndex
from repolsp.server.engine.fake import FakeEngine
from repolsp.server.prepare import prepare_prompt
from repolsp.server.rerank import candidate_lines, rerank_line

from tests.trainer.trainer_fixtures import make_history

SOURCE = (
    "def first(record):\n"
    "    return normalise_record(record, strict=True)\n\n\n"
    "def second(record):\n"
    "    return norm<|>\n"
)


def _doc(source: str = SOURCE, path: str = "pkg/m.py") -> tuple[Document, int]:
    offset = source.index("<|>")
    return Document(f"file:///w/{path}", source.replace("<|>", ""), path=path), offset


def _prepared(doc, offset, history=None):
    return prepare_prompt(doc, offset, None, template_for(None), approx_token_count, 512, None, history)


def test_candidates_are_lines_starting_with_the_typed_head():
    doc, offset = _doc()
    _, _, ctx = _prepared(doc, offset)
    assert candidate_lines(doc, offset, ctx) == ["return normalise_record(record, strict=True)"]


@pytest.mark.parametrize("typed", ["", "    ", "    r"], ids=["empty", "indent", "one-char"])
def test_too_short_a_head_gives_no_candidates(typed):
    doc, offset = _doc(SOURCE.replace("    return norm<|>", typed + "<|>"))
    _, _, ctx = _prepared(doc, offset)
    assert candidate_lines(doc, offset, ctx) == []


def test_history_lines_are_candidates(tmp_path):
    make_history(tmp_path / "r", [("one", {"pkg/old.py": "x = compute_total(items, rate=0.5)\n"}),
                                   ("two", {"pkg/old.py": "x = 1\n"})])
    history = HistoryIndex.from_git(tmp_path / "r")
    doc, offset = _doc("def f(items):\n    x = compute_t<|>\n")
    _, _, ctx = _prepared(doc, offset)
    assert candidate_lines(doc, offset, ctx, history=history) == ["x = compute_total(items, rate=0.5)"]


def test_a_repository_line_the_model_scores_higher_is_served():
    doc, offset = _doc()
    _, prompt, ctx = _prepared(doc, offset)
    # The fake scores a rest by the share of its words the prompt shows: the file's own line wins.
    result = rerank_line(FakeEngine(), prompt.text, doc, offset, ctx, "al_value(x)")
    assert result.changed and result.text == "alise_record(record, strict=True)"
    assert result.scores[1] > result.scores[0]


def test_greedy_stays_when_it_scores_higher_or_no_candidate_differs():
    doc, offset = _doc()
    _, prompt, ctx = _prepared(doc, offset)
    same = rerank_line(FakeEngine(), prompt.text, doc, offset, ctx, "alise_record(record, strict=True)")
    assert not same.changed and same.candidates == [] and same.text == "alise_record(record, strict=True)"
    kept = rerank_line(FakeEngine(), prompt.text, doc, offset, ctx, "alise_record(record, strict=True)",
                       margin=5.0)
    assert kept.text == "alise_record(record, strict=True)"
    worse = rerank_line(FakeEngine(), prompt.text, doc, offset, ctx, "al_value(x)", margin=5.0)
    assert not worse.changed and worse.text == "al_value(x)"


def test_an_engine_without_score_or_failing_serves_greedy():
    doc, offset = _doc()
    _, prompt, ctx = _prepared(doc, offset)

    class Failing(FakeEngine):
        def score(self, prompt, continuations, max_context_tokens=256):
            raise RuntimeError("boom")

    class NoScore:
        pass

    assert rerank_line(Failing(), prompt.text, doc, offset, ctx, "al_value(x)").text == "al_value(x)"
    assert rerank_line(NoScore(), prompt.text, doc, offset, ctx, "al_value(x)").text == "al_value(x)"


@pytest.fixture(scope="module")
def tiny_engine(tiny_hf_model, tmp_path_factory):
    from repolsp.models.convert import import_model
    from repolsp.models.store import ModelStore
    from repolsp.server.engine.ct2 import CT2Engine

    store = ModelStore(tmp_path_factory.mktemp("store"))
    entry = import_model(str(tiny_hf_model), store, name="tiny", quantization="float32")
    return CT2Engine(entry.ct2_dir, entry.hf_dir, model_name="tiny", threads=1)


def test_ct2_score_is_the_mean_log_probability_of_the_continuation(tiny_engine):
    import numpy as np

    prompt = "def add(a, b):\n    return a"
    continuations = [" + b", " - b + c * d", " * b"]
    scores = tiny_engine.score(prompt, continuations)
    assert len(scores) == 3 and all(math.isfinite(s) and s < 0 for s in scores)
    # Against one full forward pass of the same model: log-softmax at each continuation token.
    for continuation, score in zip(continuations, scores):
        full = tiny_engine.tokenizer.encode(prompt + continuation, add_special_tokens=True)
        head = tiny_engine.tokenizer.encode(prompt, add_special_tokens=True)
        common = next(i for i, (x, y) in enumerate(zip(head.ids + [-1], full.ids)) if x != y)
        logits = np.asarray(tiny_engine.generator.forward_batch([full.tokens]), dtype=np.float32)[0]
        logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(-1, keepdims=True)
        expected = np.mean([logp[i - 1, full.ids[i]] for i in range(common, len(full.ids))])
        assert score == pytest.approx(float(expected), abs=1e-3)


@pytest.mark.parametrize("rerank", [True, False], ids=["rerank-on", "rerank-off"])
async def test_the_service_serves_the_reranked_line_only_when_switched_on(rerank):
    from repolsp.models.prompt import LEFT_TO_RIGHT
    from repolsp.server.completion import CompletionService
    from repolsp.server.config import Config

    engine = FakeEngine("al_value(x)\n")
    service = CompletionService(Config(rerank=rerank, debounce_ms=0), lambda: engine,
                                lambda: (LEFT_TO_RIGHT, None))
    try:
        doc, offset = _doc()
        suggestion = await service.complete(doc, offset, debounce=False)
    finally:
        service.shutdown()
    assert suggestion.text == ("alise_record(record, strict=True)" if rerank else "al_value(x)")
