"""BM25 over the passages' tokens, scored by the bm25s library."""

from __future__ import annotations

from pathlib import Path

import bm25s
import numpy as np

__all__ = ["LexicalIndex"]


class LexicalIndex:
    """A BM25 index whose documents are the passages, in passage order."""

    def __init__(self, model: bm25s.BM25) -> None:
        self._model = model

    @classmethod
    def build(cls, token_lists: list[list[str]], *, k1: float, b: float) -> LexicalIndex:
        if not token_lists:
            raise ValueError("cannot build a BM25 index over no passages")
        model = bm25s.BM25(k1=k1, b=b, method="lucene")
        model.index(token_lists, show_progress=False)
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
        return cls(bm25s.BM25.load(str(directory), load_corpus=False, allow_pickle=False))
