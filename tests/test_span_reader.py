"""The trained reader's assembly: windows in, a typed, trimmed, exact span out.

A stand-in span model that points at a chosen text lets each rule be tested apart from
what the shipped model happens to have learned; the shipped model is tested on the seed
in test_reader.py.
"""

import dataclasses
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.embed import USE_MODEL
from qa.reader import PassageInput, ReaderModel, RuleReader
from qa.span_reader import (
    ANSWERABLE_FEATURES,
    SPAN_FEATURES,
    SpanReader,
    SpanWeights,
    _balance,
)
from qa.span_windows import context_tokens
from qa.text import BRACKETS

from .conftest import query

PASSAGES = [
    PassageInput("新城际铁路今天开通。从新城站到中心站只要18分钟，比过去快了一倍。车站每天停靠列车40列。", 0.9, 0.5),
    PassageInput("南湖湿地公园占地1200亩。园内有三条步道，为市民提供了宝贵机遇和休闲去处。", 0.4, 0.3),
]
# The weights the shipped reader uses are fitted; these only need to prefer the model's pick.
PREFER_THE_MODEL = {"span_logit": 1.0, "sentence_logprob": 0.1, "fits_type": 1.0, "in_question": -1.0}
WEIGHTS = SpanWeights(
    np.array([PREFER_THE_MODEL.get(name, 0.0) for name in SPAN_FEATURES]),
    np.array([1.0, 0.0]),
    np.array([float(name == "rules_answerable") for name in ANSWERABLE_FEATURES]),
    0.01,
)


class PointingModel:
    """A span model that points at the first occurrence of `target` in the text it reads."""

    name = "pointing"

    def __init__(self, tokenizer, texts, target):
        self.tokenizer = tokenizer
        self._contexts = [context_tokens(tokenizer, t) for t in texts]
        self.target = target

    def logits(self, windows):
        width = max(len(w.ids) for w in windows)
        starts = np.zeros((len(windows), width), dtype=np.float32)
        ends = np.zeros((len(windows), width), dtype=np.float32)
        for row, w in enumerate(windows):
            starts[row, 0] = ends[row, 0] = 2.0  # "not here"
            for context in self._contexts:
                first, last = w.token_range
                if context.ids[first:last] != w.ids[w.context_start : w.context_start + last - first]:
                    continue
                at = context.text.find(self.target)
                inside = [t for t, (a, b) in enumerate(context.offsets) if b > at and a < at + len(self.target)]
                if at >= 0 and inside and first <= inside[0] and inside[-1] < last:
                    starts[row, w.position(inside[0])] = 10.0
                    ends[row, w.position(inside[-1])] = 10.0
        return starts, ends


@pytest.fixture(scope="module")
def rules(tokenizer):
    return RuleReader(tokenizer, ReaderModel.for_embedding(USE_MODEL))


@pytest.fixture(scope="module")
def text_tokenizer():
    from tokenizers import Tokenizer

    from qa.e5_wheel import model_folder

    return Tokenizer.from_file(str(model_folder() / "tokenizer.json"))


def reader_pointing_at(target, rules, text_tokenizer):
    return SpanReader(rules, PointingModel(text_tokenizer, [p.text for p in PASSAGES], target), WEIGHTS)


def marked(reading):
    answers = [a for a in reading.answers if a is not None]
    return max(answers, key=lambda a: a.confidence) if answers else None


def test_the_models_span_is_marked_with_exact_offsets(rules, text_tokenizer):
    reading = reader_pointing_at("18分钟", rules, text_tokenizer).read(query("从新城站到中心站要多久？"), PASSAGES)
    answer = marked(reading)
    assert answer.text == "18分钟"
    assert PASSAGES[0].text[answer.start : answer.end] == "18分钟"
    assert answer.sentence.start <= answer.start < answer.end <= answer.sentence.end
    assert 0.0 < answer.confidence <= 1.0


def test_punctuation_and_particles_at_the_edges_are_trimmed(rules, text_tokenizer):
    answer = marked(reader_pointing_at("18分钟，", rules, text_tokenizer).read(query("从新城站到中心站要多久？"), PASSAGES))
    assert answer.text == "18分钟"


@pytest.mark.parametrize(
    "question, wrong, fits",
    [
        # a figure is asked: a span without a numeral is never marked
        ("从新城站到中心站要多久？", "比过去快了", lambda text: re.search(r"[0-9一二两三四五六七八九十百千万亿]", text)),
        # a count is asked: a time is a figure, but not of trains
        ("车站每天停靠多少列车？", "18分钟", lambda text: "分钟" not in text),
        # a date is asked
        ("新城际铁路什么时候开通？", "新城际铁路", lambda text: re.search(r"[0-9]|今天", text)),
        # a person is asked: a verb is not one
        ("湿地公园是谁建的？", "提供了", lambda text: "提供了" not in text),
        # nor a clause that holds a word jieba tags as a name (宝贵)
        ("湿地公园是谁建的？", "园内有三条步道，为市民提供了宝贵机遇", lambda text: "，" not in text),
    ],
)
def test_a_span_of_the_wrong_kind_is_never_marked(rules, text_tokenizer, question, wrong, fits):
    reading = reader_pointing_at(wrong, rules, text_tokenizer).read(query(question), PASSAGES)
    assert all(fits(a.text) for a in reading.answers if a is not None)


def test_half_a_title_is_grown_to_the_whole_title(rules, text_tokenizer):
    titled = [PassageInput("市政府发布了《关于支持新城发展的措施》，为新城带来机遇。", 0.9, 0.5)]
    reader = SpanReader(rules, PointingModel(text_tokenizer, [p.text for p in titled], "《关于支持新城"), WEIGHTS)
    assert marked(reader.read(query("市政府发布了什么？"), titled)).text == "《关于支持新城发展的措施》"


def test_inner_quotation_marks_are_paired_too():
    text = "两地开展“周末去武清”“通武廊旅行‘清’计划”等专题推介。"
    start = text.index("通武廊")
    assert text[slice(*_balance(text, start, text.index("’"), 0, len(text)))] == "通武廊旅行‘清’"


def paired(span):
    """Every mark of each kind closed after it opens, none closed before."""
    for opening, closing in BRACKETS:
        depth = 0
        for mark in span:
            depth += (mark == opening) - (mark == closing)
            if depth < 0:
                return False
        if depth:
            return False
    return True


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="甲乙，《》“”‘’（）", max_size=24), st.integers(0, 24), st.integers(0, 24))
def test_a_span_comes_back_with_its_marks_paired_inside_its_sentence_or_empty(text, i, j):
    start, end = sorted((min(i, len(text)), min(j, len(text))))
    new_start, new_end = _balance(text, start, end, 0, len(text))
    assert 0 <= new_start <= new_end <= len(text)
    assert paired(text[new_start:new_end])
    if paired(text[start:end]):
        assert (new_start, new_end) == (start, end)


def test_thing_questions_take_any_span(rules, text_tokenizer):
    answer = marked(reader_pointing_at("三条步道", rules, text_tokenizer).read(query("园内有什么？"), PASSAGES))
    assert answer.text == "三条步道"


def test_shipped_weights_match_the_features_and_say_where_they_came_from():
    weights = SpanWeights.packaged()
    assert len(weights.span) == len(SPAN_FEATURES) and len(weights.confidence) == 2
    assert weights.provenance["fitted_on"] == "xquad_zh.json"
    assert weights.span[SPAN_FEATURES.index("span_logit")] > 0  # the model's own score counts for it


def test_weights_that_do_not_fit_the_encoder_are_refused_with_a_reason(tmp_path):
    import torch
    from safetensors.torch import save_file

    from qa.e5_wheel import PackedModelError
    from qa.span_model import SpanModel

    wrong = tmp_path / "wrong.safetensors"
    save_file({"classifier.weight": torch.zeros(2, 384)}, str(wrong))
    with pytest.raises(PackedModelError, match="does not fit"):
        SpanModel.from_weights(wrong)


def test_a_missing_weights_file_is_reported(tmp_path, hashing_embedder, tokenizer):
    from qa.assistant import Assistant
    from qa.build import build_index
    from qa.config import Settings
    from qa.errors import ReaderError

    from .conftest import SEED

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / SEED.name).write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    settings = Settings(index_dir=tmp_path / "index", corpus_dir=corpus, model=hashing_embedder.name)
    build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    with pytest.raises(ReaderError, match="no reader weights"):
        Assistant(dataclasses.replace(settings, reader=str(tmp_path / "nothing.safetensors")), embedder=hashing_embedder, tokenizer=tokenizer)


def test_a_span_across_two_sentences_is_cut_at_the_first_ones_end(rules, text_tokenizer):
    reading = reader_pointing_at("1200亩。园内有三条步道", rules, text_tokenizer).read(query("园内有什么？"), PASSAGES)
    for passage, answer in zip(PASSAGES, reading.answers):
        if answer is not None:
            assert answer.sentence.start <= answer.start < answer.end <= answer.sentence.end
            assert passage.text[answer.start : answer.end] == answer.text
    # cut after 1200亩; an open 什么 question then marks the clause that holds it
    assert any(a is not None and a.text == "南湖湿地公园占地1200亩" for a in reading.answers)


def test_a_why_question_marks_the_sentence_around_the_models_piece(rules, text_tokenizer):
    reader = reader_pointing_at("宝贵机遇", rules, text_tokenizer)
    answer = marked(reader.read(query("园内为什么修步道？"), PASSAGES))
    assert answer.text == "园内有三条步道，为市民提供了宝贵机遇和休闲去处"
    assert PASSAGES[1].text[answer.start : answer.end] == answer.text
    unextended = SpanReader(rules, reader.model, WEIGHTS, extent=False)
    assert marked(unextended.read(query("园内为什么修步道？"), PASSAGES)).text == "宝贵机遇"
