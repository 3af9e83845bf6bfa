"""Languages: detection from LSP language ids and file extensions, tree-sitter grammars, and the
per-language node-type tables that the rest of the context package reads."""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
from dataclasses import dataclass

import tree_sitter

log = logging.getLogger(__name__)

TEXT = "text"
TREE_LANGUAGES = ("python", "javascript", "typescript", "tsx", "go", "rust", "java", "c", "cpp")

# LSP languageId values (VS Code / Neovim spellings) -> our language name.
_LANGUAGE_IDS = {
    "python": "python",
    "javascript": "javascript",
    "javascriptreact": "javascript",
    "js": "javascript",
    "jsx": "javascript",
    "typescript": "typescript",
    "ts": "typescript",
    "typescriptreact": "tsx",
    "tsx": "tsx",
    "go": "go",
    "golang": "go",
    "rust": "rust",
    "java": "java",
    "c": "c",
    "cpp": "cpp",
    "c++": "cpp",
    "cuda-cpp": "cpp",
    "objective-c": "c",
}

_EXTENSIONS = {
    ".py": "python",
    ".pyi": "python",
    ".pyw": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".c++": "cpp",
    ".hh": "cpp",
    ".hpp": "cpp",
    ".hxx": "cpp",
    ".ipp": "cpp",
    ".inl": "cpp",
    ".cu": "cpp",
}


def language_for(language_id: str | None = None, path: str | None = None) -> str:
    """Our language name for an LSP ``language_id`` and/or a file path; "text" when unknown.

    The language id wins when it names a supported language; otherwise the extension decides.
    """
    if language_id:
        found = _LANGUAGE_IDS.get(language_id.lower())
        if found:
            return found
    if path:
        name = path.rsplit("/", 1)[-1].rsplit("\\", 1)[-1].lower()
        dot = name.rfind(".")
        if dot >= 0:
            return _EXTENSIONS.get(name[dot:], TEXT)
    return TEXT


def source_extensions() -> frozenset[str]:
    """File extensions parsed with a tree-sitter grammar."""
    return frozenset(_EXTENSIONS)


@functools.cache
def ts_language(language: str) -> tree_sitter.Language | None:
    """The tree-sitter Language for ``language``, or None for "text" or a grammar that fails to load."""
    try:
        if language == "python":
            import tree_sitter_python as grammar

            return tree_sitter.Language(grammar.language())
        if language == "javascript":
            import tree_sitter_javascript as grammar

            return tree_sitter.Language(grammar.language())
        if language in ("typescript", "tsx"):
            import tree_sitter_typescript as grammar

            raw = grammar.language_tsx() if language == "tsx" else grammar.language_typescript()
            return tree_sitter.Language(raw)
        if language == "go":
            import tree_sitter_go as grammar

            return tree_sitter.Language(grammar.language())
        if language == "rust":
            import tree_sitter_rust as grammar

            return tree_sitter.Language(grammar.language())
        if language == "java":
            import tree_sitter_java as grammar

            return tree_sitter.Language(grammar.language())
        if language == "c":
            import tree_sitter_c as grammar

            return tree_sitter.Language(grammar.language())
        if language == "cpp":
            import tree_sitter_cpp as grammar

            return tree_sitter.Language(grammar.language())
    except Exception:  # a broken grammar wheel degrades to line-based context
        log.warning("tree-sitter grammar for %s failed to load", language, exc_info=True)
    return None


_parsers = threading.local()


def parser_for(language: str) -> tree_sitter.Parser | None:
    """A tree-sitter Parser for ``language`` owned by the calling thread (parsers are not
    thread-safe; the server parses on the protocol thread and the index on a worker)."""
    lang = ts_language(language)
    if lang is None:
        return None
    cache = getattr(_parsers, "by_language", None)
    if cache is None:
        cache = _parsers.by_language = {}
    parser = cache.get(language)
    if parser is None:
        parser = cache[language] = tree_sitter.Parser(lang)
    return parser


@dataclass(frozen=True)
class LanguageSpec:
    """Node types and surface syntax of one language, as the context code needs them."""

    name: str
    string_types: frozenset[str] = frozenset()
    comment_types: frozenset[str] = frozenset()
    # Nodes inside a string that hold code again (f-string / template interpolation).
    interpolation_types: frozenset[str] = frozenset()
    # Top-level statements that make up "the file's imports" (package clauses included).
    import_types: frozenset[str] = frozenset()
    # Definition node type -> kind ("function" | "class" | "struct" | "interface" | ...).
    definition_types: tuple[tuple[str, str], ...] = ()
    # Nodes that only wrap a definition (decorators, export, template<>): kept with it.
    wrapper_types: frozenset[str] = frozenset()
    # A line whose code ends with one of these opens an indented block.
    block_openers: tuple[str, ...] = ("{",)
    line_comment: str = "//"
    return_types: frozenset[str] = frozenset()
    raise_types: frozenset[str] = frozenset()
    yield_types: frozenset[str] = frozenset()
    # Nested scopes whose returns/raises do not belong to the enclosing definition.
    nested_function_types: frozenset[str] = frozenset()

    @functools.cached_property
    def definition_kinds(self) -> dict[str, str]:
        """Definition node type -> kind as a dict (computed once)."""
        return dict(self.definition_types)


_C_LIKE_STRINGS = frozenset({"string_literal", "char_literal", "system_lib_string", "raw_string_literal"})

SPECS: dict[str, LanguageSpec] = {
    "python": LanguageSpec(
        name="python",
        string_types=frozenset({"string"}),
        comment_types=frozenset({"comment"}),
        interpolation_types=frozenset({"interpolation"}),
        import_types=frozenset({"import_statement", "import_from_statement", "future_import_statement"}),
        definition_types=(("function_definition", "function"), ("class_definition", "class")),
        wrapper_types=frozenset({"decorated_definition"}),
        block_openers=(":",),
        line_comment="#",
        return_types=frozenset({"return_statement"}),
        raise_types=frozenset({"raise_statement"}),
        yield_types=frozenset({"yield"}),
        nested_function_types=frozenset({"function_definition", "class_definition", "lambda"}),
    ),
    "javascript": LanguageSpec(
        name="javascript",
        string_types=frozenset({"string", "template_string", "regex"}),
        comment_types=frozenset({"comment"}),
        interpolation_types=frozenset({"template_substitution"}),
        import_types=frozenset({"import_statement"}),
        definition_types=(
            ("function_declaration", "function"),
            ("generator_function_declaration", "function"),
            ("class_declaration", "class"),
            ("method_definition", "method"),
        ),
        wrapper_types=frozenset({"export_statement"}),
        block_openers=("{", "(", "[", "=>"),
        return_types=frozenset({"return_statement"}),
        raise_types=frozenset({"throw_statement"}),
        yield_types=frozenset({"yield_expression"}),
        nested_function_types=frozenset(
            {"function_declaration", "function_expression", "arrow_function", "class_declaration",
             "method_definition", "generator_function_declaration", "generator_function", "class"}
        ),
    ),
    "go": LanguageSpec(
        name="go",
        string_types=frozenset({"interpreted_string_literal", "raw_string_literal", "rune_literal"}),
        comment_types=frozenset({"comment"}),
        import_types=frozenset({"package_clause", "import_declaration"}),
        definition_types=(
            ("function_declaration", "function"),
            ("method_declaration", "method"),
            ("type_spec", "type"),
        ),
        wrapper_types=frozenset({"type_declaration"}),
        block_openers=("{", "(", "["),
        return_types=frozenset({"return_statement"}),
        raise_types=frozenset(),  # panic(...) is recognised by name in symbols.py
        nested_function_types=frozenset({"func_literal", "function_declaration", "method_declaration"}),
    ),
    "rust": LanguageSpec(
        name="rust",
        string_types=frozenset({"string_literal", "raw_string_literal", "char_literal"}),
        comment_types=frozenset({"line_comment", "block_comment"}),
        import_types=frozenset({"use_declaration", "extern_crate_declaration"}),
        definition_types=(
            ("function_item", "function"),
            ("function_signature_item", "function"),
            ("struct_item", "struct"),
            ("enum_item", "enum"),
            ("union_item", "struct"),
            ("trait_item", "trait"),
            ("impl_item", "impl"),
            ("mod_item", "module"),
        ),
        block_openers=("{", "(", "["),
        return_types=frozenset({"return_expression"}),
        raise_types=frozenset(),  # panic!/Err(...)? are recognised in symbols.py
        nested_function_types=frozenset({"closure_expression", "function_item"}),
    ),
    "java": LanguageSpec(
        name="java",
        string_types=frozenset({"string_literal", "character_literal", "text_block"}),
        comment_types=frozenset({"line_comment", "block_comment"}),
        import_types=frozenset({"package_declaration", "import_declaration"}),
        definition_types=(
            ("class_declaration", "class"),
            ("interface_declaration", "interface"),
            ("enum_declaration", "enum"),
            ("record_declaration", "class"),
            ("annotation_type_declaration", "interface"),
            ("method_declaration", "method"),
            ("constructor_declaration", "method"),
        ),
        block_openers=("{", "(", "["),
        return_types=frozenset({"return_statement"}),
        raise_types=frozenset({"throw_statement"}),
        nested_function_types=frozenset({"lambda_expression", "class_body", "method_declaration"}),
    ),
    "c": LanguageSpec(
        name="c",
        string_types=_C_LIKE_STRINGS | {"concatenated_string"},
        comment_types=frozenset({"comment"}),
        import_types=frozenset({"preproc_include"}),
        definition_types=(
            ("function_definition", "function"),
            ("struct_specifier", "struct"),
            ("union_specifier", "struct"),
            ("enum_specifier", "enum"),
        ),
        wrapper_types=frozenset({"type_definition"}),
        block_openers=("{", "(", "["),
        return_types=frozenset({"return_statement"}),
        nested_function_types=frozenset({"function_definition"}),
    ),
}

_ts = SPECS["javascript"]
SPECS["typescript"] = LanguageSpec(
    name="typescript",
    string_types=_ts.string_types,
    comment_types=_ts.comment_types,
    interpolation_types=_ts.interpolation_types,
    import_types=_ts.import_types | {"import_alias"},
    definition_types=_ts.definition_types
    + (
        ("abstract_class_declaration", "class"),
        ("interface_declaration", "interface"),
        ("type_alias_declaration", "type"),
        ("enum_declaration", "enum"),
        ("function_signature", "function"),
        ("abstract_method_signature", "method"),
        ("internal_module", "module"),
    ),
    wrapper_types=_ts.wrapper_types,
    block_openers=_ts.block_openers,
    return_types=_ts.return_types,
    raise_types=_ts.raise_types,
    yield_types=_ts.yield_types,
    nested_function_types=_ts.nested_function_types,
)
SPECS["tsx"] = dataclasses.replace(SPECS["typescript"], name="tsx")
_c = SPECS["c"]
SPECS["cpp"] = LanguageSpec(
    name="cpp",
    string_types=_c.string_types,
    comment_types=_c.comment_types,
    import_types=_c.import_types | {"using_declaration", "alias_declaration", "namespace_alias_definition"},
    definition_types=_c.definition_types
    + (("class_specifier", "class"), ("namespace_definition", "namespace")),
    wrapper_types=_c.wrapper_types | {"template_declaration"},
    block_openers=_c.block_openers,
    return_types=_c.return_types,
    raise_types=frozenset({"throw_statement", "throw_expression"}),
    nested_function_types=_c.nested_function_types | {"lambda_expression"},
)
SPECS[TEXT] = LanguageSpec(name=TEXT, block_openers=("{", ":", "(", "["), line_comment="#")


def spec_for(language: str) -> LanguageSpec:
    """The LanguageSpec of ``language`` (the plain-text spec for anything unknown)."""
    return SPECS.get(language, SPECS[TEXT])
