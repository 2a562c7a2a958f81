"""Accuracy of `qa check` on a claims file with expected verdicts (JSON lines).

    python scripts/eval_claims.py tests/data/seed_claims.jsonl [--index index] [--json]

Each line: {"claim", "verdict", optional "source_value", optional "class"}. A
contradicted claim counts as right only when the reported source value matches too.
Reports accuracy by expected verdict and by class, and the precision of "contradicted"
(of the claims called contradicted, the share that are), which is what keeps an editor
from doubting a true sentence.
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
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    args = parser.parse_args()
    checker = FactChecker(Assistant(Settings(index_dir=args.index)))
    rows = [json.loads(line) for line in args.claims.read_text(encoding="utf-8").splitlines() if line.strip()]
    claims: Counter = Counter()
    right: Counter = Counter()
    called_contradicted = truly_contradicted = 0
    misses = []
    for row in rows:
        result = checker.check(row["claim"])
        values = [f.evidence.value for f in result.facts if f.verdict == "contradicted" and f.evidence]
        correct = result.verdict == row["verdict"] and (row["verdict"] != "contradicted" or row.get("source_value") in values)
        for key in (("verdict", row["verdict"]), ("class", row.get("class", "-"))):
            claims[key] += 1
            right[key] += correct
        if result.verdict == "contradicted":
            called_contradicted += 1
            truly_contradicted += row["verdict"] == "contradicted"
        if not correct:
            misses.append({"claim": row["claim"], "got": result.verdict, "values": values, "expected": row["verdict"], "source_value": row.get("source_value")})
    report = {
        "claims": len(rows),
        "right": sum(right[("verdict", v)] for v in ("supported", "contradicted", "not_found")),
        "by_verdict": {v: [right[("verdict", v)], claims[("verdict", v)]] for v in ("supported", "contradicted", "not_found")},
        "by_class": {c: [right[("class", c)], claims[("class", c)]] for kind, c in claims if kind == "class"},
        "contradicted_precision": round(truly_contradicted / called_contradicted, 3) if called_contradicted else None,
        "misses": misses,
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    for miss in misses:
        print(f"miss: {miss['claim']} → {miss['got']} {miss['values']} (expected {miss['expected']} {miss['source_value'] or ''})")
    print("\n| expected | claims | right |\n|---|---|---|")
    for verdict, (good, count) in report["by_verdict"].items():
        print(f"| {verdict} | {count} | {good} |")
    print(f"| **all** | {len(rows)} | {report['right']} ({report['right'] / len(rows):.0%}) |")
    if len(report["by_class"]) > 1:
        print("\n| class | claims | right |\n|---|---|---|")
        for name, (good, count) in report["by_class"].items():
            print(f"| {name} | {count} | {good} |")
    print(f"\nprecision of \"contradicted\": {report['contradicted_precision']}")


if __name__ == "__main__":
    main()
