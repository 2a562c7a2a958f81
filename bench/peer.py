"""The peer pipeline, run by bench/run.py in a fresh process on the same index and questions.

    python bench/peer.py --index DIR --questions FILE [--limit N]

What Langchain-Chatchat's hybrid retrieval does: `rank_bm25.BM25Okapi` over
`jieba.lcut_for_search` tokens and a FAISS flat index of passage vectors, each returning
its top k, fused by Langchain's EnsembleRetriever (weighted reciprocal rank, weights
0.5/0.5, c = 60). To be fair, BM25 is built once rather than on every query, and the
passage vectors are given: the normalised mean of each passage's sentence vectors as
stored in our index (no extra embedding time is charged). A question is embedded with the
same model as ours. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import faiss
import jieba
import numpy as np
from rank_bm25 import BM25Okapi

from qa.embed import load_embedder
from qa.store import load_snapshot
from qa.text import simplified

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import load_questions  # noqa: E402
from measure import memory_mb, percentiles, recall_at_1  # noqa: E402

TOP_K = 5
RRF_C = 60
WEIGHTS = (0.5, 0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=0, help="ask only the first N questions (0: all)")
    args = parser.parse_args()

    questions = load_questions(args.questions)
    if args.limit:
        questions = questions[: args.limit]
    snapshot = load_snapshot(args.index)
    positions = snapshot.live_positions()
    passages = snapshot.passages_at(positions.tolist())
    texts = [p.text for p in passages]
    sources = [p.source for p in passages]
    del passages
    jieba.initialize()

    started = time.perf_counter()
    # interned: a million passages' token lists would otherwise hold a copy of every token
    corpus_tokens = [[sys.intern(t) for t in jieba.lcut_for_search(text)] for text in texts]
    tokenize_seconds = time.perf_counter() - started
    started = time.perf_counter()
    bm25 = BM25Okapi(corpus_tokens)
    del corpus_tokens
    bm25_seconds = time.perf_counter() - started

    dense = faiss.IndexFlatIP(snapshot.dense.dimension)
    for start in range(0, len(texts), 10_000):
        numbers = range(start, min(start + 10_000, len(texts)))
        means = np.stack([_stored_vectors(snapshot, int(positions[i])).mean(axis=0) for i in numbers])
        faiss.normalize_L2(means)
        dense.add(means)
    embedder = load_embedder(snapshot.manifest.settings.model)

    def ask(question: str) -> list[int]:
        scores = bm25.get_scores(jieba.lcut_for_search(question))
        lexical = np.argsort(scores)[::-1][:TOP_K]  # BM25Okapi.get_top_n
        _, rows = dense.search(embedder.encode_queries([simplified(question)]), TOP_K)
        fused: dict[int, float] = {}
        for weight, ranked in zip(WEIGHTS, (lexical.tolist(), rows[0].tolist())):
            for rank, passage in enumerate(ranked, start=1):
                fused[passage] = fused.get(passage, 0.0) + weight / (rank + RRF_C)
        return sorted(fused, key=fused.__getitem__, reverse=True)

    ask(questions[0].text)
    latency, tops = [], []
    for question in questions:
        started = time.perf_counter()
        ranked = ask(question.text)
        latency.append(time.perf_counter() - started)
        tops.append(sources[ranked[0]] if ranked else None)
    print(
        json.dumps(
            {
                "questions": len(questions),
                "passages": len(texts),
                "build_seconds": {"tokenize": round(tokenize_seconds, 2), "bm25": round(bm25_seconds, 2)},
                "latency_ms": percentiles(latency),
                "recall@1": recall_at_1(tops, questions),
                "memory_mb": memory_mb(),
            }
        )
    )


def _stored_vectors(snapshot, position: int) -> np.ndarray:
    """A passage's sentence vectors as the index stores them (int8 rows times their scales)."""
    segment, doc = snapshot.dense.locate(position)
    vectors = snapshot.segments[segment].vectors
    rows = vectors.rows_of(doc)
    return np.asarray(vectors.codes[rows], dtype=np.float32) * np.asarray(vectors.scales[rows])[:, None]


if __name__ == "__main__":
    main()
