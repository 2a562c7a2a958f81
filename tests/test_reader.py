import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.candidates import span_fits
from qa.embed import DEFAULT_MODEL, USE_MODEL
from qa.question import AnswerType
from qa.reader import ANSWERABLE_FEATURES, SENTENCE_FEATURES, PassageInput, ReaderModel, RuleReader

from .conftest import DATA, query

# Measured with the default reader (README, “Seed corpus”); one more miss is a regression.
# The targets are 0, at most 1, and at most 1: the last two are not met yet.
EXACT_SPANS_MISSED = 1
PARAPHRASES_REFUSED = 9
UNANSWERABLE_ANSWERED = 2

PASSAGES = [
    PassageInput("新城际铁路今天开通。从新城站到中心站只要18分钟。车站每天停靠列车40列。", 0.9, 0.5),
    PassageInput("南湖湿地公园占地1200亩。园内有三条步道，每天早上六点开门。", 0.4, 0.3),
]


@pytest.fixture(scope="module")
def reader(tokenizer):
    # the cosines written into PASSAGES are on USE's scale
    return RuleReader(tokenizer, ReaderModel.for_embedding(USE_MODEL))


@pytest.mark.parametrize("embedding_model", [DEFAULT_MODEL, USE_MODEL])
def test_shipped_models_match_the_features_and_say_where_they_came_from(embedding_model):
    model = ReaderModel.for_embedding(embedding_model)
    assert model.provenance["embedding_model"] == embedding_model
    assert len(model.sentence_weights) == len(SENTENCE_FEATURES)
    assert len(model.answerable_weights) == len(ANSWERABLE_FEATURES)
    assert 0 < model.answerable_threshold < 1
    assert model.provenance["fitted_on"] == "cmrc2018_trial.json"
    assert "sentence_choice" in model.provenance["cross_validated"]


def test_another_embedding_model_is_read_with_uses_weights():
    use = ReaderModel.for_embedding(USE_MODEL)
    other = ReaderModel.for_embedding("BAAI/bge-small-zh-v1.5")
    assert np.array_equal(use.sentence_weights, other.sentence_weights)
    assert not np.array_equal(use.sentence_weights, ReaderModel.for_embedding(DEFAULT_MODEL).sentence_weights)


def most_confident(reading) -> int:
    return max(range(len(reading.answers)), key=lambda i: reading.answers[i].confidence if reading.answers[i] else -1.0)


@pytest.mark.parametrize(
    "question, answer, passages",
    [
        ("从新城站到中心站要多久？", "18分钟", PASSAGES),
        ("车站每天停靠多少列列车？", "40列", PASSAGES),
        ("新城际铁路什么时候开通？", "今天", PASSAGES),
        # in the order retrieval gives them: the park first
        ("湿地公园占地多少亩？", "1200亩", [dataclasses.replace(PASSAGES[1], retrieval_score=0.9, dense_score=0.5), dataclasses.replace(PASSAGES[0], retrieval_score=0.4, dense_score=0.3)]),
    ],
)
def test_typed_questions_get_the_exact_span(reader, question, answer, passages):
    reading = reader.read(query(question), passages)
    assert most_confident(reading) == 0 and not reading.no_answer
    found = reading.answers[0]
    assert found.text == answer
    assert passages[0].text[found.start : found.end] == answer
    sentence = passages[0].text[found.sentence.start : found.sentence.end]
    assert answer in sentence and 0 < found.confidence <= 1


def test_slot_alignment_answers_thing_questions(reader):
    passages = [PassageInput("作为车文化消费的重要载体，V1汽车世界以国际级别赛道为核心，聚焦专业赛车赛事。", 0.9, 0.5)]
    assert reader.read(query("V1汽车世界以什么为核心？"), passages).answers[0].text == "国际级别赛道"


def test_how_and_why_questions_are_answered_by_the_sentence(reader):
    reading = reader.read(query("南湖湿地公园怎么样？"), PASSAGES)
    answer = reading.answers[most_confident(reading)]
    assert answer.text == PASSAGES[1].text[answer.sentence.start : answer.sentence.end]


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="新城站中心多少久几点谁哪里什么公园铁路开门亩列车？的是12", min_size=1, max_size=20))
def test_answers_always_lie_inside_their_passage_and_sentence(reader, question):
    reading = reader.read(query(question), PASSAGES)
    assert 0.0 <= reading.answerable <= 1.0
    for passage, answer in zip(PASSAGES, reading.answers):
        if answer is None:
            continue
        assert 0 <= answer.sentence.start <= answer.start < answer.end <= answer.sentence.end <= len(passage.text)
        assert passage.text[answer.start : answer.end] == answer.text
        assert 0.0 <= answer.confidence <= 1.0


def load(name):
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()]


def test_seed_figures_dates_and_names_come_back_as_exact_spans(seed_assistant):
    typed = [q for q in load("seed_questions.jsonl") if "span" in q]
    missed = []
    for q in typed:
        hit = seed_assistant.ask(q["question"]).answer_hit
        if hit is None or hit.answer.text != q["span"]:
            missed.append((q["question"], hit.answer.text if hit else None))
    assert len(missed) <= EXACT_SPANS_MISSED, missed


def test_paraphrased_questions_are_answered(seed_assistant):
    refused = [q["question"] for q in load("seed_paraphrases.jsonl") if seed_assistant.ask(q["question"]).no_answer]
    assert len(refused) <= PARAPHRASES_REFUSED, refused


def test_questions_the_seed_cannot_answer_get_no_answer_or_at_least_the_right_kind(seed_assistant, tokenizer):
    questions = load("seed_unanswerable.jsonl")
    answered, wrong_kind = [], []
    for q in questions:
        response = seed_assistant.ask(q["question"])
        assert response.hits  # the closest passages are still there to read
        if response.answer_hit is None:
            continue
        answered.append(q["question"])
        for hit in response.hits:  # the span marked in every card, not only the answer line's
            if hit.answer is None:
                continue
            answer, sentence = hit.answer, hit.answer.sentence
            start = answer.start - sentence.start
            body = hit.passage.text[sentence.start : sentence.end]
            if not span_fits(AnswerType(q["type"]), body, start, start + len(answer.text), tokenizer):
                wrong_kind.append((q["question"], answer.text))
    assert len(answered) <= UNANSWERABLE_ANSWERED, answered
    assert wrong_kind == []
