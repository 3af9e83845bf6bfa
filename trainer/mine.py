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

import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from repolsp.server.context.document import Document
from repolsp.server.context.languages import TREE_LANGUAGES, language_for
from repolsp.server.context.symbols import file_definitions
from repolsp.server.workspace_data import read_events
from repolsp.trainer import gitlog
from repolsp.trainer.errors import NoExamplesError, TrainerError
from repolsp.trainer.examples import Example, MineConfig, MineResult, MineStats
from repolsp.trainer.filters import content_excluded, dedup_key, path_excluded
from repolsp.trainer.mine_file import after_indent, is_code_line, mine_file
from repolsp.trainer.prompts import ExampleRenderer
from repolsp.trainer.secrets import contains_secret, is_env_file
from repolsp.trainer.snapshot import Snapshot

log = logging.getLogger(__name__)


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


def mine_repository(
    repo: Path,
    renderer: ExampleRenderer,
    config: MineConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> MineResult:
    """Mine `repo`'s history into examples (see the module docstring)."""

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
        diffs: dict = {}
        if commits and config.history:
            snapshot.history = history_before(repo, commits[0].sha, config.history_max_commits)
            diffs = commit_diffs(repo, commits[-1].sha, len(commits))
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
            if snapshot.history is not None:  # the next commit's prompts see this one
                diff = diffs.pop(commit.sha, None)
                if diff is not None:
                    snapshot.history.add_commit(diff)
                else:  # past the one read's limits
                    snapshot.history.advance(repo, commit.sha)
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
        accepted, negatives = _events_examples(renderer, snapshot, config.events_path, examples, stats,
                                               config.events_since)
        examples.extend(accepted)
    stats.negatives = len(negatives)
    stats.examples_by_kind = Counter(e.kind for e in examples)
    stats.examples_by_split = Counter(e.split for e in examples)
    stats.elapsed_s = time.monotonic() - started
    return MineResult(examples, negatives, stats)


def history_before(repo: Path, sha: str, max_commits: int):
    """The server's history index as it would be at commit `sha`: the commits strictly before
    it (no future code), the newest `max_commits` of them."""
    from repolsp.server.context.history import HistoryIndex

    return HistoryIndex.from_git(repo, until=sha, max_commits=max_commits)


def commit_diffs(repo: Path, head: str, count: int) -> dict:
    """The diffs of the `count` first-parent commits up to `head`, by sha, from one streamed
    `git log -p` (one git process per commit cost about 0.2 s each, most of the mining time)."""
    from repolsp.server.context.gitdiff import read_commits

    return {diff.sha: diff for diff in read_commits(repo, head, count, max_bytes=512_000_000, max_s=600.0)}


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

    out: list[Example] = []
    with gitlog.BlobReader(repo) as blobs:
        snapshot = Snapshot(blobs)
        snapshot.load_tree(gitlog.tree_files(repo, commit.sha))
        if config.history:
            snapshot.history = history_before(repo, commit.sha, config.history_max_commits)
            snapshot.history.advance(repo, commit.sha)  # the code as it was after `commit`
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
                     if is_code_line(text, *doc.lines.line_bounds(n), config)]
            rng = random.Random(f"{commit.sha}:{path}")
            for n in sorted(rng.sample(lines, min(share, len(lines)))):
                start, end = doc.lines.line_bounds(n)
                start = after_indent(text, start, end)
                made = renderer.fim_example(text, start, end, path, "single-line", snapshot)
                if made is not None:
                    out.append(Example(commit.sha, commit.time, path, doc.language, "snapshot",
                                       made[0], text[start:end], mode="single-line", context=made[1]))
    return out


# -- completions the user accepted in the editor ----------------------------------------------------


def _events_examples(renderer, snapshot, events_path: Path, examples: list[Example],
                     stats: MineStats, since: float | None = None) -> tuple[list[Example], list[dict]]:
    """Accepted completions become `accepted` FIM examples (split by time against the commits);
    rejected ones are kept as negatives, never trained on. `since`: only newer events (an
    incremental run: older ones were learnt by the model it continues)."""

    events = [e for e in read_events(events_path)
              if since is None or float(e.get("ts", 0) or 0) > since]
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
