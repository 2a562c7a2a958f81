"""Keep the index current while editors work: `qa watch`.

The corpus folder is watched (watchdog); once it has been quiet for `debounce` seconds
after a change, an incremental update runs. Running apps and `qa` processes pick the new
snapshot up on their next question.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .build import BuildSummary, build_index
from .config import Settings
from .embed import Embedder, load_embedder
from .errors import IndexBusyError, QAError
from .tokens import Tokenizer

__all__ = ["watch"]

log = logging.getLogger(__name__)


def watch(
    settings: Settings,
    *,
    debounce: float = 2.0,
    on_update: Callable[[BuildSummary], None],
    on_error: Callable[[str], None],
    stop: threading.Event | None = None,
    embedder: Embedder | None = None,
) -> None:
    """Update the index now and after every burst of changes, until `stop` is set."""
    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers import Observer

    stop = stop or threading.Event()
    changed = threading.Event()
    last_change = [0.0]

    class Changes(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if event.event_type in ("opened", "closed_no_write"):
                return
            paths = [str(event.src_path), str(getattr(event, "dest_path", "") or "")]
            if all("/." in p or not p for p in paths):
                return  # hidden files: editor swap files, .git
            last_change[0] = time.monotonic()
            changed.set()

    tokenizer = Tokenizer()
    embedder = embedder or load_embedder(settings.model)
    observer = Observer()
    observer.schedule(Changes(), str(settings.corpus_dir), recursive=True)
    observer.start()
    try:
        changed.set()  # bring the index up to date at start
        last_change[0] = time.monotonic() - debounce
        while not stop.is_set():
            if changed.is_set() and time.monotonic() - last_change[0] >= debounce:
                changed.clear()
                try:
                    on_update(build_index(settings, embedder=embedder, tokenizer=tokenizer))
                except IndexBusyError as error:
                    on_error(f"{error}; trying again shortly")
                    last_change[0] = time.monotonic()
                    changed.set()
                except QAError as error:
                    on_error(str(error))
            stop.wait(0.1)
    finally:
        observer.stop()
        observer.join()
