"""Compressed dense search against exact search on real text.

    python bench/compressed_recall.py --squad FILE [FILE ...] [--drcd-sample N] [--json]

Up to 50,000 sentence vectors a segment are searched exactly; a larger segment is
searched by its centred sign codes, whose estimates choose the passages scored from
their stored rows (qa.dense). The benchmark's generated corpus is large enough to be
compressed but not real text. This builds an index of the paragraphs of SQuAD-style files
(e.g. the CMRC 2018 trial set with DRCD and XQuAD as distractors: 27k sentence vectors,
exact as built), then searches the same rows once more compressed, and reports for each
question set dense and hybrid recall@1 both ways and the compressed search's dense
recall@10 against exact search. Questions are those of bench/dense_units.py.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
from dense_units import print_report, real_text_index
from measure import share_found

from qa.assistant import Assistant
from qa.dense import Dense, SegmentVectors
from qa.evaluate import Question
from qa.search import Retriever


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--squad", type=Path, nargs="+", required=True)
    parser.add_argument("--drcd-sample", type=int, default=0, help="also N seeded questions of the DRCD files given")
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions of each set")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with real_text_index(args.squad, args.drcd_sample, args.limit) as (assistant, sets):
        report = {name: compare(assistant, questions) for name, questions in sets.items()}
    print_report(report, as_json=args.json)


def compare(assistant: Assistant, questions: list[Question]) -> dict:
    index, settings = assistant.index, assistant.settings
    if len(index.segments) != 1 or len(index.live_positions()) != index.passage_count:
        raise SystemExit("measure on a fresh build: one segment, nothing deleted")
    stored = index.segments[0].vectors
    compressed = SegmentVectors.build(np.asarray(stored.codes), np.asarray(stored.scales), np.asarray(stored.owners), exact_max_vectors=0)
    if compressed.exact:
        raise SystemExit(f"{len(stored.owners)} sentence vectors are too few to compress")
    with_codes = copy.copy(index)  # the same passages, BM25 and rows, searched by the codes
    with_codes.dense = Dense([(compressed, None)], [index.segments[0].docs], index.keys)
    retrievers = {
        "exact": assistant.retriever,
        "compressed": Retriever(with_codes, embedder=assistant.embedder(index.model), tokenizer=assistant.tokenizer, settings=settings),
    }
    vectors = assistant.retriever.embed_questions([q.text for q in questions])
    found: dict[str, list[float]] = {}
    for question, vector in zip(questions, vectors):
        for way, retriever in retrievers.items():
            for mode in ("dense", "hybrid"):
                first = retriever.search(question.text, k=settings.top_k, mode=mode, question_vector=vector)[0]
                found.setdefault(f"{mode} recall@1, {way}", []).append(index.passages_at([first.index])[0].source == question.source)
        exact_scores, _ = index.dense.search(vector, 10)
        _, compressed_top = with_codes.dense.search(vector, 10)
        found.setdefault("dense recall@10 against exact search", []).append(share_found(index.dense.scores_of(vector, compressed_top), exact_scores))
    return {
        "questions": len(questions),
        "passages": index.passage_count,
        "sentence vectors": len(stored.owners),
        **{name: round(float(np.mean(values)), 4) for name, values in found.items()},
    }


if __name__ == "__main__":
    main()
