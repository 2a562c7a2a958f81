"""The index on disk: immutable snapshots and a pointer to the current one.

    index/
      CURRENT                     name of the snapshot in use (replaced atomically)
      .lock                       held by the one process writing a snapshot
      snapshots/<name>/
        manifest.json             who wrote it, counts, sources, file sizes and checksums
        passages.jsonl            one passage per line, in index order
        dense.faiss               FAISS index, one vector per sentence, in passage order
        dense_owners.npy          the passage each vector belongs to
        vectors.npy               the same sentence vectors in float16, memory-mapped: exact
                                  scores for re-ranking and the reader; re-used by updates
        tokens.npy, token_offsets.npy, token_vocab.json
                                  each passage's BM25 tokens, so updates need not re-tokenize
        bm25/                     bm25s arrays (.npy, no pickle) and JSON params

A snapshot is written completely before CURRENT names it, so a reader always sees a
whole index: the old one or the new one. A build killed at any moment leaves CURRENT and
the snapshot it names untouched; its half-written folder is removed by the next build.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .chunk import Passage
from .dense import DenseIndex
from .errors import IndexBusyError, IndexCorruptError, IndexMissingError, IndexWriteError
from .lexical import LexicalIndex

__all__ = [
    "FORMAT_VERSION",
    "Snapshot",
    "TokenStore",
    "current_name",
    "index_lock",
    "load_snapshot",
    "read_manifest",
    "discard_staged",
    "stage_vectors",
    "write_snapshot",
]

FORMAT_VERSION = 4
_POINTER = "CURRENT"
_LOCK = ".lock"
_SNAPSHOTS = "snapshots"
_MANIFEST = "manifest.json"
_PASSAGES = "passages.jsonl"
_DENSE = "dense.faiss"
_OWNERS = "dense_owners.npy"
_VECTORS = "vectors.npy"
_TOKENS = "tokens.npy"
_STAGING = ".staging-"
_STAGE_BLOCKS = 4096  # passages' vector blocks written at once
_TOKEN_OFFSETS = "token_offsets.npy"
_TOKEN_VOCAB = "token_vocab.json"
_LEXICAL = "bm25"
# Files up to this size are checked against their checksum at load; larger ones by size
# and by parsing, so that a large index still opens in seconds.
_VERIFY_MAX_BYTES = 64 << 20


@dataclass(frozen=True)
class TokenStore:
    """Every passage's BM25 tokens: one id array, offsets into it, and the vocabulary."""

    ids: np.ndarray
    offsets: np.ndarray
    vocabulary: tuple[str, ...]

    @classmethod
    def from_ids(cls, id_lists: list[np.ndarray], vocabulary: dict[str, int]) -> TokenStore:
        offsets = np.cumsum([0, *(len(ids) for ids in id_lists)], dtype=np.int64)
        ids = np.concatenate(id_lists).astype(np.int32) if id_lists else np.zeros(0, dtype=np.int32)
        return cls(ids, offsets, tuple(sorted(vocabulary, key=vocabulary.__getitem__)))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def ids_of(self, passage: int) -> np.ndarray:
        return self.ids[self.offsets[passage] : self.offsets[passage + 1]]

    def tokens(self, passage: int) -> list[str]:
        return [self.vocabulary[i] for i in self.ids_of(passage)]


@dataclass(frozen=True)
class Snapshot:
    path: Path
    manifest: dict
    passages: tuple[Passage, ...]
    lexical: LexicalIndex
    dense: DenseIndex
    tokens: TokenStore

    @property
    def name(self) -> str:
        return self.path.name


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
            raise IndexBusyError(
                f"another build of {index_dir} is running ({holder}); wait for it to finish"
            ) from None
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
    """Name of the current snapshot (cheap: reads the pointer only), None without one."""
    try:
        return (index_dir / _POINTER).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def write_snapshot(
    index_dir: Path,
    *,
    passages: list[Passage],
    dense: DenseIndex,
    lexical: LexicalIndex,
    tokens: TokenStore,
    manifest: dict,
) -> Path:
    """Write a new snapshot, make it current, and remove every other snapshot folder.

    Call it holding `index_lock`: removing other folders assumes no other writer.
    """
    if not (len(passages) == dense.size == lexical.size == len(tokens)):
        raise ValueError(
            f"passages ({len(passages)}), vectors ({dense.size}), BM25 documents ({lexical.size}) "
            f"and token lists ({len(tokens)}) differ"
        )
    path: Path | None = None
    try:
        snapshots = index_dir / _SNAPSHOTS
        snapshots.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        path = Path(tempfile.mkdtemp(prefix=f"{stamp}-", dir=snapshots))
        with open(path / _PASSAGES, "w", encoding="utf-8") as out:
            for passage in passages:
                out.write(json.dumps(passage.to_json(), ensure_ascii=False) + "\n")
        dense.save(path / _DENSE, path / _OWNERS)
        _place_vectors(dense.stored_vectors, path / _VECTORS)
        lexical.save(path / _LEXICAL)
        np.save(path / _TOKENS, tokens.ids, allow_pickle=False)
        np.save(path / _TOKEN_OFFSETS, tokens.offsets, allow_pickle=False)
        (path / _TOKEN_VOCAB).write_text(json.dumps(tokens.vocabulary, ensure_ascii=False), encoding="utf-8")
        manifest = {
            **manifest,
            "format_version": FORMAT_VERSION,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "files": _describe_files(path),
        }
        _write_json(path / _MANIFEST, manifest)
        _fsync_tree(path)
        _write_atomically(index_dir / _POINTER, path.name + "\n")
    except (OSError, RuntimeError) as error:  # faiss reports write failures as RuntimeError
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)
        discard_staged(dense.stored_vectors)
        reason = getattr(error, "strerror", None) or str(error)
        raise IndexWriteError(
            f"cannot write the index to {index_dir} ({reason}); the previous index is unchanged and still in use"
        ) from None
    for old in snapshots.iterdir():
        if old != path and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return path


def read_manifest(index_dir: Path) -> dict | None:
    """The current snapshot's manifest, or None when there is no usable index."""
    try:
        return _load_manifest(_current_path(index_dir))
    except (IndexMissingError, IndexCorruptError):
        return None


def load_snapshot(index_dir: Path) -> Snapshot:
    """Load the current snapshot, checking that its parts agree with the manifest."""
    path = _current_path(index_dir)
    manifest = _load_manifest(path)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexCorruptError(
            f"{path / _MANIFEST}: index format {manifest.get('format_version')} is not {FORMAT_VERSION}; "
            f"rebuild it with `qa index --rebuild`"
        )
    for name, expected in manifest.get("files", {}).items():
        file = path / name
        if not file.is_file():
            raise IndexCorruptError(f"{file}: missing from the index; rebuild it with `qa index --rebuild`")
        if file.stat().st_size != expected["bytes"]:
            raise IndexCorruptError(
                f"{file}: {file.stat().st_size} bytes, the manifest says {expected['bytes']} "
                f"(truncated or modified); rebuild it with `qa index --rebuild`"
            )
        if expected["bytes"] <= _VERIFY_MAX_BYTES and _sha256(file) != expected["sha256"]:
            raise IndexCorruptError(
                f"{file}: contents differ from the manifest's checksum (corrupted); rebuild it with `qa index --rebuild`"
            )
    passages = _load_passages(path / _PASSAGES)
    try:
        tokens = TokenStore(
            np.load(path / _TOKENS, mmap_mode="r", allow_pickle=False),
            np.load(path / _TOKEN_OFFSETS, allow_pickle=False),
            tuple(json.loads((path / _TOKEN_VOCAB).read_text(encoding="utf-8"))),
        )
    except (OSError, ValueError) as error:
        raise IndexCorruptError(f"{path / _TOKENS}: unreadable token lists ({error})") from None
    try:
        vectors = np.load(path / _VECTORS, mmap_mode="r", allow_pickle=False)
        dense = DenseIndex.load(path / _DENSE, path / _OWNERS, vectors)
    except (RuntimeError, ValueError, OSError) as error:
        raise IndexCorruptError(f"{path / _DENSE}: unreadable dense index ({error})") from None
    try:
        lexical = LexicalIndex.load(path / _LEXICAL)
    except (OSError, ValueError, KeyError) as error:
        raise IndexCorruptError(f"{path / _LEXICAL}: unreadable BM25 index ({error})") from None
    expected = manifest["counts"]["passages"]
    if not (len(passages) == dense.size == lexical.size == len(tokens) == expected):
        raise IndexCorruptError(
            f"{path}: counts disagree: manifest {expected} passages, {_PASSAGES} {len(passages)}, "
            f"{_DENSE} {dense.size} passages' vectors, {_LEXICAL} {lexical.size} documents, "
            f"{_TOKENS} {len(tokens)} token lists; rebuild with `qa index --rebuild`"
        )
    if dense.dimension != manifest["model"]["dimension"]:
        raise IndexCorruptError(f"{path / _DENSE}: {dense.dimension}-dimensional vectors, manifest says {manifest['model']['dimension']}")
    return Snapshot(path, manifest, tuple(passages), lexical, dense, tokens)


def _current_path(index_dir: Path) -> Path:
    pointer = index_dir / _POINTER
    if not pointer.is_file():
        raise IndexMissingError(f"no index in {index_dir}; build one with `qa index --index {index_dir}`")
    name = pointer.read_text(encoding="utf-8").strip()
    path = index_dir / _SNAPSHOTS / name
    if not name or "/" in name or not path.is_dir():
        raise IndexCorruptError(f"{pointer} names snapshot {name!r}, which does not exist; rebuild with `qa index --rebuild`")
    return path


def _load_manifest(path: Path) -> dict:
    file = path / _MANIFEST
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexCorruptError(f"{file}: missing; rebuild with `qa index --rebuild`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise IndexCorruptError(f"{file}: not valid JSON ({error}); rebuild with `qa index --rebuild`") from None
    if not isinstance(manifest, dict) or "counts" not in manifest or "model" not in manifest:
        raise IndexCorruptError(f"{file}: not a manifest of this program; rebuild with `qa index --rebuild`")
    return manifest


def _load_passages(file: Path) -> list[Passage]:
    passages: list[Passage] = []
    with open(file, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                passages.append(Passage.from_json(json.loads(line)))
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise IndexCorruptError(f"{file}: line {number} is not a passage ({error})") from None
    return passages


def stage_vectors(index_dir: Path, blocks: list[np.ndarray]) -> np.memmap:
    """Write row blocks to one float16 .npy in a staging folder and map it, read-only.

    The next snapshot takes the file over (`write_snapshot`); a build that dies leaves
    the folder to the next build's clean-up. Written with plain writes, a batch of blocks
    at a time: never all rows in memory at once, nor dirty mapped pages.
    """
    if not blocks:
        raise ValueError("no vectors to stage")
    try:
        snapshots = index_dir / _SNAPSHOTS
        snapshots.mkdir(parents=True, exist_ok=True)
        file = Path(tempfile.mkdtemp(prefix=_STAGING, dir=snapshots)) / _VECTORS
        header = {
            "descr": np.lib.format.dtype_to_descr(np.dtype(np.float16)),
            "fortran_order": False,
            "shape": (sum(len(block) for block in blocks), blocks[0].shape[1]),
        }
        with open(file, "wb") as out:
            np.lib.format.write_array_header_2_0(out, header)
            for start in range(0, len(blocks), _STAGE_BLOCKS):
                out.write(np.concatenate(blocks[start : start + _STAGE_BLOCKS]).astype(np.float16, copy=False).tobytes())
    except OSError as error:
        raise IndexWriteError(
            f"cannot write the index to {index_dir} ({error.strerror or error}); the previous index is unchanged and still in use"
        ) from None
    return np.load(file, mmap_mode="r", allow_pickle=False)


def discard_staged(vectors: np.ndarray) -> None:
    """Remove the staging folder of vectors that will not become part of a snapshot."""
    staged = _staged_file(vectors)
    if staged is not None:
        shutil.rmtree(staged.parent, ignore_errors=True)


def _staged_file(vectors: np.ndarray) -> Path | None:
    filename = getattr(vectors, "filename", None)
    if isinstance(vectors, np.memmap) and filename and Path(filename).parent.name.startswith(_STAGING):
        return Path(filename)
    return None


def _place_vectors(vectors: np.ndarray, file: Path) -> None:
    """Move staged vectors into a snapshot; save any other array."""
    staged = _staged_file(vectors)
    if staged is not None:
        os.replace(staged, file)
        shutil.rmtree(staged.parent, ignore_errors=True)
    else:
        np.save(file, np.asarray(vectors, dtype=np.float16), allow_pickle=False)


def _describe_files(path: Path) -> dict[str, dict]:
    return {
        file.relative_to(path).as_posix(): {"bytes": file.stat().st_size, "sha256": _sha256(file)}
        for file in sorted(p for p in path.rglob("*") if p.is_file())
    }


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(file: Path, data: dict) -> None:
    file.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _write_atomically(file: Path, text: str) -> None:
    temporary = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, file)
    _fsync_dir(file.parent)


def _fsync_tree(path: Path) -> None:
    for file in path.rglob("*"):
        if file.is_file():
            with open(file, "rb") as data:
                os.fsync(data.fileno())
    for directory in [*(p for p in path.rglob("*") if p.is_dir()), path, path.parent]:
        _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
