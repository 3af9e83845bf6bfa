"""Prompt context from tree-sitter: documents, completion decisions, windows and snippets.

Stages and modules:

- ``coords``: every conversion between LSP positions (utf-8/16/32), str offsets, UTF-8 bytes
  and tree-sitter points;
- ``document.Document``: text + language + incrementally re-parsed tree;
- ``should_complete``: none / single-line / multi-line and the block's indentation;
- ``build.build_context``: prefix/suffix windows and snippets in a written priority order,
  within a token budget; ``snippets``: the scope header, imports, definitions and retrieval;
- ``symbols``: definitions around a cursor (``enclosing_definition``) and in a file;
  ``describe``: one definition's ``DefinitionInfo``;
- ``index.WorkspaceIndex``: the workspace's chunks (BM25) and definitions, persisted; its
  pieces ``files`` (which files), ``chunks`` (what is kept of a file), ``bm25``;
- ``skip_rules``: vendored/build folders, generated and minified files (shared with the trainer);
- ``types``: the prompt data types (they live in ``repolsp.models.prompt_context``);
- ``evaluate``: measurements for ``bench/`` (definition recall, latency).

Part of ``repolsp.server``: may import ``repolsp.models``, never ``repolsp.trainer``.
"""
