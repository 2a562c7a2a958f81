"""BM25 over the passages' tokens, scored by the bm25s library."""

from __future__ import annotations

from pathlib import Path

import bm25s
import numpy as np
import scipy.sparse as sp
from bm25s.scoring import _select_idf_scorer, _select_tfc_scorer

__all__ = ["LexicalIndex"]


class _CountingBM25(bm25s.BM25):
    """bm25s with its per-document counting loop replaced by whole-corpus numpy counting.

    bm25s documents `build_index_from_ids` as the place to change how the index is
    built; its own idf and term-frequency scorers still compute every score, so results
    are bm25s's (a test compares them). Rebuilding BM25 is most of an incremental update,
    and this makes it several times faster. Documents are counted a block at a time, in
    two passes (document frequencies, then scores), so memory stays near the size of the
    finished matrix even for a million passages.
    """

    _BLOCK = 20_000  # documents counted at once

    def build_index_from_ids(self, unique_token_ids, corpus_token_ids, show_progress=True, leave_progress=False):
        if self.method in self.methods_requiring_nonoccurrence:
            return super().build_index_from_ids(unique_token_ids, corpus_token_ids, show_progress, leave_progress)
        documents, vocabulary = len(corpus_token_ids), len(unique_token_ids)
        lengths = np.fromiter((len(ids) for ids in corpus_token_ids), dtype=np.int64, count=documents)
        blocks = range(0, documents, self._BLOCK)

        document_frequency = np.zeros(vocabulary, dtype=np.int64)
        for start in blocks:
            _, tokens, _ = _count(corpus_token_ids, lengths, start, min(start + self._BLOCK, documents), vocabulary)
            document_frequency += np.bincount(tokens, minlength=vocabulary)
        idf_of = _select_idf_scorer(self.idf_method)
        values = np.unique(document_frequency[document_frequency > 0])
        idf_by_df = dict(zip(values.tolist(), (idf_of(int(df), N=documents) for df in values)))
        idf = np.zeros(vocabulary, dtype=self.dtype)
        present = document_frequency > 0
        idf[present] = [idf_by_df[df] for df in document_frequency[present].tolist()]
        tfc_of = _select_tfc_scorer(self.method)
        average_length = lengths.mean() if documents else 0.0

        data, indices, row_sizes = [], [], []
        for start in blocks:
            end = min(start + self._BLOCK, documents)
            document_of, token_of, term_frequency = _count(corpus_token_ids, lengths, start, end, vocabulary)
            tfc = tfc_of(
                tf_array=term_frequency.astype(self.dtype),
                l_d=lengths[start:end][document_of],
                l_avg=average_length,
                k1=self.k1,
                b=self.b,
                delta=self.delta,
            )
            data.append((idf[token_of] * tfc).astype(self.dtype))
            indices.append(token_of.astype(np.int32))
            row_sizes.append(np.bincount(document_of, minlength=end - start))
        indptr = np.concatenate([[0], np.cumsum(np.concatenate(row_sizes))]) if documents else np.zeros(1, np.int64)
        # rows are documents here; scipy's CSR → CSC conversion regroups them by token
        matrix = sp.csr_matrix(
            (np.concatenate(data), np.concatenate(indices), indptr), shape=(documents, vocabulary), dtype=self.dtype
        ).tocsc()
        self.nonoccurrence_array = None
        return {"data": matrix.data, "indices": matrix.indices, "indptr": matrix.indptr, "num_docs": documents}


def _count(corpus_token_ids, lengths: np.ndarray, start: int, end: int, vocabulary: int):
    """(document − start, token, count) of every distinct token of documents [start, end),
    sorted by document then token."""
    if end <= start:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    flat = np.concatenate([np.asarray(corpus_token_ids[i], dtype=np.int64) for i in range(start, end)])
    keys = np.repeat(np.arange(end - start, dtype=np.int64), lengths[start:end]) * vocabulary + flat
    pairs, counts = np.unique(keys, return_counts=True)
    return pairs // vocabulary, pairs % vocabulary, counts


class LexicalIndex:
    """A BM25 index whose documents are the passages, in passage order."""

    def __init__(self, model: bm25s.BM25) -> None:
        self._model = model

    @classmethod
    def build(cls, token_lists: list[list[str]], *, k1: float, b: float) -> LexicalIndex:
        if not token_lists:
            raise ValueError("cannot build a BM25 index over no passages")
        model = _CountingBM25(k1=k1, b=b, method="lucene")
        model.index(token_lists, show_progress=False)
        return cls(model)

    @classmethod
    def build_from_ids(
        cls, id_lists: list[np.ndarray], vocabulary: dict[str, int], *, k1: float, b: float
    ) -> LexicalIndex:
        """Index documents given as token ids of `vocabulary` (no re-tokenizing, no re-interning)."""
        if not id_lists:
            raise ValueError("cannot build a BM25 index over no passages")
        model = _CountingBM25(k1=k1, b=b, method="lucene")
        model.index((list(id_lists), vocabulary), show_progress=False)
        return cls(model)

    @property
    def size(self) -> int:
        return int(self._model.scores["num_docs"])

    @property
    def params(self) -> dict:
        return {"k1": self._model.k1, "b": self._model.b, "method": self._model.method, "bm25s": bm25s.__version__}

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every passage for the query (zeros when nothing matches)."""
        ids = self._model.get_tokens_ids(query_tokens)
        if not ids:
            return np.zeros(self.size, dtype=np.float32)
        return self._model.get_scores_from_ids(ids)

    def save(self, directory: Path) -> None:
        self._model.save(str(directory), allow_pickle=False, show_progress=False)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        # Memory-mapped: the arrays are paged in as queries touch them, so a large index opens at once.
        return cls(bm25s.BM25.load(str(directory), load_corpus=False, allow_pickle=False, mmap=True))
