"""Performance at scale, side by side with a peer pipeline, on one generated corpus.

    python bench/run.py --passages 100000 [--json] [--work DIR [--resume]] [--peer-limit N]

Each step runs in a fresh process and leaves its JSON in the work folder:
1. bench/build.py writes a seeded corpus of about N passages (bench/corpus.py: recombined
   phrases of the bundled article and the CMRC 2018 trial paragraphs, with every trial
   paragraph mixed in) and builds the index with `qa.build.build_index`, timing each
   stage; the embedding model's own throughput is measured on generated sentences.
2. bench/serve.py: cold start to first answer, warm latency of bm25, dense, hybrid and
   `ask` over the 1,002 trial questions, recall@1, memory, and for an approximate dense
   index its recall@10 against exact search.
3. bench/peer.py: the peer pipeline on the same index and questions (`--peer-limit` asks
   only the first N questions; 0 skips it).
4. bench/update.py (last: it edits the corpus): one article added, changed and removed,
   each by `qa index` in a fresh process: wall time and bytes written.
`--resume` re-uses the steps whose JSON is already in `--work`.
Needs ../shared/bench/cmrc2018_trial.json and the `bench` extra (rank_bm25).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
STAGES = ("read", "chunk", "tokenize", "embed", "bm25", "faiss", "write", "merge")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="keep the corpus, index and results here (default: a temporary folder)")
    parser.add_argument("--resume", action="store_true", help="re-use the results of steps already in --work")
    parser.add_argument("--peer-limit", type=int, default=None, help="peer questions (default all; 0 skips the peer)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on one line")
    args = parser.parse_args()
    if args.passages < 1000:
        parser.error("--passages must be at least 1000 (the CMRC paragraphs alone make about 470)")
    if args.resume and not args.work:
        parser.error("--resume needs --work")

    work = args.work or Path(tempfile.mkdtemp(prefix="qa-bench-"))
    try:
        report = run(args.passages, work, seed=args.seed, peer_limit=args.peer_limit, resume=args.resume)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, ensure_ascii=False, indent=None if args.json else 2))


def run(passages: int, work: Path, *, seed: int, peer_limit: int | None, resume: bool) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    index, questions = work / "index", work / "questions.json"

    def step(name: str, produce) -> dict:
        saved = work / f"{name}.json"
        if resume and saved.exists():
            return json.loads(saved.read_text(encoding="utf-8"))
        result = produce()
        saved.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
        return result

    if (work / "corpus").exists() and not (resume and (work / "build.json").exists()):
        raise SystemExit(f"{work / 'corpus'} exists: give --work a new folder, or --resume")
    build = step("build", lambda: _child("build.py", "--passages", str(passages), "--work", str(work), "--seed", str(seed)))
    serving = step("serve", lambda: _serve(index, questions))
    peer = None
    if peer_limit != 0:
        limit = ["--limit", str(peer_limit)] if peer_limit else []
        peer = step("peer", lambda: _child("peer.py", "--index", str(index), "--questions", str(questions), *limit))
    update = step("update", lambda: _child("update.py", "--work", str(work), "--json"))  # last: it edits the corpus

    count = build["passages"]
    vectors = sum(s["vectors"] for s in serving["segments"])
    stages = {name: build["stages"].get(name, 0.0) for name in STAGES}
    with_model = sum(stages.values()) - stages["embed"] + vectors / build["model_sentences_per_s"]
    report = {
        "passages": count,
        "articles": build["articles"],
        "questions": serving["questions"],
        "machine": _machine(),
        "model": build["model"],
        "corpus": {
            "seed": seed,
            "generate_seconds": build["generate_seconds"],
            "sentences_per_passage": round(vectors / count, 2),
            "dense_vectors": (
                f"{build['composed_sentences']} generated sentences: normalised sum of their phrases' {build['model']} vectors "
                f"({build['phrases']} phrases embedded once); {build['embedded_sentences']} other sentences embedded by {build['model']}"
            ),
        },
        "build_seconds": {name: round(seconds, 2) for name, seconds in stages.items()} | {"total": round(build["seconds"], 1)},
        "build_passages_per_s": {
            **{name: round(count / seconds) for name, seconds in stages.items() if seconds > 0 and name != "embed"},
            "embed_model": round(build["model_sentences_per_s"] / (vectors / count), 1),
            "total_with_model_embedding": round(count / with_model, 1),
        },
        "build_memory_mb": build["memory_mb"],
        "bytes_per_passage": {part: round(size / count) for part, size in serving["bytes"].items()}
        | {"total": round(sum(serving["bytes"].values()) / count)},
        "segments": serving["segments"],
        "cold_start_s": serving["cold_start_s"],
        "ask_ms": serving["latency_ms"]["ask"],
        "latency_ms": serving["latency_ms"],
        "recall@1": serving["recall@1"]["ask"],
        "retrieval_recall@1": serving["recall@1"],
        "serve_memory_mb": serving["memory_mb"],
        "update": update["operations"],
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
                # retrieval against retrieval: the peer reads no answer
                "speedup_vs_peer": {
                    p: round(peer["latency_ms"][p] / serving["latency_ms"]["hybrid"][p], 1) for p in ("p50", "p95", "p99")
                },
                "peer_build_seconds": peer["build_seconds"],
                "peer_memory_mb": peer["memory_mb"],
            }
        )
    return report


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


def _child(script: str, *arguments: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(HERE / script), *arguments],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"bench/{script} failed (exit {done.returncode})")
    return json.loads(done.stdout)


def _machine() -> dict:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
        platform.processor(),
    )
    memory = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    return {"cpu": model, "cores": os.cpu_count(), "memory_gb": round(int(memory) / 2**20, 1), "python": platform.python_version()}


if __name__ == "__main__":
    main()
