"""An index updated article by article ranks exactly as one built from scratch, and a live
assistant answers throughout.

    python bench/consistency.py --passages 10000 --operations 200 [--json]

On bench/corpus.py's generated corpus (with every CMRC 2018 trial paragraph), indexed
once, `--operations` single-article edits follow, each followed by `build_index` (merges
included): a new article, a changed one (a paragraph rewritten or added) or a removed one
(never a trial article, so every question keeps its answer). Meanwhile a thread asks the
trial questions without pause through an `Assistant` following the index, recording
errors and the longest answer time. Then a fresh index is built from the final corpus,
and every trial question's top 10 (hybrid, and BM25 and dense alone) is compared: the
same passages in the same order, scores equal within 1e-5.

Sentence vectors are bench/corpus.py's composed ones, and each distinct sentence is
embedded once for both indexes (`Remembered`): the int8 ONNX model's output for a
sentence shifts slightly with the batch it is embedded in (activations are quantised per
batch), so a fresh build would otherwise see other vectors for the trial paragraphs.
What is compared is the index, not the model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from qa.assistant import Assistant
from qa.build import build_index
from qa.config import Settings
from qa.embed import load_embedder
from qa.search import Retriever
from qa.store import load_snapshot
from qa.tokens import Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import ComposedEmbedder, load_material, paragraph, write_corpus  # noqa: E402
from measure import percentiles  # noqa: E402

TOP = 10
TOLERANCE = 1e-5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=10_000)
    parser.add_argument("--operations", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exact-max-vectors", type=int, default=None, help="exact dense search up to this many vectors a segment")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qa-consistency-") as scratch:
        report = run(Path(scratch), args.passages, args.operations, args.seed, args.exact_max_vectors)
    print(json.dumps(report, ensure_ascii=False, indent=None if args.json else 2))


def run(work: Path, passages: int, operations: int, seed: int, exact_max_vectors: int | None) -> dict:
    rng = random.Random(seed)
    material = load_material()
    corpus = work / "corpus"
    questions = write_corpus(corpus, passages, material, seed=seed)
    embedder = Remembered(ComposedEmbedder(load_embedder(), material.phrases))
    tokenizer = Tokenizer()
    settings = Settings(index_dir=work / "updated", corpus_dir=corpus)
    if exact_max_vectors is not None:
        settings = dataclasses.replace(settings, dense_exact_max_vectors=exact_max_vectors)
    build_index(settings, embedder=embedder, tokenizer=tokenizer)

    assistant = Assistant(settings, embedder=embedder, tokenizer=tokenizer)
    stop = threading.Event()
    asked: list[float] = []
    errors: list[str] = []

    def ask_all_the_time() -> None:
        number = 0
        while not stop.is_set():
            started = time.perf_counter()
            try:
                response = assistant.ask(questions[number % len(questions)].text, cached=False)
                if not response.hits:
                    errors.append(f"no hits for {questions[number % len(questions)].text}")
            except Exception as error:  # noqa: BLE001 — anything raised is what is measured
                errors.append(repr(error))
            asked.append(time.perf_counter() - started)
            number += 1

    asker = threading.Thread(target=ask_all_the_time)
    asker.start()
    counts = {"add": 0, "change": 0, "remove": 0}
    merged = 0
    update_seconds = []
    trial = {q.source for q in questions}
    try:
        for number in range(operations):
            generated = sorted(p for p in corpus.glob("*.md") if p.name not in trial)
            kind = rng.choices(("add", "change", "remove"), weights=(2, 2, 1))[0]
            if kind == "add":
                text = "\n\n".join(paragraph(rng, material.phrases) for _ in range(rng.randint(1, 10)))
                (corpus / f"added-{number:04d}.md").write_text(f"# 新增{number}\n\n{text}", encoding="utf-8")
            elif kind == "change":
                target = rng.choice(generated)
                paragraphs = target.read_text(encoding="utf-8").split("\n\n")
                paragraphs[rng.randrange(1, len(paragraphs))] = paragraph(rng, material.phrases)
                if rng.random() < 0.5:
                    paragraphs.append(paragraph(rng, material.phrases))
                target.write_text("\n\n".join(paragraphs), encoding="utf-8")
            else:
                rng.choice(generated).unlink()
            counts[kind] += 1
            started = time.perf_counter()
            summary = build_index(settings, embedder=embedder, tokenizer=tokenizer)
            update_seconds.append(time.perf_counter() - started)
            merged += summary.merged
    finally:
        stop.set()
        asker.join()

    fresh_settings = dataclasses.replace(settings, index_dir=work / "fresh")
    build_index(fresh_settings, embedder=embedder, tokenizer=tokenizer)
    updated, fresh = load_snapshot(settings.index_dir), load_snapshot(fresh_settings.index_dir)
    vectors = embedder.encode_queries([q.text for q in questions])
    differences = {}
    for mode in ("hybrid", "bm25", "dense"):
        differing = 0
        for question, vector in zip(questions, vectors):
            tops = [_top(snapshot, settings, embedder, tokenizer, question.text, vector, mode) for snapshot in (updated, fresh)]
            same_ids = [i for i, _ in tops[0]] == [i for i, _ in tops[1]]
            same_scores = np.allclose([s for _, s in tops[0]], [s for _, s in tops[1]], atol=TOLERANCE, rtol=0)
            differing += not (same_ids and same_scores)
        differences[mode] = differing
    return {
        "passages": {"updated": updated.manifest.passages, "fresh": fresh.manifest.passages},
        "operations": counts,
        "segments": {"updated": len(updated.manifest.segments), "fresh": len(fresh.manifest.segments)},
        "segments_merged": merged,
        "exact_max_vectors": settings.dense_exact_max_vectors,
        "dense_factories": sorted({s.vectors.factory for s in updated.segments} | {s.vectors.factory for s in fresh.segments}),
        "questions": len(questions),
        "questions_with_a_different_top10": differences,
        "update_ms": percentiles(update_seconds),
        "live_answers": {"asked": len(asked), "errors": len(errors), "first_errors": errors[:3], "ms": percentiles(asked), "longest_ms": round(max(asked) * 1000, 1)},
    }


class Remembered:
    """An embedder that embeds each distinct text once and then returns the same vector."""

    def __init__(self, embedder) -> None:
        self.name, self.dimension = embedder.name, embedder.dimension
        self._embedder = embedder
        self._known: dict[str, np.ndarray] = {}

    def encode_queries(self, texts):
        return self._embedder.encode_queries(texts)

    def encode_passages(self, texts, *, show_progress: bool = False) -> np.ndarray:
        new = [t for t in dict.fromkeys(texts) if t not in self._known]
        if new:
            self._known.update(zip(new, self._embedder.encode_passages(new, show_progress=show_progress)))
        return np.stack([self._known[t] for t in texts]) if texts else np.zeros((0, self.dimension), np.float32)


def _top(snapshot, settings, embedder, tokenizer, question, vector, mode) -> list[tuple[str, float]]:
    retriever = Retriever(snapshot, embedder=embedder, tokenizer=tokenizer, settings=settings)
    results = retriever.search(question, k=TOP, mode=mode, question_vector=vector)
    return [(p.id, r.score) for p, r in zip(retriever.passages(results), results)]


if __name__ == "__main__":
    main()
