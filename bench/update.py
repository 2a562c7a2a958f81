"""Keeping a large index current: one article added, changed and removed, end to end.

    python bench/update.py --work DIR [--json]

DIR is a bench/run.py work folder (its corpus/ and index/). Each operation edits one file
of the corpus and runs `qa index` on the folder in a fresh process, as an editor's tool
would (process start, loading what is needed, reading the corpus folder, writing a
segment or deletion marks, committing). Reported per operation: wall time, what the
update did, and the bytes the process wrote (/proc/<pid>/io `wchar`: everything passed to
write calls, the database's included) against the index's size on disk.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import load_material, paragraph  # noqa: E402

_INDEX_ONCE = """
import json, sys
from pathlib import Path
from qa.build import build_index
from qa.config import Settings
summary = build_index(Settings(corpus_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2])))
io = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
print(json.dumps(summary.to_json() | {"written_bytes": int(io["wchar"])}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = run(args.work, seed=args.seed)
    print(json.dumps(report, ensure_ascii=False, indent=None if args.json else 2))


def run(work: Path, *, seed: int) -> dict:
    corpus, index = work / "corpus", work / "index"
    rng = random.Random(seed)
    phrases = load_material().phrases
    index_bytes = _size(index)
    added = corpus / "9999999-added.md"
    changed = next(p for p in sorted(corpus.glob("*.md")) if p.stem.isdigit())
    operations = {
        "add": lambda: added.write_text("# 新增文章\n\n" + "\n\n".join(paragraph(rng, phrases) for _ in range(6)), encoding="utf-8"),
        "change": lambda: changed.write_text(changed.read_text(encoding="utf-8") + "\n\n" + paragraph(rng, phrases), encoding="utf-8"),
        "remove": added.unlink,
        "nothing": lambda: None,
    }
    results = {}
    for name, edit in operations.items():
        edit()
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _INDEX_ONCE, str(corpus), str(index)], capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode:
            raise SystemExit(f"qa index failed after '{name}': {done.stderr[-2000:]}")
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        results[name] = {
            "seconds": round(seconds, 2),
            "written_bytes": summary["written_bytes"],
            "written_share_of_index": round(summary["written_bytes"] / index_bytes, 5),
            "embedded": summary["embedded"],
            "segments": summary["segments"],
            "merged": summary["merged"],
            "stages": summary["stages"],
        }
    return {"passages": summary["passages"], "index_bytes": index_bytes, "operations": results}


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


if __name__ == "__main__":
    main()
