"""build_context: windows, priority order, whole snippets, and the token budget."""

import pytest
from repolsp.server.context.build import (
    ContextBudget,
    TokenCounter,
    approx_token_count,
    build_context,
    context_tokens,
)
from repolsp.server.context.document import Document
from repolsp.server.context.snippets import current_callee, names_near_cursor
from repolsp.server.context.types import Snippet


def words(text: str) -> int:
    """A deterministic stand-in tokenizer: one token per whitespace-separated word or newline."""
    return len(text.split()) + text.count("\n")


PY_SOURCE = (
    "import os\nimport json\nfrom pathlib import Path\n\n\n"
    "class Store:\n    \"\"\"Keeps records on disk.\"\"\"\n\n"
    "    def save(self, name, record):\n        \"\"\"Write one record.\"\"\"\n"
    + "".join(f"        step_{i} = os.path.join(name, 'part{i}')\n" for i in range(120))
    + "        path = Path(name)\n        <|>\n\n    def load(self, name):\n        return json.loads(name)\n"
)


def _doc(source: str, path: str = "pkg/store.py") -> tuple[Document, int]:
    offset = source.index("<|>")
    return Document(f"file:///w/{path}", source.replace("<|>", ""), path=path), offset


@pytest.mark.parametrize("max_prompt_tokens", [40, 64, 128, 256, 512, 2048], ids=lambda n: f"{n}tok")
@pytest.mark.parametrize("counter", [words, approx_token_count], ids=["words", "approx"])
def test_budget_is_never_exceeded(max_prompt_tokens, counter):
    doc, offset = _doc(PY_SOURCE)
    budget = ContextBudget(max_prompt_tokens=max_prompt_tokens)
    ctx = build_context(doc, offset, None, budget, counter)
    assert context_tokens(ctx, counter) + budget.reserved_tokens <= max_prompt_tokens
    assert ctx.suffix == "" or counter(ctx.suffix) <= budget.max_suffix_tokens
    assert doc.text[: offset].endswith(ctx.prefix)
    assert doc.text[offset:].startswith(ctx.suffix)


def test_windows_cut_at_line_boundaries_and_favour_prefix():
    doc, offset = _doc(PY_SOURCE)
    ctx = build_context(doc, offset, None, ContextBudget(max_prompt_tokens=256), words)
    start = offset - len(ctx.prefix)
    assert start == 0 or doc.text[start - 1] == "\n"
    end = offset + len(ctx.suffix)
    assert end == len(doc.text) or doc.text[end - 1] == "\n"
    assert words(ctx.prefix) > words(ctx.suffix)
    assert ctx.prefix.endswith("        path = Path(name)\n        ")


def test_scope_header_and_imports_are_added_when_out_of_window_in_priority_order():
    doc, offset = _doc(PY_SOURCE)
    ctx = build_context(doc, offset, None, ContextBudget(max_prompt_tokens=256), words)
    kinds = [s.kind for s in ctx.snippets]
    assert kinds == ["scope", "imports"]
    scope = ctx.snippets[0].text
    assert scope.startswith("class Store:") and "def save(self, name, record):" in scope
    assert '"""Write one record."""' in scope  # the innermost scope keeps its docstring
    assert "Keeps records on disk" not in scope  # outer scopes give their header line only
    assert ctx.snippets[1].text == "import os\nimport json\nfrom pathlib import Path"
    assert ctx.mode.value == "single-line" or ctx.mode.value == "multi-line"


def test_no_scope_or_imports_when_the_whole_file_fits():
    source = "import os\n\ndef f(x):\n    return os.path.join(x, <|>)\n"
    doc, offset = _doc(source, "a.py")
    ctx = build_context(doc, offset, None, ContextBudget(max_prompt_tokens=512), words)
    assert ctx.prefix == source[: source.index("<|>")]
    assert ctx.snippets == []


def test_imports_fallback_keeps_only_relevant_imports_when_all_do_not_fit():
    imports = "".join(f"import module_{i}\n" for i in range(60))
    source = imports + "import json\n" + "x = 1\n" * 200 + "value = json.<|>\n"
    doc, offset = _doc(source, "a.py")
    ctx = build_context(doc, offset, None, ContextBudget(max_prompt_tokens=160, max_snippet_share=0.3), words)
    imports_snippets = [s for s in ctx.snippets if s.kind == "imports"]
    assert [s.text for s in imports_snippets] == ["import json"]


def test_imports_fallback_reduces_python_from_imports_to_used_names():
    names = ", ".join(f"name_{i}" for i in range(80))
    source = f"from big.module import ({names}, wanted)\n" + "x = 1\n" * 200 + "value = wanted(<|>)\n"
    doc, offset = _doc(source, "a.py")
    ctx = build_context(doc, offset, None, ContextBudget(max_prompt_tokens=200), words)
    assert [s.text for s in ctx.snippets if s.kind == "imports"] == ["from big.module import wanted"]


class FakeWorkspace:
    """Stands in for WorkspaceIndex: fixed definitions and retrieved chunks."""

    def __init__(self, definitions, retrieved, fail=False):
        self.definitions, self.retrieved, self.fail = definitions, retrieved, fail
        self.asked_names = None

    def definitions_for(self, names, exclude_path=None, hints=()):
        if self.fail:
            raise RuntimeError("index broken")
        self.asked_names = list(names)
        return list(self.definitions)

    def retrieve(self, query_text, exclude_path=None, limit=5):
        if self.fail:
            raise OSError("index broken")
        return list(self.retrieved)[:limit]


def test_priority_order_and_whole_snippets_with_workspace():
    doc, offset = _doc(PY_SOURCE)
    small_def = Snippet("pkg/util.py", "def normalise(name):\n    \"\"\"Clean a name.\"\"\"", "definition")
    huge_def = Snippet("pkg/big.py", "def big():\n" + "    x = 1\n" * 500, "definition")
    retrieved = Snippet("pkg/other.py", "def save_all(names):\n    for n in names:\n        save(n)\n", "retrieved")
    workspace = FakeWorkspace([huge_def, small_def], [retrieved])
    ctx = build_context(doc, offset, workspace, ContextBudget(max_prompt_tokens=512), words)
    kinds = [s.kind for s in ctx.snippets]
    assert kinds == ["scope", "imports", "definition", "retrieved"]
    assert huge_def not in ctx.snippets  # too big: skipped whole, never cut
    assert small_def in ctx.snippets and retrieved in ctx.snippets
    assert "Path" in workspace.asked_names  # imported names used near the cursor come first
    assert workspace.asked_names[0] == "Path"
    assert "step_119" not in workspace.asked_names  # plain variables are not looked up


def test_workspace_failure_degrades_to_no_workspace_snippets():
    doc, offset = _doc(PY_SOURCE)
    ctx = build_context(doc, offset, FakeWorkspace([], [], fail=True), ContextBudget(), words)
    assert {s.kind for s in ctx.snippets} <= {"scope", "imports"}


@pytest.mark.parametrize(
    "path,source,expected_scope",
    [
        ("a.js", "import x from 'y';\nclass K {\n  m(a) {\n" + "    a += 1;\n" * 150 + "    <|>\n  }\n}\n",
         "class K {\n  m(a) {"),
        ("a.go", "package m\n\nimport \"fmt\"\n\n// F does it.\nfunc F(a int) int {\n" + "\ta++\n" * 150 + "\t<|>\n}\n",
         "// F does it.\nfunc F(a int) int {"),
        ("a.rs", "use std::io;\nimpl S {\n    fn m(&self) {\n" + "        x();\n" * 150 + "        <|>\n    }\n}\n",
         "impl S {\n    fn m(&self) {"),
        ("A.java", "import a.B;\nclass K {\n  void m() {\n" + "    x();\n" * 150 + "    <|>\n  }\n}\n",
         "class K {\n  void m() {"),
        ("a.c", "#include <stdio.h>\nint f(int a) {\n" + "  a++;\n" * 150 + "  <|>\n}\n", "int f(int a) {"),
        ("a.cpp", "#include <vector>\nnamespace n {\nint f(int a) {\n" + "  a++;\n" * 150 + "  <|>\n}\n}\n",
         "namespace n {\nint f(int a) {"),
        ("a.ts", "import x from 'y';\nexport function f(a: number): number {\n" + "  a++;\n" * 150 + "  <|>\n}\n",
         "export function f(a: number): number {"),
    ],
    ids=["javascript", "go", "rust", "java", "c", "cpp", "typescript"],
)
def test_scope_headers_and_imports_per_language(path, source, expected_scope):
    doc, offset = _doc(source, path)
    ctx = build_context(doc, offset, None, ContextBudget(max_prompt_tokens=200), words)
    by_kind = {s.kind: s.text for s in ctx.snippets}
    assert by_kind.get("scope") == expected_scope
    assert "imports" in by_kind


def test_half_typed_file_still_yields_context():
    source = "import os\n\ndef broken(x:\n    if x ==\n        return [1, 2,\n    <|>"
    doc, offset = _doc(source, "a.py")
    ctx = build_context(doc, offset, None, ContextBudget(), words)
    assert ctx.prefix.endswith("return [1, 2,\n    ")


def test_text_file_gets_line_context():
    doc, offset = _doc("line one\nline two\n<|>\nline four\n", "notes.md")
    ctx = build_context(doc, offset, None, ContextBudget(), words)
    assert ctx.language == "text" and ctx.prefix == "line one\nline two\n" and ctx.suffix == "\nline four\n"


def test_minified_single_line_is_cut_inside_the_line():
    doc, offset = _doc("var a=" + "x+" * 5000 + "<|>;\n", "a.min.js")
    ctx = build_context(doc, offset, None, ContextBudget(max_prompt_tokens=128), approx_token_count)
    assert 0 < approx_token_count(ctx.prefix) <= 128


def test_token_counter_caches_counts():
    calls = []

    def counting(text):
        calls.append(text)
        return len(text)

    counter = TokenCounter(counting, max_entries=2)
    assert counter("ab") == 2 and counter("ab") == 2
    assert calls == ["ab"]
    counter("c"), counter("d"), counter("ab")
    assert calls == ["ab", "c", "d", "ab"]  # evicted after max_entries


@pytest.mark.parametrize(
    "line_prefix,callee",
    [("x = f(", "f"), ("x = f(a, g(b), ", "f"), ("x = obj.method(a", "method"), ("y = [f(1), ", None),
     ("let v = Vec::<i32>::with_capacity(", "with_capacity"), ("foo<T>(", "foo"), ("x = 1", None)],
    ids=["simple", "nested-closed", "method", "in-list", "rust-turbofish", "generic", "no-call"],
)
def test_current_callee(line_prefix, callee):
    assert current_callee(line_prefix) == callee


def test_names_near_cursor_prefers_calls_and_nearness():
    doc, offset = _doc("value = compute(a)\nother = thing\nresult = transform(<|>)\n", "a.py")
    names = names_near_cursor(doc, offset, 5)
    assert names[0] == "transform"
    assert names.index("compute") < names.index("value")


FUZZ_SOURCES = {
    "python": ("a.py", PY_SOURCE.replace("<|>", "")),
    "javascript": ("a.js", "import a from 'a';\n/** d */\nclass K {\n  m(x) {\n    return `${x} 😀`;\n  }\n}\n" * 30),
    "go": ("a.go", "package m\n\nimport \"fmt\"\n\nfunc F(a int) int {\n\tfmt.Println(\"é\")\n\treturn a\n}\n" * 30),
    "rust": ("a.rs", "use std::io;\r\nfn f(a: i32) -> i32 {\r\n    let s = \"日本\";\r\n    a\r\n}\r\n" * 30),
    "java": ("A.java", "import a.B;\nclass A {\n  int f(int a) {\n    return a; // ü\n  }\n}\n" * 30),
    "c": ("a.c", "#include <stdio.h>\nint f(int a) {\n  return a; /* ß */\n}\n" * 30),
    "cpp": ("a.cpp", "#include <vector>\nnamespace n {\nint f(int a) { return a; }\n}\n" * 30),
    "text": ("notes.txt", "some words here\n\tindented line\n" * 50),
    "empty": ("e.py", ""),
}


@pytest.mark.parametrize("language", list(FUZZ_SOURCES))
def test_invariants_at_random_cursors(language):
    import random

    path, text = FUZZ_SOURCES[language]
    doc = Document(f"file:///w/{path}", text, path=path)
    rng = random.Random(language)
    for _ in range(40):
        offset = rng.randint(0, len(text))
        budget = ContextBudget(max_prompt_tokens=rng.choice([48, 96, 200, 512]), max_suffix_tokens=rng.choice([0, 16, 96]))
        ctx = build_context(doc, offset, None, budget, approx_token_count)
        assert context_tokens(ctx, approx_token_count) + budget.reserved_tokens <= budget.max_prompt_tokens
        assert text[:offset].endswith(ctx.prefix) and text[offset:].startswith(ctx.suffix)
        assert ctx.language == doc.language


def test_scope_is_dropped_when_the_grown_prefix_shows_it():
    source = "def f(a):\n" + "    x = 1\n" * 30 + "    <|>"
    doc, offset = _doc(source, "a.py")
    ctx = build_context(doc, offset, None, ContextBudget(max_prompt_tokens=200), words)
    assert ctx.prefix.startswith("def f(a):")  # the leftover went back to the prefix...
    assert ctx.snippets == []  # ...so the scope header is not repeated
