"""Which tokens should Milvus's BM25 index: the project's, or its own jieba analyzer's?

    python bench/milvus_analyzers.py ../shared/bench/cmrc2018_trial.json [--json]

Cuts the file's paragraphs into passages as `qa index` does and puts them in one Milvus
Lite collection with two BM25 fields: `terms`, the project's tokens (jieba words and
character n-grams, qa.tokens) as hex term hashes, which is what qa.milvus indexes; and
`text`, the passage's folded text under Milvus's `{"tokenizer": "jieba"}` analyzer. Asks
every question of each (the project's query tokens; the folded question) and reports
BM25 recall@1 and recall@5 (the top passages hold the question's paragraph);
bench/backends.py gives the local index's BM25 on the same passages.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from pymilvus import DataType, Function, FunctionType, MilvusClient

from qa.build import term_hash_lists
from qa.chunk import chunk_article
from qa.config import Settings
from qa.evaluate import load_squad
from qa.lexical import term_hashes
from qa.milvus import term_text
from qa.text import fold
from qa.tokens import Tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    settings = Settings()
    tokenizer = Tokenizer()
    articles, questions = load_squad(args.file)
    passages = [p for a in articles for p in chunk_article(a, max_chars=settings.max_passage_chars, min_chars=settings.min_passage_chars)]
    hashes = term_hash_lists(passages, tokenizer)
    with tempfile.TemporaryDirectory(prefix="qa-analyzers-") as scratch:
        client = MilvusClient(str(Path(scratch) / "analyzers.db"))
        schema = client.create_schema(auto_id=False)
        schema.add_field("number", DataType.INT64, is_primary=True)
        schema.add_field("terms", DataType.VARCHAR, max_length=65_535, enable_analyzer=True, analyzer_params={"tokenizer": "standard"})
        schema.add_field("text", DataType.VARCHAR, max_length=65_535, enable_analyzer=True, analyzer_params={"tokenizer": "jieba"})
        index = client.prepare_index_params()
        for field in ("terms", "text"):
            schema.add_field(f"{field}_sparse", DataType.SPARSE_FLOAT_VECTOR)
            schema.add_function(Function(name=f"{field}_bm25", function_type=FunctionType.BM25, input_field_names=[field], output_field_names=[f"{field}_sparse"]))
            index.add_index(
                field_name=f"{field}_sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                params={"bm25_k1": settings.bm25_k1, "bm25_b": settings.bm25_b},
            )  # fmt: skip
        client.create_collection("passages", schema=schema, index_params=index)
        rows = [{"number": i, "terms": term_text(h), "text": fold(p.text)} for i, (p, h) in enumerate(zip(passages, hashes))]
        for start in range(0, len(rows), 2_000):
            client.insert("passages", rows[start : start + 2_000])

        found: dict[str, list[list[str]]] = {"project tokens (qa.milvus)": [], "Milvus jieba analyzer": []}
        for question in questions:
            for name, field, query in (
                ("project tokens (qa.milvus)", "terms_sparse", term_text(term_hashes(tokenizer.query_tokens(question.text)))),
                ("Milvus jieba analyzer", "text_sparse", fold(question.text)),
            ):
                hits = client.search("passages", data=[query], anns_field=field, limit=5, search_params={"metric_type": "BM25"})[0]
                found[name].append([passages[int(hit["number"])].source for hit in hits])
    report = {"questions": len(questions), "passages": len(passages)}
    for name, tops in found.items():
        report[name] = {
            "recall_at_1": round(sum(bool(t) and t[0] == q.source for t, q in zip(tops, questions)) / len(questions), 4),
            "recall_at_5": round(sum(q.source in t for t, q in zip(tops, questions)) / len(questions), 4),
        }
    print(json.dumps(report, ensure_ascii=False) if args.json else "\n".join(f"{k}: {v}" for k, v in report.items()))


if __name__ == "__main__":
    main()
