"""Configuration: one defaulted dataclass tree; bad values name the field and keep defaults."""

from __future__ import annotations

import pytest
from repolsp.server.config import Config, config_to_wire, parse_config


def test_defaults_and_camel_case():
    config, errors = parse_config({"maxNewTokens": {"singleLine": 10}, "debounceMs": 0,
                                   "logLevel": "DEBUG", "enabledLanguages": ["python"]})
    assert errors == []
    assert config.max_new_tokens.single_line == 10
    assert config.max_new_tokens.multi_line == Config().max_new_tokens.multi_line
    assert config.debounce_ms == 0 and config.log_level == "debug"
    assert config.language_enabled("python") and not config.language_enabled("go")


@pytest.mark.parametrize(
    "data, field",
    [
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": 9}, "temperature"),
        ({"debounceMs": -1}, "debounceMs"),
        ({"debounceMs": 1.5}, "debounceMs"),
        ({"maxNewTokens": {"multiLine": 0}}, "maxNewTokens.multiLine"),
        ({"maxNewTokens": 5}, "maxNewTokens"),
        ({"logLevel": "loud"}, "logLevel"),
        ({"enabledLanguages": "python"}, "enabledLanguages"),
        ({"engine": "gpu"}, "engine"),
        ({"noSuchThing": 1}, "noSuchThing"),
    ],
    ids=lambda v: str(v),
)
def test_bad_values_name_the_field_and_keep_defaults(data, field):
    config, errors = parse_config(data)
    assert len(errors) == 1 and repr(field) in errors[0]
    assert config_to_wire(config) == config_to_wire(Config())


def test_non_object_settings():
    config, errors = parse_config(["x"])
    assert errors and config == Config()


def test_parse_over_base_does_not_mutate_it():
    base = Config(model="smollm2-135m")
    config, _ = parse_config({"maxNewTokens": {"singleLine": 3}}, base)
    assert config.model == "smollm2-135m"
    assert base.max_new_tokens.single_line == Config().max_new_tokens.single_line
