"""Retrieve passages for a question: BM25, dense, or both fused.

Fusion re-scores the union of both retrievers' candidates with
    w · bm25 / max(bm25) + (1 − w) · max(0, 1 − (best cosine − cosine) / s),
w and s being the embedding model's own (`Settings.fusion_for`). Dividing BM25 by the
best candidate's score puts it on a [0, 1] scale without discarding how much better the
best match is, which rank fusion (RRF) throws away: with a dense model much weaker than
BM25, plain RRF loses to BM25 alone. A cosine counts by how far it lies below the best
candidate's, in units of s, the spread that matters for the model: USE's cosines range
over 0–1 (s = 1, which ranks exactly as the plain cosine does), e5's within 0.7–0.9
(s = 0.15). With e5's cosines used plainly, BM25 had to be weighted 0.1 to gain anything;
stretched over the candidates' own range, near-ties among a large corpus's distractors
were blown up to the whole range and hybrid fell below BM25 (README, "How the defaults
were chosen").
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np

from .config import Settings
from .embed import Embedder
from .chunk import Passage
from .reader import PassageInput
from .store import Snapshot
from .text import simplified
from .tokens import Tokenizer

__all__ = ["Mode", "ScoredPassage", "Retriever"]

Mode = Literal["hybrid", "bm25", "dense"]
T = TypeVar("T")


@dataclass(frozen=True)
class ScoredPassage:
    """A passage (by its position in the snapshot) with its fused and per-retriever scores."""

    index: int
    score: float
    bm25: float
    dense: float


class Retriever:
    def __init__(
        self,
        snapshot: Snapshot,
        *,
        embedder: Embedder,
        tokenizer: Tokenizer,
        settings: Settings,
        executor: Executor | None = None,
    ) -> None:
        """`executor`: threads on which BM25 and the dense index's segments are searched
        side by side (None: one after another, in the caller's thread). Its tasks never
        wait on each other, so callers may share it, but must not call `search` from it."""
        if embedder.name != snapshot.manifest.settings.model:
            raise ValueError(f"index was built with {snapshot.manifest.settings.model!r}, not {embedder.name!r}")
        self.snapshot = snapshot
        self._embedder = embedder
        self._tokenizer = tokenizer
        self._settings = settings
        self._executor = executor
        self._fusion = settings.fusion_for(embedder.name)  # the model is fixed: derive once

    def embed_questions(self, questions: list[str]) -> np.ndarray:
        return self._embedder.encode_queries([simplified(q) for q in questions])

    def sentence_scores(self, question_vector: np.ndarray, passage: int) -> np.ndarray:
        """Cosine of the question with each sentence (clause) of a passage, as indexed."""
        return self.snapshot.dense.sentence_scores(question_vector, passage)

    def passages(self, scored: list[ScoredPassage]) -> list[Passage]:
        """The passages found, read from the index's database in one query."""
        return self.snapshot.passages_at([r.index for r in scored])

    def reader_inputs(
        self, scored: list[ScoredPassage], passages: list[Passage], question_vector: np.ndarray | None
    ) -> list[PassageInput]:
        """What the reader reads of the passages found: the one assembly of reader inputs,
        for serving, evaluation and fitting alike."""
        return [
            PassageInput(
                passage.text,
                r.score,
                r.dense,
                tuple(self.sentence_scores(question_vector, r.index).tolist()) if question_vector is not None else (),
            )
            for r, passage in zip(scored, passages)
        ]

    def search(
        self,
        question: str,
        *,
        k: int,
        mode: Mode = "hybrid",
        question_vector: np.ndarray | None = None,
        query_tokens: list[str] | None = None,
    ) -> list[ScoredPassage]:
        """The `k` best passages for `question`, best first.

        `question_vector` and `query_tokens` may be passed when the caller has them already.
        """
        size = self.snapshot.size
        k = max(0, min(k, size))
        pool_size = min(max(self._settings.candidates, k), size)

        lexical_search: Future[tuple[np.ndarray, list[int]]] | None = None  # BM25 runs beside the dense search
        if mode in ("hybrid", "bm25"):
            if query_tokens is None:
                query_tokens = self._tokenizer.query_tokens(question)
            lexical_search = self._start(self._bm25, query_tokens, k if mode == "bm25" else pool_size)
        if mode == "bm25":
            bm25, found = lexical_search.result()
            return [ScoredPassage(i, float(bm25[i]), float(bm25[i]), 0.0) for i in found]

        if question_vector is None:
            question_vector = self.embed_questions([question])[0]
        dense_scores, dense_ids = self.snapshot.dense.search(
            question_vector, pool_size, map_segments=self._executor.map if self._executor is not None else map
        )
        if mode == "dense":
            return [ScoredPassage(int(i), float(s), 0.0, float(s)) for s, i in zip(dense_scores[:k], dense_ids[:k])]

        bm25, lexical_ids = lexical_search.result()
        known = dict(zip(dense_ids.tolist(), dense_scores.tolist()))
        missing = np.array([i for i in lexical_ids if i not in known], dtype=np.int64)
        known.update(zip(missing.tolist(), self.snapshot.dense.scores_of(question_vector, missing).tolist()))

        pool = np.fromiter(known.keys(), dtype=np.int64)
        cosine = np.clip(np.fromiter(known.values(), dtype=np.float32), 0.0, 1.0)
        best_bm25 = float(bm25.max())
        lexical = bm25[pool] / best_bm25 if best_bm25 > 0 else np.zeros(len(pool), dtype=np.float32)
        below_best = (float(cosine.max()) - cosine) / self._fusion.cosine_scale
        dense = np.clip(1.0 - below_best, 0.0, 1.0)
        fused = self._fusion.lexical_weight * lexical + (1.0 - self._fusion.lexical_weight) * dense
        order = np.lexsort((self.snapshot.keys[pool], -fused))[:k]
        return [
            ScoredPassage(int(pool[j]), float(fused[j]), float(bm25[pool[j]]), float(cosine[j]))
            for j in order
        ]

    def _bm25(self, query_tokens: list[str], k: int) -> tuple[np.ndarray, list[int]]:
        """Every passage's BM25 score, and the positions of the `k` best scoring above zero."""
        scores = self.snapshot.lexical.scores(query_tokens)
        return scores, [int(i) for i in _top(scores, k, self.snapshot.keys) if scores[i] > 0]

    def _start(self, function: Callable[..., T], *arguments) -> Future[T]:
        """`function(*arguments)` on the executor, or done now without one."""
        if self._executor is not None:
            return self._executor.submit(function, *arguments)
        done: Future[T] = Future()
        done.set_result(function(*arguments))
        return done


def _top(scores: np.ndarray, k: int, keys: np.ndarray) -> np.ndarray:
    """Positions of the `k` highest scores, best first, ties broken by key (passage id),
    so the order does not depend on how the index is split into segments."""
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k < len(scores):
        kth = -np.partition(-scores, k - 1)[k - 1]
        # every position tied with the k-th; never the zeros, which no caller keeps
        candidates = np.flatnonzero(scores >= kth) if kth > 0 else np.flatnonzero(scores > 0)
    else:
        candidates = np.arange(len(scores))
    return candidates[np.lexsort((keys[candidates], -scores[candidates]))][:k]
