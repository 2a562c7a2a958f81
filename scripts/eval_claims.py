"""Accuracy of `qa check` on a claims file with expected verdicts (JSON lines).

    python scripts/eval_claims.py tests/data/seed_claims.jsonl [--index index]

Each line: {"claim", "verdict", optional "source_value"}. A contradicted claim counts as
right only when the reported source value matches too.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from qa.assistant import Assistant
from qa.config import Settings
from qa.factcheck import FactChecker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("claims", type=Path)
    parser.add_argument("--index", type=Path, default=Path("index"))
    args = parser.parse_args()
    checker = FactChecker(Assistant(Settings(index_dir=args.index)))
    rows = [json.loads(line) for line in args.claims.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_verdict: Counter = Counter()
    right: Counter = Counter()
    for row in rows:
        result = checker.check(row["claim"])
        values = [f.evidence.value for f in result.facts if f.verdict == "contradicted" and f.evidence]
        correct = result.verdict == row["verdict"] and (
            row["verdict"] != "contradicted" or row.get("source_value") in values
        )
        by_verdict[row["verdict"]] += 1
        right[row["verdict"]] += correct
        if not correct:
            print(f"miss: {row['claim']} → {result.verdict} {values} (expected {row['verdict']} {row.get('source_value', '')})")
    total = sum(right.values())
    print("\n| expected | claims | right |\n|---|---|---|")
    for verdict in ("supported", "contradicted", "not_found"):
        print(f"| {verdict} | {by_verdict[verdict]} | {right[verdict]} |")
    print(f"| **all** | {len(rows)} | {total} ({total / len(rows):.0%}) |")


if __name__ == "__main__":
    main()
