"""The prompt data types, re-exported: they live in `repolsp.models.prompt_context`."""

from repolsp.models.prompt_context import CompletionMode, PromptContext, Snippet

__all__ = ["CompletionMode", "PromptContext", "Snippet"]
