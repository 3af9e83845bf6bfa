"""Which engine serves (`engine` setting): the fake, the store's model in CTranslate2, or the
`openai` engine with, optionally, the local model behind it. Called on the server's load thread."""

from __future__ import annotations

import os
from typing import NamedTuple

from lsprotocol import types
from repolsp.models.prompt import LEFT_TO_RIGHT, PromptTemplate, template_for
from repolsp.server import progress
from repolsp.server.config import Config


class Loaded(NamedTuple):
    """A ready engine, its model's name, prompt template and prompt cap, and the load's progress."""

    engine: object
    name: str
    template: PromptTemplate
    max_prompt_tokens: int | None
    work: progress.WorkDone


def engine_settings(config: Config) -> tuple:
    """The settings that choose the engine: a change loads it again."""
    if config.engine != "openai":
        return config.model, config.engine
    return (config.model, config.engine, config.endpoint, config.remote_model, config.fim_template,
            config.api_key_env, config.fallback_to_local, config.request_timeout_ms)


def load_engine(server) -> Loaded:
    """The engine `server.config` asks for (raises with a one-line reason when it cannot load)."""
    if server.config.engine == "fake":
        from repolsp.server.engine.fake import FakeEngine

        completion = os.environ.get("REPOLSP_FAKE_COMPLETION", "return 42\n")
        delay_s = float(os.environ.get("REPOLSP_FAKE_DELAY_S", "0"))
        return Loaded(FakeEngine(completion, delay_s), "fake", LEFT_TO_RIGHT, None, progress.WorkDone(server, None))
    if server.config.engine == "openai":
        return _remote(server)
    return _local(server)


def _local(server) -> Loaded:
    """The store's model in CTranslate2."""
    from repolsp.models.pull import DEFAULT_MODEL
    from repolsp.models.store import ModelStore
    from repolsp.server.engine.ct2 import CT2Engine

    store = ModelStore()
    name = server.config.model or store.default_name() or DEFAULT_MODEL
    work = progress.begin(server, f"repolsp: loading {name}", percentage=0)
    try:
        entry = store.get(name)
        # Built on the engine thread itself: a CTranslate2 generator created on a
        # thread that then exits runs several times slower (measured: 0.9 s -> 7 s).
        engine = server.completions.executor.submit(
            CT2Engine, entry.ct2_dir, entry.hf_dir, model_name=name, threads=server.config.threads,
        ).result()
    except BaseException:
        work.end("error")  # the caller never sees this progress: end it here
        raise
    return Loaded(engine, name, template_for(entry.manifest.fim_template), entry.manifest.max_prompt_tokens, work)


def _remote(server) -> Loaded:
    """The `openai` engine, with the local model behind it when `fallbackToLocal` is set."""
    from repolsp.server.engine.openai import engine_from_config

    local, fallback_template = None, (LEFT_TO_RIGHT, None)
    if server.config.fallback_to_local:
        try:
            local = _local(server)
            fallback_template = (local.template, local.max_prompt_tokens)
        except Exception as exc:  # noqa: BLE001 - the remote model serves without it
            server.show(f"no local fallback: cannot load the local model: {exc}", types.MessageType.Warning)
    engine = engine_from_config(server.config, local.engine if local else None, fallback_template,
                                on_problem=lambda message: server.show(message, types.MessageType.Warning))
    work = local.work if local else progress.WorkDone(server, None)
    return Loaded(engine, engine.model_name, engine.template, None, work)
