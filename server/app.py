"""Assemble the server: the RepolspServer object with every feature registered."""

from __future__ import annotations

from repolsp.server.config import Config
from repolsp.server.engine.base import Engine
from repolsp.server.features import code_actions, commands, completion, inline_completion, lifecycle
from repolsp.server.server import RepolspServer


def create_server(config: Config | None = None, engine: Engine | None = None) -> RepolspServer:
    """A fully registered server; pass `engine` to serve a ready engine (tests, demo)."""
    server = RepolspServer(config, engine)
    for feature in (lifecycle, inline_completion, completion, code_actions, commands):
        feature.register(server)
    return server
