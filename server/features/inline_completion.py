"""textDocument/inlineCompletion: ghost-text suggestions."""

from __future__ import annotations

from lsprotocol import types
from repolsp.server.server import RepolspServer

ACCEPT_COMMAND = "repolsp.acceptCompletion"


def register(server: RepolspServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: RepolspServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        doc = ls.document_for_request(params.text_document.uri)
        if doc is None:
            return None
        offset = ls.checked_offset(doc, params.position)
        # An explicit request (Alt+\ in VS Code) skips the debounce.
        automatic = params.context.trigger_kind == types.InlineCompletionTriggerKind.Automatic
        suggestion = await ls.completions.complete(doc, offset, debounce=automatic)
        if suggestion is None:
            return types.InlineCompletionList(items=[])
        ls.record_shown(doc, suggestion)
        position = types.Position(*doc.position_at(offset))
        return types.InlineCompletionList(items=[types.InlineCompletionItem(
            insert_text=suggestion.text,
            range=types.Range(position, position),
            command=types.Command(title="Accept suggestion", command=ACCEPT_COMMAND, arguments=[suggestion.id]),
        )])
