"""The engine state is an enum whose values are repolsp.status's wire strings."""

from __future__ import annotations

import json

import pytest
from repolsp.server.engine.fake import FakeEngine
from repolsp.server.server import EngineState, RepolspServer


def test_the_wire_values_stay_the_same_strings():
    assert [state.value for state in EngineState] == ["loading", "ready", "error"]


@pytest.mark.parametrize("engine,expected", [(FakeEngine(), "ready"), (None, "loading")],
                         ids=["with-engine", "without-engine"])
def test_status_sends_the_state_as_a_plain_string(engine, expected):
    server = RepolspServer(engine=engine)
    try:
        state = server.status()["state"]
        assert type(state) is str and state == expected
        assert json.loads(json.dumps({"state": state})) == {"state": expected}
        assert server.completions._engine() is engine  # only a ready engine is used
    finally:
        server.completions.shutdown()
