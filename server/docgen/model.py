"""Asking the model: the left-to-right docstring prompt (`docstring_prompt`), the sections
prompt, running the engine off the event loop, and `fill_from_model`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from dataclasses import dataclass

from repolsp.server.context.document import Document
from repolsp.server.context.symbols import (
    DefinitionInfo,
)
from repolsp.server.docgen.fill import DocFill, harvest_sections, humanize, summary_from_model
from repolsp.server.docgen.plan import DocPlan
from repolsp.server.docgen.render import header_colon
from repolsp.server.engine.base import Engine, GenerationRequest

log = logging.getLogger(__name__)


# Prompt room for the definition itself; longer bodies are cut (the header matters most).
MAX_SOURCE_CHARS = 3000


MAX_CONTEXT_CHARS = 1500




def _definition_source(doc: Document, info: DefinitionInfo) -> str:
    """The definition's lines as written (from the start of its first line), cut to a budget."""
    line_start = doc.text.rfind("\n", 0, info.start) + 1
    source = doc.text[line_start:info.end].replace("\r\n", "\n")
    if len(source) > MAX_SOURCE_CHARS:
        source = source[:MAX_SOURCE_CHARS].rsplit("\n", 1)[0]
    return source


def _context_before(doc: Document, info: DefinitionInfo, max_chars: int = MAX_CONTEXT_CHARS) -> str:
    line_start = doc.text.rfind("\n", 0, info.start) + 1
    before = doc.text[:line_start].replace("\r\n", "\n")
    if len(before) > max_chars:
        before = before[-max_chars:]
        before = before[before.find("\n") + 1:]
    return before


def docstring_prompt(doc: Document, info: DefinitionInfo) -> tuple[str, int]:
    """(prompt, static prefix chars): the file before the definition, the definition itself, then
    the definition's header again with an opened docstring, so a left-to-right model that has just
    read the body writes the summary line."""
    head = _context_before(doc, info) + _definition_source(doc, info).rstrip() + "\n\n\n"
    if doc.language == "python":
        line_start = doc.text.rfind("\n", 0, info.start) + 1
        header = doc.text[line_start:header_colon(doc, info)].replace("\r\n", "\n")
        return f'{head}{header}\n{info.body_indent}"""', len(head)
    indent = info.indent
    opener = {"go": f"// {info.name}", "rust": "///"}.get(doc.language, "/**\n" + indent + " *")
    if doc.language in ("c", "cpp"):
        opener += " @brief"
    return f"{head}{indent}{opener}", len(head)


def sections_prompt(base_prompt: str, plan: DocPlan, summary: str, indent: str) -> str | None:
    """Continue the docstring after the summary with the first parameter's label opened, so the
    model writes that parameter's description (and usually the others after it)."""
    if not plan.params:
        return None
    first = plan.params[0]
    if plan.language == "python":
        head = f"{base_prompt}{summary}\n\n{indent}"
        is_class = plan.kind == "class"
        if plan.style == "sphinx":
            return f"{head}{':ivar' if is_class else ':param'} {first.name.lstrip('*')}:"
        if plan.style == "numpy":
            label = f"{first.name} : {first.type}" if first.type else first.name
            title = "Attributes" if is_class else "Parameters"
            return f"{head}{title}\n{indent}----------\n{indent}{label}\n{indent}    "
        label = f"{first.name} ({first.type})" if first.type and not first.name.startswith("*") else first.name
        return f"{head}{'Attributes' if is_class else 'Args'}:\n{indent}    {label}:"
    if plan.language in ("javascript", "typescript", "tsx", "java", "c", "cpp"):
        star = base_prompt[base_prompt.rfind("\n") + 1:]  # "<indent> *" (and " @brief")
        star = star.replace(" @brief", "")
        dash = " -" if plan.language in ("javascript", "typescript", "tsx") else ""
        return f"{base_prompt} {summary}\n{star}\n{star} @param {first.name}{dash}"
    return None


def copied_from(phrase: str, context: str, run_words: int = 6) -> bool:
    """True when ``phrase`` (a model's summary) repeats a run of ``run_words`` words of prose
    already in ``context`` (the module docstring, a neighbour's docstring)."""
    words = re.findall(r"[a-z0-9]+", phrase.lower())
    if len(words) < run_words:
        return False
    haystack = " " + " ".join(re.findall(r"[a-z0-9]+", context.lower())) + " "
    return any(f" {' '.join(words[i:i + run_words])} " in haystack for i in range(len(words) - run_words + 1))


def summary_seed(plan: DocPlan) -> str:
    """First word given to the model for brace languages: measured on Gemma 3 270M, an opened
    ``/**`` or ``// Name`` alone mostly gets code back, while "Returns" gets a sentence."""
    if plan.language == "python" or not plan.returns:
        return ""
    return "returns" if plan.language == "go" else "Returns"


async def run_model(
    engine: Engine,
    executor,
    request: GenerationRequest,
    cancel: threading.Event,
    timeout_s: float,
) -> str | None:
    """Generate in the engine executor (never on the event loop); None on failure or timeout."""
    loop = asyncio.get_running_loop()
    timer = loop.call_later(timeout_s, cancel.set)
    try:
        result = await loop.run_in_executor(executor, engine.generate, request, cancel)
    except asyncio.CancelledError:
        cancel.set()
        raise
    except Exception as exc:  # noqa: BLE001 - the model failing degrades to the template
        log.warning("generation failed: %s", exc)
        return None
    finally:
        timer.cancel()
    if result.finish_reason == "cancelled":
        return None
    return result.text


@dataclass
class GenerationSettings:
    """How generation is run for code actions (from the server's config and engine state)."""

    engine: Engine | None
    executor: object = None
    timeout_s: float = 10.0
    max_prompt_tokens: int | None = None
    summary_tokens: int = 40
    sections_tokens: int = 96


def _stop_at_line_end(text: str) -> bool:
    return "\n" in text.lstrip("\n ")


async def fill_from_model(doc: Document, info: DefinitionInfo, plan: DocPlan,
                          settings: GenerationSettings, cancel: threading.Event) -> DocFill:
    """Descriptions from the model: the summary, then (one more call) parameter/return text."""
    fill = DocFill()
    if settings.engine is None:
        return fill
    prompt, static = docstring_prompt(doc, info)
    summary = None
    # A second try with a seeded verb when the open prompt got code back (and there is a result).
    retry = None
    if plan.language == "python":
        retry = "Return" if plan.returns else ("A" if plan.kind == "class" else None)
    for seed in dict.fromkeys((summary_seed(plan), retry)):
        if seed is None or cancel.is_set():
            continue
        request = GenerationRequest(
            prompt=f"{prompt}{seed}" if plan.language == "python" and seed else (
                f"{prompt} {seed}" if seed else prompt),
            max_new_tokens=settings.summary_tokens, stop=('"""', "*/", "\n\n"),
            should_stop=_stop_at_line_end, static_prefix_chars=static,
            max_prompt_tokens=settings.max_prompt_tokens,
        )
        raw = await run_model(settings.engine, settings.executor, request, cancel, settings.timeout_s)
        if seed and raw is not None:
            raw = f"{seed}{raw}" if plan.language == "python" else f" {seed}{raw}"
        summary = summary_from_model(raw or "", plan)
        if summary is not None and copied_from(summary, prompt[:static]):
            summary = None  # small models copy the module docstring or a neighbour's
        if summary is not None:
            break
        log.info("docstring: model summary rejected: %r", (raw or "")[:120])
    if summary is not None:
        fill.summary, fill.from_model = summary, True
    indent = info.body_indent if doc.language == "python" else info.indent
    # Without a usable summary the sections can still be described: the prompt then carries a
    # neutral one made from the name (the docstring itself keeps its TODO summary).
    prompt_summary = summary or f"{humanize(plan.name).capitalize()}."
    follow = sections_prompt(prompt, plan, prompt_summary, indent)
    if follow is None or cancel.is_set():
        return fill
    request = GenerationRequest(
        prompt=follow, max_new_tokens=settings.sections_tokens, stop=('"""', "*/"),
        static_prefix_chars=static, max_prompt_tokens=settings.max_prompt_tokens,
    )
    raw = await run_model(settings.engine, settings.executor, request, cancel, settings.timeout_s)
    harvested = harvest_sections(raw or "", plan)
    fill.params, fill.returns, fill.raises = harvested.params, harvested.returns, harvested.raises
    fill.from_model = fill.from_model or bool(fill.params or fill.returns or fill.raises)
    return fill
