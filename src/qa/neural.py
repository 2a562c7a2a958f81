"""An extractive question-answering model as the reader, in place of the rule reader.

Any transformers model with a question-answering head works, by hub name (where the hub
is reachable) or local folder, e.g. `qa ask … --reader ./models/chinese-roberta-squad`.
Each passage is read in overlapping windows; the best span is the start/end pair with the
highest probability; the [CLS] position's score is the model's "no answer" (models
trained with unanswerable questions use it; others rarely pick it).
"""

from __future__ import annotations

import numpy as np

from .answer import Answer
from .errors import ReaderError
from .question import Query
from .reader import PassageInput, Reading
from .text import sentence_spans

__all__ = ["NeuralReader", "ReaderError"]

_MAX_TOKENS = 384
_STRIDE = 128
_MAX_ANSWER_TOKENS = 30
_TOP_LOGITS = 20


class NeuralReader:
    def __init__(self, name_or_path: str) -> None:
        try:
            import torch
            from transformers import AutoModelForQuestionAnswering, AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            self._model = AutoModelForQuestionAnswering.from_pretrained(name_or_path).eval()
        except Exception as error:  # hub, file and config errors all mean "not loadable"
            raise ReaderError(
                f"cannot load question-answering model {name_or_path!r}: {error}. "
                "Give a local folder with a model that has a question-answering head, "
                "or use the project's own reader ('trained' or 'rules')."
            ) from error
        if not getattr(self._tokenizer, "is_fast", False):
            raise ReaderError(f"{name_or_path!r} has no fast tokenizer; character offsets need one")
        self._torch = torch
        self.name = name_or_path

    def read(self, query: Query, passages: list[PassageInput]) -> Reading:
        if not passages:
            return Reading((), 0.0, True)
        answers: list[Answer | None] = []
        best: tuple[float, int] | None = None
        null_best = 0.0
        for number, passage in enumerate(passages):
            span, probability, null = self._read_one(query.text, passage.text)
            null_best = max(null_best, null)
            if span is None:
                answers.append(None)
                continue
            start, end = span
            sentence = next(
                (s for s in sentence_spans(passage.text, clauses=False) if s.start <= start < s.end),
                sentence_spans(passage.text, clauses=False)[0],
            )
            answers.append(Answer(passage.text[start:end], start, end, probability, sentence))
            if best is None or probability > best[0]:
                best = (probability, number)
        if best is None:
            return Reading(tuple(answers), 0.0, True)
        no_answer = null_best > best[0]
        return Reading(tuple(answers), 1.0 - null_best, no_answer)

    def _read_one(self, question: str, context: str) -> tuple[tuple[int, int] | None, float, float]:
        """Best span (character offsets), its probability, and the no-answer probability."""
        encoded = self._tokenizer(
            question,
            context,
            truncation="only_second",
            max_length=_MAX_TOKENS,
            stride=_STRIDE,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=True,
            return_tensors="pt",
        )
        offsets = encoded.pop("offset_mapping").tolist()
        encoded.pop("overflow_to_sample_mapping", None)
        with self._torch.no_grad():
            output = self._model(**encoded)
        starts = output.start_logits.numpy()
        ends = output.end_logits.numpy()
        best: tuple[float, int, int] | None = None
        null = 0.0
        for window in range(len(offsets)):
            context_tokens = [i for i, s in enumerate(encoded.sequence_ids(window)) if s == 1]
            if not context_tokens:
                continue
            start_p, end_p = _softmax(starts[window]), _softmax(ends[window])
            null = max(null, float(start_p[0] * end_p[0]))
            allowed = set(context_tokens)
            for i in np.argsort(-starts[window])[:_TOP_LOGITS]:
                for j in np.argsort(-ends[window])[:_TOP_LOGITS]:
                    if i not in allowed or j not in allowed or j < i or j - i + 1 > _MAX_ANSWER_TOKENS:
                        continue
                    score = float(start_p[i] * end_p[j])
                    if best is None or score > best[0]:
                        best = (score, offsets[window][i][0], offsets[window][j][1])
        if best is None or best[2] <= best[1]:
            return None, 0.0, null
        return (best[1], best[2]), best[0], null


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()
