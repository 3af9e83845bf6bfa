"""The opt-in idle run of `lsp-train --incremental` (server/training.py IdleTrainer)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from repolsp.server import model_info, training
from repolsp.server.config import Config, parse_config


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup(monkeypatch, tmp_path):
    started = []

    class FakeJob:
        def __init__(self, server, root, extra_args, title="", reload_after=True):
            self.args, self.title, self.running = extra_args, title, False
            self.reload_after = reload_after

        def start(self):
            self.running = True
            started.append(self)

    monkeypatch.setattr(training, "TrainingJob", FakeJob)
    tuned = {"value": True}
    monkeypatch.setattr(model_info, "served_model_facts", lambda name: {"tuned": tuned["value"]})
    server = SimpleNamespace(
        config=Config(train_when_idle=True, idle_train_after_s=600), documents={},
        completions=SimpleNamespace(metrics=SimpleNamespace(requests=0)), workspace_root=tmp_path,
        initialized_received=True, training=None, model_name="m-tuned")
    clock = Clock()
    return server, training.IdleTrainer(server, clock=clock), clock, started, tuned


def test_runs_once_per_idle_spell_after_the_idle_time(setup):
    server, idle, clock, started, _ = setup
    assert not idle.tick()
    clock.now = 599
    assert not idle.tick()
    clock.now = 601
    assert idle.tick() and started[0].args == ["--incremental", "-q"]
    assert "idle" in started[0].title and server.training is started[0]
    assert started[0].reload_after is False  # the store watcher reloads if the run switched
    started[0].running = False
    clock.now = 5000
    assert not idle.tick(), "one try per idle spell"
    server.completions.metrics.requests += 1  # the user is back
    assert not idle.tick()
    clock.now = 5000 + 601
    assert idle.tick() and len(started) == 2


@pytest.mark.parametrize("change, why", [
    (lambda s, t: setattr(s.config, "train_when_idle", False), "opt-in only"),
    (lambda s, t: setattr(s, "training", SimpleNamespace(running=True)), "a run is going on"),
    (lambda s, t: setattr(s, "workspace_root", None), "no workspace"),
    (lambda s, t: t.update(value=False), "the served model is not a tuned one"),
], ids=["off", "training", "no-workspace", "untuned"])
def test_does_not_run(setup, change, why):
    server, idle, clock, started, tuned = setup
    change(server, tuned)
    idle.tick()
    clock.now = 10_000
    assert not idle.tick(), why
    assert not started


def test_setting_is_camel_case_and_bounded():
    config, problems = parse_config({"trainWhenIdle": True, "idleTrainAfterS": 120})
    assert config.train_when_idle and config.idle_train_after_s == 120 and not problems
    _, problems = parse_config({"idleTrainAfterS": 1})
    assert problems and "idleTrainAfterS" in problems[0]
