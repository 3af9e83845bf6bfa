"""Mine training examples from git history: commits -> changed definitions -> prompts.

Walks the current branch oldest first. For each commit and each changed file in a supported
language, tree-sitter finds the functions, methods and classes the commit added or changed, and
each example's prompt is built with the server's own context builder and prompt format from the
repository as it was *before* that commit (other files) plus the file being edited with the
answer cut out — so no prompt contains code from the future.

Kinds: ``fim`` (added/changed span as the middle), ``docstring`` (a docstring the history
added), ``test`` (a test the history added, its tested function as context), ``instruction``
(task-style pairs), ``accepted`` (completions the user accepted in the editor), ``snapshot``
(single lines cut out of the code as it was after the last training commit, in the files the
history touched most: the history shows what changed, the snapshot the code around it today).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from repolsp.trainer import gitlog
from repolsp.trainer.errors import NoExamplesError, TrainerError
from repolsp.trainer.filters import content_excluded, dedup_key, is_test_path, path_excluded
from repolsp.trainer.prompts import ExampleRenderer
from repolsp.trainer.secrets import contains_secret, is_env_file
from repolsp.trainer.snapshot import Snapshot

log = logging.getLogger(__name__)

KINDS = ("fim", "docstring", "test", "instruction", "accepted", "snapshot")
SPLITS = ("train", "valid", "test")


@dataclass
class MineConfig:
    """What to mine and how to split it."""

    max_commits: int | None = None  # newest N commits of the branch
    since: str | None = None  # `git log --since` date
    test_fraction: float = 0.1  # newest commits -> test
    valid_fraction: float | None = None  # the slice before test -> valid (default: test_fraction)
    kinds: tuple[str, ...] = KINDS
    max_examples_per_file: int = 12  # per commit; big commits must not dominate
    max_middle_lines: int = 24
    min_line_chars: int = 6  # single-line targets shorter than this teach nothing
    events_path: Path | None = None  # the server's completion events (accepted/rejected)
    snapshot_lines: int = 1500  # `snapshot` holes in the code at the last training commit (0: none)


@dataclass
class Example:
    """One training example; `prompt` + `completion` is what the model learns (loss on completion)."""

    commit: str
    time: int
    path: str
    language: str
    kind: str
    prompt: str
    completion: str
    split: str = "train"
    mode: str = "multi-line"  # single-line | multi-line (fim/accepted), or the instruction task
    context: dict | None = None  # the PromptContext, so other templates can re-render it

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Example:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class MineStats:
    """Counts a user and the benchmark want to see."""

    commits: int = 0
    commits_with_examples: int = 0
    files_mined: int = 0
    files_skipped: Counter = field(default_factory=Counter)  # reason -> count
    examples_by_kind: Counter = field(default_factory=Counter)
    examples_by_split: Counter = field(default_factory=Counter)
    secrets_dropped: int = 0
    secret_kinds: Counter = field(default_factory=Counter)
    duplicates_dropped: int = 0
    accepted_after_split: int = 0  # accepted completions newer than the valid/test cut (unused)
    negatives: int = 0
    elapsed_s: float = 0.0

    def summary(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.examples_by_kind.items())) or "none"
        splits = ", ".join(f"{s} {self.examples_by_split.get(s, 0)}" for s in SPLITS)
        skipped = sum(self.files_skipped.values())
        rate = self.commits / self.elapsed_s if self.elapsed_s > 0 else 0.0
        return (
            f"{self.commits} commits ({rate:.1f}/s), {self.files_mined} files mined, {skipped} skipped; "
            f"examples: {kinds}; splits: {splits}; dropped: {self.secrets_dropped} with secrets, "
            f"{self.duplicates_dropped} duplicates"
        )


@dataclass
class MineResult:
    examples: list[Example]
    negatives: list[dict]
    stats: MineStats


@dataclass
class _Candidate:
    """An example before secret/dedup filtering and split assignment."""

    commit_index: int
    example: Example


def split_for_commits(n_commits: int, test_fraction: float, valid_fraction: float) -> list[str]:
    """Split names for commits 0..n-1 (oldest first): newest `test_fraction` -> test, the slice
    before it -> valid, the rest -> train. With fewer than 3 commits everything is train."""
    if n_commits < 3:
        return ["train"] * n_commits
    n_test = max(1, round(n_commits * test_fraction)) if test_fraction > 0 else 0
    n_valid = max(1, round(n_commits * valid_fraction)) if valid_fraction > 0 else 0
    # Keep at least one training commit.
    while n_test + n_valid >= n_commits and (n_valid > 0 or n_test > 1):
        if n_valid > 0:
            n_valid -= 1
        else:
            n_test -= 1
    n_train = n_commits - n_test - n_valid
    return ["train"] * n_train + ["valid"] * n_valid + ["test"] * n_test


def _pick(items: list, key: str) -> int:
    """A deterministic index into `items` from a string (same history -> same examples)."""
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % len(items)


def mine_repository(
    repo: Path,
    renderer: ExampleRenderer,
    config: MineConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> MineResult:
    """Mine `repo`'s history into examples (see the module docstring)."""
    from repolsp.server.context.languages import TREE_LANGUAGES, language_for

    config = config or MineConfig()
    started = time.monotonic()
    repo = gitlog.repo_root(Path(repo))
    commits = gitlog.list_commits(repo, config.max_commits, config.since)
    stats = MineStats(commits=len(commits))
    candidates: list[_Candidate] = []
    any_supported = False
    with gitlog.BlobReader(repo) as blobs:
        snapshot = Snapshot(blobs)
        if commits and commits[0].parent:
            snapshot.load_tree(gitlog.tree_files(repo, commits[0].parent))
        for index, commit in enumerate(commits):
            changes = gitlog.changed_files(repo, commit)
            new_texts: dict[str, str] = {}
            for change in changes:
                if change.status == "D" or change.new_blob is None:
                    continue
                reason = path_excluded(change.path)
                if reason is None and is_env_file(change.path):
                    reason = "env-file"
                language = language_for(None, change.path)
                if reason is None and language not in TREE_LANGUAGES:
                    reason = "unsupported-language"
                if reason is None and change.binary:
                    reason = "binary"
                data = None if reason else blobs.read(change.new_blob)
                if reason is None and data is None:
                    reason = "unreadable"
                if reason is None:
                    reason = content_excluded(data)
                if reason:
                    stats.files_skipped[reason] += 1
                    continue
                any_supported = True
                text = data.decode("utf-8", "replace")
                new_texts[change.path] = text
            for change in changes:
                text = new_texts.get(change.path)
                if text is None:
                    continue
                stats.files_mined += 1
                found = mine_file(renderer, snapshot, commit, change, text, new_texts, config)
                candidates.extend(_Candidate(index, ex) for ex in found)
            snapshot.apply(changes, new_texts)
            if progress:
                progress(index + 1, len(commits))
    if not commits:
        raise TrainerError(f"{repo} has no commits in the selected range (--since/--max-commits)")
    if not any_supported:
        raise NoExamplesError(
            f"no supported source files changed in the history of {repo} "
            "(supported: Python, JavaScript, TypeScript, Go, Rust, Java, C, C++)"
        )
    seen: set[str] = set()
    kept = _filter_and_split(candidates, stats, config, seen)
    examples = [c.example for c in kept]
    train_commits = [c.commit_index for c in kept if c.example.split == "train"]
    if "snapshot" in config.kinds and config.snapshot_lines > 0 and train_commits:
        touches = Counter(path for path, _ in {(c.example.path, c.commit_index) for c in kept
                                               if c.example.split == "train"})
        for example in snapshot_examples(repo, renderer, commits[max(train_commits)], touches,
                                         config, config.snapshot_lines):
            if _keep(example, seen, stats):
                examples.append(example)
    negatives: list[dict] = []
    if "accepted" in config.kinds and config.events_path is not None:
        accepted, negatives = _events_examples(renderer, snapshot, config.events_path, examples, stats)
        examples.extend(accepted)
    stats.negatives = len(negatives)
    stats.examples_by_kind = Counter(e.kind for e in examples)
    stats.examples_by_split = Counter(e.split for e in examples)
    stats.elapsed_s = time.monotonic() - started
    return MineResult(examples, negatives, stats)


def _keep(ex: Example, seen: set[str], stats: MineStats) -> bool:
    """False for an example with a likely secret or a near-duplicate of one already kept."""
    secret = contains_secret(ex.prompt, ex.completion)
    if secret:
        stats.secrets_dropped += 1
        stats.secret_kinds[secret] += 1
        return False
    key = dedup_key(ex.kind + ex.mode, ex.completion, ex.prompt[-400:])
    if key in seen:
        stats.duplicates_dropped += 1
        return False
    seen.add(key)
    return True


def _filter_and_split(candidates: list[_Candidate], stats: MineStats, config: MineConfig,
                      seen: set[str]) -> list[_Candidate]:
    kept = [cand for cand in candidates if _keep(cand.example, seen, stats)]
    commit_order = sorted({c.commit_index for c in kept})
    stats.commits_with_examples = len(commit_order)
    valid_fraction = config.test_fraction if config.valid_fraction is None else config.valid_fraction
    names = split_for_commits(len(commit_order), config.test_fraction, valid_fraction)
    split_of = dict(zip(commit_order, names))
    for cand in kept:
        cand.example.split = split_of[cand.commit_index]
    return kept


def snapshot_examples(repo: Path, renderer: ExampleRenderer, commit: gitlog.Commit,
                      touches: Counter, config: MineConfig, count: int) -> list[Example]:
    """About `count` single-line `snapshot` holes in the repository as it was after `commit`
    (the last training commit, so no valid or test code is seen), spread over the files the
    history touched in proportion to how often, on code lines inside definitions (the lines
    an in-hunk completion fills). The cursor sits after the line's indentation, as in the
    history's single-line examples; other files come from the same snapshot's index."""
    from repolsp.server.context.document import Document
    from repolsp.server.context.symbols import file_definitions

    out: list[Example] = []
    with gitlog.BlobReader(repo) as blobs:
        snapshot = Snapshot(blobs)
        snapshot.load_tree(gitlog.tree_files(repo, commit.sha))
        paths = sorted((p for p in snapshot.files if touches.get(p)), key=lambda p: (-touches[p], p))
        total = sum(touches[p] for p in paths)
        for path in paths:
            share = max(1, round(count * touches[path] / total))
            text = snapshot.files[path]
            doc = Document("file:///" + path.lstrip("/"), text, path=path)
            if doc.tree is None:
                continue
            headers = set()
            inside = set()
            for info in file_definitions(doc):
                first, last = doc.lines.line_of(info.start), doc.lines.line_of(max(info.start, info.end - 1))
                headers.add(doc.lines.line_of(info.header_start))
                inside.update(range(first, last + 1))
            lines = [n for n in sorted(inside - headers)
                     if _is_code_line(text, *doc.lines.line_bounds(n), config)]
            rng = random.Random(f"{commit.sha}:{path}")
            for n in sorted(rng.sample(lines, min(share, len(lines)))):
                start, end = doc.lines.line_bounds(n)
                start = _after_indent(text, start, end)
                made = renderer.fim_example(text, start, end, path, "single-line", snapshot)
                if made is not None:
                    out.append(Example(commit.sha, commit.time, path, doc.language, "snapshot",
                                       made[0], text[start:end], mode="single-line", context=made[1]))
    return out


# -- one file of one commit -----------------------------------------------------------------------


def _line_offsets(text: str) -> list[int]:
    starts = [0]
    pos = text.find("\n")
    while pos >= 0:
        starts.append(pos + 1)
        pos = text.find("\n", pos + 1)
    return starts


def _covered(start_line: int, end_line: int, added: Iterable[tuple[int, int]]) -> bool:
    """True when lines start_line..end_line (1-based, inclusive) are all added."""
    line = start_line
    for a, b in sorted(added):
        if a <= line <= b:
            line = b + 1
            if line > end_line:
                return True
    return line > end_line


def mine_file(
    renderer: ExampleRenderer,
    snapshot: Snapshot,
    commit: gitlog.Commit,
    change: gitlog.FileChange,
    text: str,
    commit_texts: dict[str, str],
    config: MineConfig,
) -> list[Example]:
    """Examples from one changed file of one commit (`text` is the file after the commit)."""
    from repolsp.server.context.document import Document
    from repolsp.server.context.symbols import file_definitions

    doc = Document("file:///" + change.path.lstrip("/"), text, path=change.path)
    if doc.tree is None or not change.added_lines:
        return []
    starts = _line_offsets(text)

    def line_of(offset: int) -> int:  # 1-based
        lo, hi = 0, len(starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1

    def line_span(a: int, b: int) -> tuple[int, int]:
        """str offsets of lines a..b (1-based inclusive), without the last newline."""
        start = starts[a - 1]
        end = starts[b] - 1 if b < len(starts) else len(text)
        return start, end

    definitions = file_definitions(doc)
    out: list[Example] = []
    kinds = config.kinds
    key = f"{commit.sha}:{change.path}"

    def add(kind: str, start: int, end: int, mode: str, extra=()) -> None:
        middle = text[start:end]
        if not middle.strip():
            return
        example = renderer.fim_example(text, start, end, change.path, mode, snapshot, extra)
        if example is None:
            return
        prompt, context = example
        out.append(Example(commit.sha, commit.time, change.path, doc.language, kind, prompt,
                           middle, mode=mode, context=context))

    def add_instruction(task: str, info, code: str, answer: str, context: str = "") -> None:
        if "instruction" not in kinds or not answer.strip():
            return
        prompt = renderer.instruction_prompt(task, doc.language, change.path, info.kind,
                                             info.name, code, context)
        out.append(Example(commit.sha, commit.time, change.path, doc.language, "instruction",
                           prompt, answer, mode=task))

    spans = [(info, line_of(info.start), line_of(max(info.start, info.end - 1))) for info in definitions]
    new_defs = {id(info) for info, a, b in spans if _covered(a, b, change.added_lines)}
    def_line = {id(info): line_of(info.header_start) for info, _, _ in spans}

    # fim: whole bodies of new functions ("complete this function") ...
    if "fim" in kinds or "instruction" in kinds:
        for info, a, b in spans:
            if id(info) not in new_defs or not info.is_callable or info.body_start is None:
                continue
            if b - line_of(info.body_start) + 1 > config.max_middle_lines:
                continue
            if "fim" in kinds:
                add("fim", info.body_start, info.end, "multi-line")
            body_code_start = _after_docstring(doc, info)
            add_instruction("complete", info, text[info.start:body_code_start].rstrip() + "\n",
                            text[body_code_start:info.end])

    # ... and added/changed lines inside definitions: the hunk as a multi-line middle, one of
    # its lines as a single-line middle (the "in-hunk line" the evaluation measures).
    if "fim" in kinds:
        for a, b in change.added_lines:
            for info, first_line, last_line in _runs_by_owner(spans, a, b, config.max_middle_lines):
                lines = [n for n in range(first_line, last_line + 1)
                         if _is_code_line(text, *line_span(n, n), config)]
                if not lines:
                    continue
                first, last = lines[0], lines[-1]
                if last > first and id(info) not in new_defs:
                    start = _after_indent(text, *line_span(first, first))
                    add("fim", start, line_span(last, last)[1], "multi-line")
                # Prefer body lines: a new definition's header line is mostly naming.
                body_lines = [n for n in lines if not (id(info) in new_defs and n == def_line[id(info)])]
                choices = body_lines or lines
                pick = choices[_pick(choices, f"{key}:{first}")]
                start, end = line_span(pick, pick)
                start = _after_indent(text, start, end)
                add("fim", start, end - 1 if text[end - 1:end] == "\r" else end, "single-line")

    if doc.language == "python":
        _python_docstrings(doc, text, spans, change, add, add_instruction, kinds)
        if "test" in kinds or "instruction" in kinds:
            _python_tests(doc, text, spans, new_defs, snapshot, commit_texts, change, add,
                          add_instruction, renderer, kinds)

    if len(out) > config.max_examples_per_file:
        # Keep a deterministic, kind-balanced subset.
        out.sort(key=lambda e: (_pick(list(range(1000)), f"{key}:{e.kind}:{e.completion[:40]}")))
        out = out[: config.max_examples_per_file]
    return out


def _runs_by_owner(spans, a: int, b: int, max_lines: int):
    """Split added lines a..b into runs with the same innermost definition (lines outside every
    definition are dropped); each run is at most `max_lines` long: (info, first, last)."""
    runs = []
    for line in range(a, b + 1):
        owners = [s for s in spans if s[1] <= line <= s[2]]
        owner = max(owners, key=lambda s: s[1])[0] if owners else None
        if runs and runs[-1][0] is owner and line - runs[-1][1] < max_lines:
            runs[-1][2] = line
        elif owner is not None:
            runs.append([owner, line, line])
    return [tuple(r) for r in runs]


def _after_indent(text: str, start: int, end: int) -> int:
    """Offset of the first character after the indentation of the line text[start:end]."""
    line = text[start:end]
    return start + len(line) - len(line.lstrip(" \t"))


def _is_code_line(text: str, start: int, end: int, config: MineConfig) -> bool:
    line = text[start:end].strip()
    return len(line) >= config.min_line_chars and not line.startswith(("#", "//", "/*", "*"))


def _docstring_node(info):
    """The docstring's expression statement of a Python definition, or None."""
    if info.node is None or info.docstring is None:
        return None
    body = info.node.child_by_field_name("body")
    if body is None or not body.named_children:
        return None
    first = body.named_children[0]
    if first.type == "expression_statement" and first.named_children and first.named_children[0].type == "string":
        return first
    return None


def _after_docstring(doc, info) -> int:
    """Offset where a Python function's code starts after its docstring (else its body start)."""
    node = _docstring_node(info) if doc.language == "python" else None
    if node is None:
        return info.body_start
    end = doc.offset_of_byte(node.end_byte)
    text = doc.text
    nl = text.find("\n", end)
    if nl < 0:
        return len(text)
    # Skip to the first non-blank character of the next code line.
    pos = nl + 1
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return min(pos, info.end)


def _python_docstrings(doc, text, spans, change, add, add_instruction, kinds) -> None:
    for info, a, b in spans:
        node = _docstring_node(info)
        if node is None:
            continue
        start, end = doc.offset_of_byte(node.start_byte), doc.offset_of_byte(node.end_byte)
        d_a = text.count("\n", 0, start) + 1
        d_b = text.count("\n", 0, end) + 1
        if not _covered(d_a, d_b, change.added_lines):
            continue  # the history did not write this docstring in this commit
        if "docstring" in kinds:
            add("docstring", start, end, "multi-line")
        line_start = text.rfind("\n", 0, start) + 1
        line_end = text.find("\n", end)
        line_end = len(text) if line_end < 0 else line_end + 1
        code = text[info.start:line_start] + text[line_end:info.end]
        add_instruction("docstring", info, code, text[start:end])


def _python_tests(doc, text, spans, new_defs, snapshot, commit_texts, change, add,
                  add_instruction, renderer, kinds) -> None:
    from repolsp.server.context.types import Snippet

    if not is_test_path(change.path):
        return
    imports = python_imports(text)
    for info, a, b in spans:
        if id(info) not in new_defs or not info.is_callable or not info.name.startswith("test"):
            continue
        body = text[info.start:info.end]
        tested = find_tested_function(info.name, body, imports, snapshot, commit_texts)
        if tested is None:
            continue
        module_path, source = tested
        snippet = Snippet(path=module_path, text=source, kind="definition", score=1.0)
        if "test" in kinds:
            add("test", info.start, info.end, "multi-line", (snippet,))
        target_name = source.split("(", 1)[0].split()[-1]
        add_instruction("tests", _Named("function", target_name), source,
                        body, context="")


@dataclass
class _Named:
    kind: str
    name: str


def python_imports(text: str) -> dict[str, tuple[str, str | None]]:
    """Names a Python file imports -> (module, imported name): `from m import a as b` ->
    b: (m, a); `import m` -> m: (m, None). Relative imports keep their leading dots."""
    import re

    found: dict[str, tuple[str, str | None]] = {}
    for match in re.finditer(r"^from\s+([.\w]+)\s+import\s+\(?([^)]+?)\)?\s*$", text, re.MULTILINE):
        module = match.group(1)
        for part in match.group(2).replace("\\", " ").split(","):
            bits = part.strip().split()
            if bits and bits[0] != "*":
                found[bits[-1]] = (module, bits[0])
    for match in re.finditer(r"^import\s+([\w.]+)(?:\s+as\s+(\w+))?", text, re.MULTILINE):
        found[match.group(2) or match.group(1).split(".")[0]] = (match.group(1), None)
    return found


def _module_paths(dotted: str) -> list[str]:
    base = dotted.lstrip(".").replace(".", "/")
    return [f"{base}.py", f"{base}/__init__.py", f"src/{base}.py", f"src/{base}/__init__.py"]


def find_tested_function(test_name: str, test_body: str, imports: dict[str, tuple[str, str | None]],
                         snapshot: Snapshot, commit_texts: dict[str, str]) -> tuple[str, str] | None:
    """(module path, function source) of the function a test exercises, paired by import and
    name: an imported name the test calls, preferring one that the test's name contains."""
    import re

    called = set(re.findall(r"\b([A-Za-z_]\w*)\s*\(", test_body))
    called |= {m.group(1) for m in re.finditer(r"\b\w+\.([A-Za-z_]\w*)\s*\(", test_body)}
    candidates: list[tuple[int, str, str]] = []
    for name in called:
        module = real_name = None
        origin = imports.get(name)
        if origin is not None and origin[1] is not None:
            module, real_name = origin
        else:
            # `m.f(...)` where m is an imported module.
            for alias, (dotted, attr) in imports.items():
                if re.search(rf"\b{re.escape(alias)}\.{re.escape(name)}\s*\(", test_body):
                    module = dotted if attr is None else f"{dotted}.{attr}"
                    real_name = name
                    break
        if not module or not real_name:
            continue
        score = 2 if real_name.lower() in test_name.lower() else 1
        candidates.append((score, real_name, module))
    for score, name, module in sorted(candidates, key=lambda c: (-c[0], c[1])):
        for path in _module_paths(module):
            source_text = commit_texts.get(path) or snapshot.text(path)
            if source_text is None:
                continue
            source = function_source(source_text, name)
            if source:
                return path, source
    return None


def function_source(text: str, name: str) -> str | None:
    """Source of the top-level Python function or class `name` in `text` (at most 60 lines)."""
    import re

    match = re.search(rf"^(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b", text, re.MULTILINE)
    if match is None:
        return None
    lines = text[match.start():].splitlines(keepends=True)
    out = [lines[0]]
    for line in lines[1:61]:
        if line.strip() and not line[0].isspace() and not line.lstrip().startswith((")", "#")):
            break
        out.append(line)
    return "".join(out).rstrip() + "\n"


# -- completions the user accepted in the editor ----------------------------------------------------


def _events_examples(renderer, snapshot, events_path: Path, examples: list[Example],
                     stats: MineStats) -> tuple[list[Example], list[dict]]:
    """Accepted completions become `accepted` FIM examples (split by time against the commits);
    rejected ones are kept as negatives, never trained on."""
    from repolsp.server.workspace_data import read_events

    events = read_events(events_path)
    valid_start = min((e.time for e in examples if e.split == "valid"), default=None)
    test_start = min((e.time for e in examples if e.split == "test"), default=None)
    accepted: list[Example] = []
    negatives: list[dict] = []
    for event in events:
        kind = event.get("event")
        prefix, suffix = event.get("prefix"), event.get("suffix", "")
        completion, path = event.get("completion"), event.get("path")
        if not isinstance(prefix, str) or not isinstance(completion, str) or not path:
            continue
        if contains_secret(prefix, suffix, completion):
            stats.secrets_dropped += 1
            continue
        if kind == "rejected":
            negatives.append({"path": path, "prefix": prefix, "suffix": suffix,
                              "completion": completion, "ts": event.get("ts")})
            continue
        if kind != "accepted":
            continue
        ts = float(event.get("ts", 0))
        split = "train"
        if test_start is not None and ts >= test_start:
            stats.accepted_after_split += 1  # would leak into the held-out commits
            continue
        if valid_start is not None and ts >= valid_start:
            split = "valid"
        text = prefix + completion + suffix
        mode = event.get("mode") or "single-line"
        made = renderer.fim_example(text, len(prefix), len(prefix) + len(completion), path, mode,
                                    snapshot, ())
        if made is None:
            continue
        prompt, context = made
        accepted.append(Example("", int(ts), path, event.get("language", ""), "accepted",
                                prompt, completion, split=split, mode=mode, context=context))
    return accepted, negatives


# -- JSONL ------------------------------------------------------------------------------------------


def write_jsonl(examples: Iterable[Example], path: Path) -> int:
    """Write one JSON object per example; returns the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with open(tmp, "w", encoding="utf-8") as handle:
        for example in examples:
            handle.write(json.dumps(example.to_json(), ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(path)
    return count


def read_jsonl(path: Path) -> list[Example]:
    """Examples written by `write_jsonl`."""
    with open(path, encoding="utf-8") as handle:
        return [Example.from_json(json.loads(line)) for line in handle if line.strip()]
