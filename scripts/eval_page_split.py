"""How well a misplaced heading's article is found by a change of topic (qa.pages).

    python scripts/eval_page_split.py [--split dev|test] [--cases 2000] [--json]

A heading printed after its body, with no break in the page's text before that body, is
placed where the topic changes (`qa.pages.topic_boundary`), when the change stands out by
at least `TOPIC_MARGIN`. This script composes such bodies from DRCD articles
(../shared/datasets; Wikipedia, Traditional Chinese, read as they are):

- "two articles": 2–5 paragraphs of one article, then 2–5 of another chosen at random;
  the repeated line lies in the second. Right: the second article's first paragraph is
  found. Wrong: any other place.
- "two close articles": as above, the second article one of the three most like the first
  (mean paragraph vector), as articles on one newspaper page are.
- "one article": 4–10 paragraphs of one article, the repeated line in its second half.
  Any move splits an article that is whole.

It also reads the seed page with its breaks taken away and reports its articles and the
repairs made to headings. Dev was used to choose the margin;
test is reported as it came.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.embed import DEFAULT_MODEL, load_embedder
from qa.ingest import parse_article
from qa.pages import TOPIC_MARGIN, topic_boundary

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"
SEED = ROOT / "corpus" / "wuqing-jingjinji-coordination.md"


@dataclass(frozen=True)
class Case:
    vectors: np.ndarray  # one row per paragraph of the body
    repeated: int  # the paragraph the misplaced heading repeats
    start: int | None  # where its article truly starts; None: the body is one article


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("dev", "test"), default="test")
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    embedder = load_embedder(DEFAULT_MODEL)
    articles = _drcd_articles(DATASETS / f"drcd_{args.split}.json", embedder)
    rng = random.Random(0)
    report = {
        "split": args.split,
        "margin": TOPIC_MARGIN,
        **{name: _score(cases) for name, cases in _cases(articles, args.cases, rng).items()},
        "seed": _seed(embedder),
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    print(f"DRCD {args.split}, margin {TOPIC_MARGIN}\n")
    print("| body | cases | moved | moved to the right place |\n|---|---|---|---|")
    for name in ("two articles", "two close articles", "one article"):
        r = report[name]
        print(f"| {name} | {r['cases']} | {r['moved']} | {r['right']} |")
    print("\nseed page without its breaks:", report["seed"])


def _drcd_articles(file: Path, embedder) -> list[np.ndarray]:
    """Each DRCD article's paragraph vectors, for articles of two or more paragraphs."""
    data = json.loads(file.read_text(encoding="utf-8"))["data"]
    texts = [[p["context"] for p in article["paragraphs"]] for article in data]
    texts = [paragraphs for paragraphs in texts if len(paragraphs) >= 2]
    vectors = embedder.encode_passages([t for paragraphs in texts for t in paragraphs])
    bounds = np.cumsum([0, *map(len, texts)])
    return [vectors[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _cases(articles: list[np.ndarray], count: int, rng: random.Random) -> dict[str, list[Case]]:
    means = np.stack([a.mean(axis=0) for a in articles])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    long = [i for i, a in enumerate(articles) if len(a) >= 4]
    cases: dict[str, list[Case]] = {"two articles": [], "two close articles": [], "one article": []}
    for _ in range(count):
        first = rng.randrange(len(articles))
        other = rng.choice([i for i in range(len(articles)) if i != first])
        close = [int(i) for i in np.argsort(-(means @ means[first])) if i != first][rng.randrange(3)]
        for name, second in (("two articles", other), ("two close articles", close)):
            a = articles[first][: rng.randint(2, min(5, len(articles[first])))]
            b = articles[second][: rng.randint(2, min(5, len(articles[second])))]
            cases[name].append(Case(np.concatenate([a, b]), len(a) + rng.randrange(len(b)), len(a)))
        body = articles[rng.choice(long)][:10]
        cases["one article"].append(Case(body, rng.randrange(len(body) // 2, len(body)), None))
    return cases


def _decide(case: Case) -> int | None:
    boundary, margin = topic_boundary(case.vectors, range(1, case.repeated + 1))
    return boundary if margin >= TOPIC_MARGIN else None


def _score(cases: list[Case]) -> dict:
    decisions = [_decide(case) for case in cases]
    moved = sum(d is not None for d in decisions)
    right = sum(d is not None and d == case.start for d, case in zip(decisions, cases))
    return {"cases": len(cases), "moved": round(moved / len(cases), 3), "right": round(right / len(cases), 3)}


def _seed(embedder) -> dict:
    """The seed page read with every run of blank lines made one blank line: its third
    article's misplaced heading then has no break to go back to."""
    text = re.sub(r"\n(\s*\n)+", "\n\n", SEED.read_text(encoding="utf-8"))
    article = parse_article(text, source=SEED.name, encode=embedder.encode_passages)
    return {"articles": [story.title for story in article.stories], "repairs": [r for r in article.repairs if "标题" in r]}


if __name__ == "__main__":
    main()
