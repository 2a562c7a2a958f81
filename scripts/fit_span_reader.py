"""Fit how the trained reader weighs its span features; write src/qa/reader_models/span-e5-small.json.

    python scripts/fit_span_reader.py [../shared/datasets/xquad_zh.json] [--weights FILE.safetensors]

Span choice and confidence are fitted on XQuAD zh, which the span model never trained on
(scripts/train_reader.py trains on DRCD), so the span model's scores here are what it
gives unseen text. For each question, the passages `ask` would read are read by
`SpanReader.candidates` and every proposed span is labelled with its F1 against the gold
answers. The no-answer model is fitted as the rule reader's is (scripts/fit_reader.py):
on the CMRC 2018 trial set with paragraphs withheld under seeds 1-4, so that `qa eval
--unanswerable 0.2` (seed 0) measures it on a split it never saw; XQuAD's withheld
paragraphs sit beside four others of the same Wikipedia article and teach little about
news.

1. Span choice: a conditional logit over each question's spans, target spread in
   proportion to F1 (L-BFGS, scipy). Reported: F1 of the chosen span, 5-fold
   cross-validated by paragraph, against the span model's own best logit.
2. Confidence: a logistic model of P(chosen span right), right = F1 ≥ 0.5, from the
   chosen span's score margin over the best non-overlapping other span, fitted on
   out-of-fold choices.
3. Answerable: the trial set's paragraphs are indexed with a seeded 20% left out (seeds
   1-4), and a logistic regression over ANSWERABLE_FEATURES learns whether the answer is in the
   index; its threshold is the one with the highest recall that keeps cross-validated
   no-answer precision at or above `--precision`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
from datetime import date
from pathlib import Path

import numpy as np
from fit_reader import fit_logistic, folds, read_questions, threshold_for
from tqdm.auto import tqdm

from qa.config import Settings
from qa.embed import DEFAULT_MODEL, load_embedder
from qa.evaluate import answer_f1, load_squad, withhold
from qa.question import Query
from qa.reader import ReaderModel, RuleReader
from qa.span_model import SHIPPED_WEIGHTS, SpanModel
from qa.span_reader import ANSWERABLE_FEATURES, SPAN_FEATURES, SpanReader, SpanWeights
from qa.tokens import Tokenizer

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "src" / "qa" / "reader_models"
XQUAD = ROOT.parent / "shared" / "datasets" / "xquad_zh.json"
TRIAL = ROOT.parent / "shared" / "bench" / "cmrc2018_trial.json"
RIGHT = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path, nargs="?", default=XQUAD)
    parser.add_argument("--weights", type=Path, default=MODELS / SHIPPED_WEIGHTS, help="span model weights")
    parser.add_argument("--output", type=Path, default=MODELS / "span-e5-small.json")
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions (quick look)")
    parser.add_argument("--answerable-file", type=Path, default=TRIAL, help="file the no-answer model is fitted on")
    parser.add_argument("--precision", type=float, default=0.9, help="no-answer precision the threshold must keep")
    args = parser.parse_args()

    embedder, tokenizer = load_embedder(DEFAULT_MODEL), Tokenizer()
    articles, questions = load_squad(args.file)
    if args.limit:
        questions = questions[: args.limit]
    settings = Settings(model=DEFAULT_MODEL)
    blank = SpanWeights(np.zeros(len(SPAN_FEATURES)), np.zeros(2), np.zeros(len(ANSWERABLE_FEATURES)), 0.0)
    reader = SpanReader(RuleReader(tokenizer, ReaderModel.for_embedding(DEFAULT_MODEL)), SpanModel.from_weights(args.weights), blank)
    vectors = embedder.encode_queries([q.text for q in questions])

    # 1. span choice, on the whole index
    proposals: dict[int, tuple] = {}
    rows, f1s, owners, groups = [], [], [], []

    def collect(number, question, passages):
        query = Query.parse(question.text, tokenizer)
        found = reader.candidates(query, passages)
        proposals[number] = (found, query.asks)
        for span in found.spans:
            text = passages[span.passage].text[span.start : span.end]
            rows.append(span.row())
            f1s.append(max(answer_f1(text, gold) for gold in question.answers))
            owners.append(number)
            groups.append(question.source)

    with _progress(len(questions), "reading") as tick:
        read_questions(articles, questions, vectors, settings, embedder, tokenizer, _ticking(collect, tick))
    X, y, owners, groups = np.array(rows), np.array(f1s), np.array(owners), np.array(groups)

    alone = np.zeros(len(questions))  # the span model alone: its best logit
    logit = SPAN_FEATURES.index("span_logit")
    for owner in np.unique(owners):
        mine = np.flatnonzero(owners == owner)
        alone[owner] = y[mine][np.argmax(X[mine, logit])]
    picked = np.zeros(len(questions))
    margins, right = [], []
    for test_groups in folds(groups):
        test = np.isin(groups, test_groups)
        fold_reader = SpanReader(reader.rules, reader.model, dataclasses.replace(blank, span=fit_conditional_logit(X[~test], y[~test], owners[~test])))
        for owner in np.unique(owners[test]):
            found, analysis = proposals[owner]
            choice = fold_reader.choose(found, analysis)
            if choice.best is None:
                continue
            picked[owner] = y[np.flatnonzero(owners == owner)][choice.best]
            margins.append(choice.margin)
            right.append(float(picked[owner] >= RIGHT))
    span_weights = fit_conditional_logit(X, y, owners)
    span_questions = len(questions)
    # 2. confidence that the pick is right, from out-of-fold picks
    confidence = fit_logistic(np.c_[margins, np.ones(len(margins))], np.array(right))
    print(f"span model alone: F1 {alone.mean():.3f}; combined, 5-fold cross-validated: F1 {picked.mean():.3f} ({len(questions)} questions)")
    for name, value in zip(SPAN_FEATURES, span_weights):
        print(f"  {name:<18}{value:+.3f}")

    # 3. answerable: a seeded 20% of the answerable file's paragraphs left out of the index
    fitted = dataclasses.replace(blank, span=span_weights, confidence=confidence)
    reader.weights = fitted
    articles, questions = load_squad(args.answerable_file)
    if args.limit:
        questions = questions[: args.limit]
    vectors = embedder.encode_queries([q.text for q in questions])
    a_rows, a_labels, a_groups = [], [], []
    for seed in (1, 2, 3, 4):
        withheld = withhold(articles, 0.2, seed=seed)

        def collect_answerable(number, question, passages, withheld=withheld):
            query = Query.parse(question.text, tokenizer)
            found = reader.candidates(query, passages)
            a_rows.append(reader.answerable_row(found, reader.choose(found, query.asks)))
            a_labels.append(question.source not in withheld)
            a_groups.append(question.source)

        with _progress(len(questions), f"withheld, seed {seed}") as tick:
            indexed = [a for a in articles if a.source not in withheld]
            read_questions(indexed, questions, vectors, settings, embedder, tokenizer, _ticking(collect_answerable, tick))
    A, t, a_groups = np.array(a_rows), np.array(a_labels, dtype=float), np.array(a_groups)
    out_of_fold = np.zeros(len(t))
    for test_groups in folds(a_groups):
        test = np.isin(a_groups, test_groups)
        out_of_fold[test] = A[test] @ fit_logistic(A[~test], t[~test])
    threshold, precision, recall = threshold_for(out_of_fold, t, args.precision)
    answerable = fit_logistic(A, t)
    print(f"no answer, cross-validated: precision {precision:.3f}, recall {recall:.3f}")

    model = {
        "span": {"features": list(SPAN_FEATURES), "weights": _rounded(span_weights)},
        "confidence": {"features": ["margin", "bias"], "weights": _rounded(confidence), "right_f1": RIGHT},
        "answerable": {
            "features": list(ANSWERABLE_FEATURES),
            "weights": _rounded(answerable),
            "threshold": round(float(1 / (1 + np.exp(-threshold))), 6),
        },
        "provenance": {
            "fitted_on": args.file.name,
            "sha256": hashlib.sha256(args.file.read_bytes()).hexdigest(),
            "questions": span_questions,
            "answerable_fitted_on": args.answerable_file.name,
            "answerable_sha256": hashlib.sha256(args.answerable_file.read_bytes()).hexdigest(),
            "span_model": args.weights.name,
            "span_model_sha256": hashlib.sha256(args.weights.read_bytes()).hexdigest(),
            "withheld_seeds": [1, 2, 3, 4],
            "no_answer_precision_target": args.precision,
            "cross_validated": {
                "span_model_alone_f1": round(float(alone.mean()), 4),
                "combined_f1": round(float(picked.mean()), 4),
                "no_answer_precision": round(precision, 4),
                "no_answer_recall": round(recall, 4),
            },
            "date": date.today().isoformat(),
            "command": "python scripts/fit_span_reader.py",
        },
    }
    args.output.write_text(json.dumps(model, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


def fit_conditional_logit(X: np.ndarray, y: np.ndarray, owners: np.ndarray, *, l2: float = 0.01) -> np.ndarray:
    """Weights of a softmax over each question's spans, target spread in proportion to F1,
    by L-BFGS (the features' scales differ too much for plain gradient steps)."""
    from scipy.optimize import minimize

    _, inverse = np.unique(owners, return_inverse=True)
    positives = np.bincount(inverse, weights=y)
    keep = positives[inverse] > 0  # questions none of whose spans overlaps the answer teach nothing
    target = (y / np.maximum(positives[inverse], 1e-12))[keep]
    X, inverse = X[keep], np.unique(inverse[keep], return_inverse=True)[1]
    groups = int(inverse.max()) + 1

    def loss(w):
        scores = X @ w
        top = np.full(groups, -np.inf)
        np.maximum.at(top, inverse, scores)
        exp = np.exp(scores - top[inverse])
        total = np.bincount(inverse, weights=exp, minlength=groups)
        log_p = scores - top[inverse] - np.log(total[inverse])
        p = exp / total[inverse]
        return -(target * log_p).sum() / groups + l2 * w @ w / 2, X.T @ (p - target) / groups + l2 * w

    return minimize(loss, np.zeros(X.shape[1]), jac=True, method="L-BFGS-B").x


def _rounded(values) -> list[float]:
    return [round(float(v), 6) for v in values]


@contextlib.contextmanager
def _progress(total: int, what: str):
    with tqdm(total=total, desc=what, unit="q") as bar:
        yield lambda: bar.update(1)


def _ticking(on_question, tick):
    def wrapped(number, question, passages):
        on_question(number, question, passages)
        tick()

    return wrapped


if __name__ == "__main__":
    main()
