"""Python skeleton tests: the call with placeholder arguments, marked as a skeleton (used only
when nothing can run)."""

from __future__ import annotations

import builtins
import re

from repolsp.server.context.document import Document
from repolsp.server.context.symbols import (
    DefinitionInfo,
)
from repolsp.server.testgen.edits import GeneratedTest, _unique_test_name
from repolsp.server.testgen.targets import _owner_name, _top_level_class


def _python_call(doc: Document, info: DefinitionInfo) -> tuple[list[str], str, list[str]]:
    """(setup lines, call expression, extra imports) for a skeleton call of ``info``: one
    placeholder per required parameter, keyword-only ones passed by name."""
    setup: list[str] = []
    args: list[str] = []
    keyword_only = False
    wanted = set(info.parameters)
    params_node = info.node.child_by_field_name("parameters") if info.node is not None else None
    for child in params_node.named_children if params_node is not None else []:
        if child.type in ("keyword_separator", "list_splat_pattern") or (
                child.type == "typed_parameter" and child.named_children
                and child.named_children[0].type == "list_splat_pattern"):
            keyword_only = True
            continue
        if child.type not in ("identifier", "typed_parameter"):
            continue  # defaults, **kwargs, `/`: not needed for a call
        name_node = child if child.type == "identifier" else child.named_children[0]
        if name_node.type != "identifier":
            continue
        name = doc.node_text(name_node)
        if name not in wanted:
            continue  # self / cls
        type_node = child.child_by_field_name("type")
        kind = doc.node_text(type_node) if type_node is not None else "value"
        setup.append(f"{name} = None  # TODO: a real {kind}")
        args.append(f"{name}={name}" if keyword_only else name)
    owner = _owner_name(info)
    callee = info.name
    decorators = " ".join(info.decorators)
    if owner:
        if "staticmethod" in decorators or "classmethod" in decorators:
            callee = f"{owner}.{info.name}"
        else:
            constructor, complete = constructor_call(doc, owner)
            note = "" if complete else "  # TODO: constructor arguments"
            setup.append(f"instance = {constructor}{note}")
            callee = f"instance.{info.name}"
    call = callee if "property" in decorators else f"{callee}({', '.join(args)})"
    imports: list[str] = []
    if info.is_async:
        call = f"asyncio.run({call})"
        imports.append("import asyncio")
    if info.has_yield:
        call = f"list({call})"
    return setup, call, imports


def python_skeleton(doc: Document, info: DefinitionInfo, test_name: str) -> GeneratedTest:
    """A pytest test that calls the function and asserts on the result, with TODOs."""
    setup, call, imports = _python_call(doc, info)
    lines = ["    # TODO: replace the placeholder arguments and the expected value."]
    lines += [f"    {line}" for line in setup]
    if info.has_return_value or info.has_yield or (info.return_type and info.return_type != "None"):
        lines += ["    expected = None  # TODO", f"    result = {call}", "    assert result == expected"]
    else:
        lines += [f"    result = {call}", "    assert result is None  # TODO: check the effect instead"]
    text = f"def {test_name}():\n" + "\n".join(lines)
    return GeneratedTest(test_name, text, imports)


def python_raises_test(doc: Document, info: DefinitionInfo, module: str, existing: str) -> GeneratedTest | None:
    """A second, skeleton test that the function raises its first raised exception (a builtin
    one, or a class of the same module, which is then imported); None when it raises nothing."""
    from repolsp.server.docgen import raised_names

    for name in raised_names(doc, info.node) if info.node is not None else []:
        builtin = getattr(builtins, name, None)
        if isinstance(builtin, type) and issubclass(builtin, BaseException):
            imports = ["import pytest"]
        elif "." not in name and _top_level_class(doc, name) is not None:
            imports = ["import pytest", f"from {module} import {name}"]
        else:
            continue
        snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
        test_name = _unique_test_name(existing, f"test_{info.name}_raises_{snake}")
        setup, call, _ = _python_call(doc, info)
        lines = [f"    # TODO: arguments that make {info.name} raise {name}."]
        lines += [f"    {line}" for line in setup]
        lines += [f"    with pytest.raises({name}):", f"        {call}"]
        return GeneratedTest(test_name, f"def {test_name}():\n" + "\n".join(lines), imports)
    return None


def _python_target_imports(info: DefinitionInfo, module: str) -> list[str]:
    return [f"from {module} import {_owner_name(info) or info.name}"]


def constructor_call(doc: Document, owner: str) -> tuple[str, bool]:
    """(``Owner(...)`` expression, complete): required ``__init__`` parameters (or dataclass
    fields without defaults) become ``name=None`` placeholders; complete when there are none."""
    node = _top_level_class(doc, owner)
    if node is None:
        return f"{owner}()", False
    body = node.child_by_field_name("body")
    required: list[str] = []
    init = None
    for child in body.named_children if body is not None else []:
        target = child.child_by_field_name("definition") if child.type == "decorated_definition" else child
        if target is not None and target.type == "function_definition" and \
                doc.node_text(target.child_by_field_name("name")) == "__init__":
            init = target
    if init is not None:
        params = init.child_by_field_name("parameters")
        for param in params.named_children[1:] if params is not None else []:
            if param.type == "identifier":
                required.append(doc.node_text(param))
            elif param.type == "typed_parameter" and param.named_children[0].type == "identifier":
                required.append(doc.node_text(param.named_children[0]))
    elif node.parent is not None and node.parent.type == "decorated_definition" and \
            any("dataclass" in doc.node_text(d) for d in node.parent.named_children if d.type == "decorator"):
        for child in body.named_children if body is not None else []:
            assignment = child.named_children[0] if child.type == "expression_statement" and child.named_children else None
            if assignment is not None and assignment.type == "assignment" and \
                    assignment.child_by_field_name("right") is None and \
                    assignment.child_by_field_name("type") is not None:
                left = assignment.child_by_field_name("left")
                if left is not None and left.type == "identifier":
                    required.append(doc.node_text(left))
    args = ", ".join(f"{name}=None" for name in required)
    return f"{owner}({args})", not required
