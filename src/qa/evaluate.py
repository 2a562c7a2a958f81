"""Evaluate retrieval and answers on a SQuAD-style file (CMRC 2018 format).

Each paragraph of the file becomes an article in a temporary index, cut into passages
by the same chunker as the product. A retriever's ranking of passages is turned into a
ranking of paragraphs (first passage of each paragraph counts), and the gold paragraph's
rank gives recall@1, recall@5 and MRR@10. The answer is the one `ask` shows first
(`Response.answer_hit`, retrieval then the reader): `answer_in_sentence` is the share of
questions whose answer sentence contains a gold answer; `answer_em` and `answer_f1` compare the answer text with
the gold answers as CMRC 2018's official script does (punctuation and spaces removed, F1
over the longest common substring of characters, best over the gold answers). A question
answered "no answer" scores zero on all three. `reliability` bins the marked answers by
their confidence and gives how often each bin was right (F1 ≥ RIGHT_F1).

With `unanswerable` > 0, a seeded random share of the paragraphs is left out of the index:
their questions have no answer in it. Retrieval and answer metrics are then computed over
the answerable questions, and `no_answer_precision` / `no_answer_recall` say how well the
system recognises the others.
"""

from __future__ import annotations

import dataclasses
import json
import random
import string
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .assistant import Assistant
from .build import build_from_articles
from .config import Settings
from .embed import Embedder
from .errors import QAError
from .ingest import Article, parse_article
from .search import Mode
from .tokens import Tokenizer

__all__ = ["Question", "load_squad", "withhold", "evaluate", "answer_f1", "answer_em"]

MODES: tuple[Mode, ...] = ("bm25", "dense", "hybrid")
_RANK_DEPTH = 10
# A marked answer counts as right, for the reliability table, at this F1 with a gold answer.
RIGHT_F1 = 0.5
_PUNCTUATION = set(string.punctuation) | set("，。！？；：“”‘’「」『』（）《》〈〉【】、—…·～－　")


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    source: str  # the article (paragraph) that answers it
    answers: tuple[str, ...]


def load_squad(path: Path) -> tuple[list[Article], list[Question]]:
    """Articles (one per paragraph) and questions of a SQuAD-style JSON file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        documents = data["data"]
    except FileNotFoundError:
        raise QAError(f"evaluation file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise QAError(f"{path} is not a SQuAD-style JSON file with a top-level 'data' list ({error})") from None
    articles: list[Article] = []
    questions: list[Question] = []
    try:
        for d, document in enumerate(documents):
            for p, paragraph in enumerate(document["paragraphs"]):
                source = f"{path.name}#{paragraph.get('id', f'{d}-{p}')}"
                article = parse_article(paragraph["context"], source=source)
                articles.append(dataclasses.replace(article, title=document.get("title") or article.title))
                for qa in paragraph["qas"]:
                    answers = tuple(a["text"] for a in qa.get("answers", []) if a.get("text"))
                    questions.append(Question(qa["id"], qa["question"], source, answers))
    except (KeyError, TypeError) as error:
        raise QAError(f"{path}: a paragraph lacks 'context' or 'qas', or a question lacks 'id' or 'question' ({error})") from None
    if not questions:
        raise QAError(f"{path} contains no questions")
    return articles, questions


def withhold(articles: list[Article], fraction: float, *, seed: int) -> set[str]:
    """Sources of a seeded random `fraction` of the articles, to leave out of the index."""
    if not 0.0 <= fraction < 1.0:
        raise QAError(f"the unanswerable fraction must be within [0, 1), got {fraction}")
    count = round(len(articles) * fraction)
    return {a.source for a in random.Random(seed).sample(articles, count)}


def evaluate(
    path: Path,
    settings: Settings,
    *,
    embedder: Embedder,
    tokenizer: Tokenizer | None = None,
    unanswerable: float = 0.0,
    seed: int = 0,
    show_progress: bool = False,
) -> dict:
    started = time.perf_counter()
    tokenizer = tokenizer or Tokenizer()
    articles, questions = load_squad(path)
    withheld = withhold(articles, unanswerable, seed=seed)
    with tempfile.TemporaryDirectory(prefix="qa-eval-") as scratch:
        settings = dataclasses.replace(settings, index_dir=Path(scratch))
        indexed = [a for a in articles if a.source not in withheld]
        build_from_articles(indexed, settings, embedder=embedder, tokenizer=tokenizer, show_progress=show_progress)
        assistant = Assistant(settings, embedder=embedder, tokenizer=tokenizer)
        index = assistant.index
        passages = index.passage_count
        vectors = assistant.retriever.embed_questions([q.text for q in questions])
        depth = min(passages, max(settings.candidates, _RANK_DEPTH * 4))

        ranks: dict[Mode, list[int | None]] = {mode: [] for mode in MODES}
        in_sentence, exact, overlap = [], [], []
        said_no_answer, truly_unanswerable = [], []
        calibration: list[tuple[float, bool]] = []  # (confidence, right) of each marked answer
        for question, vector in tqdm(
            list(zip(questions, vectors)), desc="questions", unit="q", disable=not show_progress
        ):
            response = assistant.ask(question.text, question_vector=vector)
            said_no_answer.append(response.no_answer)
            truly_unanswerable.append(question.source in withheld)
            if question.source in withheld:
                continue
            for mode in MODES:
                results = assistant.retriever.search(question.text, k=depth, mode=mode, question_vector=vector)
                ranks[mode].append(_gold_rank([p.source for p in index.passages_at([r.index for r in results])], question.source))
            hit = response.answer_hit
            answer = hit.answer if hit else None
            predicted = answer.text if answer else ""
            sentence = hit.passage.text[answer.sentence.start : answer.sentence.end] if answer else ""
            in_sentence.append(any(gold in sentence for gold in question.answers))
            exact.append(max((answer_em(predicted, gold) for gold in question.answers), default=0.0))
            overlap.append(max((answer_f1(predicted, gold) for gold in question.answers), default=0.0))
            if answer:
                calibration.append((answer.confidence, overlap[-1] >= RIGHT_F1))

    retrievers = {mode: _retrieval_metrics(ranks[mode]) for mode in MODES}
    report = {
        "questions": len(questions),
        "paragraphs": len(articles),
        "passages": passages,
        "model": embedder.name,
        **retrievers["hybrid"],
        "retrievers": retrievers,
        "answer_in_sentence": _mean(in_sentence),
        "answer_em": _mean(exact),
        "answer_f1": _mean(overlap),
        "no_answer_rate": _mean(said_no_answer),
        "reliability": reliability(calibration),
    }
    if withheld:
        hits = sum(s and t for s, t in zip(said_no_answer, truly_unanswerable))
        report.update(
            {
                "unanswerable": unanswerable,
                "seed": seed,
                "answerable_questions": truly_unanswerable.count(False),
                "unanswerable_questions": truly_unanswerable.count(True),
                "no_answer_precision": round(hits / max(sum(said_no_answer), 1), 4),
                "no_answer_recall": round(hits / max(sum(truly_unanswerable), 1), 4),
            }
        )
    report["seconds"] = round(time.perf_counter() - started, 2)
    return report


def reliability(calibration: list[tuple[float, bool]], bins: int = 10) -> list[dict]:
    """Marked answers by confidence decile: how sure the reader said it was, and how often
    it was right (F1 ≥ RIGHT_F1), per bin that holds answers."""
    table = []
    for b in range(bins):
        inside = [(c, r) for c, r in calibration if b / bins <= c < (b + 1) / bins or (b == bins - 1 and c == 1.0)]
        if inside:
            table.append(
                {
                    "bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}",
                    "answers": len(inside),
                    "predicted": round(float(np.mean([c for c, _ in inside])), 3),
                    "observed": round(float(np.mean([r for _, r in inside])), 3),
                }
            )
    return table


def _gold_rank(sources: list[str], gold: str) -> int | None:
    """1-based rank of the gold paragraph among distinct paragraphs, or None beyond depth."""
    seen: list[str] = []
    for source in sources:
        if source not in seen:
            seen.append(source)
            if source == gold:
                return len(seen)
            if len(seen) >= _RANK_DEPTH:
                break
    return None


def _retrieval_metrics(ranks: list[int | None]) -> dict:
    return {
        "recall@1": _mean([r == 1 for r in ranks]),
        "recall@5": _mean([r is not None and r <= 5 for r in ranks]),
        "mrr@10": _mean([1.0 / r if r is not None else 0.0 for r in ranks]),
    }


def _mean(values: list) -> float:
    return round(float(np.mean(values)), 4) if values else 0.0


def _normalise(text: str) -> str:
    return "".join(c for c in text.lower() if c not in _PUNCTUATION and not c.isspace())


def answer_em(prediction: str, gold: str) -> float:
    return float(bool(_normalise(gold)) and _normalise(prediction) == _normalise(gold))


def answer_f1(prediction: str, gold: str) -> float:
    """CMRC 2018 F1: longest common substring of normalised characters."""
    predicted, expected = _normalise(prediction), _normalise(gold)
    common = _longest_common_substring(predicted, expected)
    if not common:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def _longest_common_substring(a: str, b: str) -> int:
    best = 0
    previous = [0] * (len(b) + 1)
    for char_a in a:
        current = [0] * (len(b) + 1)
        for j, char_b in enumerate(b, 1):
            if char_a == char_b:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best
