import pytest

from qa.question import AnswerType, analyse_question


@pytest.mark.parametrize(
    "question, answer_type, word",
    [
        ("从武清坐城际到北京南站要多久？", AnswerType.QUANTITY, "多久"),
        ("科技生态港有多少家高新技术企业？", AnswerType.QUANTITY, "多少"),
        ("通武廊推出了几条旅游线路？", AnswerType.QUANTITY, "几条"),
        ("创新创业服务厅什么时候开始运营的？", AnswerType.DATE, "什么时候"),
        ("法雷奥是哪一年来武清的？", AnswerType.DATE, "哪一年"),
        ("公园几点开门？", AnswerType.DATE, "几点"),
        ("京津产业新城管委会主任是谁？", AnswerType.PERSON, "是谁"),
        ("谁发明了活字印刷？", AnswerType.PERSON, "谁"),
        ("乌石渔港在哪里？", AnswerType.PLACE, "在哪里"),
        ("哪家公司做AI服务器？", AnswerType.ORGANIZATION, "哪家公司"),
        ("V1汽车世界以什么为核心？", AnswerType.THING, "什么"),
        ("武清有哪些农文旅项目？", AnswerType.THING, "哪些"),
        ("去北京上班方便吗？", AnswerType.DESCRIPTION, "吗"),
        ("为什么要建设新商圈？", AnswerType.DESCRIPTION, "为什么"),
        ("如何办理异地结算？", AnswerType.DESCRIPTION, "如何"),
    ],
)
def test_question_type_and_question_word(question, answer_type, word):
    analysis = analyse_question(question)
    assert analysis.type is answer_type
    assert question[analysis.wh.start : analysis.wh.end] == word


def test_anchors_are_the_text_around_the_question_word():
    analysis = analyse_question("V1汽车世界以什么为核心？")
    assert (analysis.before, analysis.after) == ("v1汽车世界以", "为核心")


def test_elided_question_word_at_the_end():
    analysis = analyse_question("香港公开羽毛球锦标赛的主办方是？")
    assert analysis.type is AnswerType.THING and analysis.after == ""


@pytest.mark.parametrize("question", ["几乎所有人都知道这件事", "任何人都可以参加"])
def test_ordinary_words_are_not_question_words(question):
    assert analyse_question(question).type is AnswerType.DESCRIPTION


def test_statement_without_question_word():
    assert analyse_question("武清站每日停靠70列").wh is None
