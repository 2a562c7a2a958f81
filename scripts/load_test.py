"""Load and memory of the running app, from outside, through its `/ask` API.

    python scripts/load_test.py [--clients 20] [--questions 10] [--soak 2000] [--json]

Starts the app over corpus/ on a free port (in a temporary index folder), then
1. `--clients` concurrent gradio_client clients each ask `--questions` questions; reports
   failures, explicit "queue full" answers (counted apart), and p50/p95/max latency;
2. asks `--soak` more questions (4 clients) and reports the server's resident memory
   after a warm-up and at the end.
Questions are the everyday and paraphrase sets of tests/data, cycled.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--soak", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from gradio_client import Client

    questions = [
        json.loads(line)["question"]
        for name in ("seed_questions.jsonl", "seed_paraphrases.jsonl")
        for line in (ROOT / "tests" / "data" / name).read_text(encoding="utf-8").splitlines()
    ]
    with tempfile.TemporaryDirectory() as scratch, socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        corpus = Path(scratch) / "corpus"
        shutil.copytree(ROOT / "corpus", corpus)
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--index", f"{scratch}/index", "--corpus", str(corpus)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}/"
        try:
            for _ in range(240):
                try:
                    urllib.request.urlopen(url, timeout=2)
                    break
                except OSError:
                    time.sleep(0.5)
            report = {"clients": args.clients, "questions_per_client": args.questions}
            report.update(_burst(Client, url, questions, args.clients, args.questions))
            warm = _soak(Client, url, questions, 200)
            before = rss_mb(server.pid)
            soak = _soak(Client, url, questions, args.soak)
            after = rss_mb(server.pid)
            report.update(
                {
                    "soak_questions": args.soak,
                    "soak_failures": soak["failures"] + warm["failures"],
                    "rss_mb_after_warmup": round(before, 1),
                    "rss_mb_after_soak": round(after, 1),
                    "rss_growth_mb": round(after - before, 1),
                }
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
    if args.json:
        print(json.dumps(report))
        return
    print(f"{args.clients} concurrent clients × {args.questions} questions: {report['answered']} answered, "
          f"{report['failures']} failures, {report['busy']} busy; latency ms p50 {report['p50_ms']}, "
          f"p95 {report['p95_ms']}, max {report['max_ms']}")
    print(f"{args.soak} more questions: {report['soak_failures']} failures; server memory "
          f"{report['rss_mb_after_warmup']} MB → {report['rss_mb_after_soak']} MB ({report['rss_growth_mb']:+} MB)")


def _burst(client_class, url, questions, clients, per_client) -> dict:
    latencies, failures, busy = [], [], []
    lock = threading.Lock()

    def worker(offset: int) -> None:
        client = client_class(url, verbose=False)
        for i in range(per_client):
            question = questions[(offset * per_client + i) % len(questions)]
            started = time.perf_counter()
            try:
                response = client.predict(question, api_name="/ask")
                assert "hits" in response
                with lock:
                    latencies.append((time.perf_counter() - started) * 1000)
            except Exception as error:  # counted, not raised: this measures the server
                with lock:
                    (busy if "queue" in str(error).lower() and "full" in str(error).lower() else failures).append(str(error))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ordered = sorted(latencies) or [float("nan")]
    return {
        "answered": len(latencies),
        "failures": len(failures),
        "busy": len(busy),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
        "max_ms": round(ordered[-1], 1),
    }


def _soak(client_class, url, questions, count) -> dict:
    return _burst(client_class, url, questions, 4, max(1, count // 4))


if __name__ == "__main__":
    main()
