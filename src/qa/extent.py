"""How much of its sentence an answer marks.

The span model and the rules say where the answer is; how much to mark depends on what
the question asks:

- a figure, date or name: the typed span (22分钟, 郎聪), never more;
- why, how and yes/no questions, and 哪些 lists: the sentence. A reason, a manner or a list
  is a clause or several, and the span model, trained on DRCD's short answers (median 4
  characters), marks a piece of it (“挪威海螯虾价格比一般的欧洲龙虾廉宜” for the reason
  “由于挪威海螯虾价格比一般的欧洲龙虾廉宜，所以……都会烹煮挪威海螯虾”). A sentence over
  `MAX_SENTENCE_CHARS` is no answer line: then the clause holding the span;
- other 什么/哪个 questions: the comma-separated clause holding the span, unless the span is
  the slot the question leaves open: the question's words before its question word end
  right before it, or those after it begin right after it (“以什么为核心” ↔
  “以国际级别赛道为核心”), or the span ends with them (“建设什么实验室” ↔
  “建设合成生物技术全国重点实验室”).

On the CMRC 2018 trial set, whose answers are long (median 19 characters; DRCD's 4), the
same picks score F1 0.542 → 0.591 and EM 0.200 → 0.272 with the extent; why/how/yes-no
0.510 → 0.637, 哪些 lists 0.296 → 0.480, other questions 0.519 → 0.573, figures, dates and
names unchanged (`scripts/reader_variants.py --groups`, docs/reader.md “Answer extent”).
"""

from __future__ import annotations

from .question import AnswerType, Question
from .reader import TYPED_ANSWERS
from .text import CLOSING_MARKS, OPENING_MARKS, Span, clause_end, clause_start, fold

__all__ = ["LIST_WORDS", "MAX_SENTENCE_CHARS", "answer_extent", "clause_of", "fills_slot"]

MAX_SENTENCE_CHARS = 80  # longer is a paragraph to read, not an answer line
LIST_WORDS = ("哪些",)  # a 什么-kind question that asks for a list
_ANCHOR_CHARS = 2  # question text on either side of the question word that must frame the span


def answer_extent(asks: Question, text: str, sentence: Span, start: int, end: int) -> Span:
    """The part of `text` to mark for a span [start, end) found inside `sentence`."""
    if asks.type in TYPED_ANSWERS:
        return Span(start, end)
    if asks.type is AnswerType.DESCRIPTION or asks.word in LIST_WORDS:
        return sentence if sentence.end - sentence.start <= MAX_SENTENCE_CHARS else clause_of(text, sentence, start, end)
    if fills_slot(asks, fold(text[sentence.start : sentence.end]), start - sentence.start, end - sentence.start):
        return Span(start, end)
    return clause_of(text, sentence, start, end)


def clause_of(text: str, sentence: Span, start: int, end: int) -> Span:
    """The comma-separated clause of `text` holding [start, end), kept inside `sentence`."""
    return Span(max(sentence.start, clause_start(text, start)), min(sentence.end, clause_end(text, end)))


def fills_slot(asks: Question, sentence: str, start: int, end: int) -> bool:
    """Whether the question's words around its question word frame the span in the
    (folded) sentence, or end it."""
    before, after = asks.before[-_ANCHOR_CHARS:], asks.after[:_ANCHOR_CHARS]
    left = bool(before) and sentence[:start].rstrip(OPENING_MARKS).endswith(before)
    right = bool(after) and sentence[end:].lstrip(CLOSING_MARKS).startswith(after)
    head = bool(after) and after in sentence[start:end][-len(asks.after) - _ANCHOR_CHARS :]
    return left or right or head
