"""One module per LSP feature (jedi-language-server style): each handler fetches the document,
calls the pure stages elsewhere in `repolsp.server` and maps the result to lsprotocol types.

Part of `repolsp.server`: may import `repolsp.models`, never `repolsp.trainer`.
"""
