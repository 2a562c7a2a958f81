"""Ask a question of the index: retrieve, locate the answer, and shape the JSON contract."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .answer import Answer, Highlight, term_highlights
from .chunk import Passage
from .config import Settings
from .embed import Embedder, load_embedder
from .reader import PassageInput, Reader, RuleReader
from .search import Mode, Retriever
from .store import Snapshot, load_snapshot
from .tokens import Tokenizer

__all__ = ["Hit", "Response", "Assistant"]

MAX_QUESTION_CHARS = 500


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float
    passage: Passage
    answer: Answer | None
    highlights: tuple[Highlight, ...]

    def to_json(self) -> dict:
        return {
            "rank": self.rank,
            "score": round(self.score, 4),
            "passage_id": self.passage.id,
            "article": self.passage.article,
            "headings": list(self.passage.headings),
            "source": self.passage.source,
            "text": self.passage.text,
            "answer": self.answer.to_json() if self.answer else None,
            "highlights": [h.to_json() for h in self.highlights],
        }


@dataclass(frozen=True)
class Response:
    query: str
    hits: tuple[Hit, ...]
    no_answer: bool
    message: str | None = field(default=None)

    def to_json(self) -> dict:
        data = {"query": self.query, "no_answer": self.no_answer, "hits": [h.to_json() for h in self.hits]}
        if self.message:
            data["message"] = self.message
        return data


class Assistant:
    """Answers questions from one index snapshot; models are loaded once."""

    def __init__(
        self,
        settings: Settings,
        *,
        snapshot: Snapshot | None = None,
        embedder: Embedder | None = None,
        tokenizer: Tokenizer | None = None,
        reader: Reader | None = None,
    ) -> None:
        self.settings = settings
        self.snapshot = snapshot or load_snapshot(settings.index_dir)
        self.tokenizer = tokenizer or Tokenizer()
        self.tokenizer.warm_up()
        embedder = embedder or load_embedder(self.snapshot.manifest["model"]["name"])
        self.retriever = Retriever(self.snapshot, embedder=embedder, tokenizer=self.tokenizer, settings=settings)
        self.reader = reader or _load_reader(settings.reader, self.tokenizer)

    def ask(
        self,
        question: str,
        *,
        top_k: int | None = None,
        mode: Mode = "hybrid",
        question_vector: np.ndarray | None = None,
    ) -> Response:
        query = " ".join(question.split())
        message = None
        if len(query) > MAX_QUESTION_CHARS:
            query = query[:MAX_QUESTION_CHARS]
            message = f"问题过长，只使用了前{MAX_QUESTION_CHARS}个字。"
        query_tokens = self.tokenizer.query_tokens(query)
        if not query_tokens:
            return Response(query, (), True, "请输入一个具体的问题，例如：从武清坐城际到北京南站要多久？")

        k = top_k or self.settings.top_k
        scored = self.retriever.search(
            query,
            k=max(k, self.settings.read_passages),
            mode=mode,
            question_vector=question_vector,
            query_tokens=query_tokens,
        )
        if not scored:
            return Response(query, (), True, message)
        passages = [self.snapshot.passages[result.index] for result in scored]
        if question_vector is None and mode != "bm25":
            question_vector = self.retriever.embed_questions([query])[0]
        reading = self.reader.read(
            query,
            [
                PassageInput(
                    p.text,
                    r.score,
                    r.dense,
                    tuple(self.retriever.sentence_scores(question_vector, r.index).tolist())
                    if question_vector is not None
                    else (),
                )
                for p, r in zip(passages, scored)
            ],
        )
        order = list(range(len(scored)))
        if reading.best is not None and not reading.no_answer:
            order.remove(reading.best)
            order.insert(0, reading.best)  # the passage holding the best answer comes first
        terms = self.tokenizer.query_terms(query)
        hits = tuple(
            Hit(
                rank=rank,
                score=scored[i].score,
                passage=passages[i],
                answer=None if reading.no_answer else reading.answers[i],
                highlights=tuple(term_highlights(terms, passages[i].text)),
            )
            for rank, i in enumerate(order[:k], 1)
        )
        return Response(query, hits, no_answer=reading.no_answer, message=message)


def _load_reader(name: str, tokenizer: Tokenizer) -> Reader:
    if name == "rules":
        return RuleReader(tokenizer)
    from .neural import NeuralReader

    return NeuralReader(name)
