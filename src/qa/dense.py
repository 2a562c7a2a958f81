"""Dense retrieval over sentence vectors in FAISS, scored per passage.

Each passage is embedded sentence by sentence; a passage's dense score is the best
cosine (inner product of L2-normalised vectors) among its sentences. A question usually
matches one sentence, and sentence encoders such as USE average their input, so a whole
passage embedded at once blurs that sentence: on CMRC 2018 trial paragraphs the best
sentence ranks the right paragraph first for 81% of questions, the whole paragraph 75%.

Rows are stored in passage order; `owners[row]` is the passage a row belongs to.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

__all__ = ["DenseIndex"]


class DenseIndex:
    factory = "Flat"

    def __init__(self, index: faiss.Index, owners: np.ndarray) -> None:
        if index.ntotal != len(owners):
            raise ValueError(f"{index.ntotal} vectors but {len(owners)} owners")
        if len(owners) and np.any(np.diff(owners) < 0):
            raise ValueError("vectors must be stored in passage order")
        self._index = index
        self._owners = owners

    @classmethod
    def build(cls, vectors: np.ndarray, owners: np.ndarray) -> DenseIndex:
        if vectors.ndim != 2 or vectors.shape[0] == 0:
            raise ValueError(f"expected a non-empty (rows, dimension) array, got shape {vectors.shape}")
        index = faiss.index_factory(vectors.shape[1], cls.factory, faiss.METRIC_INNER_PRODUCT)
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(index, np.asarray(owners, dtype=np.int64))

    @property
    def size(self) -> int:
        """Number of passages (every passage has at least one vector)."""
        return int(self._owners[-1]) + 1 if len(self._owners) else 0

    @property
    def vectors(self) -> int:
        return int(self._index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and numbers of up to `k` best passages, best first."""
        depth = min(self.vectors, max(4 * k, 32))
        scores, rows = self._index.search(_as_row(query), depth)
        best: dict[int, float] = {}
        for score, row in zip(scores[0], rows[0]):
            if row < 0:
                continue
            passage = int(self._owners[row])
            if passage not in best:  # rows come best first
                best[passage] = float(score)
                if len(best) == k:
                    break
        return np.fromiter(best.values(), dtype=np.float32), np.fromiter(best.keys(), dtype=np.int64)

    def scores_of(self, query: np.ndarray, passages: np.ndarray) -> np.ndarray:
        """Exact scores of the given passages (for candidates found by BM25 only)."""
        query = _as_row(query)[0]
        out = np.zeros(len(passages), dtype=np.float32)
        starts = np.searchsorted(self._owners, passages, side="left")
        ends = np.searchsorted(self._owners, passages, side="right")
        for i, (start, end) in enumerate(zip(starts, ends)):
            out[i] = float((self._index.reconstruct_n(int(start), int(end - start)) @ query).max())
        return out

    def passage_vectors(self) -> list[np.ndarray]:
        """Every passage's sentence vectors (views into one array), in passage order."""
        everything = self._index.reconstruct_n(0, self.vectors)
        bounds = np.searchsorted(self._owners, np.arange(self.size + 1), side="left")
        return [everything[bounds[i] : bounds[i + 1]] for i in range(self.size)]

    def vectors_of(self, passage: int) -> np.ndarray:
        """A passage's sentence vectors, in sentence order."""
        start = int(np.searchsorted(self._owners, passage, side="left"))
        end = int(np.searchsorted(self._owners, passage, side="right"))
        return self._index.reconstruct_n(start, end - start)

    def sentence_scores(self, query: np.ndarray, passage: int) -> np.ndarray:
        """Cosine of each of a passage's sentence vectors with the query, in sentence order."""
        return self.vectors_of(passage) @ _as_row(query)[0]

    def save(self, index_path: Path, owners_path: Path) -> None:
        faiss.write_index(self._index, str(index_path))
        np.save(owners_path, self._owners, allow_pickle=False)

    @classmethod
    def load(cls, index_path: Path, owners_path: Path) -> DenseIndex:
        return cls(faiss.read_index(str(index_path)), np.load(owners_path, allow_pickle=False))


def _as_row(query: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
