"""Answer quality of each reader variant on one retrieval run: what each part adds.

    python scripts/reader_variants.py ../shared/bench/cmrc2018_trial.json [--weights FILE.safetensors] [--groups] [--json]

The file's paragraphs are indexed once (the default model), each question retrieves the
passages `ask` reads, and every variant reads the same passages. The answer is the one
`ask` shows first (the most confident marked span); "no answer" scores zero. Variants:

- rules: the rule reader alone (`--reader rules`);
- span model alone: the trained span model's best logit over windows around the rule
  reader's best sentences, no type check, no fitted combination;
- + type check: spans that do not fit the question's type are dropped;
- combined, N windows: the fitted combination (`reader_models/span-e5-small.json`) over
  windows around the N best sentences (N = 2 is the shipped reader); and the shipped
  reader answered from the first hit only (hits keep the retrieval order; `ask` shows the
  most confident answer, in whichever hit holds it), and with the picked span marked as
  it is, without `qa.extent`'s clause or sentence; with `--fp32`, the shipped reader with
  the span model in float32 instead of int8;
- with `--groups`, F1 and EM of the shipped reader with and without the extent by kind of
  question (figure, date or name; why, how or yes/no; 哪些 lists; other questions);
- per variant also the median and 95th-percentile reading time (2 cores, noisy: compare
  within one run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
from fit_reader import read_questions
from tqdm.auto import tqdm

from qa.config import Settings
from qa.embed import DEFAULT_MODEL, load_embedder
from qa.evaluate import answer_em, answer_f1, load_squad
from qa.extent import LIST_WORDS
from qa.question import AnswerType, Query, Question
from qa.reader import TYPED_ANSWERS, ReaderModel, RuleReader
from qa.span_model import SHIPPED_WEIGHTS, SpanModel
from qa.span_reader import SPAN_FEATURES, SpanReader, SpanWeights
from qa.tokens import Tokenizer

MODELS = Path(__file__).resolve().parent.parent / "src" / "qa" / "reader_models"
SHIPPED = "combined, 2 windows"
UNEXTENDED = f"{SHIPPED}, span as picked"

GROUPS = ("figure, date or name", "why, how or yes/no", "哪些 list", "other")


def question_group(asks: Question) -> str:
    """The kinds of question `qa.extent` marks differently."""
    if asks.type in TYPED_ANSWERS:
        return GROUPS[0]
    if asks.type is AnswerType.DESCRIPTION:
        return GROUPS[1]
    return GROUPS[2] if asks.word in LIST_WORDS else GROUPS[3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--weights", type=Path, default=MODELS / SHIPPED_WEIGHTS)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--fp32", action="store_true", help="also the shipped reader with the float32 span model")
    parser.add_argument("--groups", action="store_true", help="also F1 / EM by kind of question, with and without the extent")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    embedder, tokenizer = load_embedder(DEFAULT_MODEL), Tokenizer()
    articles, questions = load_squad(args.file)
    if args.limit:
        questions = questions[: args.limit]
    rules = RuleReader(tokenizer, ReaderModel.for_embedding(DEFAULT_MODEL))
    model = SpanModel.from_weights(args.weights)
    fitted = SpanWeights.packaged()
    logit_only = dataclasses.replace(fitted, span=np.eye(len(SPAN_FEATURES))[SPAN_FEATURES.index("span_logit")])
    variants = {
        "rules": rules,
        "span model alone": SpanReader(rules, model, logit_only, typed=False),
        "span model + type check": SpanReader(rules, model, logit_only),
        **{f"combined, {n} window{'s' if n > 1 else ''}": SpanReader(rules, model, fitted, read_sentences=n) for n in (1, 2, 3, 5)},
    }
    variants[UNEXTENDED] = SpanReader(rules, model, fitted, extent=False)
    if args.fp32:
        variants[f"{SHIPPED}, float32 model"] = SpanReader(rules, SpanModel.from_weights(args.weights, quantize=False), fitted)
    scores: dict[str, dict[str, list]] = {}
    vectors = embedder.encode_queries([q.text for q in questions])
    bar = tqdm(total=len(questions), desc="questions", unit="q")

    def on_question(number, question, passages):
        query = dataclasses.replace(Query.parse(question.text, tokenizer), vector=vectors[number])
        for name, reader in variants.items():
            started = time.perf_counter()
            reading = reader.read(query, passages)
            seconds = time.perf_counter() - started
            marked = [] if reading.no_answer else [(a, p) for a, p in zip(reading.answers, passages) if a is not None]
            answer, passage = max(marked, key=lambda item: item[0].confidence) if marked else (None, None)
            record(name, question, query.asks, answer, passage, reading.no_answer, seconds)
            if name == SHIPPED:  # the same reading, answered from the first hit only
                first = None if reading.no_answer else reading.answers[0]
                record(f"{SHIPPED}, first hit only", question, query.asks, first, passages[0], reading.no_answer, seconds)
        bar.update(1)

    def record(name, question, asks, answer, passage, no_answer, seconds):
        text = answer.text if answer else ""
        sentence = passage.text[answer.sentence.start : answer.sentence.end] if answer else ""
        s = scores.setdefault(name, {"f1": [], "em": [], "in_sentence": [], "no_answer": [], "seconds": [], "group": []})
        s["group"].append(question_group(asks))
        s["f1"].append(max(answer_f1(text, g) for g in question.answers))
        s["em"].append(max(answer_em(text, g) for g in question.answers))
        s["in_sentence"].append(any(g in sentence for g in question.answers))
        s["no_answer"].append(no_answer)
        s["seconds"].append(seconds)

    read_questions(articles, questions, vectors, Settings(model=DEFAULT_MODEL), embedder, tokenizer, on_question)
    bar.close()
    table = {
        name: {
            "answer_f1": round(float(np.mean(s["f1"])), 4),
            "answer_em": round(float(np.mean(s["em"])), 4),
            "answer_in_sentence": round(float(np.mean(s["in_sentence"])), 4),
            "no_answer_rate": round(float(np.mean(s["no_answer"])), 4),
            "read_ms_p50": round(1000 * float(np.median(s["seconds"])), 1),
            "read_ms_p95": round(1000 * float(np.percentile(s["seconds"], 95)), 1),
        }
        for name, s in scores.items()
    }
    groups = {
        name: {
            group: {
                "questions": sum(g == group for g in scores[name]["group"]),
                "answer_f1": round(float(np.mean([f for f, g in zip(scores[name]["f1"], scores[name]["group"]) if g == group])), 4),
                "answer_em": round(float(np.mean([e for e, g in zip(scores[name]["em"], scores[name]["group"]) if g == group])), 4),
            }
            for group in GROUPS
            if group in scores[name]["group"]
        }
        for name in (UNEXTENDED, SHIPPED)
    }
    if args.json:
        report = {"file": args.file.name, "questions": len(questions), "weights": args.weights.name, "variants": table}
        print(json.dumps(report | ({"groups": groups} if args.groups else {}), ensure_ascii=False))
        return
    print(f"{len(questions)} questions of {args.file.name}; span model {args.weights.name}")
    print(f"| {'reader':<26} | F1 | EM | in sentence | no answer | read ms p50 / p95 |")
    print("|---|---|---|---|---|---|")
    for name, row in table.items():
        print(
            f"| {name:<26} | {row['answer_f1']:.3f} | {row['answer_em']:.3f} | {row['answer_in_sentence']:.3f} | "
            f"{row['no_answer_rate']:.3f} | {row['read_ms_p50']:.0f} / {row['read_ms_p95']:.0f} |"
        )
    if args.groups:
        print("\n| question | questions | F1 span as picked → with extent | EM span as picked → with extent |")
        print("|---|---|---|---|")
        for group in groups[SHIPPED]:
            before, after = groups[UNEXTENDED][group], groups[SHIPPED][group]
            print(
                f"| {group} | {after['questions']} | {before['answer_f1']:.3f} → {after['answer_f1']:.3f} | "
                f"{before['answer_em']:.3f} → {after['answer_em']:.3f} |"
            )


if __name__ == "__main__":
    main()
