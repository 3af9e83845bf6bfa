"""One changed file of one commit -> examples: new function bodies, changed lines, Python
docstrings and tests the commit added (`mine_file`, `FileMiner`)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from repolsp.server.context.document import Document
from repolsp.server.context.symbols import file_definitions
from repolsp.server.docgen import docstring_prompt, docstring_target
from repolsp.server.testgen.prompt import render_test_prompt
from repolsp.trainer import gitlog
from repolsp.trainer.examples import Example, MineConfig
from repolsp.trainer.filters import is_test_path
from repolsp.trainer.prompts import ExampleRenderer
from repolsp.trainer.snapshot import Snapshot
from repolsp.trainer.tested import find_tested_function, python_imports


def _pick(items: list, key: str) -> int:
    """A deterministic index into `items` from a string (same history -> same examples)."""
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % len(items)


def _line_offsets(text: str) -> list[int]:
    starts = [0]
    pos = text.find("\n")
    while pos >= 0:
        starts.append(pos + 1)
        pos = text.find("\n", pos + 1)
    return starts


def _covered(start_line: int, end_line: int, added: Iterable[tuple[int, int]]) -> bool:
    """True when lines start_line..end_line (1-based, inclusive) are all added."""
    line = start_line
    for a, b in sorted(added):
        if a <= line <= b:
            line = b + 1
            if line > end_line:
                return True
    return line > end_line


def mine_file(
    renderer: ExampleRenderer,
    snapshot: Snapshot,
    commit: gitlog.Commit,
    change: gitlog.FileChange,
    text: str,
    commit_texts: dict[str, str],
    config: MineConfig,
) -> list[Example]:
    """Examples from one changed file of one commit (`text` is the file after the commit)."""
    doc = Document("file:///" + change.path.lstrip("/"), text, path=change.path)
    if doc.tree is None or not change.added_lines:
        return []
    miner = FileMiner(renderer, snapshot, commit, change, doc, commit_texts, config)
    kinds = config.kinds
    if "fim" in kinds or "instruction" in kinds:
        miner.new_function_bodies()
    if "fim" in kinds:
        miner.changed_lines()
    if doc.language == "python":
        _python_docstrings(doc, text, miner.spans, change, miner.add, miner.add_instruction, kinds)
        if "test" in kinds or "instruction" in kinds:
            _python_tests(doc, text, miner.spans, miner.new_defs, snapshot, commit_texts, change,
                          miner.add_test, miner.add_instruction, renderer, kinds)
    return miner.kept()


class FileMiner:
    """The examples of one changed file of one commit, collected in `out` in mining order.

    Lines are 1-based; offsets are str offsets into the file after the commit.
    """

    def __init__(self, renderer: ExampleRenderer, snapshot: Snapshot, commit: gitlog.Commit,
                 change: gitlog.FileChange, doc: Document, commit_texts: dict[str, str],
                 config: MineConfig):
        self.renderer, self.snapshot, self.commit, self.change = renderer, snapshot, commit, change
        self.doc, self.text, self.commit_texts, self.config = doc, doc.text, commit_texts, config
        self.starts = _line_offsets(self.text)
        self.out: list[Example] = []
        self.key = f"{commit.sha}:{change.path}"
        # (definition, first line, last line) of every definition in the file
        self.spans = [(info, self.line_of(info.start), self.line_of(max(info.start, info.end - 1)))
                      for info in file_definitions(doc)]
        self.new_defs = {id(info) for info, a, b in self.spans if _covered(a, b, change.added_lines)}
        self.def_line = {id(info): self.line_of(info.header_start) for info, _, _ in self.spans}

    def line_of(self, offset: int) -> int:
        """1-based line of a str offset."""
        starts = self.starts
        lo, hi = 0, len(starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1

    def line_span(self, a: int, b: int) -> tuple[int, int]:
        """str offsets of lines a..b (1-based inclusive), without the last newline."""
        start = self.starts[a - 1]
        end = self.starts[b] - 1 if b < len(self.starts) else len(self.text)
        return start, end

    def add(self, kind: str, start: int, end: int, mode: str, extra=()) -> None:
        """A FIM example with text[start:end] as the middle (none for a blank middle)."""
        middle = self.text[start:end]
        if not middle.strip():
            return
        example = self.renderer.fim_example(self.text, start, end, self.change.path, mode,
                                            self.snapshot, extra)
        if example is None:
            return
        prompt, context = example
        self.out.append(Example(self.commit.sha, self.commit.time, self.change.path,
                                self.doc.language, kind, prompt, middle, mode=mode,
                                context=context))

    def add_test(self, source: str, test: str) -> None:
        """A "test" example: the server's own test prompt for the tested function (see
        `testgen.prompt.render_test_prompt`), the whole test function as the answer."""

        self.out.append(Example(self.commit.sha, self.commit.time, self.change.path, self.doc.language,
                                "test", render_test_prompt(source), test, mode="multi-line"))

    def add_instruction(self, task: str, info, code: str, answer: str, context: str = "") -> None:
        """An instruction example (task "complete", "docstring", "tests") when that kind is mined.

        For "docstring", `code` is the whole file without the docstring and `answer` the
        docstring literal: the prompt is the server's own (`docgen.docstring_prompt`).
        """
        if "instruction" not in self.config.kinds or not answer.strip():
            return
        if task == "docstring":
            request = docstring_request(self.change.path, code, info, answer)
            if request is None:
                return
            prompt, answer = request
        else:
            prompt = self.renderer.instruction_prompt(task, self.doc.language, self.change.path,
                                                      info.kind, info.name, code, context)
        self.out.append(Example(self.commit.sha, self.commit.time, self.change.path,
                                self.doc.language, "instruction", prompt, answer, mode=task))

    def new_function_bodies(self) -> None:
        """Whole bodies of new functions ("complete this function")."""
        kinds, text = self.config.kinds, self.text
        for info, a, b in self.spans:
            if id(info) not in self.new_defs or not info.is_callable or info.body_start is None:
                continue
            if b - self.line_of(info.body_start) + 1 > self.config.max_middle_lines:
                continue
            if "fim" in kinds:
                self.add("fim", info.body_start, info.end, "multi-line")
            body_code_start = _after_docstring(self.doc, info)
            self.add_instruction("complete", info, text[info.start:body_code_start].rstrip() + "\n",
                                 text[body_code_start:info.end])

    def changed_lines(self) -> None:
        """Added/changed lines inside definitions: the hunk as a multi-line middle, one of its
        lines as a single-line middle (the "in-hunk line" the evaluation measures)."""
        text, config, line_span = self.text, self.config, self.line_span
        for a, b in self.change.added_lines:
            for info, first_line, last_line in _runs_by_owner(self.spans, a, b, config.max_middle_lines):
                lines = [n for n in range(first_line, last_line + 1)
                         if is_code_line(text, *line_span(n, n), config)]
                if not lines:
                    continue
                first, last = lines[0], lines[-1]
                if last > first and id(info) not in self.new_defs:
                    start = after_indent(text, *line_span(first, first))
                    self.add("fim", start, line_span(last, last)[1], "multi-line")
                # Prefer body lines: a new definition's header line is mostly naming.
                body_lines = [n for n in lines
                              if not (id(info) in self.new_defs and n == self.def_line[id(info)])]
                choices = body_lines or lines
                pick = choices[_pick(choices, f"{self.key}:{first}")]
                start, end = line_span(pick, pick)
                start = after_indent(text, start, end)
                self.add("fim", start, end - 1 if text[end - 1:end] == "\r" else end, "single-line")

    def kept(self) -> list[Example]:
        """The examples, cut to max_examples_per_file by a deterministic, kind-balanced pick."""
        out = self.out
        if len(out) > self.config.max_examples_per_file:
            out.sort(key=lambda e: (_pick(list(range(1000)), f"{self.key}:{e.kind}:{e.completion[:40]}")))
            out = out[: self.config.max_examples_per_file]
        return out


def _runs_by_owner(spans, a: int, b: int, max_lines: int):
    """Split added lines a..b into runs with the same innermost definition (lines outside every
    definition are dropped); each run is at most `max_lines` long: (info, first, last)."""
    runs = []
    for line in range(a, b + 1):
        owners = [s for s in spans if s[1] <= line <= s[2]]
        owner = max(owners, key=lambda s: s[1])[0] if owners else None
        if runs and runs[-1][0] is owner and line - runs[-1][1] < max_lines:
            runs[-1][2] = line
        elif owner is not None:
            runs.append([owner, line, line])
    return [tuple(r) for r in runs]


def after_indent(text: str, start: int, end: int) -> int:
    """Offset of the first character after the indentation of the line text[start:end]."""
    line = text[start:end]
    return start + len(line) - len(line.lstrip(" \t"))


def is_code_line(text: str, start: int, end: int, config: MineConfig) -> bool:
    line = text[start:end].strip()
    return len(line) >= config.min_line_chars and not line.startswith(("#", "//", "/*", "*"))


def _docstring_node(info):
    """The docstring's expression statement of a Python definition, or None."""
    if info.node is None or info.docstring is None:
        return None
    body = info.node.child_by_field_name("body")
    if body is None or not body.named_children:
        return None
    first = body.named_children[0]
    if first.type == "expression_statement" and first.named_children and first.named_children[0].type == "string":
        return first
    return None


def _after_docstring(doc, info) -> int:
    """Offset where a Python function's code starts after its docstring (else its body start)."""
    node = _docstring_node(info) if doc.language == "python" else None
    if node is None:
        return info.body_start
    end = doc.offset_of_byte(node.end_byte)
    text = doc.text
    nl = text.find("\n", end)
    if nl < 0:
        return len(text)
    # Skip to the first non-blank character of the next code line.
    pos = nl + 1
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return min(pos, info.end)


def _python_docstrings(doc, text, spans, change, add, add_instruction, kinds) -> None:
    for info, a, b in spans:
        node = _docstring_node(info)
        if node is None:
            continue
        start, end = doc.offset_of_byte(node.start_byte), doc.offset_of_byte(node.end_byte)
        d_a = text.count("\n", 0, start) + 1
        d_b = text.count("\n", 0, end) + 1
        if not _covered(d_a, d_b, change.added_lines):
            continue  # the history did not write this docstring in this commit
        if "docstring" in kinds:
            add("docstring", start, end, "multi-line")
        line_start = text.rfind("\n", 0, start) + 1
        line_end = text.find("\n", end)
        line_end = len(text) if line_end < 0 else line_end + 1
        add_instruction("docstring", info, text[:line_start] + text[line_end:], text[start:end])


def _python_tests(doc, text, spans, new_defs, snapshot, commit_texts, change, add,
                  add_instruction, renderer, kinds) -> None:

    if not is_test_path(change.path):
        return
    imports = python_imports(text)
    for info, a, b in spans:
        if id(info) not in new_defs or not info.is_callable or not info.name.startswith("test"):
            continue
        body = text[info.start:info.end]
        tested = find_tested_function(info.name, body, imports, snapshot, commit_texts)
        if tested is None:
            continue
        _module_path, source = tested
        if "test" in kinds:
            add(source, body)
        target_name = source.split("(", 1)[0].split()[-1]
        add_instruction("tests", _Named("function", target_name), source,
                        body, context="")


@dataclass
class _Named:
    kind: str
    name: str


def docstring_request(path: str, text_without: str, info, literal: str) -> tuple[str, str] | None:
    """(prompt, answer) of a "Generate docstring" request as the server sends it: the prompt is
    `docgen.docstring_prompt` on the file without its docstring, which ends with an opened
    docstring; the answer is the rest of the docstring. None for other quote styles."""
    if not literal.startswith('"""') or len(literal) < 6:
        return None
    doc = Document("file:///" + path.lstrip("/"), text_without, path=path)
    target = docstring_target(doc, info.header_start + 1)  # inside the header, as a cursor is
    if target is None or target.name != info.name:
        return None
    prompt, _ = docstring_prompt(doc, target)
    return prompt, literal[3:]
