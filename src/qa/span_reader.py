"""The default reader: the rule reader says where to look, the trained span model marks the
answer, and fitted linear models weigh the two.

1. The rule reader scores every sentence of the passages read (`RuleReader.sentence_features`).
2. Windows around its best `READ_SENTENCES` sentences (`qa.span_windows`) go through the
   span model in one batch; each window proposes its best spans, and the rule reader's
   span and the candidates of the asked type in it are offered too, scored by the model's
   logits at their edges.
3. Every proposed span gets the features in `SPAN_FEATURES` (named where computed); a
   linear score picks the answer, and `qa.extent` says how much of its sentence to mark.
4. A span must fit what the question asks: a figure for 多少 (a count for 多少列车, a time
   for 多久), a date for 什么时候, a name for 谁 (`qa.candidates.span_fits`). A question
   whose spans all fail gets no answer.
5. P(answerable) is a logistic model of `ANSWERABLE_FEATURES` (the rule reader's verdict
   and the span model's "not here" margin); below its threshold the answer is "no answer".
6. Confidence = P(answerable) × P(span right): the second a logistic model of the pick's
   margin over the best span that does not overlap it ("right" = F1 ≥ 0.5 with the gold).

Span choice and confidence are fitted by `scripts/fit_span_reader.py` on XQuAD, which the
span model never trained on; the no-answer model, as the rule reader's, on the CMRC 2018
trial set with other paragraphs withheld than `qa eval --unanswerable` withholds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from .answer import Answer
from .candidates import asked_measure, span_fits
from .extent import answer_extent
from .question import Query, Question
from .reader import SENTENCE_FEATURES, TYPED_ANSWERS, PassageInput, Reading, RuleReader, best_sentence_row, sigmoid, softmax
from .span_model import SpanModel
from .span_windows import ContextTokens, Window, context_tokens, question_ids, top_spans, window
from .text import BRACKETS, CLOSING_MARKS, OPENING_MARKS, Span, fold

__all__ = ["ANSWERABLE_FEATURES", "Choice", "Proposals", "READ_SENTENCES", "SPAN_FEATURES", "SpanCandidate", "SpanReader", "SpanWeights", "marked_span"]

READ_SENTENCES = 2  # windows read per question: 3 and 5 read no better, slower (docs/reader.md)
SPANS_PER_WINDOW = 5
SPAN_FEATURES = (
    "span_logit",  # start + end logit, minus the best of the question's spans
    "null_margin",  # start + end logit minus the window's "not here" logit
    "sentence_logprob",  # log P(sentence) of the rule reader for the span's sentence
    "fits_type",  # a figure, date or name is asked for and the span is one
    "in_question",  # share of the span's characters that the question holds
    "length",  # log(1 + characters)
    "rule_overlap",  # character F1 with the rule reader's span in the same sentence
    "from_rules",  # offered by the rules (their span, or a candidate of the asked type)
)
ANSWERABLE_FEATURES = (
    "rules_answerable",  # the rule reader's answerable log-odds (retrieval and sentence features)
    "null_margin",  # the pick's start + end logit above its window's "not here"
    "pick_score",  # the pick's fitted span score
    "no_fitting_span",  # a figure, date or name is asked and no span read is one
    "bias",
)
_TRIM_START = "，,、：:；; 　"
_TRIM_END = "，,、：:；;。．.！!？? 　的了"


@dataclass(frozen=True)
class SpanWeights:
    """The fitted combination (scripts/fit_span_reader.py)."""

    span: np.ndarray  # over SPAN_FEATURES
    confidence: np.ndarray  # over (margin, bias)
    answerable: np.ndarray  # over ANSWERABLE_FEATURES
    answerable_threshold: float
    provenance: dict = field(default_factory=dict)

    @classmethod
    def packaged(cls) -> SpanWeights:
        return cls.from_json(resources.files("qa").joinpath("reader_models", "span-e5-small.json").read_text(encoding="utf-8"))

    @classmethod
    def from_json(cls, text: str) -> SpanWeights:
        data = json.loads(text)
        if tuple(data["span"]["features"]) != SPAN_FEATURES or tuple(data["answerable"]["features"]) != ANSWERABLE_FEATURES:
            raise ValueError("span reader features differ from this version's; refit with scripts/fit_span_reader.py")
        return cls(
            np.asarray(data["span"]["weights"], dtype=np.float64),
            np.asarray(data["confidence"]["weights"], dtype=np.float64),
            np.asarray(data["answerable"]["weights"], dtype=np.float64),
            float(data["answerable"]["threshold"]),
            data.get("provenance", {}),
        )


@dataclass(frozen=True)
class SpanCandidate:
    passage: int
    start: int  # in the passage text
    end: int
    features: dict[str, float]

    def row(self) -> np.ndarray:
        return np.array([self.features[name] for name in SPAN_FEATURES])


class SpanReader:
    def __init__(
        self,
        rules: RuleReader,
        model: SpanModel,
        weights: SpanWeights,
        *,
        read_sentences: int = READ_SENTENCES,
        typed: bool = True,
        extent: bool = True,
    ) -> None:
        self.rules = rules
        self.model = model
        self.weights = weights
        self.read_sentences = read_sentences  # windows read per question
        self.typed = typed  # whether spans must fit the question's type (off only to measure it)
        self.extent = extent  # whether the answer marks its clause or sentence where the question asks for one (likewise)
        self.name = f"{model.name}+rules"

    def read(self, query: Query, passages: list[PassageInput]) -> Reading:
        if not passages:
            return Reading((), 0.0, True)
        found = self.candidates(query, passages)
        choice = self.choose(found, query.asks)
        answerable = sigmoid(self.answerable_row(found, choice) @ self.weights.answerable)
        if choice.best is None:
            return Reading(tuple(None for _ in passages), answerable, True)
        right = sigmoid(self.weights.confidence @ np.array([choice.margin, 1.0]))
        answers: list[Answer | None] = []
        for number, passage in enumerate(passages):
            mine = [i for i in choice.usable if found.spans[i].passage == number]
            if not mine:
                answers.append(None)
                continue
            pick = max(mine, key=lambda i: choice.scores[i])
            span = found.spans[pick]
            # another passage's best span: as likely as its score says, relative to the pick
            share = right * math.exp(min(0.0, choice.scores[pick] - choice.scores[choice.best]))
            sentence = found.sentences[(number, span.start)]
            start, end = span.start, span.end
            if self.extent:
                extent = answer_extent(query.asks, passage.text, sentence, span.start, span.end)
                start, end = marked_span(passage.text, extent, sentence) or (start, end)
            answers.append(Answer(passage.text[start:end], start, end, float(answerable * share), sentence))
        return Reading(tuple(answers), answerable, answerable < self.weights.answerable_threshold)

    def choose(self, found: Proposals, analysis: Question) -> Choice:
        """The best span that fits the question's type, and its margin over the best span
        that does not overlap it."""
        scores = np.array([c.row() @ self.weights.span for c in found.spans]) if found.spans else np.zeros(0)
        usable = [
            i for i, c in enumerate(found.spans) if c.features["fits_type"] or analysis.type not in TYPED_ANSWERS or not self.typed
        ]
        if not usable:
            return Choice(scores, usable, None, 0.0)
        best = max(usable, key=lambda i: scores[i])
        others = [scores[i] for i in usable if not _overlaps(found.spans[i], found.spans[best])]
        return Choice(scores, usable, best, float(scores[best] - max(others)) if others else _LONE_MARGIN)

    def answerable_row(self, found: Proposals, choice: Choice) -> np.ndarray:
        features = {
            "rules_answerable": math.log(found.answerable / max(1e-9, 1.0 - found.answerable) + 1e-12),
            "null_margin": found.spans[choice.best].features["null_margin"] if choice.best is not None else -10.0,
            "pick_score": float(choice.scores[choice.best]) if choice.best is not None else -10.0,
            "no_fitting_span": float(choice.best is None),
            "bias": 1.0,
        }
        return np.array([features[name] for name in ANSWERABLE_FEATURES])

    def candidates(self, query: Query, passages: list[PassageInput]) -> Proposals:
        """The spans the model proposes in windows around the rule reader's best sentences,
        with their features; the rule reader's P(answerable)."""
        rules = self.rules
        analysis = query.asks
        refs, features, candidates = rules.sentence_features(query, passages)
        scores = rules.model.sentence_scores(features)
        top_row = best_sentence_row(features, scores)
        answerable_row = rules.answerable_features(query, passages, features, scores, top_row, refs, candidates)
        answerable = float(sigmoid(answerable_row @ rules.model.answerable_weights))
        logprobs = np.log(softmax(scores) + 1e-12)

        contexts: dict[int, ContextTokens] = {}
        asked = question_ids(self.model.tokenizer, query.text)
        read: dict[tuple[int, tuple[int, int]], Window] = {}
        anchors: dict[tuple[int, tuple[int, int]], list[int]] = {}  # the sentence rows each window was read for
        covered = features[:, SENTENCE_FEATURES.index("coverage")] > 0  # sentences sharing nothing are not read
        order = [int(r) for r in np.argsort(-scores) if covered[r]][: self.read_sentences] or [top_row]
        for row in order:
            ref = refs[row]
            if ref.passage not in contexts:
                contexts[ref.passage] = context_tokens(self.model.tokenizer, passages[ref.passage].text)
            context = contexts[ref.passage]
            number = next(i for i, (a, _) in enumerate(context.sentence_chars) if a == ref.span.start)
            w = window(asked, context, context.sentences[number])
            read.setdefault((ref.passage, w.token_range), w)
            anchors.setdefault((ref.passage, w.token_range), []).append(row)
        keys = list(read)
        starts, ends = self.model.logits([read[k] for k in keys])

        row_of = {(ref.passage, ref.span.start): r for r, ref in enumerate(refs)}
        rule_spans: dict[int, tuple[int, int]] = {}

        def rule_span(row: int) -> tuple[int, int]:
            if row not in rule_spans:
                ref = refs[row]
                rule_spans[row] = rules.extract_span(analysis, passages[ref.passage].text, ref.span, candidates[row])
            return rule_spans[row]

        folded_question = query.folded
        measure = asked_measure(analysis)  # a figure question's unit: 多少列车 is not answered by 22分钟
        spans: list[SpanCandidate] = []
        sentences = {}
        for k, (number, _) in enumerate(keys):
            w, context = read[keys[k]], contexts[number]
            text = passages[number].text
            null = float(starts[k][0] + ends[k][0])
            proposed = [(score, *_trim(text, *w.char_span(context, first, last)), 0.0) for score, first, last in top_spans(w, starts[k], ends[k], SPANS_PER_WINDOW)]
            # the rule reader's span and the typed candidates of the sentences read, scored
            # by the model's logits at their edges: the rules know what a figure or a name
            # looks like, the model what the question asks
            for row in anchors.get(keys[k], ()):
                sentence = refs[row].span
                offered = [rule_span(row)] + [
                    (sentence.start + c.start, sentence.start + c.end) for c in candidates[row] if c.matches(analysis.type)
                ]
                for start, end in offered:
                    edges = w.positions_of(context, start, end)
                    if edges is not None:
                        proposed.append((float(starts[k][edges[0]] + ends[k][edges[1]]), start, end, 1.0))
            for score, start, end, from_rules in proposed:
                if end <= start:
                    continue
                a, b = context.sentence_chars[context.sentence_of_char(start)]
                marked = marked_span(text, Span(start, min(end, b)), Span(a, b))  # an answer stays inside its sentence
                if marked is None:
                    continue
                start, end = marked
                row = row_of.get((number, a))
                answer = text[start:end]
                spans.append(
                    SpanCandidate(
                        number,
                        start,
                        end,
                        {
                            "span_logit": score,
                            "null_margin": score - null,
                            "sentence_logprob": float(logprobs[row]) if row is not None else -20.0,
                            "fits_type": float(
                                analysis.type in TYPED_ANSWERS
                                and span_fits(analysis.type, text[a:b], start - a, end - a, rules.tokenizer, measure=measure)
                            ),
                            "in_question": sum(c in folded_question for c in fold(answer)) / len(answer),
                            "length": math.log1p(len(answer)),
                            "rule_overlap": _overlap_f1((start, end), rule_span(row)) if row is not None else 0.0,
                            "from_rules": from_rules,
                        },
                    )
                )
                sentences[(number, start)] = refs[row].span if row is not None else Span(a, b)
        spans = _dedupe(spans)
        if spans:
            top = max(c.features["span_logit"] for c in spans)
            for c in spans:
                c.features["span_logit"] -= top
        return Proposals(spans, answerable, sentences)


@dataclass
class Proposals:
    spans: list[SpanCandidate]
    answerable: float  # the rule reader's P(answerable)
    sentences: dict  # (passage, span start) → the sentence Span holding it


@dataclass
class Choice:
    scores: np.ndarray  # fitted score of every span
    usable: list[int]  # spans that fit the question's type
    best: int | None
    margin: float


_LONE_MARGIN = 5.0  # the margin of a pick with no rival span


def marked_span(text: str, span: Span, sentence: Span) -> tuple[int, int] | None:
    """What is marked of `span` inside `sentence`: its brackets paired and its edges trimmed
    (a model's span may cut a title in half, an extent of whole clauses open a bracket it
    does not close); None if nothing is left."""
    start, end = _trim(text, *_balance(text, span.start, span.end, sentence.start, sentence.end))
    return (start, end) if end > start else None


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Without punctuation and trailing particles at either end."""
    while start < end and text[start] in _TRIM_START:
        start += 1
    while end > start and text[end - 1] in _TRIM_END:
        end -= 1
    return start, end


_MARKS = frozenset(OPENING_MARKS + CLOSING_MARKS)
_BALANCE_ROUNDS = 3


def _balance(text: str, start: int, end: int, sentence_start: int, sentence_end: int) -> tuple[int, int]:
    """The span with its brackets and quotation marks paired: a mark left open is closed by
    growing the span to its partner inside the sentence, else the span stops short of it;
    a mark closed without its opening likewise. Half a title (“《关于支持武清京津”) is never
    marked. Growing for one kind of mark can take in another's lone mark, so a few rounds
    settle it; a span still unpaired after them comes back empty."""
    if _MARKS.isdisjoint(text[start:end]):  # most spans: nothing to pair
        return start, end
    for _ in range(_BALANCE_ROUNDS):
        paired = True
        for opening, closing in BRACKETS:
            open_at, closed_alone = [], []
            for i in range(start, end):
                if text[i] == opening:
                    open_at.append(i)
                elif text[i] == closing and open_at:
                    open_at.pop()
                elif text[i] == closing:
                    closed_alone.append(i)
            if open_at:
                paired = False
                partner = _partner(text, end, sentence_end, opening, closing, len(open_at))
                end = partner + 1 if partner is not None else open_at[0]
            if closed_alone and start < end:
                paired = False
                partner = _partner(text, start - 1, sentence_start - 1, closing, opening, len(closed_alone))
                start = partner if partner is not None else closed_alone[-1] + 1
        if paired:
            return start, end
    return start, start


def _partner(text: str, begin: int, stop: int, same: str, partner: str, open_count: int) -> int | None:
    """Where `open_count` marks left open are all closed, walking from `begin` towards
    `stop` (excluded; backwards when `stop < begin`); None if they are not."""
    step = 1 if stop >= begin else -1
    for i in range(begin, stop, step):
        if text[i] == same:
            open_count += 1
        elif text[i] == partner:
            open_count -= 1
            if open_count == 0:
                return i
    return None


def _dedupe(spans: list[SpanCandidate]) -> list[SpanCandidate]:
    """One candidate per (passage, start, end): the one with the best logit (windows overlap)."""
    best: dict[tuple[int, int, int], SpanCandidate] = {}
    for c in spans:
        key = (c.passage, c.start, c.end)
        if key in best:
            c.features["from_rules"] = max(c.features["from_rules"], best[key].features["from_rules"])
        if key not in best or c.features["span_logit"] > best[key].features["span_logit"]:
            best[key] = c
    return list(best.values())


def _overlap_f1(a: tuple[int, int], b: tuple[int, int]) -> float:
    shared = min(a[1], b[1]) - max(a[0], b[0])
    if shared <= 0:
        return 0.0
    precision, recall = shared / (a[1] - a[0]), shared / (b[1] - b[0])
    return 2 * precision * recall / (precision + recall)


def _overlaps(a: SpanCandidate, b: SpanCandidate) -> bool:
    return a.passage == b.passage and a.start < b.end and b.start < a.end


