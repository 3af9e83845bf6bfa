"""Example prompts through the server's own completion stages (`prepare.prepare_prompt`:
`should_complete` -> `build_context` -> `format_prompt`), so the model is trained on exactly the
prompts it is served."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from repolsp.models.prompt import PromptTemplate, format_prompt, template_for
from repolsp.server.context.document import Document
from repolsp.server.context.types import CompletionMode, PromptContext, Snippet
from repolsp.server.prepare import StableContextCache, prepare_prompt
from repolsp.trainer.instructions import render_instruction

# A model with FIM tokens of its own keeps them; these are the sentinels `lsp-train` teaches
# families without them (models/prompt.py holds the templates).
TUNED_TEMPLATES = {"smollm2": "repolsp-smollm2", "gemma3": "repolsp-gemma3"}


def tuned_template_name(family: str, base_fim_template: str | None) -> str:
    """The FIM template a model of `family` is trained for (its own if it has one)."""
    if base_fim_template:
        return base_fim_template
    return TUNED_TEMPLATES.get(family, "repolsp-smollm2")


def context_to_dict(ctx: PromptContext) -> dict:
    """A PromptContext as plain JSON data (mode as its string value)."""
    data = dataclasses.asdict(ctx)
    data["mode"] = ctx.mode.value
    return data


def context_from_dict(data: dict) -> PromptContext:
    """Inverse of `context_to_dict`."""
    snippets = [Snippet(**s) for s in data.get("snippets", [])]
    return PromptContext(
        path=data["path"], language=data["language"], prefix=data["prefix"], suffix=data["suffix"],
        mode=CompletionMode(data.get("mode", "single-line")), snippets=snippets,
        block_indent=data.get("block_indent"),
    )


@dataclass
class ExampleRenderer:
    """Builds example prompts with one template, token counter and budget, through the server's
    own completion stages (`prepare.prepare_prompt`: should_complete -> build_context, with
    its stable-line layout -> format_prompt)."""

    template: PromptTemplate
    count_tokens: Callable[[str], int]
    max_prompt_tokens: int = 512
    use_workspace: bool = True

    @classmethod
    def for_template(cls, name: str | None, count_tokens: Callable[[str], int],
                     max_prompt_tokens: int = 512, use_workspace: bool = True) -> ExampleRenderer:
        return cls(template_for(name), count_tokens, max_prompt_tokens, use_workspace)

    def __post_init__(self) -> None:
        self._stable = StableContextCache()  # as the server keeps one while the user types

    def server_prompt(self, doc, offset: int, workspace=None, history=None):
        """(decision, Prompt | None, PromptContext) exactly as the server builds them."""
        return prepare_prompt(doc, offset, workspace, self.template, self.count_tokens,
                              self.max_prompt_tokens, self._stable, history)

    def fim_example(self, text: str, start: int, end: int, path: str, mode: str, snapshot,
                    extra_snippets: Sequence[Snippet] = ()) -> tuple[str, dict] | None:
        """(prompt, context dict) for the hole text[start:end] of a file at `path`, or None when
        the server would not complete there.

        The document handed to the server's stages has the middle removed, so neither the
        windows nor the scope header nor definitions can show the answer.
        """

        holed = text[:start] + text[end:]
        doc = Document("file:///" + path.lstrip("/"), holed, path=path)
        workspace = snapshot.index if (self.use_workspace and snapshot is not None) else None
        # The history as of the example's commit (strictly before it): what serving shows then.
        history = getattr(snapshot, "history", None) if self.use_workspace else None
        _decision, prompt, ctx = self.server_prompt(doc, start, workspace, history)
        if prompt is None or ctx is None:
            return None
        # The example's own mode (single line vs block) decides the evaluation's stop rules.
        ctx = dataclasses.replace(ctx, mode=CompletionMode(mode))
        if extra_snippets:
            # The given snippets go first; the builder's copies of the same code are dropped.
            shown = "\n".join(s.text for s in extra_snippets)
            ctx.snippets = [*extra_snippets, *(s for s in ctx.snippets if s.text not in shown)]
            prompt = format_prompt(ctx, self.template, self.count_tokens, self.max_prompt_tokens)
        if prompt.trimmed_prefix_chars and not ctx.prefix[prompt.trimmed_prefix_chars:].strip():
            return None
        return prompt.text, context_to_dict(ctx)

    def instruction_prompt(self, task: str, language: str, path: str, kind: str, name: str,
                           code: str, context: str = "") -> str:
        """An instruction prompt (see `instructions.render_instruction`); tests use the server's
        own test prompt (`render_test_prompt`), so the model learns the format it is sent."""
        if task == "tests" and language == "python":
            from repolsp.server.testgen.prompt import render_test_prompt

            return render_test_prompt(code)
        return render_instruction(task, language, path, kind, name, code, context)


def render_for_template(context: dict, template: PromptTemplate,
                        count_tokens: Callable[[str], int] | None, max_prompt_tokens: int | None) -> str:
    """Re-render a mined example's context with another template (e.g. the base model's)."""
    return format_prompt(context_from_dict(context), template, count_tokens, max_prompt_tokens).text
