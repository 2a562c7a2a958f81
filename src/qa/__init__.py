"""Question answering over Chinese news articles.

corpus → `ingest` (Article) → `chunk` (Passage) → `build` (a segment: BM25 postings, vectors, SQLite rows; a commit in `store`)
question → `search` (hybrid retrieval) → `answer` (sentence, highlights) → `assistant` (Response)
"""

from __future__ import annotations

from .assistant import Assistant, Hit, Response
from .build import BuildSummary, build_index
from .chunk import Passage, chunk_article
from .config import Settings
from .errors import IndexCorruptError, IndexMissingError, QAError
from .ingest import Article, parse_article, read_corpus

__all__ = [
    "Article",
    "Assistant",
    "BuildSummary",
    "Hit",
    "IndexCorruptError",
    "IndexMissingError",
    "Passage",
    "QAError",
    "Response",
    "Settings",
    "build_index",
    "chunk_article",
    "parse_article",
    "read_corpus",
]
