"""Dense retrieval over sentence vectors in FAISS, scored per passage.

Each passage is embedded sentence by sentence; a passage's dense score is the best
cosine (inner product of L2-normalised vectors) among its sentences. A question usually
matches one sentence, and sentence encoders average their input, so a whole passage
embedded at once blurs that sentence: on CMRC 2018 trial paragraphs the best sentence
ranks the right passage first for 96.9% of questions with multilingual-e5-small (81% with
USE), the whole passage for 95.3% (75%); both together, 97.4%, add nothing once fused
with BM25 and double the embedding work (scripts/sweep.py --units).

Each segment of the index (qa.segment) has its own `SegmentVectors`: rows in document
order, `owners[row]` the document a row belongs to, and the rows themselves as int8 codes
with one scale per row (a quarter of float32; the cosine error, 3e-4 on average, is far
below the differences that rank e5's candidates), memory-mapped: they give the cosines for
re-ranking, for BM25's candidates and for the reader. `Dense` searches a commit's
segments and merges their results, leaving deleted documents out.

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
RaBitQ trains nothing but a centroid, so a merge simply builds the index again.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from . import arrays

__all__ = ["Dense", "SegmentVectors", "choose_factory", "map_for_random_reads", "quantize"]

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
_LARGE_SEGMENT_VECTORS = 100_000  # about 1 ms of scanning
_INT8 = 127.0


def choose_factory(vectors: int, dimension: int, *, exact_max_vectors: int) -> str:
    """FAISS factory string for an index of `vectors` rows of `dimension` floats."""
    if vectors <= max(exact_max_vectors, _MIN_APPROXIMATE):
        return "Flat"
    return "RaBitQfs"


def quantize(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 codes and per-row scales of float rows: row ≈ codes · scale."""
    rows = np.asarray(rows, dtype=np.float32)
    scales = np.maximum(np.abs(rows).max(axis=1), 1e-12) / _INT8 if len(rows) else np.zeros(0, np.float32)
    codes = np.rint(rows / scales[:, None]).astype(np.int8) if len(rows) else np.zeros(rows.shape, np.int8)
    return codes, scales.astype(np.float32)


@dataclass(frozen=True)
class SegmentVectors:
    """One segment's sentence vectors: FAISS index, owners and int8 rows, in document order."""

    index: faiss.Index
    owners: np.ndarray  # int32, ascending
    codes: np.ndarray  # int8, rows × dimension
    scales: np.ndarray  # float32, one per row

    _INDEX = "dense.faiss"
    _ARRAYS = ("owners", "codes", "scales")

    def __post_init__(self) -> None:
        if not (self.index.ntotal == len(self.owners) == len(self.codes) == len(self.scales)):
            raise ValueError(f"{self.index.ntotal} indexed vectors, {len(self.owners)} owners, {len(self.codes)} stored rows")

    @classmethod
    def build(cls, codes: np.ndarray, scales: np.ndarray, owners: np.ndarray, *, exact_max_vectors: int, seed: int = 0) -> SegmentVectors:
        """Index int8 rows (from `quantize`) owned by documents in ascending order."""
        if codes.ndim != 2 or codes.shape[0] == 0:
            raise ValueError(f"expected a non-empty (rows, dimension) array, got shape {codes.shape}")
        if np.any(np.diff(owners) < 0):
            raise ValueError("vectors must be stored in document order")
        factory = choose_factory(len(codes), codes.shape[1], exact_max_vectors=exact_max_vectors)
        index = faiss.index_factory(codes.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
        if not index.is_trained:
            rng = np.random.default_rng(seed)
            sample = np.sort(rng.choice(len(codes), size=min(len(codes), _TRAIN_ROWS), replace=False))
            index.train(_floats(codes, scales, sample))
        for start in range(0, len(codes), _ADD_BATCH):
            index.add(_floats(codes, scales, slice(start, start + _ADD_BATCH)))
        return cls(index, np.asarray(owners, dtype=np.int32), codes, np.asarray(scales, dtype=np.float32))

    @property
    def exact(self) -> bool:
        return isinstance(self.index, faiss.IndexFlat)

    @property
    def factory(self) -> str:
        if isinstance(self.index, faiss.IndexRaBitQFastScan):
            return "RaBitQfs"
        return "Flat"

    @property
    def dimension(self) -> int:
        return int(self.index.d)

    def rows_of(self, doc: int) -> slice:
        """The rows of a document's sentences."""
        key = self.owners.dtype.type(doc)  # another dtype would copy the array per call
        return slice(int(np.searchsorted(self.owners, key, side="left")), int(np.searchsorted(self.owners, key, side="right")))

    def cosines(self, query: np.ndarray, rows) -> np.ndarray:
        """Cosine of the query with the given rows (as stored: int8 · scale)."""
        return (self.codes[rows].astype(np.float32) @ query) * self.scales[rows]

    def search(self, query: np.ndarray, k: int, live: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Scores and documents of up to `k` best live documents, best first."""
        rerank = max(_RERANK_MIN_ROWS, self.index.ntotal // _RERANK_ROWS_PER)
        deleted = 0 if live is None else len(live) - int(np.count_nonzero(live))
        depth = min(int(self.index.ntotal), max(4 * k, 32 if self.exact else rerank) + 8 * deleted)
        _, rows = self.index.search(query.reshape(1, -1), depth)
        # FAISS's scores choose the rows; the stored rows score them, exactly as
        # `best_cosines` does, so a passage scores the same in any segment of any size
        rows = np.sort(rows[0][rows[0] >= 0])  # ascending rows read the mapped file in order
        scores = self.cosines(query, rows)
        order = np.argsort(-scores, kind="stable")
        scores, rows = scores[order], rows[order]
        owners = self.owners[rows]
        if live is not None:
            alive = live[owners]
            scores, owners = scores[alive], owners[alive]
        # rows are best first: a document's first row is its best sentence
        _, first = np.unique(owners, return_index=True)
        first = np.sort(first)
        if len(first) > k:  # keep documents tied with the k-th: the caller breaks ties
            first = first[scores[first] >= scores[first[k - 1]]] if k > 0 else first[:0]
        return scores[first].astype(np.float32), owners[first].astype(np.int64)

    def best_cosines(self, query: np.ndarray, docs: np.ndarray) -> np.ndarray:
        """Each document's best sentence cosine (for candidates found by BM25 only)."""
        if len(docs) == 0:
            return np.zeros(0, dtype=np.float32)
        docs = np.asarray(docs, dtype=self.owners.dtype)
        starts = np.searchsorted(self.owners, docs, side="left")
        ends = np.searchsorted(self.owners, docs, side="right")
        rows = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)])
        cosines = self.cosines(query, rows)
        return np.maximum.reduceat(cosines, np.cumsum(ends - starts) - (ends - starts)).astype(np.float32)

    def save(self, directory: Path) -> None:
        faiss.write_index(self.index, str(directory / self._INDEX))
        for name in self._ARRAYS:
            np.save(directory / f"{name}.npy", getattr(self, name), allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> SegmentVectors:
        # flat codes memory-mapped where FAISS can; the int8 rows always are
        index = faiss.read_index(str(directory / cls._INDEX), faiss.IO_FLAG_MMAP_IFC)
        path = {name: directory / f"{name}.npy" for name in cls._ARRAYS}
        owners, scales = (arrays.load(path[name]) for name in ("owners", "scales"))
        return cls(index, np.asarray(owners), map_for_random_reads(path["codes"]), scales)


class Dense:
    """Dense search over the live documents of a commit's segments, numbered in segment order."""

    def __init__(self, segments: Sequence[tuple[SegmentVectors, np.ndarray | None]], sizes: Sequence[int], keys: np.ndarray) -> None:
        """`segments`: each segment's vectors with its live mask (None: all live);
        `sizes`: each segment's document count; `keys`: each position's tie-breaking key."""
        self._segments = list(segments)
        self._keys = keys
        self._bases = np.cumsum([0, *sizes])
        self.dimension = self._segments[0][0].dimension if self._segments else 0
        self.vectors = sum(int(v.index.ntotal) for v, _ in self._segments)
        # side by side only when two segments or more are worth a thread: handing one over
        # costs more than scanning a small one
        self._side_by_side = sum(1 for v, _ in self._segments if v.index.ntotal >= _LARGE_SEGMENT_VECTORS) > 1

    def locate(self, position: int) -> tuple[int, int]:
        """(segment, document) of a position."""
        segment = int(np.searchsorted(self._bases, position, side="right")) - 1
        return segment, position - int(self._bases[segment])

    def search(self, query: np.ndarray, k: int, *, map_segments: Callable = map) -> tuple[np.ndarray, np.ndarray]:
        """Scores and positions of up to `k` best passages, best first.

        `map_segments` may be an executor's `map`, to search the segments side by side
        (FAISS and numpy release Python's lock while they scan) when two or more are large.
        """
        query = _as_row(query)
        found = list((map_segments if self._side_by_side else map)(lambda segment: segment[0].search(query, k, segment[1]), self._segments))
        scores = [found_scores for found_scores, _ in found]
        positions = [docs + base for (_, docs), base in zip(found, self._bases)]
        if not scores:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        scores, positions = np.concatenate(scores), np.concatenate(positions)
        order = np.lexsort((self._keys[positions], -scores))[:k]
        return scores[order], positions[order]

    def scores_of(self, query: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Best sentence cosine of each given passage."""
        query = _as_row(query)
        out = np.zeros(len(positions), dtype=np.float32)
        positions = np.asarray(positions, dtype=np.int64)
        segment_of = np.searchsorted(self._bases, positions, side="right") - 1
        for s in np.unique(segment_of):
            chosen = np.flatnonzero(segment_of == s)
            out[chosen] = self._segments[s][0].best_cosines(query, positions[chosen] - self._bases[s])
        return out

    def sentence_scores(self, query: np.ndarray, position: int) -> np.ndarray:
        """Cosine of the query with each of a passage's sentence vectors, in sentence order."""
        segment, doc = self.locate(position)
        vectors = self._segments[segment][0]
        return vectors.cosines(_as_row(query), vectors.rows_of(doc))


def map_for_random_reads(path: Path) -> np.ndarray:
    """A saved array memory-mapped read-only, with the kernel told that rows are read at random.

    Re-scoring reads a few hundred rows scattered over gigabytes. By default each page read
    from disk brings the device's read-ahead window around it (128 KB on most Linux disks,
    8 MB on the benchmark machine's), wasted on rows read at random; when the index is
    larger than the memory left for it, those pages push out ones other questions need
    (docs/benchmarks.md, "Serving within a memory limit").
    """
    with open(path, "rb") as file:
        shape, fortran_order, dtype = arrays.read_header(file)
        offset = file.tell()
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    if hasattr(mmap, "MADV_RANDOM"):  # not on every platform
        mapped.madvise(mmap.MADV_RANDOM)
    return np.ndarray(shape, dtype=dtype, buffer=mapped, offset=offset, order="F" if fortran_order else "C")


def _floats(codes: np.ndarray, scales: np.ndarray, rows) -> np.ndarray:
    return np.ascontiguousarray(codes[rows].astype(np.float32) * scales[rows][:, None])


def _as_row(query: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(-1))
