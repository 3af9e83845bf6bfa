"""Which files the workspace index reads: `git ls-files` in a git work tree, every `.gitignore`
(pathspec) elsewhere, the shared skip rules (`skip_rules`), and paths that match an import."""

from __future__ import annotations

import logging
import os
import pathlib
import re
import subprocess

from repolsp.server.context.skip_rules import (
    generated_header,
    generated_name,
    in_skipped_dir,
    skipped_dir,
)

from .languages import source_extensions

log = logging.getLogger(__name__)


# Code files without a grammar here still get line-window chunks.
OTHER_CODE_EXTENSIONS = frozenset({
    ".rb", ".php", ".kt", ".kts", ".scala", ".swift", ".cs", ".lua", ".sh", ".bash", ".pl", ".r",
    ".jl", ".dart", ".ex", ".exs", ".erl", ".hs", ".ml", ".clj", ".m", ".mm", ".zig", ".nim",
    ".vue", ".svelte", ".sql", ".proto",
})




def skip_reason(path: pathlib.Path, max_file_bytes: int, head: bytes | None = None) -> str | None:
    """Why a file is not indexed ("large", "binary", "minified", "generated", "not code"), or None."""
    name = path.name
    suffix = path.suffix.lower()
    if suffix not in source_extensions() and suffix not in OTHER_CODE_EXTENSIONS:
        return "not code"
    if generated_name(name):
        return "generated"
    try:
        size = path.stat().st_size
    except OSError:
        return "unreadable"
    if size > max_file_bytes:
        return "large"
    if size == 0:
        return "empty"
    if head is None:
        try:
            with open(path, "rb") as handle:
                head = handle.read(16384)
        except OSError:
            return "unreadable"
    if b"\x00" in head[:8192]:
        return "binary"
    if generated_header(head):
        return "generated"
    return None


def is_git_worktree(root: pathlib.Path) -> bool:
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--is-inside-work-tree"],
            capture_output=True, text=True, timeout=10, check=False,
        )
        return result.returncode == 0 and result.stdout.strip() == "true"
    except (OSError, subprocess.SubprocessError):
        return False


def git_files(root: pathlib.Path) -> list[str] | None:
    """Tracked and untracked-but-not-ignored files under ``root`` (relative), or None on failure."""
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            capture_output=True, timeout=60, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    names = result.stdout.decode("utf-8", "surrogateescape").split("\0")
    return sorted({n for n in names if n})


def walk_with_gitignore(root: pathlib.Path) -> list[str]:
    """Files under ``root`` (relative, '/'-separated) not ignored by any ``.gitignore`` above them."""
    try:
        import pathspec
    except ImportError:  # degrade: no ignore rules beyond the skipped folders
        pathspec = None
    found: list[str] = []
    # Stack of (directory relative to root, list of (base dir, spec)) inherited rules.
    stack: list[tuple[str, list]] = [("", [])]
    while stack:
        rel_dir, rules = stack.pop()
        abs_dir = root / rel_dir if rel_dir else root
        ignore_file = abs_dir / ".gitignore"
        if pathspec is not None and ignore_file.is_file():
            try:
                lines = ignore_file.read_text("utf-8", "replace").splitlines()
                rules = rules + [(rel_dir, pathspec.GitIgnoreSpec.from_lines(lines))]
            except (OSError, ValueError):
                log.warning("unreadable .gitignore %s", ignore_file)
        try:
            entries = sorted(os.scandir(abs_dir), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir and skipped_dir(entry.name):
                continue
            if _ignored(rel, is_dir, rules):
                continue
            if is_dir:
                stack.append((rel, rules))
            elif entry.is_file():
                found.append(rel)
    return sorted(found)


def _ignored(rel: str, is_dir: bool, rules: list) -> bool:
    ignored = False
    for base, spec in rules:
        sub = rel[len(base) + 1:] if base else rel
        candidate = sub + "/" if is_dir else sub
        result = spec.check_file(candidate)
        if result.include is not None:
            ignored = bool(result.include)
    return ignored


def ignored_by_gitignores(root: pathlib.Path, rel: str) -> bool:
    """True when ``rel`` (a file under ``root``) or a folder above it is ignored by the
    ``.gitignore`` files from ``root`` down to its folder (for roots that are not git work trees)."""
    try:
        import pathspec
    except ImportError:
        return False
    parts = rel.split("/")
    rules: list = []
    for depth in range(len(parts)):
        rel_dir = "/".join(parts[:depth])
        if depth and _ignored(rel_dir, True, rules):
            return True
        ignore_file = (root / rel_dir / ".gitignore") if rel_dir else root / ".gitignore"
        if ignore_file.is_file():
            try:
                lines = ignore_file.read_text("utf-8", "replace").splitlines()
                rules = rules + [(rel_dir, pathspec.GitIgnoreSpec.from_lines(lines))]
            except (OSError, ValueError):
                pass
    return _ignored(rel, False, rules)


def module_fragment(module: str) -> str:
    text = module.strip().strip("'\"<>")
    while text.startswith(("./", "../")):
        text = text.split("/", 1)[1] if "/" in text else ""
    for prefix in ("crate::", "super::", "self::"):
        text = text.removeprefix(prefix)
    text = text.replace("::", "/").replace("\\", "/")
    if "/" not in text:
        text = text.replace(".", "/")
    text = re.sub(r"\.(py|js|ts|tsx|jsx|h|hpp|go|rs)$", "", text)
    return text.strip("/")


def path_matches(path: str, fragments: list[str]) -> bool:
    """True when a file is plausibly the module an import names: the file or its folder ends
    with the import path, or with the import path less its last part (``use a::b::item``), or
    (Go, Java packages) its folder is named like the import's last part."""
    if not fragments:
        return False
    stem = re.sub(r"\.[A-Za-z0-9+]+$", "", path)
    folder = stem.rsplit("/", 1)[0] if "/" in stem else ""
    for fragment in fragments:
        parent = fragment.rsplit("/", 1)[0] if "/" in fragment else ""
        last = fragment.rsplit("/", 1)[-1]
        package_files = tuple(fragment + suffix for suffix in ("", "/__init__", "/index", "/mod"))
        if _ends_with_part(stem, package_files) or _ends_with_part(folder, (fragment,)):
            return True
        if parent and _ends_with_part(stem, (parent, parent + "/mod")):
            return True  # `use a::b::item` / `import a.b.Class`: the module file is a/b
        if folder and _ends_with_part(folder, (last,)):
            return True
    return False


def _ends_with_part(path: str, endings: tuple[str, ...]) -> bool:
    """``path`` ends with one of ``endings`` at a '/' boundary."""
    return any(path == e or path.endswith("/" + e) for e in endings)


def ignored_file(root: pathlib.Path, absolute: pathlib.Path, is_git: bool) -> bool:
    """Whether one file under root is ignored: `git check-ignore` in a git work tree, else the
    `.gitignore` files from root down to it."""
    if is_git:
        try:
            result = subprocess.run(["git", "-C", str(root), "check-ignore", "-q", str(absolute)],
                                    capture_output=True, timeout=10, check=False)
            return result.returncode == 0
        except (OSError, subprocess.SubprocessError):
            return False
    return ignored_by_gitignores(root, absolute.relative_to(root).as_posix())


def source_files(roots: list[pathlib.Path], max_files: int) -> tuple[list[tuple[str, pathlib.Path]], dict]:
    """(display path, absolute path) of the source files under `roots` before content checks
    (not ignored, not in vendored or build folders, code extensions; the `max_files` shallowest),
    and for each root whether it is a git work tree."""
    found: list[tuple[str, pathlib.Path]] = []
    git_roots: dict[pathlib.Path, bool] = {}
    for root in roots:
        git_roots[root] = is_git_worktree(root)
        names = git_files(root) if git_roots[root] else None
        if names is None:
            names = walk_with_gitignore(root)
        for rel in names:
            if in_skipped_dir(rel):
                continue
            key = rel if len(roots) == 1 else f"{root.name}/{rel}"
            found.append((key, root / rel))
    code = [(k, a) for k, a in found if a.suffix.lower() in source_extensions()
            or a.suffix.lower() in OTHER_CODE_EXTENSIONS]
    if len(code) > max_files:
        log.warning("workspace has %d source files; indexing the %d shallowest", len(code), max_files)
        code.sort(key=lambda item: (item[0].count("/"), item[0]))
        code = code[:max_files]
    return code, git_roots
