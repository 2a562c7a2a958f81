"""A segment: an immutable part of the index, written once and never changed.

    segments/<number>/
      segment.json                 document and vector counts, each file's size
      terms.npy starts.npy docs.npy freqs.npy lengths.npy     BM25 postings (qa.lexical)
      dense.faiss owners.npy codes.npy scales.npy              sentence vectors (qa.dense)
      factors.npy                  compressed segments' estimate factors (qa.dense)
      deleted-<generation>.npy     documents deleted as of a commit (packed bits); a new
                                   commit that deletes more writes a new file

A segment is written into a hidden folder and renamed into place once complete and on
disk, so a folder with a segment's name is always whole. Its passages' text lives in the
index's SQLite database (qa.records), under the segment's number.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from . import arrays
from .dense import SegmentVectors
from .errors import IndexCorruptError
from .lexical import Postings

__all__ = ["Segment", "read_deletions", "segment_name", "write_deletions", "write_segment"]

_DESCRIPTION = "segment.json"
_IDS = "ids.npy"
_DELETIONS = "deleted-{generation:08d}.npy"


def segment_name(number: int) -> str:
    return f"{number:08d}"


@dataclass(frozen=True)
class Segment:
    number: int
    path: Path
    postings: Postings
    ids: np.ndarray  # uint64: each document's passage id as a number (qa.chunk.id_number)

    @property
    def docs(self) -> int:
        return self.postings.size

    @property
    def name(self) -> str:
        return segment_name(self.number)

    @cached_property
    def vectors(self) -> SegmentVectors:
        """The sentence vectors, read on first use (an index update rarely needs them)."""
        try:
            vectors = SegmentVectors.load(self.path)
        except (OSError, ValueError, RuntimeError) as error:  # faiss reports read failures as RuntimeError
            raise IndexCorruptError(f"{self.path}: unreadable dense index ({error}); rebuild with `qa index --rebuild`") from None
        if len(vectors.owners) and vectors.owners[-1] + 1 != self.docs:
            raise IndexCorruptError(f"{self.path}: postings and vectors disagree on the document count; rebuild with `qa index --rebuild`")
        return vectors

    @classmethod
    def open(cls, segments_dir: Path, number: int) -> Segment:
        path = segments_dir / segment_name(number)
        try:
            description = json.loads((path / _DESCRIPTION).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise IndexCorruptError(f"{path}: missing or unreadable segment ({error}); rebuild with `qa index --rebuild`") from None
        for name, size in description["files"].items():
            file = path / name
            actual = file.stat().st_size if file.is_file() else None
            if actual != size:
                raise IndexCorruptError(
                    f"{file}: {'missing' if actual is None else f'{actual} bytes, the segment says {size}'} "
                    "(truncated or modified); rebuild it with `qa index --rebuild`"
                )
        try:
            ids = arrays.load(path / _IDS)
            segment = cls(number, path, Postings.load(path), ids)
        except (OSError, ValueError) as error:
            raise IndexCorruptError(f"{path}: unreadable segment ({error}); rebuild with `qa index --rebuild`") from None
        if segment.docs != description["docs"] or len(ids) != segment.docs:
            raise IndexCorruptError(f"{path}: postings and passage ids disagree on the document count; rebuild with `qa index --rebuild`")
        return segment

    def nbytes(self) -> dict[str, int]:
        """Bytes on disk by part."""
        sizes = {"bm25": 0, "dense index": 0, "vectors": 0, "ids": 0}
        for file in self.path.iterdir():
            part = "bm25" if file.name in {f"{n}.npy" for n in Postings._FILES} else "dense index" if file.name in SegmentVectors.INDEX_FILES else "vectors" if file.name in SegmentVectors.ROW_FILES else "ids" if file.name == _IDS else None
            if part:
                sizes[part] += file.stat().st_size
        return sizes


def write_segment(segments_dir: Path, number: int, postings: Postings, vectors: SegmentVectors, *, ids: np.ndarray) -> Segment:
    """Write a complete segment, durable, under its number; returns it opened."""
    if postings.size != int(vectors.owners[-1]) + 1:
        raise ValueError(f"{postings.size} documents in the postings, {int(vectors.owners[-1]) + 1} with vectors")
    segments_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{segment_name(number)}-", dir=segments_dir))
    try:
        postings.save(staging)
        vectors.save(staging)
        np.save(staging / _IDS, np.asarray(ids, dtype=np.uint64), allow_pickle=False)
        files = {file.name: file.stat().st_size for file in sorted(staging.iterdir())}
        (staging / _DESCRIPTION).write_text(
            json.dumps({"docs": postings.size, "vectors": int(vectors.index.ntotal), "factory": vectors.factory, "files": files}) + "\n",
            encoding="utf-8",
        )
        for file in staging.iterdir():
            _fsync_file(file)
        final = segments_dir / segment_name(number)
        os.rename(staging, final)
        fsync_dir(segments_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Segment.open(segments_dir, number)


def write_deletions(segment: Segment, generation: int, deleted: np.ndarray) -> str:
    """Write the deleted-document marks of `segment` as of commit `generation`; returns the file name."""
    name = _DELETIONS.format(generation=generation)
    temporary = segment.path / f".{name}.tmp"
    with open(temporary, "wb") as out:
        np.save(out, np.packbits(deleted.astype(bool)), allow_pickle=False)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, segment.path / name)
    fsync_dir(segment.path)
    return name


def read_deletions(segment: Segment, name: str) -> np.ndarray:
    """The live mask of `segment` under deletion file `name`."""
    file = segment.path / name
    try:
        packed = arrays.load(file, mapped=False)
    except (OSError, ValueError) as error:
        raise IndexCorruptError(f"{file}: unreadable deletion marks ({error}); rebuild with `qa index --rebuild`") from None
    return ~np.unpackbits(packed, count=segment.docs).astype(bool)


def _fsync_file(file: Path) -> None:
    with open(file, "rb") as data:
        os.fsync(data.fileno())


def fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
