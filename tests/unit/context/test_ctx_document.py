"""Document: language detection, incremental sync and incremental re-parse == fresh parse."""

import random

import pytest
from repolsp.server.context import coords
from repolsp.server.context.document import Document
from repolsp.server.context.languages import language_for, parser_for

SOURCES = {
    "python": ("a.py", "import os\n\ndef f(x):\n    s = 'héllo 😀'\n    return x + 1\n"),
    "javascript": ("a.js", "const s = `😀 ${x}`;\nfunction f(a) {\n  return a * 2;\n}\n"),
    "typescript": ("a.ts", "export function f(a: number): string {\n  return 'é' + a;\n}\n"),
    "tsx": ("a.tsx", "const A = () => <div>héllo</div>;\n"),
    "go": ("a.go", "package m\n\nfunc F(a int) int {\n\treturn a // 日本\n}\n"),
    "rust": ("a.rs", "fn f(a: i32) -> i32 {\r\n    let s = \"😀\";\r\n    a\r\n}\r\n"),
    "java": ("A.java", "class A {\n  int f(int a) { return a; } // ü\n}\n"),
    "c": ("a.c", "#include <stdio.h>\nint f(int a) {\n  return a; /* ß */\n}\n"),
    "cpp": ("a.cpp", "#include <vector>\nint f(int a) { return a; }\n"),
}


@pytest.mark.parametrize(
    "language_id,path,expected",
    [
        ("python", "x.txt", "python"),
        (None, "src/x.py", "python"),
        ("typescriptreact", None, "tsx"),
        (None, "x.tsx", "tsx"),
        (None, "x.hpp", "cpp"),
        (None, "x.h", "c"),
        ("javascriptreact", None, "javascript"),
        (None, "README.md", "text"),
        ("markdown", "README", "text"),
    ],
    ids=["id-wins", "py-ext", "tsx-id", "tsx-ext", "hpp", "h", "jsx-id", "md", "no-ext"],
)
def test_language_for(language_id, path, expected):
    assert language_for(language_id, path) == expected


@pytest.mark.parametrize("language", list(SOURCES))
def test_every_language_parses(language):
    path, text = SOURCES[language]
    doc = Document(f"file:///w/{path}", text)
    assert doc.language == language
    assert doc.tree is not None and not doc.tree.root_node.has_error


def test_text_document_has_no_tree():
    doc = Document("file:///w/notes.txt", "hello\n")
    assert doc.language == "text" and doc.tree is None
    doc.apply_change("x", ((0, 0), (0, 0)))
    assert doc.text == "xhello\n"


def _tree_signature(tree):
    """S-expression plus every node's byte range: equal only for identical trees."""
    out = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        out.append((node.type, node.start_byte, node.end_byte, node.start_point, node.end_point))
        stack.extend(node.children)
    return str(tree.root_node), out


_INSERTS = ["x", "😀", "é", "\n", "\r\n", "(a, b)", "  ", "'", "{", "}", "日本語", "return 1\n"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8", "utf-32"])
@pytest.mark.parametrize("language", list(SOURCES))
def test_incremental_edits_match_fresh_parse(language, encoding):
    path, text = SOURCES[language]
    doc = Document(f"file:///w/{path}", text, encoding=encoding)
    rng = random.Random(f"{language}-{encoding}")
    expected = text
    for step in range(40):
        start = rng.randint(0, len(expected))
        end = min(len(expected), start + rng.choice([0, 0, 1, 2, 5]))
        # Never split a \r\n pair: LSP cannot address the middle of it.
        if 0 < start < len(expected) and expected[start - 1] == "\r" and expected[start] == "\n":
            start -= 1
        if 0 < end < len(expected) and expected[end - 1] == "\r" and expected[end] == "\n":
            end += 1
        new = rng.choice(_INSERTS) if rng.random() < 0.8 else ""
        index = coords.LineIndex(expected)
        lsp_range = (index.position_at(start, encoding), index.position_at(end, encoding))
        doc.apply_change(new, lsp_range, version=step + 1)
        expected = expected[:start] + new + expected[end:]
        assert doc.text == expected
        assert doc.version == step + 1
    fresh = parser_for(doc.language).parse(expected.encode("utf-8"))
    assert _tree_signature(doc.tree) == _tree_signature(fresh)


def test_full_replacement_and_positions():
    doc = Document("file:///w/a.py", "x = 1\n")
    doc.apply_change("y = '😀'\nz = 2\n", None, version=3)
    assert doc.version == 3 and doc.text.startswith("y")
    assert doc.offset_at(1, 0) == doc.text.index("z")
    assert doc.position_at(doc.text.index("'", 5)) == (0, 7)  # emoji counts 2 utf-16 units
    assert str(doc.tree.root_node).startswith("(module")


def test_from_path_reads_undecodable_bytes(tmp_path):
    file = tmp_path / "pkg" / "m.py"
    file.parent.mkdir()
    file.write_bytes(b"x = '\xff'\n")
    doc = Document.from_path(file, root=tmp_path)
    assert doc.path == "pkg/m.py"
    assert doc.language == "python"
    assert "\ufffd" in doc.text
    assert doc.uri.startswith("file://")


def test_uri_derived_path_and_percent_encoding():
    doc = Document("file:///w/my%20dir/a.py", "")
    assert doc.path == "/w/my dir/a.py"
    assert Document("untitled:Untitled-1", "x", language_id="python").language == "python"


@pytest.mark.parametrize("language", ["python", "rust", "javascript"])
def test_document_byte_conversions_match_coords(language):
    path, text = SOURCES[language]
    doc = Document(f"file:///w/{path}", text * 3)
    data = doc.source_bytes
    for offset in range(len(doc.text) + 1):
        byte = doc.byte_at(offset)
        assert byte == coords.offset_to_byte(doc.text, offset)
        assert doc.offset_of_byte(byte) == offset
    for byte in range(len(data) + 1):
        assert doc.offset_of_byte(byte) == coords.byte_to_offset(data, byte)
