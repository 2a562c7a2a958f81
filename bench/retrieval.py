"""Warm retrieval latency on an existing index, for comparing two versions of the code.

    python bench/retrieval.py --index DIR --questions FILE [--modes bm25,dense,hybrid] [--memory-limit GB] [--json]

Opens the index as the app does (its search threads included), runs 100 warm-up
searches in each mode, then times each mode (bm25, dense and hybrid unless `--modes`
says) over every question (FILE: a benchmark run's `questions.json`), each search on its
own, the question's embedding included. Nothing but retrieval runs, so the passage
database is never read. Timings on a shared machine are noisy: run the versions compared
one after another, alternating, and compare within that run.

`--memory-limit` runs it within that much memory, page cache included
(bench/memory_limit.py: root and cgroup v1), with the index's pages dropped from the
page cache first, and reports the group's peak memory and major page faults.
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
from memory_limit import MemoryLimitError, group_memory, limit_memory

from corpus import load_questions

WARM_UP = 100
MODES = ("bm25", "dense", "hybrid")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--modes", default=",".join(MODES), help="retrievers to time, comma-separated")
    parser.add_argument("--memory-limit", type=float, metavar="GB", help="memory for the process and its page cache together")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    modes = args.modes.split(",")
    if not set(modes) <= set(MODES):
        parser.error(f"--modes: choose among {', '.join(MODES)}")
    try:
        group = limit_memory(int(args.memory_limit * 2**30), args.index) if args.memory_limit else None
    except MemoryLimitError as error:
        parser.error(str(error))

    questions = [q.text for q in load_questions(args.questions)]
    assistant = Assistant(Settings(index_dir=args.index))
    retriever, k = assistant.retriever, assistant.settings.top_k
    for mode in modes:
        for question in questions[:WARM_UP]:
            retriever.search(question, k=k, mode=mode)
    latency = {}
    for mode in modes:
        seconds = []
        for question in questions:
            started = time.perf_counter()
            retriever.search(question, k=k, mode=mode)
            seconds.append(time.perf_counter() - started)
        latency[mode] = percentiles(seconds)
    report = {"index": str(args.index), "questions": len(questions), "latency_ms": latency}
    if group is not None:
        report["memory_limit_gb"] = args.memory_limit
        report["memory"] = group_memory(group)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    if group is not None:
        print(f"within {args.memory_limit:g} GB: peak {report['memory']['peak_mb']:,} MB, {report['memory']['major_faults']:,} major page faults")
    for mode, ms in latency.items():
        print(f"{mode:7} p50 {ms['p50']:7.2f}  p95 {ms['p95']:7.2f}  p99 {ms['p99']:7.2f} ms")


if __name__ == "__main__":
    main()
