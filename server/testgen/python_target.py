"""The Python function under test as the ``ast`` sees it: how to call it, how to build its
object, which calls to try and which names a test must import."""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field

from repolsp.server.testgen.arguments import (
    Candidate,
    call_arguments,
    dedupe,
    doctest_arguments,
    full_call,
    model_proposals,
    parameters,
    render_args,
    variations,
)

_BUILTIN_NAMES = frozenset(dir(builtins))


@dataclass
class PyTarget:
    """One function or method of the module; lines are 1-based and inclusive."""

    name: str
    owner: str | None
    style: str  # function | method | static | classmethod | property
    func: ast.FunctionDef | ast.AsyncFunctionDef
    cls: ast.ClassDef | None
    tree: ast.Module
    first_line: int
    last_line: int
    is_async: bool = False
    is_generator: bool = False
    module_names: set[str] = field(default_factory=set)
    raised: set[str] = field(default_factory=set)  # exception names the body raises itself

    @property
    def params(self):
        """Parameters without the receiver."""
        return parameters(self.func, self.style in ("method", "classmethod", "property"))

    @property
    def allowed(self) -> set[str]:
        """Names a rebuilt call may use: the module's top-level names and builtins."""
        return self.module_names | _BUILTIN_NAMES


def _decorator_names(func) -> set[str]:
    return {d.id if isinstance(d, ast.Name) else d.attr if isinstance(d, ast.Attribute) else "" for d in func.decorator_list}


def top_level_names(tree: ast.Module) -> set[str]:
    """Names bound at module level (definitions, assignments, imports)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names if a.name != "*")
    return names


def locate(tree: ast.Module, name: str, line: int) -> PyTarget | None:
    """The top-level function or class method named ``name`` whose definition covers ``line``."""
    for node in tree.body:
        candidates = [(node, None)] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else (
            [(c, node) for c in node.body if isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef))]
            if isinstance(node, ast.ClassDef) else [])
        for func, cls in candidates:
            first = min([func.lineno, *(d.lineno for d in func.decorator_list)])
            if func.name != name or not first <= line <= func.end_lineno:
                continue
            decorators = _decorator_names(func)
            style = "function" if cls is None else "static" if "staticmethod" in decorators else (
                "classmethod" if "classmethod" in decorators else "property" if {"property", "cached_property"} & decorators
                else "method")
            inner = [n for n in ast.walk(func) if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                     or n is func]
            raised = {_exception_name(n.exc) for n in ast.walk(func) if isinstance(n, ast.Raise) and n.exc is not None}
            return PyTarget(
                name, cls.name if cls else None, style, func, cls, tree, first, func.end_lineno,
                is_async=isinstance(func, ast.AsyncFunctionDef),
                is_generator=any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in inner),
                module_names=top_level_names(tree), raised=raised - {""})
    return None


def _exception_name(node: ast.AST) -> str:
    node = node.func if isinstance(node, ast.Call) else node
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def call_expression(target: PyTarget, args: str, receiver: str = "{receiver}") -> str:
    """The expression that calls the target (``{receiver}`` stands for the constructed object)."""
    if target.style == "function":
        call = f"{target.name}({args})"
    elif target.style in ("static", "classmethod"):
        call = f"{target.owner}.{target.name}({args})"
    elif target.style == "property":
        return f"{receiver}.{target.name}"
    else:
        call = f"{receiver}.{target.name}({args})"
    if target.is_async:
        call = f"asyncio.run({call})"
    return f"list({call})" if target.is_generator else call


def candidate_calls(target: PyTarget, source: str, other_texts: list[str], model_raw: str | None) -> list[Candidate]:
    """Calls to try, best first: doctests, the model's, call sites, then variations."""
    if target.style == "property":
        return [Candidate("", "variation")]
    allowed = target.allowed
    docstring = ast.get_docstring(target.func)
    found = [Candidate(a, "doctest") for a in doctest_arguments(docstring, target.name, allowed)]
    found += model_proposals(model_raw, target.name, allowed)
    body_lines = source.splitlines()
    outside = "\n".join(body_lines[:target.first_line - 1] + body_lines[target.last_line:])
    for text in [outside, *other_texts]:
        found += [Candidate(a, "call site") for a in call_arguments(text, target.name, allowed)]
    found += variations(target.params, target.func, target.tree)
    return dedupe(found)


def constructors(target: PyTarget, source: str, other_texts: list[str]) -> list[str]:
    """Expressions that build the method's object, best first: the repository's own calls of the
    class (or its factories), then one from ``__init__`` / dataclass fields / no arguments."""
    if target.style not in ("method", "property") or target.cls is None:
        return []
    owner, allowed = target.cls.name, target.allowed
    found: list[str] = []
    for text in [source, *other_texts]:
        found += [f"{owner}({a})" for a in call_arguments(text, owner, allowed)]
        for node in target.cls.body:
            if isinstance(node, ast.FunctionDef) and "classmethod" in _decorator_names(node):
                found += [f"{owner}.{node.name}({a})" for a in call_arguments(text, f"{owner}.{node.name}", allowed)]
    init = next((n for n in target.cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is not None:
        params = parameters(init, True)
        found += [f"{owner}({c.args})" for c in variations(params, init, target.tree)[:3]]
        found.append(f"{owner}({full_call(params, init, target.tree)})")
    else:
        fields = [n for n in target.cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
                  and "ClassVar" not in ast.unparse(n.annotation)]
        if fields:
            from repolsp.server.testgen.arguments import Param

            params = [Param(f.target.id, "positional", ast.unparse(f.annotation),
                            ast.unparse(f.value) if f.value is not None else None) for f in fields]
            found += [f"{owner}({render_args(params, {})})" if all(p.default for p in params) else None]
            found += [f"{owner}({c.args})" for c in variations(params, target.cls, target.tree)[:3]]
            found.append(f"{owner}({full_call(params, target.cls, target.tree)})")
        found.append(f"{owner}()")
    return list(dict.fromkeys(f for f in found if f))[:8]


def names_used(expressions: list[str], target: PyTarget) -> set[str]:
    """Module-level names of the target module that the expressions use (to import them)."""
    used: set[str] = set()
    for text in expressions:
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError:
            continue
        used.update(n.id for n in ast.walk(tree) if isinstance(n, ast.Name))
    return used & target.module_names


def import_lines(names: set[str], target: PyTarget, module: str) -> list[str]:
    """Import lines for ``names``: a name the module itself imports is imported from where the
    module got it (``from datetime import date``, ``import math``); its own names from it."""
    lines: list[str] = []
    own: list[str] = []
    for name in sorted(names):
        origin = _import_of(target.tree, name)
        if origin:
            lines.append(origin)
        else:
            own.append(name)
    lines += [f"from {module} import {name}" for name in own]
    return list(dict.fromkeys(lines))


def _import_of(tree: ast.Module, name: str) -> str | None:
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if (alias.asname or alias.name.split(".")[0]) == name:
                    return f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    return f"from {node.module} import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
    return None
