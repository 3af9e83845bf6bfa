"""Which files and examples the trainer may learn from: vendored, generated, minified, lock and
binary files, large files, and near-duplicate examples are left out. The folder, name, header
and minified rules are the workspace index's own (`server.context.skip_rules`)."""

from __future__ import annotations

import hashlib
import re

from repolsp.server.context.skip_rules import (
    LOCK_FILES,
    generated_header,
    generated_name,
    in_skipped_dir,
    looks_minified,
)

MAX_FILE_BYTES = 1_000_000


def is_test_path(path: str) -> bool:
    """A test file by the usual conventions (tests/ folders, test_*.py, *_test.py, conftest)."""
    parts = path.split("/")
    name = parts[-1]
    return (any(part in ("test", "tests", "testing") for part in parts[:-1])
            or name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py")


def path_excluded(path: str) -> str | None:
    """Why `path` is never mined ("vendored", "lock", "generated"), or None if it may be."""
    if in_skipped_dir(path):
        return "vendored"
    name = path.rsplit("/", 1)[-1]
    if name in LOCK_FILES:
        return "lock"
    if generated_name(name):
        return "generated"
    return None


def content_excluded(data: bytes) -> str | None:
    """Why file contents are not mined ("large", "binary", "generated", "minified"), or None."""
    if len(data) > MAX_FILE_BYTES:
        return "large"
    if b"\x00" in data[:8192]:
        return "binary"
    if generated_header(data):
        return "generated"
    if looks_minified(data.decode("utf-8", "replace")):
        return "minified"
    return None


def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def dedup_key(kind: str, completion: str, prefix_tail: str) -> str:
    """Key equal for near-duplicate examples: same kind, same target and same few lines before
    it, whitespace differences ignored (re-indented or re-wrapped copies collapse)."""
    tail = "\n".join(prefix_tail.splitlines()[-3:])
    digest = hashlib.sha1(f"{kind}\x00{_normalize(completion)}\x00{_normalize(tail)}".encode())
    return digest.hexdigest()
