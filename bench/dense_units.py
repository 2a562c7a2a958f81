"""Best sentence or one vector per passage: recall@1 of dense and hybrid retrieval, both ways.

    python bench/dense_units.py --squad FILE [FILE ...] [--drcd-sample N] [--json]
    python bench/dense_units.py --index DIR --questions FILE [--limit N] [--json]

A passage's dense score is its best sentence's cosine (qa.dense). The alternative
measured here scores a passage by one vector, the normalised mean of its sentence
vectors: one row a passage instead of about eight, so far less memory to search at 1M
passages. Both are searched by the product's own retriever (`qa.search`) on the same
index, questions and BM25: once as built, once with the index's dense part made of the
mean vectors (indexed as a segment's sentence rows are), fused as shipped and also with
each weight and cosine scale of a small grid, so the mean is not judged by settings
chosen for the best sentence.

`--squad` indexes the paragraphs of SQuAD-style files (real text: e.g. the CMRC 2018
trial set with DRCD and XQuAD as distractors) and asks the first file's questions and,
with `--drcd-sample N`, N seeded DRCD questions too. `--index` uses a benchmark run's
index and questions (bench/run.py --work DIR): generated distractors.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from qa.assistant import Assistant
from qa.build import build_from_articles
from qa.config import Settings
from qa.dense import Dense, SegmentVectors, quantize
from qa.embed import DEFAULT_MODEL, load_embedder
from qa.evaluate import Question, load_squad
from qa.search import Retriever
from qa.tokens import Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import load_questions

SCALES = (0.1, 0.15, 0.2, 0.3)
WEIGHTS = (0.4, 0.5, 0.6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--squad", type=Path, nargs="+")
    source.add_argument("--index", type=Path)
    parser.add_argument("--questions", type=Path, help="with --index: the run's questions.json")
    parser.add_argument("--drcd-sample", type=int, default=0, help="with --squad: also N seeded questions of the DRCD files given")
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions of each set")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    if args.index:
        if not args.questions:
            parser.error("--index needs --questions")
        report = {"generated": compare(Assistant(Settings(index_dir=args.index)), _first(load_questions(args.questions), args.limit))}
    else:
        report = _on_squad(args.squad, args.drcd_sample, args.limit)
    print_report(report, as_json=args.json)


def print_report(report: dict[str, dict], *, as_json: bool) -> None:
    """Each question set's results: one JSON line, or a block of lines a set."""
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
        return
    for name, result in report.items():
        print(f"{name}: {result['questions']} questions, {result['passages']} passages")
        for key, value in result.items():
            if key not in ("questions", "passages"):
                print(f"  {key}: {value}")


def _on_squad(files: list[Path], drcd_sample: int, limit: int) -> dict:
    with real_text_index(files, drcd_sample, limit) as (assistant, sets):
        return {name: compare(assistant, questions) for name, questions in sets.items()}


@contextlib.contextmanager
def real_text_index(files: list[Path], drcd_sample: int, limit: int) -> Iterator[tuple[Assistant, dict[str, list[Question]]]]:
    """A temporary index of the paragraphs of SQuAD-style files, and the question sets to
    ask it: the first file's questions and, with `drcd_sample`, that many seeded questions
    of the DRCD files among them (each set cut to `limit` questions when given)."""
    articles, asked = [], {}
    for path in files:
        found, questions = load_squad(path)
        articles += found
        asked[path.name] = questions
    sets = {files[0].name: _first(asked[files[0].name], limit)}
    drcd = [q for name, questions in asked.items() if name.startswith("drcd") for q in questions]
    if drcd_sample:
        sets[f"DRCD sample of {drcd_sample}"] = _first(random.Random(0).sample(drcd, drcd_sample), limit)
    embedder, tokenizer = load_embedder(DEFAULT_MODEL), Tokenizer()
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(index_dir=Path(scratch), model=DEFAULT_MODEL)
        build_from_articles(articles, settings, embedder=embedder, tokenizer=tokenizer)
        yield Assistant(settings, embedder=embedder, tokenizer=tokenizer), sets


def _first(questions: list[Question], limit: int) -> list[Question]:
    return questions[:limit] if limit else questions


def compare(assistant: Assistant, questions: list[Question]) -> dict:
    """recall@1 of dense and hybrid with the best sentence (as shipped) and with mean
    vectors: the product's own retriever both times, over the index as built and over the
    same index with its dense part made of the mean vectors."""
    index, settings = assistant.index, assistant.settings
    with_means = copy.copy(index)  # the same passages and BM25, searched by mean vectors
    with_means.dense = _mean_dense(index, settings)
    fusion = settings.fusion_for(index.model)
    grid = sorted({(fusion.lexical_weight, fusion.cosine_scale), *((w, s) for w in WEIGHTS for s in SCALES)})
    embedder = assistant.embedder(index.model)
    by_means = {
        (weight, scale): Retriever(with_means, embedder=embedder, tokenizer=assistant.tokenizer, settings=dataclasses.replace(settings, lexical_weight=weight, cosine_scale=scale))
        for weight, scale in grid
    }
    shipped = f"w={fusion.lexical_weight} s={fusion.cosine_scale}"
    runs = [
        ("best sentence: dense", assistant.retriever, "dense"),
        ("best sentence: hybrid", assistant.retriever, "hybrid"),
        ("mean vector: dense", by_means[fusion.lexical_weight, fusion.cosine_scale], "dense"),
        *((f"mean vector: hybrid w={weight} s={scale}", retriever, "hybrid") for (weight, scale), retriever in by_means.items()),
    ]
    vectors = assistant.retriever.embed_questions([q.text for q in questions])
    found: dict[str, list[bool]] = {}
    for question, vector in zip(questions, vectors):
        for name, retriever, mode in runs:
            first = retriever.search(question.text, k=settings.top_k, mode=mode, question_vector=vector)[0]  # as bench/serve.py asks
            found.setdefault(name, []).append(index.passages_at([first.index])[0].source == question.source)
    recall = {name: round(float(np.mean(hits)), 4) for name, hits in found.items()}
    best = max((name for name in recall if name.startswith("mean vector: hybrid")), key=recall.get)
    return {
        "questions": len(questions),
        "passages": index.passage_count,
        "best sentence: dense": recall["best sentence: dense"],
        "best sentence: hybrid": recall["best sentence: hybrid"],
        "mean vector: dense": recall["mean vector: dense"],
        "mean vector: hybrid (shipped fusion)": recall[f"mean vector: hybrid {shipped}"],
        f"{best} (best of grid)": recall[best],
    }


def _mean_dense(index, settings: Settings) -> Dense:
    """A dense index of one row per passage, its normalised mean sentence vector, indexed as
    a segment's sentences are (a fresh build: positions are then the segments' documents
    in order)."""
    if len(index.live_positions()) != index.passage_count:
        raise SystemExit("the index has deleted passages: measure on a fresh build")
    means = []
    for segment in index.segments:
        vectors = segment.vectors
        sums = np.zeros((segment.docs, vectors.dimension), dtype=np.float32)
        for start in range(0, len(vectors.owners), 65_536):  # bounded float copies at 1M passages
            rows = slice(start, start + 65_536)
            rows_as_stored = np.asarray(vectors.codes[rows], dtype=np.float32) * np.asarray(vectors.scales[rows])[:, None]
            np.add.at(sums, np.asarray(vectors.owners[rows]), rows_as_stored)
        means.append(sums)
    sums = np.vstack(means)
    codes, scales = quantize(sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12))
    passages = SegmentVectors.build(codes, scales, np.arange(len(codes)), exact_max_vectors=settings.dense_exact_max_vectors)
    return Dense([(passages, None)], [len(codes)], index.keys)


if __name__ == "__main__":
    main()
