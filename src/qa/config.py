"""Settings: one frozen value passed to whatever needs it, never a module global."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .embed import DEFAULT_MODEL, USE_MODEL

__all__ = ["Settings", "LEXICAL_WEIGHTS"]

# Hybrid fusion: the weight of max-normalised BM25 against the candidates' stretched
# cosines (qa.search), per embedding model: the stronger the model, the more its side
# weighs. Each sits in a flat region of scripts/sweep.py's table on CMRC 2018 trial
# (README, "How the defaults were chosen"); a model not listed gets an even split.
LEXICAL_WEIGHTS = {DEFAULT_MODEL: 0.4, USE_MODEL: 0.7}
_EVEN = 0.5


@dataclass(frozen=True)
class Settings:
    index_dir: Path = Path("index")
    corpus_dir: Path = Path("corpus")
    model: str = DEFAULT_MODEL
    top_k: int = 5
    # Passages: whole paragraphs up to max_passage_chars; smaller pieces join a neighbour.
    max_passage_chars: int = 400
    min_passage_chars: int = 60
    # BM25: a low k1 saturates repeated terms early, which suits overlapping n-gram tokens.
    bm25_k1: float = 0.7
    bm25_b: float = 0.75
    # Hybrid fusion weight of BM25; None: the index's model's own (LEXICAL_WEIGHTS).
    lexical_weight: float | None = None
    # Sentence vectors searched exactly; a larger index is approximate (qa.dense.choose_factory).
    dense_exact_max_vectors: int = 50_000
    # How many passages each retriever proposes before fusion re-scores the union.
    candidates: int = 100
    # How many top passages the reader reads to find the answer, whatever top_k is.
    read_passages: int = 5
    # "rules" (offline default) or a question-answering model's hub name or local folder.
    reader: str = "rules"

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
        if self.read_passages < 1:
            raise ValueError(f"read_passages must be at least 1, got {self.read_passages}")
        if self.candidates < 1:
            raise ValueError(f"candidates must be at least 1, got {self.candidates}")

    def lexical_weight_for(self, model: str) -> float:
        """The fusion weight of BM25 for an index embedded by `model`."""
        if self.lexical_weight is not None:
            return self.lexical_weight
        return LEXICAL_WEIGHTS.get(model, _EVEN)
