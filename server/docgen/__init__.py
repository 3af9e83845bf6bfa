"""Docstring generation: target -> plan -> prompt -> model -> clean -> render -> insertion edit.

Small base models (Gemma 3 270M, SmolLM2-135M) do not follow instructions, so the model only
continues code left to right: the definition's source, then the same header again with an opened
docstring (or doc comment) so that the model writes the summary line. Sections (Args/Returns/
Raises, @param/@return/@throws ...) are assembled here from the parsed signature; the model's text
only fills descriptions when it passes `clean_phrase`. Whatever the model says, the inserted text
is rendered here and the edited file is re-parsed: an edit that adds a syntax error is never
returned. Without a model every description is a clearly marked TODO.

All offsets are Python ``str`` offsets into ``Document.text``.

Modules, in pipeline order: ``plan`` (target -> DocPlan: parameters, returns, raises, style),
``model`` (prompt and model -> DocFill), ``fill`` (cleaning the model's text), ``render``
(DocPlan + DocFill -> docstring text and its insertion), ``edits`` (insertions and re-parsing),
``pipeline`` (``generate_docstring``). Every public name is re-exported here.
"""

from repolsp.server.docgen.edits import (
    Insertion,
    apply_insertions,
    errors_after,
    indent_unit,
    newline_of,
    syntax_error_count,
    tree_error_count,
)
from repolsp.server.docgen.fill import (
    DocFill,
    clean_phrase,
    harvest_sections,
    humanize,
    imperative,
    summary_from_model,
)
from repolsp.server.docgen.model import (
    MAX_CONTEXT_CHARS,
    MAX_SOURCE_CHARS,
    GenerationSettings,
    copied_from,
    docstring_prompt,
    fill_from_model,
    run_model,
    sections_prompt,
    summary_seed,
)
from repolsp.server.docgen.pipeline import (
    DocstringEdit,
    build_docstring_edit,
    generate_docstring,
)
from repolsp.server.docgen.plan import (
    DOCUMENTABLE_KINDS,
    DocPlan,
    Param,
    detect_python_style,
    docstring_target,
    plan_docstring,
    project_line_length,
    python_class_fields,
    python_params,
    raised_names,
)
from repolsp.server.docgen.render import (
    TODO,
    comment_lines,
    docstring_insertion,
    header_colon,
    python_docstring_lines,
    render_python_docstring,
    wrap_section_line,
)

__all__ = [
    "DOCUMENTABLE_KINDS",
    "MAX_CONTEXT_CHARS",
    "MAX_SOURCE_CHARS",
    "TODO",
    "DocFill",
    "DocPlan",
    "DocstringEdit",
    "GenerationSettings",
    "Insertion",
    "Param",
    "apply_insertions",
    "build_docstring_edit",
    "clean_phrase",
    "comment_lines",
    "copied_from",
    "detect_python_style",
    "docstring_insertion",
    "docstring_prompt",
    "docstring_target",
    "errors_after",
    "fill_from_model",
    "generate_docstring",
    "harvest_sections",
    "header_colon",
    "humanize",
    "imperative",
    "indent_unit",
    "newline_of",
    "plan_docstring",
    "project_line_length",
    "python_class_fields",
    "python_docstring_lines",
    "python_params",
    "raised_names",
    "render_python_docstring",
    "run_model",
    "sections_prompt",
    "summary_from_model",
    "summary_seed",
    "syntax_error_count",
    "tree_error_count",
    "wrap_section_line",
]
