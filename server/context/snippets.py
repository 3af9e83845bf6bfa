"""What goes into a prompt besides the cursor window: the enclosing scope's header, the imports
the code near the cursor uses, definitions of the names it uses, and retrieved snippets from
other files (`workspace_snippets`), and the names and import hints those lookups start from."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from .document import Document
from .symbols import enclosing_definitions, import_nodes, scope_header_text
from .types import Snippet

if TYPE_CHECKING:
    from .build import ContextBudget
    from .index import WorkspaceIndex

log = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME_BEFORE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:<[^<>()]*>)?\s*$")
_CALLED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:\(|::<|<[A-Za-z_][\w, ]*>\()")
# Keywords and ubiquitous builtins per language: never worth looking up as definitions.
KEYWORDS_BY_LANGUAGE = {
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


KEYWORDS_BY_LANGUAGE["typescript"] = KEYWORDS_BY_LANGUAGE["javascript"] + """ interface type enum
    implements private protected public readonly declare namespace any number string boolean never
    unknown keyof"""
KEYWORDS_BY_LANGUAGE["cpp"] = KEYWORDS_BY_LANGUAGE["c"] + """ class namespace template typename
    public private protected virtual override using new delete this nullptr std"""
KEYWORDS = {lang: frozenset(words.split()) for lang, words in KEYWORDS_BY_LANGUAGE.items()}
KEYWORDS["tsx"] = KEYWORDS["typescript"]
KEYWORDS["text"] = frozenset().union(*KEYWORDS.values())




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
    keywords = KEYWORDS.get(doc.language, KEYWORDS["text"])
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


def workspace_snippets(doc: Document, offset: int, workspace: WorkspaceIndex | None,
                        budget: ContextBudget, near_names: list[str],
                        boosts: dict[str, float] | None = None) -> tuple[list[list[Snippet]], list[Snippet]]:
    """(definition groups, retrieved) from the workspace index; failures degrade to nothing.
    Each definition group is the full snippet, then a compact alternative when there is one.
    ``boosts`` (path -> 0..1: files that change with this one) rank retrieved chunks up."""
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
            if boosts:
                retrieved = workspace.retrieve(query, exclude_path=doc.path, limit=budget.max_retrieved,
                                               boosts=boosts)
            else:
                retrieved = workspace.retrieve(query, exclude_path=doc.path, limit=budget.max_retrieved)
    except Exception:
        log.warning("retrieval failed for %s", doc.path, exc_info=True)
    seen = {s.text for group in definitions for s in group}
    retrieved = [s for s in retrieved if s.text not in seen]
    return definitions, retrieved
