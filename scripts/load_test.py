"""Load on the running app's JSON API, from outside: throughput, latency, memory.

    python scripts/load_test.py [--trial ../shared/bench/cmrc2018_trial.json]
        [--clients 1 2 5 10 50] [--questions 20] [--soak 5000] [--chromium /usr/bin/chromium] [--json]

Starts app.py on a free port over a temporary corpus: with `--trial`, one article per
paragraph of the SQuAD-style file and its questions (distinct questions, so the answer
cache is bypassed: every step of the curve starts a fresh server on the same index);
without it, the seed corpus and the question sets of tests/data. Then:
1. the throughput curve: for each number of `--clients`, that many concurrent clients
   each POST `--questions` questions to /api/ask; reports answered, errors (any status
   but 200), throughput (answers a second over the step's wall time) and p50/p95/p99 ms;
   with `--chromium`, the page is asked a question in Chromium during the largest step,
   and the time it took to show the answer is reported;
2. repeated questions, the answer cache on: the largest number of clients asking the same
   20 questions, after one warm pass;
3. `--soak` questions in a row from 4 clients, and the server's resident memory after a
   warm-up of 200 and at the end.
The server runs with the rate limit lifted (every client is 127.0.0.1). Timings are
noisy on a shared machine: compare numbers from one run.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trial", type=Path, help="SQuAD-style file: its paragraphs are the corpus, its questions the load")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 5, 10, 50])
    parser.add_argument("--questions", type=int, default=20, help="questions per client at each step")
    parser.add_argument("--soak", type=int, default=5000)
    parser.add_argument("--chromium", help="Chromium executable: ask the page a question during the largest step")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="qa-load-") as scratch:
        folder = Path(scratch)
        questions = _corpus(folder / "corpus", args.trial)
        report: dict = {"corpus": str(args.trial or "corpus/"), "questions_available": len(questions), "curve": []}
        largest = max(args.clients)
        for clients in args.clients:
            with _server(folder) as (url, _):
                # a question the clients do not ask, so that the page's answer is not a cached one
                page = _PageProbe(url, questions[-1], args.chromium) if args.chromium and clients == largest else None
                step = _burst(url, questions, clients, args.questions)
                if page:
                    step["page_answer_seconds"] = page.result()
                report["curve"].append(step)
        best = max(step["throughput_qps"] for step in report["curve"])
        at_largest = report["curve"][[s["clients"] for s in report["curve"]].index(largest)]
        report["throughput_at_largest_vs_best"] = round(at_largest["throughput_qps"] / best, 3)
        report["p95_bound_ms"] = round(1.5 * largest / at_largest["throughput_qps"] * 1000, 1)  # waiting in line and nothing else
        with _server(folder) as (url, pid):
            repeated = questions[:20]
            _burst(url, repeated, 1, len(repeated))  # one warm pass fills the cache
            report["repeated"] = _burst(url, repeated, largest, args.questions)
            _burst(url, questions, 4, 50)
            before = _rss_mb(pid)
            soak = _burst(url, questions, 4, max(1, args.soak // 4))
            after = _rss_mb(pid)
            report["soak"] = {
                "questions": soak["answered"] + soak["errors"],
                "errors": soak["errors"],
                "rss_mb_after_warmup": round(before, 1),
                "rss_mb_after": round(after, 1),
                "rss_growth_mb": round(after - before, 1),
            }
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    for step in report["curve"]:
        print(f"{step['clients']:>3} clients: {step['throughput_qps']:.1f} answers/s, p50/p95/p99 {step['p50_ms']}/{step['p95_ms']}/{step['p99_ms']} ms, {step['errors']} errors"
              + (f", page answered in {step['page_answer_seconds']} s" if "page_answer_seconds" in step else ""))
    print(f"repeated: {report['repeated']}")
    print(f"soak: {report['soak']}")


def _corpus(folder: Path, trial: Path | None) -> list[str]:
    """Write the corpus to `folder`; the questions to ask of it."""
    folder.mkdir(parents=True)
    if trial is None:
        for source in (ROOT / "corpus").iterdir():
            (folder / source.name).write_bytes(source.read_bytes())
        return [
            json.loads(line)["question"]
            for name in ("seed_questions.jsonl", "seed_paraphrases.jsonl")
            for line in (ROOT / "tests" / "data" / name).read_text(encoding="utf-8").splitlines()
        ]
    data = json.loads(trial.read_text(encoding="utf-8"))["data"]
    questions = []
    for d, document in enumerate(data):
        for p, paragraph in enumerate(document["paragraphs"]):
            (folder / f"{d:03d}-{p:02d}.md").write_text(f"# {document.get('title') or d}\n\n{paragraph['context']}\n", encoding="utf-8")
            questions += [qa["question"].strip() for qa in paragraph["qas"]]
    questions = [q for q in dict.fromkeys(questions) if q]  # the trial set holds one empty question
    # in a seeded random order, so that a step asking fewer questions asks a sample like the rest
    random.Random(0).shuffle(questions)
    return questions


@contextmanager
def _server(folder: Path):
    """app.py on a free port over `folder`'s corpus and index (built on the first start)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--index", str(folder / "index"), "--corpus", str(folder / "corpus")]
    server = subprocess.Popen([*command, "--rate-limit", "1000000000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900  # the first start builds the index
        while True:
            try:
                urllib.request.urlopen(url + "/api/health", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the app did not start")
                time.sleep(0.5)
        yield url, server.pid
    finally:
        server.terminate()
        server.wait(timeout=60)


def _burst(url: str, questions: list[str], clients: int, per_client: int) -> dict:
    """`clients` threads, each asking its own `per_client` questions in turn."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            for i in range(per_client):
                question = questions[(number * per_client + i) % len(questions)]
                started = time.perf_counter()
                try:
                    response = http.post("/api/ask", json={"question": question})
                    ok = response.status_code == 200 and "hits" in response.json()
                    problem = None if ok else f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as error:
                    problem = repr(error)
                with lock:
                    if problem:
                        errors.append(problem)
                    else:
                        latencies.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    ordered = sorted(latencies) or [float("nan")]

    def percentile(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {
        "clients": clients,
        "answered": len(latencies),
        "errors": len(errors),
        "error_examples": errors[:3],
        "seconds": round(seconds, 2),
        "throughput_qps": round(len(latencies) / seconds, 2),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": percentile(0.95),
        "p99_ms": percentile(0.99),
    }


class _PageProbe:
    """Asks the page one question in Chromium (Playwright) on a thread, after a second of load."""

    def __init__(self, url: str, question: str, chromium: str) -> None:
        self._seconds: float | None = None
        self._thread = threading.Thread(target=self._run, args=(url, question, chromium))
        self._thread.start()

    def _run(self, url: str, question: str, chromium: str) -> None:
        from playwright.sync_api import sync_playwright

        time.sleep(1.0)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(url + "/")
            page.locator("#question textarea").fill(question)
            started = time.perf_counter()
            page.locator("#ask").click()
            page.locator("#results .qa-hit, #results .qa-notice").first.wait_for(timeout=120_000)
            self._seconds = round(time.perf_counter() - started, 2)
            browser.close()

    def result(self) -> float | None:
        self._thread.join()
        return self._seconds


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    main()
