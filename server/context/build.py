"""Build the prompt context around a cursor within a token budget.

Priority order (written down because it decides what a small model sees):

1. the prefix and suffix windows around the cursor, cut at line boundaries (except at the
   cursor), the prefix favoured: the suffix gets at most ``max_suffix_tokens``, snippets at most
   ``max_snippet_share`` of the budget while the prefix is still cut, and whatever the snippets
   leave goes back to the prefix;
2. the enclosing scopes' headers (decorators, signatures, docstrings) that lie above the window;
3. the file's imports that lie above the window (only those naming identifiers used near the
   cursor when all of them would take more than a quarter of the snippet room);
4. signatures (and docstrings) of symbols used near the cursor that are defined in other files
   (from the workspace index; names imported by this file first, then nearest the cursor);
5. chunks of other files most similar to the code before the cursor (BM25, recent files boosted);
6. the file path (always kept: its tokens are reserved up front);
7. with a history index: short runs of lines similar to the cursor's neighbourhood, from the git
   history, the file outside the window and other files (`line_retrieval`), in a room of their
   own (``max_line_share`` of the budget while the prefix is cut), rendered last, nearest the
   code; files that change together with this one (history's co-change) rank up in 5 and 7.

Each snippet is included whole or not at all; a snippet that does not fit is skipped and
smaller, lower-priority ones may still fit. Token counts come from the model's tokenizer through
``count_tokens`` and are cached per string. The budget invariant: ``count(prefix) +
count(suffix) + sum(count(snippet.text)) + count(path) + reserved_tokens <= max_prompt_tokens``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from repolsp.models.prompt import render_snippet
from repolsp.server.context.snippets import (
    imports_snippets,
    names_near_cursor,
    scope_snippet,
    workspace_snippets,
)

from .document import Document
from .line_retrieval import line_runs
from .should_complete import CompletionDecision, should_complete
from .symbols import import_nodes
from .types import PromptContext, Snippet

if TYPE_CHECKING:
    from .history import HistoryIndex
    from .index import WorkspaceIndex

log = logging.getLogger(__name__)


@dataclass
class ContextBudget:
    """Token budget and limits for one prompt. All ``*_tokens`` are model tokens."""

    max_prompt_tokens: int = 512
    max_suffix_tokens: int = 96
    # While the prefix window is still cut, snippets (scope, imports, definitions, retrieved)
    # together get at most this share of the budget.
    max_snippet_share: float = 0.4
    # Kept free for the prompt template: FIM sentinels, comment markers around snippets.
    reserved_tokens: int = 24
    max_definitions: int = 6
    max_retrieved: int = 4
    # With a history index: the share of the budget that line runs may take from the prefix,
    # and how many runs at most.
    max_line_share: float = 0.15
    max_line_runs: int = 3
    # Lines before (and after) the cursor whose identifiers are looked up / that form the query.
    near_cursor_lines: int = 12
    max_doc_lines: int = 3


class TokenCounter:
    """``count_tokens`` with a bounded LRU cache of counts per string (tokenizers are slow)."""

    def __init__(self, count_tokens: Callable[[str], int], max_entries: int = 50_000):
        self.count_tokens = count_tokens
        self.max_entries = max_entries
        self._cache: OrderedDict[str, int] = OrderedDict()

    def __call__(self, text: str) -> int:
        if not text:
            return 0
        found = self._cache.get(text)
        if found is not None:
            self._cache.move_to_end(text)
            return found
        count = int(self.count_tokens(text))
        self._cache[text] = count
        if len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return count


_COUNTERS: OrderedDict[object, TokenCounter] = OrderedDict()


def cached_counter(count_tokens: Callable[[str], int]) -> TokenCounter:
    """A TokenCounter for ``count_tokens``, reused across calls so counts stay cached per keystroke."""
    if isinstance(count_tokens, TokenCounter):
        return count_tokens
    try:
        counter = _COUNTERS.get(count_tokens)
    except TypeError:  # unhashable callable: cache for this call only
        return TokenCounter(count_tokens)
    if counter is None:
        counter = _COUNTERS[count_tokens] = TokenCounter(count_tokens)
        while len(_COUNTERS) > 4:
            _COUNTERS.popitem(last=False)
    return counter


def approx_token_count(text: str) -> int:
    """A tokenizer-free estimate (about 3.5 characters per token) for tests and tools."""
    return (len(text) * 2 + 6) // 7


@dataclass
class _Window:
    prefix: str
    suffix: str
    prefix_start: int  # str offset where the prefix window starts
    suffix_end: int
    prefix_tokens: int
    suffix_tokens: int


def _prefix_window(doc: Document, offset: int, budget_tokens: int, count: TokenCounter) -> tuple[str, int, int]:
    """(text, start offset, tokens) of the longest run of whole lines before the cursor (plus the
    cursor line's head) that fits ``budget_tokens``."""
    lines = doc.lines
    text = doc.text
    line_no = lines.line_of(offset)
    head_start = lines.line_starts[line_no]
    head = text[head_start:offset]
    head_tokens = count(head)
    if head_tokens > budget_tokens:
        return _fit_tail(head, budget_tokens, count, offset)
    used = head_tokens
    start = head_start
    current = line_no - 1
    while current >= 0:
        line_start = lines.line_starts[current]
        line_tokens = count(text[line_start:start])
        if used + line_tokens > budget_tokens:
            break
        used += line_tokens
        start = line_start
        current -= 1
    prefix = text[start:offset]
    # Per-line counts can differ from the joined count (tokens merge across "\n"): verify.
    exact = count(prefix)
    while exact > budget_tokens and start < head_start:
        start = text.index("\n", start) + 1 if "\n" in text[start:head_start] else head_start
        prefix = text[start:offset]
        exact = count(prefix)
    if exact > budget_tokens:
        return _fit_tail(head, budget_tokens, count, offset)
    return prefix, start, exact


def _fit_tail(head: str, budget_tokens: int, count: TokenCounter, offset: int) -> tuple[str, int, int]:
    """Longest tail of one over-long line that fits (minified code): the only cut inside a line."""
    keep = min(len(head), max(0, budget_tokens) * 3)
    while keep > 0 and count(head[-keep:]) > budget_tokens:
        keep = keep * 3 // 4
    tail = head[-keep:] if keep else ""
    return tail, offset - len(tail), count(tail)


def _suffix_window(doc: Document, offset: int, budget_tokens: int, count: TokenCounter) -> tuple[str, int, int]:
    """(text, end offset, tokens) of the cursor line's rest plus whole following lines that fit."""
    lines = doc.lines
    text = doc.text
    line_no = lines.line_of(offset)
    starts = lines.line_starts
    first_end = starts[line_no + 1] if line_no + 1 < len(starts) else len(text)
    first_end = max(first_end, offset)
    tail = text[offset:first_end]
    used = count(tail)
    if used > budget_tokens:
        return "", offset, 0
    end = first_end
    current = line_no + 1
    while current < len(starts):
        line_end = starts[current + 1] if current + 1 < len(starts) else len(text)
        line_tokens = count(text[end:line_end])
        if used + line_tokens > budget_tokens:
            break
        used += line_tokens
        end = line_end
        current += 1
    suffix = text[offset:end]
    exact = count(suffix)
    while exact > budget_tokens and end > first_end:
        end = text.rfind("\n", first_end, end - 1) + 1 or first_end
        end = max(end, first_end)
        suffix = text[offset:end]
        exact = count(suffix)
    if exact > budget_tokens:
        return "", offset, 0
    return suffix, end, exact


def build_context(
    doc: Document,
    offset: int,
    workspace: WorkspaceIndex | None,
    budget: ContextBudget,
    count_tokens: Callable[[str], int],
    decision: CompletionDecision | None = None,
    history: HistoryIndex | None = None,
) -> PromptContext:
    """The prompt context at str ``offset`` of ``doc``, cut to ``budget`` (priority order in the
    module docstring). ``decision`` is computed with ``should_complete`` when not given;
    ``history`` (a `history.HistoryIndex`) adds retrieved line runs (none when None)."""
    count = cached_counter(count_tokens)
    offset = max(0, min(offset, len(doc.text)))
    if decision is None:
        decision = should_complete(doc, offset)
    total = budget.max_prompt_tokens - budget.reserved_tokens - count(doc.path)
    total = max(total, 0)

    suffix, suffix_end, suffix_tokens = _suffix_window(doc, offset, min(budget.max_suffix_tokens, total // 3), count)
    snippet_cap = int(total * budget.max_snippet_share)
    runs = _safe(lambda: _line_candidates(doc, offset, suffix_end, workspace, history, budget, count), [])
    line_cap = int(total * budget.max_line_share) if runs else 0
    prefix, prefix_start, prefix_tokens = _prefix_window(doc, offset, total - suffix_tokens - snippet_cap - line_cap, count)
    prefix_complete = prefix_start == 0

    candidates: list[list[Snippet]] = []  # each group: alternatives, the first that fits wins
    near = names_near_cursor(doc, offset, budget.near_cursor_lines)
    scope = _safe(lambda: scope_snippet(doc, offset, prefix_start, budget.max_doc_lines), None)
    if scope is not None:
        compact_scope = _safe(lambda: scope_snippet(doc, offset, prefix_start, 0), None)
        candidates.append([scope] if compact_scope is None or compact_scope.text == scope.text
                          else [scope, compact_scope])
    imports = _safe(lambda: imports_snippets(doc, prefix_start, set(near)), [])
    if imports:
        candidates.append(imports)
    boosts = _safe(lambda: history.co_change(doc.path), {}) if history is not None else {}
    definitions, retrieved = workspace_snippets(doc, offset, workspace, budget, near, boosts)
    candidates.extend(definitions)
    candidates.extend([s] for s in retrieved)

    snippet_room = total - suffix_tokens - prefix_tokens
    if not prefix_complete:
        snippet_room = min(snippet_room, snippet_cap)
    chosen: list[Snippet] = []
    snippet_tokens = 0
    for group in candidates:
        if group is imports and len(group) > 1 and count(group[0].text) > snippet_room // 4:
            group = group[1:]  # all imports would crowd out definitions: keep the relevant ones
        for snippet in group:
            cost = count(snippet.text)
            if snippet_tokens + cost <= snippet_room:
                chosen.append(snippet)
                snippet_tokens += cost
                break

    line_room = total - suffix_tokens - prefix_tokens - snippet_tokens
    if not prefix_complete:
        line_room = min(line_room, line_cap)
    lines_chosen, line_tokens = _fit_runs(runs, doc, prefix_start, suffix_end, chosen, line_room,
                                          budget.max_line_runs, count)
    snippet_tokens += line_tokens

    if not prefix_complete:
        # Give what the snippets left back to the prefix.
        prefix, new_start, prefix_tokens = _prefix_window(doc, offset, total - suffix_tokens - snippet_tokens, count)
        if new_start < prefix_start:
            chosen = _drop_now_visible(doc, offset, chosen, new_start, budget, count)
        prefix_start = new_start
    chosen.extend(lines_chosen)

    return PromptContext(
        path=doc.path,
        language=doc.language,
        prefix=prefix,
        suffix=suffix,
        mode=decision.mode,
        snippets=chosen,
        block_indent=decision.block_indent,
    )


def _line_candidates(doc: Document, offset: int, suffix_end: int, workspace, history,
                     budget: ContextBudget, count: TokenCounter) -> list:
    """Line runs worth a room of their own (`line_retrieval.line_runs`); none without history.
    Runs that repeat lines of the largest window the prefix could take are left out."""
    if history is None:
        return []
    _, widest_start, _ = _prefix_window(doc, offset, budget.max_prompt_tokens, count)
    return line_runs(doc, offset, widest_start, suffix_end, workspace, history, limit=budget.max_line_runs * 2)


def _fit_runs(runs: list, doc: Document, prefix_start: int, suffix_end: int, others: list[Snippet],
              room: int, limit: int, count: TokenCounter) -> tuple[list[Snippet], int]:
    """(snippets, tokens) of the best runs that fit ``room`` tokens (counted as rendered:
    comment marks and path line), at most ``limit``, skipping runs whose lines the chosen
    window or the ``others`` snippets already show."""
    shown = {line.strip() for line in doc.text[prefix_start:suffix_end].split("\n") if line.strip()}
    shown.update(line.strip() for s in others for line in s.text.split("\n") if line.strip())
    chosen: list[Snippet] = []
    used = 0
    for run in runs:
        if not any(line.strip() and line.strip() not in shown for line in run.lines):
            continue
        snippet = run.snippet()
        cost = count(render_snippet(snippet, doc.language))
        if used + cost <= room:
            chosen.append(snippet)
            used += cost
            if len(chosen) >= limit:
                break
    return chosen, used


def _drop_now_visible(doc: Document, offset: int, chosen: list[Snippet], window_start: int,
                      budget: ContextBudget, count: TokenCounter) -> list[Snippet]:
    """After the prefix grew to ``window_start``: drop scope headers and imports it now shows
    (a scope snippet may shrink to the headers still above the window, never grow)."""
    still_above = _safe(lambda: [n for n in import_nodes(doc) if doc.offset_of_byte(n.start_byte) < window_start], [])
    kept = []
    for snippet in chosen:
        if snippet.kind == "scope":
            options = [_safe(lambda d=doc_lines: scope_snippet(doc, offset, window_start, d), None)
                       for doc_lines in (budget.max_doc_lines, 0)]
            options = [o for o in options if o is not None and count(o.text) <= count(snippet.text)]
            if not options and _safe(lambda: scope_snippet(doc, offset, window_start, 0), None) is None:
                continue  # every header is visible now
            snippet = options[0] if options else snippet
        elif snippet.kind == "imports" and not still_above:
            continue
        kept.append(snippet)
    return kept


def _safe(compute, default):
    try:
        return compute()
    except Exception:  # context is best effort: a tree-sitter surprise must not lose the completion
        log.warning("context part failed", exc_info=True)
        return default


def context_tokens(context: PromptContext, count_tokens: Callable[[str], int]) -> int:
    """Tokens the budget invariant counts for ``context`` (reserved template tokens excluded)."""
    count = cached_counter(count_tokens)
    return (count(context.prefix) + count(context.suffix) + count(context.path)
            + sum(count(s.text) for s in context.snippets))
