"""Read the top passages and find the answer: which sentence, which span, how sure.

1. Every sentence of the top passages is scored by a linear model over a few features
   (how much of the question it covers, whether it holds the words next to the question
   word, whether it holds a candidate of the expected type, where it sits, how its
   passage ranked). The weights are fitted on data (`scripts/fit_reader.py`) and shipped
   in `reader_models/<embedding model>.json`; a softmax over the sentences gives each one a probability.
2. In the chosen sentence, the span is found by aligning the question around its question
   word (“…以什么为核心” → “…以〔国际级别赛道〕为核心”), else by the candidate of the expected
   type (figure, date, name …) nearest the question's words; how/why/yes-no questions, or
   sentences without such a span, are answered by the sentence itself.
3. A second linear model, fitted the same way, gives the probability that the passages
   answer the question at all; below its calibrated threshold the answer is “no answer”.

Confidence = P(answerable) × P(sentence): the chance that the marked sentence holds the
answer, under the fitted models.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

import numpy as np
from rapidfuzz.distance import LCSseq

from .answer import Answer
from .candidates import Candidate, extract_candidates
from .embed import USE_MODEL
from .question import AnswerType, Query, Question
from .text import Span, fold, sentence_spans
from .tokens import QUESTION_WORDS, Tokenizer

__all__ = ["best_sentence_row", "sigmoid", "softmax", "token_weights", "TYPED_ANSWERS", "Reader", "ReaderModel", "Reading", "RuleReader", "SENTENCE_FEATURES", "ANSWERABLE_FEATURES", "PassageInput"]

# Words that link a question's subject to what it asks, too common to locate anything.
_FUNCTION_WORDS = frozenset("的 是 为 了 在 有 被 把 对 和 与 及 又 也 都 称 叫 之 其 所 于 以 由 从 到 向 给 让 将 要 会 能".split())
_SPAN_TRIM_START = "是为了在的：:，,、 "
_SPAN_TRIM_END = "的了，,、；; "
_MAX_SPAN_CHARS = 40
_ALNUM_RUN = re.compile(r"[^\W_]+")  # characters for which str.isalnum() holds

SENTENCE_FEATURES = (
    "coverage",  # weighted share of the question's tokens found in the sentence
    "near_coverage",  # share of question bigrams found, weighted by nearness to the question word
    "predicate",  # the word next to the question word is in the sentence (1), partly (0.5)
    "left_anchor",  # the text just before the question word is in the sentence
    "right_anchor",  # the text just after the question word is in the sentence
    "longest_match",  # longest common substring with the question, in units of 8 characters
    "novel_coverage",  # coverage by tokens absent from the passage's first sentence
    "previous_coverage",  # coverage of the sentence before (context for elided subjects)
    "typed_candidate",  # holds a candidate of the expected answer type not in the question
    "first_sentence",
    "length",  # log(1 + characters) / 5
    "passage_rank_0",
    "passage_rank_1",
    "retrieval_score",
    "dense_cosine",  # best cosine of the question with the sentence's indexed clauses
    "dense_relative",  # that cosine minus the best among all sentences read
    "ordered_match",  # longest common subsequence with the question / question length
)
ANSWERABLE_FEATURES = (
    "passage_coverage",  # weighted share of the question's tokens found in the top passage
    "sentence_coverage",  # the same for the best sentence
    "near_coverage",  # the best sentence's coverage of the words around the question word
    "predicate",  # the best sentence holds the word next to the question word
    "best_sentence_score",  # linear score of the best sentence
    "retrieval_score",  # fused retrieval score of the top passage
    "dense_margin",  # the top passage's best cosine above the mean of the other passages read
    "missing_type",  # a figure, date or name is asked for and no sentence read holds one
    "local_support",  # question words within 12 characters of the best sentence's best typed candidate
    "bias",
)
_SUPPORT_WINDOW = 12
TYPED_ANSWERS = (AnswerType.QUANTITY, AnswerType.DATE, AnswerType.PERSON, AnswerType.PLACE, AnswerType.ORGANIZATION)


@dataclass(frozen=True)
class ReaderModel:
    sentence_weights: np.ndarray
    answerable_weights: np.ndarray
    answerable_threshold: float
    provenance: dict

    @classmethod
    def for_embedding(cls, embedding_model: str) -> ReaderModel:
        """The weights fitted with `embedding_model`'s cosines (scripts/fit_reader.py).

        Cosine features mean different things for each model. A model without weights of
        its own gets USE's: most sentence models spread their cosines as USE does (related
        text 0.5–0.8, unrelated under 0.3), where e5 packs both into 0.7–0.9."""
        folder = resources.files("qa").joinpath("reader_models")
        fitted = folder.joinpath(f"{embedding_model}.json")
        if not fitted.is_file():
            fitted = folder.joinpath(f"{USE_MODEL}.json")
        return cls.from_json(fitted.read_text(encoding="utf-8"))

    @classmethod
    def from_json(cls, text: str) -> ReaderModel:
        data = json.loads(text)
        if tuple(data["sentence"]["features"]) != SENTENCE_FEATURES or tuple(
            data["answerable"]["features"]
        ) != ANSWERABLE_FEATURES:
            raise ValueError("reader model features differ from this version's; refit with scripts/fit_reader.py")
        return cls(
            sentence_weights=np.asarray(data["sentence"]["weights"], dtype=np.float64),
            answerable_weights=np.asarray(data["answerable"]["weights"], dtype=np.float64),
            answerable_threshold=float(data["answerable"]["threshold"]),
            provenance=data.get("provenance", {}),
        )

    def sentence_scores(self, features: np.ndarray) -> np.ndarray:
        """Each sentence's score (rows of `SENTENCE_FEATURES`): the higher, the likelier it
        holds the answer."""
        return features @ self.sentence_weights


@dataclass(frozen=True)
class PassageInput:
    """What the reader needs of a retrieved passage.

    `clause_cosines` are the question's cosines with the passage's clauses in index order
    (`sentence_spans(text)`); empty when unknown.
    """

    text: str
    retrieval_score: float
    dense_score: float
    clause_cosines: tuple[float, ...] = ()


@dataclass(frozen=True)
class SentenceRef:
    passage: int
    span: Span  # in the passage text


@dataclass(frozen=True)
class Reading:
    answers: tuple[Answer | None, ...]  # one per passage read
    answerable: float  # probability that the passages answer the question
    no_answer: bool


class Reader(Protocol):
    def read(self, query: Query, passages: list[PassageInput]) -> Reading:
        """Answers in the passages (one per passage, or None), the best, and whether any."""
        ...


class SentenceCandidates:
    """Each sentence's answer candidates, extracted when first asked for: full extraction
    tags words with jieba's slowest model, and only a few sentences need it."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self._sentences: list[str] = []
        self._found: dict[int, list[Candidate]] = {}

    def append(self, sentence: str) -> None:
        self._sentences.append(sentence)

    def __len__(self) -> int:
        return len(self._sentences)

    def __getitem__(self, row: int) -> list[Candidate]:
        if row not in self._found:
            self._found[row] = extract_candidates(self._sentences[row], self.tokenizer)
        return self._found[row]


class RuleReader:
    """The offline reader: fitted sentence scoring plus rule-based span extraction."""

    def __init__(self, tokenizer: Tokenizer, model: ReaderModel) -> None:
        self.tokenizer = tokenizer
        self.model = model

    def read(self, query: Query, passages: list[PassageInput]) -> Reading:
        if not passages:
            return Reading((), 0.0, True)
        analysis = query.asks
        refs, features, candidates = self.sentence_features(query, passages)
        scores = self.model.sentence_scores(features)
        probabilities = softmax(scores)

        best_of: dict[int, int] = {}
        for row, ref in enumerate(refs):
            if ref.passage not in best_of or scores[row] > scores[best_of[ref.passage]]:
                best_of[ref.passage] = row
        top_row = best_sentence_row(features, scores)
        row = self.answerable_features(query, passages, features, scores, top_row, refs, candidates)
        answerable = float(sigmoid(row @ self.model.answerable_weights))
        no_answer = answerable < self.model.answerable_threshold

        answers: list[Answer | None] = []
        for number, passage in enumerate(passages):
            row = best_of.get(number)
            if row is None or features[row, SENTENCE_FEATURES.index("coverage")] == 0:
                answers.append(None)
                continue
            sentence = refs[row].span
            start, end = self.extract_span(analysis, passage.text, sentence, candidates[row])
            answers.append(
                Answer(
                    text=passage.text[start:end],
                    start=start,
                    end=end,
                    confidence=float(answerable * probabilities[row]),
                    sentence=sentence,
                )
            )
        return Reading(tuple(answers), answerable, no_answer)

    # -- sentence scoring ------------------------------------------------------------

    def sentence_features(
        self, query: Query, passages: list[PassageInput]
    ) -> tuple[list[SentenceRef], np.ndarray, SentenceCandidates]:
        """One feature row per sentence of the passages (see SENTENCE_FEATURES)."""
        analysis = query.asks
        weights = token_weights(query.tokens)
        total = sum(weights.values()) or 1.0
        folded_question = query.folded
        predicates = self._predicates(analysis)
        left, right = _anchors(analysis)
        bigrams = _weighted_bigrams(folded_question, analysis.wh)

        refs: list[SentenceRef] = []
        rows: list[list[float]] = []
        candidates = SentenceCandidates(self.tokenizer)
        content = "".join(c for i, c in enumerate(folded_question) if c.isalnum() and not (analysis.wh and analysis.wh.start <= i < analysis.wh.end))
        for number, passage in enumerate(passages):
            spans = sentence_spans(passage.text, clauses=False)
            folded = [fold(passage.text[s.start : s.end]) for s in spans]
            first = folded[0] if folded else ""
            cosines = _sentence_cosines(passage, spans)
            for index, (span, sentence) in enumerate(zip(spans, folded)):
                # whether a sentence holds an answer of the right type is asked of every
                # sentence read, so with dictionary names only; the sentences answers are
                # taken from get the full extraction (SentenceCandidates)
                found = extract_candidates(passage.text[span.start : span.end], self.tokenizer, new_words=False)
                typed = any(
                    c.matches(analysis.type) and fold(passage.text[span.start + c.start : span.start + c.end]) not in folded_question
                    for c in found
                )
                present = [t for t in weights if t in sentence]
                row = {
                    "coverage": sum(weights[t] for t in present) / total,
                    "near_coverage": _bigram_coverage(bigrams, sentence),
                    "predicate": _predicate_match(predicates, sentence),
                    "left_anchor": _anchor_match(left, sentence),
                    "right_anchor": _anchor_match(right, sentence),
                    "longest_match": _longest_common_substring(folded_question, sentence) / 8,
                    "novel_coverage": sum(weights[t] for t in present if t not in first) / total,
                    "previous_coverage": sum(weights[t] for t in weights if t in folded[index - 1]) / total if index else 0.0,
                    "typed_candidate": float(typed),
                    "first_sentence": float(index == 0),
                    "length": math.log1p(len(sentence)) / 5,
                    "passage_rank_0": float(number == 0),
                    "passage_rank_1": float(number == 1),
                    "retrieval_score": passage.retrieval_score,
                    "dense_cosine": cosines[index],
                    "dense_relative": 0.0,  # filled in below, once every sentence's cosine is known
                    "ordered_match": _common_subsequence(content, sentence) / max(len(content), 1),
                }
                rows.append([row[name] for name in SENTENCE_FEATURES])
                refs.append(SentenceRef(number, span))
                candidates.append(passage.text[span.start : span.end])
        matrix = np.asarray(rows, dtype=np.float64).reshape(-1, len(SENTENCE_FEATURES))
        if len(matrix):
            cosine = SENTENCE_FEATURES.index("dense_cosine")
            matrix[:, SENTENCE_FEATURES.index("dense_relative")] = matrix[:, cosine] - matrix[:, cosine].max()
        return refs, matrix, candidates

    def answerable_features(
        self,
        query: Query,
        passages: list[PassageInput],
        features: np.ndarray,
        scores: np.ndarray,
        top_row: int,
        refs: list[SentenceRef],
        candidates: SentenceCandidates,
    ) -> np.ndarray:
        """One row of ANSWERABLE_FEATURES for the question and the passages read."""
        weights = token_weights(query.tokens)
        total = sum(weights.values()) or 1.0
        top = fold(passages[0].text)
        analysis = query.asks
        typed = analysis.type in TYPED_ANSWERS
        sentence = passages[refs[top_row].passage].text[refs[top_row].span.start : refs[top_row].span.end]
        support = _local_support(analysis, fold(sentence), candidates[top_row], weights, total) if typed else (
            features[top_row, SENTENCE_FEATURES.index("near_coverage")]
        )
        found = features[:, SENTENCE_FEATURES.index("typed_candidate")].max() if len(features) else 0.0
        at = {name: features[top_row, SENTENCE_FEATURES.index(name)] for name in ("coverage", "near_coverage", "predicate")}
        row = {
            "passage_coverage": sum(w for t, w in weights.items() if t in top) / total,
            "sentence_coverage": at["coverage"],
            "near_coverage": at["near_coverage"],
            "predicate": at["predicate"],
            "best_sentence_score": scores[top_row],
            "retrieval_score": passages[0].retrieval_score,
            "dense_margin": _dense_margin(passages),
            "missing_type": float(typed and not found),
            "local_support": support,
            "bias": 1.0,
        }
        return np.array([row[name] for name in ANSWERABLE_FEATURES])

    def _predicates(self, analysis: Question) -> list[str]:
        """The content words right before and right after the question word."""
        if analysis.wh is None:
            return []
        words = [
            (w, s, e)
            for w, _, s, e in self.tokenizer.tag(analysis.text)
            if fold(w) not in _FUNCTION_WORDS and fold(w) not in QUESTION_WORDS and any(c.isalnum() for c in w)
        ]
        before = [fold(w) for w, s, e in words if e <= analysis.wh.start]
        after = [fold(w) for w, s, e in words if s >= analysis.wh.end]
        return before[-1:] + after[:1]

    # -- span extraction ---------------------------------------------------------------

    def extract_span(self, analysis: Question, text: str, sentence: Span, candidates: list[Candidate]) -> tuple[int, int]:
        """The answer span inside `sentence` (positions in `text`); the sentence if none."""
        if analysis.type is AnswerType.DESCRIPTION:
            return sentence.start, sentence.end
        body = text[sentence.start : sentence.end]
        folded = fold(body)
        question = fold(analysis.text)
        usable = [c for c in candidates if fold(body[c.start : c.end]) not in question]

        slot = _slot(analysis, folded)
        if analysis.type in TYPED_ANSWERS:
            # A figure, date or name: the candidate of that type nearest the slot, or
            # nearest the question's words; never a span of another kind.
            typed = [c for c in usable if c.matches(analysis.type)]
            if not typed:
                return sentence.start, sentence.end
            if slot is not None:
                best = min(typed, key=lambda c: _gap(c, slot))
            else:
                positions = _question_term_positions(question, folded)
                best = min(typed, key=lambda c: _distance(c, positions))
            return sentence.start + best.start, sentence.start + best.end
        if slot is not None:
            quoted = [c for c in usable if c.kind == "quoted" and slot[0] <= c.start and c.end <= slot[1]]
            start, end = (quoted[0].start, quoted[0].end) if len(quoted) == 1 else slot
            return sentence.start + start, sentence.start + end
        return sentence.start, sentence.end


# -- helpers -----------------------------------------------------------------------------


def best_sentence_row(features: np.ndarray, scores: np.ndarray) -> int:
    """The highest-scoring sentence among those sharing something with the question."""
    covered = features[:, SENTENCE_FEATURES.index("coverage")] > 0
    return int(np.argmax(np.where(covered, scores, -np.inf))) if covered.any() else int(np.argmax(scores))


def token_weights(query_tokens: tuple[str, ...] | list[str]) -> dict[str, float]:
    return {t.lstrip("#"): float(len(t.lstrip("#"))) for t in query_tokens}


def _sentence_cosines(passage: PassageInput, sentences: list[Span]) -> list[float]:
    """Each sentence's best clause cosine (clauses lie inside sentences), 0 when unknown."""
    clauses = sentence_spans(passage.text)
    if len(clauses) != len(passage.clause_cosines):
        return [0.0] * len(sentences)
    return [
        max((c for clause, c in zip(clauses, passage.clause_cosines) if s.start <= clause.start < s.end), default=0.0)
        for s in sentences
    ]


def _common_subsequence(a: str, b: str) -> int:
    """Length of the longest common subsequence of `a` and `b` (characters in order)."""
    return int(LCSseq.similarity(a, b))


def _anchors(analysis: Question) -> tuple[str, str]:
    """Up to four characters on each side of the question word, punctuation trimmed."""
    left = analysis.before[-4:].strip("，,、 ")
    right = analysis.after[:4].strip("，,、 ")
    return left, right


def _anchor_match(anchor: str, sentence: str) -> float:
    if not anchor:
        return 0.0
    if anchor in sentence:
        return 1.0
    return 0.5 if len(anchor) >= 2 and (anchor[-2:] in sentence or anchor[:2] in sentence) else 0.0


def _weighted_bigrams(question: str, wh: Span | None) -> dict[str, float]:
    """Question bigrams outside the question word, weighted by nearness to it."""
    weights: dict[str, float] = {}
    for i in range(len(question) - 1):
        gram = question[i : i + 2]
        if not all(c.isalnum() for c in gram):
            continue
        if wh is not None and (wh.start <= i < wh.end or wh.start <= i + 1 < wh.end):
            continue
        distance = min(abs(i - wh.start), abs(i + 1 - wh.end)) if wh is not None else 0
        weights[gram] = max(weights.get(gram, 0.0), 1.0 / (1.0 + distance / 3.0))
    return weights


def _bigram_coverage(bigrams: dict[str, float], sentence: str) -> float:
    total = sum(bigrams.values())
    return sum(w for g, w in bigrams.items() if g in sentence) / total if total else 0.0


def _predicate_match(predicates: list[str], sentence: str) -> float:
    best = 0.0
    for word in predicates:
        if word in sentence:
            return 1.0
        if len(word) > 2 and any(word[i : i + 2] in sentence for i in range(len(word) - 1)):
            best = 0.5
    return best


def _longest_common_substring(a: str, b: str, cap: int = 12) -> int:
    """Length (2 to `cap`) of the longest run of letters and digits of `a` found in `b`, else 0."""
    best = 1
    for run in _ALNUM_RUN.findall(a):
        for i in range(len(run) - best):
            # every piece of a piece of `b` is in `b`: only longer pieces need trying
            while best < cap and i + best < len(run) and run[i : i + best + 1] in b:
                best += 1
    return best if best >= 2 else 0


def _slot(analysis: Question, sentence: str) -> tuple[int, int] | None:
    """Where the question word's slot falls in the sentence, between matched anchors."""
    if analysis.wh is None:
        return None
    left_end = None
    for n in range(min(8, len(analysis.before)), 1, -1):
        piece = analysis.before[-n:]
        position = sentence.find(piece)
        if position >= 0:
            left_end = position + n
            break
    right_start = None
    after = analysis.after
    for n in range(min(8, len(after)), 0, -1):
        if n == 1 and len(after) > 1:
            break  # one character of a longer text anchors nothing
        position = sentence.find(after[:n], left_end or 0)
        if position >= 0:
            right_start = position
            break
    if left_end is not None and right_start is not None:
        start, end = left_end, right_start
    elif left_end is not None:
        start, end = left_end, _clause_end(sentence, left_end)
    elif right_start is not None:
        start, end = _clause_start(sentence, right_start), right_start
    else:
        return None
    while start < end and sentence[start] in _SPAN_TRIM_START:
        start += 1
    while end > start and sentence[end - 1] in _SPAN_TRIM_END:
        end -= 1
    if not 0 < end - start <= _MAX_SPAN_CHARS:
        return None
    return start, end


def _clause_end(sentence: str, start: int) -> int:
    for i in range(start, len(sentence)):
        if sentence[i] in "，,。；;！？!?":
            return i
    return len(sentence)


def _clause_start(sentence: str, end: int) -> int:
    for i in range(end - 1, -1, -1):
        if sentence[i] in "，,。；;！？!?":
            return i + 1
    return 0


def _question_term_positions(question: str, sentence: str) -> list[int]:
    """Positions in the sentence where the question's bigrams occur."""
    positions = []
    for i in range(len(question) - 1):
        gram = question[i : i + 2]
        if all(c.isalnum() for c in gram):
            start = sentence.find(gram)
            while start >= 0:
                positions.append(start)
                start = sentence.find(gram, start + 1)
    return positions


def _distance(candidate: Candidate, positions: list[int]) -> float:
    if not positions:
        return float(candidate.start)
    return min(min(abs(p - candidate.end), abs(candidate.start - p - 2)) for p in positions)


def _local_support(
    analysis: Question, sentence: str, candidates: list[Candidate], weights: dict[str, float], total: float
) -> float:
    """Best share of the question's token weight found around a typed candidate."""
    best = 0.0
    for candidate in candidates:
        if not candidate.matches(analysis.type):
            continue
        window = sentence[max(0, candidate.start - _SUPPORT_WINDOW) : candidate.end + _SUPPORT_WINDOW]
        best = max(best, sum(w for t, w in weights.items() if t in window) / total)
    return best


def _gap(candidate: Candidate, slot: tuple[int, int]) -> int:
    """Characters between a candidate and a slot; 0 when they overlap."""
    return max(slot[0] - candidate.end, candidate.start - slot[1], 0)


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max())
    return shifted / shifted.sum()


def sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value))


def _dense_margin(passages: list[PassageInput]) -> float:
    """How far the top passage's cosine stands above the others read (0 when it is alone).

    A margin rather than the cosine itself: a model's cosines shift with the kind of text
    and question (e5's for the seed's everyday questions sit lower than for CMRC's), and a
    threshold on their level learned on one kind says "no answer" to the other."""
    if len(passages) < 2:
        return 0.0
    return passages[0].dense_score - float(np.mean([p.dense_score for p in passages[1:]]))
