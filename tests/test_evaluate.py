import json

import pytest

from qa.config import RULES_READER, Settings
from qa.errors import QAError
from qa.evaluate import answer_em, answer_f1, evaluate, load_squad, reliability

SQUAD = {
    "version": "v1.0",
    "data": [
        {
            "id": "d1",
            "title": "铁路",
            "paragraphs": [
                {
                    "id": "p1",
                    "context": "新城际铁路今天开通。从新城站到中心站只要18分钟。",
                    "qas": [
                        {"id": "q1", "question": "从新城站到中心站要多久？", "answers": [{"text": "18分钟", "answer_start": 20}]},
                        {"id": "q2", "question": "新城际铁路什么时候开通？", "answers": [{"text": "今天", "answer_start": 5}]},
                    ],
                }
            ],
        },
        {
            "id": "d2",
            "title": "公园",
            "paragraphs": [
                {
                    "id": "p2",
                    "context": "南湖湿地公园占地1200亩。园内有三条步道，每天早上六点开门。",
                    "qas": [
                        {"id": "q3", "question": "南湖湿地公园占地多少亩？", "answers": [{"text": "1200亩", "answer_start": 8}]},
                        {"id": "q4", "question": "湿地公园几点开门？", "answers": [{"text": "六点", "answer_start": 26}]},
                    ],
                },
                {
                    "id": "p3",
                    "context": "图书馆新增藏书五万册，周末延长开放时间。",
                    "qas": [{"id": "q5", "question": "图书馆新增多少藏书？", "answers": [{"text": "五万册", "answer_start": 7}]}],
                },
            ],
        },
    ],
}


@pytest.fixture
def squad_file(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(SQUAD, ensure_ascii=False), encoding="utf-8")
    return path


def test_each_paragraph_becomes_an_article_and_each_question_knows_its_paragraph(squad_file):
    articles, questions = load_squad(squad_file)
    assert [a.title for a in articles] == ["铁路", "公园", "公园"]
    assert [q.source for q in questions] == ["tiny.json#p1", "tiny.json#p1", "tiny.json#p2", "tiny.json#p2", "tiny.json#p3"]
    assert questions[0].answers == ("18分钟",)


def test_report_has_the_contract_fields_and_exact_metrics(squad_file, hashing_embedder, tokenizer):
    # the rule reader: its answers on this file are known exactly
    report = evaluate(squad_file, Settings(reader=RULES_READER), embedder=hashing_embedder, tokenizer=tokenizer)
    assert report["questions"] == 5 and report["paragraphs"] == 3 and report["passages"] == 3
    assert set(report["retrievers"]) == {"bm25", "dense", "hybrid"}
    for metrics in report["retrievers"].values():
        assert set(metrics) == {"recall@1", "recall@5", "mrr@10"}
    assert report["retrievers"]["bm25"] == {"recall@1": 1.0, "recall@5": 1.0, "mrr@10": 1.0}
    assert report["recall@1"] == report["retrievers"]["hybrid"]["recall@1"] == 1.0
    # every answer is found in its sentence; four spans are exact, and q4 answers
    # "早上六点" for the gold "六点" (F1 2/3): (4 + 2/3) / 5
    assert report["answer_in_sentence"] == 1.0
    assert report["answer_em"] == 0.8 and report["answer_f1"] == pytest.approx(0.9333, abs=1e-4)
    assert report["no_answer_rate"] == 0.0
    assert report["seconds"] >= 0


def test_reliability_bins_compare_stated_and_observed_confidence():
    table = reliability([(0.95, True), (0.91, False), (0.15, False), (1.0, True), (0.12, True)])
    assert table == [
        {"bin": "0.1-0.2", "answers": 2, "predicted": 0.135, "observed": 0.5},
        {"bin": "0.9-1.0", "answers": 3, "predicted": 0.953, "observed": 0.667},
    ]


def test_cmrc_metrics():
    assert answer_em("“18分钟”。", "18分钟") == 1.0
    assert answer_em("18 分钟", "18分钟") == 1.0
    assert answer_em("19分钟", "18分钟") == 0.0
    # 17 predicted characters, 4 in common: precision 4/17, recall 1
    assert answer_f1("坐上京津城际22分钟就能到北京南站", "22分钟") == pytest.approx(8 / 21)
    assert answer_f1("完全不同", "22分钟") == 0.0
    assert answer_f1("", "22分钟") == 0.0


@pytest.mark.parametrize(
    "content, message",
    [("not json", "SQuAD-style"), ('{"data": [{"paragraphs": [{"qas": []}]}]}', "context"), ('{"data": []}', "no questions")],
)
def test_malformed_files_are_explained(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(QAError, match=message):
        load_squad(path)


def test_missing_file_is_explained(tmp_path):
    with pytest.raises(QAError, match="not found"):
        load_squad(tmp_path / "missing.json")
