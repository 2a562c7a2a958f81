"""HTML for answers: passages as cards with the answer and question terms marked.

Text is escaped piece by piece and marks are inserted only at offsets computed by the
reader, so nothing in an article or a question can become markup.
"""

from __future__ import annotations

from html import escape

from .answer import confidence_words
from .assistant import Hit, Response
from .factcheck import VERDICT_WORDS, Check, Fact

__all__ = ["render_response", "render_passage", "render_check"]

NO_ANSWER_NOTICE = "资料中没有找到这个问题的答案。"
# Below this, a passage's answer is too unlikely to mark; the card is shown as related reading.
MIN_MARKED_CONFIDENCE = 0.05


def render_response(response: Response) -> str:
    parts: list[str] = []
    if response.message:
        parts.append(f'<p class="qa-message">{escape(response.message)}</p>')
    answer_hit = response.answer_hit
    if answer_hit and answer_hit.answer.confidence >= MIN_MARKED_CONFIDENCE:
        parts.append(_render_answer_line(answer_hit))
    elif response.hits or response.no_answer:
        related = "以下是最接近的段落，供参考。" if response.hits else ""
        parts.append(f'<p class="qa-notice">{NO_ANSWER_NOTICE}{related}</p>')
    parts.extend(_render_hit(hit) for hit in response.hits)
    return "\n".join(parts) or f'<p class="qa-notice">{NO_ANSWER_NOTICE}</p>'


def _render_answer_line(hit: Hit) -> str:
    """“答案：22分钟（把握较高）· 来源：文章 › 小标题”, pointing at the card that holds it."""
    place = " › ".join(escape(part) for part in (hit.passage.article, *hit.passage.headings))
    return (
        f'<p class="qa-answer-line" data-rank="{hit.rank}">答案：<strong>{escape(hit.answer.text)}</strong>'
        f'<span class="qa-confidence">（{confidence_words(hit.answer.confidence)}）</span>'
        f' · 来源：<span class="qa-place">{place}</span>（第{hit.rank}条）</p>'
    )


def _render_hit(hit: Hit) -> str:
    place = " › ".join(escape(part) for part in (hit.passage.article, *hit.passage.headings))
    if hit.answer and hit.answer.confidence < MIN_MARKED_CONFIDENCE:
        hit = Hit(hit.rank, hit.score, hit.passage, None, hit.highlights)
    if hit.answer:
        confidence = (
            f'<span class="qa-confidence">{confidence_words(hit.answer.confidence)}'
            f"（{hit.answer.confidence:.0%}）</span>"
        )
    else:
        confidence = '<span class="qa-confidence">相关段落</span>'
    return (
        f'<article class="qa-hit" data-rank="{hit.rank}">'
        f'<header><span class="qa-rank">{hit.rank}</span><span class="qa-place">{place}</span>{confidence}</header>'
        f'<p class="qa-passage">{render_passage(hit)}</p>'
        f'<footer class="qa-source">来源：{escape(hit.passage.source)} · 相关度 {hit.score:.2f}</footer>'
        f"</article>"
    )


def render_passage(hit: Hit) -> str:
    """The passage text, escaped, with `<mark class="answer">` and `<mark class="term">` inserted."""
    text = hit.passage.text
    answer = (hit.answer.start, hit.answer.end) if hit.answer else (0, 0)
    terms = [(h.start, h.end) for h in hit.highlights]
    cuts = sorted({0, len(text), *answer, *(p for span in terms for p in span)})
    out: list[str] = []
    in_answer = False
    for start, end in zip(cuts, cuts[1:]):
        inside = answer[0] <= start and end <= answer[1] and answer[0] < answer[1]
        if inside != in_answer:
            out.append('<mark class="answer">' if inside else "</mark>")
            in_answer = inside
        piece = escape(text[start:end]).replace("\n", "<br>")
        if any(s <= start and end <= e for s, e in terms):
            piece = f'<mark class="term">{piece}</mark>'
        out.append(piece)
    if in_answer:
        out.append("</mark>")
    return "".join(out)




def render_check(check: Check) -> str:
    """What holds overall, then each fact with its verdict and the source span marked."""
    parts = [
        f'<div class="qa-check qa-{check.verdict}"><strong class="qa-summary">{escape(check.summary)}</strong>'
        f'<p class="qa-claim">{escape(check.claim)}</p></div>'
    ]
    if check.message:
        parts.append(f'<p class="qa-notice">{escape(check.message)}</p>')
    parts.extend(_render_fact(fact) for fact in check.facts)
    return "\n".join(parts)


def _render_fact(fact: Fact) -> str:
    head = f'<span class="qa-fact-value">{escape(fact.text)}</span> · {VERDICT_WORDS[fact.verdict]}'
    if fact.evidence and fact.verdict == "contradicted":
        head += f'：来源写作 <strong>{escape(fact.evidence.value)}</strong>'
    body = ""
    if fact.evidence:
        e = fact.evidence
        text = e.passage.text
        marked = (
            escape(text[: e.start]) + f'<mark class="evidence">{escape(text[e.start : e.end])}</mark>' + escape(text[e.end :])
        ).replace("\n", "<br>")
        place = " › ".join(escape(part) for part in (e.passage.article, *e.passage.headings))
        body = f'<p class="qa-passage">{marked}</p><footer class="qa-source">{place} · {escape(e.passage.source)}</footer>'
    note = f'<p class="qa-source">{escape(fact.note)}</p>' if fact.note else ""
    return f'<article class="qa-hit qa-fact qa-{fact.verdict}"><header>{head}</header>{body}{note}</article>'
