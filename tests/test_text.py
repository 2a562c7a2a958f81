from hypothesis import given
from hypothesis import strategies as st

from qa.text import ends_sentence, fold, sentence_spans


def test_fold_maps_full_width_and_case_without_moving_positions():
    assert fold("ＡＢＣ１２３，Ｖ1汽车") == "abc123,v1汽车"
    assert len(fold("㎡㈱ﬁ")) == 3  # multi-character expansions are left alone


@given(st.text())
def test_fold_keeps_length(text):
    assert len(fold(text)) == len(text)


def test_sentences_end_at_chinese_terminators_and_keep_closing_quotes():
    text = "“坐上城际22分钟就到！”他说。第二句？第三句；还有……最后"
    assert [text[s.start : s.end] for s in sentence_spans(text)] == [
        "“坐上城际22分钟就到！”",
        "他说。",
        "第二句？",
        "第三句；",
        "还有……",
        "最后",
    ]


def test_decimal_points_do_not_end_sentences():
    assert len(sentence_spans("总产值1089.55亿元，同比增长10.5%。")) == 1


@given(st.text(alphabet=st.sampled_from("武清站。！？；…”“ \n\tab.1")) | st.text())
def test_sentences_cover_every_visible_character_once(text):
    spans = sentence_spans(text)
    assert all(0 <= s.start < s.end <= len(text) for s in spans)
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:]))  # ordered, disjoint
    assert all(not text[s.start].isspace() and not text[s.end - 1].isspace() for s in spans)  # trimmed
    outside = [c for i, c in enumerate(text) if not any(s.start <= i < s.end for s in spans)]
    assert all(c.isspace() for c in outside)


def test_paragraph_endings():
    assert ends_sentence("武清区正在全面落实。")
    assert ends_sentence("他说：“好！”")
    assert not ends_sentence("随着京津冀协同发展不断走深走实，加之")
    assert not ends_sentence("安擎计算机信息股")


def test_whole_sentences_keep_semicolon_clauses_together():
    text = "一是教化；二是管理户籍。第二句！"
    assert [text[s.start : s.end] for s in sentence_spans(text, clauses=False)] == ["一是教化；二是管理户籍。", "第二句！"]
    assert len(sentence_spans(text)) == 3


def test_ascii_marks_inside_latin_names_do_not_end_sentences():
    text = "组合包括Hey! Say! JUMP等。真的吗?是的。"
    assert [text[s.start : s.end] for s in sentence_spans(text)] == ["组合包括Hey! Say! JUMP等。", "真的吗?", "是的。"]
