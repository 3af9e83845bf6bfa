"""One token-fitting pass against the old two (build_context, then format_prompt's cuts).

    REPOLSP_HOME=.repolsp-home python bench/prompt_fit.py [--positions 300] [--old-rev REV]

Renders prompts with `prepare_prompt` at random positions across this repository's files (the
repository indexed, the real tokenizer of the default model, its 512-token budget) for the
left-to-right template and `repolsp-gemma3` (what lsp-train exports), and again with the old
path: build_context, format_prompt and prepare.py as they were at REV (default: the commit
before the single pass), loaded from git into this process only. Counts byte-identical prompts,
prompts over budget, prompts where the old path's cuts fired, and for differing prompts whether
the new one keeps more or fewer snippet tokens, and whether it keeps every snippet the old kept.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import types
from pathlib import Path

from repolsp.models.prompt import PROMPT_SLACK_TOKENS, line_comment, template_for
from repolsp.server.context.document import Document
from repolsp.server.context.evaluate import index_repository
from repolsp.server.prepare import prepare_prompt
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 512
TEMPLATES = ("left-to-right", "repolsp-gemma3")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def default_old_rev() -> str:
    """The parent of the commit that brought in the single pass (`fixed_parts`), or HEAD before it."""
    first = _git("log", "--format=%H", "--reverse", "-S", "def fixed_parts", "--", "models/prompt.py").split()
    return f"{first[0]}^" if first else "HEAD"


def _load(rev: str, path: str, name: str, package: str, folder: Path) -> types.ModuleType:
    """Module `path` as it was at `rev`, under a private name (relative imports resolve to today's package)."""
    source = folder / f"{name}.py"
    source.write_text(_git("show", f"{rev}:{path}"), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, source)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = package
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def old_prepare(rev: str, folder: Path):
    """prepare_prompt as it was at `rev`, wired to that revision's build_context and format_prompt."""
    prompt = _load(rev, "models/prompt.py", "_old_prompt", "repolsp.models", folder)
    build = _load(rev, "server/context/build.py", "_old_build", "repolsp.server.context", folder)
    prepare = _load(rev, "server/prepare.py", "_old_prepare", "repolsp.server", folder)
    prepare.build_context, prepare.ContextBudget = build.build_context, build.ContextBudget
    prepare.format_prompt = prompt.format_prompt
    return prepare.prepare_prompt


def positions(index, count: int, seed: int = 0):
    """(Document, offset) pairs at random offsets of random indexed files."""
    rng = random.Random(seed)
    keys = sorted(index.files)
    while True:
        key = rng.choice(keys)
        text = (ROOT / key).read_text(encoding="utf-8", errors="replace")
        if text:
            yield Document((ROOT / key).as_uri(), text, path=key), rng.randrange(len(text) + 1)


def kept_snippets(prompt, ctx) -> list:
    """The snippets that made it into the rendered prompt (format_prompt pops from the end)."""
    return list(ctx.snippets[:len(ctx.snippets) - prompt.dropped_snippets])


def compare(template_name: str, index, count, old, n: int, line_start_only: bool = False) -> dict:
    template = template_for(template_name)
    figures = {"positions": 0, "identical": 0, "new_over_budget": 0, "old_over_budget": 0,
               "old_cuts": 0, "new_cuts": 0, "new_more_snippet_tokens": 0, "new_fewer_snippet_tokens": 0,
               "same_snippet_tokens": 0, "new_lacks_an_old_snippet": 0, "new_lacks_old_snippet_lines": 0, "new_shorter_prefix": 0,
               "old_max_tokens": 0, "new_max_tokens": 0,
               # of the prompts where new lacks lines of a snippet the old one showed:
               "of_those_mid_line": 0, "of_those_old_over_at_step_end": 0,
               "of_the_rest_new_more_snippet_tokens": 0}
    deltas, prefix_deltas = [], []  # new minus old: prompt tokens (all), prefix tokens (differing)
    for doc, offset in positions(index, n):
        if figures["positions"] >= n:
            break
        if line_start_only and doc.text[doc.text.rfind("\n", 0, offset) + 1:offset]:
            continue
        _, new_prompt, new_ctx = prepare_prompt(doc, offset, index, template, count, BUDGET)
        _, old_prompt, old_ctx = old(doc, offset, index, template, count, BUDGET)
        if new_prompt is None or old_prompt is None:
            assert new_prompt is None and old_prompt is None  # should_complete is unchanged
            continue
        figures["positions"] += 1
        new_tokens, old_tokens = count(new_prompt.text), count(old_prompt.text)
        figures["new_max_tokens"] = max(figures["new_max_tokens"], new_tokens)
        figures["old_max_tokens"] = max(figures["old_max_tokens"], old_tokens)
        figures["new_over_budget"] += new_tokens > BUDGET - PROMPT_SLACK_TOKENS
        figures["old_over_budget"] += old_tokens > BUDGET - PROMPT_SLACK_TOKENS
        figures["old_cuts"] += bool(old_prompt.dropped_snippets or old_prompt.trimmed_prefix_chars)
        figures["new_cuts"] += bool(new_prompt.dropped_snippets or new_prompt.trimmed_prefix_chars)
        deltas.append(new_tokens - old_tokens)
        if new_prompt.text == old_prompt.text:
            figures["identical"] += 1
            continue
        new_kept, old_kept = kept_snippets(new_prompt, new_ctx), kept_snippets(old_prompt, old_ctx)
        new_snip = sum(count(s.text) for s in new_kept)
        old_snip = sum(count(s.text) for s in old_kept)
        key = ("new_more_snippet_tokens" if new_snip > old_snip else
               "new_fewer_snippet_tokens" if new_snip < old_snip else "same_snippet_tokens")
        figures[key] += 1
        figures["new_lacks_an_old_snippet"] += not {s.text for s in old_kept} <= {s.text for s in new_kept}
        # Content, not snippet identity: a scope header the new prefix shows is not lost.
        shown = set(new_prompt.text.splitlines())
        figures_lost = any(
            f"{mark} {line}" not in shown and line not in shown
            for s in old_kept for line in s.text.splitlines() if line.strip()
            for mark in [line_comment(doc.language)])
        figures["new_lacks_old_snippet_lines"] += figures_lost
        new_prefix = len(new_ctx.prefix) - new_prompt.trimmed_prefix_chars
        old_prefix = len(old_ctx.prefix) - old_prompt.trimmed_prefix_chars
        figures["new_shorter_prefix"] += new_prefix < old_prefix
        prefix_deltas.append(count(new_ctx.prefix[new_prompt.trimmed_prefix_chars:])
                             - count(old_ctx.prefix[old_prompt.trimmed_prefix_chars:]))
        if figures_lost:
            # Mid-line, the context is built for the line's head with a 64-token step reserved
            # for the typed part (prepare.stable_context); the old prompt fitted only while the
            # line stays short when typing on to the step's end would push it over budget.
            typed = count(doc.text[doc.text.rfind("\n", 0, offset) + 1:offset])
            step_end = old_tokens + (64 * (1 + (typed + 8) // 64) - 9 - typed) if typed else old_tokens
            figures["of_those_old_over_at_step_end"] += step_end > BUDGET - PROMPT_SLACK_TOKENS
            figures["of_those_mid_line"] += bool(typed)
            if step_end <= BUDGET - PROMPT_SLACK_TOKENS:  # else: a higher-priority snippet won the room
                figures["of_the_rest_new_more_snippet_tokens"] += new_snip > old_snip
    figures["prompt_tokens_new_minus_old_median"] = statistics.median(deltas)
    figures["prefix_tokens_new_minus_old_median_of_differing"] = statistics.median(prefix_deltas or [0])
    figures["prefix_tokens_new_minus_old_min_of_differing"] = min(prefix_deltas or [0])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=300)
    parser.add_argument("--old-rev", default=None)
    parser.add_argument("--model", default="gemma3-270m")
    args = parser.parse_args()
    home = Path(os.environ.get("REPOLSP_HOME", ROOT / ".repolsp-home"))
    tokenizer = Tokenizer.from_file(str(home / "models" / args.model / "hf" / "tokenizer.json"))

    def count(text: str) -> int:  # as the CT2 engine counts
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    rev = args.old_rev or default_old_rev()
    with tempfile.TemporaryDirectory(prefix="repolsp-prompt-fit-") as scratch:
        old = old_prepare(rev, Path(scratch))
        index, _ = index_repository(ROOT, Path(scratch) / "index")
        report = {"old_rev": _git("rev-parse", "--short", rev).strip(), "model": args.model, "budget": BUDGET}
        for name in TEMPLATES:
            report[name] = compare(name, index, count, old, args.positions)
            print(name, json.dumps(report[name]), file=sys.stderr, flush=True)
        index.close()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
