"""What a prompt is made of (`PromptContext`, `Snippet`, `CompletionMode`).

Shared by the context builder, the prompt formatter, the server and the trainer; it lives in
`models` beside `prompt.format_prompt` so that `models` imports nothing of `server`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class CompletionMode(enum.Enum):
    """What kind of inline completion fits at a cursor position."""

    NONE = "none"
    SINGLE_LINE = "single-line"
    MULTI_LINE = "multi-line"


@dataclass(frozen=True)
class Snippet:
    """A piece of context from outside the cursor window (another file, or a far part of this one)."""

    path: str  # workspace-relative path, '/'-separated
    text: str
    kind: str  # "scope" | "imports" | "definition" | "retrieved"
    score: float = 0.0


@dataclass
class PromptContext:
    """Everything a prompt is made of, already cut to the token budget.

    `prefix` + `suffix` is a window of the current file around the cursor, cut at line
    boundaries except at the cursor itself. `snippets` are in priority order (most important
    first); `format_prompt` renders them and never re-orders them.
    """

    path: str  # workspace-relative path of the current file, '/'-separated
    language: str  # "python", "javascript", ... or "text"
    prefix: str
    suffix: str
    mode: CompletionMode = CompletionMode.SINGLE_LINE
    snippets: list[Snippet] = field(default_factory=list)
    # Indentation (in columns) that a line must be deeper than to stay inside the block being
    # completed; None when the block end is unknown. Used by the server's stop rules.
    block_indent: int | None = None
