"""Trim a BPE tokenizer to the tokens of code: rank tokens, choose the kept set, filter merges.

A trimmed tokenizer keeps the top-N tokens of a frequency ranking plus the byte-fallback tokens
and the added (special) tokens, closed over merge ancestors: every intermediate token BPE builds
a kept token from is kept too. Only merges whose two inputs and result are all kept survive.
Then every text whose original tokens are all kept tokenizes identically (no merge its
derivation used was removed, and removing unused merges does not reorder the others), and any
other text falls back to smaller kept pieces or bytes, never `<unk>`.

The tokenizer is edited through its own serialization (`Tokenizer.to_str` / `from_str` of the
`tokenizers` library), so normalizer, pre-tokenizer, decoder and post-processor stay as they were.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from repolsp.models.errors import UnsupportedModelError

# The eight languages the server completes, by file extension (the ranking's sources).
CODE_EXTENSIONS = {
    ".py": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".jsx": "javascript", ".ts": "typescript", ".tsx": "typescript", ".go": "go", ".rs": "rust",
    ".java": "java", ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp",
    ".hpp": "cpp", ".hh": "cpp",
}
# Reserved placeholder tokens (Gemma has 6,243 `<unusedN>`): dropped, except the first few,
# which FIM templates use as sentinels (lsp-train's Gemma template: <unused0>, <unused1>).
_PLACEHOLDER_RE = re.compile(
    r"^(?:<unused(\d+)>|<\|reserved_special_token_(\d+)\|>|\[unused(\d+)\]|<extra_id_(\d+)>)$")
KEPT_PLACEHOLDERS = 4


def _dropped_placeholder(token: str) -> bool:
    match = _PLACEHOLDER_RE.match(token)
    return bool(match) and int(next(g for g in match.groups() if g)) >= KEPT_PLACEHOLDERS
RANKING_FORMAT = 1


@dataclass
class Ranking:
    """Token texts, most useful first, with the score each was ranked by."""

    tokens: list[str]
    scores: list[float]
    source: str  # where the counts came from, for the manifest
    fingerprint: str  # of the tokenizer vocabulary the counts were made with

    def save(self, path: Path) -> None:
        data = {"format": RANKING_FORMAT, "source": self.source, "fingerprint": self.fingerprint,
                "tokens": self.tokens, "scores": [round(s, 9) for s in self.scores]}
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def load(cls, path: Path) -> Ranking:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
        return cls(data["tokens"], data["scores"], data["source"], data["fingerprint"])


def vocab_fingerprint(tokenizer) -> str:
    """sha256 of the token texts in id order: equal fingerprints mean equal vocabularies."""
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    ordered = sorted(vocab.items(), key=lambda item: item[1])
    return hashlib.sha256("\n".join(t for t, _ in ordered).encode("utf-8", "surrogatepass")
                          ).hexdigest()


def code_files(paths: Iterable[Path], skip_dirs: tuple[str, ...] = (".git",)) -> Iterator[Path]:
    """Files under `paths` (or the paths themselves) with a code extension, in sorted order."""
    for root in paths:
        root = Path(root)
        if root.is_file():
            if root.suffix in CODE_EXTENSIONS:
                yield root
            continue
        for path in sorted(root.rglob("*")):
            if path.suffix in CODE_EXTENSIONS and path.is_file() and not any(
                    part in skip_dirs for part in path.parts):
                yield path


def read_texts(files: Iterable[Path], extract=None) -> Iterator[str]:
    """Each readable UTF-8 file's text (or `extract(path, text)` of it), skipping the others."""
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        yield extract(path, text) if extract else text


def count_tokens(tokenizer, files: Iterable[Path], max_bytes: int | None = None,
                 batch: int = 256, progress=None, extract=None):
    """Token-id counts (numpy int64, one per id) over the files' text (or the part `extract`
    takes of it), and the bytes read."""
    import numpy as np

    counts = np.zeros(tokenizer.get_vocab_size(with_added_tokens=True), dtype=np.int64)
    texts: list[str] = []
    read = 0

    def flush() -> None:
        if texts:
            ids = [i for enc in tokenizer.encode_batch(texts, add_special_tokens=False)
                   for i in enc.ids]
            counts[:] += np.bincount(np.asarray(ids, dtype=np.int64), minlength=len(counts))
        texts.clear()

    for text in read_texts(files, extract):
        if not text:
            continue
        texts.append(text)
        read += len(text.encode("utf-8"))
        if progress is not None:
            progress(len(text.encode("utf-8")))
        if len(texts) >= batch:
            flush()
        if max_bytes is not None and read >= max_bytes:
            break
    flush()
    return counts, read


def rank(tokenizer, sources: dict[str, object], source: str,
         weights: dict[str, float] | None = None) -> Ranking:
    """A ranking from per-source count arrays: a token's score is its weighted mean frequency
    over the sources (languages; each weighs 1 unless `weights` says otherwise). (Its highest
    frequency in any one language instead kept 0.1-0.2 points fewer held-out tokens in 5 of 8
    languages.)"""
    import numpy as np

    weights = {name: (weights or {}).get(name, 1.0) for name in sources}
    total_weight = sum(weights.values()) or 1.0
    score = np.zeros(tokenizer.get_vocab_size(with_added_tokens=True), dtype=np.float64)
    for name, counts in sources.items():
        total = counts.sum()
        if total:
            score += counts / total * (weights[name] / total_weight)
    order = [int(i) for i in np.argsort(-score, kind="stable") if score[i] > 0]
    return Ranking([tokenizer.id_to_token(i) for i in order], [float(score[i]) for i in order],
                   source, vocab_fingerprint(tokenizer))


def merge_rankings(first: Ranking, second: Ranking) -> Ranking:
    """Two rankings of one vocabulary as one, each weighted equally (scores sum to 1 each)."""
    score: dict[str, float] = {}
    for ranking in (first, second):
        total = sum(ranking.scores) or 1.0
        for token, value in zip(ranking.tokens, ranking.scores):
            score[token] = score.get(token, 0.0) + value / total / 2
    order = sorted(score, key=lambda t: -score[t])
    return Ranking(order, [score[t] for t in order], f"{first.source} + {second.source}",
                   first.fingerprint)


# -- the kept set ---------------------------------------------------------------------------------


def _merge_pairs(model: dict) -> list[tuple[str, str]]:
    merges = model.get("merges", [])
    return [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in merges]


def _byte_tokens(tok_json: dict) -> set[str]:
    """Tokens any text can fall back to: `<0xNN>` (byte_fallback) or the byte-level alphabet."""
    if tok_json["model"].get("byte_fallback"):
        return {f"<0x{b:02X}>" for b in range(256)}
    if "ByteLevel" in json.dumps(tok_json.get("pre_tokenizer")):
        from tokenizers import pre_tokenizers

        return set(pre_tokenizers.ByteLevel.alphabet())
    raise UnsupportedModelError(
        "cannot trim this tokenizer: it has neither byte fallback nor a byte-level alphabet, "
        "so text of dropped tokens would become <unk>")


def _derivation(token: str, ranks: dict[tuple[str, str], int], vocab: dict) -> list[str]:
    """Every symbol BPE creates while building `token` from its characters.

    A token's derivation is the same in any word it ends up in: a merge across its boundary
    would have made a symbol that is never split again, so BPE applies exactly the merges it
    applies to the token alone, in the same order.
    """
    symbols = list(token)
    if any(s not in vocab for s in symbols):
        return []  # not buildable from characters (reached through bytes or not at all)
    made = list(symbols)
    while len(symbols) > 1:
        best, at = None, -1
        for i in range(len(symbols) - 1):
            r = ranks.get((symbols[i], symbols[i + 1]))
            if r is not None and (best is None or r < best):
                best, at = r, i
        if best is None:
            break
        symbols[at:at + 2] = [symbols[at] + symbols[at + 1]]
        made.append(symbols[at])
    return made


def kept_token_ids(tok_json: dict, ranking: Ranking, keep: int,
                   extra_tokens: Iterable[str] = ()) -> list[int]:
    """Sorted ids of the tokens a trimmed tokenizer keeps (see the module docstring)."""
    model = tok_json["model"]
    if model.get("type") != "BPE":
        raise UnsupportedModelError(
            f"cannot trim a {model.get('type')} tokenizer: only BPE (and SentencePiece-BPE) is "
            "supported")
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        raise UnsupportedModelError("cannot trim a BPE tokenizer with subword prefixes/suffixes")
    vocab: dict[str, int] = model["vocab"]
    extra = set(extra_tokens)
    added = {t["content"]: t["id"] for t in tok_json.get("added_tokens", [])}
    chosen = {t for t in ranking.tokens[:keep] if t in vocab or t in added}
    chosen |= {t for t in _byte_tokens(tok_json) if t in vocab}
    chosen |= {t for t in added if not _dropped_placeholder(t) or t in extra}
    chosen |= {t for t in extra if t in vocab or t in added}
    if model.get("unk_token"):
        chosen.add(model["unk_token"])
    ranks = {pair: i for i, pair in enumerate(_merge_pairs(model))}
    for token in list(chosen):
        if token in vocab:
            chosen.update(_derivation(token, ranks, vocab))
    ids = {vocab[t] if t in vocab else added[t] for t in chosen}
    return sorted(ids)


def trim_tokenizer_json(tok_json: dict, old_ids: list[int]) -> dict:
    """The tokenizer.json of the kept tokens, renumbered 0..len(old_ids)-1 in their old order."""
    new_id = {old: new for new, old in enumerate(old_ids)}
    model = dict(tok_json["model"])
    vocab = {t: new_id[i] for t, i in model["vocab"].items() if i in new_id}
    merges = [[a, b] for a, b in _merge_pairs(model)
              if a in vocab and b in vocab and a + b in vocab]
    model["vocab"], model["merges"] = vocab, merges
    added = [dict(t, id=new_id[t["id"]]) for t in tok_json.get("added_tokens", [])
             if t["id"] in new_id]
    content_id = {t: i for t, i in vocab.items()} | {t["content"]: t["id"] for t in added}
    out = dict(tok_json, model=model, added_tokens=added)
    out["post_processor"] = _remap_processor(tok_json.get("post_processor"), content_id)
    return out


def _remap_processor(node, content_id: dict[str, int]):
    """The post-processor with its special tokens' ids looked up again by their text."""
    if isinstance(node, list):
        # BertProcessing / RobertaProcessing store [token, id] pairs.
        if len(node) == 2 and isinstance(node[0], str) and isinstance(node[1], int):
            return [node[0], content_id[node[0]]]
        return [_remap_processor(item, content_id) for item in node]
    if not isinstance(node, dict):
        return node
    if isinstance(node.get("tokens"), list) and isinstance(node.get("ids"), list):
        return dict(node, ids=[content_id[t] for t in node["tokens"]])
    return {key: _remap_processor(value, content_id) for key, value in node.items()}


def trim_tokenizer(tokenizer, ranking: Ranking, keep: int, extra_tokens: Iterable[str] = ()):
    """(trimmed `tokenizers.Tokenizer`, old ids in new-id order) for a loaded tokenizer."""
    from tokenizers import Tokenizer

    tok_json = json.loads(tokenizer.to_str())
    old_ids = kept_token_ids(tok_json, ranking, keep, extra_tokens)
    trimmed = Tokenizer.from_str(json.dumps(trim_tokenizer_json(tok_json, old_ids),
                                            ensure_ascii=False))
    return trimmed, old_ids
