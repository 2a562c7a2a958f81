"""Windows for the span model: whole sentences around an anchor, exact offsets back."""

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.e5_wheel import model_folder
from qa.span_windows import (
    MAX_ANSWER_TOKENS,
    WINDOW_TOKENS,
    Window,
    batch_arrays,
    context_tokens,
    question_ids,
    top_spans,
    window,
)

SEED_TEXT = (
    "武清区位于天津市西北部。2019年，武清区引进项目300个，总投资500亿元。"
    "京津城际在武清设站，到北京南站只要22分钟。这是一个很长的句子，" + "用来把窗口撑满，" * 40 + "结束。最后一句。"
)


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(model_folder() / "tokenizer.json"))


def test_sentences_cover_every_token_once(tokenizer):
    context = context_tokens(tokenizer, SEED_TEXT)
    ranges = context.sentences
    assert ranges[0][0] == 0 and ranges[-1][1] == len(context.ids)
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    for (first, last), (a, b) in zip(ranges, context.sentence_chars):
        assert all(a <= context.offsets[t][0] < b for t in range(first, last) if context.offsets[t][1] > context.offsets[t][0])


def test_a_window_holds_its_anchor_and_whole_neighbouring_sentences(tokenizer):
    context = context_tokens(tokenizer, SEED_TEXT)
    question = question_ids(tokenizer, "武清区引进了多少个项目？")
    w = window(question, context, context.sentences[1])
    assert len(w.ids) <= WINDOW_TOKENS
    first, last = w.token_range
    assert first <= context.sentences[1][0] and context.sentences[1][1] <= last
    starts = {a for a, _ in context.sentences}
    assert first in starts  # whole sentences: it starts where a sentence starts
    assert w.ids[: len(question) + 3] == (0, *question, 2, 2) and w.ids[-1] == 2


def test_a_sentence_longer_than_the_window_is_cut_around_the_anchor(tokenizer):
    context = context_tokens(tokenizer, SEED_TEXT)
    long = max(range(len(context.sentences)), key=lambda n: context.sentences[n][1] - context.sentences[n][0])
    a, b = context.sentences[long]
    assert b - a > WINDOW_TOKENS
    anchor = (a + 150, a + 153)
    w = window(question_ids(tokenizer, "问题？"), context, anchor)
    assert len(w.ids) <= WINDOW_TOKENS
    assert w.token_range[0] <= anchor[0] and anchor[1] <= w.token_range[1]


def test_positions_map_back_to_exact_characters(tokenizer):
    context = context_tokens(tokenizer, SEED_TEXT)
    w = window(question_ids(tokenizer, "多久？"), context, context.sentences[2])
    answer = SEED_TEXT.index("22分钟")
    inside = [t for t, (s, e) in enumerate(context.offsets) if e > answer and s < answer + 4]
    start, end = w.char_span(context, w.position(inside[0]), w.position(inside[-1]))
    assert SEED_TEXT[start:end] == "22分钟"


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), sentence=st.integers(0, 5))
def test_random_growth_keeps_the_anchor_and_the_limit(tokenizer, seed, sentence):
    context = context_tokens(tokenizer, SEED_TEXT)
    anchor = context.sentences[min(sentence, len(context.sentences) - 1)]
    anchor = (anchor[0], min(anchor[1], anchor[0] + 20))
    w = window(question_ids(tokenizer, "武清区引进了多少个项目？"), context, anchor, random.Random(seed))
    assert len(w.ids) <= WINDOW_TOKENS
    assert w.token_range[0] <= anchor[0] and anchor[1] <= w.token_range[1]


def test_top_spans_are_ordered_bounded_and_inside_the_context():
    w = Window(ids=(0, 5, 2, 2, *range(10, 60), 2), context_start=4, token_range=(0, 50))
    rng = np.random.default_rng(0)
    starts, ends = rng.normal(size=55), rng.normal(size=55)
    starts[0] = ends[0] = 100.0  # "not here" is never proposed as a span
    spans = top_spans(w, starts, ends, k=5)
    assert [s for s, _, _ in spans] == sorted((s for s, _, _ in spans), reverse=True)
    for score, first, last in spans:
        assert 4 <= first <= last < 54 and last - first < MAX_ANSWER_TOKENS
        assert score == pytest.approx(starts[first] + ends[last])


def test_batches_are_padded_with_a_mask():
    short = Window((0, 7, 2, 2, 9, 2), 4, (0, 1))
    long = Window((0, 7, 2, 2, 9, 9, 9, 2), 4, (0, 3))
    ids, mask = batch_arrays([short, long])
    assert ids.shape == mask.shape == (2, 8)
    assert mask[0].tolist() == [1] * 6 + [0, 0] and ids[0, 6:].tolist() == [1, 1]
