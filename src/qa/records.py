"""Articles and passages in SQLite: read by (segment, document), so memory does not grow
with the corpus text.

One database per index (`passages.sqlite`, WAL mode: readers never wait for the writer).
Rows belong to a segment and are written once, with it; they leave only when no commit
references their segment any more (qa.store's clean-up). So a reader holding an old
commit still finds every passage it can return. A write that dies leaves rows of a
segment no commit names, which the next clean-up removes.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .chunk import Passage
from .errors import IndexCorruptError
from .ingest import Story

__all__ = ["ArticleRecord", "FileState", "Records", "discard_database"]

DATABASE = "passages.sqlite"

# Rows are keyed by one integer, segment · 2³² + document: SQLite's rowid, the cheapest
# key it has (rows of a kilobyte sit poorly in a WITHOUT ROWID table's pages).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    key INTEGER PRIMARY KEY, passages INTEGER NOT NULL,
    path TEXT NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER, mtime_ns INTEGER,
    title TEXT NOT NULL, date TEXT, author TEXT, url TEXT, byline TEXT, repairs TEXT NOT NULL,
    page TEXT, stories TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS articles_by_path ON articles (path);
CREATE TABLE IF NOT EXISTS passages (
    key INTEGER PRIMARY KEY, article INTEGER NOT NULL,
    headings TEXT NOT NULL, text TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    title TEXT -- the title of a page's article it is in; NULL: the file's title
);
"""
_SCHEMA_VERSION = 2
_ARTICLE_COLUMNS = "key, passages, path, sha256, bytes, mtime_ns, title, date, author, url, byline, repairs, page, stories"
_SEGMENT = 1 << 32


def _key(segment: int, doc: int) -> int:
    return segment * _SEGMENT + doc


def _insert(table: str, columns: str) -> str:
    return f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * len(columns.split(',')))})"


_PASSAGE_COLUMNS = 'key, article, headings, text, start, "end", title'
_INSERT_ARTICLE = _insert("articles", _ARTICLE_COLUMNS)
_INSERT_PASSAGE = _insert("passages", _PASSAGE_COLUMNS)
_FETCH_CHUNK = 500  # keys per query: SQLite's limit on variables is 32,766


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
    page: str | None = None  # a newspaper page's name: the file holds `stories`, its articles
    stories: tuple[Story, ...] = ()

    @property
    def article_count(self) -> int:
        """The articles the file holds, as `Article.article_count` (file_states reads it in SQL)."""
        return len(self.stories) or 1

    def _row(self) -> tuple:
        return (
            _key(self.segment, self.first_doc), self.passages, self.path, self.sha256, self.bytes, self.mtime_ns,
            self.title, self.date, self.author, self.url, self.byline, json.dumps(list(self.repairs), ensure_ascii=False),
            self.page, json.dumps([story.to_json() for story in self.stories], ensure_ascii=False),
        )  # fmt: skip

    def to_json(self) -> dict:
        return {
            **dataclasses.asdict(self), "repairs": list(self.repairs), "stories": [story.to_json() for story in self.stories]
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict) -> ArticleRecord:
        stories = tuple(Story.from_json(story) for story in data.get("stories", ()))
        return cls(**{**data, "repairs": tuple(data["repairs"]), "stories": stories})

    @classmethod
    def _from_row(cls, row: Sequence) -> ArticleRecord:
        segment, first_doc = divmod(row[0], _SEGMENT)
        return cls(
            segment, first_doc, *row[1:11],
            repairs=tuple(json.loads(row[11])) if row[11] != "[]" else (),
            page=row[12],
            stories=tuple(Story.from_json(story) for story in json.loads(row[13])) if row[13] != "[]" else (),
        )  # fmt: skip


class FileState(NamedTuple):
    """What an update compares a corpus file with, and where its passages are: the few
    columns of an article it needs, read for a whole archive at once."""

    segment: int
    first_doc: int
    passages: int
    path: str
    sha256: str
    bytes: int | None
    mtime_ns: int | None
    articles: int = 1  # a newspaper page holds several


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
                version = connection.execute("PRAGMA user_version").fetchone()[0]
                if version not in (0, _SCHEMA_VERSION):
                    raise sqlite3.DatabaseError(f"schema version {version}, this program's is {_SCHEMA_VERSION}")
                connection.executescript(_SCHEMA)
                connection.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            except sqlite3.Error as error:
                raise IndexCorruptError(f"{self.path}: cannot open the passage database ({error}); rebuild with `qa index --rebuild`") from None
            self._local.connection = connection
        return connection

    def checked(self) -> Records:
        """This database, once SQLite has found it whole (IndexCorruptError otherwise)."""
        try:
            result = self._connection().execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as error:
            result = str(error)
        if result != "ok":
            self.close()
            raise IndexCorruptError(f"{self.path}: damaged ({result}); rebuild with `qa index --rebuild`")
        return self

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
                connection.execute(_INSERT_ARTICLE, article._row())
                article_key = _key(segment, article.first_doc)
                connection.executemany(
                    _INSERT_PASSAGE,
                    (
                        (
                            article_key + i, article_key, json.dumps(list(p.headings), ensure_ascii=False), p.text, p.start, p.end,
                            p.article if p.article != article.title else None,
                        )  # fmt: skip
                        for i, p in enumerate(passages)
                    ),
                )

    def copy_segment(self, source: int, kept_docs: Sequence[int], target: int, first: int) -> None:
        """Copy documents `kept_docs` (ascending) of segment `source` into `target`,
        renumbered first, first + 1, …, with their articles (whose documents are kept or
        deleted together)."""
        connection = self._connection()
        new_key = {_key(source, int(doc)): _key(target, first + i) for i, doc in enumerate(kept_docs)}
        low, high = _key(source, 0), _key(source + 1, 0)
        with _transaction(connection):
            for row in connection.execute(f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE key >= ? AND key < ?", (low, high)).fetchall():
                if row[0] in new_key:
                    connection.execute(_INSERT_ARTICLE, (new_key[row[0]], *row[1:]))
            rows = connection.execute(f"SELECT {_PASSAGE_COLUMNS} FROM passages WHERE key >= ? AND key < ?", (low, high))
            connection.executemany(
                _INSERT_PASSAGE, ((new_key[row[0]], new_key[row[1]], *row[2:]) for row in rows.fetchall() if row[0] in new_key)
            )

    def articles(self, segments: Sequence[int]) -> list[ArticleRecord]:
        """Every article written in the given segments (deleted ones included), in key order."""
        out: list[ArticleRecord] = []
        connection = self._connection()
        for segment in sorted(segments):
            rows = connection.execute(
                f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE key >= ? AND key < ? ORDER BY key", (_key(segment, 0), _key(segment + 1, 0))
            )
            out.extend(ArticleRecord._from_row(row) for row in rows)
        return out

    def file_states(self, segments: Sequence[int]) -> list[FileState]:
        """The file state of every article written in the given segments (deleted ones included)."""
        out: list[FileState] = []
        connection = self._connection()
        for segment in sorted(segments):
            rows = connection.execute(
                "SELECT key, passages, path, sha256, bytes, mtime_ns, MAX(1, json_array_length(stories)) FROM articles"
                " WHERE key >= ? AND key < ?",
                (_key(segment, 0), _key(segment + 1, 0)),
            )
            out.extend(FileState(segment, key - segment * _SEGMENT, *rest) for key, *rest in rows)
        return out

    def articles_at(self, path: str) -> list[ArticleRecord]:
        """Every article written from file `path`, in any segment."""
        rows = self._connection().execute(f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE path = ?", (path,))
        return [ArticleRecord._from_row(row) for row in rows]

    def touch(self, article: FileState, size: int, mtime_ns: int) -> None:
        """Record a file's new size and time when its text is unchanged (no new segment)."""
        self._connection().execute(
            "UPDATE articles SET bytes = ?, mtime_ns = ? WHERE key = ?", (size, mtime_ns, _key(article.segment, article.first_doc))
        )

    def passages(self, keys: Sequence[tuple[int, int]], ids: Sequence[str]) -> list[Passage]:
        """The passages at (segment, document) keys, whose ids are `ids`, in the order given."""
        found: dict[int, tuple] = {}
        connection = self._connection()
        wanted = list(dict.fromkeys(_key(*key) for key in keys))
        for start in range(0, len(wanted), _FETCH_CHUNK):
            chunk = wanted[start : start + _FETCH_CHUNK]
            rows = connection.execute(
                f"""SELECT p.key, a.path, COALESCE(p.title, a.title), p.headings, p.text, p.start, p."end"
                    FROM passages p JOIN articles a ON a.key = p.article
                    WHERE p.key IN ({", ".join("?" * len(chunk))})""",
                chunk,
            )
            found.update((row[0], row[1:]) for row in rows)
        out = []
        for key, pid in zip(keys, ids):
            row = found.get(_key(*key))
            if row is None:
                raise IndexCorruptError(f"{self.path}: no passage at (segment, document) {key}; rebuild with `qa index --rebuild`")
            source, title, headings, text, begin, end = row
            out.append(Passage(pid, source, title, tuple(json.loads(headings)), text, begin, end))
        return out

    def segments(self) -> set[int]:
        """Every segment with rows."""
        rows = self._connection().execute("SELECT DISTINCT key >> 32 FROM articles")
        return {row[0] for row in rows}

    def remove_segments(self, segments: Iterable[int]) -> None:
        connection = self._connection()
        with _transaction(connection):
            for segment in segments:
                bounds = (_key(segment, 0), _key(segment + 1, 0))
                connection.execute("DELETE FROM passages WHERE key >= ? AND key < ?", bounds)
                connection.execute("DELETE FROM articles WHERE key >= ? AND key < ?", bounds)


def discard_database(index_dir: Path) -> None:
    """Remove an unreadable database (a rebuild writes a new one)."""
    for file in index_dir.glob(f"{DATABASE}*"):
        file.unlink(missing_ok=True)


@contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
