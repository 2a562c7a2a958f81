"""Fit the reader's two linear models on a SQuAD-style file; write src/qa/reader_models/MODEL.json.

    python scripts/fit_reader.py ../shared/bench/cmrc2018_trial.json [--model use-multilingual]

The weights depend on the embedding model (two features are its cosines), so each
packaged model has its own file; an index is read with the weights of its model.

1. Sentence model: for every question, the sentences of the top passages (as `ask`
   retrieves them) are labelled by whether they contain a gold answer; a conditional logit
   (softmax over each question's sentences) is fitted. Accuracy is reported by 5-fold
   cross-validation grouped by paragraph, so no paragraph is scored by a model that saw it.
2. Answerable model: the file's paragraphs are indexed with a seeded 20% left out (seeds
   1-4; `qa eval --unanswerable` uses seed 0 by default, which stays unseen), and a logistic
   regression learns whether a question's answer is in the index. Its threshold is the
   one with the highest recall that keeps cross-validated no-answer precision at or above
   `--precision` (0.9: saying "no answer" wrongly hides a source from a reader).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from qa.build import build_from_articles
from qa.config import Settings
from qa.embed import DEFAULT_MODEL, Embedder, load_embedder
from qa.evaluate import Question, load_squad, withhold
from qa.ingest import Article
from qa.reader import (
    ANSWERABLE_FEATURES,
    SENTENCE_FEATURES,
    ReaderModel,
    RuleReader,
    best_sentence_row,
)
from qa.question import Query
from qa.search import Retriever
from qa.store import load_snapshot
from qa.tokens import Tokenizer

MODELS = Path(__file__).resolve().parent.parent / "src" / "qa" / "reader_models"
FOLDS = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--output", type=Path, help="default: src/qa/reader_models/MODEL.json")
    parser.add_argument(
        "--precision", type=float, default=0.9, help="no-answer precision the threshold must keep (default: 0.9)"
    )
    args = parser.parse_args()

    embedder, tokenizer = load_embedder(args.model), Tokenizer()
    articles, questions = load_squad(args.file)
    settings = Settings(model=args.model)
    blank = ReaderModel(np.zeros(len(SENTENCE_FEATURES)), np.zeros(len(ANSWERABLE_FEATURES)), 0.0, {})
    reader = RuleReader(tokenizer, blank)
    vectors = embedder.encode_queries([q.text for q in questions])

    def read_all(indexed, on_question):
        read_questions(indexed, questions, vectors, settings, embedder, tokenizer, on_question)

    # 1. sentence model
    rows, labels, owners, groups = [], [], [], []

    def collect_sentences(number, question, passages):
        refs, features, _ = reader.sentence_features(Query.parse(question.text, tokenizer), passages)
        for ref, row in zip(refs, features):
            text = passages[ref.passage].text[ref.span.start : ref.span.end]
            rows.append(row)
            labels.append(any(gold in text for gold in question.answers))
            owners.append(number)
            groups.append(question.source)

    read_all(articles, collect_sentences)
    X, y, owners, groups = np.array(rows), np.array(labels, dtype=float), np.array(owners), np.array(groups)
    folds = folds(groups)
    chosen = np.zeros(len(questions))
    for test_groups in folds:
        test = np.isin(groups, test_groups)
        w = fit_softmax(X[~test], y[~test], owners[~test])
        chosen += _choice_correct(X, y, owners, w, test, len(questions))
    sentence_cv = float(chosen.sum() / len(questions))
    sentence_weights = fit_softmax(X, y, owners)
    print(f"sentence choice, {FOLDS}-fold cross-validated: {sentence_cv:.3f} of {len(questions)} questions")

    # 2. answerable model
    fitted = ReaderModel(sentence_weights, np.zeros(len(ANSWERABLE_FEATURES)), 0.0, {})
    reader.model = fitted
    a_rows, a_labels, a_groups = [], [], []
    for seed in (1, 2, 3, 4):
        withheld = withhold(articles, 0.2, seed=seed)

        def collect_answerable(number, question, passages, withheld=withheld):
            query = Query.parse(question.text, tokenizer)
            refs, features, candidates = reader.sentence_features(query, passages)
            scores = fitted.sentence_scores(features)
            top = best_sentence_row(features, scores)
            a_rows.append(reader.answerable_features(query, passages, features, scores, top, refs, candidates))
            a_labels.append(question.source not in withheld)
            a_groups.append(question.source)

        read_all([a for a in articles if a.source not in withheld], collect_answerable)
    A, t, a_groups = np.array(a_rows), np.array(a_labels, dtype=float), np.array(a_groups)
    out_of_fold = np.zeros(len(t))
    for test_groups in folds(a_groups):
        test = np.isin(a_groups, test_groups)
        out_of_fold[test] = A[test] @ fit_logistic(A[~test], t[~test])
    print("no-answer precision target → cross-validated precision, recall")
    for target in (0.8, 0.85, 0.9, 0.95):
        _, p, r = threshold_for(out_of_fold, t, target)
        print(f"  {target:.2f} → {p:.3f}, {r:.3f}")
    threshold, precision, recall = threshold_for(out_of_fold, t, args.precision)
    answerable_weights = fit_logistic(A, t)
    print(f"no answer, cross-validated at threshold {threshold:.3f}: precision {precision:.3f}, recall {recall:.3f}")

    model = {
        "sentence": {"features": list(SENTENCE_FEATURES), "weights": [round(float(v), 6) for v in sentence_weights]},
        "answerable": {
            "features": list(ANSWERABLE_FEATURES),
            "weights": [round(float(v), 6) for v in answerable_weights],
            "threshold": round(float(1 / (1 + np.exp(-threshold))), 6),
        },
        "provenance": {
            "fitted_on": args.file.name,
            "sha256": hashlib.sha256(args.file.read_bytes()).hexdigest(),
            "questions": len(questions),
            "embedding_model": args.model,
            "withheld_seeds": [1, 2, 3, 4],
            "no_answer_precision_target": args.precision,
            "cross_validated": {
                "sentence_choice": round(sentence_cv, 4),
                "no_answer_precision": round(precision, 4),
                "no_answer_recall": round(recall, 4),
            },
            "date": date.today().isoformat(),
            "command": "python scripts/fit_reader.py " + args.file.name,
        },
    }
    args.output = args.output or MODELS / f"{args.model}.json"
    args.output.write_text(json.dumps(model, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


def file_arguments(description: str) -> argparse.Namespace:
    """The command line of a script that reads one SQuAD-style file: FILE [--json]."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--json", action="store_true")
    return parser.parse_args()


@dataclass
class QuestionFile:
    """A SQuAD-style file's questions, read as `ask` reads them with the default model."""

    articles: list[Article]
    questions: list[Question]
    vectors: np.ndarray  # the questions' embeddings, in order
    embedder: Embedder
    tokenizer: Tokenizer
    rules: RuleReader

    @classmethod
    def load(cls, path: Path) -> QuestionFile:
        embedder, tokenizer = load_embedder(DEFAULT_MODEL), Tokenizer()
        articles, questions = load_squad(path)
        rules = RuleReader(tokenizer, ReaderModel.for_embedding(DEFAULT_MODEL))
        return cls(articles, questions, embedder.encode_queries([q.text for q in questions]), embedder, tokenizer, rules)

    def read(self, on_question) -> None:
        """on_question(question, query, reader inputs) for every question, its query analysed
        with its vector; a progress bar."""
        bar = tqdm(total=len(self.questions), desc="questions", unit="q")

        def analysed(number, question, passages):
            on_question(question, dataclasses.replace(Query.parse(question.text, self.tokenizer), vector=self.vectors[number]), passages)
            bar.update(1)

        read_questions(self.articles, self.questions, self.vectors, Settings(model=DEFAULT_MODEL), self.embedder, self.tokenizer, analysed)
        bar.close()


def read_questions(indexed, questions, vectors, settings, embedder, tokenizer, on_question) -> None:
    """Index `indexed` in a scratch folder and call on_question(number, question, reader
    inputs) for each question, with the passages `ask` would read."""
    with tempfile.TemporaryDirectory() as scratch:
        local = dataclasses.replace(settings, index_dir=Path(scratch))
        build_from_articles(indexed, local, embedder=embedder, tokenizer=tokenizer)
        retriever = Retriever(load_snapshot(local.index_dir), embedder=embedder, tokenizer=tokenizer, settings=local)
        for number, (question, vector) in enumerate(zip(questions, vectors)):
            scored = retriever.search(question.text, k=settings.read_passages, question_vector=vector)
            on_question(number, question, retriever.reader_inputs(scored, retriever.passages(scored), vector))


def folds(groups: np.ndarray) -> list[np.ndarray]:
    unique = np.unique(groups)
    np.random.default_rng(0).shuffle(unique)
    return np.array_split(unique, FOLDS)


def fit_softmax(X, y, owners, *, l2=0.1, steps=3000, rate=1.0) -> np.ndarray:
    """Conditional logit: softmax over each question's rows, target spread over positives."""
    w = np.zeros(X.shape[1])
    _, inverse = np.unique(owners, return_inverse=True)
    positives = np.bincount(inverse, weights=y)
    keep = positives[inverse] > 0
    X, y, inverse = X[keep], y[keep], inverse[keep]
    target = y / positives[inverse]
    count = len(np.unique(inverse))
    for _ in range(steps):
        scores = X @ w
        exp = np.exp(scores - _group_max(scores, inverse)[inverse])
        p = exp / np.bincount(inverse, weights=exp)[inverse]
        w -= rate * (X.T @ (p - target) + l2 * w) / count
    return w


def _group_max(values, inverse):
    out = np.full(inverse.max() + 1, -np.inf)
    np.maximum.at(out, inverse, values)
    return out


def _choice_correct(X, y, owners, w, mask, questions) -> np.ndarray:
    correct = np.zeros(questions)
    scores = X[mask] @ w
    for owner in np.unique(owners[mask]):
        rows = owners[mask] == owner
        correct[owner] = y[mask][rows][np.argmax(scores[rows])]
    return correct


def fit_logistic(X, y, *, l2=1e-2, steps=50) -> np.ndarray:
    w = np.zeros(X.shape[1])
    for _ in range(steps):  # Newton's method
        p = 1 / (1 + np.exp(-X @ w))
        gradient = X.T @ (p - y) + l2 * w
        hessian = (X * (p * (1 - p))[:, None]).T @ X + l2 * np.eye(len(w))
        w -= np.linalg.solve(hessian, gradient)
    return w


def threshold_for(margins, answerable, target) -> tuple[float, float, float]:
    """Highest-recall margin threshold below which "no answer" keeps precision ≥ `target`."""
    unanswerable = answerable == 0
    best = (float(margins.min()) - 1e-9, 1.0, 0.0)
    for threshold in np.sort(margins):
        said = margins <= threshold
        precision = (said & unanswerable).sum() / said.sum()
        recall = (said & unanswerable).sum() / unanswerable.sum()
        if precision >= target and recall >= best[2]:
            best = (float(threshold) + 1e-9, float(precision), float(recall))
    return best


if __name__ == "__main__":
    main()
