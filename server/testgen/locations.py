"""Where a test goes: module paths and the project's test-file conventions per language."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from repolsp.server.context.document import Document
from repolsp.server.context.skip_rules import SKIPPED_DIRS

MAX_WALK_FILES = 20_000


def _walk_files(root: Path, limit: int = MAX_WALK_FILES):
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS and not d.startswith("."))
        for name in filenames:
            seen += 1
            if seen > limit:
                return
            yield Path(dirpath) / name


def _package_dir_mapping(root: Path) -> dict[str, str]:
    """setuptools ``package-dir`` of the project's pyproject.toml: package -> folder."""
    try:
        data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    mapping = data.get("tool", {}).get("setuptools", {}).get("package-dir", {})
    return {str(k): str(v) for k, v in mapping.items()} if isinstance(mapping, dict) else {}


def python_module_path(file_path: Path, root: Path) -> str:
    """The dotted module path that imports ``file_path``: from the top package (the highest
    folder chain with ``__init__.py``), through a src/ layout, or through pyproject's
    ``package-dir`` mapping; a loose file imports by its own name."""
    file_path = Path(file_path)
    parts = [] if file_path.stem == "__init__" else [file_path.stem]
    folder = file_path.parent
    for package, mapped in sorted(_package_dir_mapping(root).items(), key=lambda kv: -len(kv[1])):
        base = (root / mapped).resolve()
        try:
            rel = file_path.resolve().parent.relative_to(base)
        except ValueError:
            continue
        prefix = [p for p in package.split(".") if p]
        return ".".join([*prefix, *rel.parts, *parts])
    while (folder / "__init__.py").is_file() and folder != folder.parent:
        parts.insert(0, folder.name)
        if folder == root:
            break
        folder = folder.parent
    return ".".join(parts) if parts else file_path.stem


def find_existing_test_file(root: Path, names: list[str], prefer_parts: list[str]) -> Path | None:
    """An existing test file with one of ``names`` under ``root``, preferring one inside a tests
    folder whose path shares the most ``prefer_parts`` (the module's package path)."""
    wanted = set(names)
    found = [p for p in _walk_files(root) if p.name in wanted]
    if not found:
        return None

    def score(path: Path) -> tuple:
        rel = path.relative_to(root).parts
        in_tests = any(part in ("tests", "test", "testing") for part in rel[:-1])
        shared = len(set(rel[:-1]) & set(prefer_parts))
        return (in_tests, shared, -len(rel))

    return max(found, key=score)


def _tests_folder(file_path: Path, root: Path) -> Path:
    """The tests folder nearest to the file (walking up to the root), or root/tests."""
    folder = file_path.parent
    while True:
        for name in ("tests", "test"):
            candidate = folder / name
            if candidate.is_dir():
                return _busiest_test_folder(candidate)
        if folder == root or folder == folder.parent or root not in folder.parents:
            break
        folder = folder.parent
    return root / "tests"


def _busiest_test_folder(tests: Path) -> Path:
    """``tests`` itself if it holds test files, else its subfolder (``unit``...) that holds most."""
    direct = list(tests.glob("test_*.py"))
    if direct:
        return tests
    best, best_count = tests, 0
    for sub in sorted(p for p in tests.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        count = len(list(sub.glob("test_*.py")))
        if count > best_count or (count == best_count and count and sub.name == "unit"):
            best, best_count = sub, count
    return best


def python_test_path(file_path: Path, root: Path, module: str) -> Path:
    """Where a Python test for ``module`` goes: an existing test_<module>.py, else a new one in
    the project's tests folder."""
    stem = module.rsplit(".", 1)[-1]
    existing = find_existing_test_file(root, [f"test_{stem}.py", f"{stem}_test.py"], module.split("."))
    if existing is not None:
        return existing
    return _tests_folder(file_path, root) / f"test_{stem}.py"


def conventional_test_path(doc_path: Path, root: Path, language: str, doc: Document | None = None) -> Path:
    """The conventional test file for a source file of ``language``."""
    if language == "python":
        return python_test_path(doc_path, root, python_module_path(doc_path, root))
    if language == "go":
        return doc_path.with_name(doc_path.stem + "_test.go")
    if language in ("javascript", "typescript", "tsx"):
        return doc_path.with_name(f"{doc_path.stem}.test{doc_path.suffix}")
    if language == "rust":
        return doc_path
    if language == "java":
        parts = list(doc_path.parts)
        for i in range(len(parts) - 2):
            if parts[i:i + 3] == ["src", "main", "java"]:
                parts[i + 1] = "test"
                return Path(*parts).with_name(doc_path.stem + "Test.java")
        return doc_path.with_name(doc_path.stem + "Test.java")
    raise ValueError(f"no test convention for {language}")


def _read_existing(path: Path, open_text: str | None) -> str | None:
    if open_text is not None:
        return open_text
    try:
        return path.read_bytes().decode("utf-8")  # bytes: keep the file's CRLF line endings
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()
