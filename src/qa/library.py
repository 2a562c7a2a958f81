"""The editors' side of the corpus: what is indexed, adding files, removing articles.

Uploaded files are saved into the corpus folder under their own base name (never a path
the client chose), within type, size and count limits; removal only touches a file that
the index lists and that lies inside the corpus folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .backend import PassageIndex
from .errors import QAError
from .formats import SUPPORTED_SUFFIXES

__all__ = ["ARTICLE_COLUMNS", "MAX_UPLOAD_BYTES", "MAX_UPLOAD_FILES", "article_rows", "index_facts", "save_uploads", "remove_article"]

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MAX_UPLOAD_FILES = 10


ARTICLE_COLUMNS = ("标题", "版面", "文件", "日期", "段落数", "修复记录")


def article_rows(index: PassageIndex) -> list[list]:
    """One row per indexed article (`ARTICLE_COLUMNS`); a newspaper page gives a row for
    each of its articles, whose passages are counted together, for the page."""
    rows = []
    for record in index.articles():
        if not record.stories:
            rows.append([record.title or record.path, "", record.path, record.date or "", str(record.passages), "；".join(record.repairs)])
            continue
        rows.extend(
            [story.title, record.page or "", record.path, record.date or "", f"{record.passages}（整版）", "；".join(story.repairs)]
            for story in record.stories
        )
    return rows


def index_facts(index: PassageIndex, articles: int) -> dict:
    return {"model": index.model, "articles": articles, "passages": index.passage_count, "built": index.built}


def save_uploads(corpus_dir: Path, files: list[Path], names: list[str] | None = None) -> list[str]:
    """Copy uploaded files into the corpus; returns their corpus names. Checks everything
    before writing anything, so a rejected batch changes nothing."""
    if not files:
        raise QAError("没有选择文件。")
    if len(files) > MAX_UPLOAD_FILES:
        raise QAError(f"一次最多上传 {MAX_UPLOAD_FILES} 个文件。")
    names = names or [Path(f).name for f in files]
    targets = []
    for file, name in zip(files, names):
        base = Path(name.replace("\\", "/")).name.strip()
        if not base or base.startswith("."):
            raise QAError(f"文件名无效：{name}")
        if Path(base).suffix.lower() not in SUPPORTED_SUFFIXES:
            raise QAError(f"不支持的文件类型：{base}（支持 {' '.join(SUPPORTED_SUFFIXES)}）")
        size = Path(file).stat().st_size
        if size > MAX_UPLOAD_BYTES:
            raise QAError(f"文件过大：{base}（{size / 1024 / 1024:.1f} MB，上限 {MAX_UPLOAD_BYTES // 1024 // 1024} MB）")
        if size == 0:
            raise QAError(f"文件是空的：{base}")
        targets.append((Path(file), base))
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for source, base in targets:
        temporary = corpus_dir / f".{base}.uploading"
        shutil.copyfile(source, temporary)
        temporary.replace(corpus_dir / base)  # whole file or nothing, for a watcher or a build
    return [base for _, base in targets]


def remove_article(corpus_dir: Path, source: str, index: PassageIndex) -> None:
    if index.article(source) is None:
        raise QAError(f"资料库中没有这篇文章：{source}")
    path = (corpus_dir / source).resolve()
    if not path.is_relative_to(corpus_dir.resolve()):
        raise QAError(f"不能删除资料库以外的文件：{source}")
    if not path.is_file():
        raise QAError(f"文件已不存在：{source}（更新索引即可移除）")
    path.unlink()
