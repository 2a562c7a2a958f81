"""Settings: one frozen value passed to whatever needs it, never a module global."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .backend import Backend
from .embed import DEFAULT_MODEL, USE_MODEL

__all__ = ["Settings", "Fusion", "FUSION", "READER_HELP", "RULES_READER", "TRAINED_READER"]


@dataclass(frozen=True)
class Fusion:
    """How BM25 and dense scores are fused (qa.search) for one embedding model."""

    lexical_weight: float  # weight of BM25 / max(BM25); the dense part gets the rest
    cosine_scale: float  # a cosine this far below the best candidate's counts for nothing


# The readers: the shipped span model with the rule reader (qa.span_reader), or the rules alone.
TRAINED_READER = "trained"
RULES_READER = "rules"
READER_HELP = (
    f"'{TRAINED_READER}' (default: the shipped span model with the rules), '{RULES_READER}' (the rules alone), "
    "span-model weights (.safetensors from scripts/train_reader.py), or a question-answering model's name or folder"
)

# Per embedding model: a model's cosines spread over its own range (e5's within 0.7–0.9,
# USE's over 0–1). Chosen with scripts/sweep.py on CMRC 2018 trial and the 10k benchmark
# (README, "How the defaults were chosen"); another model is fused as USE is.
FUSION = {DEFAULT_MODEL: Fusion(lexical_weight=0.5, cosine_scale=0.15), USE_MODEL: Fusion(lexical_weight=0.5, cosine_scale=1.0)}


@dataclass(frozen=True)
class Settings:
    index_dir: Path = Path("index")
    corpus_dir: Path = Path("corpus")
    # Where the index lives: the index folder (default) or Milvus (qa.backend.Backend).
    backend: Backend = Backend()
    model: str = DEFAULT_MODEL
    top_k: int = 5
    # Passages: whole paragraphs up to max_passage_chars; smaller pieces join a neighbour.
    max_passage_chars: int = 400
    min_passage_chars: int = 60
    # BM25: a low k1 saturates repeated terms early, which suits overlapping n-gram tokens.
    bm25_k1: float = 0.7
    bm25_b: float = 0.75
    # Hybrid fusion (qa.search); None: the index's model's own (FUSION).
    lexical_weight: float | None = None
    cosine_scale: float | None = None
    # Sentence vectors searched exactly; a larger index is approximate (qa.dense.choose_factory).
    dense_exact_max_vectors: int = 50_000
    # How many passages each retriever proposes before fusion re-scores the union.
    candidates: int = 100
    # How many top passages the reader reads to find the answer, whatever top_k is.
    read_passages: int = 5
    # TRAINED_READER (default), RULES_READER, span-model weights (.safetensors), or a
    # transformers question-answering model's hub name or local folder.
    reader: str = TRAINED_READER

    def __post_init__(self) -> None:
        # Accept str paths from callers; a frozen dataclass needs object.__setattr__ for that.
        object.__setattr__(self, "index_dir", Path(self.index_dir))
        object.__setattr__(self, "corpus_dir", Path(self.corpus_dir))
        if self.top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {self.top_k}")
        if not 0 < self.min_passage_chars < self.max_passage_chars:
            raise ValueError("need 0 < min_passage_chars < max_passage_chars")
        if self.lexical_weight is not None and not 0.0 <= self.lexical_weight <= 1.0:
            raise ValueError(f"lexical_weight must be within [0, 1], got {self.lexical_weight}")
        if self.cosine_scale is not None and not self.cosine_scale > 0:
            raise ValueError(f"cosine_scale must be positive, got {self.cosine_scale}")
        if self.read_passages < 1:
            raise ValueError(f"read_passages must be at least 1, got {self.read_passages}")
        if self.candidates < 1:
            raise ValueError(f"candidates must be at least 1, got {self.candidates}")

    def fusion_for(self, model: str) -> Fusion:
        """How to fuse for an index embedded by `model`: its own, with any setting given here."""
        own = FUSION.get(model, FUSION[USE_MODEL])
        return Fusion(
            lexical_weight=own.lexical_weight if self.lexical_weight is None else self.lexical_weight,
            cosine_scale=own.cosine_scale if self.cosine_scale is None else self.cosine_scale,
        )
