"""BM25 over segments of postings, with statistics global across the live documents.

A segment keeps, for each term it contains, the documents holding it and how often
(`Postings`): the raw counts, not precomputed scores, because a score depends on the
whole index's document count, average length and document frequencies, which every
update changes. `Bm25` scores a query over all segments of a commit with those global
statistics counted over live documents only, so an index updated article by article ranks
exactly as one built from scratch (Lucene's BM25 variant, as bm25s computes it:
idf = ln(1 + (N − df + 0.5) / (df + 0.5)), tf part = tf / (tf + k1 · (1 − b + b · len / avg));
a test compares the two).

Terms are 64-bit hashes of the token text (BLAKE2b), so a segment needs no vocabulary
loaded as Python objects: its sorted term array is memory-mapped and searched with
`np.searchsorted`. Two tokens sharing a hash among a few million is a one-in-a-million
event that would merge their counts.

Document numbers are stored in 2 bytes: a term's list is cut into blocks of 65,536
documents, and `starts` says where each block of each term begins, so the block gives the
high part of the number. Half the 4 bytes a plain number takes (the lists are most of
BM25's bytes: a passage has about 500 postings), as fast to score: scoring indexes each
block's slice of the lengths and scores with the numbers as stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from . import arrays
from .manifest import Bm25Params

__all__ = ["Bm25", "Postings", "term_hashes"]

_BLOCK = 20_000  # documents counted at once while building
_BLOCK_DOCS = 1 << 16  # documents a block's 2-byte numbers tell apart
# Query terms in more than this share of the live documents, and more than this many, are
# not scored (Bm25.scores)
_COMMON_SHARE = 0.3
_COMMON_MIN_DOCS = 50_000


def _blocks_for(documents: int) -> int:
    return max(1, -(-documents // _BLOCK_DOCS))


def term_hashes(tokens: Sequence[str]) -> np.ndarray:
    """The 64-bit term of each token, in order."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest(), "little") for t in tokens),
        dtype=np.uint64,
        count=len(tokens),
    )


@dataclass(frozen=True)
class Postings:
    """One segment's inverted lists: term `terms[i]` is in the documents listed at
    `docs[starts[i·B]:starts[(i + 1)·B]]` (ascending) with counts `freqs[...]`, B being
    `blocks`; `docs[starts[i·B + b]:starts[i·B + b + 1]]` are those of block b, numbered
    from b · 65,536 (`listed` decodes them). `lengths[d]` is document d's token count."""

    terms: np.ndarray  # uint64, ascending
    starts: np.ndarray  # int64, len(terms) · blocks + 1
    docs: np.ndarray  # uint16: a document's number within its block
    freqs: np.ndarray  # uint8: a token more than 255 times in one passage counts 255 times
    lengths: np.ndarray  # int32, one per document

    _FILES = ("terms", "starts", "docs", "freqs", "lengths")

    @property
    def size(self) -> int:
        return len(self.lengths)

    # derived once per segment: every query's lookups and scoring use them
    @cached_property
    def blocks(self) -> int:
        return _blocks_for(self.size)

    @cached_property
    def block_bounds(self) -> tuple[tuple[int, int], ...]:
        """The first and last-plus-one document of each block."""
        return tuple((b * _BLOCK_DOCS, min((b + 1) * _BLOCK_DOCS, self.size)) for b in range(self.blocks))

    def by_block(self, docs: np.ndarray) -> tuple[np.ndarray, ...]:
        """Documents (ascending) as each block's numbers, the way lists store them."""
        edges = np.searchsorted(docs, np.arange(self.blocks + 1) * _BLOCK_DOCS)
        return tuple((docs[edges[b] : edges[b + 1]] - b * _BLOCK_DOCS).astype(np.uint16) for b in range(self.blocks))

    def count_listed(self, rows: np.ndarray, docs_by_block: tuple[np.ndarray, ...]) -> np.ndarray:
        """How many of some documents (`by_block`) each list of terms `terms[rows]` holds,
        searched in the lists as stored, the shorter in the longer: decoding a common
        term's list (most of a segment) for a few deleted documents cost 0.5 ms a question
        for each segment with deletions at 1M passages."""
        counts = np.zeros(len(rows), dtype=np.int64)
        for block, wanted in enumerate(docs_by_block):
            if not len(wanted):
                continue
            begins, ends = self.block_ranges(rows, block)
            for i, (begin, end) in enumerate(zip(begins.tolist(), ends.tolist())):
                listed = self.docs[begin:end]
                short, long = (wanted, listed) if len(wanted) < len(listed) else (listed, wanted)
                if len(short):
                    at = np.minimum(np.searchsorted(long, short), len(long) - 1)
                    counts[i] += np.count_nonzero(long[at] == short)
        return counts

    def block_ranges(self, rows: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
        """Start and end in `docs` of block `block` of the lists of terms `terms[rows]`."""
        at = rows * self.blocks + block
        return self.starts[at], self.starts[at + 1]

    def listed(self) -> tuple[np.ndarray, np.ndarray]:
        """Every posting's term and document (int64), in the order of `docs` and `freqs`."""
        term_of = np.repeat(self.terms, np.diff(self.starts[:: self.blocks]))
        block_of = np.repeat(np.tile(np.arange(self.blocks, dtype=np.int64), len(self.terms)), np.diff(self.starts))
        return term_of, self.docs.astype(np.int64) + block_of * _BLOCK_DOCS

    @classmethod
    def build(cls, documents: Sequence[np.ndarray]) -> Postings:
        """Postings of documents given as arrays of term hashes (one per token)."""
        lengths = np.fromiter((len(d) for d in documents), dtype=np.int64, count=len(documents))
        blocks = []
        for start in range(0, len(documents), _BLOCK):
            end = min(start + _BLOCK, len(documents))
            flat = np.concatenate([np.asarray(documents[i], dtype=np.uint64) for i in range(start, end)]) if end > start else np.zeros(0, np.uint64)
            owner = np.repeat(np.arange(start, end, dtype=np.int64), lengths[start:end])
            # distinct (term, document) pairs with their counts, sorted by term then document
            order = np.lexsort((owner, flat))
            term, doc = flat[order], owner[order]
            first = np.ones(len(term), dtype=bool)
            first[1:] = (term[1:] != term[:-1]) | (doc[1:] != doc[:-1])
            at = np.flatnonzero(first)
            counts = np.diff(np.append(at, len(term)))
            blocks.append((term[at], doc[at], counts))
        return cls._from_triples(
            np.concatenate([b[0] for b in blocks]) if blocks else np.zeros(0, np.uint64),
            np.concatenate([b[1] for b in blocks]) if blocks else np.zeros(0, np.int64),
            np.concatenate([b[2] for b in blocks]) if blocks else np.zeros(0, np.int64),
            lengths,
        )

    @classmethod
    def _from_triples(cls, term: np.ndarray, doc: np.ndarray, count: np.ndarray, lengths: np.ndarray) -> Postings:
        """From (term, document, count) triples in document order within each term."""
        order = np.argsort(term, kind="stable")  # blocks come in document order: stable keeps it
        term, doc, count = term[order], doc[order], count[order]
        new_term = np.r_[True, term[1:] != term[:-1]] if len(term) else np.zeros(0, bool)
        blocks = _blocks_for(len(lengths))
        # each posting's (term, block) row, ascending: where each row begins is `starts`
        row = (np.cumsum(new_term) - 1) * blocks + np.asarray(doc, dtype=np.int64) // _BLOCK_DOCS
        terms = term[new_term]
        return cls(
            terms=terms,
            starts=np.searchsorted(row, np.arange(len(terms) * blocks + 1)).astype(np.int64),
            docs=(np.asarray(doc, dtype=np.int64) % _BLOCK_DOCS).astype(np.uint16),
            freqs=np.minimum(count, np.iinfo(np.uint8).max).astype(np.uint8),
            lengths=np.asarray(lengths, dtype=np.int32),
        )

    @classmethod
    def merge(cls, parts: Sequence[tuple[Postings, np.ndarray]]) -> Postings:
        """The live documents of several segments, in order, as one segment's postings.

        `parts` pairs each segment's postings with its live-document mask.
        """
        terms, docs, counts, lengths = [], [], [], []
        base = 0
        for postings, live in parts:
            new_number = np.cumsum(live) - 1 + base  # a live document's number in the merge
            term_of, listed = postings.listed()
            keep = live[listed]
            terms.append(term_of[keep])
            docs.append(new_number[listed[keep]])
            counts.append(postings.freqs[keep].astype(np.int64))
            lengths.append(postings.lengths[live])
            base += int(live.sum())
        return cls._from_triples(np.concatenate(terms), np.concatenate(docs), np.concatenate(counts), np.concatenate(lengths))

    def save(self, directory: Path) -> None:
        for name in self._FILES:
            np.save(directory / f"{name}.npy", getattr(self, name), allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> Postings:
        # Memory-mapped: pages are read as queries touch them, so a large index opens at once.
        return cls(*(arrays.load(directory / f"{name}.npy") for name in cls._FILES))

    def find(self, terms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each term's row in `terms` and the start and end of its postings (equal when
        the segment lacks it)."""
        at = np.searchsorted(self.terms, terms)
        inside = at < len(self.terms)
        found = np.zeros(len(terms), dtype=bool)
        found[inside] = self.terms[at[inside]] == terms[inside]
        row = np.minimum(at, len(self.terms))
        starts = np.where(found, self.starts[row * self.blocks], 0)
        ends = np.where(found, self.starts[np.minimum(row + 1, len(self.terms)) * self.blocks], 0)
        return row.astype(np.int64), starts.astype(np.int64), ends.astype(np.int64)


class Bm25:
    """BM25 scores over the live documents of a commit's segments, numbered in segment order."""

    def __init__(self, segments: Sequence[tuple[Postings, np.ndarray | None]], params: Bm25Params) -> None:
        """`segments`: each segment's postings with its live mask (None: all live)."""
        self._segments = list(segments)
        self._params = params
        self._bases = np.cumsum([0, *(p.size for p, _ in self._segments)])
        self.size = int(self._bases[-1])
        live_lengths = [p.lengths if live is None else p.lengths[live] for p, live in self._segments]
        self.documents = sum(len(lengths) for lengths in live_lengths)
        total = sum(int(np.sum(lengths, dtype=np.int64)) for lengths in live_lengths)
        self.average_length = total / self.documents if self.documents else 0.0
        # each document's length normalisation, k1 · (1 − b + b · len / avg), once per commit
        k1, b = params.k1, params.b
        average = self.average_length or 1.0
        self._norms = [
            (k1 * (1.0 - b + b * np.asarray(p.lengths, dtype=np.float64) / average)).astype(np.float32) for p, _ in self._segments
        ]
        # deleted documents by block: few, so counting them in a term's list costs less
        # than checking every listed document's mark
        self._deleted = [None if live is None else p.by_block(np.flatnonzero(~live)) for p, live in self._segments]

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every document for the query (zero for deleted ones and non-matches).

        A token repeated in the query counts as often as it occurs, as in bm25s. A term in
        more than 30% of the live documents, and in more than 50,000 of them, is left out:
        at 1M passages such terms (a few common characters) hold 63% of a question's
        postings and add at most 1.2 · (k1 + 1) to a score; leaving them out kept recall@1
        (docs/benchmarks.md). Smaller lists are read whole: they cost little.
        """
        out = np.zeros(self.size, dtype=np.float32)
        if not query_tokens or not self.documents:
            return out
        terms, repeats = np.unique(term_hashes(query_tokens), return_counts=True)
        found = [postings.find(terms) for postings, _ in self._segments]
        frequency = np.zeros(len(terms), dtype=np.int64)  # live documents holding each term
        for (postings, _), deleted, (rows, starts, ends) in zip(self._segments, self._deleted, found):
            frequency += ends - starts
            if deleted is not None:
                listed = np.flatnonzero(ends > starts)
                frequency[listed] -= postings.count_listed(rows[listed], deleted)
        n = self.documents
        idf = np.log1p((n - frequency + 0.5) / (frequency + 0.5)) * repeats
        common = (frequency > _COMMON_SHARE * n) & (frequency > _COMMON_MIN_DOCS)
        for (postings, live), (rows, starts, ends), base, norms in zip(self._segments, found, self._bases, self._norms):
            present = np.flatnonzero((ends > starts) & ~common)
            if not len(present):
                continue
            weights, present_rows = idf[present].astype(np.float32), rows[present]
            # block by block, the 2-byte numbers as stored: the block's slice of the
            # lengths, marks and scores is indexed with them, so nothing is decoded
            for block, (first, last) in enumerate(postings.block_bounds):
                begins, finishes = postings.block_ranges(present_rows, block)
                if not np.any(finishes > begins):
                    continue
                # all the query's postings in this block at once: fewer, larger numpy calls
                docs = np.concatenate([postings.docs[a:b] for a, b in zip(begins, finishes)])
                tf = np.concatenate([postings.freqs[a:b] for a, b in zip(begins, finishes)]).astype(np.float32)
                weight = np.repeat(weights, finishes - begins)
                if live is not None:
                    keep = live[first:last][docs]
                    docs, tf, weight = docs[keep], tf[keep], weight[keep]
                contribution = weight * tf / (tf + norms[first:last][docs])
                out[base + first : base + last] += np.bincount(docs, weights=contribution, minlength=last - first)
        return out
