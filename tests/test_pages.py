"""Pages the tests build: a file holding a newspaper page is split into its articles."""

import zlib

import numpy as np

from qa.build import build_index
from qa.chunk import chunk_article
from qa.ingest import parse_article

BODY = {
    "桥": "新建的跨河大桥今天正式通车，全长一千二百米，双向六车道，连接城市南北两岸的主要干道。",
    "桥2": "大桥通车后，南北两岸的通行时间由四十分钟缩短到十分钟，沿线居民出行更加方便快捷。",
    "园": "城东湿地公园完成改造，新增步道八公里和观鸟平台三处，周末接待游客超过两万人次。",
    "园2": "公园管理处表示，今年还将新种植乔木五千株，并增设十处便民服务点，方便市民休闲。",
    "校": "第二实验小学新校区投入使用，可提供学位一千八百个，配有图书馆、体育馆和科学实验室。",
    "校2": "新校区采用走班教学，学校还与附近社区合作开设课后托管服务，家长反映很满意。",
}


def topic_encoder(topics: dict[str, int]):
    """Vectors that point one way per topic (the first of `topics`' words found in a text),
    with a little noise of each text's own."""

    def encode(texts):
        rows = []
        for text in texts:
            row = np.random.default_rng(zlib.crc32(text.encode())).normal(0, 0.1, 8)
            row[next(axis for word, axis in topics.items() if word in text)] += 1
            rows.append(row / np.linalg.norm(row))
        return np.array(rows)

    return encode


def page(*parts: str) -> str:
    return "\n\n".join(parts) + "\n"


def titles(article):
    return [story.title for story in article.stories]


def article_of(article, fragment):
    [paragraph] = [p for p in article.paragraphs if fragment in p.text]
    return article.title_of(paragraph)


def test_two_articles_on_a_page():
    article = parse_article(
        page("# 城市版", "## 跨河大桥通车", "### 南北两岸十分钟互通", BODY["桥"], BODY["桥2"], "记者 张三",
             "## 湿地公园焕新", BODY["园"], BODY["园2"], "通讯员 李四"),
        source="page.md",
    )  # fmt: skip
    assert article.page == "城市版" and titles(article) == ["跨河大桥通车", "湿地公园焕新"]
    assert article.stories[0].subtitle == "南北两岸十分钟互通" and article.stories[0].byline == "记者 张三"
    assert article.stories[1].byline == "通讯员 李四"
    assert article_of(article, "观鸟平台") == "湿地公园焕新" and article_of(article, "全长一千二百米") == "跨河大桥通车"
    # passages carry their own article and never span two
    passages = chunk_article(article, max_chars=400, min_chars=60)
    assert {p.article for p in passages} == {"跨河大桥通车", "湿地公园焕新"}
    assert all(("观鸟" in p.text) == (p.article == "湿地公园焕新") for p in passages)


def test_three_articles_on_a_page_without_a_page_name():
    article = parse_article(
        page("## 跨河大桥通车", BODY["桥"], "记者 张三", "## 湿地公园焕新", BODY["园"], "## 新校区启用", BODY["校"], "记者 王五"),
        source="page.md",
    )
    assert article.page is None and titles(article) == ["跨河大桥通车", "湿地公园焕新", "新校区启用"]


def test_a_heading_printed_after_its_article_at_the_end_is_put_back():
    article = parse_article(
        page("# 城市版", "## 跨河大桥通车", BODY["桥"], BODY["桥2"], "\n\n" + BODY["园"], BODY["园2"], "通讯员 李四",
             "## 湿地公园焕新", BODY["园"][:20]),
        source="page.md",
    )  # fmt: skip
    assert titles(article) == ["跨河大桥通车", "湿地公园焕新"]
    assert article_of(article, "观鸟平台") == "湿地公园焕新" and article_of(article, "四十分钟") == "跨河大桥通车"
    assert article.stories[1].byline == "通讯员 李四"
    assert any("移回" in r for r in article.stories[1].repairs) and any("重复" in r for r in article.stories[1].repairs)


def test_a_heading_printed_after_its_article_in_the_middle_is_put_back():
    article = parse_article(
        page("# 城市版", "## 跨河大桥通车", BODY["桥"], "记者 张三", "\n\n" + BODY["园"], BODY["园2"],
             "## 湿地公园焕新", BODY["园2"], "## 新校区启用", BODY["校"], BODY["校2"], "记者 王五"),
        source="page.md",
    )  # fmt: skip
    assert titles(article) == ["跨河大桥通车", "湿地公园焕新", "新校区启用"]
    assert article_of(article, "观鸟平台") == "湿地公园焕新" and article_of(article, "走班教学") == "新校区启用"
    assert article.stories[0].byline == "记者 张三" and article.stories[1].byline is None


def test_without_a_break_in_the_page_nothing_moves_and_a_note_is_kept():
    article = parse_article(
        page("# 城市版", "## 跨河大桥通车", BODY["桥"], BODY["园"], "记者 张三", "## 湿地公园焕新", BODY["园"]),
        source="page.md",
    )
    assert titles(article) == ["跨河大桥通车"]
    assert article_of(article, "观鸟平台") == "跨河大桥通车"
    assert any("仅作备注" in r and "湿地公园焕新" in r for r in article.stories[0].repairs)
    assert any("仅作备注" in r for r in article.repairs)  # the manifest lists it too


NO_BREAK = ("# 城市版", "## 跨河大桥通车", BODY["桥"], BODY["桥2"], BODY["园"], BODY["园2"], "记者 张三", "## 湿地公园焕新", BODY["园2"][:20])


def test_without_a_break_the_article_starts_where_the_topic_changes():
    encode = topic_encoder({"大桥": 0, "公园": 1})
    article = parse_article(page(*NO_BREAK), source="page.md", encode=encode)
    assert titles(article) == ["跨河大桥通车", "湿地公园焕新"]
    assert article_of(article, "观鸟平台") == "湿地公园焕新" and article_of(article, "四十分钟") == "跨河大桥通车"
    assert article.stories[1].byline == "记者 张三"
    assert any("按话题转换处" in r for r in article.stories[1].repairs)


def test_without_a_break_or_a_clear_change_of_topic_nothing_moves():
    def encode(texts):  # every paragraph as unlike its neighbours as any other
        return np.eye(len(texts))

    article = parse_article(page(*NO_BREAK), source="page.md", encode=encode)
    assert titles(article) == ["跨河大桥通车"] and article_of(article, "观鸟平台") == "跨河大桥通车"
    assert any("话题也没有明显的转换处" in r for r in article.stories[0].repairs)


def test_an_index_build_looks_for_the_change_of_topic_with_the_index_model(settings, tiny_corpus, hashing_embedder, tokenizer):
    (tiny_corpus / "page.md").write_text(page(*NO_BREAK), encoding="utf-8")
    build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    assert [BODY["桥"], BODY["桥2"], BODY["园"], BODY["园2"]] in hashing_embedder.calls


def test_a_page_with_no_headings_is_one_article():
    article = parse_article(page(BODY["桥"], "记者 张三", "\n\n" + BODY["园"], "通讯员 李四"), source="page.md")
    assert article.stories == () and article.page is None and article.title == "page"


def test_a_single_article_file_is_unchanged():
    text = page("# 跨河大桥通车", BODY["桥"], "## 通行时间", BODY["桥2"], "## 沿线配套", BODY["园2"], "记者 张三")
    article = parse_article(text, source="a.md")
    assert article.stories == () and article.page is None and article.title == "跨河大桥通车"
    assert article_of(article, "四十分钟") == "跨河大桥通车"
    assert [p.headings for p in article.paragraphs] == [(), ("通行时间",), ("沿线配套",)]
    assert article.byline == "记者 张三"
