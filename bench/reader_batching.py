"""Would batching concurrent questions into one span-model call serve more answers a second?

    python bench/reader_batching.py ../shared/bench/cmrc2018_trial.json [--questions 200] [--json]

For each trial question, the span model's windows as serving reads them (the two best
sentences of the gold paragraph, here simply its first two, with the question). Times
the model on one question's windows at a time, then on the windows of 2, 4 and 8
questions in one call, and reports milliseconds per question (median of 3 passes). The
model is the only part of an answer that batching could share; the rest (retrieval,
features) is per question.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from qa.embed import load_embedder, shared_tokenizer
from qa.evaluate import load_squad
from qa.span_model import SpanModel
from qa.span_windows import context_tokens, question_ids, window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    model = SpanModel.packaged(tokenizer=shared_tokenizer(load_embedder()))
    articles, questions = load_squad(args.file)
    text_of = {a.source: a.text for a in articles}
    per_question = []
    for question in questions[: args.questions]:
        context = context_tokens(model.tokenizer, text_of[question.source])
        asked = question_ids(model.tokenizer, question.text)
        per_question.append([window(asked, context, sentence) for sentence in context.sentences[:2]])
    report = {"questions": len(per_question)}
    for batch in (1, 2, 4, 8):
        passes = []
        for _ in range(3):
            started = time.perf_counter()
            for first in range(0, len(per_question), batch):
                model.logits([w for windows in per_question[first : first + batch] for w in windows])
            passes.append((time.perf_counter() - started) * 1000 / len(per_question))
        report[f"ms_per_question_batch_{batch}"] = round(statistics.median(passes), 2)
    print(json.dumps(report) if args.json else "\n".join(f"{k}: {v}" for k, v in report.items()))


if __name__ == "__main__":
    main()
