"""The index on disk: immutable segments, commit points, and a pointer to the current one.

    index/
      CURRENT                  name of the current commit (replaced atomically)
      .lock                    held by the one process writing
      commits/commit-N.json    a commit point: the typed manifest (qa.manifest) listing its
                               segments and each one's deletion marks
      segments/<number>/       immutable segments (qa.segment)
      passages.sqlite          articles and passages by (segment, document) (qa.records)

An update writes a new segment (new and changed articles) and new deletion marks for the
segments whose passages it replaces or removes, then a commit point naming them, then
CURRENT. A reader sees the commit CURRENT named when it opened the index, whole, until it
lets go: it holds a shared lock on that commit's file, and the clean-up (`collect_garbage`)
removes only commit files nobody holds, then segments, deletion marks and database rows
that no remaining commit names. A write killed at any moment leaves CURRENT and what it
names untouched; its debris is removed by the next write.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import IO

import numpy as np

from .backend import top_positions
from .chunk import Passage, id_of_number
from .dense import Dense
from .errors import IndexBusyError, IndexCorruptError, IndexFormatError, IndexMissingError, IndexWriteError
from .lexical import Bm25
from .manifest import Manifest, commit_file_name, read_manifest, write_manifest
from .records import ArticleRecord, FileState, Records
from .segment import Segment, fsync_dir, read_deletions

__all__ = [
    "Snapshot",
    "collect_garbage",
    "commit",
    "current_name",
    "index_lock",
    "load_snapshot",
    "next_generation",
    "read_current_manifest",
    "segments_dir",
    "writing",
]

_POINTER = "CURRENT"
_LOCK = ".lock"
_COMMITS = "commits"
_SEGMENTS = "segments"
_OPEN_ATTEMPTS = 5  # a commit replaced and removed while being opened: read CURRENT again


def segments_dir(index_dir: Path) -> Path:
    return index_dir / _SEGMENTS


class Snapshot:
    """The index as one commit left it: search structures over its segments' live
    documents, numbered in segment order ("positions"), and their passages by position."""

    def __init__(self, index_dir: Path, manifest: Manifest, segments: Sequence[Segment], pin: IO | None) -> None:
        self.index_dir = index_dir
        self.manifest = manifest
        self.segments = tuple(segments)
        self.records = Records(index_dir)
        self._pin = pin  # shared lock on the commit file: the clean-up leaves this commit alone
        self._live = [
            None if entry.deletions is None else read_deletions(segment, entry.deletions)
            for entry, segment in zip(manifest.segments, self.segments)
        ]
        self._bases = np.cumsum([0, *(s.docs for s in self.segments)])
        self.size = int(self._bases[-1])  # positions, deleted documents included
        # each position's passage id as a number: ties are broken by it, the same however
        # the index is split into segments
        self.keys = np.concatenate([s.ids for s in self.segments]) if self.segments else np.zeros(0, np.uint64)
        self._segment_index = {s.number: i for i, s in enumerate(self.segments)}
        self._articles: dict[str, ArticleRecord] | None = None

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def model(self) -> str:
        return self.manifest.settings.model

    @property
    def passage_count(self) -> int:
        return self.manifest.passages

    # Built on first use: an index update reads the commit without searching it.
    @cached_property
    def lexical(self) -> Bm25:
        return Bm25([(s.postings, live) for s, live in zip(self.segments, self._live)], self.manifest.settings.bm25)

    @cached_property
    def dense(self) -> Dense:
        return Dense([(s.vectors, live) for s, live in zip(self.segments, self._live)], [s.docs for s in self.segments], self.keys)

    def close(self) -> None:
        """Let go of the commit (the clean-up may then remove it) and of the database."""
        self.records.close()
        if self._pin is not None:
            self._pin.close()
            self._pin = None

    # qa.backend.PassageIndex: positions are the passages' names
    @property
    def built(self) -> str:
        return self.manifest.created_at

    def load(self) -> None:
        _ = self.lexical, self.dense

    def sample_passages(self, count: int) -> list[Passage]:
        positions = self.live_positions()
        step = max(1, len(positions) // max(1, count))
        return self.passages_at(positions[::step][:count].tolist())

    def search_bm25(self, tokens: list[str], k: int) -> ScoreArrayHits:
        scores = self.lexical.scores(tokens)
        return ScoreArrayHits(scores, top_positions(scores, k, self.keys).tolist())

    def search_dense(self, vector: np.ndarray, k: int, *, map_segments: Callable = map) -> tuple[np.ndarray, np.ndarray]:
        return self.dense.search(vector, k, map_segments=map_segments)

    def cosines(self, vector: np.ndarray, ids: np.ndarray) -> np.ndarray:
        return self.dense.scores_of(vector, ids)

    def sentence_cosines(self, vector: np.ndarray, id: int) -> np.ndarray:
        return self.dense.sentence_scores(vector, id)

    def tie_keys(self, ids: np.ndarray) -> np.ndarray:
        return self.keys[ids]

    def key(self, position: int) -> tuple[int, int]:
        """(segment number, document) of a position."""
        segment = int(np.searchsorted(self._bases, position, side="right")) - 1
        return self.segments[segment].number, int(position - self._bases[segment])

    def passages_at(self, positions: Sequence[int]) -> list[Passage]:
        return self.records.passages([self.key(int(p)) for p in positions], [id_of_number(self.keys[p]) for p in positions])

    def passage(self, position: int) -> Passage:
        return self.passages_at([position])[0]

    def live_positions(self) -> np.ndarray:
        parts = [
            np.arange(base, base + s.docs) if live is None else base + np.flatnonzero(live)
            for s, live, base in zip(self.segments, self._live, self._bases)
        ]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def live_passages(self) -> list[Passage]:
        """Every live passage, in position order (reads them all: for tools and small indexes)."""
        return self.passages_at(self.live_positions().tolist())

    def live_mask(self, segment: int) -> np.ndarray:
        """Live documents of the i-th segment of this commit."""
        live = self._live[segment]
        return np.ones(self.segments[segment].docs, dtype=bool) if live is None else live

    def articles(self) -> list[ArticleRecord]:
        """The live articles, in index order."""
        return list(self._article_index().values())

    def file_states(self) -> dict[str, FileState]:
        """The live articles' file states by path (what an update compares the corpus with)."""
        states = self.records.file_states([s.number for s in self.segments])
        return {state.path: state for state in states if self._is_live(state)}

    def article(self, path: str) -> ArticleRecord | None:
        """The live article of file `path` (one indexed query; the list is not loaded)."""
        if self._articles is not None:
            return self._articles.get(path)
        for record in self.records.articles_at(path):
            if record.segment in self._segment_index and self._is_live(record):
                return record
        return None

    def _is_live(self, record: ArticleRecord | FileState) -> bool:
        live = self._live[self._segment_index[record.segment]]
        return live is None or bool(live[record.first_doc])

    def _article_index(self) -> dict[str, ArticleRecord]:
        if self._articles is None:
            self._articles = {a.path: a for a in self.records.articles([s.number for s in self.segments]) if self._is_live(a)}
        return self._articles

    def nbytes(self) -> dict[str, int]:
        """Bytes on disk by part, for the benchmark."""
        sizes: dict[str, int] = {}
        for segment in self.segments:
            for part, size in segment.nbytes().items():
                sizes[part] = sizes.get(part, 0) + size
        sizes["passages (SQLite)"] = sum(f.stat().st_size for f in self.index_dir.glob("passages.sqlite*"))
        return sizes


@dataclass(frozen=True)
class LocalSource:
    """qa.backend.IndexSource of an index folder: its commits, as CURRENT names them."""

    index_dir: Path

    def current_name(self) -> str | None:
        return current_name(self.index_dir)

    def open(self) -> Snapshot:
        return load_snapshot(self.index_dir)


@dataclass(frozen=True)
class ScoreArrayHits:
    """BM25 hits of a local commit: every position's score, computed anyway."""

    scores: np.ndarray
    ids: list[int]

    @property
    def best(self) -> float:
        return float(self.scores[self.ids[0]]) if self.ids else 0.0

    def scores_of(self, ids: np.ndarray) -> np.ndarray:
        return self.scores[ids]


@contextmanager
def index_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index's writer lock, or raise IndexBusyError naming the holder."""
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        lock = open(index_dir / _LOCK, "a+", encoding="utf-8")
    except OSError as error:
        raise IndexWriteError(f"cannot write to {index_dir} ({error.strerror or error})") from None
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise IndexBusyError(f"another build of {index_dir} is running ({holder}); wait for it to finish") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}, started {datetime.now(timezone.utc).isoformat(timespec='seconds')}")
        lock.flush()
        try:
            yield
        finally:
            lock.seek(0)
            lock.truncate()
            fcntl.flock(lock, fcntl.LOCK_UN)


def current_name(index_dir: Path) -> str | None:
    """Name of the current commit (cheap: reads the pointer only), None without one."""
    try:
        return (index_dir / _POINTER).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def load_snapshot(index_dir: Path) -> Snapshot:
    """Open the current commit and hold it until the snapshot is let go."""
    for _ in range(_OPEN_ATTEMPTS):
        file = _current_commit_file(index_dir)
        try:
            pin = open(file, "rb")
        except FileNotFoundError:
            continue  # replaced and cleaned up meanwhile
        fcntl.flock(pin, fcntl.LOCK_SH)
        try:
            if os.stat(file).st_ino != os.fstat(pin.fileno()).st_ino:
                raise FileNotFoundError(file)
        except FileNotFoundError:
            pin.close()
            continue
        try:
            manifest = read_manifest(file)
            segments = [Segment.open(segments_dir(index_dir), int(entry.name)) for entry in manifest.segments]
            return Snapshot(index_dir, manifest, segments, pin)
        except BaseException:
            pin.close()
            raise
    raise IndexBusyError(f"{index_dir}: the index changed {_OPEN_ATTEMPTS} times while it was being opened; try again")


def read_current_manifest(index_dir: Path) -> Manifest | None:
    """The current commit's manifest, or None when there is no usable index."""
    try:
        return read_manifest(_current_commit_file(index_dir))
    except (IndexMissingError, IndexCorruptError):
        return None


def _current_commit_file(index_dir: Path) -> Path:
    pointer = index_dir / _POINTER
    if not pointer.is_file():
        raise IndexMissingError(f"no index in {index_dir}; build one with `qa index --index {index_dir}`")
    name = pointer.read_text(encoding="utf-8").strip()
    if not name.startswith("commit-"):
        raise IndexFormatError(f"{pointer} names {name!r}: an index in the format before segments; `qa index` rebuilds it")
    file = index_dir / _COMMITS / name
    if "/" in name or not file.is_file():
        raise IndexCorruptError(f"{pointer} names commit {name!r}, which does not exist; rebuild with `qa index --rebuild`")
    return file


def next_generation(index_dir: Path) -> int:
    """A commit generation and segment number never used in this index (call under the lock)."""
    used = [0]
    for folder, prefix in ((index_dir / _COMMITS, "commit-"), (segments_dir(index_dir), "")):
        if folder.is_dir():
            for entry in folder.iterdir():
                digits = entry.name.removeprefix(prefix).removeprefix(".").split(".")[0].split("-")[0]
                if digits.isdigit():
                    used.append(int(digits))
    used.extend(Records(index_dir).segments() if (index_dir / "passages.sqlite").exists() else ())
    return max(used) + 1


@contextmanager
def writing(index_dir: Path) -> Iterator[None]:
    """Report a failed write (disk full, no permission; FAISS says RuntimeError, SQLite its
    own error) as IndexWriteError: nothing is committed, the previous index serves on."""
    try:
        yield
    except (OSError, RuntimeError, sqlite3.Error) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise IndexWriteError(
            f"cannot write the index to {index_dir} ({reason}); the previous index is unchanged and still in use"
        ) from None


def commit(index_dir: Path, manifest: Manifest) -> None:
    """Make `manifest` the current commit (its segments and deletion marks are on disk)."""
    with writing(index_dir):
        commits = index_dir / _COMMITS
        commits.mkdir(parents=True, exist_ok=True)
        file = commits / commit_file_name(manifest.generation)
        temporary = commits / f".{file.name}.tmp"
        write_manifest(temporary, manifest)
        with open(temporary, "rb") as data:
            os.fsync(data.fileno())
        os.replace(temporary, file)
        fsync_dir(commits)
        pointer = index_dir / _POINTER
        staged = index_dir / f".{_POINTER}.{os.getpid()}.tmp"
        with open(staged, "w", encoding="utf-8") as out:
            out.write(file.name + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(staged, pointer)
        fsync_dir(index_dir)


def collect_garbage(index_dir: Path) -> None:
    """Remove what no commit in use names: older commits nobody holds open, then segments,
    deletion marks, staging leftovers and database rows of no remaining commit.

    Call it holding `index_lock`.
    """
    commits = index_dir / _COMMITS
    current = current_name(index_dir)
    kept: list[Manifest] = []
    for file in sorted(commits.glob("commit-*.json")) if commits.is_dir() else []:
        if file.name == current or not _remove_unless_held(file):
            kept.append(read_manifest(file))
    for leftover in commits.glob(".*") if commits.is_dir() else []:
        leftover.unlink(missing_ok=True)
    referenced = {entry.name: set() for manifest in kept for entry in manifest.segments}
    for manifest in kept:
        for entry in manifest.segments:
            if entry.deletions:
                referenced[entry.name].add(entry.deletions)
    folder = segments_dir(index_dir)
    for entry in folder.iterdir() if folder.is_dir() else []:
        if entry.name not in referenced:
            shutil.rmtree(entry, ignore_errors=True)
            continue
        for file in entry.glob("deleted-*"):
            if file.name not in referenced[entry.name]:
                file.unlink(missing_ok=True)
        for file in entry.glob(".*"):
            file.unlink(missing_ok=True)
    for leftover in index_dir.glob(f".{_POINTER}.*.tmp"):
        leftover.unlink(missing_ok=True)
    if (index_dir / "passages.sqlite").exists():
        records = Records(index_dir)
        try:
            records.remove_segments(records.segments() - {int(name) for name in referenced})
        finally:
            records.close()
    for old in ("snapshots",):  # the folder of indexes written before segments
        shutil.rmtree(index_dir / old, ignore_errors=True)


def _remove_unless_held(file: Path) -> bool:
    """Delete a commit file unless a reader holds it; True if deleted."""
    try:
        with open(file, "rb") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            file.unlink()
            return True
    except FileNotFoundError:
        return True

