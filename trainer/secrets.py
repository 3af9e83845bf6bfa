"""Likely-secret detection: an example that contains one is dropped and counted, never trained on.

Patterns favour recall over precision (a dropped example costs little, a leaked key costs a lot),
but skip obvious placeholders (`password = ""`, `token = os.environ[...]`, `"<your-key>"`).
"""

from __future__ import annotations

import math
import re
from collections import Counter

# (kind, pattern) — each is matched against the whole text of an example.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("private-key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
    ("aws-access-key", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b")),
    ("aws-secret-key", re.compile(
        r"(?i)aws.{0,20}?(?:secret|key).{0,20}?['\"][A-Za-z0-9/+=]{40}['\"]")),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{40,255})\b")),
    ("gitlab-token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b")),
    ("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b")),
    ("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("stripe-key", re.compile(r"\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,}\b")),
    ("openai-key", re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{32,}\b")),
    ("huggingface-token", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b")),
    ("url-credentials", re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/:@'\"]+:[^\s/@'\"]{3,}@[^\s/'\"]+")),
)

# `password = "hunter2"`, `"api_key": "..."`, `SECRET_TOKEN=abc123` (also .env lines).
_ASSIGNMENT = re.compile(
    r"""(?ix)
    (?P<name>[A-Za-z0-9_.-]*(?:passw(?:or)?d|passwd|pwd|secret|token|api[_-]?key|apikey|
        access[_-]?key|auth[_-]?key|private[_-]?key|client[_-]?secret|credentials?)[A-Za-z0-9_.-]*)
    ['"]?\s*(?::=|=|:)\s*
    (?P<quote>['"]?)(?P<value>[^'"\s,;)\]}]{6,})(?P=quote)
    """
)
_PLACEHOLDER = re.compile(
    r"(?i)^(?:x+|\*+|\.+|<[^>]*>|\{[^}]*\}|\$\{?[A-Z_]+\}?|changeme|change_me|password|secret|"
    r"your[_-].*|example.*|dummy.*|test.*|fake.*|none|null|true|false|redacted|placeholder.*)$"
)
# Values that are code, not literals: `token = request.headers[...]`, `password=args.password`.
_CODE_VALUE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:[.(\[]|$)")

# `TOKEN_HEADER = "Authorization"`, `PASSWORD_FIELD = "pwd"`: names *about* secrets.
_NOT_SECRET_NAME_ENDINGS = ("_name", "_field", "_header", "_url", "_path", "_file", "_env",
                            "_length", "_len", "_type", "_id_key")

_ENV_FILE = re.compile(r"(?:^|/)\.env(?:\.[A-Za-z0-9_-]+)?$")


def is_env_file(path: str) -> bool:
    """True for `.env`, `.env.local`, ... (their contents are secrets by convention)."""
    return bool(_ENV_FILE.search(path)) and not path.endswith((".example", ".sample", ".template"))


def _entropy_bits_per_char(value: str) -> float:
    counts = Counter(value)
    return -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values())


def _assignment_is_secret(name: str, quote: str, value: str) -> bool:
    if _PLACEHOLDER.match(value):
        return False
    # An identifier or call (`password=args.password`) is code, not a literal; but an .env-style
    # `DB_PASSWORD=s3cr3tP4ss` is a literal: letters mixed with digits, no member access.
    looks_like_code = any(c in value for c in ".([") or sum(c.isdigit() for c in value) < 2
    if not quote and _CODE_VALUE.match(value) and looks_like_code:
        return False
    if name.lower().endswith(_NOT_SECRET_NAME_ENDINGS):
        return False
    # A quoted literal of 6+ characters assigned to a secret-named variable: keep it out unless
    # it is obviously prose (spaces were excluded by the pattern) or a trivially low-entropy run.
    return _entropy_bits_per_char(value) >= 2.0


def find_secrets(text: str) -> list[str]:
    """Kinds of likely secrets in `text` (empty when none), e.g. ["private-key"]."""
    found = [kind for kind, pattern in _PATTERNS if pattern.search(text)]
    for match in _ASSIGNMENT.finditer(text):
        if _assignment_is_secret(match.group("name"), match.group("quote"), match.group("value")):
            found.append("password-assignment")
            break
    return found


def contains_secret(*texts: str) -> str | None:
    """The first secret kind found in any of `texts`, or None."""
    for text in texts:
        kinds = find_secrets(text)
        if kinds:
            return kinds[0]
    return None
