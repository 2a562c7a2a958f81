import math

import pytest

from qa.numbers import chinese_number, compare, parse_date, parse_quantity


@pytest.mark.parametrize(
    "text, value",
    [("一百零一", 101), ("两千万", 2e7), ("1.2万", 12000), ("三百", 300), ("十", 10), ("十二", 12), ("二十五", 25),
     ("583.79亿", 58379000000), ("一千零八十九", 1089), ("3,000", 3000), ("二〇二五", 2025), ("两", 2)],
)
def test_chinese_and_arabic_numerals(text, value):
    assert chinese_number(text.rstrip("万亿")) * (1e4 if text.endswith("万") else 1e8 if text.endswith("亿") else 1) == pytest.approx(value)


@pytest.mark.parametrize(
    "text, before, low, high, unit",
    [
        ("500余场", "", 500, 600, "场"),
        ("三百余家", "", 300, 400, "家"),
        ("1600万人次", "超", 1.6e7, math.inf, "人次"),
        ("1500万", "超过", 1.5e7, math.inf, ""),
        ("583.79亿元", "总投资", 5.8379e10, 5.8379e10, "元"),
        ("60亿元", "突破", 6e9, math.inf, "元"),
        ("8000亩", "约", 7200, 8800, "亩"),
        ("10.5%", "增长", 10.5, 10.5, "%"),
        ("22分钟", "", 22, 22, "分钟"),
        ("70列", "最高", 70, 70, "列"),
        ("2万PFlops", "达", 20000, 20000, "PFlops"),
        ("3.42平方公里", "", 3.42, 3.42, "平方公里"),
        ("1600多万", "", 1.6e7, 1.7e7, ""),
        ("100人", "不到", 0, 100, "人"),
        ("30亿元", "近", 2.7e9, 3e9, "元"),
    ],
)
def test_qualifiers_set_the_interval(text, before, low, high, unit):
    quantity = parse_quantity(text, before=before)
    assert (quantity.low, quantity.high, quantity.unit) == (pytest.approx(low), pytest.approx(high), unit)


@pytest.mark.parametrize(
    "claim, claim_before, source, source_before, verdict",
    [
        ("500余场", "", "500余场", "", "supported"),
        ("三百余家", "", "300余家", "", "supported"),
        ("5条", "", "3条", "", "contradicted"),
        ("1600万人次", "超", "1500万人次", "超过", "unconfirmed"),  # not contradicted
        ("1500万人次", "超过", "1600万人次", "超", "supported"),
        ("80亿元", "", "60亿元", "突破", "unconfirmed"),
        ("50亿元", "", "60亿元", "突破", "contradicted"),
        ("8000亩", "约", "8000亩", "", "supported"),
        ("10亿元", "", "1000000000元", "", "supported"),
        ("10%", "", "10亿元", "", None),
    ],
)
def test_comparing_what_claim_and_source_allow(claim, claim_before, source, source_before, verdict):
    assert compare(parse_quantity(claim, before=claim_before), parse_quantity(source, before=source_before)) == verdict


def test_dates_take_the_article_year_and_compare_by_part():
    assert parse_date("6月30日", year=2025).to_json() == {"year": 2025, "month": 6, "day": 30}
    assert compare(parse_date("2025年6月30日"), parse_date("2025年6月30日")) == "supported"
    assert compare(parse_date("2025年7月1日"), parse_date("2025年6月30日")) == "contradicted"
    assert compare(parse_date("2025年"), parse_date("2025年6月30日")) == "supported"
    assert compare(parse_date("2025年6月30日"), parse_date("2025年")) == "unconfirmed"


@pytest.mark.parametrize(
    "claim, claim_before, source, source_before, verdict",
    [
        ("二十亿元", "突破", "10亿元", "突破", "contradicted"),  # the source says 10 to 20 亿
        ("10亿元", "突破", "10亿元", "突破", "supported"),
        ("5亿元", "超过", "10亿元", "突破", "supported"),
        ("1500万人次", "超过", "1600万人次", "超", "supported"),
        ("1600万人次", "超", "1500万人次", "超过", "contradicted"),
        ("12亿元", "", "10亿元", "突破", "unconfirmed"),
        ("80亿元", "", "60亿元", "突破", "contradicted"),
        ("600场", "", "500余场", "", "contradicted"),  # 500余 is under 600
    ],
)
def test_a_sources_lower_bound_is_a_report_up_to_its_next_step(claim, claim_before, source, source_before, verdict):
    reported = parse_quantity(source, before=source_before, reported=True)
    assert compare(parse_quantity(claim, before=claim_before), reported) == verdict


@pytest.mark.parametrize(
    "text, low, high, unit",
    [("3至5年", 3, 5, "年"), ("10-20万元", 1e5, 2e5, "元"), ("三到五年", 3, 5, "年"), ("5%～8%", 5, 8, "%")],
)
def test_a_range_is_one_figure_from_its_first_number_to_its_second(text, low, high, unit):
    quantity = parse_quantity(text)
    assert (quantity.low, quantity.high, quantity.unit, quantity.qualifier) == (pytest.approx(low), pytest.approx(high), unit, "range")


def test_ranges_compare_as_intervals():
    assert compare(parse_quantity("3至5年"), parse_quantity("4年")) == "supported"
    assert compare(parse_quantity("4年"), parse_quantity("3至5年")) == "unconfirmed"
    assert compare(parse_quantity("6年"), parse_quantity("3至5年")) == "contradicted"
    assert parse_quantity("5年至3年") is None and parse_quantity("3个至5年") is None


def test_percentage_points_are_not_percentages():
    assert parse_quantity("2个百分点").unit == "百分点"
    assert compare(parse_quantity("2个百分点"), parse_quantity("2%")) is None


def test_a_qualifier_is_read_through_le():
    assert parse_quantity("60亿元", before="超过了").qualifier == "at_least"


def test_relative_years_count_from_the_year_given():
    assert parse_date("去年", year=2026).year == 2025 and parse_date("今年", year=2026).year == 2026
    assert parse_date("前年", year=2026).year == 2024 and parse_date("去年") is None
