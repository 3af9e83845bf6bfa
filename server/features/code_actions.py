"""Code actions "Generate docstring" and "Generate tests" (filled in by the docstring work)."""

from __future__ import annotations

from repolsp.server.server import RepolspServer


def register(server: RepolspServer) -> None:
    return None
