"""The index on disk: immutable snapshots and a pointer to the current one.

    index/
      CURRENT                     name of the snapshot in use (replaced atomically)
      snapshots/<name>/
        manifest.json             who wrote it, counts, sources, file sizes and checksums
        passages.jsonl            one passage per line, in index order
        dense.faiss               FAISS index, one vector per sentence, in passage order
        dense_owners.npy          the passage each vector belongs to
        bm25/                     bm25s arrays (.npy, no pickle) and JSON params

A snapshot is written completely before CURRENT names it, so a reader always sees a
whole index: the old one or the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .chunk import Passage
from .dense import DenseIndex
from .errors import IndexCorruptError, IndexMissingError
from .lexical import LexicalIndex

__all__ = ["FORMAT_VERSION", "Snapshot", "write_snapshot", "load_snapshot", "read_manifest"]

FORMAT_VERSION = 1
_POINTER = "CURRENT"
_SNAPSHOTS = "snapshots"
_MANIFEST = "manifest.json"
_PASSAGES = "passages.jsonl"
_DENSE = "dense.faiss"
_OWNERS = "dense_owners.npy"
_LEXICAL = "bm25"


@dataclass(frozen=True)
class Snapshot:
    path: Path
    manifest: dict
    passages: tuple[Passage, ...]
    lexical: LexicalIndex
    dense: DenseIndex


def write_snapshot(
    index_dir: Path,
    *,
    passages: list[Passage],
    dense: DenseIndex,
    lexical: LexicalIndex,
    manifest: dict,
) -> Path:
    """Write a new snapshot, make it current, and remove the ones it replaces."""
    if not (len(passages) == dense.size == lexical.size):
        raise ValueError(f"passages ({len(passages)}), vectors ({dense.size}) and BM25 documents ({lexical.size}) differ")
    snapshots = index_dir / _SNAPSHOTS
    snapshots.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = Path(tempfile.mkdtemp(prefix=f"{stamp}-", dir=snapshots))

    with open(path / _PASSAGES, "w", encoding="utf-8") as out:
        for passage in passages:
            out.write(json.dumps(passage.to_json(), ensure_ascii=False) + "\n")
    dense.save(path / _DENSE, path / _OWNERS)
    lexical.save(path / _LEXICAL)

    manifest = {
        **manifest,
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "files": _describe_files(path),
    }
    _write_json(path / _MANIFEST, manifest)
    _fsync_tree(path)

    _write_atomically(index_dir / _POINTER, path.name + "\n")
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
    passages = _load_passages(path / _PASSAGES)
    try:
        dense = DenseIndex.load(path / _DENSE, path / _OWNERS)
    except (RuntimeError, ValueError, OSError) as error:
        raise IndexCorruptError(f"{path / _DENSE}: unreadable dense index ({error})") from None
    try:
        lexical = LexicalIndex.load(path / _LEXICAL)
    except (OSError, ValueError, KeyError) as error:
        raise IndexCorruptError(f"{path / _LEXICAL}: unreadable BM25 index ({error})") from None
    expected = manifest["counts"]["passages"]
    if not (len(passages) == dense.size == lexical.size == expected):
        raise IndexCorruptError(
            f"{path}: counts disagree: manifest {expected} passages, {_PASSAGES} {len(passages)}, "
            f"{_DENSE} {dense.size} vectors, {_LEXICAL} {lexical.size} documents; rebuild with `qa index --rebuild`"
        )
    if dense.dimension != manifest["model"]["dimension"]:
        raise IndexCorruptError(f"{path / _DENSE}: {dense.dimension}-dimensional vectors, manifest says {manifest['model']['dimension']}")
    return Snapshot(path, manifest, tuple(passages), lexical, dense)


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


def _describe_files(path: Path) -> dict[str, dict]:
    files = {}
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with open(file, "rb") as data:
            for block in iter(lambda: data.read(1 << 20), b""):
                digest.update(block)
        files[file.relative_to(path).as_posix()] = {"bytes": file.stat().st_size, "sha256": digest.hexdigest()}
    return files


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
