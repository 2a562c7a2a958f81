"""How much of its sentence an answer should mark: what `qa.extent`'s rule was chosen from.

    python scripts/extent_choices.py ../shared/bench/cmrc2018_trial.json [--json]

The file's paragraphs are indexed once; the shipped reader, without the extent, picks a
span for every question (the answer `ask` shows first). Each pick is then marked five ways
— the span, its comma-separated clause, the clause up to the span's end, the span up to
the clause's end, its sentence — each marked as the reader marks an extent (brackets
paired, edges trimmed), and scored against the gold answer, by kind of question
(`reader_variants.question_group`; other questions split into the open slots `qa.extent`
keeps and the rest). Then a learnt chooser for comparison: a ridge regression of each
extent's F1 on the question's kind and the lengths of span, clause and sentence, scored by
5-fold cross-validation grouped by paragraph (`fit_reader.folds`), once with figure, date
and name questions keeping their span and once with them free to grow.
Questions without an answer count zero everywhere.
"""

from __future__ import annotations

import json

import numpy as np
from fit_reader import QuestionFile, file_arguments, folds
from reader_variants import GROUPS, question_group

from qa.evaluate import answer_f1
from qa.extent import clause_of, fills_slot
from qa.span_model import SpanModel
from qa.span_reader import SpanReader, SpanWeights, marked_span
from qa.text import Span, fold

EXTENTS = ("span", "clause", "clause to span end", "span to clause end", "sentence")
OPEN_SLOT = "other: open slot"
KINDS = (*GROUPS, OPEN_SLOT)
RIDGE = 30.0


def main() -> None:
    args = file_arguments(__doc__)
    run = QuestionFile.load(args.file)
    reader = SpanReader(run.rules, SpanModel.packaged(), SpanWeights.packaged(), extent=False)
    rows: list[dict] = []

    def on_question(question, query, passages):
        reading = reader.read(query, passages)
        marked = [] if reading.no_answer else [(a, p) for a, p in zip(reading.answers, passages) if a is not None]
        kind = question_group(query.asks)
        if not marked:
            rows.append({"source": question.source, "kind": kind, "f1": [0.0] * len(EXTENTS), "lengths": [0, 0, 0]})
        else:
            answer, passage = max(marked, key=lambda item: item[0].confidence)
            text, sentence = passage.text, answer.sentence
            if kind == GROUPS[3] and fills_slot(query.asks, fold(text[sentence.start : sentence.end]), answer.start - sentence.start, answer.end - sentence.start):
                kind = OPEN_SLOT
            first, last = clause_of(text, sentence, answer.start, answer.end)
            extents = [Span(answer.start, answer.end), Span(first, last), Span(first, answer.end), Span(answer.start, last), sentence]
            # marked as the reader marks an extent (brackets paired, edges trimmed)
            marks = [text[slice(*(marked_span(text, extent, sentence) or extent))] for extent in extents]
            rows.append(
                {
                    "source": question.source,
                    "kind": kind,
                    "f1": [max(answer_f1(m, g) for g in question.answers) for m in marks],
                    "lengths": [answer.end - answer.start, last - first, sentence.end - sentence.start],
                }
            )

    run.read(on_question)

    f1 = np.array([r["f1"] for r in rows])
    kinds = np.array([r["kind"] for r in rows])
    table = {
        kind: {"questions": int((kinds == kind).sum()), **{e: round(float(f1[kinds == kind, i].mean()), 4) for i, e in enumerate(EXTENTS)}}
        for kind in KINDS
        if (kinds == kind).any()
    }
    typed = kinds == GROUPS[0]
    learnt = {
        "figures, dates and names keep their span": round(ridge_chooser(rows, f1, free=~typed), 4),
        "every question free": round(ridge_chooser(rows, f1, free=np.ones(len(rows), bool)), 4),
        "best extent of each question": round(float(f1.max(axis=1).mean()), 4),
    }
    if args.json:
        print(json.dumps({"file": args.file.name, "questions": len(rows), "extents": table, "learnt": learnt}, ensure_ascii=False))
        return
    print(f"{len(rows)} questions of {args.file.name}: F1 of each extent of the shipped reader's pick")
    print("| question | questions | " + " | ".join(EXTENTS) + " |")
    print("|---|---|" + "---|" * len(EXTENTS))
    for kind, row in table.items():
        print(f"| {kind} | {row['questions']} | " + " | ".join(f"{row[e]:.3f}" for e in EXTENTS) + " |")
    print("\nRidge chooser, 5-fold cross-validated F1 over all questions:")
    for name, value in learnt.items():
        print(f"- {name}: {value:.3f}")


def ridge_chooser(rows: list[dict], f1: np.ndarray, *, free: np.ndarray) -> float:
    """Cross-validated F1 when a ridge regression of each extent's F1 picks the extent of
    the `free` questions; the others keep their span."""
    kinds = np.array([KINDS.index(r["kind"]) for r in rows])
    lengths = np.log1p(np.array([r["lengths"] for r in rows], dtype=float))
    onehot = np.eye(len(KINDS))[kinds]
    features = np.hstack([onehot, (onehot[:, :, None] * lengths[:, None, :]).reshape(len(rows), -1), np.ones((len(rows), 1))])
    sources = np.array([r["source"] for r in rows])
    chosen = np.zeros(len(rows), dtype=int)
    for held in folds(sources):
        test = np.isin(sources, held)
        train = ~test & free
        x = features[train]
        weights = np.linalg.solve(x.T @ x + RIDGE * np.eye(x.shape[1]), x.T @ f1[train])
        chosen[test] = np.argmax(features[test] @ weights, axis=1)
    chosen[~free] = 0
    return float(f1[np.arange(len(rows)), chosen].mean())


if __name__ == "__main__":
    main()
