"""Docstring generation: targets, plans, model-text cleaning, rendering and insertion per language."""

from __future__ import annotations

import asyncio
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from repolsp.server.context.document import Document, path_to_uri
from repolsp.server.context.symbols import enclosing_definition
from repolsp.server.docgen import (
    DocFill,
    DocPlan,
    GenerationSettings,
    Param,
    apply_insertions,
    build_docstring_edit,
    clean_phrase,
    copied_from,
    detect_python_style,
    docstring_prompt,
    docstring_target,
    generate_docstring,
    harvest_sections,
    imperative,
    newline_of,
    plan_docstring,
    sections_prompt,
    summary_from_model,
    syntax_error_count,
)
from repolsp.server.engine.fake import FakeEngine

EXT = {"python": "py", "javascript": "js", "typescript": "ts", "go": "go", "rust": "rs", "java": "java",
       "c": "c", "cpp": "cpp"}


def make(language: str, text: str) -> Document:
    return Document(f"file:///tmp/sample.{EXT[language]}", text, language)


def template_edit(language: str, text: str, needle: str) -> tuple[str, Document]:
    doc = make(language, text)
    info = docstring_target(doc, text.index(needle) + 1)
    assert info is not None and not info.has_docstring
    edit = build_docstring_edit(doc, info, DocFill())
    assert edit is not None
    return apply_insertions(text, [edit.insertion]), doc


# -- Python insertion ----------------------------------------------------------------------------

PY_CASES = [
    ("plain", "def add(a, b):\n    return a + b\n", "add", "    ", '    """TODO: summarize `add`.\n'),
    ("method", "class A:\n    def f(self, x: int) -> int:\n        return x\n", "f", " " * 8,
     "            x (int): TODO: describe.\n"),
    ("one-liner", "def g(a): return a  # note\n", "g", "    ", '    """TODO: summarize `g`.\n'),
    ("class", "class Box:\n    size = 1\n", "Box", "    ", '    """TODO: summarize `Box`."""\n    size = 1\n'),
    ("decorated", "@cache\n@other(1)\ndef h() -> int:\n    return 1\n", "h", "    ", "    Returns:\n        int:"),
    ("async", "async def fetch(url):\n    return await get(url)\n", "fetch", "    ", "        url: TODO"),
    ("comment first", "def k(x):\n    # why: because\n    return x\n", "k", "    ",
     '    """\n    # why: because\n    return x\n'),
    ("forward reference", "def fr() -> 'Node':\n    return make()\n", "fr", "    ", "        Node: TODO"),
    ("tabs", "def t(a):\n\tif a:\n\t\treturn a\n", "t", "\t", "\tArgs:\n\t\ta: TODO: describe.\n"),
    ("header colon in comment", "def c(x):  # note: here\n    return x\n", "c", "    ", '    """TODO'),
    ("nested", "def outer():\n    def inner(y):\n        return y\n    return inner\n", "inner", " " * 8,
     "            y: TODO"),
    ("empty body being typed", "def add(a, b):\n    \n\n\ndef scale(v):\n    return v\n", "add", "    ",
     '        b: TODO: describe.\n    """\n    \n\n\ndef scale'),
    ("dataclass attributes", "@dataclass\nclass Item:\n    sku: str\n    qty: int = 0\n    _c: int = 0\n    K: ClassVar[int] = 1\n",
     "Item", "    ", ('    """TODO: summarize `Item`.\n\n    Attributes:\n        sku (str): TODO: describe.\n'
     '        qty (int): TODO: describe. Defaults to 0.\n    """\n    sku: str')),
    ("class before method", "class A:\n    def m(self):\n        pass\n", "A", "    ",
     '    """TODO: summarize `A`."""\n\n    def m(self):'),
    ("no-args no-return", "def noop():\n    pass\n", "noop", "    ", '    """TODO: summarize `noop`."""\n    pass'),
]


@pytest.mark.parametrize("text, name, indent, expected", [c[1:] for c in PY_CASES], ids=[c[0] for c in PY_CASES])
def test_python_docstring_is_first_statement_and_parses(text, name, indent, expected):
    needle = "class " + name if text.find("class " + name) >= 0 else "def " + name
    new, _doc = template_edit("python", text, needle)
    assert syntax_error_count(new, "python") == 0
    assert expected in new
    info = enclosing_definition(make("python", new), new.index(needle) + 4)
    assert info.name == name and info.docstring is not None
    docstring_line = new[:new.index('"""')].rsplit("\n", 1)[1]
    assert docstring_line == indent  # the docstring sits at the body's indentation


def test_python_crlf_is_preserved():
    text = "def add(a, b):\r\n    return a + b\r\n"
    new, _ = template_edit("python", text, "def add")
    assert "\n" not in new.replace("\r\n", "")
    assert '    """TODO: summarize `add`.\r\n\r\n    Args:\r\n' in new


def test_edit_touches_nothing_else():
    text = "import os\n\n\ndef add(a, b):\n    return a + b\n\n\nx = add(1, 2)\n"
    new, _ = template_edit("python", text, "def add")
    start = new.index('    """')
    end = new.index('"""\n', start + 7) + 4
    assert new[:start] + new[end:] == text


def test_file_with_an_existing_error_still_gets_a_docstring():
    text = "def add(a, b):\n    return a + b\n\nx = (\n"  # unfinished line elsewhere
    new, _ = template_edit("python", text, "def add")
    assert syntax_error_count(new, "python") <= syntax_error_count(text, "python")
    assert '"""TODO: summarize `add`.' in new


# -- other languages -----------------------------------------------------------------------------

OTHER_CASES = [
    ("js", "javascript", "export function add(a, b = 1, ...rest) {\n  if (!a) throw new TypeError('a');\n  return a + b;\n}\n",
     "add", ("/**\n * TODO: summarize add.\n *\n * @param a - TODO: describe.\n * @param b - TODO: describe."
     "\n * @param rest - TODO: describe.\n * @returns TODO: describe the result.\n"
     " * @throws {TypeError} TODO: say when.\n */\nexport function add(")),
    ("ts method", "typescript", "class K {\n  add(a: number): number {\n    return a;\n  }\n}\n", "add",
     "class K {\n  /**\n   * TODO: summarize add.\n   *\n   * @param a - TODO: describe.\n   * @returns TODO: describe the result.\n   */\n  add("),
    ("go", "go", "package m\n\nfunc Add(a, b int) int {\n\treturn a + b\n}\n", "Add",
     "package m\n\n// Add TODO: describe what it does.\nfunc Add("),
    ("go method tabs", "go", "package m\n\ntype T struct{}\n\nfunc (t T) Size() int {\n\treturn 1\n}\n", "Size",
     "\n// Size TODO: describe what it does.\nfunc (t T) Size()"),
    ("rust", "rust", "pub fn parse(s: &str) -> Result<u8, E> {\n    panic!(\"no\");\n}\n", "parse",
     ("/// TODO: summarize parse.\n///\n/// # Errors\n///\n/// TODO: describe when an error is returned.\n///\n"
     "/// # Panics\n///\n/// TODO: describe when it panics.\npub fn parse(")),
    ("rust impl method", "rust", "struct S;\nimpl S {\n    fn get(&self) -> u8 {\n        1\n    }\n}\n", "get",
     "impl S {\n    /// TODO: summarize get.\n    fn get("),
    ("java", "java", "class A {\n    @Override\n    public int add(int a, int b) throws IOException {\n        return a + b;\n    }\n}\n",
     "add", ("    /**\n     * TODO: summarize add.\n     *\n     * @param a TODO: describe.\n     * @param b TODO: describe.\n"
     "     * @return TODO: describe the result.\n     * @throws IOException TODO: say when.\n     */\n    @Override\n")),
    ("java void", "java", "class A {\n    void run() {\n    }\n}\n", "run", "    /**\n     * TODO: summarize run.\n     */\n    void run()"),
    ("c", "c", "#include <x.h>\nint add(int a, int b) {\n    return a + b;\n}\n", "add",
     ("#include <x.h>\n/**\n * @brief TODO: summarize add.\n *\n * @param a TODO: describe.\n * @param b TODO: describe.\n"
     " * @return TODO: describe the result.\n */\nint add(")),
    ("cpp template", "cpp", "template <typename T>\nT twice(T a) {\n    return a + a;\n}\n", "twice",
     "/**\n * @brief TODO: summarize twice.\n *\n * @param a TODO: describe.\n * @return TODO: describe the result.\n */\ntemplate <typename T>\n"),
    ("c void", "c", "void reset(void) {\n}\n", "reset", "/**\n * @brief TODO: summarize reset.\n */\nvoid reset"),
    ("js arrow", "javascript", "export const double = (x) => x * 2;\n", "double",
     "/**\n * TODO: summarize double.\n *\n * @param x - TODO: describe.\n */\nexport const double"),
    ("ts interface", "typescript", "interface Shape {\n  area(): number;\n}\n", "Shape",
     "/**\n * TODO: summarize Shape.\n */\ninterface Shape"),
    ("go struct", "go", "package m\n\ntype Point struct {\n\tX int\n}\n", "Point", "// Point TODO: describe what it does.\ntype Point"),
    ("rust trait method", "rust", "trait Area {\n    fn area(&self) -> f64;\n}\n", "area",
     "    /// TODO: summarize area.\n    fn area"),
    ("java constructor", "java", "class A {\n    A(int x) {}\n}\n", "A(int", ("    /**\n     * TODO: summarize A.\n"
     "     *\n     * @param x TODO: describe.\n     */\n    A(int x)")),
    ("c typedef struct", "c", "typedef struct point {\n    int x;\n} point_t;\n", "point {",
     "/**\n * @brief TODO: summarize point.\n */\ntypedef struct point"),
]


@pytest.mark.parametrize("language, text, name, expected", [c[1:] for c in OTHER_CASES], ids=[c[0] for c in OTHER_CASES])
def test_doc_comment_above_definition_parses(language, text, name, expected):
    doc = make(language, text)
    offset = text.index(name) + 1
    new, _ = template_edit(language, text, name)
    assert expected in new
    assert syntax_error_count(new, language) == 0
    # The comment is inserted before the definition: its name moved by the inserted length.
    info = docstring_target(make(language, new), offset + len(new) - len(text))
    assert info is not None and info.has_docstring  # the comment belongs to the definition
    assert docstring_target(doc, offset).name == re.match(r"\w+", name).group(0)


def test_doc_comment_crlf_and_tabs():
    text = "package m\r\n\r\ntype T struct{}\r\n\r\nfunc (t T) Run() {\r\n\tif true {\r\n\t\tfunc() {}()\r\n\t}\r\n}\r\n"
    new, _ = template_edit("go", text, "Run")
    assert "\r\n// Run TODO: describe what it does.\r\nfunc (t T) Run()" in new
    js = "class K {\r\n\tm(a) {\r\n\t\treturn a;\r\n\t}\r\n}\r\n"
    new, _ = template_edit("javascript", js, "m(a)")
    assert "\r\n\t/**\r\n\t * TODO: summarize m.\r\n\t *\r\n\t * @param a - TODO: describe.\r\n" in new


# -- targets and plans ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, offset_of, expected", [
    ("@dec\ndef f(x):\n    return x\n", "@dec", "f"),
    ("class A:\n    def m(self):\n        pass\n", "pass", "m"),
    ("x = 1\n", "x", None),
    ("def f():\n    \"\"\"Doc.\"\"\"\n", "Doc", "f"),
], ids=["on decorator", "inside method", "module level", "documented"])
def test_docstring_target(text, offset_of, expected):
    info = docstring_target(make("python", text), text.index(offset_of))
    assert (info.name if info else None) == expected


def test_plan_reads_signature_raises_and_yields():
    text = (
        "def walk(root: str, *paths, depth: int = 2, **options) -> Iterator[Path]:\n"
        "    if not root:\n        raise ValueError('root')\n"
        "    if depth < 0:\n        raise errors.DepthError from None\n"
        "    def inner():\n        raise KeyError\n"
        "    try:\n        pass\n    except OSError:\n        raise\n"
        "    yield Path(root)\n"
    )
    doc = make("python", text)
    plan = plan_docstring(doc, docstring_target(doc, 5))
    assert [(p.name, p.type, p.default) for p in plan.params] == [
        ("root", "str", None), ("*paths", None, None), ("depth", "int", "2"), ("**options", None, None)]
    assert plan.yields and plan.return_type == "Path" and not plan.returns
    assert plan.raises == ["ValueError", "errors.DepthError"]  # nested and bare raises excluded


@pytest.mark.parametrize("text, returns", [
    ("def f() -> None:\n    return\n", False),
    ("def f():\n    print(1)\n", False),
    ("def f():\n    return 1\n", True),
    ("class A:\n    def __init__(self, x):\n        self.x = x\n", False),
    ("class A:\n    @property\n    def size(self) -> int:\n        return 1\n", False),
], ids=["annotated None", "no return", "returns value", "constructor", "property"])
def test_plan_returns(text, returns):
    doc = make("python", text)
    assert plan_docstring(doc, docstring_target(doc, text.index("def") + 4)).returns is returns


@pytest.mark.parametrize("text, style", [
    ('def a():\n    """X.\n\n    Args:\n        x: y\n    """\n', "google"),
    ('def a():\n    """X.\n\n    Parameters\n    ----------\n    x : int\n    """\n', "numpy"),
    ('def a():\n    """X.\n\n    :param x: y\n    :returns: z\n    """\n', "sphinx"),
    ("x = 1\n", "google"),
], ids=["google", "numpy", "sphinx", "none"])
def test_detect_python_style(text, style):
    assert detect_python_style(text) == style


@pytest.mark.parametrize("style, expected", [
    ("numpy", "\n    Parameters\n    ----------\n    x : int\n        TODO: describe.\n\n    Returns\n    -------\n    int\n"),
    ("sphinx", "\n    :param x: TODO: describe.\n    :type x: int\n    :returns: TODO: describe the result.\n    :rtype: int\n"),
], ids=["numpy", "sphinx"])
def test_python_styles_follow_the_file(style, expected):
    other = {"numpy": '"""X.\n\nParameters\n----------\nx : int\n"""\n',
             "sphinx": '"""X.\n\n:param x: y\n"""\n'}[style]
    text = other + "\n\ndef f(x: int) -> int:\n    return x\n"
    new, _ = template_edit("python", text, "def f")
    assert expected in new
    assert syntax_error_count(new, "python") == 0


# -- model text ----------------------------------------------------------------------------------

PHRASES = [
    ("prose", " return the sum of two numbers\n", "Return the sum of two numbers."),
    ("first sentence only", "Adds a and b. Then more text.", "Adds a and b."),
    ("code", "return a + b", None),
    ("call", "total = add(a, b)", None),
    ("braces", "if (x) { y }", None),
    ("one word", "Adds", None),
    ("repetition", "the the the the value", None),
    ("symbols", "#### ---- ==== ////", None),
    ("too long", "word " * 40, None),
    ("todo", "TODO: write this", None),
    ("doctest", ">>> add(1, 2)", None),
    ("strips comment marks", " * Compute the mean value.", "Compute the mean value."),
]


@pytest.mark.parametrize("raw, expected", [c[1:] for c in PHRASES], ids=[c[0] for c in PHRASES])
def test_clean_phrase(raw, expected):
    assert clean_phrase(raw) == expected


@pytest.mark.parametrize("language, name, raw, expected", [
    ("python", "add", "Add two numbers.\n", "Add two numbers."),
    ("python", "add", 'Add two numbers."""', "Add two numbers."),
    ("python", "add", "add", None),
    ("python", "add_all", "add all", None),
    ("go", "sum", " returns the total of xs.\n", "sum returns the total of xs."),
    ("go", "Sum", " Sum(xs)", None),
    ("javascript", "add", " Adds two numbers.\n * @param a", "Adds two numbers."),
    ("c", "add", " Adds two ints.\n */", "Adds two ints."),
], ids=["python", "closing quotes", "name only", "humanized name", "go keeps case", "go code", "jsdoc", "doxygen"])
def test_summary_from_model(language, name, raw, expected):
    assert summary_from_model(raw, DocPlan(language, "function", name)) == expected


def test_harvest_sections_google_and_jsdoc():
    plan = DocPlan("python", "function", "f", params=[Param("a", "int"), Param("b"), Param("*rest")],
                   returns=True, return_type="int")
    raw = (" The first operand.\n        b: The second operand.\n        *rest: Extra values to add.\n\n"
           "    Returns:\n        int: The sum of all values.\n    \"\"\"\n")
    fill = harvest_sections(raw, plan)
    assert fill.params == {"a": "The first operand.", "b": "The second operand.", "*rest": "Extra values to add."}
    assert fill.returns == "The sum of all values."
    js = DocPlan("javascript", "function", "f", params=[Param("a"), Param("b")], returns=True)
    fill = harvest_sections(" the left side\n * @param b - the right side\n * @returns the total\n */", js)
    assert fill.params == {"a": "The left side.", "b": "The right side."}
    assert fill.returns == "The total."
    raising = DocPlan("python", "function", "f", params=[Param("a")], raises=["ValueError", "KeyError"])
    fill = harvest_sections(" The key.\n\n    Raises:\n        ValueError: If a is negative.\n        TypeError: never.\n", raising)
    assert fill.raises == {"ValueError": "If a is negative."}
    numpy = DocPlan("python", "function", "f", params=[Param("a", "int"), Param("b")], style="numpy")
    fill = harvest_sections(" The first.\n    b : str\n        The second.\n\n    Returns\n    -------\n", numpy)
    assert fill.params == {"a": "The first.", "b": "The second."}
    sphinx = DocPlan("python", "function", "f", params=[Param("a"), Param("b")], returns=True, style="sphinx")
    fill = harvest_sections(" The first.\n    :param b: The second.\n    :returns: The sum.\n", sphinx)
    assert fill.params == {"a": "The first.", "b": "The second."} and fill.returns == "The sum."
    junk = harvest_sections(" a = 1; b = 2\n        b (int): return b\n", plan)
    assert junk.params == {} and junk.returns == ""


@pytest.mark.parametrize("raw, expected", [
    ("This function will return a string.", "Return a string."),
    ("This function returns the mean.", "Return the mean."),
    ("This method applies the rule.", "Apply the rule."),
    ("Function to compute the hash.", "Compute the hash."),
    ("This function is a helper.", "This function is a helper."),
    ("Returns the total.", "Returns the total."),
    ("This is a helper function that returns the total.", "Return the total."),
    ("A function which checks the input.", "Check the input."),
    ("The main function will start the server.", "Start the server."),
    ("The function name is long.", "The function name is long."),
], ids=["will", "third person", "ies", "function to", "not a verb", "no preamble", "is a helper that",
        "a function which", "adjective will", "not a preamble"])
def test_imperative(raw, expected):
    assert imperative(raw) == expected


def test_long_section_lines_wrap_to_the_project_line_length(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 60\n")
    text = "def f(a):\n    return a\n"
    (tmp_path / "m.py").write_text(text)
    doc = Document(path_to_uri(tmp_path / "m.py"), text, "python")
    info = docstring_target(doc, 5)
    fill = DocFill(summary="Do it.", params={"a": "A rather long description of the only parameter, "
                                                      "which goes on and on."})
    new = apply_insertions(text, [build_docstring_edit(doc, info, fill).insertion])
    assert ("        a: A rather long description of the only parameter,\n"
            "            which goes on and on.\n") in new
    assert max(len(line) for line in new.splitlines()) <= 60


@pytest.mark.parametrize("phrase, expected", [
    ("A small inventory module: the sample file.", True),
    ("This is a small inventory module: the sample file that.", True),
    ("A small inventory.", False),  # too short to call it a copy
    ("One stock keeping unit with a price.", False),
], ids=["copied", "copied with a preamble", "short", "new"])
def test_copied_from(phrase, expected):
    context = '"""A small inventory module: the sample file that make demo completes in."""\nimport csv\n'
    assert copied_from(phrase, context) is expected


def test_newline_detection():
    assert newline_of("a\r\nb\r\n", 0) == "\r\n"
    assert newline_of("a\nb", 3) == "\n"
    assert newline_of("single line", 0) == "\n"


@pytest.mark.parametrize("style, tail", [
    ("google", '"""Sum.\n\n    Args:\n        a (int):'),
    ("numpy", '"""Sum.\n\n    Parameters\n    ----------\n    a : int\n        '),
    ("sphinx", '"""Sum.\n\n    :param a:'),
], ids=["google", "numpy", "sphinx"])
def test_sections_prompt_opens_the_first_parameter(style, tail):
    plan = DocPlan("python", "function", "f", params=[Param("a", "int")], style=style)
    assert sections_prompt('def f(a: int):\n    """', plan, "Sum.", "    ").endswith(tail)


def test_prompt_shows_the_body_then_reopens_the_header():
    text = "import os\n\n\n@dec\ndef add(a, b):\n    return a + b\n"
    doc = make("python", text)
    prompt, static = docstring_prompt(doc, docstring_target(doc, text.index("def add") + 1))
    assert prompt.endswith('return a + b\n\n\n@dec\ndef add(a, b):\n    """')
    assert prompt.startswith("import os")
    assert 0 < static < len(prompt)


# -- the whole pipeline with an engine -----------------------------------------------------------


def run_pipeline(text: str, needle: str, completion: str, language: str = "python"):
    engine = FakeEngine(completion)
    executor = ThreadPoolExecutor(max_workers=1)
    try:
        doc = make(language, text)
        settings = GenerationSettings(engine=engine, executor=executor, timeout_s=5)
        result = asyncio.run(generate_docstring(doc, text.index(needle) + 1, settings))
    finally:
        executor.shutdown()
    return result, engine


def test_pipeline_uses_sane_model_text_and_runs_in_the_executor():
    seen_threads = []
    text = "def add(a: int, b: int) -> int:\n    return a + b\n"
    engine = FakeEngine("Add two integers.\n")
    original = engine.generate

    def generate(request, cancel=None):
        seen_threads.append(threading.current_thread().name)
        return original(request, cancel)

    engine.generate = generate
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine-test")
    settings = GenerationSettings(engine=engine, executor=executor, timeout_s=5)
    result = asyncio.run(generate_docstring(make("python", text), 5, settings))
    executor.shutdown()
    new = apply_insertions(text, [result.insertion])
    assert result.from_model
    assert '    """Add two integers.\n\n    Args:\n        a (int): Add two integers.\n' in new
    assert seen_threads and all(name.startswith("engine-test") for name in seen_threads)
    assert len(seen_threads) == 2  # summary, then the parameter descriptions


@pytest.mark.parametrize("completion", [
    "def add(a, b):\n", '"""\n', "\x00\x01\x02", "", "a" * 500, '" """ \'\'\' \\ \\n',
], ids=["code", "closes at once", "control chars", "empty", "long", "quotes and backslashes"])
def test_pipeline_never_breaks_the_file(completion):
    text = "def add(a, b):\n    return a + b\n"
    result, _ = run_pipeline(text, "def add", completion)
    new = apply_insertions(text, [result.insertion])
    assert syntax_error_count(new, "python") == 0
    assert enclosing_definition(make("python", new), 5).docstring is not None


def test_pipeline_messages():
    documented, _ = run_pipeline('def f():\n    """Doc."""\n', "def f", "x")
    assert documented == "f already has a docstring"
    nothing, engine = run_pipeline("x = 1\n", "x", "x")
    assert nothing == "no function, method or class at the cursor" and engine.calls == 0


def test_pipeline_without_engine_uses_the_template():
    text = "def add(a, b):\n    return a + b\n"
    result = asyncio.run(generate_docstring(make("python", text), 5, GenerationSettings(engine=None)))
    assert not result.from_model
    assert '"""TODO: summarize `add`.' in apply_insertions(text, [result.insertion])


def test_pipeline_timeout_falls_back_to_the_template():
    engine = FakeEngine("Add things up nicely " * 50, token_delay_s=0.05)
    executor = ThreadPoolExecutor(max_workers=1)
    text = "def add(a, b):\n    return a + b\n"
    settings = GenerationSettings(engine=engine, executor=executor, timeout_s=0.2)
    result = asyncio.run(generate_docstring(make("python", text), 5, settings))
    executor.shutdown()
    assert not result.from_model


# -- the real CTranslate2 engine, random weights: its output is noise, the edit must still hold --


@pytest.fixture(scope="module")
def random_engine(tiny_hf_model, tmp_path_factory):
    from repolsp.models.convert import import_model
    from repolsp.models.store import ModelStore
    from repolsp.server.engine.ct2 import CT2Engine

    entry = import_model(str(tiny_hf_model), ModelStore(tmp_path_factory.mktemp("store")), name="tiny",
                         quantization="float32")
    return CT2Engine(entry.ct2_dir, entry.hf_dir, threads=1, compute_type="float32")


NOISE_CASES = [
    ("python", ("class Point:\n    def __init__(self, x, y):\n        self.x = x\n\n    def norm(self, p: int = 2) -> float:\n"
               "        if p < 1:\n            raise ValueError(p)\n        return (self.x ** p) ** (1 / p)\n"), "def norm"),
    ("python", "def add(a, b):\n\treturn a + b\n", "def add"),
    ("javascript", "function total(items) {\n  return items.reduce((a, b) => a + b, 0);\n}\n", "total"),
    ("go", "package m\n\nfunc Total(xs []int) int {\n\treturn 0\n}\n", "Total"),
]


@pytest.mark.parametrize("language, text, needle", NOISE_CASES, ids=["python method", "python tabs", "js", "go"])
def test_real_engine_noise_never_breaks_the_file(random_engine, language, text, needle, tmp_path):
    from repolsp.server.testgen import generate_tests

    executor = ThreadPoolExecutor(max_workers=1)
    try:
        settings = GenerationSettings(engine=random_engine, executor=executor, timeout_s=30,
                                      summary_tokens=16, sections_tokens=24)
        doc = make(language, text)
        result = asyncio.run(generate_docstring(doc, text.index(needle) + 1, settings))
        new = apply_insertions(text, [result.insertion])
        assert syntax_error_count(new, language) == 0
        if language == "python":
            info = enclosing_definition(make(language, new), new.index(needle) + 4)
            assert info.docstring is not None
        if language == "python":
            root = tmp_path
            (root / "geo.py").write_text(text)
            doc = Document(path_to_uri(root / "geo.py"), text, "python")
            edit = asyncio.run(generate_tests(doc, text.index(needle) + 4, root, settings))
            assert syntax_error_count(edit.new_text, "python") == 0
            assert f"def test_{needle.split()[-1]}(" in edit.new_text
    finally:
        executor.shutdown()
