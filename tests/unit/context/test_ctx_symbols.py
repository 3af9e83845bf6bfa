"""enclosing_definition and friends in all eight languages (Python richest)."""

import pytest
from repolsp.server.context.document import Document
from repolsp.server.context.symbols import (
    enclosing_callable,
    enclosing_definition,
    file_definitions,
    import_nodes,
    signature_text,
)


def _doc(path, source):
    offset = source.index("<|>")
    return Document(f"file:///w/{path}", source.replace("<|>", ""), path=path), offset


PY = '''import os

class Store(Base):
    """Keeps records."""

    @cached
    async def save(self, name: str, *args, retries: int = 3, **options) -> bool:
        """Save one record."""
        if not name:
            raise ValueError("name")
        def helper():
            return 42
        <|>return True

    def items(self):
        for x in self.data:
            yield x
'''

# id, path, source, expected fields
CASES = [
    ("python-method", "a.py", PY, {
        "kind": "method", "name": "save", "qualified_name": "Store.save",
        "parameters": ["name", "*args", "retries", "**options"], "return_type": "bool",
        "decorators": ["@cached"], "has_docstring": True, "has_return_value": True, "has_raise": True,
        "has_yield": False, "is_async": True, "indent": "    ", "body_indent": "        "}),
    ("python-generator", "a.py", PY.replace("<|>", "").replace("            yield x", "            yield x<|>"), {
        "kind": "method", "name": "items", "parameters": [], "has_yield": True, "has_return_value": False,
        "has_docstring": False}),
    ("python-nested-return-not-counted", "a.py",
     "def outer(a):\n    def inner():\n        return 1\n    <|>print(a)\n",
     {"kind": "function", "name": "outer", "parameters": ["a"], "has_return_value": False}),
    ("python-unfinished-body", "a.py", "def f(x, y):\n    total = x\n    <|>",
     {"name": "f", "parameters": ["x", "y"], "has_docstring": False}),
    ("python-empty-body", "a.py", "class A:\n    def g(self, v):\n        <|>",
     {"name": "g", "qualified_name": "A.g", "body_indent": "        "}),
    ("javascript-doc-comment", "a.js",
     "/** Adds. */\nexport function add(a, b = 1, ...rest) {\n  <|>return a + b;\n}\n",
     {"kind": "function", "name": "add", "parameters": ["a", "b", "...rest"], "has_docstring": True,
          "has_return_value": True, "header": "function add(a, b = 1, ...rest)"}),
    ("javascript-arrow", "a.js", "const twice = async (x) => {\n  throw x;<|>\n};\n",
     {"kind": "function", "name": "twice", "parameters": ["x"], "has_raise": True, "is_async": True}),
    ("typescript-method", "a.ts",
     "class K {\n  private m(a: number = 1, b?: string): string {\n    return ''<|>;\n  }\n}\n",
     {"kind": "method", "name": "m", "qualified_name": "K.m", "parameters": ["a", "b"], "return_type": "string",
          "has_return_value": True}),
    ("tsx-function", "a.tsx", "function View(props: P) {\n  return <div/><|>;\n}\n",
     {"name": "View", "parameters": ["props"], "has_return_value": True}),
    ("go-method", "a.go",
     "package m\n\n// F does it.\nfunc (r *Repo) F(a, b int, c string) (int, error) {\n\tpanic(1)<|>\n}\n",
     {"kind": "method", "name": "F", "qualified_name": "Repo.F", "parameters": ["a", "b", "c"],
          "has_docstring": True, "has_raise": True, "has_return_value": True, "body_indent": "\t"}),
    ("rust-method", "a.rs",
     "impl Store {\n    /// Saves.\n    fn save(&self, name: &str) -> bool {\n        todo!()<|>\n    }\n}\n",
     {"kind": "method", "name": "save", "qualified_name": "Store.save", "parameters": ["name"],
          "has_docstring": True, "has_raise": True, "has_return_value": True}),
    ("rust-attributes-and-doc", "a.rs",
     "/// A point.\n#[derive(Debug)]\n#[repr(C)]\nstruct Point {\n    x: i32,<|>\n}\n",
     {"kind": "struct", "name": "Point", "decorators": ["#[derive(Debug)]", "#[repr(C)]"],
      "docstring": "/// A point.", "start": 13}),
    ("java-method", "A.java",
     "class K {\n  /** Doc. */\n  public int m(int a, String b) throws E {\n    throw new E();<|>\n  }\n}\n",
     {"kind": "method", "name": "m", "qualified_name": "K.m", "parameters": ["a", "b"], "has_docstring": True,
          "has_raise": True, "has_return_value": False, "return_type": "int"}),
    ("c-function", "a.c", "// Adds.\nstatic int *add(int a, char *b) {\n  return 0;<|>\n}\n",
     {"kind": "function", "name": "add", "parameters": ["a", "b"], "has_docstring": True, "has_return_value": True}),
    ("cpp-method", "a.cpp", "namespace n {\nclass C {\n public:\n  int m(int a) const {\n    throw 1;<|>\n  }\n};\n}\n",
     {"kind": "method", "name": "m", "qualified_name": "n.C.m", "parameters": ["a"], "has_raise": True}),
    ("cpp-out-of-line", "a.cpp", "int Widget::size(int a) {\n  return a;<|>\n}\n",
     {"kind": "function", "name": "Widget::size", "parameters": ["a"], "has_return_value": True}),
]


@pytest.mark.parametrize("path,source,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_enclosing_definition(path, source, expected):
    doc, offset = _doc(path, source)
    info = enclosing_definition(doc, offset)
    assert info is not None
    for name, value in expected.items():
        assert getattr(info, name) == value, (name, getattr(info, name))
    assert info.start <= info.header_start < info.end
    assert info.body_start is not None and info.header_start < info.body_start <= info.end


@pytest.mark.parametrize(
    "path,source",
    [
        ("a.py", "def f():\n    return 1\n<|>\n"),
        ("a.py", "x = 1<|>\n"),
        ("a.js", "function f() {\n}\n<|>\n"),
        ("notes.txt", "def f():\n    <|>\n"),
    ],
    ids=["py-after-dedent", "py-top-level", "js-after-close", "text-file"],
)
def test_no_enclosing_definition_outside(path, source):
    doc, offset = _doc(path, source)
    assert enclosing_definition(doc, offset) is None


def test_python_docstring_insertion_point():
    doc, offset = _doc("a.py", "def f(a):\n    <|>x = a\n    return x\n")
    info = enclosing_definition(doc, offset)
    assert doc.text[info.body_start:].startswith("x = a")
    assert info.body_indent == "    " and info.docstring is None


def test_enclosing_callable_skips_class():
    doc, offset = _doc("a.py", "class A:\n    x = 1<|>\n")
    assert enclosing_definition(doc, offset).kind == "class"
    assert enclosing_callable(doc, offset) is None


@pytest.mark.parametrize(
    "path,source,expected",
    [
        ("a.py", "import os\ntry:\n    import ujson as json\nexcept ImportError:\n    import json\nx = 1\n",
         ["import os", "import ujson as json", "import json"]),
        ("a.js", "import a from 'a';\nconst b = 1;\nimport { c } from './c';\n",
         ["import a from 'a';", "import { c } from './c';"]),
        ("a.go", "package m\n\nimport (\n\t\"fmt\"\n)\n", ["package m", "import (\n\t\"fmt\"\n)"]),
        ("a.rs", "use std::io;\nextern crate foo;\nfn f() {}\n", ["use std::io;", "extern crate foo;"]),
        ("A.java", "package a;\nimport b.C;\nclass A {}\n", ["package a;", "import b.C;"]),
        ("a.c", "#include <stdio.h>\n#ifdef X\n#include \"x.h\"\n#endif\n", ["#include <stdio.h>", "#include \"x.h\""]),
        ("a.cpp", "#include <vector>\nusing std::vector;\n", ["#include <vector>", "using std::vector;"]),
    ],
    ids=["python", "javascript", "go", "rust", "java", "c", "cpp"],
)
def test_import_extraction(path, source, expected):
    doc = Document(f"file:///w/{path}", source)
    assert [doc.node_text(n).rstrip() for n in import_nodes(doc)] == expected


def test_file_definitions_and_signature_text():
    doc = Document("file:///w/a.py", PY.replace("<|>", ""))
    names = [(d.kind, d.qualified_name) for d in file_definitions(doc)]
    assert names == [("class", "Store"), ("method", "Store.save"), ("function", "Store.save.helper"),
                     ("method", "Store.items")]
    save = file_definitions(doc)[1]
    assert signature_text(save) == (
        "    async def save(self, name: str, *args, retries: int = 3, **options) -> bool:\n"
        '        """Save one record."""'
    )


def test_trimmed_docstring_is_closed_at_the_body_indentation():
    body = "\n".join(f"        line {i}" for i in range(8))
    doc = Document("file:///w/a.py", f'class A:\n    def f(self):\n        """Summary.\n{body}\n        """\n')
    info = file_definitions(doc)[1]
    assert signature_text(info, max_doc_lines=3).splitlines()[-1] == '        """'
