"""Test generation: target -> test file location -> arguments -> sandboxed runs -> assertions ->
the whole file run with pytest -> an edit that carries only passing tests.

The test goes where the project's conventions put it (`locations`); existing content is never
replaced (`edits`). For Python the code is run (`sandbox`, in a subprocess, never in the server):
arguments come from `arguments`, observed behaviour becomes assertions (`assertions`), and the
generated file is run with pytest before it is offered (`python_flow`). Other languages have one
module each (`js`, `go`, `rust`, `java`).
"""

from repolsp.server.testgen.edits import (
    AddTestEdit,
    GeneratedTest,
    _python_import_insertions,
    append_insertion,
    brace_file_edit,
    python_file_edit,
)
from repolsp.server.testgen.js import clean_js_test_body, js_exports
from repolsp.server.testgen.locations import (
    conventional_test_path,
    find_existing_test_file,
    python_module_path,
    python_test_path,
)
from repolsp.server.testgen.model_body import (
    body_seed,
    clean_python_test_body,
    drop_repeated_checks,
    expected_literal_kinds,
    python_test_code,
)
from repolsp.server.testgen.pipeline import generate_tests
from repolsp.server.testgen.prompt import python_test_prompt
from repolsp.server.testgen.skeleton import constructor_call, python_skeleton
from repolsp.server.testgen.targets import TEST_LANGUAGES, target_for_tests

__all__ = [
    "TEST_LANGUAGES", "AddTestEdit", "GeneratedTest", "_python_import_insertions", "append_insertion",
    "body_seed", "brace_file_edit", "clean_js_test_body", "clean_python_test_body", "constructor_call",
    "conventional_test_path", "drop_repeated_checks", "expected_literal_kinds", "find_existing_test_file",
    "generate_tests", "js_exports", "python_file_edit", "python_module_path", "python_skeleton",
    "python_test_code", "python_test_path", "python_test_prompt", "target_for_tests",
]
