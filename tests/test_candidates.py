import pytest

from qa.candidates import asked_measure, extract_candidates, span_fits
from qa.question import AnswerType, analyse_question


def spans(text, tokenizer, kind=None):
    return [text[c.start : c.end] for c in extract_candidates(text, tokenizer) if kind in (None, c.kind)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("坐上京津城际22分钟就能到北京南站", ["22分钟"]),
        ("总投资583.79亿元", ["583.79亿元"]),
        ("共举办文旅融合活动500余场", ["500余场"]),
        ("配套企业超260家", ["260家"]),
        ("可支撑算力达2万PFlops", ["2万PFlops"]),
        ("规划总面积约8000亩", ["8000亩"]),
        ("核心承载区3.42平方公里", ["3.42平方公里"]),
        ("同比增长10.5%", ["10.5%"]),
        ("吸引游客突破3000万人次", ["3000万人次"]),
        ("投资两千万元建设", ["两千万元"]),
        ("推出3条主题旅游线路", ["3条"]),
        ("停靠车次增至最高70列", ["70列"]),
        ("建设周期3至5年，每户补贴10-20万元", ["3至5年", "10-20万元"]),
        ("增速提高2个百分点", ["2个百分点"]),
        ("覆盖七大板块、127项服务", ["七大", "127项"]),
        ("一大批项目落户第二大城市", []),
    ],
)
def test_quantities_with_units_scales_and_chinese_numerals(tokenizer, text, expected):
    assert spans(text, tokenizer, "quantity") == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2025年6月30日，服务厅正式投入运营", ["2025年6月30日"]),
        ("这家2013年落户武清的企业", ["2013年"]),
        ("11月17日，大赛启幕", ["11月17日"]),
        ("二十世纪初期写成", ["二十世纪初"]),
        ("1980年代的作品", ["1980年代"]),
        ("每天早上六点开门", ["早上六点"]),
        ("新城际铁路今天开通", ["今天"]),
    ],
)
def test_dates_and_times(tokenizer, text, expected):
    assert spans(text, tokenizer, "date") == expected


def test_quoted_names_win_over_the_figures_inside_them(tokenizer):
    text = "获得“2025中国合成生物制造TOP101”奖项，出版《越南亡国史》"
    assert spans(text, tokenizer, "quoted") == ["“2025中国合成生物制造TOP101”", "《越南亡国史》"]
    assert spans(text, tokenizer, "quantity") == []


def test_quoted_speech_is_not_a_name(tokenizer):
    assert spans("他说：“坐上城际，22分钟就能到！”", tokenizer, "quoted") == []


def test_people_and_organisations(tokenizer):
    text = "京津产业新城管委会主任郎聪表示，安擎计算机信息股份有限公司产值增长，中国农业大学签约落地"
    assert "郎聪" in spans(text, tokenizer, "person")
    organisations = spans(text, tokenizer, "organization")
    assert "安擎计算机信息股份有限公司" in organisations and "中国农业大学" in organisations


def test_candidates_are_in_text_order_and_do_not_overlap(tokenizer):
    text = "2025年，这里已落地项目200余个，总投资31.2亿元，郎聪表示。"
    found = extract_candidates(text, tokenizer)
    assert [c.start for c in found] == sorted(c.start for c in found)
    assert all(a.end <= b.start for a, b in zip(found, found[1:]))


def test_a_person_is_a_name_not_a_clause_or_a_title(tokenizer):
    sentence = "天津市政府发布了《新城发展措施》，为新城提供了宝贵机遇，管委会主任郎聪表示。"

    def fits(answer_type, span):
        start = sentence.index(span)
        return span_fits(answer_type, sentence, start, start + len(span), tokenizer)

    assert fits(AnswerType.PERSON, "郎聪")
    assert not fits(AnswerType.PERSON, "《新城发展措施》")  # a title: a thing, not a person
    assert fits(AnswerType.THING, "《新城发展措施》")
    assert not fits(AnswerType.PERSON, "为新城提供了宝贵机遇，管委会主任郎聪")  # a clause, names inside or not


def test_a_place_does_not_answer_who(tokenizer):
    sentence = "随着京津产业新城加快建设，管委会主任郎聪表示。"
    at = sentence.index("京津产业新城")
    assert not span_fits(AnswerType.PERSON, sentence, at, at + 6, tokenizer)
    assert span_fits(AnswerType.PLACE, sentence, at, at + 6, tokenizer)


@pytest.mark.parametrize(
    "question, measure",
    [
        ("武清站每天停靠多少列车？", "count"),
        ("落地了多少个项目？", "count"),
        ("武清有几家企业？", "count"),
        ("从武清到北京南站要多久？", "time"),
        ("建成用了几年？", "time"),
        ("总投资多少亿元？", "money"),
        ("核心区面积有多少平方公里？", "area"),
        ("GDP是多少？", None),  # the question leaves the unit open
        ("有多少企业落户？", None),
    ],
)
def test_what_a_figure_question_measures(question, measure):
    assert asked_measure(analyse_question(question)) == measure


def test_a_figure_of_another_measure_does_not_answer(tokenizer):
    sentence = "京津城际22分钟就能到北京南站，武清站每天停靠70列，总投资约5000万。"

    def fits(span, measure):
        start = sentence.index(span)
        return span_fits(AnswerType.QUANTITY, sentence, start, start + len(span), tokenizer, measure=measure)

    assert fits("70列", "count") and not fits("22分钟", "count")
    assert fits("22分钟", "time") and not fits("70列", "time")
    assert fits("5000万", "count")  # no unit: nothing to disagree with
    assert fits("22分钟", None)  # the question did not say
