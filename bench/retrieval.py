"""Warm retrieval latency on an existing index, for comparing two versions of the code.

    python bench/retrieval.py --index DIR --questions FILE [--json]

Opens the index as the app does (its search threads included), runs 100 warm-up
searches, then bm25, dense and hybrid over every question (FILE: a benchmark run's
`questions.json`), each search timed on its own, the question's embedding included.
Nothing but retrieval runs, so the passage database is never read. Timings on a shared
machine are noisy: run the versions compared one after another, alternating, and compare
within that run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from qa.assistant import Assistant
from qa.config import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import percentiles

from corpus import load_questions

WARM_UP = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    questions = [q.text for q in load_questions(args.questions)]
    assistant = Assistant(Settings(index_dir=args.index))
    retriever, k = assistant.retriever, assistant.settings.top_k
    for question in questions[:WARM_UP]:
        retriever.search(question, k=k)
    latency = {}
    for mode in ("bm25", "dense", "hybrid"):
        seconds = []
        for question in questions:
            started = time.perf_counter()
            retriever.search(question, k=k, mode=mode)
            seconds.append(time.perf_counter() - started)
        latency[mode] = percentiles(seconds)
    report = {"index": str(args.index), "questions": len(questions), "latency_ms": latency}
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    for mode, ms in latency.items():
        print(f"{mode:7} p50 {ms['p50']:7.2f}  p95 {ms['p95']:7.2f}  p99 {ms['p99']:7.2f} ms")


if __name__ == "__main__":
    main()
