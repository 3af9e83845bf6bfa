"""Test generation: module paths, test file locations, body cleaning and the append/create edits."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from repolsp.server.context.document import Document, path_to_uri
from repolsp.server.docgen import GenerationSettings, syntax_error_count
from repolsp.server.engine.fake import FakeEngine
from repolsp.server.testgen import (
    append_insertion,
    clean_python_test_body,
    conventional_test_path,
    expected_literal_kinds,
    generate_tests,
    js_exports,
    python_module_path,
    python_test_path,
    target_for_tests,
)


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


# -- module paths and locations ------------------------------------------------------------------

MODULE_CASES = [
    ("flat", {"mod.py": ""}, "mod.py", "mod"),
    ("package", {"pkg/__init__.py": "", "pkg/sub/__init__.py": "", "pkg/sub/mod.py": ""}, "pkg/sub/mod.py", "pkg.sub.mod"),
    ("src layout", {"src/pkg/__init__.py": "", "src/pkg/mod.py": ""}, "src/pkg/mod.py", "pkg.mod"),
    ("package init", {"pkg/__init__.py": ""}, "pkg/__init__.py", "pkg"),
    ("package-dir mapping", {
        "pyproject.toml": '[tool.setuptools]\npackage-dir = { "acme.server" = "server" }\n',
        "server/__init__.py": "", "server/feat/__init__.py": "", "server/feat/x.py": ""},
     "server/feat/x.py", "acme.server.feat.x"),
    ("loose file in a folder", {"scripts/tool.py": ""}, "scripts/tool.py", "tool"),
]


@pytest.mark.parametrize("files, rel, expected", [c[1:] for c in MODULE_CASES], ids=[c[0] for c in MODULE_CASES])
def test_python_module_path(tmp_path, files, rel, expected):
    root = write(tmp_path, files)
    assert python_module_path(root / rel, root) == expected


LOCATION_CASES = [
    ("no tests yet", {"pkg/__init__.py": "", "pkg/mod.py": ""}, "pkg/mod.py", "pkg.mod", "tests/test_mod.py"),
    ("existing test file wins", {"pkg/mod.py": "", "tests/unit/deep/test_mod.py": "", "tests/test_other.py": ""},
     "pkg/mod.py", "pkg.mod", "tests/unit/deep/test_mod.py"),
    ("tests/unit holds the tests", {"pkg/mod.py": "", "tests/unit/test_a.py": "", "tests/lsp/x.py": ""},
     "pkg/mod.py", "pkg.mod", "tests/unit/test_mod.py"),
    ("singular test folder", {"mod.py": "", "test/test_a.py": ""}, "mod.py", "mod", "test/test_mod.py"),
    ("package-local tests", {"lib/pkg/__init__.py": "", "lib/pkg/mod.py": "", "lib/pkg/tests/test_x.py": ""},
     "lib/pkg/mod.py", "pkg.mod", "lib/pkg/tests/test_mod.py"),
    ("suffix convention", {"mod.py": "", "tests/mod_test.py": ""}, "mod.py", "mod", "tests/mod_test.py"),
    ("virtualenvs are not searched", {"mod.py": "", ".venv/lib/test_mod.py": "", "node_modules/x/test_mod.py": ""},
     "mod.py", "mod", "tests/test_mod.py"),
]


@pytest.mark.parametrize("files, rel, module, expected", [c[1:] for c in LOCATION_CASES],
                         ids=[c[0] for c in LOCATION_CASES])
def test_python_test_path(tmp_path, files, rel, module, expected):
    root = write(tmp_path, files)
    assert python_test_path(root / rel, root, module) == root / expected


@pytest.mark.parametrize("rel, language, expected", [
    ("pkg/sum.go", "go", "pkg/sum_test.go"),
    ("web/util.ts", "typescript", "web/util.test.ts"),
    ("web/util.js", "javascript", "web/util.test.js"),
    ("src/lib.rs", "rust", "src/lib.rs"),
    ("src/main/java/com/acme/Calc.java", "java", "src/test/java/com/acme/CalcTest.java"),
    ("Calc.java", "java", "CalcTest.java"),
], ids=["go", "ts", "js", "rust same file", "java maven", "java loose"])
def test_conventional_locations(tmp_path, rel, language, expected):
    assert conventional_test_path(tmp_path / rel, tmp_path, language) == tmp_path / expected


@pytest.mark.parametrize("text, needle, expected", [
    ("def add(a):\n    return a\n", "return", "add"),
    ("class A:\n    def m(self):\n        pass\n", "pass", "m"),
    ("def outer():\n    def inner():\n        pass\n", "pass", "outer"),
    ("def test_add():\n    pass\n", "pass", None),
    ("class A:\n    def __eq__(self, o):\n        pass\n", "pass", None),
    ("x = 1\n", "x", None),
], ids=["function", "method", "nested -> outer", "already a test", "dunder", "module level"])
def test_test_target(text, needle, expected):
    info = target_for_tests(Document("file:///tmp/m.py", text), text.index(needle))
    assert (info.name if info else None) == expected


# -- cleaning the model's test body --------------------------------------------------------------

BODY_CASES = [
    ("valid", "\n    assert add(1, 2) == 3\n", "def test_add():\n    assert add(1, 2) == 3"),
    ("stops at column 0", "\n    assert add(1, 2) == 3\ndef other():\n    pass\n", "def test_add():\n    assert add(1, 2) == 3"),
    ("drops an unfinished line", "\n    result = add(1, 2)\n    assert result == 3\n    assert add(", "def test_add():\n    result = add(1, 2)\n    assert result == 3"),
    ("local names are fine", "\n    for x, y in [(1, 2)]:\n        assert add(x, y) == 3\n", "def test_add():\n    for x, y in [(1, 2)]:\n        assert add(x, y) == 3"),
    ("pytest.raises counts as a check", "\n    with pytest.raises(TypeError):\n        add(None, 1)\n", "def test_add():\n    with pytest.raises(TypeError):\n        add(None, 1)"),
    ("unknown name", "\n    assert add(a, 2) == 3\n", None),
    ("no assert", "\n    add(1, 2)\n", None),
    ("does not call the function", "\n    assert 1 + 2 == 3\n", None),
    ("not code", "\nThis test checks add.\n", None),
    ("empty", "", None),
    ("degenerate literal", "\n    assert add(1, 2) == 10000000000000000000000\n    assert add(1, 1) == 2\n",
     "def test_add():\n    assert add(1, 1) == 2"),
    ("contradictions keep the first", "\n    assert add(1, 2) == 3\n    assert add(1, 2) == 4\n    assert add(2, 2) == 4\n",
     "def test_add():\n    assert add(1, 2) == 3\n    assert add(2, 2) == 4"),
    ("repeated asserts collapse", "\n" + "    assert add(1, 2) == 3\n" * 12, "def test_add():\n    assert add(1, 2) == 3"),
    ("repeated lines collapse", "\n" + "    x = add(1, 2)\n    assert x\n" * 12,
     "def test_add():\n    x = add(1, 2)\n    assert x"),
    ("invented pytest api", "\n    with pytest.argparse(1):\n        assert add(1, 2) == 3\n", None),
    ("raises needs a type", "\n    with pytest.raises(add(1, 2)):\n        assert add(1, 2) == 3\n", None),
    ("tautology", "\n    assert add(x, 1) == add(x, 1)\n", None),
]


@pytest.mark.parametrize("raw, expected", [c[1:] for c in BODY_CASES], ids=[c[0] for c in BODY_CASES])
def test_clean_python_test_body(raw, expected):
    assert clean_python_test_body(raw, "test_add", {"add"}, {"add"}) == expected


@pytest.mark.parametrize("return_type, name, expected", [
    ("bool", "f", {"bool"}), (None, "is_ok", {"bool"}), (None, "f", None), ("dict[str, int]", "f", {"dict"}),
    ("Optional[int]", "f", {"number", "none"}), ("str | None", "f", {"str", "none"}), ("Item", "f", set()),
    ("typing.List[int]", "f", {"list"}), ("Any", "f", None), ("T", "f", None), ("'Item | None'", "f", {"none"}),
], ids=["bool", "is_ name", "unknown", "dict", "optional", "union", "class", "typing prefix", "Any", "TypeVar",
        "optional class"])
def test_expected_literal_kinds(return_type, name, expected):
    kinds = expected_literal_kinds(return_type, name)
    assert (set(kinds) if kinds is not None else None) == expected


def test_asserts_with_the_wrong_literal_kind_are_dropped():
    raw = '\n    assert is_ok("a") == "a"\n    assert is_ok(\n        "b"\n    ) == 1\n    assert is_ok("b") == True\n'
    body = clean_python_test_body(raw, "test_is_ok", {"is_ok"}, {"is_ok"}, frozenset({"bool"}))
    assert body == 'def test_is_ok():\n    assert is_ok("b") == True'
    only_wrong = clean_python_test_body('\n    assert is_ok("a") == "a"\n', "t", {"is_ok"}, {"is_ok"}, frozenset({"bool"}))
    assert only_wrong is None



@pytest.mark.parametrize("existing, expected", [
    ("", "B\n"),
    ("a\n", "a\n\n\nB\n"),
    ("a", "a\n\n\nB\n"),
    ("a\n\n\n\n", "a\n\n\n\nB\n"),
    ("a\r\n", "a\r\n\r\n\r\nB\r\n"),
], ids=["empty", "one newline", "no newline", "many newlines", "crlf"])
def test_append_insertion_never_removes(existing, expected):
    newline = "\r\n" if "\r\n" in existing else "\n"
    ins = append_insertion(existing, "B", newline)
    assert ins.start == ins.end == len(existing)
    assert existing + ins.new_text == expected


# -- whole edits -----------------------------------------------------------------------------------


@pytest.fixture
def no_node(monkeypatch):
    """A machine without node or cargo: JavaScript and Rust tests are written (skeleton or model body), not run."""
    monkeypatch.setattr("repolsp.server.testgen.js_flow.node_command", lambda: None)
    monkeypatch.setattr("repolsp.server.testgen.rust_flow.cargo_command", lambda: None)


def edit_for(root: Path, rel: str, needle: str, language: str, completion: str | None = None):
    path = root / rel
    text = path.read_text(encoding="utf-8")
    doc = Document(path_to_uri(path), text, language)
    engine = FakeEngine(completion) if completion is not None else None
    executor = ThreadPoolExecutor(max_workers=1)
    try:
        settings = GenerationSettings(engine=engine, executor=executor, timeout_s=5)
        return asyncio.run(generate_tests(doc, text.index(needle) + 1, root, settings))
    finally:
        executor.shutdown()


def test_python_new_file_keeps_the_model_assertion_that_holds(tmp_path):
    root = write(tmp_path, {"src/calc/__init__.py": "", "src/calc/ops.py": "def add(a, b):\n    return a + b\n"})
    edit = edit_for(root, "src/calc/ops.py", "def add", "python",
                    "2, 2) == 4\n    assert add(20, 1) == 3\n\n\ndef x():\n")
    assert edit.create and edit.path == root / "tests" / "test_ops.py"
    new = edit.new_text
    assert new.startswith('"""Tests for calc.ops."""\n\nimport pytest\n\nfrom calc.ops import add\n\n\n')
    assert "        (2, 2, 4),\n" in new and "(20, 1, 3)" not in new  # the wrong one is not kept
    assert "TODO" not in new and re.fullmatch(r"\d+ tests pass, 100% of add covered", edit.message)


def test_python_append_keeps_content_and_adds_imports(tmp_path):
    existing = '"""Old tests."""\r\nimport os\r\n\r\n\r\ndef test_add():\r\n    assert os\r\n'
    root = write(tmp_path, {"calc.py": "def add(a, *, b):\n    return a + b\n"})
    (root / "tests").mkdir()
    (root / "tests" / "test_calc.py").write_bytes(existing.encode())
    edit = edit_for(root, "calc.py", "def add", "python")  # no model: the calls still run
    new = edit.new_text
    assert not edit.create and edit.test_name == "test_add_2"
    assert "import os\r\nfrom calc import add\r\n" in new
    assert new.replace("\r\nfrom calc import add", "", 1).replace("\r\nimport pytest", "", 1).startswith(
        existing.replace("import os", "import pytest\r\nimport os").replace("\r\nimport pytest", "", 1))
    assert "def test_add_2(" in new and "add(a, b=b)" in new and "TODO" not in new
    assert "\n" not in new.replace("\r\n", "")  # the file's CRLF line endings are kept
    assert syntax_error_count(new, "python") == 0


@pytest.mark.parametrize("existing, expected", [
    ("from calc import sub\n\n\ndef test_sub():\n    pass\n",
     "import pytest\nfrom calc import sub\nfrom calc import add\n\n\ndef test_sub():"),
    ('"""Doc."""\n\n\ndef test_sub():\n    pass\n',
     '"""Doc."""\n\nimport pytest\nfrom calc import add\n\n\ndef test_sub():'),
    ("from __future__ import annotations\n\nx = 1\n",
     "from __future__ import annotations\nimport pytest\nfrom calc import add\n\nx = 1\n"),
    ("# comment\nimport os\n", "# comment\nimport pytest\nimport os\nfrom calc import add\n"),
], ids=["imports", "docstring only", "future import", "comment first"])
def test_python_import_placement(existing, expected):
    from repolsp.server.docgen import apply_insertions
    from repolsp.server.testgen import _python_import_insertions

    insertions = _python_import_insertions(existing, ["import pytest", "from calc import add"], "\n")
    assert apply_insertions(existing, insertions).startswith(expected)


def test_python_empty_existing_test_file(tmp_path):
    root = write(tmp_path, {"calc.py": "def add(a, b):\n    return a + b\n", "tests/test_calc.py": ""})
    edit = edit_for(root, "calc.py", "def add", "python")
    assert not edit.create
    assert edit.new_text.startswith('"""Tests for calc."""\n\nimport pytest\n\nfrom calc import add\n\n\n')
    assert "def test_add(" in edit.new_text


def test_same_offset_insertions_keep_list_order():
    from repolsp.server.docgen import Insertion, apply_insertions

    assert apply_insertions("x", [Insertion(0, 0, "a"), Insertion(0, 0, "b"), Insertion(1, 1, "c")]) == "abxc"


def test_js_empty_existing_test_file(no_node, tmp_path):
    root = write(tmp_path, {"a.js": "export function f(x) {\n  return x;\n}\n", "a.test.js": ""})
    edit = edit_for(root, "a.js", "function f", "javascript")
    assert edit.new_text.startswith("import { f } from './a';\n")


def test_python_model_output_that_does_not_parse_is_ignored(tmp_path):
    root = write(tmp_path, {"calc.py": "def add(a, b):\n    return a + b\n"})
    edit = edit_for(root, "calc.py", "def add", "python", "1, 2) ==\n    )))\n")
    assert "def test_add(" in edit.new_text and "TODO" not in edit.new_text
    assert syntax_error_count(edit.new_text, "python") == 0


OTHER_CASES = [
    ("go new", {"calc/sum.go": "package calc\n\nfunc Sum(a, b int) (int, error) {\n\treturn a + b, nil\n}\n"},
     "calc/sum.go", "func Sum", "go", "calc/sum_test.go",
     ["package calc\n", 'import "testing"', "func TestSum(t *testing.T) {", "\tgot, err := Sum(a, b)"]),
    ("go append", {"calc/sum.go": "package calc\n\nfunc (c Calc) Twice(x int) int {\n\treturn 2 * x\n}\n",
                   "calc/sum_test.go": "package calc\n\nimport \"testing\"\n\nfunc TestOther(t *testing.T) {}\n"},
     "calc/sum.go", "Twice", "go", "calc/sum_test.go",
     ["func TestOther(t *testing.T) {}\n\nfunc TestTwice(t *testing.T) {", "\tvar receiver Calc", "receiver.Twice(x)"]),
    ("ts new", {"web/util.ts": "export function clamp(x: number, lo: number): number {\n  return x < lo ? lo : x;\n}\n"},
     "web/util.ts", "clamp", "typescript", "web/util.test.ts",
     ["import { clamp } from './util';", "test('clamp', () => {", "clamp(undefined as any, undefined as any)"]),
    ("js vitest commonjs", {"package.json": '{"devDependencies": {"vitest": "1"}}',
                            "lib/a.js": "function f(x) {\n  return x;\n}\nmodule.exports = { f };\n"},
     "lib/a.js", "function f", "javascript", "lib/a.test.js",
     ["import { describe, expect, test } from 'vitest';", "const { f } = require('./a');", "expect(result)"]),
    ("rust new module", {"src/lib.rs": "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n"},
     "src/lib.rs", "fn add", "rust", "src/lib.rs",
     ["#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn test_add() {", "add(Default::default(), Default::default())"]),
    ("rust existing module", {"src/lib.rs": "pub fn add(a: i32) -> i32 {\n    a\n}\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn works() {\n        assert_eq!(add(1), 1);\n    }\n}\n"},
     "src/lib.rs", "fn add", "rust", "src/lib.rs",
     ["        assert_eq!(add(1), 1);\n    }\n\n    #[test]\n    fn test_add() {", "    }\n}\n"]),
    ("java maven new", {"src/main/java/com/acme/Calc.java": "package com.acme;\n\npublic class Calc {\n    public int add(int a, int b) {\n        return a + b;\n    }\n}\n"},
     "src/main/java/com/acme/Calc.java", "add", "java", "src/test/java/com/acme/CalcTest.java",
     ["package com.acme;", "import org.junit.jupiter.api.Test;", "class CalcTest {", "    @Test\n    void add() {",
      "        int result = subject.add(0, 0);", "assertEquals(0, result);"]),
    ("java append", {"Calc.java": "class Calc {\n    static String name(String s) {\n        return s;\n    }\n}\n",
                     "CalcTest.java": "import org.junit.jupiter.api.Test;\n\nclass CalcTest {\n    @Test\n    void old() {}\n}\n"},
     "Calc.java", "name(", "java", "CalcTest.java",
     ["    void old() {}\n\n    @Test\n    void name() {", "String result = Calc.name(null);",
      "import static org.junit.jupiter.api.Assertions.assertEquals;"]),
]


@pytest.mark.parametrize("files, rel, needle, language, target, snippets", [c[1:] for c in OTHER_CASES],
                         ids=[c[0] for c in OTHER_CASES])
def test_other_languages(no_node, tmp_path, files, rel, needle, language, target, snippets):
    root = write(tmp_path, files)
    existing = files.get(target)
    edit = edit_for(root, rel, needle, language)
    assert not isinstance(edit, str), edit
    assert edit.path == root / target
    assert edit.create is (existing is None)
    new = edit.new_text
    for snippet in snippets:
        assert snippet in new, (snippet, new)
    assert syntax_error_count(new, language) == 0
    if existing is not None:  # only insertions: every old line is still there, in order
        lines = iter(new.splitlines())
        assert all(any(line == other for other in lines) for line in existing.splitlines())


@pytest.mark.parametrize("text, exported", [
    ("export function f() {}", True),
    ("export default async function f() {}", True),
    ("function f() {}\nexport { g, f as h };", True),
    ("function f() {}\nmodule.exports = { f };", True),
    ("exports.f = function () {};", True),
    ("function f() {}\n", False),
    ("export function ff() {}", False),
], ids=["export function", "default async", "export list", "module.exports", "exports.f", "not exported", "other name"])
def test_js_exports(text, exported):
    assert js_exports(text, "f") is exported


def test_js_test_for_an_unexported_function_says_so(no_node, tmp_path):
    root = write(tmp_path, {"a.js": "function hidden(x) {\n  return x;\n}\n"})
    edit = edit_for(root, "a.js", "hidden", "javascript")
    assert edit.new_text.startswith("// TODO: export hidden from ./a so that this test can import it.\n"
                                    "import { hidden } from './a';\n")
    assert syntax_error_count(edit.new_text, "javascript") == 0


def test_unsaved_document_gets_a_message(tmp_path):
    doc = Document("untitled:Untitled-1", "def f():\n    return 1\n", "python")
    result = asyncio.run(generate_tests(doc, 5, tmp_path, GenerationSettings(engine=None)))
    assert result == "save the file first: tests are generated for files on disk"


INVENTORY = '''from dataclasses import dataclass


@dataclass
class Item:
    sku: str
    quantity: int = 0

    @property
    def value(self) -> int:
        return self.quantity


class Store:
    def __init__(self, name, *, size: int, region="eu"):
        self.name = name

    def count(self) -> int:
        return 0


class Empty:
    def size(self) -> int:
        return 0
'''


@pytest.mark.parametrize("needle, expected", [
    ("def value", "def test_value_2():\n    item = Item('abc', quantity=3)\n    assert item.value == 3\n"),
    ("def count", "def test_count():\n    store = Store('abc', size=3)\n    assert store.count() == 0\n"),
    ("def size", "def test_size():\n    empty = Empty()\n    assert empty.size() == 0\n"),
], ids=["dataclass property", "init with keyword-only", "no constructor arguments"])
def test_methods_run_on_a_constructed_object(tmp_path, needle, expected):
    root = write(tmp_path, {"shop.py": INVENTORY})
    edit = edit_for(root, "shop.py", needle, "python")
    assert expected in edit.new_text
    assert re.fullmatch(r"\d tests? pass(es)?, 100% of \w+ covered", edit.message)


def test_js_append_does_not_repeat_an_existing_import(no_node, tmp_path):
    root = write(tmp_path, {"a.js": "function hidden(x) {\n  return x;\n}\n",
                            "a.test.js": "import { hidden } from './a';\n\ntest('old', () => {});\n"})
    edit = edit_for(root, "a.js", "hidden", "javascript")
    assert edit.new_text.count("import { hidden }") == 1
    assert edit.new_text.startswith("import { hidden } from './a';\n\ntest('old', () => {});\n\ntest('hidden'")
    again = write(tmp_path, {"a.test.js": edit.new_text})
    assert edit_for(again, "a.js", "hidden", "javascript").test_name == "hidden2"


CLAMP = "export function clamp(value, min, max) {\n  return Math.min(Math.max(value, min), max);\n}\n"


@pytest.mark.parametrize("completion, from_model", [
    ("5, 0, 10)).toBe(5);\n  expect(clamp(-1, 0, 10)).toBe(0);\n", True),
    ("5, 0, 10)).toBe(5);\n  expect(clamp(5, 0, 10)).toBe(5);\n  expect(clamp(5, 0, 10)).toBe(6);\n", True),
    ("5, 0, 10, 11, 12)).toBe(5);\n", False),
    ("x, 0, 10)).toBe(5);\n", False),
    (")).toBe(", False),
    ("5, 0, 10)).toBe(5)\n  }}}}\n", True),
], ids=["valid", "repeats and contradictions collapse", "too many arguments", "unknown name", "unfinished", "junk after"])
def test_js_model_bodies_are_checked(no_node, tmp_path, completion, from_model):
    root = write(tmp_path, {"clamp.js": CLAMP})
    edit = edit_for(root, "clamp.js", "clamp", "javascript", completion)
    assert edit.from_model is from_model
    assert syntax_error_count(edit.new_text, "javascript") == 0
    if from_model:
        assert "test('clamp', () => {\n  // TODO: check the expected values (generated).\n  expect(clamp(5, 0, 10)).toBe(5)" \
            in edit.new_text
        assert edit.new_text.count("expect(clamp(5, 0, 10)).toBe(5)") == 1


@pytest.mark.parametrize("source, expected", [
    ("def mean(values):\n    if not values:\n        raise ValueError('empty')\n    return sum(values)\n",
     "import pytest\n\nfrom stats import mean\n"),
    ("class EmptyError(Exception):\n    pass\n\n\ndef mean(values):\n    if not values:\n        raise EmptyError\n"
     + "    return sum(values)\n", "import pytest\n\nfrom stats import EmptyError, mean\n"),
], ids=["builtin exception", "module exception"])
def test_raises_gets_its_own_test(tmp_path, source, expected):
    root = write(tmp_path, {"stats.py": source})
    new = edit_for(root, "stats.py", "def mean", "python").new_text
    assert expected in new
    name = "value_error" if "ValueError" in source else "empty_error"
    exception = "ValueError" if "ValueError" in source else "EmptyError"
    assert f"def test_mean_raises_{name}():\n    with pytest.raises({exception}):\n        mean([])\n" in new
    assert "def test_mean():\n    assert mean([1, 2, 3]) == 6\n" in new
    assert new.index("def test_mean():") < new.index(f"def test_mean_raises_{name}")



def test_server_and_trainer_render_the_same_test_prompt():
    """The trainer's test examples end where the server's prompt opens the test function."""
    from repolsp.server.context.build import approx_token_count
    from repolsp.server.testgen import python_test_prompt
    from repolsp.trainer.prompts import ExampleRenderer

    source = "def area(width, height):\n    return width * height\n"
    doc = Document("file:///geo.py", "import math\n\n\n" + source, "python")
    renderer = ExampleRenderer.for_template("repolsp-smollm2", approx_token_count, 512)
    trained = renderer.instruction_prompt("tests", "python", "geo.py", "function", "area", source)
    served = python_test_prompt(doc, target_for_tests(doc, doc.text.index("return")), "test_area")
    assert served == trained + "def test_area():\n    assert area("


@pytest.mark.skipif(__import__("shutil").which("node") is None, reason="node is not installed")
def test_js_tests_run_with_node_and_only_passing_ones_are_kept(tmp_path):
    root = write(tmp_path, {"clamp.js": CLAMP.replace("{\n", "{\n  if (min > max) throw new RangeError('min > max');\n", 1)})
    edit = edit_for(root, "clamp.js", "clamp", "javascript")
    assert re.fullmatch(r"\d+ tests pass with node:test \(no coverage figure for JavaScript\)", edit.message)
    new = edit.new_text
    assert new.startswith("import { test } from 'node:test';\nimport assert from 'node:assert/strict';\n"
                          "import { clamp } from './clamp.js';\n")
    assert "  assert.deepStrictEqual(clamp(3, 0, 1), 1);\n" in new
    assert "  assert.throws(() => clamp(3, 10, 1), RangeError);\n" in new and "TODO" not in new


def test_js_without_node_says_the_tests_were_not_run(no_node, tmp_path):
    root = write(tmp_path, {"clamp.js": CLAMP})
    edit = edit_for(root, "clamp.js", "clamp", "javascript")
    assert edit.message == "tests not run: node is not installed; the test is a syntax-checked skeleton"


@pytest.mark.skipif(__import__("shutil").which("node") is None, reason="node is not installed")
@pytest.mark.parametrize("body, reason", [
    ("  while (true) {}\n", "no call of bad could be checked: the code did not finish within 8 s"),
    ("  require('node:fs').writeFileSync('/tmp/repolsp-js-escape.txt', 'x');\n  return x;\n",
     "bad could not run in the sandbox: it needs FileSystemWrite access, which the sandbox refuses"),
    ("  require('node:child_process').execSync('true');\n  return x;\n",
     "bad could not run in the sandbox: it needs ChildProcess access, which the sandbox refuses"),
], ids=["never returns", "writes outside its folder", "starts a process"])
def test_bad_javascript_gets_a_reason(tmp_path, body, reason):
    root = write(tmp_path, {"bad.js": f"function bad(x) {{\n{body}}}\nmodule.exports = {{ bad }};\n"})
    edit = edit_for(root, "bad.js", "function bad", "javascript")
    assert edit.message == f"tests not run: {reason}; the test is a syntax-checked skeleton"
    assert not Path("/tmp/repolsp-js-escape.txt").exists()
