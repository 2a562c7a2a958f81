"""Ask a question of the index: retrieve, locate the answer, and shape the JSON contract.

An `Assistant` follows the index: before each question it checks which version is current
(locally one small file read: CURRENT's commit; on Milvus the alias's collection and its
update count) and switches to a new one when a write has finished. Locally a question
keeps the commit it started with to the end, so none is answered half from the old index
and half from the new. A new version that cannot be loaded is reported and the old one
keeps serving.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock

import numpy as np

from .answer import Answer, Highlight, term_highlights
from .backend import PassageIndex, index_source
from .chunk import Passage
from .config import RULES_READER, TRAINED_READER, Settings
from .embed import Embedder, load_embedder, shared_tokenizer
from .question import Query
from .records import ArticleRecord
from .reader import Reader, ReaderModel, RuleReader
from .span_model import SpanModel
from .span_reader import SpanReader, SpanWeights
from .search import Mode, Retriever
from .errors import QAError, ReaderError
from .text import clean
from .tokens import Tokenizer

__all__ = ["Hit", "Response", "Assistant"]

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 500
_ANSWERS_KEPT = 1024


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float
    passage: Passage
    answer: Answer | None
    highlights: tuple[Highlight, ...]
    date: str | None = None
    url: str | None = None
    page: str | None = None  # the newspaper page the article was printed on

    def to_json(self) -> dict:
        data = {
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
        if self.date:
            data["date"] = self.date
        if self.url:
            data["url"] = self.url
        if self.page:
            data["page"] = self.page
        return data


@dataclass(frozen=True)
class Response:
    query: str
    hits: tuple[Hit, ...]
    no_answer: bool
    message: str | None = field(default=None)

    @property
    def answer_hit(self) -> Hit | None:
        """The hit holding the answer: its most confident marked span (hits keep the
        retrieval order, so it need not be the first); None when there is no answer."""
        marked = [] if self.no_answer else [h for h in self.hits if h.answer]
        return max(marked, key=lambda h: h.answer.confidence) if marked else None

    def to_json(self) -> dict:
        data = {"query": self.query, "no_answer": self.no_answer, "hits": [h.to_json() for h in self.hits]}
        if self.message:
            data["message"] = self.message
        return data


@dataclass(frozen=True)
class _Serving:
    """A version of the index and what answers from it."""

    index: PassageIndex
    retriever: Retriever
    reader: Reader


class Assistant:
    """Answers questions from the current commit of the index; models are loaded once."""

    def __init__(
        self,
        settings: Settings,
        *,
        index: PassageIndex | None = None,
        embedder: Embedder | None = None,
        tokenizer: Tokenizer | None = None,
        reader: Reader | None = None,
    ) -> None:
        self.settings = settings
        # BM25 and the dense index's segments are searched side by side on the machine's cores
        self._search_threads = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="qa-search")
        # where new versions appear; None: the index given is kept
        self._source = None if index is not None else index_source(settings)
        first = index or self._source.open()
        # the index's search structures load while the models do (FAISS reads its files
        # without holding Python's lock; the models' loading holds it)
        opening = self._search_threads.submit(first.load)
        self.tokenizer = tokenizer or Tokenizer()
        self.tokenizer.warm_up(tagging=True)
        self._embedders: dict[str, Embedder] = {embedder.name: embedder} if embedder else {}
        serving_embedder = self.embedder(first.model)
        # None: a reader built on the rule reader fitted for the serving index's model
        self._reader = reader if reader is not None else _load_model_reader(settings.reader)
        self._span_model = None if reader is not None else _load_span_model(settings.reader, shared_tokenizer(serving_embedder))
        self._span_weights = SpanWeights.packaged() if self._span_model is not None else None
        self._rule_readers: dict[str, RuleReader] = {}
        self._switch = Lock()
        # Recent answers by (index version, question, k, mode): a question asked again (a
        # popular one, a page reloaded) costs a dictionary lookup. A new version changes the key.
        self._answered: OrderedDict[tuple, Response] = OrderedDict()
        self._answered_lock = Lock()  # not the switch lock: a reload must not hold up the cache
        opening.result()  # a broken commit fails here, as it would below
        self._serving = self._serve(first)

    @property
    def index(self) -> PassageIndex:
        return self._current().index


    def article(self, source: str) -> ArticleRecord | None:
        """What the current index records about an article (title, date, url …), by source path."""
        return self._current().index.article(source)

    def embedder(self, name: str) -> Embedder:
        """The embedding model called `name`, loaded once and shared with index updates."""
        if name not in self._embedders:
            self._embedders[name] = load_embedder(name)
        return self._embedders[name]

    @property
    def retriever(self) -> Retriever:
        return self._current().retriever

    def _serve(self, index: PassageIndex) -> _Serving:
        model = index.model
        # made ready now, so that a broken version is refused at the switch rather than mid-question
        index.load()
        retriever = Retriever(
            index, embedder=self.embedder(model), tokenizer=self.tokenizer, settings=self.settings, executor=self._search_threads
        )
        return _Serving(index, retriever, self._reader or self._own_reader(model))

    def _own_reader(self, embedding_model: str) -> Reader:
        """The trained reader (or the rule reader alone) with the rule weights fitted for `embedding_model`."""
        if embedding_model not in self._rule_readers:
            self._rule_readers[embedding_model] = RuleReader(self.tokenizer, ReaderModel.for_embedding(embedding_model))
        rules = self._rule_readers[embedding_model]
        if self._span_model is None:
            return rules
        return SpanReader(rules, self._span_model, self._span_weights)

    @property
    def reader(self) -> Reader:
        """The reader answering from the current version of the index."""
        return self._current().reader

    def _current(self) -> _Serving:
        """The version served, switched to the current one if an update has finished."""
        serving = self._serving
        if self._source is None:
            return serving
        name = self._source.current_name()
        if name is None or name == serving.index.name:
            return serving
        with self._switch:
            if self._serving.index.name != name:
                try:
                    self._serving = self._serve(self._source.open())
                    log.info("now serving index version %s", self._serving.index.name)
                except QAError as error:
                    log.warning("keeping index version %s: %s", self._serving.index.name, error)
            return self._serving

    def ask(
        self,
        question: str,
        *,
        top_k: int | None = None,
        mode: Mode = "hybrid",
        question_vector: np.ndarray | None = None,
        cached: bool = True,
    ) -> Response:
        """Answer `question`; `cached=False` answers afresh even if it was just asked."""
        query = " ".join(clean(question).split())
        message = None
        if len(query) > MAX_QUESTION_CHARS:
            query = query[:MAX_QUESTION_CHARS]
            message = f"问题过长，只使用了前{MAX_QUESTION_CHARS}个字。"
        parsed = Query.parse(query, self.tokenizer)  # analysed once, for retrieval and reader
        if not parsed.tokens:
            return Response(query, (), True, "请输入一个具体的问题，例如：从武清坐城际到北京南站要多久？")

        serving = self._current()  # this question's version of the index, start to finish
        k = top_k or self.settings.top_k
        key = (serving.index.name, query, k, mode)
        cached = cached and question_vector is None
        if cached:
            with self._answered_lock:
                known = self._answered.get(key)
            if known is not None:
                return known
        if question_vector is None and mode != "bm25":
            question_vector = serving.retriever.embed_questions([query])[0]
        response = self._answer(serving, dataclasses.replace(parsed, vector=question_vector), k, mode, message)
        if cached:
            with self._answered_lock:
                self._answered[key] = response
                self._answered.move_to_end(key)
                while len(self._answered) > _ANSWERS_KEPT:
                    self._answered.popitem(last=False)
        return response

    def _answer(self, serving: _Serving, query: Query, k: int, mode: Mode, message: str | None) -> Response:
        scored = serving.retriever.search(
            query.text,
            k=max(k, self.settings.read_passages),
            mode=mode,
            question_vector=query.vector,
            query_tokens=list(query.tokens),
        )
        if not scored:
            return Response(query.text, (), True, message)
        passages = serving.retriever.passages(scored)
        reading = serving.reader.read(query, serving.retriever.reader_inputs(scored, passages, query.vector))
        articles = [serving.index.article(p.source) for p in passages]
        # Hits keep the retrieval order; the answer line (Response.answer_hit) points to the
        # hit holding the answer. Moving that hit to the top lowered answer F1 with the rule
        # reader and, among near-duplicate passages, put the wrong article first
        # (docs/benchmarks.md).
        hits = tuple(
            Hit(
                rank=i + 1,
                score=scored[i].score,
                passage=passages[i],
                answer=None if reading.no_answer else reading.answers[i],
                highlights=tuple(term_highlights(list(query.terms), passages[i].text)),
                date=articles[i].date if articles[i] else None,
                url=articles[i].url if articles[i] else None,
                page=articles[i].page if articles[i] else None,
            )
            for i in range(min(k, len(scored)))
        )
        return Response(query.text, hits, no_answer=reading.no_answer, message=message)


def _load_model_reader(name: str) -> Reader | None:
    """A transformers question-answering model named by `--reader`; None for the project's own."""
    if name in (RULES_READER, TRAINED_READER) or name.endswith(".safetensors"):
        return None
    from .neural import NeuralReader

    return NeuralReader(name)


def _load_span_model(name: str, tokenizer) -> SpanModel | None:
    """The span model of `--reader trained` (shipped) or `--reader WEIGHTS.safetensors`;
    `tokenizer`: the e5 embedder's, to share, or None."""
    if name == TRAINED_READER:
        return SpanModel.packaged(tokenizer=tokenizer)
    if name.endswith(".safetensors"):
        path = Path(name)
        if not path.is_file():
            raise ReaderError(f"no reader weights at {name}")
        return SpanModel.from_weights(path, tokenizer=tokenizer)
    return None
