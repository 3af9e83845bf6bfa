"""Instruction prompts ("Write pytest tests for …", "Complete this function …") in one plain-text
format any base model can learn.

Docstring requests are not rendered here: the miner renders them with the server's own
`docgen.docstring_prompt` (trainer/mine_file.py `docstring_request`), so the tuned model is
trained on exactly the prompt "Generate docstring" sends.
"""

from __future__ import annotations

from repolsp.models.prompt import line_comment

TASKS = {
    "tests": "Write pytest tests for the {kind} `{name}`.",
    "complete": "Complete the body of the {kind} `{name}`.",
}


def instruction_text(task: str, kind: str, name: str) -> str:
    """The one-line instruction for `task` ("tests", "complete")."""
    return TASKS[task].format(kind=kind, name=name)


def render_instruction(
    task: str, language: str, path: str, kind: str, name: str, code: str, context: str = ""
) -> str:
    """The prompt for an instruction example; the model's answer follows the last line.

    `context` (other code the answer needs, e.g. the function under test) is shown first.
    """
    mark = line_comment(language)
    parts = [f"{mark} Path: {path}\n"]
    if context:
        parts.append(context.rstrip("\n") + "\n")
    parts.append(f"{mark} Task: {instruction_text(task, kind, name)}\n")
    parts.append(code.rstrip("\n") + "\n")
    parts.append(f"{mark} Answer:\n")
    return "".join(parts)
