"""Prompt templates and format_prompt's token cap."""

from __future__ import annotations

import pytest
from repolsp.models.prompt import TEMPLATES, format_prompt, template_for, template_name_for_family
from repolsp.server.context.types import PromptContext, Snippet


def _words(text: str) -> int:
    return len(text.split())


CTX = PromptContext(
    path="pkg/mod.py", language="python",
    prefix="import os\n\ndef f(x):\n    y = x + 1\n    return ", suffix="\n\nprint(f(1))\n",
    snippets=[Snippet("pkg/a.py", "def helper():\n    return 1", "definition"),
              Snippet("pkg/b.py", "def other():\n    pass", "retrieved")],
)


def test_left_to_right_prompt_has_paths_and_ends_at_cursor():
    prompt = format_prompt(CTX, template_for(None))
    assert prompt.text.startswith("# Path: pkg/a.py\n# def helper():")
    assert "# Path: pkg/mod.py\nimport os" in prompt.text
    assert prompt.text.endswith("    return ")
    # Stable across keystrokes: everything before the cursor's line.
    assert prompt.text[: prompt.static_prefix_chars].endswith("y = x + 1\n")


@pytest.mark.parametrize("name", ["starcoder", "qwen2.5-coder", "deepseek-coder", "codellama"], ids=str)
def test_psm_prompt_layout(name):
    template = TEMPLATES[name]
    assert template.order == "psm"
    prompt = format_prompt(CTX, template)
    assert prompt.text.startswith(template.file_sep or template.fim_prefix)
    assert prompt.text.endswith(template.fim_middle)
    before_suffix, after = prompt.text.split(template.fim_suffix)
    assert before_suffix.endswith("    return ") and after.startswith("\n\nprint(f(1))")


def test_qwen_prompt_puts_snippets_as_files_before_the_fim_parts():
    """Qwen2.5-Coder's repository-level layout: each snippet a file after <|file_sep|> and its
    path, then the current file's path, then prefix, suffix and middle."""
    prompt = format_prompt(CTX, TEMPLATES["qwen2.5-coder"])
    assert prompt.text == (
        "<|file_sep|>pkg/a.py\ndef helper():\n    return 1\n"
        "<|file_sep|>pkg/b.py\ndef other():\n    pass\n"
        "<|file_sep|>pkg/mod.py\n<|fim_prefix|>import os\n\ndef f(x):\n    y = x + 1\n    return "
        "<|fim_suffix|>\n\nprint(f(1))\n<|fim_middle|>")
    assert prompt.text[: prompt.static_prefix_chars].endswith("<|file_sep|>pkg/mod.py\n<|fim_prefix|>")
    capped = format_prompt(CTX, TEMPLATES["qwen2.5-coder"], _words, _words(prompt.text) - 1)
    assert capped.dropped_snippets == 1 and "pkg/b.py" not in capped.text


def test_codegemma_prompt():
    prompt = format_prompt(CTX, template_for(template_name_for_family("codegemma")))
    assert prompt.text.startswith("<|fim_prefix|># Path: pkg/a.py\n")
    assert prompt.text.endswith("<|fim_suffix|>\n\nprint(f(1))\n<|fim_middle|>")
    assert "<|file_separator|>" in prompt.template.stop


@pytest.mark.parametrize("name", ["repolsp-smollm2", "repolsp-gemma3"], ids=str)
def test_spm_prompt_layout(name):
    """The FIM that lsp-train teaches: suffix, then context and prefix, which the middle continues."""
    template = TEMPLATES[name]
    prompt = format_prompt(CTX, template)
    assert prompt.text.startswith(template.fim_suffix + "\n\nprint(f(1))")
    suffix_part, prefix_part = prompt.text.split(template.fim_prefix)
    assert prefix_part.startswith("# Path: pkg/a.py\n# def helper():")
    assert prompt.text.endswith("    return ")
    # Stable while typing on the line: suffix, snippets and every earlier line.
    assert prompt.text[: prompt.static_prefix_chars].endswith("y = x + 1\n")
    assert prompt.text[: prompt.static_prefix_chars].startswith(suffix_part)


def test_cap_drops_lowest_priority_snippets_then_prefix_lines():
    full = _words(format_prompt(CTX, template_for(None)).text)
    prompt = format_prompt(CTX, template_for(None), _words, full - 2)
    assert prompt.dropped_snippets == 1 and "pkg/b.py" not in prompt.text and "pkg/a.py" in prompt.text
    tight = format_prompt(CTX, template_for(None), _words, 8)
    assert _words(tight.text) <= 6 and tight.dropped_snippets == 2
    assert tight.text.endswith("    return ")


def test_families():
    assert template_name_for_family("qwen2.5-coder") == "qwen2.5-coder"
    assert template_name_for_family("gemma3") is None
    assert template_for("unknown-template").fim is False
