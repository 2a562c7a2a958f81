"""The benchmark's corpus: realistic Chinese text at any size, and vectors for it.

Text. The phrases (comma-separated pieces of sentences) of the bundled article and of the
CMRC 2018 trial paragraphs are recombined, seeded, into new sentences of one to four
phrases, and those into paragraphs of 120–390 characters: one passage each, about six
sentences like the CMRC paragraphs. Every CMRC trial paragraph is written as an article of
its own among them, so that each of the 1,002 trial questions has one right answer in the
corpus and recall can be measured against distractors made of the same material.

Vectors. Embedding a million passages with the default model takes hours on two cores.
`ComposedEmbedder` gives a generated sentence the normalised sum of its phrases'
vectors (each phrase embedded once) and embeds everything else (the CMRC paragraphs'
sentences, questions) with the model itself. The build's embedding stage therefore measures the
composition, not the model; bench/run.py measures the model's throughput on a sample of
the generated sentences and reports both.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.embed import Embedder
from qa.evaluate import Question, load_squad
from qa.ingest import read_corpus
from qa.text import sentence_spans, simplified

ROOT = Path(__file__).resolve().parent.parent
CMRC = ROOT.parent / "shared" / "bench" / "cmrc2018_trial.json"

_PHRASE_END = "，"
_SENTENCE_END = "。"
_TRAILING = re.compile(r"[。！？；，、：…\s]+$")
# Phrases that would not survive as a piece of a new sentence: quotes and brackets that
# might not close, and marks that end or split a sentence.
_UNSAFE = re.compile(r"[“”‘’\"'「」『』（）()《》【】\[\]。！？；!?;\n]")
PARAGRAPH_CHARS = (120, 390)
PARAGRAPHS_PER_ARTICLE = 10


@dataclass(frozen=True)
class Material:
    phrases: tuple[str, ...]
    cmrc_articles: tuple[tuple[str, str], ...]  # (file name, markdown text)
    questions: tuple[Question, ...]  # sources: the CMRC articles' names before write_corpus places them


def load_material(cmrc: Path = CMRC) -> Material:
    texts = [a.text for a in read_corpus(ROOT / "corpus")[0]]
    articles, questions = load_squad(cmrc)
    texts += [a.text for a in articles]
    phrases: set[str] = set()
    for text in texts:
        for span in sentence_spans(text):
            sentence = _TRAILING.sub("", simplified(text[span.start : span.end]))
            for phrase in sentence.split(_PHRASE_END):
                phrase = phrase.strip()
                if 4 <= len(phrase) <= 40 and not _UNSAFE.search(phrase):
                    phrases.add(phrase)
    files = {a.source: f"cmrc-{i:04d}.md" for i, a in enumerate(articles)}
    cmrc_articles = tuple(
        (files[a.source], f"# {a.title}\n\n{a.text}") for a in articles
    )
    renamed = tuple(Question(q.id, q.text, files[q.source], q.answers) for q in questions)
    return Material(tuple(sorted(phrases)), cmrc_articles, renamed)


def write_corpus(folder: Path, passages: int, material: Material, *, seed: int = 0) -> list[Question]:
    """Write about `passages` passages of generated articles plus every CMRC paragraph.

    Returns the CMRC questions with their sources as written.
    """
    rng = random.Random(seed)
    generated = max(0, passages - 2 * len(material.cmrc_articles))  # CMRC paragraphs make ~2 passages each
    articles = -(-generated // PARAGRAPHS_PER_ARTICLE)
    # CMRC articles take random places among the generated ones: wherever the index breaks
    # a tie by position, it favours neither kind.
    slots = sorted(rng.sample(range(articles + len(material.cmrc_articles)), len(material.cmrc_articles)))
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for slot, (name, text) in zip(slots, material.cmrc_articles):
        written[name] = f"{slot:07d}-{name}"
        (folder / written[name]).write_text(text, encoding="utf-8")
    taken = set(slots)
    free = (n for n in range(articles + len(material.cmrc_articles)) if n not in taken)
    for number, start in zip(free, range(0, generated, PARAGRAPHS_PER_ARTICLE)):
        count = min(PARAGRAPHS_PER_ARTICLE, generated - start)
        paragraphs = [paragraph(rng, material.phrases) for _ in range(count)]
        title = _sentence(rng, material.phrases, phrases=1).rstrip(_SENTENCE_END)
        text = f"# {title}\n\n" + "\n\n".join(paragraphs)
        (folder / f"{number:07d}.md").write_text(text, encoding="utf-8")
    return [Question(q.id, q.text, written[q.source], q.answers) for q in material.questions]


def paragraph(rng: random.Random, phrases: Sequence[str]) -> str:
    """A generated paragraph of PARAGRAPH_CHARS characters: one passage."""
    target = rng.randint(*PARAGRAPH_CHARS)
    sentences: list[str] = []
    length = 0
    while True:
        sentence = _sentence(rng, phrases, phrases=rng.choice((1, 2, 2, 3, 3, 4)))
        if sentences and length + len(sentence) > PARAGRAPH_CHARS[1]:
            break
        sentences.append(sentence)
        length += len(sentence)
        if length >= target:
            break
    return "".join(sentences)


def _sentence(rng: random.Random, pool: Sequence[str], *, phrases: int) -> str:
    return _PHRASE_END.join(rng.sample(pool, phrases)) + _SENTENCE_END


class ComposedEmbedder:
    """Vectors of generated sentences composed from their phrases; the model for the rest.

    It answers to the model's name: the index it builds is searched with questions
    embedded by the model, exactly as the product does.
    """

    def __init__(self, model: Embedder, phrases: Sequence[str]) -> None:
        self.name = model.name
        self.dimension = model.dimension
        self._model = model
        self._row = {phrase: i for i, phrase in enumerate(phrases)}
        self._phrases = model.encode_passages(list(phrases))
        self.composed = 0
        self.embedded = 0

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._model.encode_queries(texts)

    def encode_passages(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        others: list[int] = []
        for i, text in enumerate(texts):
            rows = [self._row.get(p) for p in text.removesuffix(_SENTENCE_END).split(_PHRASE_END)]
            if text.endswith(_SENTENCE_END) and None not in rows:
                out[i] = self._phrases[rows].sum(axis=0)
            else:
                others.append(i)
        if others:
            out[others] = self._model.encode_passages([texts[i] for i in others], show_progress=show_progress)
        self.composed += len(texts) - len(others)
        self.embedded += len(others)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def save_questions(path: Path, questions: Sequence[Question]) -> None:
    path.write_text(
        json.dumps([{"id": q.id, "text": q.text, "source": q.source, "answers": list(q.answers)} for q in questions], ensure_ascii=False),
        encoding="utf-8",
    )


def load_questions(path: Path) -> list[Question]:
    return [Question(q["id"], q["text"], q["source"], tuple(q["answers"])) for q in json.loads(path.read_text(encoding="utf-8"))]
