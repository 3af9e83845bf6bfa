"""The workspace index: tree-sitter chunks of every source file for BM25 retrieval, and a symbol
table of definitions (signature + docstring) for "definitions of symbols used near the cursor".

- Walks the workspace roots respecting ``.gitignore`` (``git ls-files`` in a git work tree,
  ``pathspec`` over every ``.gitignore`` otherwise), skipping vendored and generated folders,
  minified, binary and large files, and anything that resolves outside the roots.
- Persists to ``data_dir`` (gzip JSON); a restart re-reads only files whose mtime or size changed.
- Thread-safe: ``build`` runs on a worker while ``retrieve``/``definitions_for`` serve completions.

The pieces live beside it: ``files`` (which files), ``chunks`` (what is kept of a file),
``bm25`` (retrieval scoring), ``skip_rules`` (what is never the user's own code).
"""

from __future__ import annotations

import logging
import os
import pathlib
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable

from repolsp.server.context.bm25 import Bm25
from repolsp.server.context.chunks import (
    Chunk,
    FileRecord,
    SymbolEntry,
    chunk_document,
    code_tokens,
    symbols_of,
)
from repolsp.server.context.files import (
    OTHER_CODE_EXTENSIONS,
    ignored_file,
    is_git_worktree,
    module_fragment,
    path_matches,
    skip_reason,
    source_files,
)
from repolsp.server.context.persist import index_path, read_records, write_records
from repolsp.server.context.skip_rules import generated_name, in_skipped_dir, looks_minified

from .document import Document
from .languages import TEXT, language_for, source_extensions
from .types import Snippet

log = logging.getLogger(__name__)


MAX_CHUNKS_PER_FILE_IN_RESULTS = 2


class WorkspaceIndex:
    """Chunks and symbols of the workspace's source files, for retrieval into prompts."""

    def __init__(self, roots: list[pathlib.Path], data_dir: pathlib.Path | None = None,
                 max_file_bytes: int = 1_000_000, autosave_s: float | None = 60.0, max_files: int = 20_000):
        self.roots = [pathlib.Path(os.path.realpath(r)) for r in roots]
        self.data_dir = pathlib.Path(data_dir) if data_dir is not None else None
        self.max_file_bytes = max_file_bytes
        # A monorepo beyond this is indexed partially (shallowest paths first) rather than for hours.
        self.max_files = max_files
        self._lock = threading.RLock()
        self._files: dict[str, FileRecord] = {}
        self._chunk_ids: dict[str, list[int]] = {}
        self._chunks: list[Chunk | None] = []
        self._bm25 = Bm25()
        self._symbols: dict[str, list[SymbolEntry]] = {}
        self._recent: OrderedDict[str, float] = OrderedDict()
        self.skipped: dict[str, str] = {}  # display path -> reason, from the last build
        self.built = False
        self.dirty = False
        self._git_roots: dict[pathlib.Path, bool] = {}  # root -> is a git work tree (asked once)
        # Updates after a build are persisted by a debounced background save.
        self.autosave_s = autosave_s
        self._autosave_timer: threading.Timer | None = None

    # -- paths --

    def key_for(self, path: str | os.PathLike) -> str | None:
        """The index's display path for a filesystem path, a ``file:`` URI or a display path;
        None when it lies outside every root."""
        text = os.fspath(path)
        if text.startswith("file:"):
            from .document import uri_to_path

            text = uri_to_path(text) or text
        if not os.path.isabs(text):
            return text.replace("\\", "/")
        real = os.path.realpath(text)
        for root in self.roots:
            try:
                rel = pathlib.Path(real).relative_to(root).as_posix()
            except ValueError:
                continue
            return rel if len(self.roots) == 1 else f"{root.name}/{rel}"
        return None

    def _abs_for(self, key: str) -> pathlib.Path | None:
        if len(self.roots) == 1:
            return self.roots[0] / key
        head, _, rest = key.partition("/")
        for root in self.roots:
            if root.name == head:
                return root / rest
        return None

    def __len__(self) -> int:
        return len(self._files)

    @property
    def files(self) -> list[str]:
        """Display paths of the indexed files."""
        with self._lock:
            return sorted(self._files)

    def chunk_count(self) -> int:
        """Number of live chunks."""
        return self._bm25.size

    # -- building --

    def candidate_files(self) -> list[tuple[str, pathlib.Path]]:
        """(display path, absolute path) of the source files the walk selects before content
        checks: not ignored, not in vendored/build folders, code extensions, at most ``max_files``."""
        found, git_roots = source_files(self.roots, self.max_files)
        self._git_roots.update(git_roots)
        return found

    def build(self, progress: Callable[[int, int, str], None] | None = None,
              cancel: threading.Event | None = None) -> None:
        """(Re)index every root: reuse unchanged files from the persisted index, read the rest,
        drop files that disappeared, then persist. ``progress(done, total, path)`` is called
        per file; setting ``cancel`` stops early (what was indexed so far is kept)."""
        started = time.monotonic()
        persisted = self._load_persisted() if not self._files else {}
        candidates = self.candidate_files()
        seen: set[str] = set()
        self.skipped = {}
        total = len(candidates)
        for done, (key, absolute) in enumerate(candidates, 1):
            if cancel is not None and cancel.is_set():
                log.info("index build cancelled after %d of %d files", done - 1, total)
                break
            if progress is not None and (done % 25 == 0 or done == total):
                progress(done, total, key)
            try:
                stat = absolute.stat()
            except OSError:
                continue
            if not self._inside_roots(absolute):
                self.skipped[key] = "outside workspace"
                continue
            current = self._files.get(key) or persisted.get(key)
            if current is not None and current.mtime_ns == stat.st_mtime_ns and current.size == stat.st_size:
                seen.add(key)
                if key not in self._files:
                    self._insert(current, changed=False)
                continue
            record = self._read_record(key, absolute)
            if record is None:
                continue
            seen.add(key)
            self._insert(record)
        else:
            for key in [k for k in self._files if k not in seen]:
                self.remove_file(key)
        self.built = True
        self.save()
        log.info("indexed %d files (%d chunks, %d skipped) in %.1fs", len(self._files),
                 self.chunk_count(), len(self.skipped), time.monotonic() - started)

    def _inside_roots(self, absolute: pathlib.Path) -> bool:
        real = pathlib.Path(os.path.realpath(absolute))
        return any(real == root or root in real.parents for root in self.roots)

    def _read_record(self, key: str, absolute: pathlib.Path, text: str | None = None) -> FileRecord | None:
        try:
            stat = absolute.stat() if absolute.exists() else None
            if text is None:
                reason = skip_reason(absolute, self.max_file_bytes)
                if reason is not None:
                    self.skipped[key] = reason
                    return None
                data = absolute.read_bytes()
                text = data.decode("utf-8", "replace")
            elif len(text) > self.max_file_bytes or "\x00" in text[:8192]:
                self.skipped[key] = "large" if len(text) > self.max_file_bytes else "binary"
                return None
            if looks_minified(text):
                self.skipped[key] = "minified"
                return None
            language = language_for(None, key)
            doc = Document(absolute.as_uri(), text, path=key)
            chunks = chunk_document(doc)
            symbols = symbols_of(doc) if language != TEXT else []
        except Exception:  # one bad file must never stop indexing
            log.warning("could not index %s", key, exc_info=True)
            self.skipped[key] = "error"
            return None
        return FileRecord(path=key, abs_path=str(absolute), mtime_ns=stat.st_mtime_ns if stat else 0,
                          size=stat.st_size if stat else len(text), language=language,
                          chunks=chunks, symbols=symbols)

    def _insert(self, record: FileRecord, changed: bool = True) -> None:
        with self._lock:
            if record.path in self._files:
                self._remove_locked(record.path)
            self._files[record.path] = record
            ids = []
            for chunk in record.chunks:
                chunk_id = self._bm25.add(code_tokens(chunk.text))
                self._chunks.append(chunk)
                ids.append(chunk_id)
            self._chunk_ids[record.path] = ids
            for symbol in record.symbols:
                self._symbols.setdefault(symbol.name, []).append(symbol)
            self.dirty = self.dirty or changed

    def _remove_locked(self, key: str) -> None:
        record = self._files.pop(key, None)
        if record is None:
            return
        for chunk_id in self._chunk_ids.pop(key, []):
            self._bm25.remove(chunk_id)
            self._chunks[chunk_id] = None
        for symbol in record.symbols:
            entries = self._symbols.get(symbol.name)
            if entries:
                entries[:] = [e for e in entries if e.path != key]
                if not entries:
                    del self._symbols[symbol.name]
        self.dirty = True
        if self._bm25.dead > 1000 and self._bm25.dead > self._bm25.size:
            self._compact_locked()

    def _compact_locked(self) -> None:
        """Rebuild postings without dead chunks (lazy deletion keeps updates O(chunk))."""
        records = list(self._files.values())
        self._files.clear()
        self._chunk_ids.clear()
        self._chunks = []
        self._bm25 = Bm25()
        self._symbols.clear()
        for record in records:
            self._insert(record)

    def update_file(self, path, text: str | None = None) -> None:
        """Re-index one file (after didSave / didChange / a watcher event); ``text`` is the
        editor's content when given, else the file is read. Files outside the roots, ignored or
        unsuitable files are removed from the index instead."""
        key = self.key_for(path)
        if key is None:
            return
        absolute = self._abs_for(key) if not os.path.isabs(os.fspath(path)) else pathlib.Path(os.fspath(path))
        if absolute is None or not self._inside_roots(absolute):
            return
        if text is None and not absolute.is_file():
            self.remove_file(key)
            return
        suffix = absolute.suffix.lower()
        if in_skipped_dir(key) or generated_name(absolute.name) or (
            suffix not in source_extensions() and suffix not in OTHER_CODE_EXTENSIONS
        ) or self._ignored_by_git(absolute):
            self.remove_file(key)
            return
        record = self._read_record(key, absolute, text)
        if record is None:
            self.remove_file(key)
            return
        self._insert(record)
        self._schedule_save()

    def _ignored_by_git(self, absolute: pathlib.Path) -> bool:
        """True when a single file is ignored (git check-ignore, or the .gitignore files above it)."""
        for root in self.roots:
            if root not in absolute.parents:
                continue
            is_git = self._git_roots.get(root)
            if is_git is None:
                is_git = self._git_roots[root] = is_git_worktree(root)
            return ignored_file(root, absolute, is_git)
        return False

    def remove_file(self, path) -> None:
        """Drop one file from the index (deleted, or became ignored)."""
        key = self.key_for(path)
        if key is None:
            return
        with self._lock:
            self._remove_locked(key)
        self._schedule_save()

    def _schedule_save(self) -> None:
        """Persist a while after the last update (one pending timer at a time, daemon thread)."""
        if self.data_dir is None or self.autosave_s is None or not self.built:
            return
        with self._lock:
            if self._autosave_timer is not None and self._autosave_timer.is_alive():
                return
            timer = threading.Timer(self.autosave_s, self.save)
            timer.daemon = True
            self._autosave_timer = timer
        timer.start()

    def close(self) -> None:
        """Stop a pending autosave and persist now (call at server shutdown)."""
        timer = self._autosave_timer
        if timer is not None:
            timer.cancel()
            if timer.is_alive() and timer is not threading.current_thread():
                timer.join(timeout=30)  # a save in progress finishes before the final one
        self.save()

    def note_recent(self, path) -> None:
        """Mark a file as recently edited or opened: its chunks get a retrieval boost."""
        key = self.key_for(path)
        if key is None:
            return
        with self._lock:
            self._recent[key] = time.monotonic()
            self._recent.move_to_end(key)
            while len(self._recent) > 20:
                self._recent.popitem(last=False)

    # -- queries --

    def retrieve(self, query_text: str, exclude_path: str | None, limit: int = 5,
                 boosts: dict[str, float] | None = None) -> list[Snippet]:
        """Chunks of other files most similar to ``query_text`` (BM25; recent files boosted, and
        files in ``boosts`` (path -> 0..1, e.g. history's co-change) ranked up by up to half;
        at most two chunks per file), best first."""
        terms = code_tokens(query_text)
        if not terms or limit <= 0:
            return []
        exclude = self.key_for(exclude_path) if exclude_path else None
        with self._lock:
            # Over-fetch: the recency boost, the excluded file and the per-file cap re-rank these.
            candidates = self._bm25.top(terms, count=limit * 8 + 20)
            recent = list(self._recent)
            recency = {key: 1.0 + 0.5 * (i + 1) / len(recent) for i, key in enumerate(recent)}
            ranked = []
            for score, chunk_id in candidates:
                chunk = self._chunks[chunk_id]
                if chunk is None or chunk.path == exclude or chunk.path == exclude_path:
                    continue
                boost = recency.get(chunk.path, 1.0) * (1.0 + 0.5 * (boosts or {}).get(chunk.path, 0.0))
                ranked.append((score * boost, chunk_id))
            ranked.sort(key=lambda item: (-item[0], item[1]))
            per_file: Counter[str] = Counter()
            found: list[Snippet] = []
            for score, chunk_id in ranked:
                chunk = self._chunks[chunk_id]
                if per_file[chunk.path] >= MAX_CHUNKS_PER_FILE_IN_RESULTS:
                    continue
                per_file[chunk.path] += 1
                found.append(Snippet(path=chunk.path, text=chunk.text, kind="retrieved", score=round(score, 4)))
                if len(found) >= limit:
                    break
        return found

    def definitions_for(self, names: Iterable[str], exclude_path: str | None = None,
                        hints: Iterable[str] = (), per_name: int = 2) -> list[Snippet]:
        """Signatures (and docstrings) of symbols named in ``names`` defined in other files, in
        the order of ``names``. ``hints`` are module paths from the caller's imports (``a.b``,
        ``./util``, ``github.com/x/pkg``): definitions in files matching one come first."""
        return [full for full, _ in self.definition_alternatives(names, exclude_path, hints, per_name)]

    def definition_alternatives(self, names: Iterable[str], exclude_path: str | None = None,
                                hints: Iterable[str] = (), per_name: int = 2) -> list[tuple[Snippet, Snippet | None]]:
        """Like ``definitions_for``, each with a compact alternative (the header alone, a type
        with its constructor) for when the full one does not fit the budget; None if no shorter."""
        exclude = self.key_for(exclude_path) if exclude_path else None
        fragments = [module_fragment(h) for h in hints]
        fragments = [f for f in fragments if f]
        found: list[tuple[Snippet, Snippet | None]] = []
        seen: set[tuple[str, str]] = set()
        with self._lock:
            for name in names:
                entries = [e for e in self._symbols.get(name, ()) if e.path not in (exclude, exclude_path)]
                if not entries:
                    continue
                entries.sort(key=lambda e: (not path_matches(e.path, fragments),
                                            e.kind not in ("function", "method", "class", "struct", "interface"),
                                            e.path, e.line))
                for entry in entries[:per_name]:
                    if (entry.path, entry.signature) in seen:
                        continue
                    seen.add((entry.path, entry.signature))
                    full = Snippet(path=entry.path, text=entry.signature, kind="definition", score=1.0)
                    compact = (Snippet(path=entry.path, text=entry.header, kind="definition", score=0.5)
                               if entry.header else None)
                    found.append((full, compact))
        return found

    def symbols_in(self, path) -> list[SymbolEntry]:
        """Every indexed definition of one file."""
        key = self.key_for(path)
        with self._lock:
            record = self._files.get(key) if key else None
            return list(record.symbols) if record else []

    def symbols(self, name: str) -> list[SymbolEntry]:
        """Every indexed definition with this simple name."""
        with self._lock:
            return list(self._symbols.get(name, ()))

    # -- persistence --

    def _store_path(self) -> pathlib.Path | None:
        return index_path(self.data_dir, self.roots) if self.data_dir is not None else None

    def save(self) -> None:
        """Write the index to ``data_dir`` atomically (no-op without a data_dir or changes)."""
        target = self._store_path()
        if target is None or not self.dirty:
            return
        with self._lock:
            records = list(self._files.values())
            self.dirty = False
        write_records(target, self.roots, records)

    def _load_persisted(self) -> dict[str, FileRecord]:
        target = self._store_path()
        return read_records(target) if target is not None else {}
