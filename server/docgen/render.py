"""DocPlan + DocFill -> the docstring or doc comment text and the insertion that places it."""

from __future__ import annotations

import re
import textwrap

from repolsp.server.context.document import Document
from repolsp.server.context.symbols import (
    DefinitionInfo,
)
from repolsp.server.docgen.edits import Insertion, indent_unit, newline_of
from repolsp.server.docgen.fill import DocFill
from repolsp.server.docgen.plan import DocPlan, Param

TODO = "TODO"




def _todo(what: str) -> str:
    return f"{TODO}: {what}"


def _param_desc(plan: DocPlan, fill: DocFill, param: Param) -> str:
    text = fill.params.get(param.name) or _todo("describe.")
    if param.default is not None and "default" not in text.lower():
        text += f" Defaults to {param.default}."
    return text


def _raise_desc(fill: DocFill, name: str) -> str:
    return (fill.raises.get(name) or _todo("say when.")).replace("*/", "* /")


def _summary(plan: DocPlan, fill: DocFill) -> str:
    if fill.summary:
        return fill.summary
    if plan.language == "go":
        return f"{plan.name} {TODO}: describe what it does."
    return _todo(f"summarize `{plan.name}`.") if plan.language == "python" else _todo(
        f"summarize {plan.name}.")


def python_docstring_lines(plan: DocPlan, fill: DocFill) -> list[str]:
    """Docstring lines (without indentation or quotes) in the plan's style."""
    lines = [_summary(plan, fill)]
    params = plan.params
    returns = plan.returns or plan.yields
    ret_word = "Yields" if plan.yields else "Returns"
    ret_desc = fill.returns or _todo("describe the result.")
    raise_desc = {name: fill.raises.get(name) or _todo("say when.") for name in plan.raises}
    is_class = plan.kind == "class"
    if plan.style == "sphinx":
        tag, type_tag = (":ivar", ":vartype") if is_class else (":param", ":type")
        body = [f"{tag} {p.name.lstrip('*')}: {_param_desc(plan, fill, p)}" for p in params]
        body += [f"{type_tag} {p.name.lstrip('*')}: {p.type}" for p in params if p.type]
        if returns:
            body.append(f":{'yield' if plan.yields else 'returns'}: {ret_desc}")
            if plan.return_type:
                body.append(f":rtype: {plan.return_type}")
        body += [f":raises {name}: {desc}" for name, desc in raise_desc.items()]
        return lines + ([""] + body if body else [])
    if plan.style == "numpy":
        sections: list[str] = []
        if params:
            sections += ["", "Attributes", "----------"] if is_class else ["", "Parameters", "----------"]
            for p in params:
                sections += [f"{p.name} : {p.type}" if p.type else p.name, f"    {_param_desc(plan, fill, p)}"]
        if returns:
            sections += ["", ret_word, "-" * len(ret_word), plan.return_type or "result", f"    {ret_desc}"]
        if plan.raises:
            sections += ["", "Raises", "------"]
            for name, desc in raise_desc.items():
                sections += [name, f"    {desc}"]
        return lines + sections
    sections = []
    if params:
        sections += ["", "Attributes:" if is_class else "Args:"]
        sections += [f"    {p.name} ({p.type}): {_param_desc(plan, fill, p)}" if p.type and not p.name.startswith("*")
                     else f"    {p.name}: {_param_desc(plan, fill, p)}" for p in params]
    if returns:
        sections += ["", f"{ret_word}:", f"    {plan.return_type}: {ret_desc}" if plan.return_type else f"    {ret_desc}"]
    if plan.raises:
        sections += ["", "Raises:"] + [f"    {name}: {desc}" for name, desc in raise_desc.items()]
    return lines + sections


def render_python_docstring(plan: DocPlan, fill: DocFill, indent: str, newline: str = "\n") -> str:
    """The docstring literal: first line unindented (it follows existing indentation), later lines
    indented with ``indent``; no trailing newline."""
    lines = [_safe_docstring_text(line) for line in python_docstring_lines(plan, fill)]
    lines = lines[:1] + [wrapped for line in lines[1:]
                         for wrapped in wrap_section_line(line, plan.line_length - len(indent.expandtabs(4)))]
    if indent.endswith("\t"):  # nested section lines follow the file's tab indentation
        lines = [re.sub(r"^( {4})+", lambda m: "\t" * (len(m.group(0)) // 4), line) for line in lines]
    prefix = "r" if any("\\" in line for line in lines) else ""
    if len(lines) == 1:
        return f'{prefix}"""{lines[0]}"""'
    body = newline.join((indent + line) if line else "" for line in lines[1:])
    return f'{prefix}"""{lines[0]}{newline}{body}{newline}{indent}"""'


def wrap_section_line(line: str, width: int) -> list[str]:
    """A long ``name (type): description`` line wrapped Google-style: continuation lines are
    indented four more spaces than the line itself."""
    if len(line) <= width or width < 40:
        return [line]
    lead = line[: len(line) - len(line.lstrip())]
    return textwrap.wrap(line.strip(), width=width, initial_indent=lead, subsequent_indent=lead + "    ",
                         break_long_words=False, break_on_hyphens=False) or [line]


def _safe_docstring_text(line: str) -> str:
    line = line.replace('"""', "'''").rstrip()
    return line + "." if line.endswith('"') else line


def comment_lines(plan: DocPlan, fill: DocFill) -> list[str]:
    """A doc comment (JSDoc, Javadoc, Doxygen, ///, //) as full lines without indentation."""
    lang = plan.language
    summary = _summary(plan, fill).replace("*/", "* /")
    ret_desc = (fill.returns or _todo("describe the result.")).replace("*/", "* /")
    if lang == "go":
        return [f"// {summary}"]
    if lang == "rust":
        lines = [f"/// {summary}"]
        if plan.return_type and plan.return_type.startswith(("Result", "io::Result", "anyhow::Result")):
            lines += ["///", "/// # Errors", "///", f"/// {_todo('describe when an error is returned.')}"]
        if plan.panics:
            lines += ["///", "/// # Panics", "///", f"/// {_todo('describe when it panics.')}"]
        return lines
    tags: list[str] = []
    descs = {p.name: _param_desc(plan, fill, p).replace("*/", "* /") for p in plan.params}
    if lang in ("javascript", "typescript", "tsx"):
        tags += [f"@param {name} - {desc}" for name, desc in descs.items()]
        if plan.returns:
            tags.append(f"@returns {ret_desc}")
        tags += [f"@throws {{{name}}} {_raise_desc(fill, name)}" for name in plan.raises]
    elif lang == "java":
        tags += [f"@param {name} {desc}" for name, desc in descs.items()]
        if plan.returns:
            tags.append(f"@return {ret_desc}")
        tags += [f"@throws {name} {_raise_desc(fill, name)}" for name in plan.raises]
    else:  # c, cpp: Doxygen
        tags += [f"@param {name} {desc}" for name, desc in descs.items()]
        if plan.returns:
            tags.append(f"@return {ret_desc}")
        tags += [f"@throws {name} {_raise_desc(fill, name)}" for name in plan.raises]
        summary = f"@brief {summary}"
    lines = ["/**", f" * {summary}"]
    if tags:
        lines.append(" *")
        lines += [f" * {tag}" for tag in tags]
    return lines + [" */"]


def header_colon(doc: Document, info: DefinitionInfo) -> int:
    """Offset just after the ``:`` that ends a Python header (comments may hold colons too)."""
    node = info.node
    for child in node.children if node is not None else []:
        if child.type == ":":
            return doc.offset_of_byte(child.end_byte)
    return doc.text.rfind(":", info.header_start, info.body_start or info.end) + 1


def docstring_insertion(doc: Document, info: DefinitionInfo, plan: DocPlan, fill: DocFill) -> Insertion | None:
    """The edit that adds the rendered docstring to ``info`` in ``doc`` (None if it cannot)."""
    text = doc.text
    newline = newline_of(text, info.start)
    if doc.language == "python":
        if info.body_start is None:
            return None
        body_start = info.body_start
        line_start = text.rfind("\n", 0, body_start) + 1
        between = text[line_start:body_start]
        if between.strip():  # `def f(): return 1`: the body shares the header's line
            indent = info.indent + indent_unit(text)
            colon = header_colon(doc, info)
            literal = render_python_docstring(plan, fill, indent, newline)
            body = info.node.child_by_field_name("body") if info.node is not None else None
            if body is not None and body.named_child_count == 0:  # `def f():` with no body yet
                return Insertion(colon, colon, f"{newline}{indent}{literal}")
            return Insertion(colon, body_start, f"{newline}{indent}{literal}{newline}{indent}")
        # Comment lines opening the body go below the docstring: it must come first to read well.
        colon_line_end = text.find("\n", header_colon(doc, info))
        for match in re.finditer(r"^([ \t]*)#", text[colon_line_end + 1:line_start], flags=re.MULTILINE):
            if match.group(1) == between:
                body_start = line_start = colon_line_end + 1 + match.end(1)
                break
        indent = between  # the body's own indentation (tabs or spaces, as written)
        literal = render_python_docstring(plan, fill, indent, newline)
        # PEP 257: a class docstring is set off from the first method by a blank line.
        blank = newline if info.kind == "class" and re.match(r"(@|def |async def |class )", text[body_start:]) else ""
        return Insertion(body_start, body_start, f"{literal}{newline}{blank}{indent}")
    lines = comment_lines(plan, fill)
    line_start = text.rfind("\n", 0, info.start) + 1
    before = text[line_start:info.start]
    indent = info.indent
    block = newline.join(indent + line for line in lines)
    if before.strip():  # something else precedes the definition on its line
        return Insertion(info.start, info.start, f"{block.lstrip()}{newline}{indent}")
    return Insertion(line_start, line_start, block + newline)
