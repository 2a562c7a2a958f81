"""Sweep passage length, dense unit, BM25 k1 and fusion weight on a SQuAD-style file.

    python scripts/sweep.py ../shared/bench/cmrc2018_trial.json [--model NAME]

Prints a Markdown table of hybrid R@1 / R@5 / MRR@10 for each cosine scale and weight of
BM25 (`qa.search`; weight 1.0 is BM25 alone, 0.0 dense alone). Dense units: `sentence` (what the product indexes: every sentence, a passage
scored by its best one), `passage` (one vector per passage), `both` (the sentences and the
whole passage, best of all). Embeddings are computed once per passage length and unit;
each k1 rebuilds BM25 only, and each weight re-runs retrieval only.
The defaults in `qa.config.Settings` were chosen from this table (README, "Retrieval").
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from qa.build import build_from_articles
from qa.config import Settings
from qa.dense import Dense, SegmentVectors, quantize
from qa.embed import DEFAULT_MODEL, load_embedder
from qa.evaluate import _gold_rank, _retrieval_metrics, load_squad
from qa.lexical import Bm25
from qa.manifest import Bm25Params
from qa.search import Retriever
from qa.store import load_snapshot
from qa.text import simplified
from qa.tokens import Tokenizer

UNITS = ("sentence", "passage", "both")


def _dense_of(unit: str, built, embedder, settings: Settings) -> Dense:
    """The index's sentence vectors, or one vector per whole passage, or both together."""
    if unit == "sentence":
        return built.dense
    (segment,) = built.segments  # one build, one segment
    passage_vectors = embedder.encode_passages([simplified(p.text) for p in built.live_passages()])
    rows, owners = [], []
    for i, passage_vector in enumerate(passage_vectors):
        stored = segment.vectors.rows_of(i)
        sentences = [] if unit == "passage" else list(np.asarray(segment.vectors.codes[stored], dtype=np.float32) * np.asarray(segment.vectors.scales[stored])[:, None])
        rows.extend([passage_vector, *sentences])
        owners.extend([i] * (1 + len(sentences)))
    codes, scales = quantize(np.array(rows, dtype=np.float32))
    vectors = SegmentVectors.build(codes, scales, np.array(owners), exact_max_vectors=settings.dense_exact_max_vectors)
    return Dense([(vectors, None)], [segment.docs], built.keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--max-chars", type=int, nargs="+", default=[300, 400, 600, 1000])
    parser.add_argument("--units", nargs="+", choices=UNITS, default=["sentence"])
    parser.add_argument("--k1", type=float, nargs="+", default=[0.7, 1.5])
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 1.0])
    parser.add_argument("--scales", type=float, nargs="+", default=None, help="cosine scales (default: the model's own)")
    args = parser.parse_args()

    embedder, tokenizer = load_embedder(args.model), Tokenizer()
    articles, questions = load_squad(args.file)
    vectors = embedder.encode_queries([simplified(q.text) for q in questions])
    print(f"model {embedder.name}")
    scales = args.scales or [Settings().fusion_for(embedder.name).cosine_scale]
    print("| max chars | passages | dense unit | k1 | cosine scale | weight | R@1 | R@5 | MRR@10 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for max_chars in args.max_chars:
        with tempfile.TemporaryDirectory() as scratch:
            settings = Settings(index_dir=Path(scratch), max_passage_chars=max_chars, model=embedder.name)
            build_from_articles(articles, settings, embedder=embedder, tokenizer=tokenizer)
            built = load_snapshot(settings.index_dir)
            for unit in args.units:
                dense = _dense_of(unit, built, embedder, settings)
                for k1 in args.k1:
                    snapshot = copy.copy(built)  # the same passages, searched another way
                    snapshot.lexical = Bm25([(s.postings, None) for s in built.segments], Bm25Params(k1, settings.bm25_b))
                    snapshot.dense = dense
                    for scale, weight in ((s, w) for s in scales for w in args.weights):
                        retriever = Retriever(
                            snapshot,
                            embedder=embedder,
                            tokenizer=tokenizer,
                            settings=dataclasses.replace(settings, lexical_weight=weight, cosine_scale=scale),
                        )
                        ranks = []
                        for question, vector in zip(questions, vectors):
                            results = retriever.search(question.text, k=100, question_vector=vector)
                            ranks.append(_gold_rank([p.source for p in retriever.passages(results)], question.source))
                        m = _retrieval_metrics(ranks)
                        print(
                            f"| {max_chars} | {built.manifest.passages} | {unit} | {k1} | {scale:g} | {weight:.1f} "
                            f"| {m['recall@1']:.3f} | {m['recall@5']:.3f} | {m['mrr@10']:.3f} |",
                            flush=True,
                        )


if __name__ == "__main__":
    main()
