"""Where the index lives, and the one interface the assistant searches it through.

Two backends implement `PassageIndex`: the local files (`qa.store.Snapshot`, the default)
and Milvus (`qa.milvus.MilvusIndex`: Milvus Lite in a file, or a Milvus server or
cluster). Both return candidates only; question analysis, fusion and the reader stay the
project's own (`qa.search`, `qa.span_reader`), so a backend changes where passages are
kept, not how questions are answered.

A passage is named by an integer the backend chooses (a position in a local commit, the
primary key in Milvus); ties between equal scores are broken by the passage id's number
(`tie_keys`), so the order does not depend on the backend or on how the index is split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from .chunk import Passage
    from .config import Settings
    from .records import ArticleRecord

__all__ = ["BACKEND_HELP", "TOKEN_VARIABLE", "Backend", "IndexSource", "LexicalHits", "PassageIndex", "index_source", "top_positions"]

_MILVUS = "milvus:"
# top_positions: blocks of scores per position asked for, and the narrowest block worth it
_FLOOR_BLOCKS_PER_HIT = 4
_MIN_FLOOR_BLOCK = 16

TOKEN_VARIABLE = "MILVUS_TOKEN"  # a Milvus server's "user:password" or API key
BACKEND_HELP = (
    "where the index lives: the index folder (default) or Milvus (milvus:FILE.db for Milvus Lite, "
    f"milvus:http://host:port for a server; its token from ${TOKEN_VARIABLE})"
)


@dataclass(frozen=True)
class Backend:
    """`--backend`: "local" (the index folder) or "milvus:URI[,URI…]": a Milvus Lite file such
    as `qa.db`, or `http://host:port` of a Milvus server; several URIs share the articles
    out among as many Milvus nodes (qa.milvus.route). A server's token, if any, comes from
    the environment variable TOKEN_VARIABLE names, never from the command line."""

    nodes: tuple[str, ...] = ()  # Milvus URIs; none: the local index folder

    @classmethod
    def parse(cls, text: str) -> Backend:
        if text == "local":
            return cls()
        nodes = tuple(uri.strip() for uri in text[len(_MILVUS) :].split(",")) if text.startswith(_MILVUS) else ()
        if not nodes or not all(nodes) or len(set(nodes)) < len(nodes):
            raise ValueError(f"--backend must be 'local' or 'milvus:URI[,URI…]' (a .db file or http://host:port, each once), got {text!r}")
        return cls(nodes)

    @property
    def is_local(self) -> bool:
        return not self.nodes

    def __str__(self) -> str:
        return "local" if self.is_local else _MILVUS + ",".join(self.nodes)


class LexicalHits(Protocol):
    """BM25's answer to one question: its best passages and the scores of any passage."""

    ids: list[int]  # the best passages scoring above zero, best first

    @property
    def best(self) -> float:
        """The highest score (0 when nothing matched)."""

    def scores_of(self, ids: np.ndarray) -> np.ndarray:
        """BM25 scores of `ids` (0 for a passage BM25 does not know for this question)."""


class PassageIndex(Protocol):
    """What the assistant needs of an index: candidates, cosines, passages and articles."""

    @property
    def name(self) -> str:
        """The version being served (a commit, a collection): answers are cached under it."""

    @property
    def model(self) -> str:
        """The embedding model the index was built with."""

    @property
    def size(self) -> int:
        """An upper bound of the passages (a search asks for no more)."""

    @property
    def passage_count(self) -> int:
        """Live passages."""

    @property
    def built(self) -> str:
        """When the version served was written (ISO 8601)."""

    def load(self) -> None:
        """Make the search structures ready now, so that a broken index fails here."""

    def search_bm25(self, tokens: list[str], k: int) -> LexicalHits: ...

    def search_dense(self, vector: np.ndarray, k: int, *, map_segments: Callable = map) -> tuple[np.ndarray, np.ndarray]:
        """Cosines and ids of the `k` passages whose best sentence is nearest, best first.
        `map_segments`: how a backend of several local segments may search them."""

    def cosines(self, vector: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Each passage's best sentence cosine."""

    def sentence_cosines(self, vector: np.ndarray, id: int) -> np.ndarray:
        """The cosine of every sentence of one passage, in text order."""

    def tie_keys(self, ids: np.ndarray) -> np.ndarray: ...

    def passages_at(self, ids: Sequence[int]) -> list[Passage]: ...

    def sample_passages(self, count: int) -> list[Passage]:
        """About `count` passages spread over the index (the app's example questions)."""

    def article(self, source: str) -> ArticleRecord | None: ...

    def articles(self) -> list[ArticleRecord]: ...

    def close(self) -> None: ...


class IndexSource(Protocol):
    """Where new versions of an index appear: a server follows it from question to question."""

    def current_name(self) -> str | None:
        """The name of the version now current (None: there is none)."""

    def open(self) -> PassageIndex: ...


def index_source(settings: Settings) -> IndexSource:
    if settings.backend.is_local:
        from .store import LocalSource

        return LocalSource(settings.index_dir)
    from .milvus import MilvusSource

    return MilvusSource(settings.backend)


def top_positions(scores: np.ndarray, k: int, keys: np.ndarray) -> np.ndarray:
    """Positions of the `k` highest scores above zero, best first, ties broken by key
    (the passage id's number), so the order does not depend on how the index is split."""
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    floor = _kth_highest_floor(scores, k)
    # every position tied with the k-th or above it; never the zeros
    candidates = np.flatnonzero(scores >= floor) if floor > 0 else np.flatnonzero(scores > 0)
    return candidates[np.lexsort((keys[candidates], -scores[candidates]))][:k]


def _kth_highest_floor(scores: np.ndarray, k: int) -> float:
    """A score at or below the k-th highest (−inf when there are k scores or fewer).

    Over many scores, the k-th highest maximum of 4·k blocks: k blocks reach it, so k
    scores do. Partitioning a million scores to find the exact k-th took 6.7 ms of BM25's
    17 at 1M passages; this reads them once, and leaves a few hundred above it to sort.
    """
    if k >= len(scores):
        return -np.inf
    width = len(scores) // (_FLOOR_BLOCKS_PER_HIT * k)
    if width < _MIN_FLOOR_BLOCK:  # few scores: the exact k-th costs nothing
        return float(np.partition(scores, len(scores) - k)[len(scores) - k])
    whole = len(scores) // width * width
    maxima = scores[:whole].reshape(-1, width).max(axis=1)
    if whole < len(scores):
        maxima = np.append(maxima, scores[whole:].max())
    return float(np.partition(maxima, len(maxima) - k)[len(maxima) - k])
