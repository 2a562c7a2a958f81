"""Encoding speed of the default model in each runtime, measured in one run.

    python scripts/bench_encoder.py [--paragraphs 100] [--questions 200] [--json]

Runtimes: PyTorch fp32 (sentence-transformers, as with a GPU or `--model FOLDER`), ONNX
Runtime fp32 (exported here to a temporary folder), ONNX Runtime int8 (the default on the
CPU). Passages are the first `--paragraphs` CMRC 2018 trial paragraphs cut as the product
cuts them; what is timed is what indexing does: embedding every sentence of each passage
(`passages/s`). Queries are the trial questions, one at a time (`query ms`, median and
p95). How much the int8 model loses in retrieval is measured by `qa eval` (README).
Timings vary with machine load: compare the rows of one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from qa.chunk import chunk_article
from qa.config import Settings
from qa.e5_wheel import model_folder
from qa.embed import OnnxE5, SentenceTransformerEmbedder
from qa.evaluate import load_squad
from qa.text import sentence_spans, simplified

CMRC = Path(__file__).resolve().parent.parent.parent / "shared" / "bench" / "cmrc2018_trial.json"


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def measure(embedder, passages: list[list[str]], questions: list[str]) -> dict:
    sentences = [s for passage in passages for s in passage]
    embedder.encode_passages(sentences[:32])  # warm-up
    started = time.perf_counter()
    embedder.encode_passages(sentences)
    seconds = time.perf_counter() - started
    embedder.encode_queries(questions[:5])
    times = []
    for question in questions:
        started = time.perf_counter()
        embedder.encode_queries([question])
        times.append((time.perf_counter() - started) * 1000)
    return {
        "passages_per_s": round(len(passages) / seconds, 1),
        "sentences_per_s": round(len(sentences) / seconds, 1),
        "query_ms_p50": round(statistics.median(times), 2),
        "query_ms_p95": round(_percentile(times, 95), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", type=Path, default=CMRC)
    parser.add_argument("--paragraphs", type=int, default=100)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    articles, questions = load_squad(args.file)
    settings = Settings()
    passages = [
        [simplified(p.text[s.start : s.end]) for s in sentence_spans(p.text)]
        for article in articles[: args.paragraphs]
        for p in chunk_article(article, max_chars=settings.max_passage_chars, min_chars=settings.min_passage_chars)
    ]
    texts = [simplified(q.text) for q in questions[: args.questions]]
    folder = model_folder()
    results = {"passages": len(passages), "sentences": sum(map(len, passages)), "runtimes": {}}
    results["runtimes"]["onnx-int8"] = measure(OnnxE5(folder), passages, texts)
    with tempfile.TemporaryDirectory() as scratch:
        fp32 = _onnx_fp32_folder(folder, Path(scratch))
        results["runtimes"]["onnx-fp32"] = measure(OnnxE5(fp32, onnx_file="onnx/model.onnx"), passages, texts)
    results["runtimes"]["pytorch-fp32"] = measure(SentenceTransformerEmbedder(str(folder)), passages, texts)
    if args.json:
        print(json.dumps(results))
        return
    print(f"{results['passages']} passages, {results['sentences']} sentences; {len(texts)} questions one at a time")
    print("| runtime | passages/s | sentences/s | query ms p50 | query ms p95 |")
    print("|---|---|---|---|---|")
    for name, r in results["runtimes"].items():
        print(f"| {name} | {r['passages_per_s']} | {r['sentences_per_s']} | {r['query_ms_p50']} | {r['query_ms_p95']} |")


def _onnx_fp32_folder(folder: Path, scratch: Path) -> Path:
    """A copy of the converted folder's tokenizer and settings with an fp32 ONNX export."""
    from transformers import AutoModel

    from qa.e5_wheel import export_onnx

    for name in ("tokenizer.json", "sentence_bert_config.json"):
        (scratch / name).write_bytes((folder / name).read_bytes())
    model = AutoModel.from_pretrained(folder, add_pooling_layer=False)
    export_onnx(model, scratch / "onnx" / "model.onnx", quantize=False)
    return scratch


if __name__ == "__main__":
    main()
