"""Pair a test with the function it exercises: Python imports, the called names, their source."""

from __future__ import annotations

import re

from repolsp.trainer.snapshot import Snapshot


def python_imports(text: str) -> dict[str, tuple[str, str | None]]:
    """Names a Python file imports -> (module, imported name): `from m import a as b` ->
    b: (m, a); `import m` -> m: (m, None). Relative imports keep their leading dots."""

    found: dict[str, tuple[str, str | None]] = {}
    for match in re.finditer(r"^from\s+([.\w]+)\s+import\s+\(?([^)]+?)\)?\s*$", text, re.MULTILINE):
        module = match.group(1)
        for part in match.group(2).replace("\\", " ").split(","):
            bits = part.strip().split()
            if bits and bits[0] != "*":
                found[bits[-1]] = (module, bits[0])
    for match in re.finditer(r"^import\s+([\w.]+)(?:\s+as\s+(\w+))?", text, re.MULTILINE):
        found[match.group(2) or match.group(1).split(".")[0]] = (match.group(1), None)
    return found


def _module_paths(dotted: str) -> list[str]:
    base = dotted.lstrip(".").replace(".", "/")
    return [f"{base}.py", f"{base}/__init__.py", f"src/{base}.py", f"src/{base}/__init__.py"]


def find_tested_function(test_name: str, test_body: str, imports: dict[str, tuple[str, str | None]],
                         snapshot: Snapshot, commit_texts: dict[str, str]) -> tuple[str, str] | None:
    """(module path, function source) of the function a test exercises, paired by import and
    name: an imported name the test calls, preferring one that the test's name contains."""

    called = set(re.findall(r"\b([A-Za-z_]\w*)\s*\(", test_body))
    called |= {m.group(1) for m in re.finditer(r"\b\w+\.([A-Za-z_]\w*)\s*\(", test_body)}
    candidates: list[tuple[int, str, str]] = []
    for name in called:
        module = real_name = None
        origin = imports.get(name)
        if origin is not None and origin[1] is not None:
            module, real_name = origin
        else:
            # `m.f(...)` where m is an imported module.
            for alias, (dotted, attr) in imports.items():
                if re.search(rf"\b{re.escape(alias)}\.{re.escape(name)}\s*\(", test_body):
                    module = dotted if attr is None else f"{dotted}.{attr}"
                    real_name = name
                    break
        if not module or not real_name:
            continue
        score = 2 if real_name.lower() in test_name.lower() else 1
        candidates.append((score, real_name, module))
    for score, name, module in sorted(candidates, key=lambda c: (-c[0], c[1])):
        for path in _module_paths(module):
            source_text = commit_texts.get(path) or snapshot.text(path)
            if source_text is None:
                continue
            source = function_source(source_text, name)
            if source:
                return path, source
    return None


def function_source(text: str, name: str) -> str | None:
    """Source of the top-level Python function or class `name` in `text` (at most 60 lines)."""

    match = re.search(rf"^(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b", text, re.MULTILINE)
    if match is None:
        return None
    lines = text[match.start():].splitlines(keepends=True)
    out = [lines[0]]
    for line in lines[1:61]:
        if line.strip() and not line[0].isspace() and not line.lstrip().startswith((")", "#")):
            break
        out.append(line)
    return "".join(out).rstrip() + "\n"
