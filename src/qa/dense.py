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
`exact_max_vectors` rows; beyond that one sign bit a dimension ("CentredSignfs",
`centred_sign_codes`): each row minus the segment's mean, four signs to a 4-bit code that
FAISS's fast-scan product quantiser scans with SIMD, 48 bytes a 384-d sentence and 8
bytes of estimate factors instead of 1.5 KB. A question scores a row by its centred
components summed with the row's signs; the best rows by that score get RaBitQ's
one-bit estimate of their cosine (Gao & Long 2024: a slope and an offset of each row's
own, `sign_code_factors`), and the best estimates choose the passages to score exactly.
FAISS's own RaBitQ index ("RaBitQfs", the previous choice) makes the same estimates but
corrects every row one at a time as it scans: 5.5 ms a 775k-row segment, where the
fast-scan kernel alone takes 1.7 ms; correcting only the best 1,600 rows by score takes
2.5 ms in all, and finds the same rows (dense recall@10 against exact search 0.9957 both
ways at 1M passages, first 300 benchmark questions; docs/benchmarks.md). Product
quantisation with trained codebooks blurred e5's cosines, which lie in a narrow range
(dense recall@1 0.167 with "PQ96x4fs" at 100k passages against 0.436 exact), and so do
the signs of the rows as they are: their best 400 rows by score held 73% of the exact
top 10 rows, 98.5% with the mean taken out (one segment, 150 questions). Inverted-file
indexes (IVF) were measured and rejected: questions sit far from the sentences they
match, and probing a quarter of the lists still missed 7% of the exact top 10
(docs/benchmarks.md). The codes train nothing but the mean, so a merge simply builds
the index again.

What a question reads of the rows decides the memory a large index needs to serve. The
compressed segments' estimates are pooled, and only the best passages over all segments
(969 at 1M passages) are scored, each from its own rows, which lie together: about 1,700
pages of rows a question, where re-scoring the best 400 rows of each of 11 segments
read 4,400 pages scattered over 3 GB. Those reads go through `pread` (`RowFile`), so the
pages stay the kernel's page cache, dropped under memory pressure, instead of being
mapped into the process; bulk readers (merges, benchmarks) use the mapped `codes`.
"""

from __future__ import annotations

import functools
import itertools
import os
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from . import arrays

__all__ = ["Dense", "RowFile", "SegmentVectors", "centred_sign_codes", "choose_factory", "quantize", "sign_code_factors"]

# Rows added to FAISS per call: bounds the float32 copy made while building.
_ADD_BATCH = 65_536
_TRAIN_ROWS = 65_536  # rows sampled for the compressed codes' mean
_SIGNS_A_CODE = 4  # dimensions a fast-scan code stands for
_EXACT, _SIGN_CODES = "Flat", "CentredSignfs"  # the indexes' names, as segment.json records them
# Rows of a compressed segment wanted by estimate: at least 400, more as the segment grows
# (one per 4,000 rows). Cheap: the codes are in memory.
_ESTIMATED_MIN_ROWS = 400
_ESTIMATED_ROWS_PER = 4_000
# They are looked for among this many times as many rows, the best by sign-code score,
# all of them estimated: a row's estimate is its score times a slope plus an offset of
# its own, so the best by score are not quite the best by estimate. The best 400 by
# estimate among the best 1,600 by score hold 99.5% of the exact top 10 rows, as the best
# 400 among all rows do (one 775k-row segment of the 1M benchmark, 150 questions).
_SCANNED_PER_ESTIMATED = 4
# Passages scored exactly from their rows: the best estimates over all compressed
# segments, at least 4 per passage asked for and 400, and one more per 8,000 compressed
# rows, for dense recall@10 ≥ 0.99 against exact search on the benchmark (1,002
# questions): 0.992 with 400 at 775k rows; at 7.75M rows 0.977 with 400 (first 200
# questions), 0.992 with 800, 0.994 with 1,000 (docs/benchmarks.md).
_SCORED_MIN_PASSAGES = 400
_SCORED_PASSAGES_PER = 8_000
# Below this many rows exact search costs next to nothing.
_MIN_APPROXIMATE = 1_000
_LARGE_SEGMENT_VECTORS = 100_000  # about 1 ms of scanning
_INT8 = 127.0


def choose_factory(vectors: int, dimension: int, *, exact_max_vectors: int) -> str:
    """Name of the index for `vectors` rows of `dimension` floats: "Flat" (exact) or
    "CentredSignfs" (`centred_sign_codes`, for dimensions in groups of four)."""
    if vectors <= max(exact_max_vectors, _MIN_APPROXIMATE) or dimension % _SIGNS_A_CODE:
        return _EXACT
    return _SIGN_CODES


def centred_sign_codes(sample: np.ndarray) -> faiss.Index:
    """An empty FAISS index of the signs of vectors minus the mean of `sample`, four signs
    to a 4-bit code scanned with SIMD (FAISS's fast-scan product quantiser, whose 16
    centroids a code are set to the 16 sign patterns, so it trains nothing).

    A question scores a row by the sum of its centred components, each with the sign of
    the row's: not a cosine; `sign_code_factors` turn it into an estimate of one."""
    dimension = sample.shape[1]
    scan = faiss.IndexPQFastScan(dimension, dimension // _SIGNS_A_CODE, 4, faiss.METRIC_INNER_PRODUCT)
    patterns = ((np.arange(16)[:, None] >> np.arange(_SIGNS_A_CODE)) & 1) * 2.0 - 1.0  # code → signs
    # the nearest pattern to any four components is their signs: all have the same length
    faiss.copy_array_to_vector(np.tile(patterns, (scan.pq.M, 1)).astype(np.float32).ravel(), scan.pq.centroids)
    scan.pq.is_trained = scan.is_trained = True
    centring = faiss.CenteringTransform(dimension)
    centring.train(np.ascontiguousarray(sample, dtype=np.float32))
    index = faiss.IndexPreTransform(centring, scan)
    index.is_trained = True
    return index


def sign_code_factors(rows: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Each row's (slope, offset) such that slope · score + offset + question · centre
    estimates the row's inner product with a question, from the score its centred sign
    code gives the question (RaBitQ's one-bit estimator, Gao & Long 2024).

    With r = row − centre and s = sign(r), the question's centred part projects on r about
    as it does on s, scaled by how far s leans towards r: (q − c)·r ≈ (q − c)·s · |r|² / |r|₁;
    and q·row = (q − c)·r + row·c − |c|² + q·c."""
    centred = rows - centre
    absolute_sum = np.maximum(np.abs(centred).sum(axis=1), 1e-12)
    slopes = np.einsum("ij,ij->i", centred, centred) / absolute_sum
    offsets = rows @ centre - float(centre @ centre)
    return np.stack([slopes, offsets], axis=1).astype(np.float32)


def quantize(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 codes and per-row scales of float rows: row ≈ codes · scale."""
    rows = np.asarray(rows, dtype=np.float32)
    scales = np.maximum(np.abs(rows).max(axis=1), 1e-12) / _INT8 if len(rows) else np.zeros(0, np.float32)
    codes = np.rint(rows / scales[:, None]).astype(np.int8) if len(rows) else np.zeros(rows.shape, np.int8)
    return codes, scales.astype(np.float32)


class RowFile:
    """A saved segment's int8 rows, read by ranges with `pread` at question time.

    Read through a memory map, every page a question touches would stay mapped into the
    process; read so, they are only the kernel's page cache. POSIX_FADV_RANDOM keeps the
    device's read-ahead window (8 MB on the benchmark machine's disk, 128 KB on most) from
    coming with each read and pushing out pages other questions need (docs/benchmarks.md,
    "Serving within a memory limit").
    """

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as file:
            shape, fortran_order, dtype = arrays.read_header(file)
            self._offset = file.tell()
        if len(shape) != 2 or fortran_order or dtype != np.int8:
            raise ValueError(f"{path}: expected int8 rows in C order, found {dtype} {shape}{' in Fortran order' if fortran_order else ''}")
        self.shape = shape
        self._row_bytes = shape[1]
        self._fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self._fd)
        if hasattr(os, "posix_fadvise"):  # not on every platform
            os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_RANDOM)

    def read(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Rows start:end of each range, one after the other."""
        sizes = ((ends - starts) * self._row_bytes).tolist()
        offsets = (self._offset + starts * self._row_bytes).tolist()
        # one pread a range, called from C: a Python loop around them took 10% longer
        data = b"".join(map(os.pread, itertools.repeat(self._fd), sizes, offsets))
        if len(data) != sum(sizes):
            raise OSError(f"rows up to {int(ends.max())} of {self.shape[0]}: the file is shorter than its header says")
        return np.frombuffer(data, dtype=np.int8).reshape(-1, self._row_bytes)


@dataclass(frozen=True)
class SegmentVectors:
    """One segment's sentence vectors: FAISS index, owners and int8 rows, in document order.

    `codes` is every row as an array (mapped when loaded), for bulk readers; a question's
    reads go through `stored` when the rows were loaded from disk."""

    index: faiss.Index
    owners: np.ndarray  # int32, ascending
    codes: np.ndarray  # int8, rows × dimension
    scales: np.ndarray  # float32, one per row
    # float32, rows × 2, compressed segments only: each row's (slope, offset) turning its
    # sign-code score into an estimated cosine (`sign_code_factors`)
    factors: np.ndarray | None = None
    stored: RowFile | None = None

    _INDEX = "dense.faiss"
    _ARRAYS = ("owners", "codes", "scales")
    _FACTORS = "factors.npy"
    # a saved segment's files by what they hold: the index searched, the rows scored
    INDEX_FILES = (_INDEX, _FACTORS)
    ROW_FILES = tuple(f"{name}.npy" for name in _ARRAYS)

    def __post_init__(self) -> None:
        if not (self.index.ntotal == len(self.owners) == len(self.codes) == len(self.scales)):
            raise ValueError(f"{self.index.ntotal} indexed vectors, {len(self.owners)} owners, {len(self.codes)} stored rows")
        if (self.factors is None) != self.exact or (self.factors is not None and self.factors.shape != (len(self.codes), 2)):
            raise ValueError(f"a {self.factory} index with {'no' if self.factors is None else self.factors.shape} estimate factors for {len(self.codes)} rows")

    @classmethod
    def build(cls, codes: np.ndarray, scales: np.ndarray, owners: np.ndarray, *, exact_max_vectors: int, seed: int = 0) -> SegmentVectors:
        """Index int8 rows (from `quantize`) owned by documents in ascending order."""
        if codes.ndim != 2 or codes.shape[0] == 0:
            raise ValueError(f"expected a non-empty (rows, dimension) array, got shape {codes.shape}")
        if np.any(np.diff(owners) < 0):
            raise ValueError("vectors must be stored in document order")
        factors = None
        if choose_factory(len(codes), codes.shape[1], exact_max_vectors=exact_max_vectors) == _EXACT:
            index = faiss.IndexFlatIP(codes.shape[1])
        else:
            rng = np.random.default_rng(seed)
            sample = np.sort(rng.choice(len(codes), size=min(len(codes), _TRAIN_ROWS), replace=False))
            index = centred_sign_codes(_floats(codes, scales, sample))
            centre = _centre_of(index)
            factors = np.zeros((len(codes), 2), dtype=np.float32)
        for start in range(0, len(codes), _ADD_BATCH):
            batch = _floats(codes, scales, slice(start, start + _ADD_BATCH))
            index.add(batch)
            if factors is not None:
                factors[start : start + len(batch)] = sign_code_factors(batch, centre)
        return cls(index, np.asarray(owners, dtype=np.int32), codes, np.asarray(scales, dtype=np.float32), factors)

    @property
    def exact(self) -> bool:
        return isinstance(self.index, faiss.IndexFlat)

    @property
    def factory(self) -> str:
        return _EXACT if self.exact else _SIGN_CODES

    @functools.cached_property
    def centre(self) -> np.ndarray:
        """The mean a compressed index's codes are centred on."""
        return _centre_of(self.index)

    @property
    def dimension(self) -> int:
        return int(self.index.d)

    def rows_of(self, doc: int) -> slice:
        """The rows of a document's sentences."""
        key = self.owners.dtype.type(doc)  # another dtype would copy the array per call
        return slice(int(np.searchsorted(self.owners, key, side="left")), int(np.searchsorted(self.owners, key, side="right")))

    def cosines(self, query: np.ndarray, rows: slice) -> np.ndarray:
        """Cosine of the query with a range of rows (as stored: int8 · scale)."""
        return self._cosines(query, np.array([rows.start]), np.array([rows.stop]))

    def exact_search(self, query: np.ndarray, k: int, live: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """An exact segment's scores and documents of up to `k` best live documents, best
        first; scored from the stored rows, so a passage scores the same in any segment of
        any size (a compressed segment gives `estimates`, scored by `Dense.search`)."""
        depth = min(int(self.index.ntotal), max(4 * k, 32) + 8 * _deleted(live))
        _, rows = self.index.search(query.reshape(1, -1), depth)
        rows = np.sort(rows[0][rows[0] >= 0])  # ascending rows read the file in order
        scores = self._cosines(query, *_runs(rows))
        owners = self.owners[rows]
        if live is not None:
            alive = live[owners]
            scores, owners = scores[alive], owners[alive]
        docs, first = np.unique(owners, return_index=True)  # owners ascend with the rows
        best = np.maximum.reduceat(scores, first) if len(first) else np.zeros(0, np.float32)
        order = np.argsort(-best, kind="stable")
        best, docs = best[order], docs[order]
        if len(best) > k:  # keep documents tied with the k-th: the caller breaks ties
            kept = best >= best[k - 1] if k > 0 else np.zeros(len(best), dtype=bool)
            best, docs = best[kept], docs[kept]
        return best.astype(np.float32), docs.astype(np.int64)

    def estimates(self, query: np.ndarray, k: int, live: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The live documents of the FAISS index's best rows by sign-code score, enough
        for `k` documents, with their best estimated cosine, best first (estimates from the
        codes, not the stored rows')."""
        wanted = max(4 * k, _ESTIMATED_MIN_ROWS, self.index.ntotal // _ESTIMATED_ROWS_PER) + 8 * _deleted(live)
        scores, rows = self.index.search(query.reshape(1, -1), min(int(self.index.ntotal), _SCANNED_PER_ESTIMATED * wanted))
        found = rows[0] >= 0
        rows = rows[0][found]
        slopes, offsets = self.factors[rows].T
        estimates = slopes * scores[0][found] + offsets + float(query @ self.centre)
        if len(rows) > wanted:
            best = np.argpartition(-estimates, wanted - 1)[:wanted]
            estimates, rows = estimates[best], rows[best]
        owners = self.owners[rows]
        if live is not None:
            alive = live[owners]
            estimates, owners = estimates[alive], owners[alive]
        order = np.lexsort((owners, -estimates))  # best first: a document's first row is its best
        estimates, owners = estimates[order], owners[order]
        _, first = np.unique(owners, return_index=True)
        first = np.sort(first)
        return estimates[first], owners[first].astype(np.int64)

    def best_cosines(self, query: np.ndarray, docs: np.ndarray) -> np.ndarray:
        """Each document's best sentence cosine, from its stored rows."""
        if len(docs) == 0:
            return np.zeros(0, dtype=np.float32)
        docs = np.asarray(docs, dtype=self.owners.dtype)
        order = np.argsort(docs, kind="stable")  # ascending rows read the file in order
        starts = np.searchsorted(self.owners, docs[order], side="left")
        ends = np.searchsorted(self.owners, docs[order], side="right")
        cosines = self._cosines(query, starts, ends)
        best = np.empty(len(docs), dtype=np.float32)
        best[order] = np.maximum.reduceat(cosines, np.cumsum(ends - starts) - (ends - starts))
        return best

    def _cosines(self, query: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Cosines of the rows of each range start:end, one range after the other."""
        lengths = ends - starts
        rows = np.arange(int(lengths.sum())) + np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        codes = self.stored.read(starts, ends) if self.stored is not None else self.codes[rows]
        # einsum, not BLAS: OpenBLAS splits a product of a few thousand rows over threads,
        # which wait milliseconds for a core busy with BM25 or another question
        return np.einsum("ij,j->i", codes.astype(np.float32), query) * self.scales[rows]

    def save(self, directory: Path) -> None:
        faiss.write_index(self.index, str(directory / self._INDEX))
        for name in self._ARRAYS:
            np.save(directory / f"{name}.npy", getattr(self, name), allow_pickle=False)
        if self.factors is not None:
            np.save(directory / self._FACTORS, self.factors, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> SegmentVectors:
        # flat codes memory-mapped where FAISS can; the int8 rows are mapped for bulk
        # reads and read with pread for questions
        index = faiss.read_index(str(directory / cls._INDEX), faiss.IO_FLAG_MMAP_IFC)
        owners, codes, scales = (arrays.load(directory / f"{name}.npy") for name in cls._ARRAYS)
        factors = arrays.load(directory / cls._FACTORS) if (directory / cls._FACTORS).exists() else None
        return cls(index, np.asarray(owners), codes, scales, factors, RowFile(directory / "codes.npy"))


def _scored_passages(k: int, rows: int) -> int:
    """How many passages of the best estimates of compressed segments holding `rows`
    rows in all are scored exactly."""
    return max(4 * k, _SCORED_MIN_PASSAGES, rows // _SCORED_PASSAGES_PER)


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
        self._compressed_rows = sum(int(v.index.ntotal) for v, _ in self._segments if not v.exact)
        # side by side only when two segments or more are worth a thread: handing one over
        # costs more than scanning a small one
        self._side_by_side = sum(1 for v, _ in self._segments if v.index.ntotal >= _LARGE_SEGMENT_VECTORS) > 1

    def locate(self, position: int) -> tuple[int, int]:
        """(segment, document) of a position."""
        segment = int(np.searchsorted(self._bases, position, side="right")) - 1
        return segment, position - int(self._bases[segment])

    def search(self, query: np.ndarray, k: int, *, map_segments: Callable = map) -> tuple[np.ndarray, np.ndarray]:
        """Scores and positions of up to `k` best passages, best first.

        Exact segments give their best passages; the compressed ones their estimates, of
        which the best `_scored_passages` over all of them are then scored from their
        rows. `map_segments` may be an executor's `map`, to search the segments side by
        side (FAISS and numpy release Python's lock while they scan) when two or more are
        large.
        """
        query = _as_row(query)
        if not self._segments:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)

        def search_one(segment: tuple[SegmentVectors, np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
            vectors, live = segment
            return vectors.exact_search(query, k, live) if vectors.exact else vectors.estimates(query, k, live)

        found = list((map_segments if self._side_by_side else map)(search_one, self._segments))
        scores, positions, estimates, estimated = [], [], [], []
        for (vectors, _), base, (values, docs) in zip(self._segments, self._bases, found):
            if vectors.exact:
                scores.append(values)
                positions.append(docs + base)
            else:
                estimates.append(values)
                estimated.append(docs + base)
        if estimated:
            pooled = np.concatenate(estimated)
            best = np.lexsort((self._keys[pooled], -np.concatenate(estimates)))
            chosen = pooled[best[: _scored_passages(k, self._compressed_rows)]]
            scores.append(self.scores_of(query, chosen))
            positions.append(chosen)
        all_scores, all_positions = np.concatenate(scores), np.concatenate(positions)
        order = np.lexsort((self._keys[all_positions], -all_scores))[:k]
        return all_scores[order], all_positions[order]

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


def _runs(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ascending rows as ranges start:end of adjacent rows."""
    starts = np.flatnonzero(np.diff(rows, prepend=-2) != 1)
    return rows[starts], np.append(rows[starts[1:] - 1], rows[-1:]) + 1


def _deleted(live: np.ndarray | None) -> int:
    return 0 if live is None else len(live) - int(np.count_nonzero(live))


def _floats(codes: np.ndarray, scales: np.ndarray, rows) -> np.ndarray:
    return np.ascontiguousarray(codes[rows].astype(np.float32) * scales[rows][:, None])


def _centre_of(index: faiss.Index) -> np.ndarray:
    """The mean a `centred_sign_codes` index subtracts."""
    return faiss.vector_to_array(faiss.downcast_VectorTransform(index.chain.at(0)).mean)


def _as_row(query: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(-1))
