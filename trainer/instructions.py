"""Instruction prompts ("Write a docstring for …", "Write pytest tests for …", "Complete this
function …") in one plain-text format any base model can learn, so the tuned model follows the
server's generate-docstring / generate-tests requests.

The server's features should render these requests with `render_instruction` too, so that the
model is served exactly the format it was trained on.
"""

from __future__ import annotations

from repolsp.models.prompt import line_comment

TASKS = {
    "docstring": "Write a docstring for the {kind} `{name}`.",
    "tests": "Write pytest tests for the {kind} `{name}`.",
    "complete": "Complete the body of the {kind} `{name}`.",
}


def instruction_text(task: str, kind: str, name: str) -> str:
    """The one-line instruction for `task` ("docstring", "tests", "complete")."""
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
