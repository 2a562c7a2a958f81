"""The index's arrays open safely from many threads: their headers are parsed one at a time."""

import ast
import threading
import time

import numpy as np

from qa import arrays
from qa.dense import RowFile


def test_headers_are_parsed_one_at_a_time(tmp_path, monkeypatch):
    """CPython 3.11 can fail building two syntax trees at once (numpy parses a header
    with ast.literal_eval): no two parses may overlap, whichever way an array is opened."""
    np.save(tmp_path / "rows.npy", np.arange(12, dtype=np.int8).reshape(3, 4))
    parsing, most = [0], [0]
    lock = threading.Lock()
    literal_eval = ast.literal_eval

    def slow_literal_eval(text):
        with lock:
            parsing[0] += 1
            most[0] = max(most[0], parsing[0])
        time.sleep(0.01)  # long enough for the other threads to arrive
        try:
            return literal_eval(text)
        finally:
            with lock:
                parsing[0] -= 1

    monkeypatch.setattr(ast, "literal_eval", slow_literal_eval)
    opened = []
    openers = [lambda: arrays.load(tmp_path / "rows.npy"), lambda: arrays.load(tmp_path / "rows.npy", mapped=False), lambda: RowFile(tmp_path / "rows.npy").read(np.array([0]), np.array([3]))]
    threads = [threading.Thread(target=lambda o=openers[i % 3]: opened.append(o())) for i in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1
    assert len(opened) == 9 and all(np.array_equal(a, np.arange(12).reshape(3, 4)) for a in opened)
