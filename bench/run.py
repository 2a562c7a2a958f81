"""Performance at scale, side by side with a peer pipeline, on one generated corpus.

    python bench/run.py --passages 100000 [--json] [--work DIR] [--peer-limit N]

1. Writes a seeded corpus of about N passages (bench/corpus.py: recombined phrases of the
   bundled article and the CMRC 2018 trial paragraphs, with every trial paragraph mixed in).
2. Builds the index with `qa.build.build_index`, timing each stage; the embedding model's
   own throughput is measured on a sample of the generated sentences (see corpus.py for
   how the vectors of a large corpus are made).
3. In a fresh process (bench/serve.py): cold start to first answer, warm latency of bm25,
   dense, hybrid and `ask` over the 1,002 trial questions, recall@1, memory, and for an
   approximate dense index its recall@10 against exact search.
4. In another fresh process (bench/peer.py): the peer pipeline on the same index and
   questions (`--peer-limit` asks only the first N questions of it; 0 skips it).
Needs ../shared/bench/cmrc2018_trial.json and the `bench` extra (rank_bm25).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from qa.build import build_index
from qa.config import Settings
from qa.embed import load_embedder
from qa.store import load_snapshot

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from corpus import ComposedEmbedder, load_material, save_questions, write_corpus  # noqa: E402
from serve import _memory  # noqa: E402

EMBED_SAMPLE = 2000  # generated sentences embedded by the model to measure its speed
STAGES = ("read", "chunk", "tokenize", "embed", "bm25", "faiss", "write")
DENSE_FILES = ("dense.faiss", "dense_owners.npy")
LEXICAL_DIR = "bm25"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="keep the corpus and index in this folder (default: a temporary one)")
    parser.add_argument("--peer-limit", type=int, default=None, help="peer questions (default all; 0 skips the peer)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.passages < 1000:
        parser.error("--passages must be at least 1000 (the CMRC paragraphs alone make about 470)")

    work = args.work or Path(tempfile.mkdtemp(prefix="qa-bench-"))
    try:
        report = run(args.passages, work, seed=args.seed, peer_limit=args.peer_limit)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, ensure_ascii=False, indent=None if args.json else 2))


def run(passages: int, work: Path, *, seed: int, peer_limit: int | None) -> dict:
    material = load_material()
    corpus, index = work / "corpus", work / "index"
    if corpus.exists():
        raise SystemExit(f"{corpus} exists: give --work a new folder")
    started = time.perf_counter()
    questions = work / "questions.json"
    save_questions(questions, write_corpus(corpus, passages, material, seed=seed))
    generate_seconds = time.perf_counter() - started

    model = load_embedder()
    embedder = ComposedEmbedder(model, material.phrases)
    settings = Settings(index_dir=index, corpus_dir=corpus)
    summary = build_index(settings, embedder=embedder, rebuild=True)
    build_memory = _memory()
    snapshot = load_snapshot(index)
    count = len(snapshot.passages)
    sentences_per_passage = snapshot.dense.vectors / count
    embed_rate = _model_sentences_per_second(model, snapshot, seed)
    stages = {name: summary.stages.get(name, 0.0) for name in STAGES}
    with_model = sum(stages.values()) - stages["embed"] + snapshot.dense.vectors / embed_rate
    del snapshot

    serving = _serve(index, questions)
    peer = None
    if peer_limit != 0:
        peer = _child("peer.py", index, questions, *(["--limit", str(peer_limit)] if peer_limit else []))
    files = _bytes(index)
    report = {
        "passages": count,
        "articles": summary.articles,
        "questions": serving["questions"],
        "machine": _machine(),
        "corpus": {
            "seed": seed,
            "generate_seconds": round(generate_seconds, 1),
            "sentences_per_passage": round(sentences_per_passage, 2),
            "dense_vectors": (
                f"{embedder.composed} generated sentences: normalised sum of their phrases' USE vectors "
                f"({len(material.phrases)} phrases embedded once); {embedder.embedded} other sentences embedded by USE"
            ),
        },
        "build_seconds": {name: round(seconds, 2) for name, seconds in stages.items()} | {"total": round(summary.seconds, 1)},
        "build_passages_per_s": {
            **{name: round(count / seconds) for name, seconds in stages.items() if seconds > 0 and name != "embed"},
            "embed_model": round(embed_rate / sentences_per_passage, 1),
            "total_with_model_embedding": round(count / with_model, 1),
        },
        "build_memory_mb": build_memory,
        "bytes_per_passage": {
            "dense": round(sum(files[f] for f in DENSE_FILES) / count),
            "lexical": round(sum(v for f, v in files.items() if f.startswith(LEXICAL_DIR + "/")) / count),
            "stored_for_updates": round(sum(v for f, v in files.items() if f.endswith(("vectors.npy", "tokens.npy", "token_offsets.npy", "token_vocab.json"))) / count),
            "passages": round(files["passages.jsonl"] / count),
        },
        "dense_index": serving["dense_index"],
        "cold_start_s": serving["cold_start_s"],
        "ask_ms": serving["latency_ms"]["ask"],
        "latency_ms": serving["latency_ms"],
        "recall@1": serving["recall@1"]["ask"],
        "retrieval_recall@1": serving["recall@1"],
        "serve_memory_mb": serving["memory_mb"],
    }
    if "dense_recall" in serving:
        report["dense_recall"] = serving["dense_recall"]
    if peer is not None:
        asked = peer["questions"]
        report.update(
            {
                "peer_ask_ms": peer["latency_ms"],
                "peer_recall@1": peer["recall@1"],
                "peer_questions": asked,
                "recall@1_on_peer_questions": round(float(np.mean(serving["ask_correct"][:asked])), 4),
                "speedup_vs_peer": {
                    p: round(peer["latency_ms"][p] / serving["latency_ms"]["ask"][p], 1) for p in ("p50", "p95", "p99")
                },
                "peer_build_seconds": peer["build_seconds"],
                "peer_memory_mb": peer["memory_mb"],
            }
        )
    return report


def _model_sentences_per_second(model, snapshot, seed: int) -> float:
    """The embedding model's own speed, in sentences a second, on generated sentences."""
    from qa.text import sentence_spans

    rng = random.Random(seed)
    sample: list[str] = []
    for number in rng.sample(range(len(snapshot.passages)), min(len(snapshot.passages), EMBED_SAMPLE)):
        text = snapshot.passages[number].text
        sample.extend(text[s.start : s.end] for s in sentence_spans(text))
        if len(sample) >= EMBED_SAMPLE:
            break
    model.encode(sample[:64])
    started = time.perf_counter()
    model.encode(sample)
    return len(sample) / (time.perf_counter() - started)


def _serve(index: Path, questions: Path) -> dict:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(HERE / "serve.py"), "--index", str(index), "--questions", str(questions)],
        stdout=subprocess.PIPE,
        text=True,
    )
    first = process.stdout.readline()
    cold_start = time.perf_counter() - started
    if first.strip() != "ready":
        process.kill()
        raise SystemExit(f"bench/serve.py failed before its first answer: {first!r}")
    output, _ = process.communicate()
    if process.returncode:
        raise SystemExit(f"bench/serve.py failed (exit {process.returncode})")
    return json.loads(output) | {"cold_start_s": round(cold_start, 2)}


def _child(script: str, index: Path, questions: Path, *extra: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(HERE / script), "--index", str(index), "--questions", str(questions), *extra],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"bench/{script} failed (exit {done.returncode})")
    return json.loads(done.stdout)


def _bytes(index: Path) -> dict[str, int]:
    snapshot = load_snapshot(index)
    return {name: entry["bytes"] for name, entry in snapshot.manifest["files"].items()}


def _machine() -> dict:
    import os

    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
        platform.processor(),
    )
    memory = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    return {"cpu": model, "cores": os.cpu_count(), "memory_gb": round(int(memory) / 2**20, 1), "python": platform.python_version()}


if __name__ == "__main__":
    main()
