"""Candidate calls, run one by one; executed ONLY inside the sandbox (see `_runner`).

Each call is evaluated in the target module's namespace, under a per-call time limit, with the
target function's executed lines traced; its outcome (value, exception, blocked, timeout) is
appended to a JSON-lines file at once, so the calls before one that hangs are not lost.
"""

import builtins
import collections.abc
import dataclasses
import enum
import importlib
import inspect
import itertools
import json
import math
import signal
import sys
import time
import types
import typing


class CallTimeout(BaseException):
    """Raised by the per-call alarm; a BaseException so that `except Exception` cannot eat it."""


def _on_alarm(signum, frame):
    raise CallTimeout()


def _approx_able(value) -> bool:
    """A float, or a flat list/tuple/dict of numbers with a float: what pytest.approx compares."""
    def number(v):
        return isinstance(v, (int, float, complex)) and not isinstance(v, bool)
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)) and value and all(number(v) for v in value):
        return any(isinstance(v, float) for v in value) and all(
            math.isfinite(v) for v in value if isinstance(v, float))
    if isinstance(value, dict) and value and all(number(v) for v in value.values()):
        return any(isinstance(v, float) for v in value.values())
    return False


def _round_trips(value, namespace: dict) -> tuple[bool, str]:
    text = repr(value)
    if len(text) > 400:
        return False, text[:400]
    try:
        again = eval(text, namespace)  # repr of a value the user's code returned
        same = type(again) is type(value) and bool(again == value)
    except BaseException:  # noqa: BLE001 - any failure means "does not round-trip"
        return False, text
    return same, text


def _describe_value(value, namespace: dict) -> dict:
    same, text = _round_trips(value, namespace)
    kind = type(value)
    found = {"kind": "value", "repr": text, "round_trips": same, "approx": _approx_able(value),
             "type": kind.__name__, "type_module": kind.__module__, "is_none": value is None,
             "is_bool": isinstance(value, bool)}
    found["type_in_module"] = namespace.get(kind.__name__) is kind
    if not same and isinstance(value, (list, tuple)) and 0 < len(value) <= 30 and all(
            type(v).__str__ is not object.__str__ and type(v).__str__ is not type(v).__repr__ for v in value):
        found["str_items"] = [str(v)[:100] for v in value]
    if not same:
        found["str"] = str(value)[:200] if type(value).__str__ is not object.__str__ and \
            type(value).__str__ is not type(value).__repr__ else None
        attrs = {}
        names = list(vars(value)) if hasattr(value, "__dict__") else [
            n for cls in type(value).__mro__ for n in getattr(cls, "__slots__", ())]
        for name in names[:8]:
            attr = getattr(value, name, None)
            if not name.startswith("_") and not callable(attr):
                ok, attr_text = _round_trips(attr, namespace)
                if ok:
                    attrs[name] = {"repr": attr_text, "approx": _approx_able(attr)}
        found["attrs"] = attrs
    return found


BUILD = "__repolsp_build__"
_SIMPLE = {str: "'abc'", int: "3", float: "0.5", bool: "True", bytes: "b'abc'", type(None): "None",
           "str": "'abc'", "int": "3", "float": "0.5", "bool": "True", "bytes": "b'abc'", "None": "None"}
_EMPTY = {list: "[]", tuple: "()", dict: "{}", set: "set()", frozenset: "frozenset()"}


def _value_text(hint, namespace: dict, depth: int) -> str:
    """Source text of a simple value of type ``hint`` (a class of the module is built in turn)."""
    if isinstance(hint, (type, str)) and hint in _SIMPLE:
        return _SIMPLE[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return "None" if type(None) in args else _value_text(args[0], namespace, depth)
    if origin is typing.Literal and args:
        return repr(args[0])
    base = origin or hint
    for kind, text in _EMPTY.items():
        if isinstance(base, type) and (base is kind or (base.__module__ == "collections.abc" and issubclass(kind, base))):
            return text
    if isinstance(hint, type) and depth < 3:
        name = next((k for k, v in namespace.items() if v is hint and not k.startswith("_")), None)
        if name is not None:
            return _build_text(name, namespace, depth + 1)
    return "None"


def _build_text(name: str, namespace: dict, depth: int = 0) -> str:
    """``Name(field=value, ...)`` for a class of the module: its required parameters filled by type."""
    cls = eval(name, namespace)  # a name the module binds
    if isinstance(cls, enum.EnumMeta):
        return f"{name}.{next(iter(cls)).name}"
    try:
        hints = typing.get_type_hints(cls) if dataclasses.is_dataclass(cls) else typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001 - unresolvable annotations: fall back to the raw ones
        hints = {}
    parts = []
    for param in inspect.signature(cls).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or param.default is not param.empty:
            continue
        value = _value_text(hints.get(param.name, param.annotation), namespace, depth)
        parts.append(value if param.kind is param.POSITIONAL_ONLY else f"{param.name}={value}")
    return f"{name}({', '.join(parts)})"


def _builder(namespace: dict, built: dict):
    def build(name: str):
        if name not in built:
            built[name] = _build_text(name, namespace)
        return eval(built[name], namespace)
    return build


def _resolved(text: str, built: dict) -> str:
    for name, source in built.items():
        text = text.replace(f"{BUILD}({name!r})", source)
    return text


def _tracer(path: str, first: int, last: int, lines: set):
    def local(frame, event, arg):
        if event == "line" and first <= frame.f_lineno <= last:
            lines.add(frame.f_lineno)
        return local

    def global_(frame, event, arg):
        if frame.f_code.co_filename == path and first <= frame.f_code.co_firstlineno <= last:
            return local
        return None
    return global_


def _call(expression: str, namespace: dict, per_call_s: float, trace) -> tuple[object, BaseException | None]:
    signal.setitimer(signal.ITIMER_REAL, per_call_s)
    sys.settrace(trace)
    try:
        return eval(expression, namespace), None  # inside the sandbox
    except BaseException as exc:  # noqa: BLE001 - the outcome is what is recorded
        return None, exc
    finally:
        sys.settrace(None)
        signal.setitimer(signal.ITIMER_REAL, 0)


def _outcome(value, error, namespace, violations, before, expression_again, per_call_s) -> dict:
    if len(violations) > before:
        return {"kind": "blocked", "what": violations[-1]}
    if isinstance(error, CallTimeout):
        return {"kind": "timeout"}
    if isinstance(error, MemoryError):
        return {"kind": "blocked", "what": "needs more memory than the sandbox allows"}
    if error is not None:
        kind = type(error)
        return {"kind": "raised", "type": kind.__name__, "type_module": kind.__module__,
                "builtin": getattr(builtins, kind.__name__, None) is kind,
                "type_in_module": namespace.get(kind.__name__) is kind, "message": str(error)[:200]}
    iterator = isinstance(value, collections.abc.Iterator) and not isinstance(value, (str, bytes))
    if iterator:
        value = list(itertools.islice(value, 1000))  # the test compares list(f(...))
    found = _describe_value(value, namespace)
    found["iterator"] = iterator
    again, error_again = _call(f"list({expression_again})" if iterator else expression_again, namespace,
                               per_call_s, None)
    # A second call that differs (time, randomness, state) must not become an `==` assertion.
    if error_again is None and found["round_trips"]:
        found["deterministic"] = _round_trips(again, namespace)[1] == found["repr"]
    elif error_again is None:
        twin = _describe_value(again, namespace)
        keys = ("str", "attrs", "str_items")
        found["deterministic"] = [twin.get(k) for k in keys] == [found.get(k) for k in keys]
    else:
        found["deterministic"] = False
    return found


def run(job: dict, calls_path: str, violations: list) -> dict:
    """Import the module, construct the receiver if any, run each call; the summary."""
    signal.signal(signal.SIGALRM, _on_alarm)
    per_call_s = float(job.get("per_call_s", 1.0))
    started = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, float(job.get("import_s", 5.0)))
    try:
        module = importlib.import_module(job["module"])
    except BaseException as exc:  # noqa: BLE001 - any import failure is reported in one line
        signal.setitimer(signal.ITIMER_REAL, 0)
        what = violations[-1] if violations else f"{type(exc).__name__}: {exc}"
        return {"imported": False, "reason": what.splitlines()[0][:200] if what else type(exc).__name__}
    signal.setitimer(signal.ITIMER_REAL, 0)
    namespace = dict(vars(module))
    namespace.setdefault("__builtins__", builtins)
    if job.get("needs_asyncio"):
        namespace.setdefault("asyncio", importlib.import_module("asyncio"))
    first, last = job["lines"]
    built: dict[str, str] = {}
    namespace[BUILD] = _builder(namespace, built)
    receiver = None
    for constructor in job.get("constructors", []):
        value, error = _call(constructor, namespace, per_call_s, None)
        if error is None:
            receiver = constructor
            break
    results = []
    with open(calls_path, "w", encoding="utf-8") as out:
        for index, call in enumerate(job["calls"]):
            if time.monotonic() - started > job.get("budget_s", 8.0):
                break
            if job.get("constructors") and receiver is None:
                break
            if sum(1 for r in results if r["kind"] == "timeout") >= 2:
                break  # it hangs on every input: more tries only cost time
            prefix = f"({receiver})" if receiver else ""
            expression = call["expression"].replace("{receiver}", prefix)
            lines: set = set()
            before = len(violations)
            value, error = _call(expression, namespace, per_call_s, _tracer(job["path"], first, last, lines))
            found = _outcome(value, error, namespace, violations, before, expression, per_call_s)
            found.update(index=index, lines=sorted(lines))
            if BUILD in call.get("args", ""):
                found["args"] = _resolved(call["args"], built)
            if call.get("check"):
                checked, check_error = _call(call["check"].replace("{receiver}", prefix), namespace, per_call_s, None)
                found["check_holds"] = check_error is None and checked is True
            out.write(json.dumps(found) + "\n")
            out.flush()
            results.append(found)
    return {"imported": True, "receiver": receiver, "calls": results}
