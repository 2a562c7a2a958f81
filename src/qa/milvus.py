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

Several Milvus nodes (`--backend milvus:URI,URI…`) share the articles out: each article
and its passages live on the node `route` names from its source path, every node holds
its own pair of collections and alias, and a question asks every node and merges their
candidates by score. Each node's BM25 counts only its own documents (Milvus keeps no
statistics across nodes), so lower candidates can trade places with one node's order.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from .backend import TOKEN_VARIABLE, Backend
from .build import BuildSummary, NewArticle, Timer, index_settings, page_encoder, plan_vectors, scan_corpus, term_hash_lists
from .chunk import Passage, chunk_article, id_number
from .config import Settings
from .embed import Embedder, load_embedder
from .errors import IndexMissingError, QAError
from .ingest import Article
from .lexical import term_hashes
from .manifest import IndexSettings, rebuild_reason
from .records import ArticleRecord, FileState
from .tokens import Tokenizer

__all__ = ["ALIAS", "MilvusIndex", "MilvusSource", "connect", "index_articles", "route", "sync_corpus", "term_text"]

ALIAS = "qa_passages"
_SENTENCES = "_sentences"
_TOP_K_MAX = 16_384  # Milvus's limit on one search's results
_INSERT_BATCH = 2_000
_QUERY_BATCH = 1_000  # keys per `in [...]` filter
_TERMS_MAX = 65_535  # a VARCHAR's bytes
_SENTENCES_MAX = 1_000  # of one passage (a 400-character passage has fewer than 100)


def connect(uri: str):
    """A client of the Milvus at `uri`; QAError saying what to do when it cannot be reached."""
    try:
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException
    except ImportError:
        raise QAError("the Milvus backend needs pymilvus (and milvus-lite for a file): pip install -e '.[milvus]'") from None
    try:
        return _Guarded(MilvusClient(uri, token=os.environ.get(TOKEN_VARIABLE, "")), uri, MilvusException)
    except (MilvusException, OSError, RuntimeError) as error:
        if _is_lite(uri):
            raise QAError(
                f"cannot open the Milvus Lite file {uri} ({error}); a file serves one process at a time: if another "
                f"holds it, serve it with `milvus-lite server --data-dir DIR --host 127.0.0.1 --port N` and use "
                f"milvus:http://127.0.0.1:N"
            ) from None
        raise QAError(f"cannot reach Milvus at {uri} ({error}); is the server running, and is the address right?") from None


def _is_lite(uri: str) -> bool:
    """A file path, opened by Milvus Lite inside this process, rather than a server's address."""
    return not uri.startswith(("http://", "https://", "tcp://"))


class _Guarded:
    """A Milvus client whose failures are QAErrors naming the server: a server that stops
    answering mid-run is reported like one that cannot be reached, and nothing is written."""

    def __init__(self, client, uri: str, failure: type[Exception]) -> None:
        self._client, self._uri, self._failure = client, uri, failure

    def __getattr__(self, name: str):
        method = getattr(self._client, name)

        def guarded(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except (self._failure, OSError, RuntimeError) as error:
                raise QAError(f"Milvus at {self._uri} failed ({error}); is the server running? Nothing was changed by this call") from None

        return guarded


def route(source: str, nodes: int) -> int:
    """The node that holds an article: a hash of its source path, the same in every run."""
    return int.from_bytes(hashlib.blake2b(source.encode("utf-8"), digest_size=8).digest(), "little") % nodes


@dataclass(frozen=True)
class _Node:
    uri: str
    client: Any

    @property
    def is_lite(self) -> bool:
        return _is_lite(self.uri)


def _nodes(backend: Backend) -> list[_Node]:
    return [_Node(uri, connect(uri)) for uri in backend.nodes]


def _signed(numbers: Iterable[int]) -> list[int]:
    """Passage id numbers (64 bits, unsigned) as Milvus's INT64 keys."""
    return np.asarray(list(numbers), dtype=np.uint64).view(np.int64).tolist()


def _unsigned(keys) -> np.ndarray:
    return np.asarray(keys, dtype=np.int64).view(np.uint64)


def term_text(hashes: np.ndarray) -> str:
    """Tokens' term hashes as the words Milvus's "standard" analyzer keeps whole."""
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
    """qa.backend.IndexSource of a Milvus (or several): the versions their aliases name,
    and how often each was updated."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._nodes = _nodes(backend)

    def _versions(self) -> list[_Version | None]:
        return [_serving_version(node.client) for node in self._nodes]

    def current_name(self) -> str | None:
        versions = self._versions()
        return None if None in versions else "+".join(v.name for v in versions)

    def open(self) -> MilvusIndex:
        versions = self._versions()
        if None in versions:
            missing = self._nodes[versions.index(None)].uri
            raise IndexMissingError(f"no index in Milvus at {missing}; build it with `qa index --backend {self._backend}`")
        return MilvusIndex([_Part(node, version) for node, version in zip(self._nodes, versions)])


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


class _Part:
    """One node's version of the index: its two collections."""

    def __init__(self, node: _Node, version: _Version) -> None:
        self.node = node
        self.version = version
        self.passages = version.collection
        self.sentences = version.collection + _SENTENCES
        properties = node.client.describe_collection(self.passages).get("properties", {})
        self.settings = IndexSettings.from_json(json.loads(properties["qa.settings"]))
        self.updated = properties.get("qa.updated", "")

    @property
    def client(self):
        return self.node.client

    def count(self) -> int:
        return _count(self.client, self.passages)

    def bm25(self, terms: str, k: int) -> list[tuple[float, int]]:
        found = self.client.search(self.passages, data=[terms], anns_field="sparse", limit=k, search_params={"metric_type": "BM25"})[0]
        # Milvus Lite returns BM25 scores negated, a server as they are
        return [(abs(float(hit["distance"])), int(hit["key"])) for hit in found]

    def sentences_near(self, vector: list[float], where: str, limit: int, *, group: bool) -> list:
        return self.client.search(
            self.sentences, data=[vector], anns_field="vector", filter=where, limit=limit,
            output_fields=["passage", "order"], search_params={"metric_type": "IP"},
            **({"group_by_field": "passage"} if group else {}),
        )[0]  # fmt: skip

    def query(self, where: str, fields: list[str], **options) -> list[dict]:
        return self.client.query(self.passages, filter=where, output_fields=fields, **options)

    def first_parts(self, fields: list[str]) -> Iterable[dict]:
        """Part 0 of every article (it carries the article's record), read by ranges of keys:
        a range with more rows than one query returns is halved (keys are hashes, so they
        spread evenly). Milvus Lite lacks what query iterators need."""
        ranges = [(-(2**63), 2**63 - 1)]
        while ranges:
            low, high = ranges.pop()
            rows = self.query(f"part == 0 and key >= {low} and key <= {high}", fields, limit=_TOP_K_MAX)
            if len(rows) < _TOP_K_MAX or low == high:
                yield from rows
            else:
                middle = (low + high) // 2
                ranges += [(low, middle), (middle + 1, high)]


class MilvusIndex:
    """qa.backend.PassageIndex over one version of the index in Milvus, on one node or
    shared out among several (each article on the node `route` names; every node is
    asked and the results merged); passages are named by their keys."""

    def __init__(self, parts: list[_Part]) -> None:
        self._parts = parts
        self.settings = parts[0].settings
        differing = [p.node.uri for p in parts if p.settings != self.settings]
        if differing:
            raise IndexMissingError(f"the Milvus nodes {differing} hold an index built differently; run `qa index --rebuild`")
        self.built = max(p.updated for p in parts)
        # every hit of every answer asks for its article: each is read once per version
        self._articles: dict[str, ArticleRecord | None] = {}

    @property
    def name(self) -> str:
        return "+".join(p.version.name for p in self._parts)

    @property
    def model(self) -> str:
        return self.settings.model

    @property
    def size(self) -> int:
        return _TOP_K_MAX

    @property
    def passage_count(self) -> int:
        return sum(p.count() for p in self._parts)

    def load(self) -> None:
        # a database reopened needs its collections loaded before they can be searched
        for part in self._parts:
            part.client.load_collection(part.passages)
            part.client.load_collection(part.sentences)

    def search_bm25(self, tokens: list[str], k: int) -> _Hits:
        if not tokens or k <= 0:
            return _Hits([], {})
        terms, k = term_text(term_hashes(tokens)), min(k, _TOP_K_MAX)
        best = _best([hit for part in self._parts for hit in part.bm25(terms, k)], k)
        return _Hits([key for _, key in best], {key: score for score, key in best})

    def search_dense(self, vector: np.ndarray, k: int, *, map_segments: Callable = map) -> tuple[np.ndarray, np.ndarray]:
        k, query = min(k, _TOP_K_MAX), _as_list(vector)
        found = [
            (float(hit["distance"]), int(hit["entity"]["passage"])) for part in self._parts for hit in part.sentences_near(query, "", k, group=True)
        ]  # fmt: skip
        best = _best(found, k)
        return np.array([s for s, _ in best], dtype=np.float32), np.array([key for _, key in best], dtype=np.int64)

    def cosines(self, vector: np.ndarray, ids: np.ndarray) -> np.ndarray:
        # searched among those passages' sentences, grouped: Milvus sends back one cosine a
        # passage rather than every sentence's vector
        best: dict[int, float] = {}
        query = _as_list(vector)
        for chunk in _chunks([int(i) for i in ids], _QUERY_BATCH):
            for part in self._parts:
                for hit in part.sentences_near(query, f"passage in {chunk}", len(chunk), group=True):
                    best[int(hit["entity"]["passage"])] = float(hit["distance"])
        return np.array([best.get(int(i), 0.0) for i in ids], dtype=np.float32)

    def sentence_cosines(self, vector: np.ndarray, id: int) -> np.ndarray:
        query = _as_list(vector)
        hits = [hit for part in self._parts for hit in part.sentences_near(query, f"passage == {int(id)}", _SENTENCES_MAX, group=False)]
        return np.array([hit["distance"] for hit in sorted(hits, key=lambda hit: hit["entity"]["order"])], dtype=np.float32)

    def tie_keys(self, ids: np.ndarray) -> np.ndarray:
        return _unsigned(ids)

    def passages_at(self, ids: Sequence[int]) -> list[Passage]:
        found: dict[int, Passage] = {}
        for chunk in _chunks([int(i) for i in ids], _QUERY_BATCH):
            for part in self._parts:
                found.update((int(row["key"]), Passage.from_json(row["passage"])) for row in part.query(f"key in {chunk}", ["key", "passage"]))
        if any(int(i) not in found for i in ids):
            raise QAError("a passage found was removed by an update while answering; ask again")
        return [found[int(i)] for i in ids]

    def sample_passages(self, count: int) -> list[Passage]:
        each = max(1, count // len(self._parts))
        return [Passage.from_json(row["passage"]) for part in self._parts for row in part.query("part >= 0", ["passage"], limit=each)]

    def article(self, source: str) -> ArticleRecord | None:
        if source not in self._articles:
            part = self._parts[route(source, len(self._parts))]
            rows = part.query(f"source == {json.dumps(source)} and part == 0", ["article"])
            self._articles[source] = ArticleRecord.from_json(rows[0]["article"]) if rows else None
        return self._articles[source]

    def articles(self) -> list[ArticleRecord]:
        return [ArticleRecord.from_json(row["article"]) for part in self._parts for row in part.first_parts(["article"])]

    def close(self) -> None:
        """The clients are shared with the process's other users of these Milvus nodes; nothing to release."""


def _best(found: list[tuple[float, int]], k: int) -> list[tuple[float, int]]:
    """The `k` best (score, key) of all nodes, ties broken by the passage id's number as locally."""
    return sorted(found, key=lambda hit: (-hit[0], hit[1] % 2**64))[:k]  # the key read unsigned


def _count(client, collection: str) -> int:
    return int(client.query(collection, filter="", output_fields=["count(*)"])[0]["count(*)"])


def _as_list(vector: np.ndarray) -> list[float]:
    return np.asarray(vector, dtype=np.float32).tolist()


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
    nodes = _nodes(settings.backend)
    wanted = index_settings(settings, tokenizer, embedder.name if embedder else settings.model)
    versions = [_serving_version(node.client) for node in nodes]
    reason = None
    if any(versions):
        parts = [_Part(node, version) for node, version in zip(nodes, versions) if version]
        if None in versions:
            reason = f"Milvus at {nodes[versions.index(None)].uri} holds no index yet"
        elif len({part.settings for part in parts}) > 1:
            reason = "the Milvus nodes hold indexes built with different settings"
        else:
            reason = "asked to rebuild" if rebuild else rebuild_reason(parts[0].settings, wanted)
    rebuilding = reason is not None or not any(versions)
    writers = [_Writer(node, settings, wanted, tokenizer, timer, show_progress) for node in nodes]
    known: dict[str, FileState] = {}
    if rebuilding:
        embedder = embedder or load_embedder(settings.model)
        for writer in writers:
            writer.target = writer.new_collection(embedder.dimension)
    else:
        serving = MilvusIndex(parts)
        serving.load()
        for writer, version in zip(writers, versions):
            writer.target = version.collection
        # segment and first document are the local index's; Milvus finds passages by source
        known = {a.path: FileState(0, 0, a.passages, a.path, a.sha256, a.bytes, a.mtime_ns, a.article_count) for a in serving.articles()}

    def touch(entry: FileState, size: int, mtime_ns: int) -> None:
        writers[route(entry.path, len(writers))].touch(entry, size, mtime_ns)

    scan = scan_corpus(settings.corpus_dir, known, touch, timer, page_encoder(embedder, settings.model))
    if not rebuilding and not (scan.new or scan.gone):
        return BuildSummary(
            files=scan.files, articles=scan.articles, passages=serving.passage_count, embedded=0, seconds=time.perf_counter() - started,
            unchanged=scan.counts["unchanged"], up_to_date=True, warnings=tuple(scan.warnings), segments=len(nodes),
        )  # fmt: skip
    replaced = [a.path for a in scan.gone] + [n.replaces.path for n in scan.new if n.replaces]
    embedded = _write(writers, scan.new, replaced, versions if rebuilding else None, embedder)
    return BuildSummary(
        files=scan.files, articles=scan.articles, passages=sum(w.count() for w in writers), embedded=embedded,
        seconds=time.perf_counter() - started, removed=len(scan.gone), rebuilt=reason, segments=len(nodes),
        warnings=tuple(scan.warnings), stages=timer.stages, **scan.counts,
    )  # fmt: skip


def index_articles(
    articles: list[Article], settings: Settings, *, embedder: Embedder, tokenizer: Tokenizer, show_progress: bool = False
) -> BuildSummary:
    """Index `articles` (already read) as a new version, served once complete (`qa eval`)."""
    started = time.perf_counter()
    timer = Timer()
    nodes = _nodes(settings.backend)
    versions = [_serving_version(node.client) for node in nodes]
    wanted = index_settings(settings, tokenizer, embedder.name)
    writers = [_Writer(node, settings, wanted, tokenizer, timer, show_progress) for node in nodes]
    for writer in writers:
        writer.target = writer.new_collection(embedder.dimension)
    embedded = _write(writers, [NewArticle(article, None, None, None) for article in articles], [], versions, embedder)
    return BuildSummary(
        files=len(articles), articles=sum(article.article_count for article in articles), passages=sum(w.count() for w in writers), embedded=embedded,
        seconds=time.perf_counter() - started, added=len(articles), segments=len(nodes), stages=timer.stages,
    )  # fmt: skip


def _write(writers: list[_Writer], new: list[NewArticle], replaced: list[str], switch_from: list | None, embedder) -> int:
    """Each node's share of the new articles written and of the replaced ones removed; then
    a rebuilt index served (`switch_from`: the versions it replaces) or an update counted.
    Returns how many passages were embedded."""
    embedded = 0
    count = len(writers)
    for number, writer in enumerate(writers):
        mine = [n for n in new if route(n.article.source, count) == number]
        written, embedder = writer.write(mine, embedder)
        embedded += written
        writer.remove([path for path in replaced if route(path, count) == number])
        writer.finish()
    for writer, version in zip(writers, switch_from or [None] * count):
        if switch_from is not None:
            writer.switch(version)
        else:
            writer.bump()
    return embedded


class _Writer:
    """Writes one node's share of the index."""

    def __init__(self, node: _Node, settings: Settings, wanted: IndexSettings, tokenizer: Tokenizer, timer: Timer, show_progress: bool):
        self._node = node
        self._client = node.client
        self._settings = settings
        self._wanted = wanted
        self._tokenizer = tokenizer
        self._timer = timer
        self._show_progress = show_progress
        self.target = ""
        self._written: set[int] = set()  # keys of the passages written in this run
        self._records: list[dict] = []  # part 0 of each article written, held back until `finish`

    def count(self) -> int:
        return _count(self._client, self.target)

    def new_collection(self, dimension: int) -> str:
        """An empty version after the newest there is, its settings recorded."""
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
        _create(client, name, schema, index)
        client.alter_collection_properties(
            name, properties={"qa.settings": json.dumps(asdict(self._wanted)), "qa.generation": "0", "qa.updated": _now()}
        )
        self._sentences_collection(name + _SENTENCES, dimension)
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
        index.add_index(field_name="vector", index_type="FLAT" if self._node.is_lite else "AUTOINDEX", metric_type="IP")
        index.add_index(field_name="passage", index_type="INVERTED")
        _create(self._client, name, schema, index)

    def touch(self, entry: FileState, size: int, mtime_ns: int) -> None:
        """Record a file's new size and time (its text is unchanged)."""
        rows = self._client.query(
            self.target, filter=f"source == {json.dumps(entry.path)} and part == 0",
            output_fields=["key", "source", "part", "article", "passage", "terms"],
        )  # fmt: skip
        for row in rows:
            row["article"] = {**row["article"], "bytes": size, "mtime_ns": mtime_ns}
            self._client.upsert(self.target, [row])

    def write(self, new: list[NewArticle], embedder: Embedder | None) -> tuple[int, Embedder | None]:
        """Upsert the passages of `new` articles with their sentence vectors; how many were
        embedded, and the embedder (loaded if it was needed)."""
        settings = self._settings
        with self._timer("chunk"):
            chunked = [(n, chunk_article(n.article, max_chars=settings.max_passage_chars, min_chars=settings.min_passage_chars)) for n in new]
            chunked = [(n, passages) for n, passages in chunked if passages]
        passages = [p for _, ps in chunked for p in ps]
        if not passages:
            return 0, embedder
        with self._timer("tokenize"):
            hashes = term_hash_lists(passages, self._tokenizer)
        codes, scales, owners, embedded, embedder = plan_vectors(passages, {}, embedder, settings, self._timer, self._show_progress)
        keys = _signed(id_number(p.id) for p in passages)
        with self._timer("write"):
            rows = []
            number = 0
            for new_article, article_passages in chunked:
                # segment and first document are the local index's: 0 here, passages are found by source
                record = new_article.record(0, 0, len(article_passages)).to_json()
                for part, passage in enumerate(article_passages):
                    rows.append({
                        "key": keys[number], "source": passage.source, "part": part, "article": record if part == 0 else {},
                        "passage": passage.to_json(), "terms": term_text(hashes[number]),
                    })  # fmt: skip
                    number += 1
            # an article's record (its part 0) is written last, by `finish`, after the old
            # passages are removed: a write that dies before leaves the old record, and
            # the next run sees the article as changed and writes it again
            self._records += [row for row in rows if row["part"] == 0]
            for batch in _chunks([row for row in rows if row["part"] != 0], _INSERT_BATCH):
                self._client.upsert(self.target, batch)
            old = self._keys_with_sentences(keys)
            vectors = codes.astype(np.float32) * scales[:, None]
            order = np.zeros(len(owners), dtype=np.int64)
            for row in range(1, len(owners)):
                order[row] = order[row - 1] + 1 if owners[row] == owners[row - 1] else 0
            sentence_rows = [
                {"passage": keys[owner], "order": int(order[row]), "vector": vectors[row].tolist()}
                for row, owner in enumerate(owners.tolist())
                if keys[owner] not in old  # a passage indexed before keeps its sentences
            ]
            for batch in _chunks(sentence_rows, _INSERT_BATCH):
                self._client.insert(self.target + _SENTENCES, batch)
        self._written.update(keys)
        return embedded, embedder

    def _keys_with_sentences(self, keys: list[int]) -> set[int]:
        found: set[int] = set()
        for chunk in _chunks(keys, _QUERY_BATCH):
            rows = self._client.query(self.target + _SENTENCES, filter=f"order == 0 and passage in {chunk}", output_fields=["passage"])
            found.update(int(row["passage"]) for row in rows)
        return found

    def remove(self, sources: list[str]) -> None:
        """Delete the passages of `sources` that this run did not write, and their sentences."""
        for source in dict.fromkeys(sources):
            rows = self._client.query(self.target, filter=f"source == {json.dumps(source)}", output_fields=["key"])
            stale = [int(row["key"]) for row in rows if int(row["key"]) not in self._written]
            for chunk in _chunks(stale, _QUERY_BATCH):
                self._client.delete(self.target + _SENTENCES, filter=f"passage in {chunk}")
                self._client.delete(self.target, filter=f"key in {chunk}")

    def finish(self) -> None:
        """Write the records of the articles written (see `write`)."""
        for batch in _chunks(self._records, _INSERT_BATCH):
            self._client.upsert(self.target, batch)
        self._records = []
        # sealed segments are searched with their built indexes; rows still in memory are
        # scanned, and Milvus Lite rebuilds their sparse index at every search
        self._client.flush(self.target)
        self._client.flush(self.target + _SENTENCES)

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


def _create(client, name: str, schema, index) -> None:
    """A collection with its indexes, loaded. The indexes are not waited for: empty
    collections need none built, and waiting asks for a timestamp Milvus Lite cannot give."""
    client.create_collection(name, schema=schema)
    client.create_index(name, index, sync=False)
    client.load_collection(name)


def _is_version(name: str) -> bool:
    prefix, _, number = name.rpartition("_")
    return prefix == ALIAS and number.isdigit()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
