import re

from qa.answer import Answer, Highlight
from qa.assistant import Hit, Response
from qa.chunk import Passage
from qa.render import NO_ANSWER_NOTICE, render_passage, render_response
from qa.text import Span


def hit(text, answer=None, highlights=(), article="标题", headings=("小节",)):
    passage = Passage("id", "a.md", article, headings, text, 0, len(text))
    return Hit(1, 0.9, passage, answer, tuple(highlights))


def test_answer_and_terms_are_marked_at_their_offsets():
    text = "清晨的武清站。坐上城际22分钟就能到北京南站。"
    answer = Answer("坐上城际22分钟就能到北京南站。", 7, 23, 0.8, Span(7, 23))
    html = render_passage(hit(text, answer, [Highlight(3, 5), Highlight(18, 22)]))
    assert html == (
        '清晨的<mark class="term">武清</mark>站。'
        '<mark class="answer">坐上城际22分钟就能到<mark class="term">北京南站</mark>。</mark>'
    )


def test_article_text_is_escaped_before_marks_are_inserted():
    text = "<script>alert(1)</script><img src=x onerror=alert(2)>武清站"
    html = render_passage(hit(text, None, [Highlight(text.index("武清"), text.index("武清") + 2)]))
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<mark class="term">武清</mark>' in html


def test_headings_and_sources_are_escaped_too():
    html = render_response(Response("q", (hit("正文。", article="<b>标题</b>", headings=("<i>节</i>",)),), False))
    assert "<b>" not in html and "&lt;b&gt;标题&lt;/b&gt;" in html and "&lt;i&gt;节&lt;/i&gt;" in html


def test_no_answer_shows_the_notice_above_related_passages():
    html = render_response(Response("q", (hit("相关内容。"),), True))
    assert html.index(NO_ANSWER_NOTICE) < html.index("相关内容")


def test_confidence_is_shown_in_words_and_numbers():
    answer = Answer("内容。", 0, 3, 0.85, Span(0, 3))
    html = render_response(Response("q", (hit("内容。", answer),), False))
    assert "把握较高" in html and "85%" in html


def test_marks_are_balanced():
    text = "甲乙丙丁。戊己庚辛。"
    answer = Answer("戊己庚辛。", 5, 10, 0.5, Span(5, 10))
    html = render_passage(hit(text, answer, [Highlight(3, 7)]))
    assert len(re.findall("<mark", html)) == len(re.findall("</mark>", html))


def test_unlikely_answers_are_not_marked():
    answer = Answer("内容。", 0, 3, 0.01, Span(0, 3))
    html = render_response(Response("q", (hit("内容。", answer),), False))
    assert "mark class=\"answer\"" not in html and "相关段落" in html


def test_the_answer_comes_first_in_a_line_naming_its_source():
    text = "清晨的武清站。坐上城际22分钟就能到北京南站。"
    answer = Answer("22分钟", 11, 15, 0.8, Span(7, 23))
    first = hit("别的段落。", None, article="另一篇")
    second = Hit(2, 0.5, Passage("id2", "a.md", "武清", ("交通",), text, 0, len(text)), answer, ())
    html = render_response(Response("q", (first, second), False))
    line = re.search(r'<p class="qa-answer-line"[^>]*>(.*?)</p>', html).group(1)
    assert "答案：<strong>22分钟</strong>" in line and "把握较高" in line and "武清 › 交通" in line and "第2条" in line
    assert html.index("qa-answer-line") < html.index("别的段落")  # above the cards
    assert '<mark class="answer">22分钟</mark>' in html  # and the same span marked in its card
    assert NO_ANSWER_NOTICE not in html


def test_no_answer_line_when_there_is_no_answer():
    answer = Answer("内容", 0, 2, 0.9, Span(0, 3))
    html = render_response(Response("q", (hit("内容。", answer),), True))
    assert "qa-answer-line" not in html and NO_ANSWER_NOTICE in html
