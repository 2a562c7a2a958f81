"""Cost of keeping the index current: a full build versus adding, changing and removing
one article, on a corpus of about `--passages` passages.

    python bench/update.py --passages 10000 [--json]

The corpus is bench/corpus.py's (seeded, generated from the phrases of the bundled article
and of the CMRC 2018 trial paragraphs). Every sentence is embedded by the model itself.
Times are wall-clock seconds on this machine.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from qa.build import build_index
from qa.config import Settings
from qa.embed import DEFAULT_MODEL, load_embedder
from qa.tokens import Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import load_material, paragraph, write_corpus  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=10000)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rng = random.Random(1)
    material = load_material()
    embedder, tokenizer = load_embedder(args.model), Tokenizer()
    with tempfile.TemporaryDirectory() as scratch:
        corpus = Path(scratch) / "corpus"
        corpus.mkdir()
        write_corpus(corpus, args.passages, material)
        settings = Settings(index_dir=Path(scratch) / "index", corpus_dir=corpus, model=args.model)

        def timed(**kwargs):
            started = time.perf_counter()
            summary = build_index(settings, embedder=embedder, tokenizer=tokenizer, **kwargs)
            return time.perf_counter() - started, summary

        full, built = timed(rebuild=True)
        (corpus / "new-article.md").write_text("# 新增文章\n\n" + "\n\n".join(paragraph(rng, material.phrases) for _ in range(5)), encoding="utf-8")
        add, added = timed()
        target = next(p for p in sorted(corpus.glob("*.md")) if "cmrc" not in p.name)
        target.write_text(target.read_text(encoding="utf-8") + "\n\n" + paragraph(rng, material.phrases), encoding="utf-8")
        change, changed = timed()
        (corpus / "new-article.md").unlink()
        remove, removed = timed()
        unchanged, _ = timed()

    report = {
        "passages": built.passages,
        "articles": built.articles,
        "model": args.model,
        "full_build_seconds": round(full, 2),
        "add_one_seconds": round(add, 2),
        "add_one_embedded": added.embedded,
        "change_one_seconds": round(change, 2),
        "change_one_embedded": changed.embedded,
        "remove_one_seconds": round(remove, 2),
        "no_change_seconds": round(unchanged, 2),
        "add_one_share_of_full": round(add / full, 4),
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"{report['passages']} passages in {report['articles']} articles, model {args.model}")
    print("| operation | seconds | passages embedded |\n|---|---|---|")
    print(f"| full build | {report['full_build_seconds']} | {built.embedded} |")
    print(f"| add one article | {report['add_one_seconds']} | {added.embedded} |")
    print(f"| change one article | {report['change_one_seconds']} | {changed.embedded} |")
    print(f"| remove one article | {report['remove_one_seconds']} | 0 |")
    print(f"| nothing changed | {report['no_change_seconds']} | 0 |")
    print(f"adding one article costs {report['add_one_share_of_full']:.1%} of a full build")


if __name__ == "__main__":
    main()
