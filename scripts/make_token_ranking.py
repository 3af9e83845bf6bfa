"""Make models/data/gemma3-code-ranking.json.gz: Gemma 3's tokens ranked by use in code.

Sources, all on a development machine without internet (16 MB of each language read, 1 MB more
of each held out to measure coverage; files taken in a fixed shuffled order):

- Python: the virtual environment's site-packages (`.venv/lib/python3.*/site-packages`).
- JavaScript / TypeScript: `editors/vscode/node_modules` and `editors/vscode/e2e/node_modules`
  (after `npm ci` there), and `/usr/lib/node_modules`.
- Go: Debian's `golang-1.19-src`; Rust: Debian's `rust-src` (the standard libraries' sources):
  `apt-get download golang-1.19-src rust-src` and `dpkg-deb -x PKG.deb DIR` into --debian-dir.
- Java: the JDK's `lib/src.zip` (java.base, java.sql, java.net.http, java.logging), unzipped
  into --java-dir.
- C: `/usr/include/**/*.h` outside `c++/`; C++: `/usr/include/c++/` (headers without an
  extension) and PyTorch's C++ headers in site-packages.
- Prose, the English of docstrings, comments and messages: (1) `comments`, the comments,
  docstrings and string literals taken out of the files above (the training part of each
  language, 2 MB each), and (2) `docs`, the packages' own documentation (`*.md`, `*.rst`,
  `*.txt`, `METADATA`) in site-packages and node_modules, each weighing --prose-weight languages
  (default 0: not read; see PROSE_WEIGHT for why). Files under a path that names HumanEval are
  never read, so the evaluation's text is not in the ranking.

Usage: python scripts/make_token_ranking.py --tokenizer HF_DIR --debian-dir D --java-dir J
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

from repolsp.models.vocab import Ranking, count_tokens, kept_token_ids, rank, trim_tokenizer_json

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "models" / "data" / "gemma3-code-ranking.json.gz"
READ_BYTES = 16_000_000
HELD_OUT_BYTES = 1_000_000
SAVED_TOKENS = 65_536  # the ranking file holds this many; `--keep` above it keeps them all
PROSE_BYTES = 2_000_000  # of comments and strings per language
# Each prose source counts as this many languages; 0 (the shipped ranking): not read. Measured
# on HumanEval's 200 served prompts, prose at weight 2 kept every token of 133 of them (ignoring
# the path line's `humane`) against 132 without, at --keep 49152, and cost held-out code 0-0.1
# points of coverage: its words (planet, carrots, Jupiter) are not in technical English.
PROSE_WEIGHT = 0.0
# Comments, docstrings and string literals: Python's `#` and quotes, the C family's `//`, `/* */`
# and quotes (backquotes for JS/TS/Go). A regex, not a parser: the ranking needs their words,
# not exact boundaries.
_PY_PROSE = re.compile(r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|#[^\n]*|"(?:\\.|[^"\\\n])*"'
                       r"|'(?:\\.|[^'\\\n])*'")
_C_PROSE = re.compile(r'//[^\n]*|/\*[\s\S]*?\*/|"(?:\\.|[^"\\\n])*"|`[^`]*`')


def prose(path: Path, text: str) -> str:
    """The comments, docstrings and string literals of a code file, one per line."""
    pattern = _PY_PROSE if path.suffix == ".py" else _C_PROSE
    return "\n".join(pattern.findall(text))


def _no_humaneval(files: list[Path]) -> list[Path]:
    return [f for f in files if "humaneval" not in str(f).lower().replace("_", "").replace("-", "")]


def _files(root: Path, suffixes: tuple[str, ...], exclude: str = "", any_name: bool = False):
    if not root.is_dir():
        return []
    found = [p for p in root.rglob("*") if p.is_file() and (p.suffix in suffixes or (
        any_name and not p.suffix)) and not (exclude and exclude in p.parts)]
    # A fixed pseudo-random order, so that no one package dominates the first megabytes.
    return sorted(found, key=lambda p: hashlib.sha256(str(p).encode()).hexdigest())


def sources(debian_dir: Path, java_dir: Path) -> dict[str, list[Path]]:
    site = next((REPO / ".venv" / "lib").glob("python3.*/site-packages"))
    vscode = REPO / "editors" / "vscode"
    js_roots = [vscode / "node_modules", vscode / "e2e" / "node_modules", Path("/usr/lib/node_modules")]
    return {name: _no_humaneval(files) for name, files in {
        "python": _files(site, (".py",)),
        "javascript": [f for r in js_roots for f in _files(r, (".js", ".mjs", ".cjs"))],
        "typescript": [f for r in js_roots for f in _files(r, (".ts", ".tsx"))
                       if not f.name.endswith(".d.ts")],
        "go": _files(debian_dir, (".go",)),
        "rust": _files(debian_dir, (".rs",)),
        "java": _files(java_dir, (".java",)),
        "c": _files(Path("/usr/include"), (".h",), exclude="c++"),
        "cpp": _files(Path("/usr/include/c++"), (".h", ".tcc"), any_name=True)
        + _files(site / "torch" / "include", (".h", ".hpp")),
    }.items()}


def doc_files() -> list[Path]:
    """The packages' own documentation: READMEs, reST, text and wheel METADATA."""
    site = next((REPO / ".venv" / "lib").glob("python3.*/site-packages"))
    roots = [site, REPO / "editors" / "vscode" / "node_modules", Path("/usr/lib/node_modules")]
    found = [f for root in roots for f in _files(root, (".md", ".rst", ".txt"))]
    found += [f for f in _files(site, ("",), any_name=True) if f.name == "METADATA"]
    return _no_humaneval(sorted(found, key=lambda p: hashlib.sha256(str(p).encode()).hexdigest()))


def _split(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """(held-out files, training files): the first ~HELD_OUT_BYTES are held out."""
    held, size = [], 0
    for index, path in enumerate(files):
        if size >= HELD_OUT_BYTES:
            return held, files[index:]
        held.append(path)
        size += path.stat().st_size
    return held, []


def main(argv=None) -> int:
    import numpy as np
    from tokenizers import Tokenizer
    from tqdm import tqdm

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", type=Path, required=True, help="HF folder of gemma3-270m")
    parser.add_argument("--debian-dir", type=Path, required=True)
    parser.add_argument("--java-dir", type=Path, required=True)
    parser.add_argument("--keep", type=int, default=32_768, help="N for the coverage report")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--prose-weight", type=float, default=PROSE_WEIGHT,
                        help="languages each prose source counts as")
    parser.add_argument("--save-counts", type=Path, help="also write the raw counts (.npz)")
    args = parser.parse_args(argv)
    tokenizer = Tokenizer.from_file(str(args.tokenizer / "tokenizer.json"))
    counts, held_out, described = {}, {}, []
    comments = np.zeros(tokenizer.get_vocab_size(with_added_tokens=True), dtype=np.int64)
    comment_bytes = 0
    for language, files in sources(args.debian_dir, args.java_dir).items():
        if not files:
            print(f"no {language} files found; skipped", file=sys.stderr)
            continue
        held, train = _split(files)
        with tqdm(total=READ_BYTES, unit="B", unit_scale=True, desc=language, file=sys.stderr) as bar:
            counts[language], read = count_tokens(tokenizer, train, READ_BYTES, progress=bar.update)
        if args.prose_weight > 0:
            found, read_prose = count_tokens(tokenizer, train, PROSE_BYTES, extract=prose)
            comments += found
            comment_bytes += read_prose
        held_out[language] = held
        described.append(f"{language} {read / 1e6:.1f} MB")
    if args.prose_weight > 0:
        counts["comments"] = comments
        described.append(f"their comments and strings {comment_bytes / 1e6:.1f} MB")
        with tqdm(total=READ_BYTES, unit="B", unit_scale=True, desc="docs", file=sys.stderr) as bar:
            counts["docs"], read = count_tokens(tokenizer, doc_files(), READ_BYTES,
                                                progress=bar.update)
        described.append(f"package docs {read / 1e6:.1f} MB (prose x{args.prose_weight:g} each)")
    source = "code on the build machine (scripts/make_token_ranking.py): " + ", ".join(described)
    if args.save_counts:
        np.savez_compressed(args.save_counts, **counts)
    ranking = rank(tokenizer, counts, source,
                   {"comments": args.prose_weight, "docs": args.prose_weight})
    ranking.tokens, ranking.scores = ranking.tokens[:SAVED_TOKENS], ranking.scores[:SAVED_TOKENS]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    ranking.save(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB, {len(ranking.tokens)} tokens)")
    report(tokenizer, ranking, held_out, args.keep)
    return 0


def report(tokenizer, ranking: Ranking, held_out: dict[str, list[Path]], keep: int) -> None:
    """Coverage and token growth on the held-out files with the top `keep` tokens."""
    import json

    from tokenizers import Tokenizer

    tok_json = json.loads(tokenizer.to_str())
    old_ids = kept_token_ids(tok_json, ranking, keep)
    trimmed = Tokenizer.from_str(json.dumps(trim_tokenizer_json(tok_json, old_ids)))
    kept = set(old_ids)
    print(f"keep {keep}: {len(old_ids)} tokens after bytes, added tokens and merge closure")
    for language, files in held_out.items():
        texts = [p.read_text(encoding="utf-8", errors="replace") for p in files]
        full = tokenizer.encode_batch(texts, add_special_tokens=False)
        cut = trimmed.encode_batch(texts, add_special_tokens=False)
        n_full = sum(len(e.ids) for e in full)
        covered = sum(sum(i in kept for i in e.ids) for e in full)
        n_cut = sum(len(e.ids) for e in cut)
        same = sum(a.tokens == b.tokens for a, b in zip(full, cut)
                   if all(i in kept for i in a.ids))
        whole = sum(all(i in kept for i in a.ids) for a in full)
        print(f"  {language:10s} held-out {sum(len(t) for t in texts) / 1e6:.2f} MB: "
              f"{100 * covered / n_full:.2f}% of tokens kept, {100 * (n_cut / n_full - 1):+.2f}% "
              f"tokens when trimmed; identical on {same}/{whole} files made of kept tokens")


if __name__ == "__main__":
    raise SystemExit(main())
