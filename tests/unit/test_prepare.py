"""prepare_prompt: stages 1-3 as a free function, without an engine, equal to the server's."""

from __future__ import annotations

import pytest
from repolsp.models.prompt import template_for
from repolsp.server.completion import CompletionService
from repolsp.server.config import Config
from repolsp.server.context.document import Document
from repolsp.server.engine.fake import FakeEngine
from repolsp.server.prepare import StableContextCache, prepare_prompt, prompt_budget_tokens

BODY = "".join(f"def helper_{i}(value):\n    return value + {i}\n\n\n" for i in range(40))
TEXT = BODY + "def area(width, height):\n    result = width * height\n    return result\n"


def words(text: str) -> int:
    return len(text.split())


@pytest.mark.parametrize("cursor", [TEXT.index("width * height"), TEXT.index("    result")],
                         ids=["mid-line", "line-start"])
def test_prepare_prompt_is_what_the_service_sends(cursor):
    engine = FakeEngine()
    template = template_for("repolsp-smollm2")
    doc = Document("file:///pkg/geo.py", TEXT, path="pkg/geo.py")
    service = CompletionService(Config(context_budget_tokens=200), lambda: engine,
                                lambda: (template, 200))
    served = service.prepare(doc, cursor)
    decision, prompt, ctx = prepare_prompt(doc, cursor, None, template, engine.count_tokens, 200)
    assert prompt is not None and prompt.text == served[1].text
    assert decision.mode is served[0].mode and ctx.prefix == served[2].prefix
    assert engine.count_tokens(prompt.text) <= 200
    service.shutdown()


def test_no_completion_gives_no_prompt():
    doc = Document("file:///a.py", "result = compute(1)\n", path="a.py")  # inside a word
    offset = doc.text.index("pute")
    decision, prompt, ctx = prepare_prompt(doc, offset, None, template_for(None), words, 100)
    assert prompt is None and ctx is None and decision.mode.value == "none"


def test_the_stable_cache_changes_speed_not_the_prompt():
    """Typing through a line with one cache gives the prompts a fresh cache gives."""
    template = template_for("repolsp-smollm2")
    cache = StableContextCache()
    line = "    result = width * height"
    for typed in range(5, len(line) + 1, 4):
        text = BODY + "def area(width, height):\n" + line[:typed] + "\n    return result\n"
        doc = Document("file:///pkg/geo.py", text, path="pkg/geo.py")
        cursor = text.index("\n    return result")
        kept = prepare_prompt(doc, cursor, None, template, words, 120, cache)[1]
        fresh = prepare_prompt(doc, cursor, None, template, words, 120)[1]
        assert kept is not None and kept.text == fresh.text
        assert kept.text.rstrip().endswith(line[:typed].strip())
    assert cache.key is not None


@pytest.mark.parametrize("configured,cap,expected", [(1024, 512, 512), (300, 512, 300), (1024, None, 1024),
                                                     (1024, 0, 1024)],
                         ids=["model-caps", "config-lower", "no-cap", "zero-is-no-cap"])
def test_prompt_budget_is_the_configured_one_capped_by_the_model(configured, cap, expected):
    assert prompt_budget_tokens(configured, cap) == expected
