"""Errors a user can cause, each with a message that says what to do next."""

from __future__ import annotations

__all__ = ["QAError", "IngestError", "IndexMissingError", "IndexCorruptError", "IndexFormatError", "IndexBusyError", "IndexWriteError", "ReaderError"]


class QAError(Exception):
    """Base class of the errors the CLI and the app report as plain messages."""


class IndexMissingError(QAError):
    """No index has been built at the given place."""


class IndexCorruptError(QAError):
    """An index file is missing, truncated or disagrees with the manifest."""


class IndexFormatError(IndexCorruptError):
    """An index written in another format: `qa index` rebuilds it."""


class IngestError(QAError):
    """A corpus file that cannot be read as an article; the message says why."""


class IndexBusyError(QAError):
    """Another process is writing the index."""


class IndexWriteError(QAError):
    """A new commit could not be written (disk full, no permission); the old one serves on."""


class ReaderError(QAError):
    """A reader that cannot be loaded; the message says what to do instead."""
