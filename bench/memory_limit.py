"""Run this process with a memory limit that counts the page cache it uses (Linux, root,
cgroup v1's memory controller: the one this benchmark machine has).

A memory-mapped index's pages count in a process's RSS although they are the kernel's
page cache, clean and dropped under memory pressure; what a machine needs in order to
serve is the memory below which answers slow down. A control group's memory limit
counts both the process's own memory and the page cache it brings in, so a benchmark
run inside one shows what a machine of that size would see: `limit_memory` puts the
process in a new group with the limit, and the index files are first dropped from the
page cache, so that the pages the questions need are read (and charged) again. The
empty group stays behind when the process ends (`rmdir` removes it).
"""

from __future__ import annotations

import os
from pathlib import Path

_MEMORY = Path("/sys/fs/cgroup/memory")


class MemoryLimitError(RuntimeError):
    pass


def limit_memory(limit_bytes: int, files_under: Path) -> Path:
    """Move this process into a new memory group of `limit_bytes` and drop the files under
    `files_under` from the page cache; returns the group's directory."""
    group = _new_group()
    try:
        (group / "memory.limit_in_bytes").write_text(str(limit_bytes))
        (group / "cgroup.procs").write_text(str(os.getpid()))
    except OSError as error:
        raise MemoryLimitError(f"cannot limit memory with {group}: {error}") from error
    for path in files_under.rglob("*"):
        if path.is_file():
            descriptor = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(descriptor)
    return group


def group_memory(group: Path) -> dict:
    """The group's peak memory (own and page cache together) in MB and its major page faults."""
    stat = dict(line.split() for line in (group / "memory.stat").read_text().splitlines())
    return {"peak_mb": int((group / "memory.max_usage_in_bytes").read_text()) // 2**20, "major_faults": int(stat["pgmajfault"])}


def _new_group() -> Path:
    """A new memory group under this process's own."""
    own = None
    for line in Path("/proc/self/cgroup").read_text().splitlines():  # “4:memory:/path”
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            own = path.lstrip("/")
    if own is None or not _MEMORY.is_dir():
        raise MemoryLimitError("no cgroup v1 memory controller on this machine (/sys/fs/cgroup/memory)")
    group = _MEMORY / own / f"qa-bench-{os.getpid()}"
    try:
        group.mkdir()
    except OSError as error:
        raise MemoryLimitError(f"cannot create the memory group {group} (root needed): {error}") from error
    return group
