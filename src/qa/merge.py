"""Merging segments: fewer, larger segments after many small updates, deletions dropped.

The policy is tiered, as Lucene's is: segments are grouped by size class (a power of ten
of their live passages); when a class holds `MERGE_FACTOR` segments, they are merged into
one of the next class. A segment more than half deleted is rewritten without its deleted
passages. Nothing grows past `max_docs` passages. `optimize` merges everything it can
within that bound.

A merge writes a new segment (postings, vectors and database rows of the live passages)
and then a commit naming it in place of its sources: killed at any moment, it leaves the
last commit serving, and the next write removes what it left behind.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .dense import SegmentVectors
from .lexical import Postings
from .manifest import Manifest, SegmentEntry
from .records import Records
from .store import Snapshot, collect_garbage, commit, load_snapshot, next_generation, segments_dir, writing
from .segment import Segment, write_segment

__all__ = ["MERGE_FACTOR", "choose_merges", "merge_segments"]

MERGE_FACTOR = 10
_EXPUNGE_SHARE = 0.5  # a segment with more of its passages deleted is rewritten


def choose_merges(entries: tuple[SegmentEntry, ...], *, max_docs: int, optimize: bool = False) -> list[list[int]]:
    """Groups of segment indices to merge, each group into one segment."""
    if optimize:
        groups, current, size = [], [], 0
        for i in sorted(range(len(entries)), key=lambda i: entries[i].live):
            if current and size + entries[i].live > max_docs:
                groups.append(current)
                current, size = [], 0
            current.append(i)
            size += entries[i].live
        groups.append(current)
        return [g for g in groups if len(g) > 1 or any(entries[i].deleted for i in g)]
    tiers: dict[int, list[int]] = {}
    for i, entry in enumerate(entries):
        tiers.setdefault(int(math.log10(max(entry.live, 1))), []).append(i)
    groups = []
    taken: set[int] = set()
    for members in tiers.values():
        members = sorted(members, key=lambda i: entries[i].live)
        while len(members) >= MERGE_FACTOR:
            group, members = members[:MERGE_FACTOR], members[MERGE_FACTOR:]
            if sum(entries[i].live for i in group) <= max_docs:
                groups.append(group)
                taken.update(group)
    for i, entry in enumerate(entries):
        if i not in taken and entry.docs and entry.deleted / entry.docs > _EXPUNGE_SHARE:
            groups.append([i])
    return groups


def merge_segments(
    index_dir: Path, manifest: Manifest, *, max_docs: int, exact_max_vectors: int, optimize: bool = False
) -> tuple[Manifest, int]:
    """Merge what the policy chooses, one commit per merge; returns the last manifest and
    how many segments were merged away."""
    merged = 0
    while True:
        groups = choose_merges(manifest.segments, max_docs=max_docs, optimize=optimize)
        if not groups:
            return manifest, merged
        snapshot = load_snapshot(index_dir)
        try:
            if snapshot.manifest != manifest:
                return manifest, merged  # another commit came first: leave it be
            group = groups[0]
            number = next_generation(index_dir)
            with writing(index_dir):
                segment = _write_merged(index_dir, snapshot, group, number, exact_max_vectors)
            entries = [e for i, e in enumerate(manifest.segments) if i not in group]
            entries.insert(min(group), SegmentEntry(segment.name, segment.docs))
            manifest = replace(
                manifest,
                generation=number + 1,
                segments=tuple(entries),
                created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            )
            commit(index_dir, manifest)
        finally:
            snapshot.close()
        collect_garbage(index_dir)
        merged += len(group)


def _write_merged(index_dir: Path, snapshot: Snapshot, group: list[int], number: int, exact_max_vectors: int) -> Segment:
    sources = [(snapshot.segments[i], snapshot.live_mask(i)) for i in sorted(group)]
    postings = Postings.merge([(s.postings, live) for s, live in sources])
    codes, scales, owners, ids = [], [], [], []
    base = 0
    for segment, live in sources:
        vectors = segment.vectors
        rows = np.flatnonzero(live[vectors.owners])
        renumber = np.cumsum(live) - 1 + base
        codes.append(np.asarray(vectors.codes[rows]))
        scales.append(np.asarray(vectors.scales[rows]))
        owners.append(renumber[vectors.owners[rows]].astype(np.int32))
        ids.append(np.asarray(segment.ids)[live])
        base += int(live.sum())
    vectors = SegmentVectors.build(
        np.concatenate(codes), np.concatenate(scales), np.concatenate(owners), exact_max_vectors=exact_max_vectors
    )
    segment = write_segment(segments_dir(index_dir), number, postings, vectors, ids=np.concatenate(ids))
    records = Records(index_dir)
    try:
        first = 0
        for source, live in sources:
            kept = np.flatnonzero(live)
            records.copy_segment(source.number, kept.tolist(), number, first)
            first += len(kept)
    finally:
        records.close()
    return segment

