"""Articles and passages in SQLite: read by (segment, document), so memory does not grow
with the corpus text.

One database per index (`passages.sqlite`, WAL mode: readers never wait for the writer).
Rows belong to a segment and are written once, with it; they leave only when no commit
references their segment any more (qa.store's clean-up). So a reader holding an old
commit still finds every passage it can return. A write that dies leaves rows of a
segment no commit names, which the next clean-up removes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .chunk import Passage
from .errors import IndexCorruptError

__all__ = ["ArticleRecord", "Records"]

DATABASE = "passages.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    segment INTEGER NOT NULL, first_doc INTEGER NOT NULL, passages INTEGER NOT NULL,
    path TEXT NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER, mtime_ns INTEGER,
    title TEXT NOT NULL, date TEXT, author TEXT, url TEXT, byline TEXT, repairs TEXT NOT NULL,
    PRIMARY KEY (segment, first_doc)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS articles_by_path ON articles (path);
CREATE TABLE IF NOT EXISTS passages (
    segment INTEGER NOT NULL, doc INTEGER NOT NULL, article_doc INTEGER NOT NULL,
    id TEXT NOT NULL, headings TEXT NOT NULL, text TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    PRIMARY KEY (segment, doc)
) WITHOUT ROWID;
"""
_ARTICLE_COLUMNS = "segment, first_doc, passages, path, sha256, bytes, mtime_ns, title, date, author, url, byline, repairs"
_FETCH_CHUNK = 400  # (segment, doc) pairs per query: SQLite's limit on variables is 32,766


@dataclass(frozen=True)
class ArticleRecord:
    """An indexed article: where its passages are and what is known about its file."""

    segment: int
    first_doc: int  # its passages are documents first_doc … first_doc + passages − 1
    passages: int
    path: str
    sha256: str
    bytes: int | None
    mtime_ns: int | None
    title: str
    date: str | None = None
    author: str | None = None
    url: str | None = None
    byline: str | None = None
    repairs: tuple[str, ...] = ()

    def _row(self) -> tuple:
        return (
            self.segment, self.first_doc, self.passages, self.path, self.sha256, self.bytes, self.mtime_ns,
            self.title, self.date, self.author, self.url, self.byline, json.dumps(list(self.repairs), ensure_ascii=False),
        )  # fmt: skip

    @classmethod
    def _from_row(cls, row: Sequence) -> ArticleRecord:
        return cls(*row[:12], repairs=tuple(json.loads(row[12])))


class Records:
    """The index's SQLite database; one connection per thread."""

    def __init__(self, index_dir: Path) -> None:
        self.path = index_dir / DATABASE
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            try:
                connection = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=FULL")  # a commit point may name these rows
                connection.executescript(_SCHEMA)
            except sqlite3.Error as error:
                raise IndexCorruptError(f"{self.path}: cannot open the passage database ({error}); rebuild with `qa index --rebuild`") from None
            self._local.connection = connection
        return connection

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def add_segment(self, segment: int, articles: Iterable[tuple[ArticleRecord, Sequence[Passage]]]) -> None:
        """Write a new segment's articles and passages (documents numbered in order), at once."""
        connection = self._connection()
        with _transaction(connection):
            for article, passages in articles:
                connection.execute(f"INSERT INTO articles ({_ARTICLE_COLUMNS}) VALUES ({', '.join('?' * 13)})", article._row())
                connection.executemany(
                    'INSERT INTO passages (segment, doc, article_doc, id, headings, text, start, "end") VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                    (
                        (segment, article.first_doc + i, article.first_doc, p.id, json.dumps(list(p.headings), ensure_ascii=False), p.text, p.start, p.end)
                        for i, p in enumerate(passages)
                    ),
                )

    def copy_segment(self, source: int, kept_docs: Sequence[int], target: int, first: int) -> None:
        """Copy documents `kept_docs` (ascending) of segment `source` into `target`,
        renumbered first, first + 1, …, with their articles (whose documents are kept or
        deleted together)."""
        connection = self._connection()
        new_number = {int(doc): first + i for i, doc in enumerate(kept_docs)}
        with _transaction(connection):
            rows = connection.execute(f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE segment = ?", (source,)).fetchall()
            for row in rows:
                if row[1] in new_number:
                    connection.execute(
                        f"INSERT INTO articles ({_ARTICLE_COLUMNS}) VALUES ({', '.join('?' * 13)})",
                        (target, new_number[row[1]], *row[2:]),
                    )
            passages = connection.execute(
                'SELECT doc, article_doc, id, headings, text, start, "end" FROM passages WHERE segment = ? ORDER BY doc', (source,)
            )
            connection.executemany(
                'INSERT INTO passages (segment, doc, article_doc, id, headings, text, start, "end") VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                (
                    (target, new_number[row[0]], new_number[row[1]], *row[2:])
                    for row in passages.fetchall()
                    if row[0] in new_number
                ),
            )

    def articles(self, segments: Sequence[int]) -> list[ArticleRecord]:
        """Every article written in the given segments (deleted ones included)."""
        if not segments:
            return []
        marks = ", ".join("?" * len(segments))
        rows = self._connection().execute(
            f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE segment IN ({marks}) ORDER BY segment, first_doc", tuple(segments)
        )
        return [ArticleRecord._from_row(row) for row in rows]

    def articles_at(self, path: str, segments: Sequence[int]) -> list[ArticleRecord]:
        """The articles of file `path` written in the given segments."""
        if not segments:
            return []
        marks = ", ".join("?" * len(segments))
        rows = self._connection().execute(
            f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE path = ? AND segment IN ({marks})", (path, *segments)
        )
        return [ArticleRecord._from_row(row) for row in rows]

    def touch(self, article: ArticleRecord, size: int, mtime_ns: int) -> None:
        """Record a file's new size and time when its text is unchanged (no new segment)."""
        self._connection().execute(
            "UPDATE articles SET bytes = ?, mtime_ns = ? WHERE segment = ? AND first_doc = ?",
            (size, mtime_ns, article.segment, article.first_doc),
        )

    def passages(self, keys: Sequence[tuple[int, int]]) -> list[Passage]:
        """The passages at (segment, document) keys, in the order given."""
        found: dict[tuple[int, int], Passage] = {}
        connection = self._connection()
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _FETCH_CHUNK):
            chunk = unique[start : start + _FETCH_CHUNK]
            values = ", ".join("(?, ?)" for _ in chunk)
            rows = connection.execute(
                f"""SELECT p.segment, p.doc, p.id, a.path, a.title, p.headings, p.text, p.start, p."end"
                    FROM passages p JOIN articles a ON a.segment = p.segment AND a.first_doc = p.article_doc
                    WHERE (p.segment, p.doc) IN (VALUES {values})""",
                [number for key in chunk for number in key],
            )
            for segment, doc, pid, source, title, headings, text, begin, end in rows:
                found[(segment, doc)] = Passage(pid, source, title, tuple(json.loads(headings)), text, begin, end)
        missing = [key for key in unique if key not in found]
        if missing:
            raise IndexCorruptError(f"{self.path}: no passage at (segment, document) {missing[0]}; rebuild with `qa index --rebuild`")
        return [found[key] for key in keys]

    def passage_keys(self, segment: int, ids: Sequence[str]) -> dict[str, int]:
        """Document numbers of the passages with the given ids in a segment."""
        if not ids:
            return {}
        connection = self._connection()
        out: dict[str, int] = {}
        for start in range(0, len(ids), _FETCH_CHUNK):
            chunk = list(ids[start : start + _FETCH_CHUNK])
            rows = connection.execute(
                f"SELECT id, doc FROM passages WHERE segment = ? AND id IN ({', '.join('?' * len(chunk))})", (segment, *chunk)
            )
            out.update(rows)
        return out

    def segments(self) -> set[int]:
        """Every segment with rows."""
        rows = self._connection().execute("SELECT DISTINCT segment FROM articles")
        return {row[0] for row in rows}

    def remove_segments(self, segments: Iterable[int]) -> None:
        connection = self._connection()
        with _transaction(connection):
            for segment in segments:
                connection.execute("DELETE FROM passages WHERE segment = ?", (segment,))
                connection.execute("DELETE FROM articles WHERE segment = ?", (segment,))


class _transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def __enter__(self) -> None:
        self._connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, error, trace) -> None:
        self._connection.execute("COMMIT" if kind is None else "ROLLBACK")
