"""repolsp.trainer: `lsp-train` read top to bottom: mine (`gitlog`, `filters`, `mine`,
`mine_file`, `examples`, `prompts`) -> train (`tokenizing`, `batches`, `adapters`, `loss`, `loop`,
`train`) -> export (`export`) -> report (`evaluate`, `report`); the `lsp-eval` evaluator (`eval`).

May import `repolsp.models` and `repolsp.server`; nothing imports it. Torch is imported inside
functions only, so `lsp-train --help` and the server stay free of it.
"""
