"""Server configuration: one typed, defaulted dataclass tree.

The same tree is filled from CLI flags, `initializationOptions` and
`workspace/didChangeConfiguration` (camelCase on the wire). A bad value never crashes: the
field keeps its default and the problem is reported naming the field.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from repolsp.models.prompt import TEMPLATES

LOG_LEVELS = ("debug", "info", "warning", "error")
ENGINES = ("ct2", "fake", "openai")  # openai: a team's OpenAI-compatible server (engine/openai.py)
# Whether textDocument/completion also offers the model's suggestion; "auto": only to clients
# that cannot show it as inline (ghost) text, so no client shows it twice.
COMPLETION_ITEMS = ("auto", "always", "never")
SUPPORTED_LANGUAGES = (
    "python", "javascript", "javascriptreact", "typescript", "typescriptreact", "go", "rust",
    "java", "c", "cpp",
)


@dataclass
class MaxNewTokens:
    """Generation length limits, in model tokens."""

    single_line: int = 48
    multi_line: int = 64


@dataclass
class Config:
    """Everything a user can set."""

    model: str = ""  # "" = the store's default model
    engine: str = "ct2"
    max_new_tokens: MaxNewTokens = field(default_factory=MaxNewTokens)
    temperature: float = 0.0
    debounce_ms: int = 75
    context_budget_tokens: int = 512
    enabled_languages: list[str] = field(default_factory=lambda: ["*"])
    log_level: str = "info"
    log_file: str = ""
    threads: int = 0  # 0 = half the CPUs, 1 to 8 (engine.ct2.default_threads)
    request_timeout_ms: int = 10_000
    completion_items: str = "auto"  # one of COMPLETION_ITEMS
    # Prompts also show lines from the git history and similar lines of the repository
    # (server/context/history.py, line_retrieval.py); history_max_commits bounds what is read.
    history: bool = True
    history_max_commits: int = 400
    # Opt-in: after idle_train_after_s without edits or completions, run `lsp-train
    # --incremental` on the workspace (server/training.py IdleTrainer; $/progress, cancellable).
    train_when_idle: bool = False
    idle_train_after_s: int = 600
    # Single-line completions: repository lines that start with the typed head are scored by
    # the model against its own line and the best is served (server/rerank.py).
    rerank: bool = False
    # engine "openai": the server at `endpoint` completes prompts rendered with `fim_template`
    # ("" = the template the remote model's name implies); the only address the server contacts.
    endpoint: str = ""  # http://HOST:PORT/v1
    remote_model: str = ""  # the name the endpoint serves the model under
    fim_template: str = ""  # one of FIM_TEMPLATES
    api_key_env: str = ""  # environment variable holding the API key (never the key itself)
    fallback_to_local: bool = False  # the local model answers while the endpoint fails

    def language_enabled(self, language_id: str) -> bool:
        return "*" in self.enabled_languages or language_id in self.enabled_languages


_RANGES: dict[str, tuple[float, float]] = {
    "max_new_tokens.single_line": (1, 512),
    "max_new_tokens.multi_line": (1, 2048),
    "temperature": (0.0, 2.0),
    "debounce_ms": (0, 5000),
    "context_budget_tokens": (64, 32768),
    "threads": (0, 256),
    "request_timeout_ms": (100, 600_000),
    "history_max_commits": (1, 100_000),
    "idle_train_after_s": (30, 86_400),
}
FIM_TEMPLATES = ("", *TEMPLATES)
_CHOICES: dict[str, tuple[str, ...]] = {
    "log_level": LOG_LEVELS, "engine": ENGINES, "completion_items": COMPLETION_ITEMS,
    "fim_template": FIM_TEMPLATES,
}


def to_snake(name: str) -> str:
    """camelCase -> snake_case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def to_camel(name: str) -> str:
    """snake_case -> camelCase."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _coerce(path: str, hint: Any, value: Any) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ValueError("expected true or false")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ValueError(f"expected an integer, got {value!r}")
        value = int(value)
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {value!r}")
        value = float(value)
    elif hint is str:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
    elif getattr(hint, "__origin__", None) is list and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise ValueError(f"expected a list of strings, got {value!r}")
    if path in _RANGES:
        low, high = _RANGES[path]
        if not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g}, got {value!r}")
    if path in _CHOICES:
        value = value.lower()
        if value not in _CHOICES[path]:
            raise ValueError(f"must be one of {', '.join(c or repr(c) for c in _CHOICES[path])}, got {value!r}")
    if path == "endpoint" and value and not re.fullmatch(r"https?://[^\s/]+\S*", value):
        raise ValueError(f"expected http://HOST:PORT/v1, got {value!r}")
    return value


def _apply(target: Any, data: dict, prefix: str, errors: list[str]) -> None:
    hints = get_type_hints(type(target))
    names = {f.name for f in dataclasses.fields(target)}
    for key, value in data.items():
        name = to_snake(key) if isinstance(key, str) else str(key)
        path = f"{prefix}{name}"
        wire = ".".join(to_camel(p) for p in path.split("."))
        if name not in names:
            errors.append(f"unknown setting {wire!r} ignored")
            continue
        hint = hints[name]
        current = getattr(target, name)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                errors.append(f"setting {wire!r}: expected an object, got {value!r}")
                continue
            _apply(current, value, path + ".", errors)
            continue
        try:
            setattr(target, name, _coerce(path, hint, value))
        except ValueError as exc:
            errors.append(f"setting {wire!r}: {exc}; using the default {current!r}")


def parse_config(data: Any, base: Config | None = None) -> tuple[Config, list[str]]:
    """A new Config from wire data (camelCase or snake_case keys) over `base`.

    Returns the config and a list of human-readable problems (empty when all is well).
    """
    config = dataclasses.replace(base) if base is not None else Config()
    if base is not None:
        config.max_new_tokens = dataclasses.replace(base.max_new_tokens)
        config.enabled_languages = list(base.enabled_languages)
    errors: list[str] = []
    if data is None:
        return config, errors
    if not isinstance(data, dict):
        return config, [f"settings must be an object, got {type(data).__name__}; using defaults"]
    _apply(config, data, "", errors)
    return config, errors


def config_to_wire(config: Config) -> dict:
    """The config as camelCase JSON (for `repolsp.status`)."""

    def convert(obj: Any) -> Any:
        if dataclasses.is_dataclass(obj):
            return {to_camel(f.name): convert(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        return obj

    return convert(config)
