"""What the index keeps of a file: tree-sitter chunks for retrieval, the symbol table's entries
(signature + docstring), and the BM25 terms of code (`code_tokens`)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from .document import Document
from .languages import spec_for
from .symbols import describe_definition, iter_definitions, signature_text

log = logging.getLogger(__name__)


MAX_CHUNK_LINES = 24


TEXT_CHUNK_LINES = 30


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


_SUBWORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


# Tokens too common in code to say anything about similarity.
_STOP_TOKENS = frozenset(
    ["self", "this", "the", "a", "an", "and", "or", "not", "if", "else", "elif", "for", "while", "return", "def", "function", "func", "fn", "class", "import", "from", "in", "is", "of", "to", "as", "let", "var", "const", "new", "true", "false", "none", "null", "nil", "int", "str", "string", "void", "public", "private", "static", "struct", "pub", "use", "end", "do", "then", "try", "catch", "except", "finally", "with"]
)


_TERMS_OF_IDENTIFIER: dict[str, tuple[str, ...]] = {}


def _identifier_terms(identifier: str) -> tuple[str, ...]:
    terms: list[str] = []
    lowered = identifier.lower()
    if len(lowered) > 1 and lowered not in _STOP_TOKENS:
        terms.append(lowered)
    parts = _SUBWORD.findall(identifier)
    if len(parts) > 1:
        for part in parts:
            part = part.lower()
            if len(part) > 2 and part not in _STOP_TOKENS and part != lowered:
                terms.append(part)
    return tuple(terms)


def code_tokens(text: str) -> list[str]:
    """BM25 terms of code: lower-cased identifiers plus their camelCase/snake_case parts."""
    terms: list[str] = []
    cache = _TERMS_OF_IDENTIFIER
    for identifier in _IDENTIFIER.findall(text):
        found = cache.get(identifier)
        if found is None:
            found = _identifier_terms(identifier)
            if len(cache) < 500_000:  # identifiers repeat a lot; the memo bounds itself
                cache[identifier] = found
        terms.extend(found)
    return terms


@dataclass
class Chunk:
    """A piece of a file for retrieval: a function, class, or block of top-level code."""

    path: str
    start_line: int  # 0-based, inclusive
    end_line: int  # 0-based, exclusive
    text: str
    kind: str = "block"
    name: str = ""


@dataclass
class SymbolEntry:
    """One definition in the workspace: its name and a prompt-ready signature."""

    name: str
    qualified_name: str
    kind: str
    path: str
    line: int
    signature: str  # doc comment/docstring + header (+ members' headers for types)
    header: str = ""  # the compact form: header only (types: + constructor header)


@dataclass
class FileRecord:
    """What the index keeps of one file (persisted)."""

    path: str  # display path, '/'-separated, relative to its root
    abs_path: str
    mtime_ns: int
    size: int
    language: str
    chunks: list[Chunk] = field(default_factory=list)
    symbols: list[SymbolEntry] = field(default_factory=list)




def chunk_document(doc: Document, max_lines: int = MAX_CHUNK_LINES) -> list[Chunk]:
    """Split a document into retrieval chunks: definitions (big classes split into members, big
    functions into line windows) and runs of other top-level code; imports are left out."""
    if doc.tree is None:
        return _line_chunks(doc, TEXT_CHUNK_LINES)
    spec = spec_for(doc.language)
    chunks: list[Chunk] = []
    pending: list = []  # consecutive top-level statements forming one block chunk

    def flush() -> None:
        if pending:
            start = pending[0].start_point[0]
            end = pending[-1].end_point[0] + 1
            for window_start in range(start, end, max_lines):
                chunks.append(_chunk(doc, window_start, min(end, window_start + max_lines), "block", ""))
            pending.clear()

    def visit(container, skip_before_row: int = -1) -> None:
        for child in container.named_children:
            if child.type in spec.import_types or child.start_point[0] < skip_before_row:
                continue
            definition = _definition_in(child, spec)
            if definition is None:
                pending.append(child)
                if pending[-1].end_point[0] - pending[0].start_point[0] + 1 >= max_lines:
                    flush()
                continue
            # Comments right above a definition are its doc comment, not part of the block before.
            first_row = child.start_point[0]
            doc_comments = []
            while pending and pending[-1].type in spec.comment_types and pending[-1].end_point[0] >= first_row - 1:
                doc_comments.insert(0, pending.pop())
                first_row = doc_comments[0].start_point[0]
            flush()
            start, end = first_row, child.end_point[0] + 1
            name = _safe_name(doc, definition)
            kind = spec.definition_kinds.get(definition.type, "function")
            members = _member_container(definition)
            if end - start <= max_lines:
                chunks.append(_chunk(doc, start, end, kind, name))
            elif members is not None and any(_definition_in(c, spec) for c in members.named_children):
                first_member = next(c for c in members.named_children if _definition_in(c, spec))
                header_end = max(first_member.start_point[0], start + 1)
                chunks.append(_chunk(doc, start, min(header_end, start + max_lines), kind, name))
                visit(members, skip_before_row=header_end)
                flush()
            else:
                for window_start in range(start, end, max_lines):
                    chunks.append(_chunk(doc, window_start, min(end, window_start + max_lines), kind, name))

    visit(doc.tree.root_node)
    flush()
    return [c for c in chunks if c.text.strip()]


def _definition_in(node, spec):
    """The definition node that ``node`` is or wraps (decorators, export, template), else None."""
    from .symbols import definition_kind

    current = node
    for _ in range(3):
        if definition_kind(current, spec) is not None:
            return current
        if current.type in spec.wrapper_types or current.type in ("lexical_declaration", "variable_declaration",
                                                                  "variable_declarator"):
            inner = current.child_by_field_name("definition") or current.child_by_field_name("declaration")
            if inner is None:
                named = [c for c in current.named_children if c.type not in spec.comment_types]
                inner = named[-1] if named else None
                if current.type in ("lexical_declaration", "variable_declaration") and named:
                    inner = named[0]
                if current.type == "variable_declarator":
                    inner = current.child_by_field_name("value")
            if inner is None:
                return None
            current = inner
        else:
            return None
    return None


def _member_container(definition):
    body = definition.child_by_field_name("body")
    if body is not None and body.type in ("block", "class_body", "declaration_list", "field_declaration_list",
                                          "interface_body", "enum_body", "statement_block"):
        return body
    return None


def _safe_name(doc: Document, node) -> str:
    from .symbols import definition_name

    try:
        return definition_name(doc, node)
    except Exception:  # noqa: BLE001 - a grammar surprise costs the chunk its name, nothing more
        return ""


def _chunk(doc: Document, start_line: int, end_line: int, kind: str, name: str) -> Chunk:
    lines = doc.lines
    start = lines.line_starts[min(start_line, lines.line_count - 1)]
    end = lines.line_starts[end_line] if end_line < lines.line_count else len(doc.text)
    return Chunk(path=doc.path, start_line=start_line, end_line=end_line,
                 text=doc.text[start:end].rstrip("\r\n") + "\n", kind=kind, name=name)


def _line_chunks(doc: Document, window: int) -> list[Chunk]:
    chunks = []
    for start in range(0, doc.lines.line_count, window):
        chunk = _chunk(doc, start, min(doc.lines.line_count, start + window), "lines", "")
        if chunk.text.strip():
            chunks.append(chunk)
    return chunks


def symbols_of(doc: Document, max_members: int = 6) -> list[SymbolEntry]:
    """Definitions of a document rendered for prompts (classes list their members' headers)."""
    entries: list[SymbolEntry] = []
    for node in iter_definitions(doc, into_callables=False):
        try:
            info = describe_definition(doc, node, with_effects=False)
        except Exception:
            log.debug("skipping a definition in %s", doc.path, exc_info=True)
            continue
        if not info.name or info.kind in ("module", "namespace"):
            continue
        text = signature_text(info, max_doc_lines=3)
        compact = info.indent + info.header
        if info.kind in _TYPE_KINDS:
            text = _type_summary(doc, info, text, max_members)
            compact = _type_compact(doc, info)
        simple = re.split(r"::|\.", info.name)[-1]
        entries.append(SymbolEntry(name=simple, qualified_name=info.qualified_name, kind=info.kind,
                                   path=doc.path, line=doc.lines.line_of(info.header_start), signature=text,
                                   header=compact if compact != text else ""))
    return entries


_TYPE_KINDS = frozenset({"class", "struct", "interface", "trait", "enum", "impl", "type"})


_CONSTRUCTOR_NAMES = frozenset({"__init__", "constructor", "new"})


def _type_compact(doc: Document, info) -> str:
    """A type's header with its constructor's header, when it has one (``__init__``, ``new``)."""
    lines = [info.indent + info.header]
    for member in iter_definitions(doc, info.node, into_callables=False):
        if member.id == info.node.id:
            continue
        try:
            member_info = describe_definition(doc, member, with_effects=False)
        except Exception:  # noqa: BLE001 - the header alone is still a compact form
            break
        if member_info.is_callable and (member_info.name in _CONSTRUCTOR_NAMES or member_info.name == info.name):
            lines.append(member_info.indent + member_info.header)
            break
    return "\n".join(lines)


def _type_summary(doc: Document, info, header_text: str, max_members: int) -> str:
    """A type's header plus its members' one-line headers (or the whole type when short)."""
    whole = doc.text[doc.lines.line_bounds(doc.lines.line_of(info.start))[0]:info.end]
    if whole.count("\n") < 10:
        return whole.rstrip()
    members = []
    for member in iter_definitions(doc, info.node, into_callables=False):
        if member.id == info.node.id:
            continue
        try:
            member_info = describe_definition(doc, member, with_effects=False)
        except Exception:
            log.debug("skipping a member in %s", doc.path, exc_info=True)
            continue
        if member_info.is_callable and member_info.header:
            members.append(member_info.indent + member_info.header.splitlines()[0].rstrip()
                           + (" ..." if doc.language == "python" else ""))
        if len(members) >= max_members:
            break
    return "\n".join([header_text, *members])


def record_row(record: FileRecord) -> list:
    """A FileRecord as the persisted index's row: rows instead of dicts are a third of the size
    and much faster to write and read."""
    r = record
    return [r.path, r.abs_path, r.mtime_ns, r.size, r.language,
            [[c.start_line, c.end_line, c.text, c.kind, c.name] for c in r.chunks],
            [[y.name, y.qualified_name, y.kind, y.line, y.signature, y.header] for y in r.symbols]]


def record_from_row(row: list) -> FileRecord:
    """The FileRecord of a persisted row (`record_row`); ValueError/TypeError when malformed."""
    path, abs_path, mtime_ns, size, language, chunks, symbols = row
    return FileRecord(
        path=path, abs_path=abs_path, mtime_ns=mtime_ns, size=size, language=language,
        chunks=[Chunk(path, start, end, text, kind, name) for start, end, text, kind, name in chunks],
        symbols=[SymbolEntry(name, qualified, kind, path, line, signature, header)
                 for name, qualified, kind, line, signature, header in symbols],
    )
