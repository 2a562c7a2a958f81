"""Lexical tokens for BM25 and the query terms shown as highlights.

A document's tokens are jieba's search-mode words plus the character unigrams and
bigrams of each CJK run (prefixed with `#` so they never collide with words). Measured
on CMRC 2018 trial paragraphs (README, "Retrieval"): words alone R@1 0.964, words with
character n-grams 0.976. The n-grams rescue words that jieba segments differently in the
question and in the article; the words reward matches that agree on segmentation.
"""

from __future__ import annotations

import logging
import re
from functools import cached_property, lru_cache
from threading import Lock

import jieba

from . import jieba_dictionary
from .text import fold, is_cjk

__all__ = ["Tokenizer", "QUESTION_WORDS"]

# Words that shape a question but say nothing about its subject; dropped from queries
# (not from documents, whose statistics stay intact).
QUESTION_WORDS = frozenset(
    """
    的 了 是 在 和 与 及 或 吗 呢 吧 啊 呀 么 什么 啥 哪 哪些 哪个 哪里 哪儿 哪年 哪天 多少 几 几个 多久 多长
    怎么 怎样 怎么样 如何 为什么 为何 谁 何 何时 是否 有没有 是不是 有 被 把 对 为 之 其 请问 一下 告诉 我 你
    """.split()
)

_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0002fa1f]+|[a-z0-9]+(?:\.[0-9]+)?")
_WORDLIKE = re.compile(r"\w")


class Tokenizer:
    """jieba words + character n-grams, over case- and width-folded text.

    Owns its own `jieba.Tokenizer`, so settings never leak between users of jieba.
    """

    name = "jieba-search+char-1-2gram"

    def __init__(self) -> None:
        logging.getLogger("jieba").setLevel(logging.WARNING)
        self._jieba = jieba.Tokenizer()
        self._lock = Lock()
        # Tagging is the costliest step of reading and fact-checking, and the same passages
        # come back question after question.
        self._tagged = lru_cache(maxsize=8192)(self._tag)

    def warm_up(self, *, tagging: bool = False) -> None:
        """Load jieba's dictionary (and with `tagging`, the part-of-speech tables) now
        rather than on the first question."""
        with self._lock:
            jieba_dictionary.initialize(self._jieba)
        if tagging:
            _ = self._tagger  # built on first access

    @cached_property
    def _tagger(self) -> jieba.posseg.POSTokenizer:
        """Part-of-speech tagging, for readers and fact-checks only: importing its tables
        takes a quarter of a second, which an index update that only tokenizes need not pay.

        Importing jieba.posseg reads the dictionary's word tags once (for its default
        tagger); this tagger shares that table instead of reading the file again (another
        half second at start-up). Both use jieba's default dictionary and no user words,
        so the tables are the same.
        """
        import jieba.posseg

        with self._lock:
            tagger = jieba.posseg.POSTokenizer.__new__(jieba.posseg.POSTokenizer)
            tagger.tokenizer = self._jieba
            tagger.word_tag_tab = jieba.posseg.dt.word_tag_tab
            return tagger

    def words(self, text: str) -> list[str]:
        """jieba search-mode words of folded text, punctuation and spaces dropped."""
        self.warm_up()
        return [w for w in self._jieba.cut_for_search(fold(text)) if _WORDLIKE.search(w) and not w.isspace()]

    def tag(self, text: str, *, new_words: bool = True) -> list[tuple[str, str, int, int]]:
        """(word, part-of-speech flag, start, end) for every word of `text`, in order.

        `new_words=False` skips jieba's hidden Markov model for words missing from its
        dictionary (names it has never seen): ten times faster, for a first look.
        """
        return list(self._tagged(text, new_words))

    def _tag(self, text: str, new_words: bool) -> tuple[tuple[str, str, int, int], ...]:
        self.warm_up()
        tagged = []
        position = 0
        for pair in self._tagger.cut(fold(text), HMM=new_words):
            end = position + len(pair.word)
            tagged.append((text[position:end], pair.flag, position, end))
            position = end
        return tuple(tagged)

    def document_tokens(self, text: str) -> list[str]:
        return self.words(text) + _char_ngrams(fold(text))

    def query_tokens(self, question: str) -> list[str]:
        """Tokens of the question's subject: question words and their characters left out."""
        self.warm_up()
        folded = fold(question)
        masked = list(folded)
        for word, start, end in self._jieba.tokenize(folded):
            if word in QUESTION_WORDS:
                masked[start:end] = " " * (end - start)
        words = [w for w in self.words(folded) if w not in QUESTION_WORDS]
        return words + _char_ngrams("".join(masked))

    def query_terms(self, question: str) -> list[str]:
        """Distinct words of the question worth highlighting in a passage, longest first."""
        self.warm_up()
        terms = {
            w
            for w in self._jieba.cut(fold(question))
            if _WORDLIKE.search(w) and w not in QUESTION_WORDS and (len(w) >= 2 or not is_cjk(w))
        }
        return sorted(terms, key=lambda t: (-len(t), t))


def _char_ngrams(folded: str) -> list[str]:
    grams: list[str] = []
    for run in _RUN.findall(folded):
        if not is_cjk(run[0]):
            grams.append("#" + run)
            continue
        grams.extend("#" + c for c in run)
        grams.extend("#" + run[i : i + 2] for i in range(len(run) - 1))
    return grams
