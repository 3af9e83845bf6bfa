"""should_complete decisions per language: none / single-line / multi-line and block ends."""

import pytest
from repolsp.server.context.document import Document
from repolsp.server.context.should_complete import should_complete
from repolsp.server.context.types import CompletionMode

NONE, SINGLE, MULTI = CompletionMode.NONE, CompletionMode.SINGLE_LINE, CompletionMode.MULTI_LINE
ANY = object()

# id, file name, source with the cursor marked "<|>", mode, block_indent (ANY = not checked)
CASES = [
    # Python
    ("py-mid-line", "a.py", "x = foo(<|>)\n", SINGLE, ANY),
    ("py-end-of-line", "a.py", "def f(x):\n    y = x +<|>\n", SINGLE, 0),
    ("py-empty-body", "a.py", "def f(x):\n    <|>", MULTI, 0),
    ("py-empty-body-cursor-col0", "a.py", "def f(x):\n<|>\n", MULTI, 0),
    ("py-end-of-unfinished-body", "a.py", "def f(x):\n    y = 1\n    <|>", MULTI, 0),
    ("py-end-of-body-before-dedent", "a.py", "class A:\n    def f(self):\n        y = 1\n        <|>\n    def g(self):\n        pass\n", MULTI, 4),
    ("py-between-statements", "a.py", "def f(x):\n    a = 1\n    <|>\n    return a\n", SINGLE, 0),
    ("py-after-colon", "a.py", "for i in range(3):<|>\n", MULTI, 0),
    ("py-dict-colon-is-not-a-block", "a.py", "x = {\"a\":<|>\n", SINGLE, ANY),
    ("py-in-string", "a.py", "x = 'ab<|>c'\n", NONE, None),
    ("py-in-fstring-text", "a.py", "x = f'ab<|>{y}'\n", NONE, None),
    ("py-in-fstring-code", "a.py", "x = f'{ab<|>}'\n", SINGLE, ANY),
    ("py-in-comment-empty", "a.py", "x = 1  # <|>\n", NONE, None),
    ("py-comment-prose-at-eol", "a.py", "# compute the <|>\nx = 1\n", SINGLE, ANY),
    ("py-comment-mid-line", "a.py", "# compute <|>the thing\n", NONE, None),
    ("py-docstring-prose-at-eol", "a.py", 'def f():\n    """Compute the <|>"""\n', SINGLE, ANY),
    ("py-docstring-empty-line", "a.py", 'def f():\n    """Compute.\n\n    <|>\n    """\n', NONE, None),
    ("py-unclosed-string-is-being-typed", "a.py", "x = \"abc<|>\ny = 2\n", SINGLE, ANY),
    ("py-unclosed-docstring-is-being-typed", "a.py", 'def f():\n    """Compute the <|>\n\ndef g():\n    pass\n', SINGLE, ANY),
    ("py-inside-word", "a.py", "result = comp<|>ute(1)\n", NONE, None),
    ("py-after-closing-quote", "a.py", "x = 'abc'<|>\n", SINGLE, ANY),
    # JavaScript / TypeScript / TSX
    ("js-empty-body", "a.js", "function f(a) {\n  <|>\n}\n", MULTI, 0),
    ("js-mid-line", "a.js", "const x = f(<|>);\n", SINGLE, ANY),
    ("js-template-text", "a.js", "const s = `a<|>b`;\n", NONE, None),
    ("js-template-code", "a.js", "const s = `a${x<|>}`;\n", SINGLE, ANY),
    ("js-line-comment-prose", "a.js", "// sort the items by <|>\n", SINGLE, ANY),
    ("js-block-comment-mid", "a.js", "/* a <|>b */\n", NONE, None),
    ("ts-end-of-body", "a.ts", "class K {\n  m(): number {\n    const a = 1;\n    <|>\n  }\n}\n", MULTI, 2),
    ("ts-string", "a.ts", "let s: string = \"ab<|>\";\n", NONE, None),
    ("tsx-mid-line", "a.tsx", "const A = () => <div>{fo<|>}</div>;\n", SINGLE, ANY),
    # Go
    ("go-end-of-body", "a.go", "package m\n\nfunc f() {\n\tx := 1\n\t<|>\n}\n", MULTI, 0),
    ("go-raw-string", "a.go", "package m\n\nvar s = `ab<|>c`\n", NONE, None),
    ("go-empty-body", "a.go", "package m\n\nfunc f() {\n\t<|>\n}\n", MULTI, 0),
    # Rust
    ("rust-string", "a.rs", "fn f() {\n    let s = \"a<|>b\";\n}\n", NONE, None),
    ("rust-end-of-line", "a.rs", "fn f() {\n    let s = foo<|>\n}\n", SINGLE, 0),
    ("rust-doc-comment-prose", "a.rs", "/// Returns the <|>\nfn f() {}\n", SINGLE, ANY),
    # Java
    ("java-between-statements", "A.java", "class K {\n  void m() {\n    int x = 1;\n    <|>\n    foo();\n  }\n}\n", SINGLE, 2),
    ("java-after-brace", "A.java", "class K {\n  void m() {<|>\n  }\n}\n", MULTI, 2),
    ("java-string", "A.java", "class K { String s = \"a<|>\"; }\n", NONE, None),
    # C / C++
    ("c-include-path", "a.c", "#include <std<|>io.h>\n", NONE, None),
    ("c-end-of-body", "a.c", "int f(void) {\n  int a = 1;\n  <|>\n}\n", MULTI, 0),
    ("cpp-raw-string", "a.cpp", "auto s = R\"(ab<|>)\";\n", NONE, None),
    ("cpp-mid-line", "a.cpp", "int main() { return f(<|>); }\n", SINGLE, ANY),
    # Plain text / unknown languages: line-based rules only
    ("text-end-of-file", "notes.txt", "hello\n  <|>", MULTI, 0),
    ("text-mid-line", "notes.txt", "hel<|> world\n", SINGLE, ANY),
    # Broken and half-typed files still decide
    ("py-half-typed", "a.py", "def f(x:\n    return (x +<|>\n", SINGLE, ANY),
    ("empty-file", "a.py", "<|>", MULTI, None),
]


@pytest.mark.parametrize("path,source,mode,block_indent", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_should_complete(path, source, mode, block_indent):
    offset = source.index("<|>")
    doc = Document(f"file:///w/{path}", source.replace("<|>", ""))
    decision = should_complete(doc, offset)
    assert decision.mode == mode, decision
    if block_indent is not ANY:
        assert decision.block_indent == block_indent, decision
    assert decision.reason


def test_offset_out_of_range_is_clamped():
    doc = Document("file:///w/a.py", "x = 1\n")
    assert should_complete(doc, 10_000).mode == MULTI
    assert should_complete(doc, -5).mode in (SINGLE, NONE, MULTI)
