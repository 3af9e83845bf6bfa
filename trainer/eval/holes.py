"""What one evaluation item is (`EvalItem`, `EvalError`) and how a hole is cut from a line or span."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from repolsp.server.context.document import Document
from repolsp.server.context.languages import language_for
from repolsp.server.context.should_complete import should_complete
from repolsp.server.context.types import CompletionMode

MIN_TARGET_CHARS = 6  # holes whose target is shorter are trivial (`else:`, `)`, `pass`)


COMMENT_STARTS = ("#", "//", "/*", "*", "--", '"""', "'''")


_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


class EvalError(Exception):
    """A user-facing problem (bad repository, missing model...): one line, non-zero exit."""


@dataclass
class EvalItem:
    """One hole: a document with the cursor at `offset` and what the author really wrote there.

    For `history`, text is the file at `commit` with the target removed; for `humaneval`,
    `program_head` + fill + `program_tail` is the executable program.
    """

    task: str
    id: str
    path: str
    text: str
    offset: int
    target: str
    kind: str = "line"  # "line" | "span"
    commit: str = ""
    # Python: the file with the target in place parses (so a parse failure is the model's).
    original_parses: bool | None = None
    program_head: str = ""
    program_tail: str = ""

    @property
    def language(self) -> str:
        return language_for(None, self.path)


def is_code_line(line: str) -> bool:
    """Worth a hole: enough code, not a comment, not only brackets or punctuation."""
    code = line.strip()
    if len(code) < MIN_TARGET_CHARS or code.startswith(COMMENT_STARTS):
        return False
    return any(char in _WORD_CHARS for char in code)


def cut_columns(line: str) -> list[int]:
    """Cursor columns for a line hole: the start of the code and every word boundary after
    it where at least MIN_TARGET_CHARS characters (with a letter or digit) remain."""
    start = len(line) - len(line.lstrip())
    columns = [start]
    for col in range(start + 1, len(line)):
        before, after = line[col - 1], line[col]
        rest = line[col:].rstrip()
        if len(rest) < MIN_TARGET_CHARS or not any(c in _WORD_CHARS for c in rest):
            continue
        if (before in _WORD_CHARS) != (after in _WORD_CHARS) and after != " ":
            columns.append(col)
    return columns


def line_hole(text: str, line_index: int, column: int) -> tuple[str, int, str]:
    """Cut line `line_index` (0-based) of text from `column` to its end.

    Returns (text with the hole, cursor offset, target)."""
    lines = text.split("\n")
    start = sum(len(line) + 1 for line in lines[:line_index])
    line = lines[line_index]
    offset = start + column
    target = line[column:].rstrip()
    return text[:offset] + text[start + len(line):], offset, target


def span_hole(text: str, first: int, last: int) -> tuple[str, int, str]:
    """Cut lines first..last (0-based, inclusive) from the first line's code start.

    The cursor sits on the first line after its indentation; the lines are gone."""
    lines = text.split("\n")
    start = sum(len(line) + 1 for line in lines[:first])
    indent = len(lines[first]) - len(lines[first].lstrip())
    end = start + sum(len(line) + 1 for line in lines[first:last + 1]) - 1
    offset = start + indent
    target = "\n".join(line.rstrip() for line in lines[first:last + 1])[indent:]
    return text[:offset] + text[end:], offset, target


def completable(path: str, text: str, offset: int) -> bool:
    """Whether the server would offer a completion at offset (should_complete is not NONE)."""
    doc = Document(Path("/eval", path).as_uri(), text, None, path=path)
    return should_complete(doc, offset).mode is not CompletionMode.NONE
