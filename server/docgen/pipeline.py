"""The whole pipeline: `generate_docstring` (document, offset -> DocstringEdit or None)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from repolsp.server.context.document import Document
from repolsp.server.context.symbols import (
    DefinitionInfo,
)
from repolsp.server.docgen.edits import Insertion, errors_after, tree_error_count
from repolsp.server.docgen.fill import DocFill
from repolsp.server.docgen.model import GenerationSettings, fill_from_model
from repolsp.server.docgen.plan import DocPlan, docstring_target, plan_docstring
from repolsp.server.docgen.render import docstring_insertion

log = logging.getLogger(__name__)




@dataclass
class DocstringEdit:
    """A ready docstring edit for one definition."""

    insertion: Insertion
    target: DefinitionInfo
    from_model: bool
    message: str = ""


def build_docstring_edit(doc: Document, info: DefinitionInfo, fill: DocFill,
                         plan: DocPlan | None = None) -> DocstringEdit | None:
    """Render, insert and re-parse: the edit, or None when even the template would break the file.

    A model-filled docstring that breaks parsing falls back to the TODO template.
    """
    plan = plan or plan_docstring(doc, info)
    errors_before = tree_error_count(doc.tree) if doc.tree is not None else 0
    for attempt in (fill, DocFill()):
        insertion = docstring_insertion(doc, info, plan, attempt)
        if insertion is None:
            return None
        if errors_after(doc, insertion) <= errors_before:
            return DocstringEdit(insertion, info, attempt.from_model)
        log.warning("docstring for %s would not parse; %s", info.name,
                    "using the template" if attempt is fill else "giving up")
    return None


async def generate_docstring(doc: Document, offset: int, settings: GenerationSettings,
                             cancel: threading.Event | None = None) -> DocstringEdit | str:
    """The docstring edit for the definition at ``offset``, or a message saying why there is none."""
    info = docstring_target(doc, offset)
    if info is None:
        return "no function, method or class at the cursor"
    if info.has_docstring:
        return f"{info.name} already has a docstring"
    plan = plan_docstring(doc, info)
    cancel = cancel or threading.Event()
    text_before = doc.text
    fill = await fill_from_model(doc, info, plan, settings, cancel)
    if doc.text != text_before:  # edited while the model ran: describe the current text again
        info = docstring_target(doc, offset)
        if info is None or info.has_docstring:
            return "the document changed; try again"
        plan = plan_docstring(doc, info)
    edit = build_docstring_edit(doc, info, fill, plan)
    if edit is None:
        return f"cannot insert a docstring into {info.name} without breaking the file"
    return edit
