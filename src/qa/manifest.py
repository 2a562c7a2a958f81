"""The index manifest: what a commit of the index holds and how it was made.

One typed definition, read and written here only (qa.store calls `write_manifest` and
`read_manifest`). A commit lists its segments with their deletion marks; `IndexSettings`
records every setting that changes what is indexed, and `rebuild_reason` is the one place
that decides whether an existing index can be updated or must be rebuilt, and why.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import IndexCorruptError, IndexFormatError

__all__ = [
    "FORMAT_VERSION",
    "Bm25Params",
    "Chunking",
    "IndexSettings",
    "Manifest",
    "SegmentEntry",
    "read_manifest",
    "rebuild_reason",
    "write_manifest",
]

# 5: segments (postings by term hash, int8 sentence vectors) and passages in SQLite.
# 6: a newspaper page's articles (article records' page and stories, passages' titles).
# 7: BM25 document numbers in 2 bytes, by blocks of 65,536 documents (qa.lexical).
# 8: compressed dense segments as centred sign codes with estimate factors (qa.dense).
FORMAT_VERSION = 8


@dataclass(frozen=True)
class Chunking:
    max_chars: int
    min_chars: int


@dataclass(frozen=True)
class Bm25Params:
    k1: float
    b: float
    method: str = "lucene"


@dataclass(frozen=True)
class IndexSettings:
    """Everything that changes what is indexed: a difference in any field means rebuild."""

    model: str
    tokenizer: str
    sentence_splitter: str  # the unit each dense vector stands for
    chunking: Chunking
    bm25: Bm25Params

    @classmethod
    def from_json(cls, data: dict) -> IndexSettings:
        return cls(
            model=data["model"],
            tokenizer=data["tokenizer"],
            sentence_splitter=data["sentence_splitter"],
            chunking=Chunking(**data["chunking"]),
            bm25=Bm25Params(**data["bm25"]),
        )


@dataclass(frozen=True)
class SegmentEntry:
    """A segment as one commit sees it: its documents and which of them are deleted."""

    name: str
    docs: int  # documents written in the segment, deleted or not
    deleted: int = 0
    deletions: str | None = None  # file in the segment's folder marking deleted documents

    @property
    def live(self) -> int:
        return self.docs - self.deleted


@dataclass(frozen=True)
class Manifest:
    generation: int
    settings: IndexSettings
    dimension: int  # of the model's vectors
    segments: tuple[SegmentEntry, ...]
    articles: int  # live articles
    created_at: str
    libraries: dict[str, str] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def name(self) -> str:
        return commit_file_name(self.generation)

    @property
    def passages(self) -> int:
        return sum(segment.live for segment in self.segments)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Manifest:
        return cls(
            generation=int(data["generation"]),
            settings=IndexSettings.from_json(data["settings"]),
            dimension=int(data["dimension"]),
            segments=tuple(SegmentEntry(**segment) for segment in data["segments"]),
            articles=int(data["articles"]),
            created_at=data["created_at"],
            libraries=dict(data.get("libraries", {})),
            format_version=int(data["format_version"]),
        )


def commit_file_name(generation: int) -> str:
    return f"commit-{generation:08d}.json"


def rebuild_reason(have: IndexSettings | None, wanted: IndexSettings) -> str | None:
    """Why an index built with settings `have` cannot be updated to `wanted`; None when it can."""
    if have is None:
        return None
    for name, label in (
        ("model", "model"),
        ("tokenizer", "tokenizer"),
        ("sentence_splitter", "sentence splitter"),
        ("chunking", "chunking settings"),
        ("bm25", "BM25 parameters"),
    ):
        before, after = getattr(have, name), getattr(wanted, name)
        if before != after:
            return f"{label} changed from {_show(before)} to {_show(after)}"
    return None


def _show(value) -> str:
    return repr(value) if isinstance(value, str) else json.dumps(asdict(value) if hasattr(value, "__dataclass_fields__") else value)


def write_manifest(file: Path, manifest: Manifest) -> None:
    """Write `manifest` to `file` (the caller makes it durable and current)."""
    file.write_text(json.dumps(manifest.to_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def read_manifest(file: Path) -> Manifest:
    """The manifest in `file`; IndexCorruptError saying what is wrong and what to do."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexCorruptError(f"{file}: missing; rebuild with `qa index --rebuild`") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise IndexCorruptError(f"{file}: not valid JSON ({error}); rebuild with `qa index --rebuild`") from None
    if not isinstance(data, dict) or "format_version" not in data:
        raise IndexCorruptError(f"{file}: not a manifest of this program; rebuild with `qa index --rebuild`")
    if data["format_version"] != FORMAT_VERSION:
        raise IndexFormatError(
            f"{file}: index format {data['format_version']}, this program's is {FORMAT_VERSION}; `qa index` rebuilds it"
        )
    try:
        return Manifest.from_json(data)
    except (KeyError, TypeError, ValueError) as error:
        raise IndexCorruptError(f"{file}: incomplete manifest ({error!r}); rebuild with `qa index --rebuild`") from None
