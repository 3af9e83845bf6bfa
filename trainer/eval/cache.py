"""Model output cache (`OutputCache`), a caching engine wrapper, and model file hashes that key them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from repolsp.server.engine.base import Engine, GenerationResult


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
