"""A model loaded from the store with what the server would pair it with (`LoadedModel`), and one answer."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from repolsp.models.errors import ModelError
from repolsp.models.prompt import PromptTemplate, template_for
from repolsp.models.store import ModelStore
from repolsp.server.engine.base import Engine
from repolsp.server.engine.ct2 import CT2Engine, ModelLoadError
from repolsp.trainer.eval.cache import file_sha256
from repolsp.trainer.eval.holes import EvalError


@dataclass
class LoadedModel:
    """An engine plus what the server would pair it with, and facts for the log."""

    name: str
    engine: Engine
    template: PromptTemplate
    max_prompt_tokens: int | None
    hash: str
    info: dict = field(default_factory=dict)


def load_store_model(name: str, home: Path | None = None, threads: int = 0,
                     cache_dir: Path | None = None) -> LoadedModel:
    """A registered model from the model store, loaded with CTranslate2 as the server does."""

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    store = ModelStore(home)
    try:
        entry = store.get(name)
        engine = CT2Engine(entry.ct2_dir, entry.hf_dir, model_name=name, threads=threads)
    except (ModelError, ModelLoadError) as exc:
        raise EvalError(str(exc)) from exc
    import ctranslate2

    memo = (cache_dir / "model-hashes.json") if cache_dir else None
    model_hash = file_sha256(entry.ct2_dir / "model.bin", memo)
    compute_type = getattr(engine.generator, "compute_type", engine.compute_type)
    return LoadedModel(
        name, engine, template_for(entry.manifest.fim_template), entry.manifest.max_prompt_tokens,
        model_hash,
        {"ctranslate2": ctranslate2.__version__, "compute_type": compute_type,
         "quantization": entry.manifest.quantization, "source": entry.manifest.source,
         "base_model": entry.manifest.base_model, "threads": engine.threads,
         "template": entry.manifest.fim_template or "left-to-right",
         "max_prompt_tokens": entry.manifest.max_prompt_tokens},
    )


@dataclass
class Completion:
    """One model's answer to one item, with timings (ms)."""

    text: str
    mode: str
    raw: str = ""
    prepare_ms: float = 0.0
    engine_ms: float = 0.0
    first_token_ms: float = 0.0
    prompt_tokens: int = 0
    new_tokens: int = 0
    cached: bool = False
    extra: dict = field(default_factory=dict)  # task-specific scores found while generating

    @property
    def latency_ms(self) -> float:
        return self.prepare_ms + self.engine_ms
