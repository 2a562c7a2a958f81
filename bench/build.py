"""Build side of the benchmark, run by bench/run.py in a fresh process.

    python bench/build.py --passages N --work DIR [--seed 0]

Writes the generated corpus and its questions into DIR, builds DIR/index with
`qa.build.build_index` (vectors composed as bench/corpus.py explains), measures the
embedding model's own throughput on generated sentences, and prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from qa.build import build_index
from qa.config import Settings
from qa.embed import load_embedder
from qa.text import sentence_spans

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import ComposedEmbedder, load_material, paragraph, save_questions, write_corpus  # noqa: E402
from measure import memory_mb  # noqa: E402

EMBED_SAMPLE = 2000  # generated sentences embedded by the model to measure its speed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passages", type=int, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    material = load_material()
    corpus = args.work / "corpus"
    started = time.perf_counter()
    save_questions(args.work / "questions.json", write_corpus(corpus, args.passages, material, seed=args.seed))
    generate_seconds = time.perf_counter() - started

    model = load_embedder()
    embedder = ComposedEmbedder(model, material.phrases)
    summary = build_index(Settings(index_dir=args.work / "index", corpus_dir=corpus), embedder=embedder, rebuild=True)
    memory = memory_mb()
    print(
        json.dumps(
            {
                "passages": summary.passages,
                "model": model.name,
                "articles": summary.articles,
                "seconds": summary.seconds,
                "stages": summary.stages,
                "memory_mb": memory,
                "generate_seconds": round(generate_seconds, 1),
                "phrases": len(material.phrases),
                "composed_sentences": embedder.composed,
                "embedded_sentences": embedder.embedded,
                "model_sentences_per_s": _model_sentences_per_second(model, material.phrases, args.seed),
            }
        )
    )


def _model_sentences_per_second(model, phrases, seed: int) -> float:
    """The embedding model's own speed, in sentences a second, on generated sentences."""
    rng = random.Random(seed + 1)
    sample: list[str] = []
    while len(sample) < EMBED_SAMPLE:
        text = paragraph(rng, phrases)
        sample.extend(text[s.start : s.end] for s in sentence_spans(text))
    model.encode_passages(sample[:64])
    started = time.perf_counter()
    model.encode_passages(sample)
    return round(len(sample) / (time.perf_counter() - started), 1)


if __name__ == "__main__":
    main()
