"""textDocument/completion: the model's suggestion as one item, for clients without inline.

`completionItems` decides: `auto` offers it only to clients that do not advertise
`textDocument.inlineCompletion` (they already show it as ghost text; twice is noise),
`always` to every client, `never` to none.
"""

from __future__ import annotations

from lsprotocol import types
from repolsp.server.features.inline_completion import ACCEPT_COMMAND
from repolsp.server.server import RepolspServer


def offers_items(setting: str, client_has_inline: bool) -> bool:
    """Whether the completion list carries the model's suggestion under `completionItems`."""
    if setting == "auto":
        return not client_has_inline
    return setting == "always"


def client_has_inline(ls: RepolspServer) -> bool:
    """The client advertised textDocument.inlineCompletion at initialize."""
    text_document = ls.client_capabilities.text_document
    return text_document is not None and text_document.inline_completion is not None


def register(server: RepolspServer) -> None:
    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=[".", "(", " "], resolve_provider=False),
    )
    async def completion(ls: RepolspServer, params: types.CompletionParams) -> types.CompletionList:
        empty = types.CompletionList(is_incomplete=True, items=[])
        if not offers_items(ls.config.completion_items, client_has_inline(ls)):
            # Complete: re-asking while the user types would only bring more empty lists.
            return types.CompletionList(is_incomplete=False, items=[])
        doc = ls.document_for_request(params.text_document.uri)
        if doc is None:
            return empty
        offset = ls.checked_offset(doc, params.position)
        suggestion = await ls.completions.complete(doc, offset, debounce=False)
        if suggestion is None:
            return empty
        ls.record_shown(doc, suggestion)
        position = types.Position(*doc.position_at(offset))
        # Clients filter items by the word before the cursor: replace that word, so the
        # item's filter text (word + completion) matches what the user typed.
        line_start = doc.text.rfind("\n", 0, offset) + 1
        word_start = offset
        while word_start > line_start and (doc.text[word_start - 1].isalnum() or doc.text[word_start - 1] == "_"):
            word_start -= 1
        word = doc.text[word_start:offset]
        start = types.Position(*doc.position_at(word_start))
        label = (word + suggestion.text).strip().split("\n", 1)[0][:80] or suggestion.text[:80]
        item = types.CompletionItem(
            label=label,
            kind=types.CompletionItemKind.Snippet,
            detail=f"repolsp · {ls.model_name}",
            documentation=word + suggestion.text,
            filter_text=word + suggestion.text,
            # Sort after language-server items of the same prefix: ours is a long guess.
            sort_text="~repolsp",
            insert_text_format=types.InsertTextFormat.PlainText,
            text_edit=types.TextEdit(types.Range(start, position), word + suggestion.text),
            command=types.Command(title="Accept suggestion", command=ACCEPT_COMMAND, arguments=[suggestion.id]),
        )
        return types.CompletionList(is_incomplete=True, items=[item])
