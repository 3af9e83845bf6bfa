"""Prompt templates per model family, and `format_prompt`: PromptContext -> prompt text.

The server, the trainer and the evaluator all render prompts here, so a model is trained on
exactly the format it is served.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from repolsp.models.prompt_context import PromptContext, Snippet


@dataclass(frozen=True)
class PromptTemplate:
    """How a model family wants its completion prompt."""

    name: str
    fim: bool = False  # fill-in-the-middle (prefix and suffix) or left-to-right (prefix only)
    fim_prefix: str = ""
    fim_suffix: str = ""
    fim_middle: str = ""
    stop: tuple[str, ...] = ()  # strings that end a completion (beyond the tokenizer's EOS)
    # Order of the FIM parts: "psm" = prefix, suffix, middle (StarCoder style); "spm" = suffix,
    # then prefix, which the middle continues directly (no middle sentinel).
    order: str = "psm"
    # Repository-level context as the model was pretrained on it (Qwen2.5-Coder): each snippet
    # as a file after this separator and its path, then the current file's path, then the FIM
    # parts. Empty: snippets are commented-out sections inside the prefix (StarCoder style).
    file_sep: str = ""


LEFT_TO_RIGHT = PromptTemplate(name="left-to-right")

TEMPLATES: dict[str, PromptTemplate] = {
    t.name: t
    for t in (
        LEFT_TO_RIGHT,
        PromptTemplate(
            "starcoder", True, "<fim_prefix>", "<fim_suffix>", "<fim_middle>",
            stop=("<|endoftext|>", "<file_sep>"),
        ),
        PromptTemplate(
            "qwen2.5-coder", True, "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
            stop=("<|endoftext|>", "<|file_sep|>", "<|fim_pad|>"), file_sep="<|file_sep|>",
        ),
        PromptTemplate(
            "deepseek-coder", True, "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>",
            stop=("<｜end▁of▁sentence｜>",),
        ),
        PromptTemplate("codellama", True, "<PRE> ", " <SUF>", " <MID>", stop=("<EOT>",)),
        PromptTemplate(
            "codegemma", True, "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
            stop=("<|file_separator|>", "<eos>"),
        ),
        # FIM that `lsp-train` teaches models without FIM tokens, in suffix-prefix-middle order:
        # the middle continues the prefix as in left-to-right completion, which such a model
        # already does, so a short run only has to teach it to use the suffix and to stop.
        # (Prefix-suffix-middle, measured on attrs after a 30-minute CPU run of Gemma 3 270M:
        # held-out loss fell 2.79 -> 1.85 but exact match 6% -> 1%; the model had not learned
        # to continue the prefix across the suffix and repeated frequent lines. A "near-suffix"
        # layout, the next 8 lines between the sentinels right before the current line, did the
        # same on the same run: single in-hunk lines 7% -> 1%; the model copied nearby lines.)
        PromptTemplate(
            "repolsp-smollm2", True, "<fim_prefix>", "<fim_suffix>",
            stop=("<|endoftext|>", "<|im_end|>"), order="spm",
        ),
        # Gemma 3's vocabulary has thousands of <unusedN> tokens: sentinels without resizing.
        PromptTemplate("repolsp-gemma3", True, "<unused0>", "<unused1>", stop=("<eos>",), order="spm"),
    )
}

# Family -> FIM template of the *base* model (None: the base model has no FIM tokens).
_FAMILY_TEMPLATES: dict[str, str | None] = {
    "starcoder": "starcoder",
    "qwen2.5-coder": "qwen2.5-coder",
    "deepseek-coder": "deepseek-coder",
    "codellama": "codellama",
    "codegemma": "codegemma",
    "gemma3": None,
    "smollm2": None,
}

_LINE_COMMENT = {
    "python": "#", "ruby": "#", "shell": "#", "text": "#", "yaml": "#", "toml": "#",
    "javascript": "//", "typescript": "//", "tsx": "//", "go": "//", "rust": "//",
    "java": "//", "c": "//", "cpp": "//", "csharp": "//", "kotlin": "//", "swift": "//",
    "lua": "--", "sql": "--", "haskell": "--",
}


def template_name_for_family(family: str) -> str | None:
    """The FIM template a base model of `family` supports, or None."""
    return _FAMILY_TEMPLATES.get(family)


def template_for(fim_template: str | None) -> PromptTemplate:
    """A template by name (a manifest's `fim_template`); None means left-to-right."""
    if not fim_template:
        return LEFT_TO_RIGHT
    return TEMPLATES.get(fim_template, LEFT_TO_RIGHT)


def line_comment(language: str) -> str:
    """The line-comment marker used to embed other files' code in a prompt."""
    return _LINE_COMMENT.get(language, "#")


@dataclass
class Prompt:
    """A rendered prompt. `static_prefix_chars` marks the part stable across keystrokes."""

    text: str
    template: PromptTemplate
    static_prefix_chars: int = 0
    dropped_snippets: int = 0
    trimmed_prefix_chars: int = 0


def render_snippet(snippet: Snippet, language: str) -> str:
    """A snippet as a commented-out file section with its path (StarCoder-style context)."""
    mark = line_comment(language)
    body = "\n".join(f"{mark} {line}" if line else mark for line in snippet.text.splitlines())
    return f"{mark} Path: {snippet.path}\n{body}\n"


def _render(ctx: PromptContext, template: PromptTemplate, snippets: list[Snippet], prefix: str):
    if template.file_sep:
        return _render_files(ctx, template, snippets, prefix)
    mark = line_comment(ctx.language)
    head = "".join(render_snippet(s, ctx.language) for s in snippets)
    head += f"{mark} Path: {ctx.path}\n" if ctx.path else ""
    if template.fim and template.order == "spm":
        start = template.fim_suffix + ctx.suffix + template.fim_prefix + head
        # Stable while the user types on the current line: all but the line's typed part.
        return start + prefix, len(start) + prefix.rfind("\n") + 1
    if template.fim:
        start = template.fim_prefix + head
        text = start + prefix + template.fim_suffix + ctx.suffix + template.fim_middle
        # The suffix follows the prefix, so only the head is stable while typing.
        return text, len(start)
    body_start = len(head)
    text = head + prefix
    # Stable while the user types on the current line: everything before it.
    line_start = prefix.rfind("\n") + 1
    return text, body_start + line_start


def _render_files(ctx: PromptContext, template: PromptTemplate, snippets: list[Snippet], prefix: str):
    sep = template.file_sep
    head = "".join(f"{sep}{s.path}\n" + s.text.rstrip("\n") + "\n" for s in snippets)
    head += f"{sep}{ctx.path}\n" if ctx.path else ""
    start = head + template.fim_prefix
    text = start + prefix + template.fim_suffix + ctx.suffix + template.fim_middle
    # The suffix follows the prefix, so only the files and the path are stable while typing.
    return text, len(start)


def format_prompt(
    ctx: PromptContext,
    template: PromptTemplate,
    count_tokens: Callable[[str], int] | None = None,
    max_prompt_tokens: int | None = None,
) -> Prompt:
    """Render ctx in the template; when a token cap is given, drop the lowest-priority
    snippets first and then whole lines from the start of the prefix until it fits."""
    snippets = list(ctx.snippets)
    prefix = ctx.prefix
    text, static = _render(ctx, template, snippets, prefix)
    dropped = trimmed = 0
    if count_tokens is not None and max_prompt_tokens:
        # Keep a little room for BOS and the tokens that healing re-produces.
        limit = max_prompt_tokens - 2
        while count_tokens(text) > limit:
            if snippets:
                snippets.pop()
                dropped += 1
            else:
                cut = prefix.find("\n")
                if cut < 0 or cut + 1 >= len(prefix):
                    # One long line: cut characters (rare; minified code).
                    cut = max(1, len(prefix) // 4) - 1
                trimmed += cut + 1
                prefix = prefix[cut + 1:]
                if not prefix:
                    break
            text, static = _render(ctx, template, snippets, prefix)
    return Prompt(text, template, static, dropped, trimmed)
