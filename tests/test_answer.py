from qa.answer import term_highlights

PASSAGE = "清晨的武清站人头攒动。“坐上京津城际22分钟就能到北京南站！”他说。车站每日停靠70列。"


def test_highlights_mark_each_term_occurrence_without_overlap():
    highlights = term_highlights(["武清站", "武清", "北京南站"], PASSAGE + "武清站")
    texts = [(PASSAGE + "武清站")[h.start : h.end] for h in highlights]
    assert texts == ["武清站", "北京南站", "武清站"]
    assert all(a.end <= b.start for a, b in zip(highlights, highlights[1:]))
    assert all(h.kind == "term" for h in highlights)


def test_highlights_match_full_width_text():
    text = "Ｖ１汽车世界"
    (highlight,) = term_highlights(["v1"], text)
    assert text[highlight.start : highlight.end] == "Ｖ１"
