"""Rust tests that run and pass, with ``cargo test``, when cargo is here.

The same flow as JavaScript: calls from the parameters' types (integers, floats, bool, char,
&str/String, Vec and slices of those) and the literals in the body, a probe run in the sandbox that
prints ``{:?}`` of each result (each call in a thread of its own, given 2 s, so a call that never
returns costs 2 s and is dropped, not the whole run), characterization asserts where the Debug
text is a Rust literal of the return type, ``#[should_panic]`` for calls that panicked, then the
tests run with cargo and only passing ones kept. The crate the buffer belongs to (Cargo.toml found
upward from the file; without one a throwaway crate with the buffer as src/lib.rs) is copied into
the sandbox folder with the editor's text in place. Builds go to a target folder under the user's
cache (``repolsp/cargo-target``, one per crate) so the second build reuses the first's work.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
from pathlib import Path

from repolsp.server.context.symbols import DefinitionInfo
from repolsp.server.testgen.edits import GeneratedTest
from repolsp.server.testgen.sandbox import SandboxLimits, run_in_sandbox
from repolsp.server.testgen.targets import _owner_name

MAX_CASES = 6
_INTS = {f"{s}{b}" for s in "iu" for b in ("8", "16", "32", "64", "128", "size")}
_SCALAR_POOLS = {"int": ["1", "0", "-1", "2", "10"], "uint": ["1", "0", "2", "10"],
                 "float": ["1.5", "0.0", "-2.0", "10.0"], "bool": ["true", "false"], "char": ["'a'", "'Z'", "' '"],
                 "str": ['"abc"', '""', '"Hello, World"']}
_MAX_COPY_FILES, _MAX_COPY_BYTES = 500, 8 << 20
_SKIP_DIRS = {"target", ".git", "node_modules"}
_PROBE_MOD = "repolsp_probe"
_TEST_MOD = "repolsp_generated_tests"


def cargo_command() -> str | None:
    """The cargo binary, when one is on PATH."""
    return shutil.which("cargo")


def _kind(rust_type: str) -> str | None:
    t = re.sub(r"\s+", "", rust_type)
    if t in _INTS:
        return "uint" if t.startswith("u") else "int"
    return {"f32": "float", "f64": "float", "bool": "bool", "char": "char", "&str": "str", "&'staticstr": "str",
            "String": "string"}.get(t)


def _values(rust_type: str, body: str) -> list[str] | None:
    """Argument literals for a parameter of ``rust_type``, or None when the type is not simple."""
    t = re.sub(r"\s+", "", rust_type)
    kind = _kind(t)
    if kind in ("int", "uint"):
        found = [v for v in re.findall(r"(?<![\w.])(-?\d+)(?![\w.])", body) if kind == "int" or not v.startswith("-")]
        return list(dict.fromkeys([*_SCALAR_POOLS[kind][:1], *found[:4], *_SCALAR_POOLS[kind][1:]]))[:6]
    if kind == "string":
        return [f"{v}.to_string()" for v in _SCALAR_POOLS["str"]]
    if kind is not None:
        return list(_SCALAR_POOLS[kind])
    inner = re.fullmatch(r"Vec<(.+)>|&\[(.+)\]|&Vec<(.+)>", t)
    if inner is None:
        return None
    element = next(g for g in inner.groups() if g)
    items = _values(element, "")
    if items is None or element.startswith(("Vec", "&")):
        return None
    prefix = "&vec!" if t.startswith("&Vec") else ("&" if t.startswith("&[") else "vec!")
    return [f"{prefix}[{', '.join(items[:3])}]", f"{prefix}[{items[1]}]", f"{prefix}[]"]


def _parameters(info: DefinitionInfo) -> list[str] | None:
    """Each parameter's type, or None when the function takes self or a type it cannot build."""
    if info.node.child_by_field_name("type_parameters") is not None:
        return None
    params = info.node.child_by_field_name("parameters")
    types = []
    for child in params.named_children if params is not None else []:
        if child.type != "parameter":
            return None  # self, or something unusual
        node = child.child_by_field_name("type")
        types.append(node.text.decode("utf-8") if node is not None else "")
    return types


def doc_example_calls(text: str, info: DefinitionInfo) -> list[str]:
    """Argument lists of the calls in the doc comment right above the function (its examples)."""
    lines = []
    for line in reversed(text[:info.start].splitlines()):
        if not line.strip().startswith(("///", "#[")):
            break
        lines.append(line)
    found = re.findall(rf"\b{re.escape(info.name)}\(([^()\n]*)\)", "\n".join(lines))
    # Literals only: an example that names variables would not build outside its doc test.
    plain = [" ".join(args.split()) for args in found]
    return [a for a in plain if not set(re.findall(r"[A-Za-z_]\w*", re.sub(r'"[^"]*"|\'.\'', "", a))) - {
        "true", "false", "vec"}]


def candidate_calls(info: DefinitionInfo, body: str, examples: list[str] = ()) -> list[str] | None:
    """Argument lists: the doc examples, a base call, then each parameter varied on its own;
    None when not callable."""
    types = _parameters(info)
    if types is None:
        return None
    pools = [_values(t, body) for t in types]
    if any(p is None or not p for p in pools):
        return None
    base = [p[0] for p in pools]
    calls = [*examples, ", ".join(base)]
    for i, pool in enumerate(pools):
        for value in pool[1:]:
            calls.append(", ".join([*base[:i], value, *base[i + 1:]]))
    return list(dict.fromkeys(calls))[:24]


def _literal(debug: str, return_type: str) -> str | None:
    """The Rust literal the Debug text stands for in the return type, or None when it is not one."""
    t = re.sub(r"\s+", "", return_type)
    kind = _kind(t)
    if kind in ("int", "uint"):
        return debug if re.fullmatch(r"-?\d+", debug) else None
    if kind == "float":
        return debug if re.fullmatch(r"-?\d+(\.\d+)?(e-?\d+)?", debug) else None
    if kind == "bool":
        return debug if debug in ("true", "false") else None
    if kind == "char":
        return debug if re.fullmatch(r"'(\\.|\\u\{[0-9a-f]+\}|[^'\\])'", debug) else None
    if kind in ("str", "string"):
        return debug if re.fullmatch(r'"(\\.|\\u\{[0-9a-f]+\}|[^"\\])*"', debug) else None
    inner = re.fullmatch(r"Vec<(.+)>", t)
    if inner and _kind(inner.group(1)) not in (None, "float") and debug not in ("[]",):
        return debug if re.fullmatch(r"\[.*\]", debug, flags=re.DOTALL) else None
    return None


def _find_crate(source: Path) -> Path | None:
    """The crate whose src/ holds the file; None for a file outside one (a throwaway crate then)."""
    for folder in source.parents:
        if (folder / "Cargo.toml").is_file():
            return folder if (folder / "src") in source.parents else None
    return None


def _crate_files(crate: Path | None, source: Path, text: str) -> tuple[dict[str, str], str]:
    """(files for the sandbox, the buffer's path among them)."""
    if crate is None:
        manifest = ('[package]\nname = "repolsp_scratch"\nversion = "0.0.0"\nedition = "2021"\n\n'
                    '[lib]\npath = "src/lib.rs"\n')
        return {"Cargo.toml": manifest, "src/lib.rs": text}, "src/lib.rs"
    files: dict[str, str] = {}
    size = 0
    for folder, dirs, names in os.walk(crate):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.startswith(".")]
        for name in names:
            if not (name.endswith(".rs") or name in ("Cargo.toml", "Cargo.lock")):
                continue
            path = Path(folder, name)
            files[path.relative_to(crate).as_posix()] = path.read_text(encoding="utf-8", errors="replace")
            size += path.stat().st_size
            if len(files) > _MAX_COPY_FILES or size > _MAX_COPY_BYTES:
                raise ValueError(f"the crate at {crate} is too large to copy into the sandbox")
    rel = source.relative_to(crate).as_posix()
    files[rel] = text
    return files, rel


def target_dir(crate: Path | None) -> str:
    """A build folder kept between runs, one per crate, under the user's cache."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = hashlib.sha1(str(crate).encode()).hexdigest()[:12] if crate else "scratch"
    folder = os.path.join(base, "repolsp", "cargo-target", key)
    os.makedirs(folder, exist_ok=True)
    return folder


def _cargo_job(cargo: str, files: dict[str, str], rel: str, target: str, nocapture: bool) -> dict:
    home = os.path.expanduser("~")
    env = [f"CARGO_HOME={os.environ.get('CARGO_HOME', os.path.join(home, '.cargo'))}",
           f"RUSTUP_HOME={os.environ.get('RUSTUP_HOME', os.path.join(home, '.rustup'))}",
           f"CARGO_TARGET_DIR={target}", "CARGO_TERM_COLOR=never"]
    which = "--bins" if rel == "src/main.rs" or rel.startswith("src/bin/") or "src/lib.rs" not in files else "--lib"
    # stderr joins stdout: the run's report (all the sandbox keeps) then holds the compiler's errors.
    argv = ["sh", "-c", 'exec "$0" "$@" 2>&1', "env", *env, cargo, "test", "--offline", which,
            "--manifest-path", "{workdir}/Cargo.toml", "--",
            # Only the module under test: the crate's own tests may be slow or need a setup.
            _PROBE_MOD if nocapture else _TEST_MOD, "--test-threads=1", *(["--nocapture"] if nocapture else [])]
    return {"kind": "exec", "files": files, "argv": argv}


def _probe_module(callee: str, calls: list[str]) -> str:
    lines = [f"#[cfg(test)]\nmod {_PROBE_MOD} {{\n    #[allow(unused_imports)]\n    use super::*;\n",
             "    #[test]\n    fn probe() {", "        std::panic::set_hook(Box::new(|_| {}));"]
    for index, args in enumerate(calls):
        lines += ["        {", "            let (send, receive) = std::sync::mpsc::channel();",
                  "            std::thread::spawn(move || {",
                  f"                let _ = send.send(format!(\"{{:?}}\", {callee}({args})));", "            });",
                  "            match receive.recv_timeout(std::time::Duration::from_secs(2)) {",
                  f"                Ok(text) => println!(\"REPOLSP {index} value {{}}\", text.replace('\\n', \" \")),",
                  "                Err(std::sync::mpsc::RecvTimeoutError::Timeout) =>",
                  f"                    println!(\"REPOLSP {index} timeout\"),",
                  f"                Err(_) => println!(\"REPOLSP {index} panic\"),", "            }", "        }"]
    return "\n".join(lines) + "\n    }\n}\n"


def _probe(cargo: str, files: dict[str, str], rel: str, text: str, callee: str, calls: list[str], target: str,
           limits: SandboxLimits, cancel: threading.Event):
    module = _probe_module(callee, calls)
    return run_in_sandbox(_cargo_job(cargo, {**files, rel: text + "\n" + module}, rel, target, True), limits, cancel)


def _render(callee: str, name: str, return_type: str, cases: list[tuple[str, str, str]],
            existing: str) -> list[tuple[str, str]]:
    """(test fn name, code) per (args, outcome, debug) case; names the file does not use yet."""
    blocks, float_kind, number = [], _kind(return_type or "") == "float", 1
    for args, outcome, debug in cases:
        test = name if not blocks else f"{name}_{number}"
        while blocks and re.search(rf"\bfn\s+{test}\b", existing):
            number += 1
            test = f"{name}_{number}"
        number += 1
        if outcome == "panic":
            body = f"#[test]\n#[should_panic]\nfn {test}() {{\n    let _ = {callee}({args});\n}}"
        elif float_kind:
            body = f"#[test]\nfn {test}() {{\n    assert!(({callee}({args}) - {debug}).abs() < 1e-9);\n}}"
        else:
            body = f"#[test]\nfn {test}() {{\n    assert_eq!({callee}({args}), {debug});\n}}"
        blocks.append((test, body))
    return blocks


def _short(run, rel: str) -> str:
    errors = [line for line in (run.stdout or "").splitlines() if line.startswith("error")]
    if not run.reason and not errors and "running 0 tests" in run.stdout:
        return f"{rel} is not built as part of its crate (no `mod` declares it)"
    return " ".join((run.reason or (errors[0] if errors else "the crate did not build")).split())[:160]


def run_rust_flow(text: str, source: Path, info: DefinitionInfo, test_name: str, cancel: threading.Event,
                  limits: SandboxLimits | None = None, target: str | None = None) -> tuple[GeneratedTest | None, str]:
    """(passing cargo tests, message) or (None, the reason nothing ran)."""
    cargo = cargo_command()
    if cargo is None:
        return None, "cargo is not installed"
    examples = doc_example_calls(text, info)
    calls = candidate_calls(info, text[info.start:info.end], examples)
    if not calls:
        return None, f"{info.name} takes self, generics or arguments the server cannot build"
    owner = _owner_name(info)
    callee = f"{owner}::{info.name}" if owner else info.name
    crate = _find_crate(source)
    try:
        files, rel = _crate_files(crate, source, text)
        target = target or target_dir(crate)
    except (OSError, ValueError) as exc:
        return None, str(exc)
    # rustc maps far more address space than it uses and builds in parallel processes.
    limits = limits or SandboxLimits(timeout_s=60.0, cpu_s=120, memory_mb=16384, file_mb=512)
    probe = _probe(cargo, files, rel, text, callee, calls, target, limits, cancel)
    if examples and "\nrunning " not in probe.stdout and not cancel.is_set():  # an example of the wrong type
        calls = candidate_calls(info, text[info.start:info.end])
        probe = _probe(cargo, files, rel, text, callee, calls, target, limits, cancel)
    if cancel.is_set():
        return None, "cancelled"
    # Only what the probe printed (compiler errors quote its source); with --nocapture the first
    # line follows the harness's "test ... " on the same line.
    printed = probe.stdout.partition("\nrunning ")[2]
    seen = re.findall(r"(?:^|\s)REPOLSP (\d+) (value|panic|timeout) ?(.*)$", printed, flags=re.MULTILINE)
    if not seen:
        return None, f"the probe of {info.name} did not run: {_short(probe, rel)}"
    cases, keys = [], set()
    for index, outcome, debug in seen:
        literal = _literal(debug.strip(), info.return_type or "") if outcome == "value" else None
        key = literal if outcome == "value" else outcome
        if (literal is not None or outcome == "panic") and key not in keys:
            keys.add(key)
            cases.append((calls[int(index)], outcome, literal))
    if not cases and all(outcome == "timeout" for _, outcome, _ in seen):
        return None, f"every call of {info.name} ran past 2 s (an endless loop?): no test kept"
    if not cases:
        return None, f"no call of {info.name} returned a value written as a Rust literal, or panicked"
    blocks = _render(callee, test_name, info.return_type or "", cases[:MAX_CASES], text)
    for _attempt in range(2):
        module = "\n\n".join(code for _, code in blocks).replace("\n", "\n    ")
        tests = f"#[cfg(test)]\nmod {_TEST_MOD} {{\n    use super::*;\n\n    {module}\n}}\n"
        run = run_in_sandbox(_cargo_job(cargo, {**files, rel: text + "\n" + tests}, rel, target, False),
                             limits, cancel)
        if cancel.is_set():
            return None, "cancelled"
        passed = set(re.findall(rf"^test {_TEST_MOD}::(\w+)(?: - should panic)? \.\.\. ok$", run.stdout,
                                flags=re.MULTILINE))
        kept = [(name, code) for name, code in blocks if name in passed]
        if kept and len(kept) == len(blocks):
            count = len(kept)
            code = GeneratedTest(test_name, "\n\n".join(c for _, c in kept), from_model=False)
            return code, f"{count} {'tests pass' if count != 1 else 'test passes'} with cargo test"
        if not kept:
            return None, f"none of the generated Rust tests passed under cargo test: {_short(run, rel)}"
        blocks = kept
    return None, "the generated Rust tests did not pass twice in a row under cargo test"
