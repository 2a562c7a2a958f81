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
from qa.dense import SegmentVectors
from qa.store import Snapshot

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import load_questions  # noqa: E402
from measure import memory_mb, percentiles, recall_at_1, share_found  # noqa: E402

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

    snapshot = assistant.index
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
            top[mode].append(retriever.passages(results[:1])[0].source if results else None)
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
        "passages": snapshot.manifest.passages,
        "segments": [{"docs": s.docs, "factory": s.vectors.factory, "vectors": int(s.vectors.index.ntotal)} for s in snapshot.segments],
        "bytes": snapshot.nbytes(),
        "latency_ms": {mode: percentiles(values) for mode, values in latency.items()},
        "recall@1": {mode: recall_at_1(top[mode], questions) for mode in top},
        "memory_mb": memory,
        "ask_correct": [t == q.source for t, q in zip(top["ask"], questions)],
    }
    if not all(s.vectors.exact for s in snapshot.segments):
        report["dense_recall"] = _approximate_recall(assistant, snapshot, questions)
    print(json.dumps(report))


def _approximate_recall(assistant: Assistant, snapshot: Snapshot, questions: list[Question], depth: int = 10) -> dict:
    """recall@10 of the approximate index against exact search over the same vectors.

    Exact scores come from the stored int8 sentence rows of every segment. Passages whose
    exact score ties the tenth best count as found (generated text repeats phrases, so
    ties occur).
    """
    queries = assistant.retriever.embed_questions([q.text for q in questions])
    exact = None
    base = 0
    for segment in snapshot.segments:
        found_here = _exact_top(segment.vectors, queries, depth, base)
        exact = found_here if exact is None else [_best(a, b, depth) for a, b in zip(exact, found_here)]
        base += segment.docs
    found, ann_top1, exact_top1 = [], [], []
    for question, query, (best_scores, best_passages) in zip(questions, queries, exact):
        _, passages = snapshot.dense.search(query, depth)
        scores = snapshot.dense.scores_of(query, passages)
        found.append(share_found(scores, best_scores))
        ann_top1.append(snapshot.passage(int(passages[0])).source == question.source if len(passages) else False)
        exact_top1.append(snapshot.passage(int(best_passages[0])).source == question.source)
    return {
        "recall@10_vs_exact": round(float(np.mean(found)), 4),
        "dense_recall@1_exact": round(float(np.mean(exact_top1)), 4),
        "dense_recall@1_approximate": round(float(np.mean(ann_top1)), 4),
    }


def _best(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], depth: int) -> tuple[np.ndarray, np.ndarray]:
    scores, passages = np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]])
    order = np.argsort(-scores, kind="stable")[:depth]
    return scores[order], passages[order]


def _exact_top(segment: SegmentVectors, queries: np.ndarray, depth: int, base: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Exact best `depth` passage scores (best sentence per passage) of one segment for
    every query; passages numbered from `base`."""
    owners = np.asarray(segment.owners)
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_passages = np.zeros((len(queries), 0), dtype=np.int64)
    start = 0
    while start < len(owners):
        end = min(len(owners), start + _EXACT_ROWS)
        if end < len(owners):  # end on a passage boundary
            boundary = int(np.searchsorted(owners, owners[end], side="left"))
            end = boundary if boundary > start else int(np.searchsorted(owners, owners[end], side="right"))
        scores = (np.asarray(segment.codes[start:end], dtype=np.float32) @ queries.T) * np.asarray(segment.scales[start:end])[:, None]
        chunk_owners = owners[start:end]
        firsts = np.flatnonzero(np.r_[True, chunk_owners[1:] != chunk_owners[:-1]])
        per_passage = np.maximum.reduceat(scores, firsts, axis=0).T  # queries × passages
        best_scores = np.hstack([best_scores, per_passage])
        best_passages = np.hstack([best_passages, np.broadcast_to(chunk_owners[firsts] + base, per_passage.shape)])
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
