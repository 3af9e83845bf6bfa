"""Rust test generation: candidate calls probed with cargo in the sandbox, only passing tests kept."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from repolsp.server.context.document import Document, path_to_uri
from repolsp.server.docgen import GenerationSettings
from repolsp.server.testgen import generate_tests, target_for_tests
from repolsp.server.testgen.rust_flow import run_rust_flow

needs_cargo = pytest.mark.skipif(shutil.which("cargo") is None, reason="cargo is not installed")

LIB = """pub fn add(a: i32, b: i32) -> i32 {
    a + b
}

pub fn div(a: i32, b: i32) -> i32 {
    a / b
}

pub fn spin(n: u32) -> u32 {
    if n == 0 {
        loop {}
    }
    n
}

pub fn forever(flag: bool) -> bool {
    loop {
        std::hint::black_box(flag);
    }
}

pub fn pid_plus(x: u32) -> u32 {
    x + std::process::id()
}

pub fn greet(name: &str) -> String {
    format!("Hello, {name}!")
}
"""


@pytest.fixture(scope="module")
def crate(tmp_path_factory):
    """One crate and one build cache for every case: the first build pays, the rest reuse it."""
    root = tmp_path_factory.mktemp("crate")
    (root / "src").mkdir()
    (root / "Cargo.toml").write_text('[package]\nname = "calc"\nversion = "0.1.0"\nedition = "2021"\n')
    (root / "src" / "lib.rs").write_text(LIB)
    return root


@pytest.fixture
def cache(crate, monkeypatch):
    folder = crate.parent / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    return folder


def edit_for(path: Path, needle: str, root: Path, cancel: threading.Event | None = None):
    text = path.read_text(encoding="utf-8")
    doc = Document(path_to_uri(path), text, "rust")
    executor = ThreadPoolExecutor(max_workers=1)
    try:
        settings = GenerationSettings(engine=None, executor=executor, timeout_s=5)
        return asyncio.run(generate_tests(doc, text.index(needle) + 3, root, settings, cancel=cancel))
    finally:
        executor.shutdown()


def cargo_test(crate: Path, new_text: str, cache: Path) -> subprocess.CompletedProcess:
    """`cargo test --offline` on a copy of the crate with the edit applied."""
    copy = cache.parent / f"applied-{time.monotonic_ns()}"
    shutil.copytree(crate, copy)
    (copy / "src" / "lib.rs").write_text(new_text)
    env = {**os.environ, "CARGO_TARGET_DIR": str(cache / "applied-target")}
    return subprocess.run(["cargo", "test", "--offline", "--lib"], cwd=copy, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def flow(source: Path, name: str):
    """(code, message) of the Rust flow for the function ``name`` in ``source``."""
    text = source.read_text()
    info = target_for_tests(Document(path_to_uri(source), text, "rust"), text.index(f"fn {name}") + 3)
    return run_rust_flow(text, source, info, f"test_{name}", threading.Event())


@needs_cargo
def test_rust_tests_run_with_cargo_and_pass_when_applied(crate, cache):
    edit = edit_for(crate / "src" / "lib.rs", "fn add", crate)
    assert not isinstance(edit, str), edit
    count = int(re.fullmatch(r"(\d+) tests pass with cargo test", edit.message).group(1))
    new = edit.new_text
    assert new.startswith(LIB)
    assert "#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn test_add() {" in new
    assert "        assert_eq!(add(1, 1), 2);\n" in new and "assert_eq!(add(-1, 1), 0);" in new
    assert "Default::default()" not in new and "repolsp" not in new
    done = cargo_test(crate, new, cache)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"test result: ok. {count} passed; 0 failed" in done.stdout


@needs_cargo
def test_a_panicking_call_becomes_a_should_panic_test(crate, cache):
    edit = edit_for(crate / "src" / "lib.rs", "fn div", crate)
    assert not isinstance(edit, str), edit
    assert "    #[test]\n    #[should_panic]\n    fn test_div_" in edit.new_text
    assert "        let _ = div(1, 0);\n" in edit.new_text and "assert_eq!(div(2, 1), 2);" in edit.new_text
    done = cargo_test(crate, edit.new_text, cache)
    assert done.returncode == 0, done.stderr[-2000:]


@needs_cargo
def test_a_call_that_never_returns_is_dropped_and_the_rest_kept(crate, cache):
    started = time.monotonic()
    edit = edit_for(crate / "src" / "lib.rs", "fn spin", crate)
    assert not isinstance(edit, str), edit
    assert re.fullmatch(r"\d+ tests pass with cargo test", edit.message)
    assert "spin(0)" not in edit.new_text and "assert_eq!(spin(1), 1);" in edit.new_text
    assert time.monotonic() - started < 45


@needs_cargo
def test_a_function_that_always_loops_gets_a_one_line_reason(crate, cache):
    edit = edit_for(crate / "src" / "lib.rs", "fn forever", crate)
    assert not isinstance(edit, str), edit
    assert edit.message == ("tests not run: every call of forever ran past 2 s (an endless loop?): no test kept; "
                            "the test is a syntax-checked skeleton")
    assert "fn test_forever()" in edit.new_text
    # The server carries on: the next request still runs tests.
    again = edit_for(crate / "src" / "lib.rs", "fn greet", crate)
    assert 'assert_eq!(greet("abc"), "Hello, abc!");' in again.new_text


@needs_cargo
def test_tests_that_fail_when_run_again_are_not_kept(crate, cache):
    code, message = flow(crate / "src" / "lib.rs", "pid_plus")
    assert code is None
    assert message.startswith("none of the generated Rust tests passed under cargo test")


@needs_cargo
def test_a_file_outside_any_crate_runs_in_a_throwaway_crate(tmp_path, cache):
    source = tmp_path / "loose.rs"
    source.write_text("/// Twice `x`: `double(21)` is 42.\npub fn double(x: i64) -> i64 {\n    x * 2\n}\n")
    code, message = flow(source, "double")
    assert code is not None, message
    assert "assert_eq!(double(1), 2);" in code.function and "assert_eq!(double(-1), -2);" in code.function
    # The doc comment's example comes first.
    assert code.function.startswith("#[test]\nfn test_double() {\n    assert_eq!(double(21), 42);\n}")


@needs_cargo
def test_a_cancelled_request_answers_cancelled(crate, cache):
    cancel = threading.Event()
    cancel.set()
    assert edit_for(crate / "src" / "lib.rs", "fn add", crate, cancel) == "cancelled"


def test_without_cargo_the_test_is_a_skeleton_that_says_so(crate, monkeypatch):
    monkeypatch.setattr("repolsp.server.testgen.rust_flow.cargo_command", lambda: None)
    edit = edit_for(crate / "src" / "lib.rs", "fn add", crate)
    assert edit.message == "tests not run: cargo is not installed; the test is a syntax-checked skeleton"
    assert "add(Default::default(), Default::default())" in edit.new_text


@needs_cargo
def test_a_doc_example_of_the_wrong_type_is_dropped_not_the_probe(tmp_path, cache):
    source = tmp_path / "half.rs"
    source.write_text("/// `half(4)` is 2; `half(2.5)` does not build.\npub fn half(x: i32) -> i32 {\n    x / 2\n}\n")
    code, message = flow(source, "half")
    assert code is not None, message
    assert "half(2.5)" not in code.function and "assert_eq!(half(10), 5);" in code.function


@needs_cargo
def test_a_file_no_mod_declares_says_so(crate, cache):
    source = crate / "src" / "orphan.rs"
    source.write_text("pub fn one(x: u8) -> u8 {\n    x\n}\n")
    code, message = flow(source, "one")
    source.unlink()  # the crate is shared with the other cases
    assert code is None
    assert message == "the probe of one did not run: src/orphan.rs is not built as part of its crate (no `mod` declares it)"


@needs_cargo
def test_tests_join_an_existing_tests_module_under_new_names(tmp_path, cache):
    existing = ("pub fn inc(a: i32) -> i32 {\n    a + 1\n}\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n"
                "    #[test]\n    fn test_inc_2() {\n        assert_eq!(inc(1), 2);\n    }\n}\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "calc"\nversion = "0.1.0"\nedition = "2021"\n')
    (tmp_path / "src" / "lib.rs").write_text(existing)
    edit = edit_for(tmp_path / "src" / "lib.rs", "fn inc", tmp_path)
    assert not isinstance(edit, str), edit
    new = edit.new_text
    assert new.startswith(existing[:existing.rindex("}")]) and new.count("mod tests") == 1
    assert "fn test_inc()" in new and "fn test_inc_3()" in new and new.count("fn test_inc_2()") == 1
    done = cargo_test(tmp_path, new, cache)
    assert done.returncode == 0, done.stderr[-2000:]
