"""repolsp.models: the model store, default-model pull, HF/GGUF -> CTranslate2 conversion and
vocabulary trimming, prompt templates (`prompt`) and what a prompt is made of (`prompt_context`).

Imports nothing of `repolsp.server` or `repolsp.trainer` (tests/unit/test_import_graph.py).
"""
