"""Figures and dates as comparable values: what “超1600万人次” or “三百余家” allows.

A stated figure becomes an interval of values in a base unit, its qualifier deciding the
bounds (v is the number as written, scaled by 万/亿 and by the unit):

| qualifier | meaning | interval |
|---|---|---|
| none, 达, 共, 累计, 最高, 最多 | exactly v | [v, v] |
| 余, 多 after the number (500余场, 1600多万) | v up to the next step of its last non-zero digit | [v, v + step) |
| 超, 超过, 逾, 突破, 以上, 至少, 多达 | at least v; in a source, v up to its next step | [v, ∞); source: [v, v + step) |
| 约, 左右, 上下, 大约 | within 10% | [0.9v, 1.1v] |
| 近, 将近, 接近 | a little under v | [0.9v, v] |
| 不到, 不足, 以下, 低于 | under v | [0, v) |
| a range: 3至5年, 10-20万元 | from the first to the second | [v₁, v₂] |

A range's first number takes the second's scale and unit when it has none of its own
(“3至5年” is 3年 to 5年, “10至20万元” 10万元 to 20万元).

A source supports a claim when every value the source allows is one the claim allows
(its interval lies inside the claim's); it contradicts the claim when no value is allowed
by both; otherwise it neither confirms nor contradicts it.

A lower bound means two things. In a claim it is an assertion: “超1500万” is true of any
value from 15 million up. In a source it is a report, and a report rounds down to the
last figure passed: “突破10亿元” says 10 to 20 亿 (had it passed 20亿, it would say so),
“超260家” 260 to 270. So a source's lower bound reaches to the next step of its last
non-zero digit (`parse_quantity(…, reported=True)`): “突破二十亿元” is contradicted by a
source's “突破10亿元”, and “超1500万” is supported by a source's “超1600万”.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["Quantity", "DateValue", "RELATIVE_YEARS", "parse_quantity", "parse_date", "chinese_number", "compare"]

_DIGIT_VALUES = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_SMALL_UNITS = {"十": 10, "百": 100, "千": 1000}
_SCALES = {"万": 1e4, "亿": 1e8}
_PREFIXES = {
    **dict.fromkeys(("超过", "超", "逾", "突破", "至少", "多达", "高达", "不少于"), "at_least"),
    **dict.fromkeys(("约", "大约", "大概"), "about"),
    **dict.fromkeys(("将近", "接近", "近"), "nearly"),
    **dict.fromkeys(("不到", "不足", "低于", "少于"), "under"),
    **dict.fromkeys(("达到", "达", "共", "累计", "最高", "最多", "仅", "计"), "exact"),
}
_SUFFIXES = {"以上": "at_least", "左右": "about", "上下": "about", "以下": "under"}
# Units and what one of them is worth in the unit they are compared in.
_UNIT_FAMILIES = {
    "元": ("元", 1.0), "块": ("元", 1.0), "万元": ("元", 1e4), "亿元": ("元", 1e8),
    "%": ("%", 1.0), "％": ("%", 1.0), "个百分点": ("百分点", 1.0), "百分点": ("百分点", 1.0),
    "平方公里": ("平方公里", 1.0), "平方千米": ("平方公里", 1.0), "亩": ("亩", 1.0), "公顷": ("公顷", 1.0),
    "公里": ("米", 1000.0), "千米": ("米", 1000.0), "米": ("米", 1.0),
    "小时": ("分钟", 60.0), "分钟": ("分钟", 1.0), "秒": ("分钟", 1 / 60),
}
_RANGE_SEPARATOR = re.compile(r"至|到|~|～|-|－|—|–")
_NUMBER = re.compile(r"\d+(?:[,，]\d{3})*(?:\.\d+)?|[零〇一二两三四五六七八九十百千]+")


@dataclass(frozen=True)
class Quantity:
    low: float
    high: float  # math.inf when unbounded
    unit: str  # the unit compared in (元, %, 家, 人次 …)
    qualifier: str  # exact | approximately_more | at_least | about | nearly | under | range
    text: str

    @property
    def value(self) -> float:
        return self.low

    @property
    def high_excluded(self) -> bool:
        """Whether `high` itself lies outside: “500余” is under 600, “不到5万” under 5万, and a
        reported “突破10亿” under 20亿."""
        return self.qualifier in ("approximately_more", "at_least", "under") and not math.isinf(self.high)

    def to_json(self) -> dict:
        return {
            "low": self.low,
            "high": None if math.isinf(self.high) else self.high,
            "unit": self.unit,
            "qualifier": self.qualifier,
        }


@dataclass(frozen=True)
class DateValue:
    year: int | None
    month: int | None
    day: int | None
    text: str

    def to_json(self) -> dict:
        return {"year": self.year, "month": self.month, "day": self.day}


def chinese_number(text: str) -> float | None:
    """一百零一 → 101, 两千万 → 20000000, 1.2万 → 12000, 三百 → 300; None if not a number."""
    text = text.replace(",", "").replace("，", "")
    if not text:
        return None
    if len(text) > 1 and all(c in _DIGIT_VALUES for c in text):  # 二〇二五: digit by digit
        return float("".join(str(_DIGIT_VALUES[c]) for c in text))
    total, section, number = 0.0, 0.0, None
    i = 0
    while i < len(text):
        char = text[i]
        match = re.match(r"\d+(?:\.\d+)?", text[i:])
        if match:
            number = float(match.group())
            i += len(match.group())
            continue
        if char in _DIGIT_VALUES:
            number = float(_DIGIT_VALUES[char])
        elif char in _SMALL_UNITS:
            section += (number if number is not None else 1.0) * _SMALL_UNITS[char]
            number = None
        elif char in _SCALES:
            section += number or 0.0
            total = (total + section) * _SCALES[char] if char == "亿" or total == 0 else total + section * _SCALES[char]
            section, number = 0.0, None
        else:
            return None
        i += 1
    return total + section + (number or 0.0)


def parse_quantity(text: str, *, before: str = "", reported: bool = False) -> Quantity | None:
    """The interval a figure such as “超1600万人次” states; `before` is the text just
    before it, where a qualifier (超, 约 …) may stand; `reported`: read as a source's
    report, a lower bound reaching only to its next step (module docstring)."""
    ends = _RANGE_SEPARATOR.split(text, maxsplit=1)
    if len(ends) == 2:
        return _parse_range(text, *ends)
    before = before.removesuffix("了")  # 超过了60亿元
    qualifier = "exact"
    for word, meaning in sorted(_PREFIXES.items(), key=lambda item: -len(item[0])):
        if before.endswith(word):
            qualifier = meaning
            break
    match = _NUMBER.search(text)
    if not match or match.start() != 0:
        return None
    rest = text[match.end() :]
    approximate_more = False
    if rest[:1] in ("余", "多"):
        approximate_more, rest = True, rest[1:]
    scale = 1.0
    while rest[:1] in _SCALES:
        scale *= _SCALES[rest[0]]
        rest = rest[1:]
    if rest[:1] in ("余", "多"):
        approximate_more, rest = True, rest[1:]
    for word, meaning in _SUFFIXES.items():
        if rest.endswith(word):
            qualifier, rest = meaning, rest[: -len(word)]
    number = chinese_number(match.group())
    if number is None:
        return None
    unit, factor = _UNIT_FAMILIES.get(rest, (rest, 1.0))
    value = number * scale * factor
    step = _step(match.group()) * scale * factor
    if approximate_more and qualifier == "exact":
        return Quantity(value, value + step, unit, "approximately_more", text)
    low, high = {
        "exact": (value, value),
        "at_least": (value, value + step if reported else math.inf),
        "about": (0.9 * value, 1.1 * value),
        "nearly": (0.9 * value, value),
        "under": (0.0, value),
    }[qualifier]
    return Quantity(low, high, unit, qualifier, text)


def _parse_range(text: str, first: str, second: str) -> Quantity | None:
    high = parse_quantity(second)
    number = _NUMBER.match(first)
    if high is None or number is None:
        return None
    if number.end() == len(first):  # 3至5年: the first takes the second's scale and unit
        first += _NUMBER.sub("", second, count=1).lstrip("余多")
    low = parse_quantity(first)
    if low is None or low.unit != high.unit or low.low > high.high:
        return None
    return Quantity(low.low, high.high, high.unit, "range", text)


def _step(number: str) -> float:
    """The size of the last non-zero digit's place: 500 → 100, 1600 → 100, 三百 → 100."""
    value = chinese_number(number) or 0
    if value <= 0 or value != int(value):
        return 1.0
    value = int(value)
    step = 1
    while value % (step * 10) == 0:
        step *= 10
    return float(step)


# Years said relative to the article's own (“去年” in an article of 2026 is 2025).
RELATIVE_YEARS = {"前年": -2, "去年": -1, "今年": 0, "明年": 1}
_DATE = re.compile(r"(?:(\d{4}|[零〇一二三四五六七八九]{4})年)?(?:(\d{1,2})月)?(?:(\d{1,2})[日号])?")


def parse_date(text: str, *, year: int | None = None) -> DateValue | None:
    """2025年6月30日 → (2025, 6, 30); 6月30日 takes `year` (the article's) when given, and
    so do 去年, 今年 … (`RELATIVE_YEARS`), which are nothing without it."""
    if text.strip() in RELATIVE_YEARS:
        return DateValue(year + RELATIVE_YEARS[text.strip()], None, None, text) if year is not None else None
    match = _DATE.fullmatch(text.strip())
    if not match or not any(match.groups()):
        return None
    y, m, d = match.groups()
    if y and not y.isdigit():
        y = "".join(str(_DIGIT_VALUES[c]) for c in y)
    return DateValue(int(y) if y else year, int(m) if m else None, int(d) if d else None, text)


def compare(claim: Quantity | DateValue, source: Quantity | DateValue) -> str | None:
    """"supported", "contradicted", "unconfirmed" (consistent, not implied), or None when
    the two are not comparable (different units or kinds)."""
    if isinstance(claim, DateValue) and isinstance(source, DateValue):
        pairs = [(a, b) for a, b in ((claim.year, source.year), (claim.month, source.month), (claim.day, source.day)) if a is not None]
        if any(b is not None and a != b for a, b in pairs):
            return "contradicted"
        return "supported" if all(b is not None for _, b in pairs) else "unconfirmed"
    if isinstance(claim, Quantity) and isinstance(source, Quantity):
        if claim.unit != source.unit:
            return None
        tolerance = 1e-9 * max(abs(claim.low), abs(source.low), 1.0)
        if source.low >= claim.low - tolerance and source.high <= claim.high + tolerance:
            return "supported"
        if source.high < claim.low - tolerance or source.low > claim.high + tolerance:
            return "contradicted"
        if (source.high_excluded and source.high <= claim.low + tolerance) or (claim.high_excluded and source.low >= claim.high - tolerance):
            return "contradicted"  # the two touch only at a bound one of them excludes
        return "unconfirmed"
    return None
