"""The same questions on both backends: does Milvus give the local index's answers?

    python bench/backends.py ../shared/bench/cmrc2018_trial.json [--milvus FILE.db|http://host:port] [--json]

Indexes the file's paragraphs (one article each, as `qa eval` does) in a temporary index
folder and in Milvus (a new Milvus Lite file by default), then asks every question of
both. Reports per retriever (hybrid, bm25, dense) recall@1 on each backend and the share
of questions whose top passage is the same; and the median time of a hybrid search on
each (Milvus Lite is an embedded engine for tests, not a benchmark of Milvus).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

from qa.assistant import Assistant
from qa.backend import Backend
from qa.build import build_from_articles
from qa.config import Settings
from qa.embed import DEFAULT_MODEL, load_embedder
from qa.evaluate import load_squad
from qa.tokens import Tokenizer

MODES = ("hybrid", "bm25", "dense")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--milvus", help="Milvus URI, or several separated by commas (default: a new Milvus Lite file in a temporary folder)")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    articles, questions = load_squad(args.file)
    embedder, tokenizer = load_embedder(args.model), Tokenizer()
    with tempfile.TemporaryDirectory(prefix="qa-backends-") as scratch:
        local = Settings(index_dir=Path(scratch) / "index", model=args.model)
        milvus = dataclasses.replace(local, backend=Backend.parse("milvus:" + (args.milvus or str(Path(scratch) / "trial.db"))))
        tops: dict[str, dict[str, list[str]]] = {}
        sources: dict[str, dict[str, list[str]]] = {}
        timings: dict[str, list[float]] = {}
        build_seconds: dict[str, float] = {}
        for name, settings in (("local", local), ("milvus", milvus)):
            started = time.perf_counter()
            build_from_articles(articles, settings, embedder=embedder, tokenizer=tokenizer)
            build_seconds[name] = time.perf_counter() - started
            retriever = Assistant(settings, embedder=embedder, tokenizer=tokenizer, reader=_NoReader()).retriever
            vectors = retriever.embed_questions([q.text for q in questions])  # as `qa eval` embeds them
            tops[name], sources[name], timings[name] = {m: [] for m in MODES}, {m: [] for m in MODES}, []
            for question, vector in zip(questions, vectors):
                for mode in MODES:
                    started = time.perf_counter()
                    found = retriever.search(question.text, k=1, mode=mode, question_vector=vector)
                    if mode == "hybrid":
                        timings[name].append(time.perf_counter() - started)
                    passage = retriever.passages(found)[0] if found else None
                    tops[name][mode].append(passage.id if passage else "")
                    sources[name][mode].append(passage.source if passage else "")
    report = {
        "questions": len(questions),
        "paragraphs": len(articles),
        "milvus": args.milvus or "Milvus Lite (temporary file)",
        "build_seconds": {name: round(seconds, 1) for name, seconds in build_seconds.items()},
        "hybrid_search_ms_median": {name: round(1000 * statistics.median(t), 2) for name, t in timings.items()},
    }
    for mode in MODES:
        recall = {
            name: round(sum(s == q.source for s, q in zip(sources[name][mode], questions)) / len(questions), 4) for name in sources
        }
        same = sum(a == b for a, b in zip(tops["local"][mode], tops["milvus"][mode])) / len(questions)
        report[mode] = {"recall_at_1": recall, "same_top_passage": round(same, 4)}
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    for key, value in report.items():
        print(f"{key}: {value}")


class _NoReader:
    """Retrieval only: the comparison needs no answers."""

    name = "none"

    def read(self, query, passages):  # pragma: no cover - never called
        raise AssertionError("retrieval only")


if __name__ == "__main__":
    main()
