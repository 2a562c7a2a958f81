"""Best sentence or one vector per passage: recall@1 of dense and hybrid retrieval, both ways.

    python bench/dense_units.py --squad FILE [FILE ...] [--drcd-sample N] [--json]
    python bench/dense_units.py --index DIR --questions FILE [--limit N] [--json]

A passage's dense score is its best sentence's cosine (qa.dense). The alternative
measured here scores a passage by one vector, the normalised mean of its sentence
vectors: one row a passage instead of about eight, so far less memory to search at 1M
passages. Both are scored on the same index, questions and BM25 candidates: the
shipped retriever for the best sentence; for the mean, exact search over the passages'
mean vectors, fused with BM25 as `qa.search` fuses (its candidate count, weight and
cosine scale), and also with the best weight and scale of a small grid, so the mean is
not judged by settings chosen for the best sentence.

`--squad` indexes the paragraphs of SQuAD-style files (real text: e.g. the CMRC 2018
trial set with DRCD and XQuAD as distractors) and asks the first file's questions and,
with `--drcd-sample N`, N seeded DRCD questions too. `--index` uses a benchmark run's
index and questions (bench/run.py --work DIR): generated distractors.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

from qa.assistant import Assistant
from qa.build import build_from_articles
from qa.config import Settings
from qa.embed import DEFAULT_MODEL, load_embedder
from qa.evaluate import Question, load_squad
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
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    for name, result in report.items():
        print(f"{name}: {result['questions']} questions, {result['passages']} passages")
        for key, value in result.items():
            if key not in ("questions", "passages"):
                print(f"  {key}: {value}")


def _on_squad(files: list[Path], drcd_sample: int, limit: int) -> dict:
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
        assistant = Assistant(settings, embedder=embedder, tokenizer=tokenizer)
        return {name: compare(assistant, questions) for name, questions in sets.items()}


def _first(questions: list[Question], limit: int) -> list[Question]:
    return questions[:limit] if limit else questions


def compare(assistant: Assistant, questions: list[Question]) -> dict:
    """recall@1 of dense and hybrid with the best sentence (as shipped) and with mean vectors."""
    index, retriever, settings = assistant.index, assistant.retriever, assistant.settings
    means = _mean_vectors(index)
    fusion = settings.fusion_for(index.model)
    vectors = retriever.embed_questions([q.text for q in questions])
    found: dict[str, list[bool]] = {}

    def count(name: str, position: int, question: Question) -> None:
        found.setdefault(name, []).append(index.passages_at([int(position)])[0].source == question.source)

    for question, vector in zip(questions, vectors):
        for mode in ("dense", "hybrid"):
            found_first = retriever.search(question.text, k=settings.top_k, mode=mode, question_vector=vector)[0]  # as bench/serve.py asks
            count(f"best sentence: {mode}", found_first.index, question)
        cosines = means @ vector
        pool_size = min(settings.candidates, len(means))
        dense_pool = np.argpartition(-cosines, pool_size - 1)[:pool_size]
        count("mean vector: dense", dense_pool[np.argmax(cosines[dense_pool])], question)
        lexical = index.search_bm25(assistant.tokenizer.query_tokens(question.text), pool_size)
        pool = np.union1d(dense_pool, np.asarray(lexical.ids, dtype=np.int64))
        bm25 = lexical.scores_of(pool) / lexical.best if lexical.best > 0 else np.zeros(len(pool))
        cosine = np.clip(cosines[pool], 0.0, 1.0)
        for scale in sorted({fusion.cosine_scale, *SCALES}):
            dense = np.clip(1.0 - (cosine.max() - cosine) / scale, 0.0, 1.0)
            for weight in sorted({fusion.lexical_weight, *WEIGHTS}):
                fused = weight * bm25 + (1.0 - weight) * dense
                count(f"mean vector: hybrid w={weight} s={scale}", pool[np.argmax(fused)], question)
    recall = {name: round(float(np.mean(hits)), 4) for name, hits in found.items()}
    grid = {name: value for name, value in recall.items() if name.startswith("mean vector: hybrid")}
    shipped = f"mean vector: hybrid w={fusion.lexical_weight} s={fusion.cosine_scale}"
    best = max(grid, key=grid.get)
    return {
        "questions": len(questions),
        "passages": len(means),
        "best sentence: dense": recall["best sentence: dense"],
        "best sentence: hybrid": recall["best sentence: hybrid"],
        "mean vector: dense": recall["mean vector: dense"],
        "mean vector: hybrid (shipped fusion)": recall[shipped],
        f"{best} (best of grid)": recall[best],
    }


def _mean_vectors(index) -> np.ndarray:
    """Each passage's normalised mean sentence vector, in the index's passage order (a
    fresh build: positions are then the segments' documents in order)."""
    if len(index.live_positions()) != sum(s.docs for s in index.segments):
        raise SystemExit("the index has deleted passages: measure on a fresh build")
    means = []
    for segment in index.segments:
        vectors = segment.vectors
        sums = np.zeros((segment.docs, vectors.dimension), dtype=np.float32)
        for start in range(0, len(vectors.owners), 65_536):  # bounded float copies at 1M passages
            rows = slice(start, start + 65_536)
            np.add.at(sums, np.asarray(vectors.owners[rows]), np.asarray(vectors.codes[rows], dtype=np.float32) * np.asarray(vectors.scales[rows])[:, None])
        means.append(sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12))
    return np.vstack(means)


if __name__ == "__main__":
    main()
