"""Question + context windows for the span model, defined once for training and serving.

A window is `<s> question </s></s> context piece </s>` in the XLM-R vocabulary, at most
`WINDOW_TOKENS` long. The context piece is made of whole sentences grown around an anchor
(the answer's sentence in training, a sentence the reader picked in serving), so the model
is trained on the same kind of text it reads. Positions map back to exact character
offsets in the context through the tokenizer's offsets.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from .text import sentence_spans

__all__ = ["ContextTokens", "MAX_ANSWER_TOKENS", "Window", "WINDOW_TOKENS", "batch_arrays", "context_tokens", "question_ids", "top_spans", "window"]

WINDOW_TOKENS = 192
MAX_QUESTION_TOKENS = 48
_BOS, _PAD, _EOS = 0, 1, 2


@dataclass(frozen=True)
class ContextTokens:
    """A context tokenized once: ids, character offsets, and each sentence's token range."""

    text: str
    ids: tuple[int, ...]
    offsets: tuple[tuple[int, int], ...]
    sentences: tuple[tuple[int, int], ...]  # token ranges [first, last + 1), one per sentence
    sentence_chars: tuple[tuple[int, int], ...]  # the same sentences as character ranges

    def sentence_of_char(self, position: int) -> int:
        for number, (start, end) in enumerate(self.sentence_chars):
            if position < end:
                return number
        return len(self.sentence_chars) - 1


@dataclass(frozen=True)
class Window:
    ids: tuple[int, ...]
    context_start: int  # position in `ids` of the first context token
    token_range: tuple[int, int]  # the context tokens it holds

    def char_span(self, context: ContextTokens, first: int, last: int) -> tuple[int, int]:
        """Character offsets in the context of window positions first..last (inclusive)."""
        base = self.token_range[0] - self.context_start
        return context.offsets[first + base][0], context.offsets[last + base][1]

    def positions_of(self, context: ContextTokens, start: int, end: int) -> tuple[int, int] | None:
        """Window positions of the first and last token of characters start..end of the
        context; None unless the window holds them all."""
        first, last = self.token_range
        inside = [t for t in range(first, last) if context.offsets[t][1] > start and context.offsets[t][0] < end]
        if not inside or context.offsets[inside[0]][0] > start or context.offsets[inside[-1]][1] < end:
            return None
        return self.position(inside[0]), self.position(inside[-1])

    def position(self, token: int) -> int:
        """Window position of context token `token`."""
        return self.context_start + token - self.token_range[0]


def question_ids(tokenizer, question: str) -> tuple[int, ...]:
    return tuple(tokenizer.encode(question, add_special_tokens=False).ids[:MAX_QUESTION_TOKENS])


def context_tokens(tokenizer, text: str) -> ContextTokens:
    encoding = tokenizer.encode(text, add_special_tokens=False)
    offsets = tuple((int(a), int(b)) for a, b in encoding.offsets)
    chars = tuple((s.start, s.end) for s in sentence_spans(text, clauses=False)) or ((0, len(text)),)
    ranges, token = [], 0
    for number, (_, end) in enumerate(chars):
        first = token
        last_sentence = number == len(chars) - 1
        while token < len(offsets) and (last_sentence or offsets[token][0] < end):
            token += 1
        ranges.append((first, token))
    return ContextTokens(text, tuple(encoding.ids), offsets, tuple(ranges), chars)


def window(
    question: tuple[int, ...],
    context: ContextTokens,
    anchor: tuple[int, int],
    rng: random.Random | None = None,
) -> Window:
    """The window holding context tokens `anchor` and as many whole neighbouring sentences
    as fit: alternately before and after, or in random order when `rng` is given (training).

    An anchor longer than the room is cut to its first tokens; a sentence longer than the
    room around the anchor is cut to the tokens nearest it."""
    room = WINDOW_TOKENS - len(question) - 4
    first, last = anchor
    if last - first >= room:
        first, last = first, first + room
    else:
        # the anchor's own sentences first, then neighbours
        lo = next(n for n, (a, b) in enumerate(context.sentences) if b > first or n == len(context.sentences) - 1)
        hi = next((n for n, (a, b) in enumerate(context.sentences) if b >= last), len(context.sentences) - 1)
        first = min(first, context.sentences[lo][0])
        last = max(last, context.sentences[hi][1])
        if last - first > room:  # a long sentence: cut around the anchor
            spare = room - (anchor[1] - anchor[0])
            before = rng.randint(0, spare) if rng else spare // 2
            first = max(context.sentences[lo][0], anchor[0] - before)
            last = min(first + room, context.sentences[hi][1])
            first = max(context.sentences[lo][0], last - room)
        else:
            left, right = lo - 1, hi + 1
            turn_left = rng.random() < 0.5 if rng else True
            while left >= 0 or right < len(context.sentences):
                take_left = (turn_left and left >= 0) or right >= len(context.sentences)
                if take_left:
                    a, _ = context.sentences[left]
                    if last - a > room:
                        left = -1
                    else:
                        first, left = a, left - 1
                else:
                    _, b = context.sentences[right]
                    if b - first > room:
                        right = len(context.sentences)
                    else:
                        last, right = b, right + 1
                turn_left = (rng.random() < 0.5) if rng else not turn_left
    ids = (_BOS, *question, _EOS, _EOS, *context.ids[first:last], _EOS)
    return Window(ids, len(question) + 3, (first, last))


def batch_arrays(windows: list[Window]) -> tuple[np.ndarray, np.ndarray]:
    """input_ids and attention_mask for a batch, padded to its longest window."""
    width = max(len(w.ids) for w in windows)
    ids = np.full((len(windows), width), _PAD, dtype=np.int64)
    mask = np.zeros((len(windows), width), dtype=np.int64)
    for row, w in enumerate(windows):
        ids[row, : len(w.ids)] = w.ids
        mask[row, : len(w.ids)] = 1
    return ids, mask


MAX_ANSWER_TOKENS = 32


def top_spans(window: Window, start_logits: np.ndarray, end_logits: np.ndarray, k: int = 5) -> list[tuple[float, int, int]]:
    """The `k` best (score, first, last) context positions of a window: score = start +
    end logit, first ≤ last, at most MAX_ANSWER_TOKENS long."""
    lo, hi = window.context_start, window.context_start + window.token_range[1] - window.token_range[0]
    starts, ends = start_logits[lo:hi], end_logits[lo:hi]
    pair = starts[:, None] + ends[None, :]
    n = hi - lo
    allowed = np.triu(np.ones((n, n), dtype=bool)) & ~np.triu(np.ones((n, n), dtype=bool), MAX_ANSWER_TOKENS)
    pair = np.where(allowed, pair, -np.inf)
    flat = np.argsort(pair, axis=None)[::-1][:k]
    return [(float(pair.flat[f]), lo + int(f // n), lo + int(f % n)) for f in flat if np.isfinite(pair.flat[f])]
