import datetime
import json

import pytest

from qa.assistant import Assistant
from qa.build import build_index
from qa.cli import main
from qa.factcheck import FactChecker
from qa.render import render_check

from .conftest import DATA


@pytest.fixture(scope="module")
def checker(seed_assistant):
    return FactChecker(seed_assistant)


@pytest.mark.parametrize(
    "claim, verdict, source_value",
    [
        ("十四五以来武清举办文旅融合活动500余场", "supported", "500余场"),
        ("通武廊联合推出了5条主题旅游线路", "contradicted", "3条"),
        ("京津冀汽车供应链产业联盟有三百余家成员单位", "supported", "300余家"),
        ("武清区2025年地区生产总值增长8%", "not_found", None),
    ],
)
def test_the_issue_examples(checker, claim, verdict, source_value):
    result = checker.check(claim)
    assert result.verdict == verdict
    fact = result.facts[0]
    if source_value:
        e = fact.evidence
        assert e.value == source_value and e.passage.text[e.start : e.end] == source_value
    else:
        assert fact.evidence is None


def test_json_shape(checker):
    data = checker.check("通武廊联合推出了5条主题旅游线路").to_json()
    assert set(data) == {"claim", "verdict", "summary", "facts"}
    fact = data["facts"][0]
    assert set(fact) == {"text", "kind", "value", "verdict", "evidence"}
    assert fact["kind"] == "quantity" and fact["value"]["unit"] == "条"
    assert set(fact["evidence"]) >= {"passage_id", "article", "text", "start", "end", "value"}


def test_a_name_in_its_long_form_is_met_by_its_short_form(checker):
    # the source: “在澳康达(天津)名车广场……自开业以来，澳康达累计销售额突破10亿元”
    assert checker.check("澳康达名车广场累计销售额突破10亿元").verdict == "supported"
    result = checker.check("澳康达名车广场累计销售额突破二十亿元，武清站每日停靠最高70列")
    assert result.verdict == "contradicted" and result.summary == "与来源矛盾：1项与来源矛盾，1项有来源"
    assert [(f.verdict, f.evidence.value) for f in result.facts] == [("contradicted", "10亿元"), ("supported", "70列")]


def test_a_figure_of_a_named_year_is_settled_only_by_a_source_naming_that_year(checker):
    assert checker.check("2025年京津产业新城规上工业总产值1089.55亿元").verdict == "supported"
    # the source's 10亿元 is a total since opening, not the year's: nothing settles it
    assert checker.check("澳康达名车广场2025年销售额5亿元").verdict == "not_found"
    assert checker.check("京津产业新城管委会主任郎聪2020年上任").verdict == "not_found"


def test_a_change_is_compared_with_changes_and_a_level_with_levels(checker):
    # the source: “规上工业总产值1089.55亿元，同比增长10.5%”
    assert checker.check("京津产业新城的规上工业总产值比上年增长了10.5%").verdict == "supported"
    result = checker.check("京津产业新城的规上工业总产值同比增长12%")
    assert result.verdict == "contradicted" and result.facts[0].evidence.value == "10.5%"
    assert checker.check("京津产业新城的规上工业总产值增长了1089.55亿元").verdict == "not_found"


def test_a_forecast_settles_only_a_forecast(checker):
    # the source: “达产后预计年产值83.8亿元” is what is expected, not what was made
    assert checker.check("京津汽车产业园2025年产值300亿元").verdict == "not_found"
    result = checker.check("京津汽车产业园引进的项目达产后预计年产值100亿元")
    assert result.verdict == "contradicted" and result.facts[0].evidence.value == "83.8亿元"


def test_a_paraphrase_stating_the_very_value_is_supported_by_meaning(checker):
    # the source: “加快3.42平方公里科技生态港(武清园)核心承载区建设”
    fact = checker.check("科技生态港(武清园)核心承载区面积为3.42平方公里").facts[0]
    assert fact.verdict == "supported" and fact.evidence.value == "3.42平方公里" and fact.note
    # in other words, a different value settles nothing: it may be about something else
    assert checker.check("科技生态港(武清园)核心承载区面积为5平方公里").verdict == "not_found"


def test_years_are_counted_from_the_articles_date(tmp_path, settings, hashing_embedder, tokenizer):
    settings.corpus_dir.mkdir()
    (settings.corpus_dir / "report.html").write_text(
        "<html><head><meta charset='utf-8'><meta property='article:published_time' content='2026-03-01'>"
        "<title>武清经济年报</title></head><body><article><h1>武清经济年报</h1>"
        "<p>去年，全区地区生产总值增长8%，新增市场主体1.2万户，经济运行稳中向好。</p>"
        "<p>今年，全区将新建口袋公园5个，改造老旧小区30个，方便市民就近休闲。</p></article></body></html>",
        encoding="utf-8",
    )
    build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    assistant = Assistant(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    checker = FactChecker(assistant, today=datetime.date(2026, 5, 1))
    assert checker.check("2025年全区地区生产总值增长8%").verdict == "supported"
    result = checker.check("2025年全区地区生产总值增长9%")
    assert result.verdict == "contradicted" and result.facts[0].evidence.value == "8%"
    assert checker.check("2024年全区地区生产总值增长8%").verdict == "not_found"
    # a claim's own 去年 counts from the day it is checked
    assert checker.check("去年全区地区生产总值增长8%").verdict == "supported"
    later = FactChecker(assistant, today=datetime.date(2027, 5, 1))
    assert later.check("去年全区地区生产总值增长8%").verdict == "not_found"


def test_names_with_their_role(checker):
    assert checker.check("京津产业新城管委会主任郎聪表示").verdict == "supported"
    result = checker.check("京津产业新城管委会主任王强表示")
    assert result.verdict == "contradicted" and result.facts[0].evidence.value == "郎聪"


@pytest.mark.parametrize(
    "claim, summary",
    [
        ("坐京津城际从武清到北京南站只要22分钟，武清区共有25所中学", "部分有来源支持：1项有来源，1项未找到"),
        ("通武廊联合推出了5条主题旅游线路，武清站每日停靠最高70列", "与来源矛盾：1项与来源矛盾，1项有来源"),
        ("十四五以来武清举办文旅融合活动500余场，吸引游客突破3000万人次", "有来源支持：共2项有来源"),
        ("武清区共有25所中学", "未找到来源：1项未找到"),
        ("武清的发展很好", "未找到来源"),
    ],
)
def test_the_summary_says_what_holds(checker, claim, summary):
    result = checker.check(claim)
    assert result.summary == summary and result.to_json()["summary"] == summary


def test_a_statement_without_facts_says_so(checker):
    result = checker.check("武清的发展很好")
    assert result.verdict == "not_found" and result.facts == () and result.message


def claims(name):
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()]


def accuracy(checker, rows):
    right = 0
    for row in rows:
        result = checker.check(row["claim"])
        values = [f.evidence.value for f in result.facts if f.verdict == "contradicted" and f.evidence]
        right += result.verdict == row["verdict"] and (row["verdict"] != "contradicted" or row["source_value"] in values)
    return right


def test_claims_of_our_own(checker):
    rows = claims("seed_claims.jsonl")
    assert len(rows) >= 30
    assert accuracy(checker, rows) >= 34  # 35 of 36 measured (README)


def test_later_claims(checker):
    assert accuracy(checker, claims("heldout_claims.jsonl")) >= 12  # 13 of 14 measured (README)


def test_no_false_contradictions_on_true_claims(checker):
    for row in claims("seed_claims.jsonl") + claims("heldout_claims.jsonl"):
        if row["verdict"] == "supported":
            assert checker.check(row["claim"]).verdict != "contradicted", row["claim"]


def test_rendering_marks_the_source_value_and_escapes(checker):
    html = render_check(checker.check("通武廊联合推出了5条主题旅游线路"))
    assert "与来源矛盾" in html and '<mark class="evidence">3条</mark>' in html
    assert "<script>" not in render_check(checker.check("<script>alert(1)</script>有5条线路"))


def test_cli_checks_a_claims_file(tmp_path, seed_assistant, capsys):
    path = tmp_path / "claims.txt"
    path.write_text("通武廊联合推出了5条主题旅游线路\n\n武清区共有25所中学\n", encoding="utf-8")
    code = main(["check", "--claims", str(path), "--index", str(seed_assistant.settings.index_dir)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0 and [line["verdict"] for line in lines] == ["contradicted", "not_found"]
