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

from .backend import LexicalHits, PassageIndex
from .config import Settings
from .embed import Embedder
from .chunk import Passage
from .reader import PassageInput
from .text import simplified
from .tokens import Tokenizer

__all__ = ["Mode", "ScoredPassage", "Retriever"]

Mode = Literal["hybrid", "bm25", "dense"]
T = TypeVar("T")


@dataclass(frozen=True)
class ScoredPassage:
    """A passage (by its id in the index searched) with its fused and per-retriever scores."""

    index: int
    score: float
    bm25: float
    dense: float


class Retriever:
    def __init__(
        self,
        index: PassageIndex,
        *,
        embedder: Embedder,
        tokenizer: Tokenizer,
        settings: Settings,
        executor: Executor | None = None,
    ) -> None:
        """`executor`: threads on which BM25 and the dense index's segments are searched
        side by side (None: one after another, in the caller's thread). Its tasks never
        wait on each other, so callers may share it, but must not call `search` from it."""
        if embedder.name != index.model:
            raise ValueError(f"index was built with {index.model!r}, not {embedder.name!r}")
        self.index = index
        self._embedder = embedder
        self._tokenizer = tokenizer
        self._settings = settings
        self._executor = executor
        self._fusion = settings.fusion_for(embedder.name)  # the model is fixed: derive once

    def embed_questions(self, questions: list[str]) -> np.ndarray:
        return self._embedder.encode_queries([simplified(q) for q in questions])

    def sentence_scores(self, question_vector: np.ndarray, passage: int) -> np.ndarray:
        """Cosine of the question with each sentence (clause) of a passage, as indexed."""
        return self.index.sentence_cosines(question_vector, passage)

    def passages(self, scored: list[ScoredPassage]) -> list[Passage]:
        """The passages found, read from the index's database in one query."""
        return self.index.passages_at([r.index for r in scored])

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
        size = self.index.size
        k = max(0, min(k, size))
        pool_size = min(max(self._settings.candidates, k), size)

        lexical_search: Future[LexicalHits] | None = None  # BM25 runs beside the dense search
        if mode in ("hybrid", "bm25"):
            if query_tokens is None:
                query_tokens = self._tokenizer.query_tokens(question)
            lexical_search = self._start(self.index.search_bm25, query_tokens, k if mode == "bm25" else pool_size)
        if mode == "bm25":
            found = lexical_search.result()
            scores = found.scores_of(np.array(found.ids, dtype=np.int64))
            return [ScoredPassage(i, float(s), float(s), 0.0) for i, s in zip(found.ids, scores)]

        if question_vector is None:
            question_vector = self.embed_questions([question])[0]
        dense_scores, dense_ids = self.index.search_dense(
            question_vector, pool_size, map_segments=self._executor.map if self._executor is not None else map
        )
        if mode == "dense":
            return [ScoredPassage(int(i), float(s), 0.0, float(s)) for s, i in zip(dense_scores[:k], dense_ids[:k])]

        lexical_hits = lexical_search.result()
        known = dict(zip(dense_ids.tolist(), dense_scores.tolist()))
        missing = np.array([i for i in lexical_hits.ids if i not in known], dtype=np.int64)
        known.update(zip(missing.tolist(), self.index.cosines(question_vector, missing).tolist()))

        pool = np.fromiter(known.keys(), dtype=np.int64)
        cosine = np.clip(np.fromiter(known.values(), dtype=np.float32), 0.0, 1.0)
        bm25 = lexical_hits.scores_of(pool)
        best_bm25 = lexical_hits.best
        lexical = bm25 / best_bm25 if best_bm25 > 0 else np.zeros(len(pool), dtype=np.float32)
        below_best = (float(cosine.max()) - cosine) / self._fusion.cosine_scale
        dense = np.clip(1.0 - below_best, 0.0, 1.0)
        fused = self._fusion.lexical_weight * lexical + (1.0 - self._fusion.lexical_weight) * dense
        order = np.lexsort((self.index.tie_keys(pool), -fused))[:k]
        return [ScoredPassage(int(pool[j]), float(fused[j]), float(bm25[j]), float(cosine[j])) for j in order]

    def _start(self, function: Callable[..., T], *arguments) -> Future[T]:
        """`function(*arguments)` on the executor, or done now without one."""
        if self._executor is not None:
            return self._executor.submit(function, *arguments)
        done: Future[T] = Future()
        done.set_result(function(*arguments))
        return done

