"""jieba's prefix dictionary, kept once in a form that loads in a quarter of the time.

jieba turns its dictionary (dict.txt) into a prefix dictionary: every word's count, and
every prefix of a word at count 0. It caches that with marshal, and unmarshalling its
498k entries is the largest step of the app's cold start (0.6 s). Kept as the words in one
text file and their counts in one array, the same dictionary loads in 0.16 s: one split,
one array and one zip.

The folder is built by jieba's own `gen_pfdict` and named by jieba's version and
dict.txt's checksum, so it holds exactly what `jieba.Tokenizer.initialize()` would; where
it cannot be written, jieba's own loader is used.

    <cache>/jieba-<version>-<sha256 of dict.txt, 16 hex>/
        words.txt     the prefix dictionary's keys, UTF-8, one per line
        counts.npy    int64, each key's count, in the same order
        total.json    {"total": the sum of dict.txt's counts, "words": number of keys}
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import jieba
import numpy as np

from . import arrays
from .model_cache import CacheError, build_once, cache_root

__all__ = ["initialize"]

log = logging.getLogger(__name__)

_WORDS = "words.txt"
_COUNTS = "counts.npy"
_TOTAL = "total.json"  # the mark of a complete folder (build_once renames a folder into place whole)


def initialize(tokenizer: jieba.Tokenizer, *, cache: Path | None = None) -> None:
    """Load `tokenizer`'s prefix dictionary as `tokenizer.initialize()` would, from the
    folder kept under `cache` (the converted models' cache by default), building it the
    first time. A tokenizer on another dictionary than jieba's own is left to jieba."""
    if tokenizer.initialized:
        return
    if tokenizer.dictionary != jieba.DEFAULT_DICT:
        tokenizer.initialize()
        return
    with tokenizer.get_dict_file() as source:
        digest = hashlib.file_digest(source, "sha256").hexdigest()[:16]
    target = (cache or cache_root()) / f"jieba-{jieba.__version__}-{digest}"
    try:
        folder = build_once(
            target, _TOTAL, lambda staging: _write(tokenizer, staging), what="jieba's dictionary", needs="about 9 MB", log=log.info
        )
        counts, total = _read(folder)
    except (CacheError, OSError, ValueError) as error:
        log.warning("jieba's dictionary could not be kept in or read from %s (%s); loading it with jieba's own loader", target, error)
        tokenizer.initialize()
        return
    tokenizer.FREQ, tokenizer.total = counts, total
    tokenizer.initialized = True


def _write(tokenizer: jieba.Tokenizer, folder: Path) -> None:
    counts, total = jieba.Tokenizer.gen_pfdict(tokenizer.get_dict_file())
    # dict.txt's lines are split on spaces, so no key holds a line break
    (folder / _WORDS).write_text("\n".join(counts), encoding="utf-8")
    np.save(folder / _COUNTS, np.fromiter(counts.values(), dtype=np.int64, count=len(counts)))
    (folder / _TOTAL).write_text(json.dumps({"total": total, "words": len(counts)}), encoding="utf-8")


def _read(folder: Path) -> tuple[dict[str, int], int]:
    header = json.loads((folder / _TOTAL).read_text(encoding="utf-8"))
    words = (folder / _WORDS).read_text(encoding="utf-8").split("\n")
    # read under the lock that guards numpy's header parsing: the index loads beside it
    counts = arrays.load(folder / _COUNTS, mapped=False)
    if not len(words) == len(counts) == header["words"]:
        raise ValueError(f"{folder} holds {len(words)} words and {len(counts)} counts, not {header['words']}")
    return dict(zip(words, counts.tolist())), int(header["total"])
