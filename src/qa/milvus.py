"""The index on Milvus: Milvus Lite in a file, or a Milvus server or cluster.

Two collections make one version of the index, and an alias names the version served:

    qa_passages            alias → qa_passages_<n>
    qa_passages_<n>        one row per passage: key (the passage id's number), source,
                           part (its number in the article; part 0 carries the article's
                           record), passage (qa.chunk.Passage as JSON), terms (the
                           project's BM25 tokens) and sparse (Milvus's BM25 of terms)
    qa_passages_<n>_sentences
                           one row per sentence: passage key, order, vector

`terms` holds the project's own tokens (jieba words and character n-grams, qa.tokens),
each written as its 64-bit term hash in hex, so that Milvus's "standard" analyzer keeps it
whole: Milvus then scores the same terms the local index does, with the same k1 and b.
Measured on the CMRC 2018 trial set against Milvus's own jieba analyzer over the raw text
(docs/scale-out.md). A passage's dense score is its best sentence's cosine, as locally:
the sentences are searched grouped by passage.

Updates upsert the passages of new and changed articles and delete those of changed and
removed ones, by key; the collection's `qa.generation` property counts the updates, so
that a server answering from it knows its cache is stale. A rebuild fills a new version
and moves the alias in one call; the version it replaced stays until the next rebuild, so
a question in flight finishes on it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import numpy as np

from .backend import TOKEN_VARIABLE, Backend
from .build import BuildSummary, NewArticle, Timer, index_settings, plan_vectors, scan_corpus, term_hash_lists
from .chunk import Passage, chunk_article, id_number
from .config import Settings
from .embed import Embedder, load_embedder
from .errors import IndexMissingError, QAError
from .ingest import Article
from .lexical import term_hashes
from .manifest import IndexSettings, rebuild_reason
from .records import ArticleRecord, FileState
from .tokens import Tokenizer

__all__ = ["ALIAS", "MilvusIndex", "MilvusSource", "connect", "index_articles", "sync_corpus"]

log = logging.getLogger(__name__)

ALIAS = "qa_passages"
_SENTENCES = "_sentences"
_TOP_K_MAX = 16_384  # Milvus's limit on one search's results
_INSERT_BATCH = 2_000
_QUERY_BATCH = 1_000  # keys per `in [...]` filter
_TERMS_MAX = 65_535  # a VARCHAR's bytes


def connect(backend: Backend):
    """A client of the Milvus at `backend.uri`; QAError saying what to do when it cannot be reached."""
    try:
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException
    except ImportError:
        raise QAError("the Milvus backend needs pymilvus (and milvus-lite for a file): pip install -e '.[milvus]'") from None

    try:
        return MilvusClient(backend.uri, token=os.environ.get(TOKEN_VARIABLE, ""))
    except (MilvusException, OSError, RuntimeError) as error:
        raise QAError(f"cannot reach Milvus at {backend.uri} ({error}); is the server running, and is the address right?") from None


def _signed(numbers: Iterable[int]) -> list[int]:
    """Passage id numbers (64 bits, unsigned) as Milvus's INT64 keys."""
    return np.asarray(list(numbers), dtype=np.uint64).view(np.int64).tolist()


def _unsigned(keys: np.ndarray) -> np.ndarray:
    return np.asarray(keys, dtype=np.int64).view(np.uint64)


def _terms(hashes: np.ndarray) -> str:
    text = " ".join(f"t{h:x}" for h in hashes.tolist())
    return text[: _TERMS_MAX - 1].rsplit(" ", 1)[0] if len(text) >= _TERMS_MAX else text


@dataclass(frozen=True)
class _Version:
    collection: str
    generation: int

    @property
    def name(self) -> str:
        return f"{self.collection}@{self.generation}"


def _serving_version(client) -> _Version | None:
    """The version the alias names; None before the first build."""
    if ALIAS not in client.list_aliases().get("aliases", []):  # asked first: pymilvus logs every failed call
        return None
    collection = client.describe_alias(ALIAS)["collection_name"]
    properties = client.describe_collection(collection).get("properties", {})
    return _Version(collection, int(properties.get("qa.generation", "0")))


class MilvusSource:
    """qa.backend.IndexSource of a Milvus: the version its alias names, and how often it was updated."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._client = connect(backend)

    def current_name(self) -> str | None:
        version = _serving_version(self._client)
        return version.name if version else None

    def open(self) -> MilvusIndex:
        version = _serving_version(self._client)
        if version is None:
            raise IndexMissingError(f"no index in Milvus at {self._backend.uri}; build it with `qa index --backend {self._backend}`")
        return MilvusIndex(self._client, version)


@dataclass(frozen=True)
class _Hits:
    """BM25's best passages as Milvus found them; other passages count as 0."""

    ids: list[int]
    scores: dict[int, float]

    @property
    def best(self) -> float:
        return self.scores[self.ids[0]] if self.ids else 0.0

    def scores_of(self, ids: np.ndarray) -> np.ndarray:
        return np.array([self.scores.get(int(i), 0.0) for i in ids], dtype=np.float32)


class MilvusIndex:
    """qa.backend.PassageIndex over one version of the index in Milvus; passages are named
    by their keys."""

    def __init__(self, client, version: _Version) -> None:
        self._client = client
        self._version = version
        self._passages = version.collection
        self._sentences = version.collection + _SENTENCES
        properties = client.describe_collection(self._passages).get("properties", {})
        self.settings = IndexSettings.from_json(json.loads(properties["qa.settings"]))
        self.built = properties.get("qa.updated", "")

    @property
    def name(self) -> str:
        return self._version.name

    @property
    def model(self) -> str:
        return self.settings.model

    @property
    def size(self) -> int:
        return _TOP_K_MAX

    @property
    def passage_count(self) -> int:
        return int(self._client.query(self._passages, filter="", output_fields=["count(*)"])[0]["count(*)"])

    def load(self) -> None:
        # a database reopened needs its collections loaded before they can be searched
        self._client.load_collection(self._passages)
        self._client.load_collection(self._sentences)

    def search_bm25(self, tokens: list[str], k: int) -> _Hits:
        if not tokens or k <= 0:
            return _Hits([], {})
        found = self._client.search(
            self._passages, data=[_terms(term_hashes(tokens))], anns_field="sparse", limit=min(k, _TOP_K_MAX),
            search_params={"metric_type": "BM25"},
        )[0]  # fmt: skip
        # Milvus Lite returns BM25 scores negated, a server as they are
        scores = {int(hit["key"]): abs(float(hit["distance"])) for hit in found}
        order = sorted(scores, key=lambda key: (-scores[key], int(_unsigned(np.array([key]))[0])))
        return _Hits(order, scores)

    def search_dense(self, vector: np.ndarray, k: int, *, map_segments: Callable = map) -> tuple[np.ndarray, np.ndarray]:
        found = self._client.search(
            self._sentences, data=[np.asarray(vector, dtype=np.float32).tolist()], anns_field="vector",
            limit=min(k, _TOP_K_MAX), group_by_field="passage", output_fields=["passage"],
            search_params={"metric_type": "IP"},
        )[0]  # fmt: skip
        return (
            np.array([hit["distance"] for hit in found], dtype=np.float32),
            np.array([hit["entity"]["passage"] for hit in found], dtype=np.int64),
        )

    def cosines(self, vector: np.ndarray, ids: np.ndarray) -> np.ndarray:
        best: dict[int, float] = {}
        for passage, _, row in self._sentence_rows(ids):
            cosine = float(np.dot(row, vector))
            best[passage] = max(best.get(passage, -1.0), cosine)
        return np.array([best.get(int(i), 0.0) for i in ids], dtype=np.float32)

    def sentence_cosines(self, vector: np.ndarray, id: int) -> np.ndarray:
        rows = sorted(self._sentence_rows([id]), key=lambda row: row[1])
        return np.array([float(np.dot(row, vector)) for _, _, row in rows], dtype=np.float32)

    def _sentence_rows(self, ids: Sequence[int]) -> Iterable[tuple[int, int, np.ndarray]]:
        for chunk in _chunks([int(i) for i in ids], _QUERY_BATCH):
            for row in self._client.query(self._sentences, filter=f"passage in {chunk}", output_fields=["passage", "order", "vector"]):
                yield int(row["passage"]), int(row["order"]), np.asarray(row["vector"], dtype=np.float32)

    def tie_keys(self, ids: np.ndarray) -> np.ndarray:
        return _unsigned(ids)

    def passages_at(self, ids: Sequence[int]) -> list[Passage]:
        found: dict[int, Passage] = {}
        for chunk in _chunks([int(i) for i in ids], _QUERY_BATCH):
            for row in self._client.query(self._passages, filter=f"key in {chunk}", output_fields=["key", "passage"]):
                found[int(row["key"])] = Passage.from_json(row["passage"])
        missing = [i for i in ids if int(i) not in found]
        if missing:
            raise QAError("a passage found was removed by an update while answering; ask again")
        return [found[int(i)] for i in ids]

    def sample_passages(self, count: int) -> list[Passage]:
        rows = self._client.query(self._passages, filter="part >= 0", output_fields=["passage"], limit=max(1, count))
        return [Passage.from_json(row["passage"]) for row in rows]

    def article(self, source: str) -> ArticleRecord | None:
        rows = self._client.query(self._passages, filter=f"source == {json.dumps(source)} and part == 0", output_fields=["article"])
        return _article_record(rows[0]["article"]) if rows else None

    def articles(self) -> list[ArticleRecord]:
        return [_article_record(row["article"]) for row in self._first_parts(["article"])]

    def _first_parts(self, fields: list[str]) -> Iterable[dict]:
        iterator = self._client.query_iterator(self._passages, filter="part == 0", output_fields=fields, batch_size=_QUERY_BATCH)
        try:
            while batch := iterator.next():
                yield from batch
        finally:
            iterator.close()

    def close(self) -> None:
        """The client is shared with the process's other users of this Milvus; nothing to release."""


def _article_record(data: dict) -> ArticleRecord:
    return ArticleRecord(
        segment=0, first_doc=0, passages=data["passages"], path=data["path"], sha256=data["sha256"], bytes=data["bytes"],
        mtime_ns=data["mtime_ns"], title=data["title"], date=data["date"], author=data["author"], url=data["url"],
        byline=data["byline"], repairs=tuple(data["repairs"]),
    )  # fmt: skip


def _article_json(new: NewArticle, passages: int) -> dict:
    article = new.article
    return {
        "passages": passages, "path": article.source, "sha256": article.sha256, "bytes": new.bytes, "mtime_ns": new.mtime_ns,
        "title": article.title, "date": article.date, "author": article.author, "url": article.url, "byline": article.byline,
        "repairs": list(article.repairs),
    }  # fmt: skip


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# Writing


def sync_corpus(
    settings: Settings, *, embedder: Embedder | None, tokenizer: Tokenizer, rebuild: bool = False, show_progress: bool = False
) -> BuildSummary:
    """Bring the index in Milvus up to date with `settings.corpus_dir`: `qa index --backend milvus:URI`."""
    started = time.perf_counter()
    timer = Timer()
    client = connect(settings.backend)
    wanted = index_settings(settings, tokenizer, embedder.name if embedder else settings.model)
    version = _serving_version(client)
    serving = MilvusIndex(client, version) if version else None
    reason = None
    if serving is not None:
        reason = "asked to rebuild" if rebuild else rebuild_reason(serving.settings, wanted)
    writer = _Writer(client, settings, wanted, tokenizer, embedder, timer, show_progress)
    known: dict[str, FileState] = {}
    if serving is None or reason:
        writer.target = writer.new_collection(version)
    else:
        serving.load()
        writer.target = version.collection
        known = {a.path: FileState(0, 0, a.passages, a.path, a.sha256, a.bytes, a.mtime_ns) for a in serving.articles()}
    scan = scan_corpus(settings.corpus_dir, known, writer.touch, timer)
    changed = bool(scan.new or scan.gone)
    if not changed and known:
        return BuildSummary(
            articles=scan.articles, passages=serving.passage_count, embedded=0,
            seconds=time.perf_counter() - started, unchanged=scan.counts["unchanged"], up_to_date=True,
            warnings=tuple(scan.warnings), segments=1,
        )  # fmt: skip
    embedded = writer.write(scan.new)
    writer.remove([a.path for a in scan.gone] + [n.replaces.path for n in scan.new if n.replaces], keep=writer.written)
    if writer.target != (version.collection if version else None):
        writer.switch(version)
    else:
        writer.bump()
    return BuildSummary(
        articles=scan.articles, passages=MilvusIndex(client, _serving_version(client)).passage_count, embedded=embedded,
        seconds=time.perf_counter() - started, removed=len(scan.gone), rebuilt=reason, segments=1,
        warnings=tuple(scan.warnings), stages=timer.stages, **scan.counts,
    )  # fmt: skip


def index_articles(
    articles: list[Article], settings: Settings, *, embedder: Embedder, tokenizer: Tokenizer, show_progress: bool = False
) -> BuildSummary:
    """Index `articles` (already read) as a new version, served once complete (`qa eval`)."""
    started = time.perf_counter()
    timer = Timer()
    client = connect(settings.backend)
    version = _serving_version(client)
    writer = _Writer(client, settings, index_settings(settings, tokenizer, embedder.name), tokenizer, embedder, timer, show_progress)
    writer.target = writer.new_collection(version)
    embedded = writer.write([NewArticle(article, None, None, None) for article in articles])
    writer.switch(version)
    return BuildSummary(
        articles=len(articles), passages=embedded, embedded=embedded, seconds=time.perf_counter() - started,
        added=len(articles), segments=1, stages=timer.stages,
    )  # fmt: skip


class _Writer:
    def __init__(self, client, settings: Settings, wanted: IndexSettings, tokenizer: Tokenizer, embedder, timer: Timer, show_progress: bool):
        self._client = client
        self._settings = settings
        self._wanted = wanted
        self._tokenizer = tokenizer
        self._embedder = embedder
        self._timer = timer
        self._show_progress = show_progress
        self.target = ""
        self.written: set[int] = set()  # keys of the passages written in this run

    def new_collection(self, serving: _Version | None) -> str:
        """An empty version after the newest there is; its settings recorded."""
        from pymilvus import DataType, Function, FunctionType

        client = self._client
        numbers = [int(name.rsplit("_", 1)[1]) for name in client.list_collections() if _is_version(name)]
        name = f"{ALIAS}_{max(numbers, default=0) + 1}"
        settings = self._settings
        schema = client.create_schema(auto_id=False, description="qa: passages")
        schema.add_field("key", DataType.INT64, is_primary=True)
        schema.add_field("source", DataType.VARCHAR, max_length=4096)
        schema.add_field("part", DataType.INT64)
        schema.add_field("article", DataType.JSON)
        schema.add_field("passage", DataType.JSON)
        schema.add_field("terms", DataType.VARCHAR, max_length=_TERMS_MAX, enable_analyzer=True, analyzer_params={"tokenizer": "standard"})
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["terms"], output_field_names=["sparse"]))
        index = client.prepare_index_params()
        index.add_index(
            field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
            params={"bm25_k1": settings.bm25_k1, "bm25_b": settings.bm25_b},
        )  # fmt: skip
        index.add_index(field_name="source", index_type="INVERTED")
        client.create_collection(name, schema=schema, index_params=index)
        client.alter_collection_properties(
            name, properties={"qa.settings": json.dumps(asdict(self._wanted)), "qa.generation": "0", "qa.updated": _now()}
        )
        self._embedder = self._embedder or load_embedder(settings.model)
        self._sentences_collection(name + _SENTENCES, self._embedder.dimension)
        return name

    def _sentences_collection(self, name: str, dimension: int) -> None:
        from pymilvus import DataType

        schema = self._client.create_schema(auto_id=True, description="qa: sentence vectors")
        schema.add_field("row", DataType.INT64, is_primary=True)
        schema.add_field("passage", DataType.INT64)
        schema.add_field("order", DataType.INT64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        index = self._client.prepare_index_params()
        # exact search on Milvus Lite (the local index is exact up to 50k sentences);
        # a server chooses its own index (AUTOINDEX: HNSW on Milvus, docs/scale-out.md)
        lite = not str(self._settings.backend.uri).startswith(("http://", "https://"))
        index.add_index(field_name="vector", index_type="FLAT" if lite else "AUTOINDEX", metric_type="IP")
        index.add_index(field_name="passage", index_type="INVERTED")
        self._client.create_collection(name, schema=schema, index_params=index)

    def touch(self, entry: FileState, size: int, mtime_ns: int) -> None:
        """Record a file's new size and time (its text is unchanged)."""
        rows = self._client.query(
            self.target, filter=f"source == {json.dumps(entry.path)} and part == 0",
            output_fields=["key", "source", "part", "article", "passage", "terms"],
        )  # fmt: skip
        for row in rows:
            row["article"] = {**row["article"], "bytes": size, "mtime_ns": mtime_ns}
            self._client.upsert(self.target, [row])

    def write(self, new: list[NewArticle]) -> int:
        """Upsert the passages of `new` articles with their sentence vectors; how many were embedded."""
        settings = self._settings
        with self._timer("chunk"):
            chunked = [(n, chunk_article(n.article, max_chars=settings.max_passage_chars, min_chars=settings.min_passage_chars)) for n in new]
            chunked = [(n, passages) for n, passages in chunked if passages]
        passages = [p for _, ps in chunked for p in ps]
        if not passages:
            return 0
        with self._timer("tokenize"):
            hashes = term_hash_lists(passages, self._tokenizer)
        codes, scales, owners, embedded, self._embedder = plan_vectors(
            passages, {}, self._embedder, settings, self._timer, self._show_progress
        )
        keys = _signed(id_number(p.id) for p in passages)
        with self._timer("write"):
            rows = []
            number = 0
            for new_article, article_passages in chunked:
                record = _article_json(new_article, len(article_passages))
                for part, passage in enumerate(article_passages):
                    rows.append({
                        "key": keys[number], "source": passage.source, "part": part, "article": record if part == 0 else {},
                        "passage": passage.to_json(), "terms": _terms(hashes[number]),
                    })  # fmt: skip
                    number += 1
            old = set(self._existing_keys(keys))
            for batch in _chunks(rows, _INSERT_BATCH):
                self._client.upsert(self.target, batch)
            vectors = codes.astype(np.float32) * scales[:, None]
            order = np.zeros(len(owners), dtype=np.int64)
            for row in range(1, len(owners)):
                order[row] = order[row - 1] + 1 if owners[row] == owners[row - 1] else 0
            sentence_rows = [
                {"passage": keys[owner], "order": int(order[row]), "vector": vectors[row].tolist()}
                for row, owner in enumerate(owners.tolist())
                if keys[owner] not in old  # a passage already indexed keeps its sentences
            ]
            for batch in _chunks(sentence_rows, _INSERT_BATCH):
                self._client.insert(self.target + _SENTENCES, batch)
        self.written.update(keys)
        return embedded

    def _existing_keys(self, keys: list[int]) -> list[int]:
        found = []
        for chunk in _chunks(keys, _QUERY_BATCH):
            found += [int(row["key"]) for row in self._client.query(self.target, filter=f"key in {chunk}", output_fields=["key"])]
        return found

    def remove(self, sources: list[str], *, keep: set[int]) -> None:
        """Delete the passages of `sources` that this run did not write, and their sentences."""
        for source in dict.fromkeys(sources):
            rows = self._client.query(self.target, filter=f"source == {json.dumps(source)}", output_fields=["key"])
            stale = [int(row["key"]) for row in rows if int(row["key"]) not in keep]
            for chunk in _chunks(stale, _QUERY_BATCH):
                self._client.delete(self.target + _SENTENCES, filter=f"passage in {chunk}")
                self._client.delete(self.target, filter=f"key in {chunk}")

    def bump(self) -> None:
        """Count an update of the version served, so that servers drop their cached answers."""
        version = _serving_version(self._client)
        self._client.alter_collection_properties(
            self.target, properties={"qa.generation": str(version.generation + 1), "qa.updated": _now()}
        )

    def switch(self, replaced: _Version | None) -> None:
        """Serve the new version (one call moves the alias), and drop versions older than the replaced one."""
        if replaced is None:
            if self._client.has_collection(ALIAS):  # pragma: no cover - a name taken by hand
                raise QAError(f"Milvus has a collection called {ALIAS}; rename or drop it")
            self._client.create_alias(self.target, ALIAS)
        else:
            self._client.alter_alias(self.target, ALIAS)
        kept = {self.target, replaced.collection if replaced else ""}
        for name in self._client.list_collections():
            base = name.removesuffix(_SENTENCES)
            if _is_version(base) and base not in kept:
                self._client.drop_collection(name)


def _is_version(name: str) -> bool:
    prefix, _, number = name.rpartition("_")
    return prefix == ALIAS and number.isdigit()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
