"""The last completion stage: cut a raw generation to what the editor should show.

Pure functions on strings. Order (see `postprocess`): single-line cut, block end, suffix
overlap, degenerate repetition, trailing whitespace.
"""

from __future__ import annotations

from repolsp.server.context.types import CompletionMode


def indent_width(line: str, tab_size: int = 4) -> int:
    """Columns of leading whitespace (tabs count as tab_size)."""
    width = 0
    for char in line:
        if char == " ":
            width += 1
        elif char == "\t":
            width += tab_size
        else:
            break
    return width


def cut_single_line(text: str) -> str:
    """Only the first line."""
    return text.split("\n", 1)[0]


def cut_at_block_end(text: str, block_indent: int | None, first_line_col: int = 0) -> str:
    """Stop before the first later line that dedents to block_indent or less.

    block_indent is the indentation (columns) of the block's header line; body lines are deeper.
    first_line_col is the column where the completion starts (the first line's indentation is
    the cursor's, not part of text).
    """
    if block_indent is None:
        return text
    lines = text.split("\n")
    kept = [lines[0]]
    for line in lines[1:]:
        if line.strip() and indent_width(line) <= block_indent:
            break
        kept.append(line)
    return "\n".join(kept)


def cut_suffix_overlap(text: str, suffix: str, min_overlap_chars: int = 1) -> str:
    """Remove the end of text that repeats what already follows the cursor.

    Compares the completion's tail with the start of the suffix (ignoring whitespace at the
    junction), e.g. completion `foo(a, b))` before suffix `)` keeps `foo(a, b)`. For multi-line
    completions, also stops where the completion starts re-writing the suffix's next lines.
    """
    if not text or not suffix:
        return text
    current_line_rest = suffix.split("\n", 1)[0]
    rest = current_line_rest.strip()
    if rest and "\n" not in text:
        # Longest tail of text that equals a head of the rest of the line.
        for size in range(min(len(text), len(rest)), min_overlap_chars - 1, -1):
            if rest[:size].strip() and text.endswith(rest[:size]):
                return text[: len(text) - size]
    suffix_lines = [line.strip() for line in suffix.split("\n")[1:] if line.strip()][:3]
    if suffix_lines and "\n" in text:
        lines = text.split("\n")
        for index in range(1, len(lines)):
            window = [line.strip() for line in lines[index:] if line.strip()][: len(suffix_lines)]
            if window and window == suffix_lines[: len(window)] and len(window) >= min(
                2, len(suffix_lines)
            ):
                return "\n".join(lines[:index])
    return text


def drop_repetition(text: str, max_repeats: int = 2) -> str:
    """Cut degenerate output: the same non-blank line more than max_repeats times in a row,
    or a short pattern repeated within one line (`_of_items_of_items_of_items`)."""
    lines = text.split("\n")
    kept: list[str] = []
    run = 0
    for line in lines:
        if kept and line.strip() and line == kept[-1]:
            run += 1
            if run >= max_repeats:
                break
        else:
            run = 0
        kept.append(line)
    text = "\n".join(kept)
    for period in range(2, 16):
        for start in range(max(0, len(text) - period * 4)):
            unit = text[start : start + period]
            if unit.strip() and text[start : start + period * 4] == unit * 4:
                return text[: start + period * 2]
    return text


def strip_trailing_whitespace(text: str) -> str:
    """No trailing spaces on any line, and no trailing blank lines."""
    return "\n".join(line.rstrip() for line in text.split("\n")).rstrip()


def stop_rule(mode: CompletionMode, block_indent: int | None):
    """The server's early stop during generation: a single-line completion ends at its first
    newline; a multi-line one at three newlines in a row or once a whole line has left the
    block. Returns a `should_stop(text_so_far) -> bool` callable."""
    multi = mode is CompletionMode.MULTI_LINE

    def should_stop(text: str) -> bool:
        if not multi:
            return "\n" in text
        if "\n\n\n" in text:
            return True
        head, _, _ = text.rpartition("\n")
        return cut_at_block_end(head, block_indent) != head

    return should_stop


def postprocess(
    text: str,
    mode: CompletionMode,
    suffix: str = "",
    block_indent: int | None = None,
    first_line_col: int = 0,
) -> str:
    """Apply the stop rules to a raw generation; may return ""."""
    if mode is CompletionMode.NONE:
        return ""
    if mode is CompletionMode.SINGLE_LINE:
        text = cut_single_line(text)
    else:
        text = cut_at_block_end(text, block_indent, first_line_col)
    text = cut_suffix_overlap(text, suffix)
    text = drop_repetition(text)
    return strip_trailing_whitespace(text)
