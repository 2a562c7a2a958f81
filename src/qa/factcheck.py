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
   year (“2025年…产值”) is compared only with sentences naming that year. A source stating the claimed value
   there supports the fact; otherwise the candidate with the most of the statement's words
   around it, nearest those words, is the evidence.
3. Values are compared as intervals (see `qa.numbers`; a source's values are read as
   reports, its “突破10亿” meaning 10 to 20 亿): the source supports the fact,
   contradicts it (and says what it states instead), or neither (no source speaks of it,
   or it is consistent without confirming it).
Overall: contradicted if any fact is, supported if all are, otherwise not_found.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass, field

from .assistant import Assistant
from .candidates import Candidate, extract_candidates
from .chunk import Passage
from .numbers import DateValue, Quantity, compare, parse_date, parse_quantity
from .text import clean, fold, sentence_spans
from .tokens import QUESTION_WORDS

__all__ = ["MAX_CLAIM_CHARS", "VERDICT_WORDS", "Evidence", "Fact", "Check", "FactChecker"]

MAX_CLAIM_CHARS = 500
_CLAUSE_BREAKS = "，,；;。！？!?：:\n"
_SEARCHED_PASSAGES = 8
_PARENTHESISED = re.compile(r"[(（][^()（）\s]{1,8}[)）]")  # “(天津)” in “澳康达(天津)名车广场”
# A name is a checkable fact when a role stands right before it (“管委会主任郎聪”).
_ROLES = (
    "主任", "书记", "区长", "市长", "县长", "镇长", "局长", "院长", "校长", "所长", "站长", "部长", "厅长", "处长", "主席",
    "总经理", "经理", "董事长", "总裁", "负责人", "会长", "秘书长", "总监", "教授", "专家", "记者", "通讯员", "市民",
)
_FUNCTION_WORDS = frozenset(
    "的 了 是 为 在 有 和 与 及 又 也 都 被 把 对 于 以 由 从 到 向 给 将 已 已经 共 共计 累计 达 达到 超 超过 逾 突破 约 近 将近 "
    "不到 不足 最高 最多 仅 多达 高达 至 增至 增长至 其中 一共 总共 全年 今年 去年 只要 需要 只需 仅需 要 用 就 就能 "
    "可 可以 能 约为 为了 所".split()
)


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


class FactChecker:
    def __init__(self, assistant: Assistant) -> None:
        self._assistant = assistant
        self._tokenizer = assistant.tokenizer

    def check(self, claim: str) -> Check:
        claim = " ".join(clean(claim).split())[:MAX_CLAIM_CHARS]
        facts = self._facts(claim)
        if not facts:
            return Check(claim, "not_found", (), "没有找到可核查的数字、日期或人名。")
        retriever = self._assistant.retriever
        scored = retriever.search(claim, k=_SEARCHED_PASSAGES)
        passages = retriever.passages(scored)
        # what each fact is about, once the sources say which names have short forms
        names = self._names([p.text for p in passages])
        anchored = []
        for fact in facts:
            before, after = self._anchors(claim, fact.candidate, names)
            anchored.append(dataclasses.replace(fact, before=before, after=after))
        context = [t.lstrip("#") for t in self._tokenizer.query_tokens(claim)]
        checked = tuple(self._check_fact(fact, claim, context, passages) for fact in anchored)
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
                value = parse_date(text)
            elif candidate.kind == "person" and claim[: candidate.start].endswith(_ROLES):
                value = text
            else:
                continue
            if value is None:
                continue
            fact = _ClaimFact(candidate, text, value)
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
        after_text = claim[candidate.end :]
        clause_end = min((after_text.find(p) for p in "，,。；;！？" if p in after_text), default=len(after_text))
        after = [w for w in after if claim.find(w, candidate.end) - candidate.end < clause_end]
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

    def _check_fact(self, fact: _ClaimFact, claim: str, context: list[str], passages: list[Passage]) -> Fact:
        kind = "quantity" if isinstance(fact.value, Quantity) else "date" if isinstance(fact.value, DateValue) else "person"
        value = fact.value.to_json() if hasattr(fact.value, "to_json") else fact.value
        fact_words = {t for t in context if t in fold(fact.text)}
        # (prefers support, support, -distance to the anchors): a source that states the
        # claimed value where the anchors are supports it, whatever else is nearby; a
        # contradiction names the value standing nearest the anchors.
        best: tuple[tuple, str | None, Evidence] | None = None
        for passage in passages:
            year = _article_year(self._assistant, passage)
            for sentence in sentence_spans(passage.text, clauses=False):
                body = passage.text[sentence.start : sentence.end]
                if fact.years and not any(str(year) in body for year in fact.years):
                    continue  # a figure of another period, or of none said, settles nothing
                folded = fold(body)
                for candidate in extract_candidates(body, self._tokenizer):
                    if candidate.kind != fact.candidate.kind:
                        continue
                    previous_start, own_start, own_end, next_end = _clauses(folded, candidate)
                    window_start, window = previous_start, folded[previous_start:next_end]
                    if not all(a in folded[previous_start:own_end] for a in fact.before) or not all(
                        a in folded[own_start:next_end] for a in fact.after
                    ):
                        continue  # the source does not speak of the same thing here
                    source_text = body[candidate.start : candidate.end]
                    source_value = self._value(kind, source_text, body[max(0, candidate.start - 4) : candidate.start], year)
                    outcome = _compare(fact.value, source_value)
                    if outcome is None:
                        continue
                    support = sum(len(t) for t in context if t in window and t not in fact_words)
                    distance = sum(
                        _distance(window, anchor, candidate.start - window_start) for anchor in fact.before + fact.after
                    )
                    rank = (outcome == "supported", support, -distance)
                    evidence = Evidence(passage, sentence.start + candidate.start, sentence.start + candidate.end, source_text)
                    if best is None or rank > best[0]:
                        best = (rank, outcome, evidence)
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


def _clauses(text: str, candidate: Candidate) -> tuple[int, int, int, int]:
    """Start of the clause before the candidate's, start and end of its own, end of the next."""
    def back(position: int) -> int:
        while position > 0 and text[position - 1] not in _CLAUSE_BREAKS:
            position -= 1
        return position

    def forward(position: int) -> int:
        while position < len(text) and text[position] not in _CLAUSE_BREAKS:
            position += 1
        return position

    own_start, own_end = back(candidate.start), forward(candidate.end)
    previous_start = back(own_start - 1) if own_start > 0 else 0
    next_end = forward(own_end + 1) if own_end < len(text) else own_end
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


def _overlaps(start: int, end: int, candidate: Candidate) -> bool:
    return start < candidate.end and candidate.start < end


def _article_year(assistant: Assistant, passage: Passage) -> int | None:
    record = assistant.article(passage.source)
    date = record.date if record else None
    return int(date[:4]) if date and date[:4].isdigit() else None
