"""Arguments to call a Python function with, as source text, best first.

Sources, in order: doctest lines of its docstring, the model's proposals, call sites in this
module and the repository, then one-at-a-time variations built from per-parameter pools: its
default, literals the body compares the parameter with (module constants resolved), literals of
the same name elsewhere in the module (``name = ...``, ``name=...`` keywords), the type hint, how
the body uses the parameter (``p.lower()``, ``p * 6.0``, ``for x in p``), and its name.
Everything here is static: nothing runs (see `sandbox` for that).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

MAX_CALLS = 40
BUILD = "__repolsp_build__"
_NOT_BUILT = frozenset({"Any", "Callable", "Iterable", "Iterator", "Sequence", "Mapping", "Path", "PurePath",
                        "Self", "TypeVar", "Generator", "Awaitable", "Coroutine", "IO", "TextIO", "BinaryIO",
                        "Pattern", "Match", "Type", "Hashable", "Sized", "Collection", "MutableMapping"})
_STR_METHODS = {"lower", "upper", "strip", "split", "startswith", "endswith", "replace", "join", "encode",
                "format", "splitlines", "lstrip", "rstrip", "isdigit", "isalpha", "title", "find", "partition"}
_LIST_METHODS = {"append", "extend", "sort", "pop", "insert", "index", "count", "remove"}
_DICT_METHODS = {"items", "keys", "values", "get", "setdefault", "update"}
POOLS = {
    "int": ["3", "0", "1", "-2", "10"],
    "float": ["0.5", "0.0", "1.0", "0.25", "0.4", "0.75", "0.9", "-2.5"],
    "number": ["0.5", "0", "1", "0.25", "0.75", "2"],
    "complex": ["1j", "(1+2j)"],
    "bool": ["True", "False"],
    "str": ["'abc'", "''", "'a'", "'1.0'", "'Hello, World'", "'a b c'"],
    "char": ["'a'", "'é'", "'😀'"],
    "bytes": ["b'abc'", "b''"],
    "list": ["[1, 2, 3]", "[]", "[3, 1, 2]"],
    "dict": ["{'a': 1}", "{}"],
    "set": ["{1, 2}", "set()"],
    "tuple": ["(1, 2)", "()"],
    "none": ["None"],
}
_NAME_HINTS = [
    ((r"^(n|i|j|k|count|size|index|idx|num|number|width|height|length|limit|depth|level|times|start|stop|step)$"
      r"|_(count|size|index|len|num)$|^(num|n)_"), "int"),
    ((r"^(s|text|name|string|word|line|prefix|suffix|sep|label|title|key|path|message|msg|char|pattern)$"
      r"|_(name|text|str|key|prefix|suffix)$"), "str"),
    (r"^(items|values|xs|ys|seq|lst|elements|numbers|data|array|arr|nums)$|s$", "list"),
    (r"^(ch|char|c|letter|character)$", "char"),
    (r"^(is|has|can|should|use|allow|enable)_|^(flag|strict|verbose|force|reverse)$", "bool"),
    (r"^(mapping|options|config|kwargs|table|d|dct|dict_)$", "dict"),
]


@dataclass
class Param:
    """One parameter: ``kind`` positional | keyword | varargs | varkw."""

    name: str
    kind: str
    annotation: str | None = None
    default: str | None = None


@dataclass
class Candidate:
    """One call's arguments (the text between the parentheses) and where they came from."""

    args: str
    source: str  # doctest | model | call site | variation
    check: str | None = None  # the model's own ``f(x) == y``, kept only when it holds
    expected: str | None = None  # the model's expected-value text
    extra: dict = field(default_factory=dict)


def parameters(func: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> list[Param]:
    """The parameters of ``func`` without a method's receiver."""
    a = func.args
    positional = [*a.posonlyargs, *a.args]
    defaults = [None] * (len(positional) - len(a.defaults)) + [ast.unparse(d) for d in a.defaults]
    found = [Param(p.arg, "positional", ast.unparse(p.annotation) if p.annotation else None, d)
             for p, d in zip(positional, defaults)]
    if method and found and not _is_static(func):
        found = found[1:]
    if a.vararg:
        found.append(Param(a.vararg.arg, "varargs"))
    for p, d in zip(a.kwonlyargs, a.kw_defaults):
        found.append(Param(p.arg, "keyword", ast.unparse(p.annotation) if p.annotation else None,
                           ast.unparse(d) if d is not None else None))
    if a.kwarg:
        found.append(Param(a.kwarg.arg, "varkw"))
    return found


def _is_static(func) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in func.decorator_list)


def module_constants(tree: ast.Module) -> dict[str, str]:
    """Top-level ``NAME = <expression without names>``: name -> expression text."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and not any(isinstance(n, ast.Name) for n in ast.walk(node.value)) and _small(node.value):
            found[node.targets[0].id] = ast.unparse(node.value)
    return found


def _small(node: ast.AST) -> bool:
    return len(ast.unparse(node)) <= 60 and not any(isinstance(n, (ast.Call, ast.Lambda)) for n in ast.walk(node))


def _literal_text(node: ast.AST, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    if not any(isinstance(n, ast.Name) for n in ast.walk(node)) and _small(node):
        try:
            ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
        return ast.unparse(node)
    return None


def _compared_literals(func: ast.AST, name: str, constants: dict[str, str]) -> list[str]:
    """Literals the body compares ``name`` with (boundaries of its branches)."""
    found: list[str] = []
    for node in ast.walk(func):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        if not any(isinstance(s, ast.Name) and s.id == name for s in sides):
            continue
        for side in sides:
            elements = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
            for element in elements:
                text = _literal_text(element, constants)
                if text is not None and text not in found:
                    found.append(text)
    return found


def _method_literals(func: ast.AST, name: str) -> list[str]:
    """Strings that pass the body's ``p.endswith(x)`` / ``p.startswith(x)`` / ``x in p`` tests."""
    found: list[str] = []
    for node in ast.walk(func):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) \
                and node.func.value.id == name and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            literal = node.args[0].value
            text = {"endswith": f"abc{literal}", "startswith": f"{literal}abc", "split": f"a{literal}b{literal}c",
                    "count": f"a{literal}b", "find": f"a{literal}b", "partition": f"a{literal}b"}.get(node.func.attr)
            if text is not None and repr(text) not in found:
                found.append(repr(text))
    return found


def _same_name_literals(tree: ast.Module, name: str, constants: dict[str, str]) -> list[str]:
    """``name = <literal>`` and ``f(name=<literal>)`` anywhere in the module."""
    found: list[str] = []
    for node in ast.walk(tree):
        value = None
        if isinstance(node, ast.keyword) and node.arg == name or isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            value = node.value
        text = _literal_text(value, constants) if value is not None else None
        if text is not None and text not in found:
            found.append(text)
    return found


def _usage_kind(func: ast.AST, name: str) -> str | None:
    """What the body does with the parameter says what it is."""
    for node in ast.walk(func):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == name:
            if node.attr in _STR_METHODS:
                return "str"
            if node.attr in _LIST_METHODS:
                return "list"
            if node.attr in _DICT_METHODS:
                return "dict"
        if isinstance(node, ast.BinOp) and any(isinstance(s, ast.Name) and s.id == name for s in (node.left, node.right)):
            other = node.right if isinstance(node.left, ast.Name) and node.left.id == name else node.left
            if isinstance(other, ast.Constant) and isinstance(other.value, float):
                return "float"
            if isinstance(other, ast.Constant) and isinstance(other.value, int) and not isinstance(node.op, ast.Mod):
                return "number"
            if isinstance(node.op, (ast.Sub, ast.Div, ast.FloorDiv, ast.Pow)):
                return "number"
        if isinstance(node, (ast.For, ast.comprehension)) and isinstance(node.iter, ast.Name) and node.iter.id == name:
            return "list"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("len", "sorted", "sum") \
                and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id == name:
            return "list"
    return None


def hint_values(annotation: str | None) -> list[str]:
    """Values for a type hint's text (``int``, ``list[str]``, ``Optional[float]``, ``Literal['a']``)."""
    if not annotation:
        return []
    text = annotation.strip().strip("'\"").replace("typing.", "")
    optional = re.fullmatch(r"Optional\[(.*)\]", text)
    if optional:
        return [*hint_values(optional.group(1)), "None"]
    if "|" in text and "[" not in text.split("|")[0]:
        return [v for part in text.split("|") for v in hint_values(part.strip())]
    literal = re.fullmatch(r"Literal\[(.*)\]", text)
    if literal:
        return [part.strip() for part in literal.group(1).split(",") if part.strip()]
    head, _, inner = text.partition("[")
    head = head.strip().lower().removeprefix("collections.abc.")
    inner = inner.rstrip("]")
    if head in ("list", "sequence", "iterable", "collection", "mutablesequence") and inner:
        item = hint_values(inner.split(",")[0]) or ["1", "2"]
        return [f"[{', '.join((item * 3)[:3])}]" if len(item) < 3 else f"[{', '.join(item[:3])}]", "[]"]
    if head in ("dict", "mapping") and inner and "," in inner:
        key, value = (hint_values(p) or ["'a'"] for p in inner.split(",", 1))
        return [f"{{{key[0]}: {value[0]}}}", "{}"]
    if head == "tuple" and inner and "..." not in inner:
        items = [(hint_values(p) or ["None"])[0] for p in inner.split(",")]
        return [f"({', '.join(items)}{',' if len(items) == 1 else ''})"]
    if text == "None":
        return ["None"]
    if re.fullmatch(r"[A-Z]\w*(\.[A-Z]\w*)*", text) and text not in _NOT_BUILT:
        return [f"{BUILD}({text!r})"]  # a class: the sandbox builds one from its signature
    aliases = {"sequence": "list", "iterable": "list", "mapping": "dict", "frozenset": "set", "none": "none",
               "any": "number", "object": "number"}
    return list(POOLS.get(aliases.get(head, head), []))


def pool_for(param: Param, func: ast.AST, tree: ast.Module, constants: dict[str, str]) -> list[str]:
    """Values to try for one parameter, best first, without repeats."""
    values: list[str] = []
    compared = _compared_literals(func, param.name, constants)
    hinted = hint_values(param.annotation)
    usage = _usage_kind(func, param.name)
    named = next((kind for pattern, kind in _NAME_HINTS if re.search(pattern, param.name)), None)
    guessed = POOLS.get(usage or named or "", []) if not hinted else (
        POOLS["char"] if named == "char" and param.annotation == "str" else [])
    for value in [*guessed[:1], *hinted[:1], *compared, *_method_literals(func, param.name), *_same_name_literals(tree, param.name, constants), *hinted[1:],
                  *([param.default] if param.default else []), *guessed]:
        if value not in values:
            values.append(value)
    if not values:
        values = ["0.5", "1", "0", "0.25", "0.75", "-1", "'abc'", "[1, 2, 3]"]
    return values[:8]


def render_args(params: list[Param], values: dict[str, str]) -> str:
    """The argument text: positional parameters by position, keyword-only ones by name."""
    out, skipped = [], False
    for p in params:
        if p.name not in values:
            skipped = skipped or p.kind == "positional"
            continue
        keyword = p.kind == "keyword" or skipped
        out.append(f"{p.name}={values[p.name]}" if keyword else values[p.name])
    return ", ".join(out)


def variations(params: list[Param], func: ast.AST, tree: ast.Module) -> list[Candidate]:
    """A base call from each required parameter's first value, then one parameter varied at a
    time (optional ones passed by name), so each value's effect shows on its own."""
    constants = module_constants(tree)
    usable = [p for p in params if p.kind in ("positional", "keyword")]
    pools = {p.name: pool_for(p, func, tree, constants) for p in usable}
    required = [p for p in usable if p.default is None]
    base = {p.name: pools[p.name][0] for p in required}
    calls = [Candidate(render_args(params, base), "variation")]
    for p in usable:
        alternatives = pools[p.name][1:] if p.default is None else [
            v for v in pools[p.name] if v != p.default][:3]
        for value in alternatives:
            calls.append(Candidate(render_args(params, {**base, p.name: value}), "variation"))
    # Then two parameters at a time: branches that need two conditions at once.
    for i, first in enumerate(required):
        for second in required[i + 1:]:
            for a in pools[first.name][1:3]:
                for b in pools[second.name][1:3]:
                    calls.append(Candidate(render_args(params, {**base, first.name: a, second.name: b}), "variation"))
    return calls


def full_call(params: list[Param], func: ast.AST, tree: ast.Module) -> str:
    """Every parameter given a value of its own (not its default): an object with all its parts."""
    constants = module_constants(tree)
    values = {}
    for p in params:
        if p.kind in ("positional", "keyword"):
            pool = [v for v in pool_for(p, func, tree, constants) if v != p.default and v not in ("None", "''", "[]")]
            if pool:
                values[p.name] = pool[0]
    required = [p for p in params if p.default is None and p.kind == "positional"]
    # Optional parameters by name: `Item('abc', 'abc', quantity=3)` reads better than by position.
    head = render_args(required, {p.name: values[p.name] for p in required if p.name in values})
    tail = [f"{p.name}={values[p.name]}" for p in params if p not in required and p.name in values]
    return ", ".join([part for part in [head] if part] + tail)


def call_arguments(text: str, name: str, allowed: set[str]) -> list[str]:
    """Argument texts of calls ``name(...)`` / ``.name(...)`` in ``text`` whose arguments use only
    literals and ``allowed`` names (module-level names): a local variable cannot be rebuilt."""
    found: list[str] = []
    for match in re.finditer(rf"(?<![\w]){re.escape(name)}\(", text):
        inner = _balanced(text, match.end())
        if inner is None or len(inner) > 300:
            continue
        try:
            call = ast.parse(f"f({inner})", mode="eval").body
        except SyntaxError:
            continue
        names = {n.id for n in ast.walk(call) if isinstance(n, ast.Name)} - {"f"}
        if names - allowed or any(isinstance(n, (ast.Starred, ast.Lambda, ast.NamedExpr)) for n in ast.walk(call)):
            continue
        args = ", ".join([*(ast.unparse(a) for a in call.args),
                          *(f"{k.arg}={ast.unparse(k.value)}" for k in call.keywords if k.arg)])
        if args not in found:
            found.append(args)
    return found


def _balanced(text: str, start: int) -> str | None:
    """The text from ``start`` up to the parenthesis that closes the one just before it."""
    depth, i, quote = 1, start, None
    while i < len(text) and i - start < 400:
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return text[start:i]
        i += 1
    return None


def doctest_arguments(docstring: str | None, name: str, allowed: set[str]) -> list[str]:
    """Arguments of the calls in the docstring's ``>>>`` lines."""
    lines = [line.strip()[4:] for line in (docstring or "").splitlines() if line.strip().startswith(">>> ")]
    return call_arguments("\n".join(lines), name, allowed)


def model_proposals(raw: str | None, name: str, allowed: set[str]) -> list[Candidate]:
    """Calls in the model's test body; an ``assert name(...) == value`` line becomes a check."""
    found: list[Candidate] = []
    for line in (raw or "").splitlines():
        match = re.match(rf"\s*assert\s+(?:[\w.]+\.)?{re.escape(name)}\((.*)\)\s*==\s*(.+?)\s*$", line)
        args = call_arguments(line, name, allowed)
        if not args:
            continue
        if match and _literal_text(_parse_or_none(match.group(2)), {}) is not None:
            found.append(Candidate(args[0], "model", expected=match.group(2)))
        else:
            found.append(Candidate(args[0], "model"))
    return found


def _parse_or_none(text: str) -> ast.AST:
    try:
        return ast.parse(text, mode="eval").body
    except SyntaxError:
        return ast.Name("__invalid__")


def dedupe(calls: list[Candidate]) -> list[Candidate]:
    """First occurrence of each argument text, at most `MAX_CALLS`."""
    seen: set[str] = set()
    kept = []
    for call in calls:
        if call.args not in seen:
            seen.add(call.args)
            kept.append(call)
    return kept[:MAX_CALLS]
