"""How much of its sentence an answer marks: the typed span, the slot the question leaves
open, its clause, or the sentence."""

import pytest

from qa.extent import MAX_SENTENCE_CHARS, answer_extent
from qa.question import analyse_question
from qa.text import Span

TEXT = "由于票价比过去便宜，所以每逢节日，市民都会坐城际列车去北京，单程只要22分钟。园区以国际级别赛道为核心，获批建设合成生物技术全国重点实验室。"
SENTENCE = Span(0, TEXT.index("。") + 1)
SECOND = Span(SENTENCE.end, len(TEXT))


def marked(question, span_text, sentence):
    start = TEXT.index(span_text)
    extent = answer_extent(analyse_question(question), TEXT, sentence, start, start + len(span_text))
    return TEXT[extent.start : extent.end]


def test_a_figure_date_or_name_question_keeps_the_typed_span():
    assert marked("坐城际列车去北京要多久？", "22分钟", SENTENCE) == "22分钟"


@pytest.mark.parametrize("question", ["市民为什么坐城际列车去北京？", "市民怎么去北京？", "市民会坐城际列车去北京吗？", "节日里市民有哪些出行方式？"])
def test_why_how_yes_no_and_list_questions_mark_the_sentence(question):
    assert marked(question, "票价比过去便宜", SENTENCE) == TEXT[SENTENCE.start : SENTENCE.end]


def test_a_sentence_too_long_for_an_answer_line_gives_way_to_the_clause():
    long_text = "由于票价比过去便宜，" + "市民" * MAX_SENTENCE_CHARS + "。"
    start = long_text.index("票价")
    extent = answer_extent(analyse_question("市民为什么坐城际列车？"), long_text, Span(0, len(long_text)), start, start + 7)
    assert long_text[extent.start : extent.end] == "由于票价比过去便宜"


@pytest.mark.parametrize(
    "question, span_text",
    [
        ("园区以什么为核心？", "国际级别赛道"),  # framed on both sides by the question's words
        ("园区获批建设什么实验室？", "合成生物技术全国重点实验室"),  # the span ends with the question's head noun
    ],
)
def test_the_slot_a_what_question_leaves_open_stays_as_it_is(question, span_text):
    assert marked(question, span_text, SECOND) == span_text


def test_an_unframed_what_answer_marks_its_clause():
    # nothing of "园区的特色是什么" stands around the span: the clause holding it is the answer
    assert marked("园区的特色是什么？", "国际级别赛道", SECOND) == "园区以国际级别赛道为核心"


def test_the_extent_never_leaves_the_sentence():
    extent = answer_extent(analyse_question("市民的出行方式有什么？"), TEXT, Span(10, 30), 17, 22)
    assert 10 <= extent.start <= 17 and 22 <= extent.end <= 30
