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

import json
from collections import Counter

import numpy as np
from fit_reader import QuestionFile, file_arguments

from qa.text import sentence_spans

DEPTHS = (1, 2, 3, 5, 10)


def main() -> None:
    args = file_arguments(__doc__)
    run = QuestionFile.load(args.file)
    paragraphs = {a.source: a.text for a in run.articles}
    ranks: list[int | None] = []
    unranked: Counter[str] = Counter()

    def on_question(question, query, passages):
        refs, features, _ = run.rules.sentence_features(query, passages)
        order = np.argsort(-run.rules.model.sentence_scores(features), kind="stable")
        holding = {r for r, ref in enumerate(refs) if any(g in passages[ref.passage].text[ref.span.start : ref.span.end] for g in question.answers)}
        rank = next((i for i, row in enumerate(order) if row in holding), None)
        ranks.append(rank)
        if rank is None:
            unranked[_why_unranked(paragraphs[question.source], question.answers)] += 1

    run.read(on_question)
    report = {
        "questions": len(run.questions),
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
