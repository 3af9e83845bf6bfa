"""Trainer fixtures (defined in trainer_fixtures.py so tests can import its helpers by a unique name)."""

from trainer_fixtures import history_repo, tiny_home  # noqa: F401
