"""Markdown table of bench/run.py results, one column per file.

    python bench/table.py docs/bench/10k.json docs/bench/100k.json docs/bench/1m.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    runs = [json.loads(Path(name).read_text(encoding="utf-8")) for name in sys.argv[1:]]
    if not runs:
        raise SystemExit(__doc__)
    rows: list[tuple[str, list[str]]] = [
        ("passages", [f"{r['passages']:,}" for r in runs]),
        ("sentence vectors", [f"{sum(s['vectors'] for s in r['segments']):,}" for r in runs]),
        ("segments (dense index of each)", [_segments(r) for r in runs]),
        ("**full `ask`** ms p50 / p95 / p99", [_p(r["ask_ms"]) for r in runs]),
        ("bm25 ms p50 / p95 / p99", [_p(r["latency_ms"]["bm25"]) for r in runs]),
        ("dense ms p50 / p95 / p99", [_p(r["latency_ms"]["dense"]) for r in runs]),
        ("hybrid ms p50 / p95 / p99", [_p(r["latency_ms"]["hybrid"]) for r in runs]),
        ("repeated question ms p50", [f"{r['latency_ms']['ask_repeated']['p50']}" for r in runs]),
        ("**peer** ms p50 / p95 / p99", [_p(r["peer_ask_ms"]) if "peer_ask_ms" in r else "–" for r in runs]),
        ("**speed-up vs peer**, retrieval (hybrid) p50 / p95", [_speedup(r) for r in runs]),
        ("**recall@1** `ask` / peer (same questions)", [_recall(r) for r in runs]),
        ("recall@1 bm25 / dense / hybrid", [_retrievers(r) for r in runs]),
        ("**cold start** to first answer, s", [f"{r['cold_start_s']}" for r in runs]),
        ("dense recall@10 vs exact", [_ann(r) for r in runs]),
        ("dense recall@1 exact → as searched", [_ann_cost(r) for r in runs]),
        ("**bytes / passage** in all", [f"{r['bytes_per_passage']['total']:,}" for r in runs]),
        ("bytes / passage: BM25 postings", [f"{r['bytes_per_passage']['bm25']:,}" for r in runs]),
        ("bytes / passage: dense index (FAISS codes, estimate factors)", [f"{r['bytes_per_passage']['dense index']:,}" for r in runs]),
        ("bytes / passage: int8 sentence vectors", [f"{r['bytes_per_passage']['vectors']:,}" for r in runs]),
        ("bytes / passage: passage ids", [f"{r['bytes_per_passage']['ids']:,}" for r in runs]),
        ("bytes / passage: articles and passages (SQLite)", [f"{r['bytes_per_passage']['passages (SQLite)']:,}" for r in runs]),
        ("**update** add / change / remove one article, s (`qa index`, end to end)", [_update(r, "seconds") for r in runs]),
        ("update: share of the index's bytes written", [_update(r, "written_share_of_index", "{:.3%}") for r in runs]),
        ("update: nothing changed, s", [f"{r['update']['nothing']['seconds']}" if "update" in r else "–" for r in runs]),
        ("peak RSS MB: build / serving / peer", [_memory(r) for r in runs]),
        ("RSS MB serving, after all questions", [f"{r['serve_memory_mb']['rss']:,}" for r in runs]),
    ]
    stages = ("read", "chunk", "tokenize", "bm25", "faiss", "write")
    for stage in stages:
        rows.append((f"build {stage}, passages/s", [f"{r['build_passages_per_s'].get(stage, 0):,}" for r in runs]))
    rows.append(("embedding model", [r.get("model", "use-multilingual") for r in runs]))
    rows.append(("build embed (the model, measured), passages/s", [f"{r['build_passages_per_s']['embed_model']}" for r in runs]))
    rows.append(("**build total with the model's embedding**, passages/s", [f"{r['build_passages_per_s']['total_with_model_embedding']}" for r in runs]))
    rows.append(("build wall time as run (composed vectors), s", [f"{r['build_seconds']['total']:,}" for r in runs]))
    print("| | " + " | ".join(f"{r['passages']:,} passages" for r in runs) + " |")
    print("|---" * (len(runs) + 1) + "|")
    for name, values in rows:
        print(f"| {name} | " + " | ".join(values) + " |")


def _segments(run: dict) -> str:
    factories = sorted({s["factory"] for s in run["segments"]})
    return f"{len(run['segments'])} ({', '.join(f'`{f}`' for f in factories)})"


def _update(run: dict, field: str, form: str = "{}") -> str:
    if "update" not in run:
        return "–"
    return " / ".join(form.format(run["update"][op][field]) for op in ("add", "change", "remove"))


def _p(ms: dict) -> str:
    return f"{ms['p50']} / {ms['p95']} / {ms['p99']}"


def _speedup(run: dict) -> str:
    speedup = run.get("speedup_vs_peer")
    return f"{speedup['p50']}× / {speedup['p95']}×" if speedup else "–"


def _recall(run: dict) -> str:
    if "peer_recall@1" not in run:
        return f"{run['recall@1']} / –"
    return f"{run['recall@1_on_peer_questions']} / {run['peer_recall@1']} ({run['peer_questions']} q)"


def _retrievers(run: dict) -> str:
    recall = run["retrieval_recall@1"]
    return f"{recall['bm25']} / {recall['dense']} / {recall['hybrid']}"


def _ann(run: dict) -> str:
    return f"{run['dense_recall']['recall@10_vs_exact']}" if "dense_recall" in run else "1 (exact)"


def _ann_cost(run: dict) -> str:
    if "dense_recall" not in run:
        return "–"
    return f"{run['dense_recall']['dense_recall@1_exact']} → {run['dense_recall']['dense_recall@1_approximate']}"


def _memory(run: dict) -> str:
    peaks = [run["build_memory_mb"]["peak_rss"], run["serve_memory_mb"]["peak_rss"], run.get("peer_memory_mb", {}).get("peak_rss")]
    return " / ".join(f"{peak:,}" if peak is not None else "–" for peak in peaks)


if __name__ == "__main__":
    main()
