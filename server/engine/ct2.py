"""The real engine: a CTranslate2 generator with token healing (`healing`) and prompt-prefix caching.

Only `tokenizers` and `ctranslate2` are imported here (no torch, no transformers), which keeps
the server's start fast and its memory small.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

from repolsp.server.engine.base import GenerationRequest, GenerationResult, find_stop
from repolsp.server.engine.healing import TokenTexts, heal
from repolsp.server.engine.memory import kv_bytes_per_token, release_free_memory
from repolsp.server.engine.scoring import mean_log_probs

log = logging.getLogger(__name__)


def default_threads() -> int:
    """Half the CPUs, 1 to 8: decoding is bound by memory bandwidth, and a thread per logical CPU
    was slower (make bench, 2 cores: requests reaching the model p50 759 ms on 2 threads against
    579 on 1; decode 29.2 vs 21.2 ms/token at a 366-token prompt)."""
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def _release(engine_ref) -> None:
    engine = engine_ref()
    if engine is not None:
        engine.close()


class ModelLoadError(Exception):
    """The model folder is missing or unreadable."""


class CT2Engine:
    """Greedy/sampled generation from a CTranslate2 model folder plus its tokenizer.

    Not thread-safe: the server calls it from one dedicated worker thread.
    """

    name = "ctranslate2"

    def __init__(
        self,
        ct2_dir: Path,
        tokenizer_dir: Path,
        model_name: str = "",
        compute_type: str = "auto",
        threads: int = 0,
        max_cached_prefixes: int = 3,
        cache_budget_mb: float = 100.0,
    ):
        self.ct2_dir = Path(ct2_dir)
        self.tokenizer_dir = Path(tokenizer_dir)
        self.model_name = model_name or self.ct2_dir.parent.name
        self.compute_type = compute_type
        self.threads = threads or default_threads()
        # CTranslate2 keeps every cached static prompt forever (68 MB each for Gemma 3 270M at
        # 480 tokens), so the engine bounds them by count and by bytes, and clears the cache by
        # reloading when idle. A prompt that does not fit is run uncached until then, so the
        # cache never holds more than the budget (the server's peak RSS, bench/RESULTS.md).
        self.max_cached_prefixes = max_cached_prefixes
        self.cache_budget_bytes = int(cache_budget_mb * 2**20)
        self._kv_bytes_per_token = kv_bytes_per_token(self.tokenizer_dir)
        self._cached_prefixes: OrderedDict[tuple[str, ...], None] = OrderedDict()
        self._uncached_prefix = False  # a prefix missed the cache for lack of room
        self.prefix_cache_hits = 0
        self.prefix_cache_misses = 0
        self.reloads = 0
        self._texts: TokenTexts | None = None
        self._load()

    # --- loading -------------------------------------------------------------------------
    def _load(self) -> None:
        from tokenizers import Tokenizer

        if not (self.ct2_dir / "model.bin").is_file():
            raise ModelLoadError(f"no CTranslate2 model at {self.ct2_dir}")
        tok_file = self.tokenizer_dir / "tokenizer.json"
        if not tok_file.is_file():
            raise ModelLoadError(f"no tokenizer.json in {self.tokenizer_dir}")
        try:
            self.tokenizer = Tokenizer.from_file(str(tok_file))
            self.generator = self._new_generator()
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelLoadError(f"cannot load model from {self.ct2_dir}: {exc}") from exc
        self._tag_ids = {i for i, t in self.tokenizer.get_added_tokens_decoder().items()
                         if len(t.content) > 2 and t.content[0] == "<" and t.content[-1] == ">"}
        self.end_tokens = self._end_tokens()
        self._cached_prefixes.clear()
        self._texts = None
        # CTranslate2 leaves a thread behind after callback-driven generation that aborts the
        # process at exit ("terminate called without an active exception") unless the
        # generator is released before the interpreter shuts down.
        atexit.register(_release, weakref.ref(self))
        self._token_texts()  # now, while loading, not on the first keystroke
        release_free_memory()  # the loader's buffers

    def _token_texts(self) -> TokenTexts:
        if self._texts is None:
            self._texts = TokenTexts(self.tokenizer)
        return self._texts

    def _new_generator(self):
        import ctranslate2

        return ctranslate2.Generator(str(self.ct2_dir), device="cpu",
                                     compute_type=self.compute_type, intra_threads=self.threads)

    def _end_tokens(self) -> list[str]:
        vocab = self.tokenizer.get_vocab()
        candidates = ["<eos>", "</s>", "<|endoftext|>", "<|im_end|>", "<end_of_turn>", "<EOT>",
                      "<|end_of_text|>", "<file_sep>", "<|file_sep|>", "<｜end▁of▁sentence｜>"]
        config = self.tokenizer_dir / "tokenizer_config.json"
        if config.is_file():
            import json

            try:
                eos = json.loads(config.read_text()).get("eos_token")
                if isinstance(eos, dict):
                    eos = eos.get("content")
                if isinstance(eos, str):
                    candidates.insert(0, eos)
            except ValueError:
                pass
        return [token for token in dict.fromkeys(candidates) if token in vocab]

    def close(self) -> None:
        """Release the model (also done automatically at exit)."""
        generator = self.__dict__.pop("generator", None)
        del generator

    def reload(self) -> None:
        """Re-read the model folder (also frees the prompt cache)."""
        # A new Generator, not unload_model/load_model: those kept the cached prompts' states
        # alive in some reloads (RSS 364 -> 545 MB over three reloads of one cached prefix).
        self.close()
        release_free_memory()
        self.generator = self._new_generator()
        self._cached_prefixes.clear()
        self._uncached_prefix = False
        self.reloads += 1

    def _cached_bytes(self, extra_tokens: int = 0) -> int:
        tokens = sum(len(key) for key in self._cached_prefixes) + extra_tokens
        return tokens * (self._kv_bytes_per_token or 0)

    def _room_for(self, static: list[str]) -> bool:
        """Whether caching `static` keeps the cache within its count and byte bounds."""
        return (len(self._cached_prefixes) < self.max_cached_prefixes
                and self._cached_bytes(len(static)) <= self.cache_budget_bytes)

    def trim_cache(self) -> None:
        """Free cached prompt prefixes beyond the bound, or make room for a prefix that found
        none; call when idle, after answering."""
        if len(self._cached_prefixes) > self.max_cached_prefixes or self._uncached_prefix:
            start = time.perf_counter()
            self.reload()
            log.debug("prompt cache cleared in %.0f ms", (time.perf_counter() - start) * 1000)
        release_free_memory()  # the answer's activations, or the old weights after a reload

    # --- tokens --------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def _encode_prompt(self, request: GenerationRequest):
        enc = self.tokenizer.encode(request.prompt, add_special_tokens=True)
        tokens, offsets = list(enc.tokens), list(enc.offsets)
        # Tag-like added tokens count as special even where the tokenizer does not flag them
        # (Gemma's <unusedN>, the FIM sentinels `lsp-train` teaches it): never healed or split.
        special = [bool(m) or i in self._tag_ids for m, i in zip(enc.special_tokens_mask, enc.ids)]
        limit = request.max_prompt_tokens
        if limit and len(tokens) > limit:
            # Keep leading special tokens (BOS) and the newest text.
            lead = 0
            while lead < len(tokens) and special[lead]:
                lead += 1
            drop = len(tokens) - limit
            tokens = tokens[:lead] + tokens[lead + drop:]
            offsets = offsets[:lead] + offsets[lead + drop:]
            special = special[:lead] + special[lead + drop:]
        return tokens, offsets, special

    def _split_static(self, tokens, offsets, special, static_chars: int) -> int:
        """Number of leading tokens that lie wholly inside prompt[:static_chars]."""
        if static_chars <= 0:
            return 0
        count = 0
        for index, (start, end) in enumerate(offsets):
            if not special[index] and end > static_chars:
                break
            count = index + 1
        # Always leave a few tokens to the dynamic part (CTranslate2 needs a non-empty prompt).
        return max(0, min(count, len(tokens) - 2))

    # --- generation ----------------------------------------------------------------------
    def generate_stream(
        self, request: GenerationRequest, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        """Pieces as they are decoded. Generation runs on a helper thread and stops within a
        step when the consumer stops iterating."""
        import queue

        pieces: queue.Queue = queue.Queue()
        stop = cancel or threading.Event()
        done = object()

        def work() -> None:
            try:
                self._generate(request, stop, pieces.put)
            finally:
                pieces.put(done)

        worker = threading.Thread(target=work, name="repolsp-stream", daemon=True)
        worker.start()
        try:
            while (piece := pieces.get()) is not done:
                yield piece
        finally:
            stop.set()
            worker.join()

    def generate(
        self, request: GenerationRequest, cancel: threading.Event | None = None
    ) -> GenerationResult:
        return self._generate(request, cancel, None)

    def _heal(self, static, dynamic, heal_text, cache_static: bool) -> list[str]:
        return heal(self.generator, self.tokenizer, self._token_texts(), static, dynamic, heal_text,
                    cache_static)

    def _generate(self, request: GenerationRequest, cancel, on_piece) -> GenerationResult:
        start = time.perf_counter()
        tokens, offsets, special = self._encode_prompt(request)
        n_static = self._split_static(tokens, offsets, special, request.static_prefix_chars)
        static, dynamic = tokens[:n_static], tokens[n_static:]
        key = tuple(static)
        cache_static = False
        if static:
            if key in self._cached_prefixes:
                self.prefix_cache_hits += 1
                self._cached_prefixes.move_to_end(key)
                cache_static = True
            else:
                self.prefix_cache_misses += 1
                cache_static = self._room_for(static)
                if cache_static:
                    self._cached_prefixes[key] = None
                else:
                    self._uncached_prefix = True
        if static and not cache_static:
            # An uncached static_prompt still costs CTranslate2 a copy of its state: as one plain
            # prompt a 416-token request peaks 86 MB above idle instead of 145 (bench/RESULTS.md).
            static, dynamic = [], tokens

        result = GenerationResult(text="", prompt_tokens=len(tokens))
        # Decoding starts from a context token so that decoders which strip a leading space
        # from the first token (SentencePiece) still give the exact text.
        heal_text = request.prompt[offsets[-1][0]:] if request.heal else ""
        if heal_text and len(dynamic) >= 2 and not special[-1]:
            context = [tokens[-2]]
            if request.temperature <= 0:
                # Greedy: when the model's own first tokens re-produce heal_text they are what
                # healing would choose, so one call does both (the separate healing step cost
                # ~110 ms a request on the bench session); otherwise heal as below.
                state = self._decode(request, static, dynamic[:-1], cache_static, context,
                                     heal_text, cancel, on_piece, start, result, pending=True)
                if state is not None:
                    return self._finish(request, result, state, start)
            try:
                chosen = self._heal(static, dynamic[:-1], heal_text, cache_static)
                state = self._decode(request, static, dynamic[:-1] + chosen, cache_static,
                                     context + chosen, heal_text, cancel, on_piece, start, result)
                return self._finish(request, result, state, start)
            except LookupError:
                pass
        state = self._decode(request, static, dynamic, cache_static, [tokens[-1]], "", cancel,
                             on_piece, start, result)
        return self._finish(request, result, state, start)

    def _piece_text(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id], skip_special_tokens=True)

    def _decode(self, request, static, dynamic, cache_static, head, healed, cancel, on_piece,
                start, result, pending: bool = False) -> dict | None:
        """Generate after `dynamic`; the text starts after head's context token and `healed`.
        With `pending`, the first tokens must re-produce `healed` (at most 3 of them); None when
        they do not."""
        head_ids = [self.tokenizer.token_to_id(t) for t in head]
        head_ids = [i for i in head_ids if i is not None]
        # The head decodes to: context token + healed text (+ what the chosen tokens add).
        context_len = len(self.tokenizer.decode(head_ids[:1], skip_special_tokens=False))
        skip = context_len + len(healed) if healed else len(
            self.tokenizer.decode(head_ids, skip_special_tokens=False)
        )
        sampling = (
            {"sampling_topk": 1}
            if request.temperature <= 0
            else {"sampling_topk": 40, "sampling_temperature": request.temperature}
        )
        text = self.tokenizer.decode(head_ids, skip_special_tokens=False)[skip:]
        state = {"finish": "length", "text": text, "emitted": 0, "ids": [],
                 "remaining": healed if pending else "", "heal_tokens": 0, "failed": False}
        ids = state["ids"]

        def emit(new_text: str) -> None:
            piece = new_text[state["emitted"]:]
            state["emitted"] = len(new_text)
            if piece and on_piece is not None:
                on_piece(piece)

        def heal_step(token_id: int) -> bool:
            """Whether the token keeps re-producing the healed text (True: go on)."""
            remaining, piece = state["remaining"], self._piece_text(token_id)
            state["heal_tokens"] += 1
            if piece.startswith(remaining):
                state["remaining"] = ""
            elif piece and remaining.startswith(piece) and state["heal_tokens"] < 3:
                state["remaining"] = remaining[len(piece):]
            else:
                state["failed"] = True
            return not state["failed"]

        def on_step(step) -> bool:
            # Called by CTranslate2 after each decoded token; True stops decoding. (Breaking
            # out of generate_tokens instead leaves a thread that aborts the process at exit.)
            if not result.first_token_ms:
                result.first_token_ms = (time.perf_counter() - start) * 1000
            if cancel is not None and cancel.is_set():
                state["finish"] = "cancelled"
                return True
            if state["remaining"] and (step.token in self.end_tokens
                                       or not heal_step(step.token_id)):
                state["failed"] = True
                return True
            if step.token in self.end_tokens:
                state["finish"] = "eos"
                return True
            ids.append(step.token_id)
            if state["remaining"]:
                return False
            decoded = self.tokenizer.decode(head_ids + ids, skip_special_tokens=False)
            if decoded.endswith("\ufffd"):
                return False  # an incomplete UTF-8 sequence: wait for the next byte token
            text = decoded[skip:]
            cut = find_stop(text, request.stop)
            if cut >= 0:
                state["text"], state["finish"] = text[:cut], "stop"
                emit(state["text"])
                return True
            state["text"] = text
            if request.should_stop is not None and request.should_stop(text):
                state["finish"] = "stop"
                emit(text)
                return True
            emit(text)
            return len(ids) - state["heal_tokens"] >= request.max_new_tokens

        self.generator.generate_batch(
            [dynamic],
            static_prompt=static or None,
            cache_static_prompt=cache_static,
            max_length=request.max_new_tokens + (3 if pending else 0),
            end_token=self.end_tokens or None,
            include_prompt_in_result=False,
            callback=on_step,
            **sampling,
        )
        if state["finish"] != "cancelled" and (state["failed"] or state["remaining"]):
            result.first_token_ms = 0.0  # the tokens shown come from the next call
            return None
        state["new_tokens"] = len(ids) - state["heal_tokens"]
        result.healed = healed
        return state

    @staticmethod
    def _finish(request, result: GenerationResult, state: dict, start: float) -> GenerationResult:
        finish = state["finish"]
        if finish == "length" and state["new_tokens"] < request.max_new_tokens:
            finish = "eos"
        result.text = state["text"]
        result.new_tokens = state["new_tokens"]
        result.finish_reason = finish
        result.total_ms = (time.perf_counter() - start) * 1000
        return result

    def score(self, prompt: str, continuations: list[str], max_context_tokens: int = 256) -> list[float]:
        """Mean log-probability per token of each continuation right after prompt."""
        return mean_log_probs(self.generator, self.tokenizer, prompt, continuations, max_context_tokens)

    def stats(self) -> dict:
        return {
            "engine": self.name,
            "model": self.model_name,
            "device": "cpu",
            "computeType": self.compute_type,
            "threads": self.threads,
            "prefixCacheHits": self.prefix_cache_hits,
            "prefixCacheMisses": self.prefix_cache_misses,
            "prefixCacheEntries": len(self._cached_prefixes),
            "prefixCacheMb": round(self._cached_bytes() / 2**20, 1),
            "cacheReloads": self.reloads,
        }
