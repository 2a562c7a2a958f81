"""Cold start: process start to the first answer, several starts in a row.

    python bench/cold_start.py --index DIR [--starts 7] [--question TEXT] [--json]

Each start is a fresh Python process that opens the index as the app does
(`Assistant(Settings(index_dir=DIR))`), answers one question and prints "ready"; the time
is taken from launching the process to that line. The index's files stay in the page
cache between starts (warm disk), as they do for a server restarted on its machine.
Reports each start and their median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

_START = """
import sys
from pathlib import Path
from qa.assistant import Assistant
from qa.config import Settings
# kept in a name: a temporary would be torn down (0.3 s at 1M) before "ready" is printed
assistant = Assistant(Settings(index_dir=Path(sys.argv[1])))
assistant.ask(sys.argv[2])
print("ready", flush=True)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--starts", type=int, default=7)
    parser.add_argument("--question", default="武清区有多少家高新技术企业？")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    seconds = [_start(args.index, args.question) for _ in range(args.starts)]
    report = {"index": str(args.index), "starts_s": seconds, "median_s": round(statistics.median(seconds), 2)}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"cold start to first answer, {args.starts} starts: {seconds}; median {report['median_s']} s")


def _start(index: Path, question: str) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", _START, str(index), question], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    line = process.stdout.readline()
    elapsed = round(time.perf_counter() - started, 2)
    process.wait()
    if line.strip() != "ready":
        raise SystemExit(f"the start failed (exit {process.returncode}); run the app on {index} to see why")
    return elapsed


if __name__ == "__main__":
    main()
