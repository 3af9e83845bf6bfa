"""JavaScript tests that run and pass, with node's test runner (``node:test``), when node is here.

The same flow as Python, smaller: calls from the parameters' names and the literals the body
compares them with, run in the sandbox (node under its permission model: no writes outside the
sandbox folder, no child processes; the network namespace where the kernel allows), characterization
asserts (``assert.deepStrictEqual`` for JSON values, ``assert.throws`` for errors), then the test
file run with node and only passing tests kept. The module runs from a copy of the editor's text in
the sandbox folder (node has no hook here to load it under its real path), so its relative imports
are not available. Node's coverage needs the inspector, which the permission model refuses: no
coverage figure for JavaScript.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from pathlib import Path

from repolsp.server.context.symbols import DefinitionInfo
from repolsp.server.testgen.edits import GeneratedTest
from repolsp.server.testgen.js import js_exports
from repolsp.server.testgen.sandbox import SandboxLimits, run_in_sandbox

MAX_CASES = 6
_JS_POOLS = {
    "number": ["3", "0", "1", "-2", "0.5", "10"],
    "string": ["'abc'", "''", "'Hello, World'"],
    "boolean": ["true", "false"],
    "array": ["[1, 2, 3]", "[]"],
    "object": ["{ a: 1 }", "{}"],
}
_NAME_KINDS = [
    (r"^(n|i|j|k|count|size|index|num|width|height|length|limit|min|max|lo|hi|low|high|start|end|value|x|y)$", "number"),
    (r"^(s|str|text|name|string|word|line|prefix|suffix|sep|label|key|path|message|msg)$", "string"),
    (r"^(items|values|list|arr|array|xs|nums|numbers|elements)$|s$", "array"),
    (r"^(is|has|can|should)[A-Z_]|^(flag|strict|verbose)$", "boolean"),
]
_LITERAL = r"(-?\d+(?:\.\d+)?|'[^'\n]*'|\"[^\"\n]*\")"


def node_command() -> str | None:
    """The node binary, when one is on PATH."""
    return shutil.which("node")


def _pool(name: str, body: str) -> list[str]:
    compared = re.findall(rf"\b{re.escape(name)}\s*(?:===|==|!==|!=|<=|>=|<|>)\s*{_LITERAL}", body)
    compared += re.findall(rf"{_LITERAL}\s*(?:===|==|!==|!=|<=|>=|<|>)\s*{re.escape(name)}\b", body)
    kind = next((k for pattern, k in _NAME_KINDS if re.search(pattern, name)), "number")
    values: list[str] = []
    for value in [*_JS_POOLS[kind][:1], *compared, *_JS_POOLS[kind][1:]]:
        if value not in values:
            values.append(value)
    return values[:6]


def candidate_args(info: DefinitionInfo, body: str) -> list[str]:
    """A base call, then each parameter varied on its own."""
    names = [p.split("=")[0].strip() for p in info.parameters if not p.startswith("...")]
    names = [n for n in names if re.fullmatch(r"[A-Za-z_$][\w$]*", n)]
    pools = {n: _pool(n, body) for n in names}
    # Parameters of one kind start from different values: clamp(3, 0, 1), not clamp(3, 3, 3).
    pools = {n: pools[n][i % len(pools[n]):] + pools[n][:i % len(pools[n])] for i, n in enumerate(names)}
    base = {n: pools[n][0] for n in names}
    calls = [", ".join(base.values())]
    for n in names:
        for value in pools[n][1:]:
            calls.append(", ".join({**base, n: value}.values()))
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            for a in pools[first][1:3]:
                for b in pools[second][1:3]:
                    calls.append(", ".join({**base, first: a, second: b}.values()))
    return list(dict.fromkeys(calls))[:40]


def _module_style(text: str) -> str:
    commonjs = ("module.exports" in text or "exports." in text) and not re.search(r"^\s*export\b", text, re.MULTILINE)
    return "commonjs" if commonjs else "module"


def _header(style: str, name: str, stem: str) -> list[str]:
    if style == "commonjs":
        return ["const { test } = require('node:test');", "const assert = require('node:assert/strict');",
                f"const {{ {name} }} = require('./{stem}.js');"]
    return ["import { test } from 'node:test';", "import assert from 'node:assert/strict';",
            f"import {{ {name} }} from './{stem}.js';"]


def _probe_script(style: str, name: str, stem: str, calls: list[str]) -> str:
    load = (f"const mod = require('./{stem}.js');" if style == "commonjs" else f"import * as mod from './{stem}.js';")
    require_fs = "const fs = require('node:fs');" if style == "commonjs" else "import fs from 'node:fs';"
    thunks = ",\n".join(f"  () => fn({args})" for args in calls)
    return f"""{require_fs}
{load}
const fn = mod[{json.dumps(name)}] ?? mod.default?.[{json.dumps(name)}];
const calls = [
{thunks}
];
calls.forEach((call, index) => {{
  let found;
  try {{
    const value = call();
    const text = JSON.stringify(value);
    let same = false;
    try {{ same = text !== undefined && JSON.stringify(JSON.parse(text)) === text && text === JSON.stringify(call()); }} catch {{}}
    found = {{ kind: 'value', json: text ?? null, round_trips: same && !(value instanceof Promise) }};
  }} catch (error) {{
    if (error?.code === 'ERR_ACCESS_DENIED') {{
      found = {{ kind: 'blocked', what: String(error?.permission ?? error?.message ?? 'access').slice(0, 80) }};
    }} else
    found = {{ kind: 'raised', type: error?.constructor?.name ?? 'Error', message: String(error?.message ?? error).slice(0, 200) }};
  }}
  fs.appendFileSync('calls.jsonl', JSON.stringify({{ ...found, index }}) + '\\n');
}});
"""


def _node_job(node: str, files: dict[str, str], script: str) -> dict:
    return {"kind": "exec", "files": files, "argv": [
        node, "--no-warnings", "--experimental-permission", "--allow-fs-read=*", "--allow-fs-write={workdir}",
        "--max-old-space-size=512", "--test-reporter=tap", script]}


def _render(name: str, cases: list[tuple[str, dict]]) -> list[tuple[str, str]]:
    """(title, test code) per case."""
    blocks = []
    for args, outcome in cases:
        title = f"{name}({args})"[:80].replace("'", "\\'")
        if outcome["kind"] == "value":
            line = f"  assert.deepStrictEqual({name}({args}), {outcome['json']});"
        else:
            line = f"  assert.throws(() => {name}({args}), {outcome['type']});"
        blocks.append((title, f"test('{title}', () => {{\n{line}\n}});"))
    return blocks


def run_js_flow(text: str, source: Path, info: DefinitionInfo, cancel: threading.Event,
                limits: SandboxLimits | None = None) -> tuple[GeneratedTest | None, str]:
    """(passing node:test tests, message) or (None, the reason nothing ran)."""
    node = node_command()
    if node is None:
        return None, "node is not installed"
    if not js_exports(text, info.name) or "." in info.qualified_name:
        return None, f"{info.name} is not an exported function: the tests cannot import it"
    # V8 reserves more address space than CPython; its heap is capped by --max-old-space-size.
    limits = limits or SandboxLimits(memory_mb=4096, timeout_s=8.0)
    style, stem = _module_style(text), source.stem
    body = text[info.start:info.end]
    calls = candidate_args(info, body)
    module_files = {f"{stem}.js": text, "package.json": json.dumps({"type": style})}
    probe = run_in_sandbox(_node_job(node, {**module_files, "probe.js": _probe_script(style, info.name, stem, calls)},
                                     "probe.js"), limits, cancel)
    if cancel.is_set():
        return None, "cancelled"
    outcomes = {o["index"]: o for o in probe.partial}
    cases, seen = [], set()
    for index, args in enumerate(calls):
        outcome = outcomes.get(index) or {}
        key = outcome.get("json") if outcome.get("kind") == "value" else outcome.get("type")
        usable = outcome.get("round_trips") or (outcome.get("kind") == "raised" and outcome.get("type") in (
            "Error", "TypeError", "RangeError", "SyntaxError"))
        if usable and key not in seen:
            seen.add(key)
            cases.append((args, outcome))
    if not cases:
        blocked = [o for o in outcomes.values() if o.get("kind") == "blocked"]
        if blocked:
            return None, (f"{info.name} could not run in the sandbox: it needs {blocked[0]['what']} access, "
                          "which the sandbox refuses")
        why = probe.reason or "no call returned a JSON value or a standard error"
        return None, f"no call of {info.name} could be checked: {' '.join(why.split())[:160]}"
    header = _header(style, info.name, stem)
    blocks = _render(info.name, cases[:MAX_CASES])
    for _attempt in range(2):
        test_text = "\n".join(header) + "\n\n" + "\n\n".join(code for _, code in blocks) + "\n"
        run = run_in_sandbox(_node_job(node, {**module_files, f"{stem}.test.js": test_text}, f"{stem}.test.js"),
                             limits, cancel)
        if cancel.is_set():
            return None, "cancelled"
        passed = set(re.findall(r"^ok \d+ - (.+)$", run.stdout, flags=re.MULTILINE))
        kept = [(title, code) for title, code in blocks if title.replace("\\'", "'") in passed]
        if kept and len(kept) == len(blocks):
            code = GeneratedTest(f"{info.name}", "\n\n".join(c for _, c in kept), header, from_model=False)
            count = len(kept)
            return code, (f"{count} {'tests pass' if count != 1 else 'test passes'} with node:test "
                          f"(no coverage figure for JavaScript)")
        if not kept:
            break
        blocks = kept
    return None, "none of the generated JavaScript tests passed under node"
