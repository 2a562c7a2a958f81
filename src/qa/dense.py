"""Dense retrieval over sentence vectors in FAISS, scored per passage.

Each passage is embedded sentence by sentence; a passage's dense score is the best
cosine (inner product of L2-normalised vectors) among its sentences. A question usually
matches one sentence, and sentence encoders average their input, so a whole passage
embedded at once blurs that sentence: on CMRC 2018 trial paragraphs the best sentence
ranks the right passage first for 96.9% of questions with multilingual-e5-small (81% with
USE), the whole passage for 95.3% (75%); both together, 97.4%, add nothing once fused
with BM25 and double the embedding work (scripts/sweep.py --units).

Rows are stored in passage order; `owners[row]` is the passage a row belongs to. The
same rows are kept as float16 in `vectors` (memory-mapped from the snapshot): they give
exact cosines for re-ranking, for BM25's candidates and for the reader.

The FAISS index is chosen by size (`choose_factory`): exact search ("Flat") up to
`exact_max_vectors` rows; beyond that RaBitQ codes scanned with SIMD ("RaBitQfs": one
bit a dimension plus a few floats, 57 bytes a 384-d sentence instead of 1.5 KB), whose
best few hundred rows are then re-scored exactly. Measured on the benchmark's 100k
passages with multilingual-e5-small (774,739 sentence vectors, 1,002 questions), dense
recall@1 exact 0.436: RaBitQ 0.433; 4-bit product quantisation, the previous choice,
0.167 with 2 dimensions a code ("PQ96x4fs") and 0.384 with one code per 2 dimensions
("PQ192x4fs", 96 bytes) — e5 packs its cosines into a narrow range that product codes
blur, where USE's (0.998 recall@10 with PQ) they did not. Inverted-file indexes (IVF)
were measured and rejected: questions sit far from the sentences they match, and
probing a quarter of the lists still missed 7% of the exact top 10 (docs/benchmarks.md).
RaBitQ trains nothing but a centroid, so an update simply builds the index again.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

__all__ = ["DenseIndex", "choose_factory"]

# Rows added to FAISS per call: bounds the float32 copy made while building.
_ADD_BATCH = 65_536
_TRAIN_ROWS = 65_536  # rows sampled to train the codes (RaBitQ: their centroid)
# Rows of an approximate search re-scored exactly: at least 400, more as the index grows
# (one per 4,000 rows), for recall@10 ≥ 0.99 against exact search on the benchmark
# (0.999 at 77k rows; at 7.7M rows 400 gave 0.969, 2,000 gave 0.9997).
_RERANK_MIN_ROWS = 400
_RERANK_ROWS_PER = 4_000
# Below this many rows exact search costs next to nothing.
_MIN_APPROXIMATE = 1_000


def choose_factory(vectors: int, dimension: int, *, exact_max_vectors: int) -> str:
    """FAISS factory string for an index of `vectors` rows of `dimension` floats."""
    if vectors <= max(exact_max_vectors, _MIN_APPROXIMATE):
        return "Flat"
    return "RaBitQfs"


class DenseIndex:
    def __init__(self, index: faiss.Index, owners: np.ndarray, vectors: np.ndarray) -> None:
        if not (index.ntotal == len(owners) == len(vectors)):
            raise ValueError(f"{index.ntotal} indexed vectors, {len(owners)} owners, {len(vectors)} stored vectors")
        if len(owners) and np.any(np.diff(owners) < 0):
            raise ValueError("vectors must be stored in passage order")
        self._index = index
        self._owners = owners
        self._vectors = vectors
        self.exact = isinstance(index, faiss.IndexFlat)
        self.rerank_rows = max(_RERANK_MIN_ROWS, index.ntotal // _RERANK_ROWS_PER)

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        owners: np.ndarray,
        *,
        exact_max_vectors: int,
        seed: int = 0,
    ) -> DenseIndex:
        """Index sentence vectors (rows L2-normalised, float16 or float32, in passage order).

        `vectors` may be memory-mapped: it is read a batch at a time.
        """
        if vectors.ndim != 2 or vectors.shape[0] == 0:
            raise ValueError(f"expected a non-empty (rows, dimension) array, got shape {vectors.shape}")
        factory = choose_factory(len(vectors), vectors.shape[1], exact_max_vectors=exact_max_vectors)
        index = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
        if not index.is_trained:
            rng = np.random.default_rng(seed)
            sample = np.sort(rng.choice(len(vectors), size=min(len(vectors), _TRAIN_ROWS), replace=False))
            index.train(np.asarray(vectors[sample], dtype=np.float32))
        for start in range(0, len(vectors), _ADD_BATCH):
            index.add(np.ascontiguousarray(vectors[start : start + _ADD_BATCH], dtype=np.float32))
        return cls(index, np.asarray(owners, dtype=np.int32), vectors)

    @property
    def size(self) -> int:
        """Number of passages (every passage has at least one vector)."""
        return int(self._owners[-1]) + 1 if len(self._owners) else 0

    @property
    def vectors(self) -> int:
        return int(self._index.ntotal)

    @property
    def stored_vectors(self) -> np.ndarray:
        """The float16 rows used for exact scores (memory-mapped once saved and loaded)."""
        return self._vectors

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    @property
    def description(self) -> dict:
        """What the manifest records: the factory string and how results are re-scored."""
        described = {"factory": _factory_of(self._index), "exact": self.exact}
        if not self.exact:
            described["rerank_rows"] = self.rerank_rows
        return described

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and numbers of up to `k` best passages, best first."""
        query = _as_row(query)
        depth = min(self.vectors, max(4 * k, 32 if self.exact else self.rerank_rows))
        scores, rows = self._index.search(query, depth)
        rows = rows[0][rows[0] >= 0]
        if self.exact:
            scores = scores[0][: len(rows)]
        else:  # approximate scores choose the rows; exact ones rank them
            rows = np.sort(rows)  # ascending rows read the mapped file in order
            scores = np.asarray(self._vectors[rows], dtype=np.float32) @ query[0]
            order = np.argsort(-scores, kind="stable")
            scores, rows = scores[order], rows[order]
        owners = self._owners[rows]
        # rows are now best first: a passage's first row is its best sentence
        _, first = np.unique(owners, return_index=True)
        first = np.sort(first)[:k]
        return scores[first].astype(np.float32), owners[first].astype(np.int64)

    def scores_of(self, query: np.ndarray, passages: np.ndarray) -> np.ndarray:
        """Exact scores of the given passages (for candidates found by BM25 only)."""
        if len(passages) == 0:
            return np.zeros(0, dtype=np.float32)
        passages = np.asarray(passages, dtype=self._owners.dtype)  # another dtype would copy the array per call
        starts = np.searchsorted(self._owners, passages, side="left")
        ends = np.searchsorted(self._owners, passages, side="right")
        rows = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)])
        cosines = np.asarray(self._vectors[rows], dtype=np.float32) @ _as_row(query)[0]
        return np.maximum.reduceat(cosines, np.cumsum(ends - starts) - (ends - starts)).astype(np.float32)

    def rows_of(self, passage: int) -> slice:
        """The rows of a passage's sentences."""
        key = self._owners.dtype.type(passage)  # another dtype would copy the array per call
        return slice(int(np.searchsorted(self._owners, key, side="left")), int(np.searchsorted(self._owners, key, side="right")))

    def vectors_of(self, passage: int) -> np.ndarray:
        """A passage's sentence vectors, in sentence order, as stored (float16)."""
        return self._vectors[self.rows_of(passage)]

    def sentence_scores(self, query: np.ndarray, passage: int) -> np.ndarray:
        """Cosine of each of a passage's sentence vectors with the query, in sentence order."""
        return np.asarray(self.vectors_of(passage), dtype=np.float32) @ _as_row(query)[0]

    def save(self, index_path: Path, owners_path: Path) -> None:
        faiss.write_index(self._index, str(index_path))
        np.save(owners_path, self._owners, allow_pickle=False)

    @classmethod
    def load(cls, index_path: Path, owners_path: Path, vectors: np.ndarray) -> DenseIndex:
        # codes memory-mapped where FAISS can (flat codes), read otherwise
        index = faiss.read_index(str(index_path), faiss.IO_FLAG_MMAP_IFC)
        return cls(index, np.load(owners_path, allow_pickle=False), vectors)


def _factory_of(index: faiss.Index) -> str:
    if isinstance(index, faiss.IndexRaBitQFastScan):
        return "RaBitQfs"
    if isinstance(index, faiss.IndexPQFastScan):  # indexes written before RaBitQ
        return f"PQ{index.pq.M}x4fs"
    return "Flat"


def _as_row(query: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
