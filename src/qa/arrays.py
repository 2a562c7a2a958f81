"""Saved numpy arrays of the index, opened safely from several threads at once.

numpy parses a `.npy` file's header with `ast.literal_eval`, and CPython 3.11 can raise a
spurious `SystemError: AST constructor recursion depth mismatch` when two threads build
syntax trees at the same time (python/cpython#106905). The index opens arrays from
several threads: an update beside a reader following it (`bench/consistency.py` met the
error so), search threads opening a new commit's vectors together. So every header is
parsed here, under one lock: microseconds a file.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["load", "read_header"]

# Process-wide, as the interpreter state it guards is.
_HEADERS = threading.Lock()


def load(path: Path, *, mapped: bool = True) -> np.ndarray:
    """A saved array: memory-mapped read-only, or read whole with `mapped=False`."""
    with _HEADERS:
        return np.load(path, mmap_mode="r" if mapped else None, allow_pickle=False)


def read_header(file: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Shape, Fortran order and dtype of the `.npy` file open at its start; leaves it at
    the array's first byte."""
    with _HEADERS:
        version = np.lib.format.read_magic(file)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        return read(file)
