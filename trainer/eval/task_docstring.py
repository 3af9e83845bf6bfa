"""The docstring task: definitions whose docstring the held-out commits added, asked of the server's docgen."""

from __future__ import annotations

import ast
import asyncio
import random
import time
from collections.abc import Sequence
from pathlib import Path

from repolsp.server.context.document import Document
from repolsp.server.docgen import (
    DocstringEdit,
    GenerationSettings,
    apply_insertions,
    generate_docstring,
)
from repolsp.trainer.eval.cache import CachingEngine, OutputCache
from repolsp.trainer.eval.holes import EvalError, EvalItem
from repolsp.trainer.eval.loading import Completion, LoadedModel
from repolsp.trainer.eval.metrics import python_parses
from repolsp.trainer.eval.repo import added_line_ranges, check_repository, decode_source, read_blobs
from repolsp.trainer.eval.task_history import (
    history_split,
    load_training_split,
    supported_extensions,
)


def docstring_holes(text: str, added: Sequence[tuple[int, int]]) -> list[tuple[str, int, str, int]]:
    """Python definitions whose docstring lies wholly in the `added` 1-based line ranges, with the
    docstring removable as whole lines and code after it.

    Returns (name, header line, docstring text (cleaned), docstring first line, last line),
    lines 1-based."""

    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return []
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        docstring = ast.get_docstring(node)
        if not docstring or len(node.body) < 2:
            continue
        first = node.body[0]
        if first.lineno <= node.lineno or node.body[1].lineno <= first.end_lineno:
            continue  # on the header line, or sharing a line with code
        # Added (or rewritten whole) by the commit: every line of it is an added line.
        if all(any(start <= line <= end for start, end in added)
               for line in range(first.lineno, first.end_lineno + 1)):
            found.append((node.name, node.lineno, docstring, first.lineno, first.end_lineno))
    return found


def remove_lines(text: str, first: int, last: int) -> str:
    """text without 1-based lines first..last."""
    lines = text.split("\n")
    return "\n".join(lines[: first - 1] + lines[last:])


def docstring_items(repo: Path, holes: int, seed: int = 0, max_commits: int | None = None,
                    test_fraction: float = 0.1) -> tuple[list[EvalItem], dict]:
    """Held-out Python definitions whose docstring the held-out commits added; the item's text
    is the file at that commit without the docstring, the cursor on the definition's name."""
    root = check_repository(repo)
    split = history_split(root, test_fraction, max_commits)
    candidates: list[tuple[str, str, tuple]] = []
    files: dict[tuple[str, str], str] = {}
    for commit in split.held_out:
        ranges = {p: r for p, r in added_line_ranges(root, commit).items() if p.endswith(".py")}
        paths = sorted(ranges)
        for path, blob in zip(paths, read_blobs(root, [f"{commit.sha}:{p}" for p in paths])):
            text = decode_source(blob)
            if text is None:
                continue
            files[(commit.sha, path)] = text
            candidates.extend((commit.sha, path, hole) for hole in docstring_holes(text, ranges[path]))
    if not candidates:
        raise EvalError(
            f"nothing to evaluate for docstring: the {len(split.held_out)} held-out commit(s) of "
            f"{root} added no docstring to a Python function or class"
        )
    training = load_training_split(root, split.training_rev, supported_extensions())
    rng = random.Random(seed)
    rng.shuffle(candidates)
    items, dropped = [], 0
    for commit, path, (name, header_line, docstring, first_line, last_line) in candidates:
        if len(items) >= holes:
            break
        if training.contains(docstring):
            dropped += 1
            continue
        text = files[(commit, path)]
        lines = text.split("\n")
        stripped = remove_lines(text, first_line, last_line)
        header = lines[header_line - 1]
        offset = sum(len(line) + 1 for line in lines[: header_line - 1]) + max(
            0, header.find(name))
        items.append(EvalItem("docstring", f"{commit[:10]}:{path}:{header_line}:{name}", path,
                              stripped, offset, docstring, "docstring", commit,
                              original_parses=python_parses(text)))
    facts = {"repo": str(root), "held_out_commits": len(split.held_out),
             "candidates": len(candidates), "dropped_seen_in_training": dropped}
    return sorted(items, key=lambda i: i.id), facts


def generated_docstring(item: EvalItem, new_text: str) -> str:
    """The docstring of item's definition after the server's edit, or "" when absent."""

    try:
        tree = ast.parse(new_text)
    except (SyntaxError, ValueError, RecursionError):
        return ""
    name, line = item.id.rsplit(":", 1)[1], int(item.id.rsplit(":", 2)[1])
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and (
                node.name == name and node.lineno == line):
            return ast.get_docstring(node) or ""
    return ""


def complete_docstring(model: LoadedModel, item: EvalItem, cache: OutputCache,
                       timeout_s: float = 30.0) -> Completion:
    """The server's "Generate docstring" edit for item, through the output cache."""


    engine = CachingEngine(model.engine, cache)
    doc = Document(Path("/eval", item.path).as_uri(), item.text, None, path=item.path)
    settings = GenerationSettings(engine=engine, timeout_s=timeout_s,
                                  max_prompt_tokens=model.max_prompt_tokens)
    started = time.perf_counter()
    result = asyncio.run(generate_docstring(doc, item.offset, settings))
    elapsed_ms = (time.perf_counter() - started) * 1000
    if not isinstance(result, DocstringEdit):
        return Completion("", "docstring", raw=str(result), prepare_ms=elapsed_ms)
    new_text = apply_insertions(item.text, [result.insertion])
    completion = Completion(generated_docstring(item, new_text), "docstring",
                            raw=result.insertion.new_text,
                            prepare_ms=max(0.0, elapsed_ms - engine.engine_ms),
                            engine_ms=engine.engine_ms, cached=engine.hits > 0)
    completion.extra = {"model_text": float(result.from_model),
                        "parse_rate": float(python_parses(new_text))}
    return completion
