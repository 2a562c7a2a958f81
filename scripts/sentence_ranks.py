"""How far better sentence choice could take the reader: where the answer's sentence ranks.

    python scripts/sentence_ranks.py ../shared/bench/cmrc2018_trial.json [--json]

The file's paragraphs are indexed once (the default model) and each question reads the
passages `ask` reads. The rule reader scores every sentence of them
(`RuleReader.sentence_features`); a question's answer sentence is the best-ranked one
holding a gold answer. Reports the share of questions whose answer sentence ranks within
the top 1, 2, 3, 5 and 10 (the span reader reads windows around the top 2), and why the
others have none: the gold answer spans two sentences or more of its paragraph, or the
passages read do not hold it whole.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections import Counter
from pathlib import Path

import numpy as np
from fit_reader import read_questions
from tqdm.auto import tqdm

from qa.config import Settings
from qa.embed import DEFAULT_MODEL, load_embedder
from qa.evaluate import load_squad
from qa.question import Query
from qa.reader import ReaderModel, RuleReader
from qa.text import sentence_spans
from qa.tokens import Tokenizer

DEPTHS = (1, 2, 3, 5, 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    embedder, tokenizer = load_embedder(DEFAULT_MODEL), Tokenizer()
    articles, questions = load_squad(args.file)
    paragraphs = {a.source: a.text for a in articles}
    rules = RuleReader(tokenizer, ReaderModel.for_embedding(DEFAULT_MODEL))
    vectors = embedder.encode_queries([q.text for q in questions])
    ranks: list[int | None] = []
    unranked: Counter[str] = Counter()
    bar = tqdm(total=len(questions), desc="questions", unit="q")

    def on_question(number, question, passages):
        query = dataclasses.replace(Query.parse(question.text, tokenizer), vector=vectors[number])
        refs, features, _ = rules.sentence_features(query, passages)
        order = np.argsort(-(features @ rules.model.sentence_weights), kind="stable")
        holding = [r for r, ref in enumerate(refs) if any(g in passages[ref.passage].text[ref.span.start : ref.span.end] for g in question.answers)]
        rank = min((int(np.flatnonzero(order == r)[0]) for r in holding), default=None)
        ranks.append(rank)
        if rank is None:
            unranked[_why_unranked(paragraphs[question.source], question.answers)] += 1
        bar.update(1)

    read_questions(articles, questions, vectors, Settings(model=DEFAULT_MODEL), embedder, tokenizer, on_question)
    bar.close()
    report = {
        "questions": len(questions),
        "answer_sentence_within_top": {str(d): round(sum(r is not None and r < d for r in ranks) / len(ranks), 4) for d in DEPTHS},
        "no_answer_sentence": {why: round(count / len(ranks), 4) for why, count in unranked.most_common()},
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    print("| answer sentence within the rule reader's top | " + " | ".join(str(d) for d in DEPTHS) + " |")
    print("|---|" + "---|" * len(DEPTHS))
    print("| share of questions | " + " | ".join(f"{v:.3f}" for v in report["answer_sentence_within_top"].values()) + " |")
    for why, share in report["no_answer_sentence"].items():
        print(f"no sentence holds the answer: {why}: {share:.3f}")


def _why_unranked(paragraph: str, answers: tuple[str, ...]) -> str:
    if not any(g in paragraph for g in answers):
        return "the gold answer is not in its paragraph as written"
    if any(any(g in paragraph[s.start : s.end] for g in answers) for s in sentence_spans(paragraph, clauses=False)):
        return "the passages read do not hold it whole"
    return "the gold answer spans two sentences or more"


if __name__ == "__main__":
    main()
