"""Query latency and retrieval quality on a corpus, from a script anyone can run.

    python bench/query.py [--corpus corpus] [--repeats 5] [--json]

Builds a temporary index of the corpus, then asks the question sets in tests/data
(everyday questions and paraphrases over the seed article, and questions it cannot answer) `--repeats` times, warm.
Reports, per retriever and for the full `ask` (retrieval + reader + highlights): median
and p95 milliseconds per question; recall@1 (the top passage holds the answer) per
retriever and for `ask`'s first hit; how often `ask` said "no answer"; how many figure,
date and name questions got exactly the expected span (the answer `ask` shows first); and
of the questions the corpus cannot answer, how many got "no answer" and how many a marked
span of the wrong kind.
Timings are noisy on a shared machine: compare numbers from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from qa.assistant import Assistant
from qa.build import build_index
from qa.candidates import span_fits
from qa.config import READER_HELP, TRAINED_READER, Settings
from qa.embed import DEFAULT_MODEL, load_embedder
from qa.question import AnswerType
from qa.tokens import Tokenizer

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
SETS = {"everyday": "seed_questions.jsonl", "paraphrase": "seed_paraphrases.jsonl", "unanswerable": "seed_unanswerable.jsonl"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--reader", default=TRAINED_READER, help=READER_HELP)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    questions = {
        name: [json.loads(line) for line in (DATA / file).read_text(encoding="utf-8").splitlines()]
        for name, file in SETS.items()
    }
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(index_dir=Path(scratch), corpus_dir=args.corpus, model=args.model, reader=args.reader)
        started = time.perf_counter()
        embedder, tokenizer = load_embedder(args.model), Tokenizer()
        summary = build_index(settings, embedder=embedder, tokenizer=tokenizer)
        assistant = Assistant(settings, embedder=embedder, tokenizer=tokenizer)
        assistant.ask("预热")
        ready = time.perf_counter() - started

        report = {
            "corpus": str(args.corpus),
            "articles": summary.articles,
            "passages": summary.passages,
            "model": args.model,
            "reader": args.reader,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "start_and_build_seconds": round(ready, 2),
            "latency_ms": {},
            "recall@1": {},
        }
        all_questions = [q for qs in questions.values() for q in qs]
        for mode in ("bm25", "dense", "hybrid"):
            report["latency_ms"][mode] = _time(
                lambda q: assistant.retriever.search(q, k=settings.top_k, mode=mode), all_questions, args.repeats
            )
        report["latency_ms"]["ask"] = _time(lambda q: assistant.ask(q, cached=False), all_questions, args.repeats)
        for name, qs in questions.items():
            if name == "unanswerable":
                responses = [assistant.ask(q["question"]) for q in qs]
                report["unanswerable"] = {
                    "questions": len(qs),
                    "no_answer": sum(r.no_answer for r in responses),
                    "marked_wrong_type": sum(_wrong_type(q, r, tokenizer) for q, r in zip(qs, responses)),
                }
                continue
            report["recall@1"][name] = {
                mode: round(float(np.mean([_top_holds_answer(assistant, q, mode) for q in qs])), 3)
                for mode in ("bm25", "dense", "hybrid")
            }
            responses = [assistant.ask(q["question"]) for q in qs]
            report["recall@1"][name]["ask"] = round(
                float(np.mean([bool(r.hits) and q["answer"] in r.hits[0].passage.text for q, r in zip(qs, responses)])), 3
            )
            report["recall@1"][name]["no_answer"] = sum(r.no_answer for r in responses)
            typed = [(q, r) for q, r in zip(qs, responses) if "span" in q]
            if typed:
                report["recall@1"][name]["exact_span"] = f"{sum(_exact(q, r) for q, r in typed)}/{len(typed)}"
            report["recall@1"][name]["questions"] = len(qs)

    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    print(f"{report['passages']} passages from {report['articles']} articles; {report['machine']}")
    print(f"model load + index build + first answer: {report['start_and_build_seconds']} s")
    print("| query | median ms | p95 ms |\n|---|---|---|")
    for mode, t in report["latency_ms"].items():
        print(f"| {mode} | {t['median']} | {t['p95']} |")
    print(
        "\n| question set | questions | bm25 R@1 | dense R@1 | hybrid R@1 | ask R@1 | said no answer | exact span |"
        "\n|---|---|---|---|---|---|---|---|"
    )
    for name, r in report["recall@1"].items():
        print(
            f"| {name} | {r['questions']} | {r['bm25']} | {r['dense']} | {r['hybrid']} | {r['ask']} "
            f"| {r['no_answer']} | {r.get('exact_span', '–')} |"
        )
    u = report["unanswerable"]
    print(f"\nquestions the corpus cannot answer: {u['no_answer']} of {u['questions']} said \"no answer\"; "
          f"{u['marked_wrong_type']} marked a span of the wrong type")


def _time(call, questions, repeats) -> dict:
    samples = []
    for _ in range(repeats):
        for q in questions:
            started = time.perf_counter()
            call(q["question"])
            samples.append((time.perf_counter() - started) * 1000)
    return {"median": round(statistics.median(samples), 2), "p95": round(float(np.percentile(samples, 95)), 2)}


def _exact(question: dict, response) -> bool:
    hit = response.answer_hit
    return hit is not None and hit.answer.text == question["span"]


def _wrong_type(question: dict, response, tokenizer) -> bool:
    """An answer was marked, and it is not the kind of thing the question asks for."""
    hit = response.answer_hit
    if hit is None:
        return False
    answer, text = hit.answer, hit.passage.text
    sentence = text[answer.sentence.start : answer.sentence.end]
    start = answer.start - answer.sentence.start
    return not span_fits(AnswerType(question["type"]), sentence, start, start + len(answer.text), tokenizer)


def _top_holds_answer(assistant: Assistant, question: dict, mode: str) -> bool:
    results = assistant.retriever.search(question["question"], k=1, mode=mode)
    return bool(results) and question["answer"] in assistant.retriever.passages(results[:1])[0].text


if __name__ == "__main__":
    main()
