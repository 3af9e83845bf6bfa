"""BM25 over chunk terms, with incremental add/remove and lazy deletion.

Written here (about 60 lines) rather than taken from a package: the index needs incremental
add/remove of single files, lazy deletion and a recency boost, which the common packages
(``rank-bm25``) do not offer without rebuilding the whole corpus.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter

import numpy as np


class Bm25:
    """Okapi BM25 over chunks with incremental add and lazy delete.

    Postings are append-only ``array``s (cheap to grow one file at a time); a query views them
    as numpy arrays without copying, so scoring a 40k-chunk repository takes a few ms.
    """

    k1 = 1.2
    b = 0.75

    def __init__(self) -> None:
        self.postings: dict[str, tuple[array, array]] = {}
        self.lengths = array("I")
        self.alive = bytearray()
        self.dead = 0
        self.total_length = 0

    def add(self, terms: list[str]) -> int:
        chunk_id = len(self.lengths)
        self.lengths.append(len(terms))
        self.alive.append(1)
        self.total_length += len(terms)
        for term, tf in Counter(terms).items():
            ids_tfs = self.postings.get(term)
            if ids_tfs is None:
                ids_tfs = self.postings[term] = (array("I"), array("H"))
            ids_tfs[0].append(chunk_id)
            ids_tfs[1].append(min(tf, 65535))
        return chunk_id

    def remove(self, chunk_id: int) -> None:
        if self.alive[chunk_id]:
            self.alive[chunk_id] = 0
            self.dead += 1
            self.total_length -= self.lengths[chunk_id]

    @property
    def size(self) -> int:
        return len(self.alive) - self.dead

    def top(self, query_terms: list[str], count: int, max_terms: int = 24) -> list[tuple[float, int]]:
        """The ``count`` best (score, chunk id) pairs for ``query_terms``, best first."""
        n = self.size
        if n == 0 or count <= 0:
            return []
        average = max(self.total_length / n, 1.0)
        weighted = []
        for term in dict.fromkeys(query_terms):  # not set(): its order varies between processes
            ids_tfs = self.postings.get(term)
            if ids_tfs is None:
                continue
            df = len(ids_tfs[0])  # dead postings inflate df slightly until compaction: harmless
            if df > 0.25 * n and n > 50:
                continue  # near-universal term: no signal, and the longest posting list
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            weighted.append((idf, term, ids_tfs))
        if not weighted:
            return []
        # Ties in idf broken by the term, so the same query keeps the same terms in any process.
        weighted.sort(key=lambda item: (-item[0], item[1]))
        lengths = np.frombuffer(self.lengths, dtype=np.uint32).astype(np.float32)
        norms = self.k1 * (1 - self.b + self.b * lengths / average)
        totals = np.zeros(len(self.lengths), dtype=np.float32)
        for idf, _, (ids_array, tfs_array) in weighted[:max_terms]:
            # Copied, not viewed: a live view would make the next append raise BufferError.
            ids = np.frombuffer(ids_array, dtype=np.uint32).copy()
            tfs = np.frombuffer(tfs_array, dtype=np.uint16).astype(np.float32)
            # A chunk occurs once per term's postings, so plain fancy-index += is exact.
            totals[ids] += idf * tfs * (self.k1 + 1) / (tfs + norms[ids])
        totals *= np.frombuffer(self.alive, dtype=np.uint8).astype(np.float32)
        count = min(count, int(np.count_nonzero(totals)))
        if count <= 0:
            return []
        best = np.argpartition(-totals, count - 1)[:count] if count < len(totals) else np.arange(len(totals))
        best = best[np.argsort(-totals[best], kind="stable")]
        return [(float(totals[i]), int(i)) for i in best if totals[i] > 0]
