"""Serving side of the benchmark, run by bench/run.py in a fresh process.

    python bench/serve.py --index DIR --questions FILE

Loads the index as the app does, answers the first question and prints "ready" (the
parent times process start to that line: cold start), then measures warm latency of
bm25, dense, hybrid and the full `ask` over every question, recall@1, peak memory, and,
for an approximate dense index, its recall@10 against exact search over the same
vectors. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from qa.assistant import Assistant
from qa.config import Settings
from qa.evaluate import Question
from qa.store import Snapshot

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import load_questions  # noqa: E402
from measure import memory_mb, percentiles, recall_at_1  # noqa: E402

WARM_UP = 100
CACHED = 200
_EXACT_ROWS = 65_536  # sentence vectors scored at once for the exact ground truth


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    args = parser.parse_args()

    questions = load_questions(args.questions)
    assistant = Assistant(Settings(index_dir=args.index))
    assistant.ask(questions[0].text)
    print("ready", flush=True)

    snapshot = assistant.snapshot
    retriever = assistant.retriever
    k = assistant.settings.top_k
    for question in questions[:WARM_UP]:
        retriever.search(question.text, k=k)

    latency: dict[str, list[float]] = {}
    top: dict[str, list[str | None]] = {}
    for mode in ("bm25", "dense", "hybrid"):
        latency[mode], top[mode] = [], []
        for question in questions:
            started = time.perf_counter()
            results = retriever.search(question.text, k=k, mode=mode)
            latency[mode].append(time.perf_counter() - started)
            top[mode].append(snapshot.passages[results[0].index].source if results else None)
    latency["ask"], top["ask"] = [], []
    for question in questions:
        started = time.perf_counter()
        response = assistant.ask(question.text)
        latency["ask"].append(time.perf_counter() - started)
        top["ask"].append(response.hits[0].passage.source if response.hits else None)
    latency["ask_repeated"] = []
    for question in questions[:CACHED]:
        started = time.perf_counter()
        assistant.ask(question.text)
        latency["ask_repeated"].append(time.perf_counter() - started)
    memory = memory_mb()

    report = {
        "questions": len(questions),
        "passages": len(snapshot.passages),
        "dense_index": snapshot.manifest["dense"] | snapshot.dense.description,  # as searched
        "latency_ms": {mode: percentiles(values) for mode, values in latency.items()},
        "recall@1": {mode: recall_at_1(top[mode], questions) for mode in top},
        "memory_mb": memory,
        "ask_correct": [t == q.source for t, q in zip(top["ask"], questions)],
    }
    if not snapshot.manifest["dense"].get("exact", True):
        report["dense_recall"] = _approximate_recall(assistant, snapshot, questions)
    print(json.dumps(report))


def _approximate_recall(assistant: Assistant, snapshot: Snapshot, questions: list[Question], depth: int = 10) -> dict:
    """recall@10 of the approximate index against exact search over the same vectors.

    Exact scores come from the stored sentence vectors. Passages whose exact score ties
    the tenth best count as found (generated text repeats phrases, so ties occur).
    """
    queries = assistant.retriever.embed_questions([q.text for q in questions])
    owners = np.load(snapshot.path / "dense_owners.npy")
    exact = _exact_top(snapshot.dense.stored_vectors, owners, queries, depth)
    found, ann_top1, exact_top1 = [], [], []
    for question, query, (best_scores, best_passages) in zip(questions, queries, exact):
        _, passages = snapshot.dense.search(query, depth)
        scores = snapshot.dense.scores_of(query, passages)
        found.append(float(np.sum(scores >= best_scores[-1] - 1e-4)) / depth)
        ann_top1.append(snapshot.passages[int(passages[0])].source == question.source if len(passages) else False)
        exact_top1.append(snapshot.passages[int(best_passages[0])].source == question.source)
    return {
        "recall@10_vs_exact": round(float(np.mean(found)), 4),
        "dense_recall@1_exact": round(float(np.mean(exact_top1)), 4),
        "dense_recall@1_approximate": round(float(np.mean(ann_top1)), 4),
    }


def _exact_top(vectors: np.ndarray, owners: np.ndarray, queries: np.ndarray, depth: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Exact best `depth` passage scores (best sentence per passage) for every query."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_passages = np.zeros((len(queries), 0), dtype=np.int64)
    start = 0
    while start < len(owners):
        end = min(len(owners), start + _EXACT_ROWS)
        if end < len(owners):  # end on a passage boundary
            boundary = int(np.searchsorted(owners, owners[end], side="left"))
            end = boundary if boundary > start else int(np.searchsorted(owners, owners[end], side="right"))
        scores = np.asarray(vectors[start:end], dtype=np.float32) @ queries.T  # rows × queries
        chunk_owners = owners[start:end]
        firsts = np.flatnonzero(np.r_[True, chunk_owners[1:] != chunk_owners[:-1]])
        per_passage = np.maximum.reduceat(scores, firsts, axis=0).T  # queries × passages
        best_scores = np.hstack([best_scores, per_passage])
        best_passages = np.hstack([best_passages, np.broadcast_to(chunk_owners[firsts], per_passage.shape)])
        if best_scores.shape[1] > depth:
            keep = np.argpartition(-best_scores, depth - 1, axis=1)[:, :depth]
            best_scores = np.take_along_axis(best_scores, keep, axis=1)
            best_passages = np.take_along_axis(best_passages, keep, axis=1)
        start = end
    order = np.argsort(-best_scores, axis=1, kind="stable")
    best_scores = np.take_along_axis(best_scores, order, axis=1)
    best_passages = np.take_along_axis(best_passages, order, axis=1)
    return list(zip(best_scores, best_passages))


if __name__ == "__main__":
    main()
