"""What every benchmark process reports the same way: latency percentiles, recall@1, memory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.evaluate import Question


def percentiles(seconds: Sequence[float]) -> dict:
    """p50, p95 and p99 of timings, in milliseconds."""
    ms = np.array(seconds) * 1000
    return {name: round(float(np.percentile(ms, p)), 2) for name, p in (("p50", 50), ("p95", 95), ("p99", 99))}


def recall_at_1(tops: Sequence[str | None], questions: Sequence[Question]) -> float:
    """Share of questions whose first hit comes from their own article."""
    return round(sum(t == q.source for t, q in zip(tops, questions)) / len(questions), 4)


def share_found(scores: np.ndarray, exact_scores: np.ndarray) -> float:
    """recall@k of an approximate search against exact search: the share of the exact top
    k (`exact_scores`, best first) matched by passages it returned (`scores`, scored
    exactly) that score at least the exact k-th. Ties with the k-th count as found
    (generated text repeats phrases, so ties occur)."""
    return float(np.sum(np.asarray(scores) >= exact_scores[-1] - 1e-4)) / len(exact_scores)


def memory_mb() -> dict:
    """Peak and current resident memory of this process, in MB (Linux); the current split
    into the process's own memory (anonymous) and pages of mapped files (the index)."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    fields = (("peak_rss", "VmHWM"), ("rss", "VmRSS"), ("anonymous", "RssAnon"), ("mapped_files", "RssFile"))
    return {name: int(status[key].split()[0]) // 1024 for name, key in fields}
