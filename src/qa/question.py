"""What a question asks for: its answer type and where its question word sits.

The question word's position matters as much as its type: Chinese questions usually keep
the word order of the sentence that answers them, with the answer replaced by the
question word ("V1汽车世界以什么为核心？" ← "V1汽车世界以国际级别赛道为核心"), so the text on
either side of it anchors the answer in the source sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from .text import Span, fold

if TYPE_CHECKING:
    import numpy as np

    from .tokens import Tokenizer

__all__ = ["AnswerType", "Query", "Question", "analyse_question"]


class AnswerType(str, Enum):
    QUANTITY = "quantity"
    DATE = "date"
    PERSON = "person"
    PLACE = "place"
    ORGANIZATION = "organization"
    THING = "thing"
    DESCRIPTION = "description"  # how, why, yes/no: the answer is the sentence


# Question words by answer type. Longer words are tried before the words they contain
# (哪一年 before 哪, 什么时候 before 什么), whatever their type.
_WORDS: dict[AnswerType, tuple[str, ...]] = {
    AnswerType.DATE: (
        "什么时候", "什么时间", "什么年代", "哪一年", "哪年", "哪一天", "哪天", "哪个月", "哪一月", "几月", "几号", "几日",
        "何时", "何年", "几时", "哪个朝代", "哪个时期", "哪个年代", "几点", "哪个世纪",
    ),
    AnswerType.QUANTITY: (
        "多少", "几个", "几位", "几家", "几条", "几项", "几次", "几年", "几岁", "几天", "几倍", "几种", "几名", "几列",
        "几场", "几所", "几座", "多大", "多长", "多久", "多远", "多高", "多重", "多深", "多宽", "多快", "多少钱",
        "几成", "几",
    ),
    AnswerType.PERSON: ("是谁", "谁", "哪位", "哪一位", "什么人", "何人", "哪些人"),
    AnswerType.PLACE: (
        "在哪里", "在哪儿", "哪里", "哪儿", "在哪", "何处", "哪些地方", "哪些国家", "哪些地区", "什么地点", "何地", "什么地方", "哪个地方", "哪个国家", "哪个城市", "哪座城市", "哪个省",
        "哪个地区", "哪个区", "哪个县",
    ),
    AnswerType.ORGANIZATION: (
        "哪家", "哪个公司", "哪家公司", "哪个机构", "哪所", "哪个组织", "哪个部门", "哪个单位", "哪个园区", "哪支",
        "哪个大学", "哪所大学", "什么公司", "什么机构", "什么组织",
    ),
    AnswerType.DESCRIPTION: (
        "为什么", "为何", "怎么样", "怎么", "怎样", "如何", "是否", "是不是", "有没有", "能不能", "会不会", "可不可以", "吗",
    ),
    AnswerType.THING: ("什么样", "什么", "哪些", "哪个", "哪一个", "哪种", "何种", "啥", "何", "哪"),
}
_BY_LENGTH = sorted(((w, t) for t, words in _WORDS.items() for w in words), key=lambda item: -len(item[0]))
# Ordinary words that contain a question word.
_NOT_QUESTIONS = ("几乎", "任何", "何况", "如何是好", "为何物", "无论如何", "多么", "哪怕")


@dataclass(frozen=True)
class Question:
    text: str
    type: AnswerType
    wh: Span | None  # position of the question word in `text`, None when there is none

    @property
    def word(self) -> str:
        """The question word, folded ("" when there is none)."""
        return fold(self.text)[self.wh.start : self.wh.end] if self.wh else ""

    @property
    def before(self) -> str:
        """Folded text before the question word (the left anchor)."""
        return fold(self.text[: self.wh.start]) if self.wh else fold(self.text)

    @property
    def after(self) -> str:
        """Folded text after the question word, without the closing question mark."""
        if not self.wh:
            return ""
        return fold(self.text[self.wh.end :]).rstrip("？?。!！ ")


def analyse_question(text: str) -> Question:
    """Type a question by its first question word (longest match at each position)."""
    folded = fold(text)
    skip_until = 0
    for start in range(len(folded)):
        ordinary = next((w for w in _NOT_QUESTIONS if folded.startswith(w, start)), None)
        if ordinary:
            skip_until = start + len(ordinary)
        if start < skip_until:
            continue
        for word, answer_type in _BY_LENGTH:
            if folded.startswith(word, start):
                if word == "吗" and start + 1 < len(folded.rstrip("？?。!！ ")):
                    continue  # 吗 asks yes/no only at the end
                return Question(text, answer_type, Span(start, start + len(word)))
    # "…的主办方是？": the question word is left out at the end.
    stripped = folded.rstrip("？?。!！ ")
    if stripped.endswith(("是", "为", "在", "叫")):
        return Question(text, AnswerType.THING, Span(len(stripped), len(stripped)))
    return Question(text, AnswerType.DESCRIPTION, None)


@dataclass(frozen=True)
class Query:
    """A question analysed once and passed to retrieval and the reader alike."""

    text: str
    folded: str
    tokens: tuple[str, ...]  # BM25's query tokens; the reader weighs coverage by them too
    terms: tuple[str, ...]  # words to highlight in the passages
    asks: Question  # answer type and question word
    vector: np.ndarray | None = field(default=None, compare=False)  # the embedding, once made

    @classmethod
    def parse(cls, text: str, tokenizer: Tokenizer) -> Query:
        return cls(
            text=text,
            folded=fold(text),
            tokens=tuple(tokenizer.query_tokens(text)),
            terms=tuple(tokenizer.query_terms(text)),
            asks=analyse_question(text),
        )
