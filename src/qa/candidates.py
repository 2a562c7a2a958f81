"""Spans of a sentence that could answer a question: figures, dates, names and terms.

- quantities: Arabic or Chinese numerals with scale words (万, 亿) and units
  (“500余场”, “583.79亿元”, “2万PFlops”, “约8000亩”, “两千万”), ranges (“3至5年”) and
  counts of kinds (“七大板块”);
- dates and times: “2025年6月30日”, “6月30日”, “1992年”, “二十世纪初”, “1980年代”,
  “早上六点”, “今天”, “去年”;
- quoted names: “…”, 《…》, 「…」;
- named entities from jieba's part-of-speech tags: people (nr), places (ns),
  organisations (nt and names ending in 公司, 大学, 委员会 …), other proper nouns (nz).

Positions are in the text given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .question import AnswerType, Question
from .text import fold
from .tokens import Tokenizer

__all__ = ["Candidate", "asked_measure", "extract_candidates", "span_fits", "QUANTITY", "DATE"]

_DIGITS = r"\d+(?:[.,，]\d+)*(?:\.\d+)?"
_HANZI_NUMBER = r"[零〇一二两三四五六七八九十百千]+"
_SCALE = r"(?:万亿|千亿|百亿|十亿|亿|千万|百万|十万|万|千|百)"
# Every unit a figure may carry, by what it measures. Two figures of different measures
# never answer the same question: “多少列车” (a count) is not answered by 22分钟 (a time).
# None: ambiguous (分: minutes or points) or never asked for by a classifier.
_UNITS_BY_MEASURE = {
    "time": "个月 年 月 周 星期 天 日 小时 分钟 秒",
    "money": "亿元 万元 美元 欧元 英镑 港元 港币 日元 韩元 人民币 元 块 角",
    "percent": "个百分点 百分点 % ％ 成",
    "area": "平方公里 平方千米 平方米 亩 公顷",
    "length": "公里 千米 公分 厘米 毫米 英里 海里 米 英尺 英寸 km cm mm m",
    "weight": "公斤 千克 克 吨 kg g",
    "age": "岁 周岁",
    "count": """人次 万人 人 名 位 个 家 项 列 趟 班 条 场 所 座 种 件 部 本 辆 架 艘 台 户 栋 幢 层 篇 首 集 届 期 批 次
        票 枚 颗 只 头 匹 株 棵 册 卷 章 字 页 球 杆 码""",
    None: "分 度 摄氏度 倍 pflops tflops gb tb mb kb 升 立方米",
}
_MEASURES = {unit: measure for measure, units in _UNITS_BY_MEASURE.items() for unit in units.split()}
_UNITS = sorted(_MEASURES, key=len, reverse=True)  # longest first: 平方公里 before 公里
_UNIT = "(?:" + "|".join(re.escape(u) for u in _UNITS) + ")"
_UNIT_AT_START = re.compile(_UNIT)  # alternatives tried longest first: the longest unit wins
# Question words that say what they measure on their own.
_MEASURING_WORDS = {"多久": "time", "多长时间": "time", "多少时间": "time", "多远": "length", "多高": "length", "多深": "length", "多宽": "length", "多重": "weight", "多少钱": "money"}
_APPROX = r"[余多]?"

_NUMERAL = rf"(?:{_DIGITS}|{_HANZI_NUMBER})"
_FIGURE_NUMBER = re.compile(rf"{_NUMERAL}{_APPROX}")  # a figure's number, before its scale and unit
# A range (“3至5年”, “10-20万元”) is one figure; its second number carries the scale or unit.
_RANGE = rf"{_NUMERAL}{_SCALE}?{_UNIT}?(?:至|到|~|～|-|－|—|–){_NUMERAL}{_APPROX}(?:{_SCALE}{_APPROX}{_UNIT}?|{_UNIT})"
# “七大板块”, “三大任务”: a count of kinds (not “一大批”, a manner of speaking).
_KINDS = r"(?<!第)(?:[二两三四五六七八九十]|\d{1,2})大(?=[\u4e00-\u9fff])"
QUANTITY = re.compile(
    rf"(?:{_RANGE}|{_KINDS}|{_DIGITS}{_APPROX}{_SCALE}?{_APPROX}{_UNIT}?|{_HANZI_NUMBER}{_APPROX}(?:{_SCALE}{_APPROX}{_UNIT}?|{_UNIT}))",
    re.IGNORECASE,
)
DATE = re.compile(
    r"(?:公元前?)?(?:\d{3,4}|[零〇一二三四五六七八九]{4})年(?:\d{1,2}月(?:\d{1,2}[日号])?)?(?:[初末底]|代)?"
    r"|\d{1,2}月\d{1,2}[日号]"
    r"|\d{1,2}月(?:[上中下]旬|初|底)?"
    r"|(?:\d{1,2}|[一二三四五六七八九十]{1,3})世纪(?:\d0年代|[初中末]叶?|[上下]半叶)?"
    r"|\d{1,2}0年代"
    r"|(?:早上|上午|中午|下午|傍晚|晚上|凌晨|夜里)?(?:\d{1,2}|[一二三四五六七八九十]{1,3})[点时](?:半|\d{1,2}分|[一二三四五六七八九十]{1,3}分)?"
    r"|(?:今天|昨天|明天|前天|后天|今年|去年|明年|前年|本月|上月|下月|当天|当年|同年|今晨|昨晚|本周|上周|下周)"
)
# Quoted names, not quoted speech: no sentence punctuation inside.
# Two digits side by side (十四五, 一二) are a name or a list, not a Chinese numeral.
_MALFORMED_NUMERAL = re.compile(r"[一二两三四五六七八九][一二两三四五六七八九]")
_QUOTED = re.compile(r"“[^”\n，。！？；：,!?]{1,30}”|《[^》\n]{1,40}》|「[^」\n，。！？；：]{1,30}」|『[^』\n，。！？；：]{1,30}』")
_ORGANIZATION_SUFFIX = re.compile(
    r"(?:公司|集团|大学|学院|学校|中学|小学|银行|协会|学会|委员会|研究院|研究所|实验室|中心|医院|政府|联盟|总会|基金会|"
    r"管委会|办公室|科技园|产业园|园区|法院|检察院|博物馆|图书馆|出版社|电视台|报社|俱乐部|球队|乐团|剧院|组织|部|局|厅|署|处)$"
)
# Part-of-speech flags of words that can stand in an organisation's name.
_NOUNISH = re.compile(r"^(?:n|nr|nrfg|nrt|ns|nt|nz|nw|eng|j|vn|an)$")
_TAGS = {"nr": "person", "nrfg": "person", "nrt": "person", "ns": "place", "nt": "organization", "nz": "name"}


@dataclass(frozen=True)
class Candidate:
    start: int
    end: int
    kind: str  # "quantity" | "date" | "person" | "place" | "organization" | "name" | "quoted"

    def matches(self, answer_type: AnswerType) -> bool:
        return self.kind in _FITS.get(answer_type, ())


_FITS: dict[AnswerType, tuple[str, ...]] = {
    AnswerType.QUANTITY: ("quantity",),
    AnswerType.DATE: ("date",),
    AnswerType.PERSON: ("person",),
    AnswerType.PLACE: ("place", "organization"),
    AnswerType.ORGANIZATION: ("organization", "name", "place"),
    AnswerType.THING: ("quoted", "name", "organization", "person", "place"),
}


def extract_candidates(text: str, tokenizer: Tokenizer, *, new_words: bool = True) -> list[Candidate]:
    """Candidate answer spans of `text`, in text order.

    On overlap, quoted names win over dates, dates over figures, figures over entities.
    `new_words=False` finds only names in jieba's dictionary (see Tokenizer.tag).
    """
    found: list[Candidate] = []
    taken = [False] * len(text)

    def add(start: int, end: int, kind: str) -> None:
        if end > start and not any(taken[start:end]):
            found.append(Candidate(start, end, kind))
            taken[start:end] = [True] * (end - start)

    for match in _QUOTED.finditer(text):
        add(match.start(), match.end(), "quoted")
    for match in DATE.finditer(text):
        add(match.start(), match.end(), "date")
    for match in QUANTITY.finditer(text):
        if not _MALFORMED_NUMERAL.search(match.group()):
            add(match.start(), match.end(), "quantity")
    for start, end, kind in _entities(text, tokenizer, new_words):
        add(start, end, kind)
    return sorted(found, key=lambda c: c.start)


def _entities(text: str, tokenizer: Tokenizer, new_words: bool) -> list[tuple[int, int, str]]:
    """Runs of words with the same entity tag, and organisation names: a word ending in an
    organisation suffix (公司, 大学 …) with the nouns and names right before it."""
    tagged = tokenizer.tag(text, new_words=new_words)
    spans: list[tuple[int, int, str]] = []
    run: list[tuple[int, int, str]] = []  # (start, end, kind) of the current run
    for index, (word, flag, start, end) in enumerate(tagged):
        kind = _TAGS.get(flag)
        if flag.startswith("n") and _ORGANIZATION_SUFFIX.search(word):
            first = index
            while first > 0 and _NOUNISH.match(tagged[first - 1][1]) and tagged[first - 1][0].strip():
                first -= 1
            run = [r for r in run if r[1] <= tagged[first][2]]
            if run:
                spans.append((run[0][0], run[-1][1], run[-1][2]))
            spans = [sp for sp in spans if sp[1] <= tagged[first][2]]
            spans.append((tagged[first][2], end, "organization"))
            run = []
            continue
        if kind and run and run[-1][2] == kind and run[-1][1] == start:
            run.append((start, end, kind))
            continue
        if run:
            spans.append((run[0][0], run[-1][1], run[-1][2]))
        run = [(start, end, kind)] if kind else []
    if run:
        spans.append((run[0][0], run[-1][1], run[-1][2]))
    return spans


# Part-of-speech flags a name-like answer may end with, by what the question asks: a place
# may end in a locality word (f, s); a person never in a place name (“京津产业新城” is
# where, not who; 1 of 78 trial answers to 谁 ends so: 莱佛士, a name tagged as a place).
_NAME_FLAGS = "n|nr|nrfg|nrt|nt|nz|nw|eng|j|x"
_ENDS = {
    AnswerType.PERSON: re.compile(rf"^(?:{_NAME_FLAGS})$"),
    AnswerType.PLACE: re.compile(rf"^(?:{_NAME_FLAGS}|ns|f|s)$"),
    AnswerType.ORGANIZATION: re.compile(rf"^(?:{_NAME_FLAGS}|ns)$"),
}
_NOT_A_PERSON = re.compile(r"[，。；！？,;!?《》]")  # a clause, or a title
_HAS_FIGURE = re.compile(r"[0-9０-９零〇一二两三四五六七八九十百千万亿半几数]")


def _measure_of_unit(text: str) -> str | None:
    """What the unit at the start of `text` measures (after a scale such as 万, 亿), if any."""
    unit = _UNIT_AT_START.match(text.lstrip("万亿千百十").lower())
    return _MEASURES[unit.group()] if unit else None


def asked_measure(question: Question) -> str | None:
    """What a figure question measures, when it says: “多少列车” counts, “多久” asks a time,
    “多少亿元” money; None for “GDP是多少”, which leaves it open."""
    if question.type is not AnswerType.QUANTITY or question.wh is None:
        return None
    folded = fold(question.text)
    word = folded[question.wh.start : question.wh.end]
    for measuring, measure in _MEASURING_WORDS.items():
        if folded.startswith(measuring, question.wh.start):
            return measure
    return _measure_of_unit(word.lstrip("多少几") + folded[question.wh.end :])


def _figure_measure(span: str) -> str | None:
    """What the first figure of `span` measures, by its unit; None without one."""
    figure = QUANTITY.search(span)
    number = _FIGURE_NUMBER.match(figure.group()) if figure else None
    return _measure_of_unit(figure.group()[number.end() :]) if number else None


def span_fits(
    answer_type: AnswerType, sentence: str, start: int, end: int, tokenizer: Tokenizer, *, measure: str | None = None
) -> bool:
    """Whether `sentence[start:end]` is the kind of thing the question asks for.

    A figure or date must hold a numeral (dates: also words like 今年, 去年), and a figure
    of the `measure` the question asks for (`asked_measure`) when its unit says; a person,
    place or organisation must be a name or end in a noun, as jieba tags the words in
    their sentence, so “宝贵” never answers “是谁”; nor is a person a clause (even one holding
    a word tagged as a name), a title in 《》 or a place. Other questions accept any span."""
    span = sentence[start:end]
    if answer_type is AnswerType.QUANTITY:
        found = _figure_measure(span) if measure else None
        return bool(_HAS_FIGURE.search(span)) and (found is None or found == measure)
    if answer_type is AnswerType.DATE:
        return bool(DATE.search(span) or _HAS_FIGURE.search(span))
    if answer_type in (AnswerType.PERSON, AnswerType.PLACE, AnswerType.ORGANIZATION):
        if answer_type is AnswerType.PERSON and _NOT_A_PERSON.search(span):
            return False  # CMRC trial: 10 of 78 person answers are whole clauses, none a title alone
        if _QUOTED.fullmatch(span):
            return True
        words = [(flag, a, b) for _, flag, a, b in tokenizer.tag(sentence) if a < end and b > start]
        if not words:
            return False
        if answer_type is AnswerType.PERSON and any(_TAGS.get(flag) == "person" for flag, _, _ in words):
            return True
        return bool(_ENDS[answer_type].match(words[-1][0]))
    return True
