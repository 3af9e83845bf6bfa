"""Prompt context from tree-sitter: documents, completion decisions, windows and snippets.

Stages and modules:

- ``coords``: every conversion between LSP positions (utf-8/16/32), str offsets, UTF-8 bytes
  and tree-sitter points;
- ``document.Document``: text + language + incrementally re-parsed tree;
- ``should_complete``: none / single-line / multi-line and the block's indentation;
- ``build.build_context``: prefix/suffix windows and snippets in a written priority order,
  within a token budget;
- ``symbols``: definitions around a cursor (``enclosing_definition``) and in a file;
- ``index.WorkspaceIndex``: the workspace's chunks (BM25) and definitions, persisted;
- ``evaluate``: measurements for ``bench/`` (definition recall, latency).
"""
