"""repolsp.server: the pygls LSP server, one module per feature (`features`), the completion
stages (`prepare.prepare_prompt`, `completion`, `postprocess`), tree-sitter context (`context`),
engines (`engine`), docstring (`docgen`) and test generation (`testgen`).

May import `repolsp.models`; never `repolsp.trainer` or torch (it runs `lsp-train` as a subprocess).
"""
