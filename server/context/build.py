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
6. the file path (always kept: its tokens are reserved up front).

Each snippet is included whole or not at all; a snippet that does not fit is skipped and
smaller, lower-priority ones may still fit. Token counts come from the model's tokenizer through
``count_tokens`` and are cached per string. The budget invariant: ``count(prefix) +
count(suffix) + sum(count(snippet.text)) + count(path) + reserved_tokens <= max_prompt_tokens``.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .document import Document
from .should_complete import CompletionDecision, should_complete
from .symbols import enclosing_definitions, import_nodes, scope_header_text
from .types import PromptContext, Snippet

if TYPE_CHECKING:
    from .index import WorkspaceIndex

log = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME_BEFORE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:<[^<>()]*>)?\s*$")
_CALLED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:\(|::<|<[A-Za-z_][\w, ]*>\()")
# Keywords and ubiquitous builtins per language: never worth looking up as definitions.
_KEYWORDS_BY_LANGUAGE = {
    "python": """False None True and as assert async await break class continue def del elif else
        except finally for from global if import in is lambda nonlocal not or pass raise return try
        while with yield self cls print len range str int float bool list dict set tuple object
        isinstance super type open enumerate zip map filter sorted min max sum any all""",
    "javascript": """break case catch class const continue debugger default delete do else export
        extends finally for function if import in instanceof new return super switch this throw try
        typeof var void while with yield let static async await of null undefined true false
        console require module exports Object Array String Number Boolean Promise JSON Math Error""",
    "go": """break case chan const continue default defer else fallthrough for func go goto if import
        interface map package range return select struct switch type var nil true false len cap make
        new append panic recover string int int64 int32 uint error byte rune bool float64 fmt""",
    "rust": """as break const continue crate else enum extern false fn for if impl in let loop match
        mod move mut pub ref return self Self static struct super trait true type unsafe use where
        while async await dyn Some None Ok Err Box Vec String Option Result println format vec i32
        i64 u8 u32 u64 usize f64 bool str""",
    "java": """abstract assert boolean break byte case catch char class const continue default do
        double else enum extends final finally float for goto if implements import instanceof int
        interface long native new package private protected public return short static super switch
        synchronized this throw throws transient try void volatile while true false null String
        Object System var record Override""",
    "c": """auto break case char const continue default do double else enum extern float for goto
        if inline int long register restrict return short signed sizeof static struct switch typedef
        union unsigned void volatile while NULL true false bool size_t include define ifdef ifndef
        endif printf""",
}
_KEYWORDS_BY_LANGUAGE["typescript"] = _KEYWORDS_BY_LANGUAGE["javascript"] + """ interface type enum
    implements private protected public readonly declare namespace any number string boolean never
    unknown keyof"""
_KEYWORDS_BY_LANGUAGE["cpp"] = _KEYWORDS_BY_LANGUAGE["c"] + """ class namespace template typename
    public private protected virtual override using new delete this nullptr std"""
_KEYWORDS = {lang: frozenset(words.split()) for lang, words in _KEYWORDS_BY_LANGUAGE.items()}
_KEYWORDS["tsx"] = _KEYWORDS["typescript"]
_KEYWORDS["text"] = frozenset().union(*_KEYWORDS.values())


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


# -- windows ----------------------------------------------------------------------------------


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


# -- snippets ----------------------------------------------------------------------------------


def scope_snippet(doc: Document, offset: int, window_start: int, max_doc_lines: int = 3) -> Snippet | None:
    """Headers of the enclosing definitions whose header starts above ``window_start``; outer
    scopes (a method's class) give only their header lines, the innermost its docstring too."""
    nodes = []
    for node in enclosing_definitions(doc, offset):
        if doc.offset_of_byte(node.start_byte) >= window_start:
            break  # this header and every inner one are visible in the prefix already
        nodes.append(node)
    if not nodes:
        return None
    headers = [scope_header_text(doc, node, max_doc_lines if i == len(nodes) - 1 else 0)
               for i, node in enumerate(nodes)]
    return Snippet(path=doc.path, text="\n".join(headers), kind="scope")


def imports_snippets(doc: Document, window_start: int, near_names: set[str]) -> list[Snippet]:
    """The imports above the window as one snippet, then a smaller fallback with only the
    imports that name an identifier used near the cursor (the caller takes the first that fits).
    In the fallback a Python ``from m import a, b, c`` keeps only the names used."""
    nodes = [n for n in import_nodes(doc) if doc.offset_of_byte(n.start_byte) < window_start]
    if not nodes:
        return []
    texts = [doc.node_text(n).rstrip() for n in nodes]
    found = [Snippet(path=doc.path, text="\n".join(texts), kind="imports")]
    relevant = []
    for node, text in zip(nodes, texts):
        if near_names & set(_IDENTIFIER.findall(text)):
            relevant.append(_reduced_import(doc, node, near_names) or text)
    if relevant and relevant != texts:
        found.append(Snippet(path=doc.path, text="\n".join(relevant), kind="imports"))
    return found


def _reduced_import(doc: Document, node, near_names: set[str]) -> str | None:
    """``from m import x, y`` with only the names in ``near_names`` (Python), else None."""
    if node.type != "import_from_statement":
        return None
    module = node.child_by_field_name("module_name")
    names = node.children_by_field_name("name")
    if module is None or len(names) < 2:
        return None
    kept = []
    for name in names:
        bound = name.child_by_field_name("alias") if name.type == "aliased_import" else name
        if bound is not None and doc.node_text(bound).split(".")[-1] in near_names:
            kept.append(doc.node_text(name))
    if not kept or len(kept) == len(names):
        return None
    return f"from {doc.node_text(module)} import {', '.join(kept)}"


def names_near_cursor(doc: Document, offset: int, near_lines: int) -> list[str]:
    """Identifiers used around the cursor, most relevant first: called names and capitalised
    (type) names before others, nearer the cursor before farther; keywords dropped."""
    lines = doc.lines
    line_no = lines.line_of(offset)
    first = max(0, line_no - near_lines)
    last = min(lines.line_count - 1, line_no + 2)
    start = lines.line_starts[first]
    end = lines.line_bounds(last)[1]
    before = doc.text[start:offset]
    after = doc.text[offset:end]
    keywords = _KEYWORDS.get(doc.language, _KEYWORDS["text"])
    scored: dict[str, tuple[int, int]] = {}
    for distance_base, text, reverse in ((0, before, True), (len(before), after, False)):
        for match in _IDENTIFIER.finditer(text):
            name = match.group()
            if name in keywords or len(name) < 2:
                continue
            distance = (len(text) - match.end()) if reverse else distance_base + match.start()
            follows = text[match.end():match.end() + 1]
            kind_rank = 0 if follows == "(" or name[:1].isupper() else 1
            best = scored.get(name)
            if best is None or (kind_rank, distance) < best:
                scored[name] = (kind_rank, distance)
    return sorted(scored, key=lambda n: scored[n])


def called_names(doc: Document, offset: int, near_lines: int) -> set[str]:
    """Names called (``name(``) or accessed as attributes' calls around the cursor."""
    lines = doc.lines
    line_no = lines.line_of(offset)
    start = lines.line_starts[max(0, line_no - near_lines)]
    end = lines.line_bounds(min(lines.line_count - 1, line_no + 2))[1]
    return set(_CALLED.findall(doc.text[start:end]))


def current_callee(line_prefix: str) -> str | None:
    """The function whose argument list the cursor is in on this line (``f(a, g(b), |``)."""
    depth = 0
    for index in range(len(line_prefix) - 1, -1, -1):
        ch = line_prefix[index]
        if ch in ")]}":
            depth += 1
        elif ch in "([{":
            if depth == 0:
                if ch != "(":
                    return None
                match = _NAME_BEFORE.search(line_prefix, 0, index)
                return match.group(1) if match else None
            depth -= 1
    return None


def imported_names(doc: Document) -> set[str]:
    """Identifiers that appear in the file's import statements."""
    names: set[str] = set()
    for node in import_nodes(doc):
        names.update(_IDENTIFIER.findall(doc.node_text(node)))
    return names


_QUOTED = re.compile(r"""["'<]([^"'<>]+)["'>]""")
_MODULE_AFTER_KEYWORD = re.compile(r"^\s*(?:from|import|use|package|extern\s+crate)\s+(?:static\s+)?([\w.:]+)", re.MULTILINE)


def import_hints(doc: Document) -> list[str]:
    """Module paths named by the file's imports (``a.b``, ``./util``, ``pkg/x``), for preferring
    definitions from the files this one imports."""
    hints: list[str] = []
    for node in import_nodes(doc):
        text = doc.node_text(node)
        hints.extend(_QUOTED.findall(text))
        for module in _MODULE_AFTER_KEYWORD.findall(text):
            for prefix in ("crate::", "super::", "self::"):
                module = module.removeprefix(prefix)
            hints.append(module.rstrip(".:;"))
    return [h for h in hints if h]


def _query_text(doc: Document, offset: int, near_lines: int) -> str:
    lines = doc.lines
    line_no = lines.line_of(offset)
    start = lines.line_starts[max(0, line_no - near_lines)]
    return doc.text[start:offset]


def _workspace_snippets(doc: Document, offset: int, workspace: WorkspaceIndex | None,
                        budget: ContextBudget, near_names: list[str]) -> tuple[list[list[Snippet]], list[Snippet]]:
    """(definition groups, retrieved) from the workspace index; failures degrade to nothing.
    Each definition group is the full snippet, then a compact alternative when there is one."""
    if workspace is None:
        return [], []
    definitions: list[list[Snippet]] = []
    retrieved: list[Snippet] = []
    try:
        imported = imported_names(doc)
        # Plain lower-case variables rarely have a definition elsewhere; calls, types and
        # imported names do, so only those are looked up (fewer, better definition snippets).
        called = called_names(doc, offset, budget.near_cursor_lines)
        wanted = [n for n in near_names if n in imported or n in called or n[:1].isupper()]
        # The call being written comes first (its signature is what the arguments need), then
        # imported names, then the rest, each group nearest-first.
        callee = current_callee(doc.text[doc.lines.line_starts[doc.lines.line_of(offset)]:offset])
        ordered = [n for n in wanted if n in imported] + [n for n in wanted if n not in imported]
        if callee and callee in ordered:
            ordered.remove(callee)
            ordered.insert(0, callee)
        names = ordered[: budget.max_definitions * 3]
        if hasattr(workspace, "definition_alternatives"):
            pairs = workspace.definition_alternatives(names, exclude_path=doc.path, hints=import_hints(doc))
        else:  # any object with the documented definitions_for (tests, other indexes)
            pairs = [(s, None) for s in workspace.definitions_for(names, exclude_path=doc.path,
                                                                   hints=import_hints(doc))]
        definitions = [[full] + ([compact] if compact is not None else [])
                       for full, compact in pairs[: budget.max_definitions]]
    except Exception:
        log.warning("definition lookup failed for %s", doc.path, exc_info=True)
    try:
        query = _query_text(doc, offset, budget.near_cursor_lines)
        if query.strip():
            retrieved = workspace.retrieve(query, exclude_path=doc.path, limit=budget.max_retrieved)
    except Exception:
        log.warning("retrieval failed for %s", doc.path, exc_info=True)
    seen = {s.text for group in definitions for s in group}
    retrieved = [s for s in retrieved if s.text not in seen]
    return definitions, retrieved


# -- the stage --------------------------------------------------------------------------------


def build_context(
    doc: Document,
    offset: int,
    workspace: WorkspaceIndex | None,
    budget: ContextBudget,
    count_tokens: Callable[[str], int],
    decision: CompletionDecision | None = None,
) -> PromptContext:
    """The prompt context at str ``offset`` of ``doc``, cut to ``budget`` (priority order in the
    module docstring). ``decision`` is computed with ``should_complete`` when not given."""
    count = cached_counter(count_tokens)
    offset = max(0, min(offset, len(doc.text)))
    if decision is None:
        decision = should_complete(doc, offset)
    total = budget.max_prompt_tokens - budget.reserved_tokens - count(doc.path)
    total = max(total, 0)

    suffix, _, suffix_tokens = _suffix_window(doc, offset, min(budget.max_suffix_tokens, total // 3), count)
    snippet_cap = int(total * budget.max_snippet_share)
    prefix, prefix_start, prefix_tokens = _prefix_window(doc, offset, total - suffix_tokens - snippet_cap, count)
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
    definitions, retrieved = _workspace_snippets(doc, offset, workspace, budget, near)
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

    if not prefix_complete:
        # Give what the snippets left back to the prefix.
        prefix, new_start, prefix_tokens = _prefix_window(doc, offset, total - suffix_tokens - snippet_tokens, count)
        if new_start < prefix_start:
            chosen = _drop_now_visible(doc, offset, chosen, new_start, budget, count)
        prefix_start = new_start

    return PromptContext(
        path=doc.path,
        language=doc.language,
        prefix=prefix,
        suffix=suffix,
        mode=decision.mode,
        snippets=chosen,
        block_indent=decision.block_indent,
    )


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
