"""Check a statement's figures, dates and names against the sources.

1. The statement's checkable facts are its figures (with units and qualifiers: 超, 约,
   余 …), full dates, and people's names; a bare year is context, not a fact, unless it
   is all there is.
2. For each fact, the passages about the statement are retrieved and every candidate of
   the same kind in them is considered. The source speaks of the same thing only when the
   words that say what the fact is about (“5条… 主题旅游线路”, “主任 …郎聪”) stand near the
   candidate: words said before the fact in its clause or the clause before, words said
   after it in its clause or the clause after. A name the sources give with a
   parenthesised part (“澳康达(天津)名车广场”) counts as its short form (“澳康达”), as a
   source names a thing in full once and briefly after. A figure the statement puts in a
   year (“2025年…产值”) is compared only with sentences naming that year, in figures or
   counted from the article's date (“去年” in an article of 2026). A change (“同比增长10.5%”,
   “增加了5亿元”) is compared only with changes, a level (“总产值1089.55亿元”, “增至70列”)
   only with levels; a source's forecast (“预计年产值83.8亿元”) settles only a claim that is
   a forecast too. A source stating the claimed value there supports the fact; otherwise
   the candidate with the most of the statement's words around it, nearest those words,
   is the evidence. Where the words differ (“核心承载区面积为3.42平方公里” against
   “加快3.42平方公里…核心承载区建设”), a sentence stating the very value and meaning the
   same as the fact's clause (the dense encoder's cosine ≥ `_SAME_MEANING`) supports it;
   a different value in other words contradicts nothing.
3. Values are compared as intervals (see `qa.numbers`; a source's values are read as
   reports, its “突破10亿” meaning 10 to 20 亿): the source supports the fact,
   contradicts it (and says what it states instead), or neither (no source speaks of it,
   or it is consistent without confirming it).
Overall: contradicted if any fact is, supported if all are, otherwise not_found.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .assistant import Assistant
from .candidates import Candidate, extract_candidates
from .chunk import Passage
from .numbers import RELATIVE_YEARS, DateValue, Quantity, compare, parse_date, parse_quantity
from .text import clause_end, clause_start, clean, fold, sentence_spans
from .tokens import QUESTION_WORDS

__all__ = ["MAX_CLAIM_CHARS", "VERDICT_WORDS", "Evidence", "Fact", "Check", "FactChecker"]

MAX_CLAIM_CHARS = 500
_SEARCHED_PASSAGES = 8
# Cosine of a fact's clause with a source sentence above which they say the same thing in
# other words: 0.915 for the paraphrase "核心承载区面积为3.42平方公里", at most 0.893 for
# sentences stating the same value about something else (development claim sets).
_SAME_MEANING = 0.90
_PARENTHESISED = re.compile(r"[(（][^()（）\s]{1,8}[)）]")  # “(天津)” in “澳康达(天津)名车广场”
# A name is a checkable fact when a role stands right before it (“管委会主任郎聪”).
_ROLES = (
    "主任", "书记", "区长", "市长", "县长", "镇长", "局长", "院长", "校长", "所长", "站长", "部长", "厅长", "处长", "主席",
    "总经理", "经理", "董事长", "总裁", "负责人", "会长", "秘书长", "总监", "教授", "专家", "记者", "通讯员", "市民",
)
# Words before a figure in its clause that make it a change, not a level: “同比增长10.5%”,
# “增加了5亿元”; unless “至/到” follows them, which makes it the level reached (“增至70列”).
_CHANGE_WORDS = ("增长", "增加", "增幅", "提高", "提升", "上升", "下降", "减少", "降低", "降幅", "同比", "环比", "比上年", "比去年", "增速")
_CHANGE = re.compile(rf"(?:{'|'.join(_CHANGE_WORDS)})(?![至到])(?:[了约近超达]|超过)*$")
# Not what a fact is about: how it is said, and whether it is a change (the change flag
# compares that, so “比上年增长” meets “同比增长”).
_FUNCTION_WORDS = frozenset((*_CHANGE_WORDS, "上年")) | frozenset(
    "的 了 是 为 在 有 和 与 及 又 也 都 被 把 对 于 以 由 从 到 向 给 将 已 已经 共 共计 累计 达 达到 超 超过 逾 突破 约 近 将近 "
    "不到 不足 最高 最多 仅 多达 高达 至 增至 增长至 其中 一共 总共 全年 今年 去年 只要 需要 只需 仅需 要 用 就 就能 "
    "可 可以 能 约为 为了 所".split()
)
_FORECAST_WORDS = ("预计", "预期", "计划", "目标", "力争", "有望")


@dataclass(frozen=True)
class Evidence:
    passage: Passage
    start: int  # of the source's value in the passage text
    end: int
    value: str

    def to_json(self) -> dict:
        return {
            "passage_id": self.passage.id,
            "article": self.passage.article,
            "headings": list(self.passage.headings),
            "source": self.passage.source,
            "text": self.passage.text,
            "start": self.start,
            "end": self.end,
            "value": self.value,
        }


@dataclass(frozen=True)
class Fact:
    text: str
    kind: str  # quantity | date | person
    value: dict | str
    verdict: str  # supported | contradicted | not_found
    evidence: Evidence | None
    note: str | None = None

    def to_json(self) -> dict:
        data = {
            "text": self.text,
            "kind": self.kind,
            "value": self.value,
            "verdict": self.verdict,
            "evidence": self.evidence.to_json() if self.evidence else None,
        }
        if self.note:
            data["note"] = self.note
        return data


@dataclass(frozen=True)
class Check:
    claim: str
    verdict: str
    facts: tuple[Fact, ...]
    message: str | None = field(default=None)

    @property
    def summary(self) -> str:
        """What holds, in words: the overall verdict, and how many facts are in each state
        when they differ ("部分有来源支持：2项有来源，1项未找到")."""
        counts = Counter(f.verdict for f in self.facts)
        parts = [f"{counts[v]}项{_COUNTED[v]}" for v in ("contradicted", "supported", "not_found") if counts[v]]
        if not self.facts:
            return VERDICT_WORDS["not_found"]
        if len(parts) == 1:
            return f"{VERDICT_WORDS[self.verdict]}：{'共' if counts[self.verdict] > 1 else ''}{parts[0]}"
        head = VERDICT_WORDS["contradicted"] if counts["contradicted"] else _PARTLY
        return f"{head}：{'，'.join(parts)}"

    def to_json(self) -> dict:
        data = {"claim": self.claim, "verdict": self.verdict, "summary": self.summary, "facts": [f.to_json() for f in self.facts]}
        if self.message:
            data["message"] = self.message
        return data


VERDICT_WORDS = {"supported": "有来源支持", "contradicted": "与来源矛盾", "not_found": "未找到来源"}
_PARTLY = "部分有来源支持"
_COUNTED = {"supported": "有来源", "contradicted": "与来源矛盾", "not_found": "未找到"}


@dataclass(frozen=True)
class _ClaimFact:
    candidate: Candidate
    text: str
    value: Quantity | DateValue | str
    before: tuple[str, ...] = ()  # what the fact is about, said before it in the claim
    after: tuple[str, ...] = ()  # … or after it
    years: tuple[int, ...] = ()  # the years the claim puts it in (“2025年…产值”): a source must name one
    change: bool = False  # a change (“增长10.5%”), not a level (see `_is_change`)
    forecast: bool = False  # “预计…”: what is expected, not what is


class FactChecker:
    def __init__(self, assistant: Assistant, *, today: datetime.date | None = None) -> None:
        self._assistant = assistant
        self._tokenizer = assistant.tokenizer
        self._this_year = (today or datetime.date.today()).year  # what a claim's “去年” counts from

    def check(self, claim: str) -> Check:
        claim = " ".join(clean(claim).split())[:MAX_CLAIM_CHARS]
        facts = self._facts(claim)
        if not facts:
            return Check(claim, "not_found", (), "没有找到可核查的数字、日期或人名。")
        retriever = self._assistant.retriever
        # the claim, to search with, and each fact's clause, to match by meaning
        vectors = retriever.embed_questions([claim, *(_clause(claim, f.candidate) for f in facts)])
        scored = retriever.search(claim, k=_SEARCHED_PASSAGES, question_vector=vectors[0])
        passages = retriever.passages(scored)
        # what each fact is about, once the sources say which names have short forms
        names = self._names([p.text for p in passages])
        anchored = []
        for fact in facts:
            before, after = self._anchors(claim, fact.candidate, names)
            anchored.append(dataclasses.replace(fact, before=before, after=after))
        context = [t.lstrip("#") for t in self._tokenizer.query_tokens(claim)]
        checked = tuple(
            self._check_fact(fact, context, passages, [retriever.sentence_scores(vector, r.index) for r in scored])
            for fact, vector in zip(anchored, vectors[1:])
        )
        verdicts = {f.verdict for f in checked}
        verdict = "contradicted" if "contradicted" in verdicts else "supported" if verdicts == {"supported"} else "not_found"
        return Check(claim, verdict, checked)

    # -- the statement's facts ----------------------------------------------------------

    def _facts(self, claim: str) -> list[_ClaimFact]:
        """The claim's checkable facts, their anchors still to find (`_anchors`)."""
        facts: list[_ClaimFact] = []
        years: list[_ClaimFact] = []
        for candidate in extract_candidates(claim, self._tokenizer):
            text = claim[candidate.start : candidate.end]
            if candidate.kind == "quantity":
                value = parse_quantity(text, before=claim[max(0, candidate.start - 4) : candidate.start])
            elif candidate.kind == "date":
                value = parse_date(text, year=self._this_year if text in RELATIVE_YEARS else None)
            elif candidate.kind == "person" and claim[: candidate.start].endswith(_ROLES):
                value = text
            else:
                continue
            if value is None:
                continue
            clause = claim[clause_start(claim, candidate.start) : candidate.start]
            fact = _ClaimFact(candidate, text, value, change=_is_change(clause), forecast=_is_forecast(clause))
            if isinstance(value, DateValue) and value.month is None:
                years.append(fact)  # a bare year is context unless nothing else is checkable
            else:
                facts.append(fact)
        if not facts:
            return years
        # a bare year is the period the claim's figures belong to
        period = tuple(sorted({y.value.year for y in years}))
        return [dataclasses.replace(f, years=period) for f in facts] if period else facts

    def _anchors(
        self, claim: str, candidate: Candidate, names: dict[str, str]
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """What the fact is about, as words the source must have near its value.

        The noun a figure counts when one follows it in its clause (“5条主题旅游线路”),
        else the two content words before it (“地区生产总值增长8%”); for a name, its role.
        Words of four or more characters become their search-mode pieces, so that “联合推出”
        is met by “联合北京通州、河北廊坊推出”. A name the sources also give in a short form
        (`names`: “澳康达名车广场” → “澳康达”) counts as one word, its short form, since a
        source names it in full once and briefly after.
        """
        spans = _name_spans(claim, names)
        words = [
            (fold(w), s, e)
            for w, _, s, e in self._tokenizer.tag(claim)
            if any(c.isalnum() for c in w) and fold(w) not in _FUNCTION_WORDS and fold(w) not in QUESTION_WORDS
            and not any(a <= s and e <= b for a, b, _ in spans)
        ]
        words = sorted(words + [(fold(short), a, b) for a, b, short in spans if not (a < candidate.end and candidate.start < b)], key=lambda w: w[1])
        before = [w for w, s, e in words if e <= candidate.start and not _overlaps(s, e, candidate)]
        after = [w for w, s, e in words if s >= candidate.end and not _overlaps(s, e, candidate)]
        clause_length = clause_end(claim, candidate.end) - candidate.end
        after = [w for w in after if claim.find(w, candidate.end) - candidate.end < clause_length]
        if candidate.kind == "person":
            return self._pieces(before[-1:]), ()
        if after:
            return (), self._pieces(after[:1])
        return self._pieces(before[-2:]), ()

    def _names(self, texts: list[str]) -> dict[str, str]:
        """Names the sources give with a parenthesised part, in their forms as a statement
        may write them, each with its short form: “澳康达(天津)名车广场” gives
        “澳康达名车广场” and “澳康达(天津)名车广场” → “澳康达”. The short form is the word
        before the parenthesis (two characters or more); the name goes on with the nouns
        after it."""
        names: dict[str, str] = {}
        for text in texts:
            for match in _PARENTHESISED.finditer(text):
                before = [w for w, _, _, _ in self._tokenizer.tag(text[max(0, match.start() - 12) : match.start()])]
                if not before or len(before[-1]) < 2 or not any(c.isalnum() for c in before[-1]):
                    continue
                short = before[-1]
                rest = ""
                for word, flag, _, _ in self._tokenizer.tag(text[match.end() : match.end() + 12]):
                    if not flag.startswith("n") or not word.strip():
                        break
                    rest += word
                if rest:
                    for form in (short + rest, short + match.group(0) + rest):
                        names[form] = short
        return names

    def _pieces(self, words: list[str]) -> tuple[str, ...]:
        anchors: list[str] = []
        for word in words:
            if len(word) >= 4:  # 联合推出 → 联合, 推出; shorter words stay whole (产业链, not 产业)
                anchors.extend(p for p in self._tokenizer.words(word) if len(p) >= 2 and p != word)
            elif len(word) >= 2:
                anchors.append(word)
        return tuple(dict.fromkeys(anchors))

    # -- the sources --------------------------------------------------------------------

    def _check_fact(
        self, fact: _ClaimFact, context: list[str], passages: list[Passage], clause_cosines: list[np.ndarray]
    ) -> Fact:
        """`clause_cosines`: per passage, the cosine of the fact's clause with each of the
        passage's clauses as indexed (`sentence_spans`)."""
        kind = "quantity" if isinstance(fact.value, Quantity) else "date" if isinstance(fact.value, DateValue) else "person"
        value = fact.value.to_json() if hasattr(fact.value, "to_json") else fact.value
        fact_words = {t for t in context if t in fold(fact.text)}
        # (prefers support, support, -distance to the anchors): a source that states the
        # claimed value where the anchors are supports it, whatever else is nearby; a
        # contradiction names the value standing nearest the anchors.
        best: tuple[tuple, str | None, Evidence] | None = None
        meant: tuple[float, Evidence] | None = None  # the value stated where the words differ, best meaning first
        for passage, cosines in zip(passages, clause_cosines):
            year = _article_year(self._assistant, passage)
            clauses = sentence_spans(passage.text)
            for sentence in sentence_spans(passage.text, clauses=False):
                body = passage.text[sentence.start : sentence.end]
                if fact.years and not any(_names_year(body, named, year) for named in fact.years):
                    continue  # a figure of another period, or of none said, settles nothing
                folded = fold(body)
                for candidate in extract_candidates(body, self._tokenizer):
                    if candidate.kind != fact.candidate.kind:
                        continue
                    previous_start, own_start, own_end, next_end = _clauses(folded, candidate)
                    window_start, window = previous_start, folded[previous_start:next_end]
                    if kind == "quantity":
                        clause = body[own_start : candidate.start]
                        if _is_change(clause) != fact.change or (_is_forecast(clause) and not fact.forecast):
                            continue  # a change against a level, or an expectation against a fact
                    source_text = body[candidate.start : candidate.end]
                    source_value = self._value(kind, source_text, body[max(0, candidate.start - 4) : candidate.start], year)
                    outcome = _compare(fact.value, source_value)
                    if outcome is None:
                        continue
                    evidence = Evidence(passage, sentence.start + candidate.start, sentence.start + candidate.end, source_text)
                    if not all(a in folded[previous_start:own_end] for a in fact.before) or not all(
                        a in folded[own_start:next_end] for a in fact.after
                    ):
                        # the words differ: the very value in a sentence that means the same
                        # supports the fact; anything else there settles nothing
                        if _same_value(fact.value, source_value):
                            meaning = max(
                                (float(c) for span, c in zip(clauses, cosines) if sentence.start <= span.start < sentence.end),
                                default=0.0,
                            )
                            if meant is None or meaning > meant[0]:
                                meant = (meaning, evidence)
                        continue
                    support = sum(len(t) for t in context if t in window and t not in fact_words)
                    distance = sum(
                        _distance(window, anchor, candidate.start - window_start) for anchor in fact.before + fact.after
                    )
                    rank = (outcome == "supported", support, -distance)
                    if best is None or rank > best[0]:
                        best = (rank, outcome, evidence)
        if (best is None or best[1] != "supported") and meant is not None and meant[0] >= _SAME_MEANING:
            return Fact(fact.text, kind, value, "supported", meant[1], "来源用词不同，按意思判断")
        if best is None:
            return Fact(fact.text, kind, value, "not_found", None)
        _, outcome, evidence = best
        if outcome == "unconfirmed":
            return Fact(fact.text, kind, value, "not_found", evidence, "来源所述与陈述不矛盾，但不能证实")
        return Fact(fact.text, kind, value, outcome, evidence)

    @staticmethod
    def _value(kind: str, text: str, before: str, year: int | None):
        if kind == "quantity":
            return parse_quantity(text, before=before, reported=True)
        if kind == "date":
            return parse_date(text, year=year)
        return text


def _compare(claim, source) -> str | None:
    if isinstance(claim, str) or isinstance(source, str):
        if not isinstance(claim, str) or not isinstance(source, str):
            return None
        return "supported" if fold(claim) == fold(source) else "contradicted"
    if source is None:
        return None
    return compare(claim, source)


def _same_value(claim, source) -> bool:
    """Whether the source states exactly what the claim does, not merely something it allows."""
    if isinstance(claim, str) or isinstance(source, str):
        return isinstance(claim, str) and isinstance(source, str) and fold(claim) == fold(source)
    return type(claim) is type(source) and dataclasses.replace(source, text=claim.text) == claim


def _clauses(text: str, candidate: Candidate) -> tuple[int, int, int, int]:
    """Start of the clause before the candidate's, start and end of its own, end of the next."""
    own_start, own_end = clause_start(text, candidate.start), clause_end(text, candidate.end)
    previous_start = clause_start(text, own_start - 1) if own_start > 0 else 0
    next_end = clause_end(text, own_end + 1) if own_end < len(text) else own_end
    return previous_start, own_start, own_end, next_end


def _distance(window: str, anchor: str, position: int) -> int:
    """Characters between the candidate and the nearest occurrence of `anchor` in the window."""
    spots = [i for i in range(len(window)) if window.startswith(anchor, i)]
    return min((abs(i - position) for i in spots), default=len(window))


def _name_spans(claim: str, names: dict[str, str]) -> list[tuple[int, int, str]]:
    """(start, end, short form) of each known name in the claim, longest forms first, not overlapping."""
    spans: list[tuple[int, int, str]] = []
    for form in sorted(names, key=len, reverse=True):
        start = claim.find(form)
        while start >= 0:
            end = start + len(form)
            if not any(a < end and start < b for a, b, _ in spans):
                spans.append((start, end, names[form]))
            start = claim.find(form, end)
    return spans


def _clause(text: str, candidate: Candidate) -> str:
    """The clause of `text` that holds the candidate."""
    return text[clause_start(text, candidate.start) : clause_end(text, candidate.end)]


def _is_change(clause_before: str) -> bool:
    return bool(_CHANGE.search(clause_before))


def _is_forecast(clause_before: str) -> bool:
    return any(word in clause_before for word in _FORECAST_WORDS)


def _names_year(sentence: str, year: int, article_year: int | None) -> bool:
    """Whether the sentence names `year`, in figures or counted from its article's year."""
    if str(year) in sentence:
        return True
    return article_year is not None and any(
        word in sentence and article_year + offset == year for word, offset in RELATIVE_YEARS.items()
    )


def _overlaps(start: int, end: int, candidate: Candidate) -> bool:
    return start < candidate.end and candidate.start < end


def _article_year(assistant: Assistant, passage: Passage) -> int | None:
    record = assistant.article(passage.source)
    date = record.date if record else None
    return int(date[:4]) if date and date[:4].isdigit() else None
