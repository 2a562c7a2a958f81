"""The cache of converted models and tables, and building a folder in it once.

The packaged e5 converted to a model folder, the trained reader exported to ONNX, and
jieba's dictionary as words and counts are each written once into a folder named by what
they were made from, and read by every later start. A folder is built in a staging folder
beside it and renamed into place whole, so a folder that exists is complete.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .errors import QAError

__all__ = ["CACHE_ENV", "CacheError", "build_once", "cache_root", "to_stderr"]

# Where converted models are kept; default: $XDG_CACHE_HOME/qa/models or ~/.cache/qa/models.
CACHE_ENV = "QA_MODEL_CACHE"


class CacheError(QAError):
    """The cache cannot be written; the message says what to do."""


def cache_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qa" / "models"


def to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_once(
    target: Path,
    marker: str,
    build: Callable[[Path], None],
    *,
    what: str,
    needs: str,
    log: Callable[[str], None] = to_stderr,
) -> Path:
    """`target`, built by `build(staging folder)` the first time and renamed into place, so
    that a folder holding `marker` is always complete; nothing half-written is left.
    `what` names the contents and `needs` their size on disk, for the messages."""
    if (target / marker).is_file():
        return target
    cache = target.parent
    try:
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=cache))
    except OSError as error:
        raise CacheError(f"cannot write {what} under {cache}: {error.strerror}. Set {CACHE_ENV} to a writable folder.") from error
    started = time.perf_counter()
    log(f"converting {what} into {target} (once) …")
    try:
        build(staging)
        try:
            staging.rename(target)
        except OSError:
            # another process finished the same conversion first: theirs is as good
            if not (target / marker).is_file():
                raise
    except OSError as error:  # disk full, permissions
        raise CacheError(
            f"converting {what} into {cache} failed: {error.strerror or error}. "
            f"Free some space (it needs {needs}) or set {CACHE_ENV} to another folder."
        ) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"converted in {time.perf_counter() - started:.1f} s")
    return target
