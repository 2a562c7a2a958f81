"""The `qa` command: build the index, ask questions, evaluate on a benchmark file."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .answer import confidence_words
from .backend import BACKEND_HELP, Backend
from .config import READER_HELP, TRAINED_READER, Settings
from .embed import DEFAULT_MODEL, USE_MODEL
from .errors import QAError

__all__ = ["main"]

_EPILOG = """examples:
  qa index                                  build or update index/ from corpus/
  qa watch                                  update index/ whenever corpus/ changes
  qa ask "从武清坐城际到北京南站要多久？"
  qa ask --questions questions.txt --json   one JSON object per line
  qa check "通武廊联合推出了5条主题旅游线路"
  qa eval ../shared/bench/cmrc2018_trial.json --json
  qa index --backend milvus:qa.db           the same index in Milvus Lite (or milvus:http://host:19530)
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (QAError, ValueError, OSError) as error:
        return _fail(args, str(error))
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # a bug: say so plainly; QA_DEBUG=1 shows the traceback
        if os.environ.get("QA_DEBUG"):
            raise
        return _fail(args, f"internal error ({type(error).__name__}: {error}); run with QA_DEBUG=1 for details")


def _fail(args: argparse.Namespace, message: str) -> int:
    if getattr(args, "json", False):
        # The shape of the command's normal output, so that readers of it need no special case.
        shape = {"query": getattr(args, "question", None) or "", "no_answer": True, "hits": []} if args.run is _ask else {}
        print(json.dumps({**shape, "message": message, "error": message}, ensure_ascii=False))
    print(f"qa: error: {message}", file=sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qa",
        description="Question answering over Chinese news articles (BM25 + dense retrieval, highlighted answers).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    index = commands.add_parser("index", help="build the index from the corpus folder (skipped when current)")
    index.add_argument("--corpus", type=Path, default=Path("corpus"), help="folder of .md/.txt articles (default: corpus)")
    index.add_argument("--index", type=Path, default=Path("index"), help="index folder (default: index)")
    index.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"embedding model: {DEFAULT_MODEL!r} (default) or {USE_MODEL!r} (both offline), or a sentence-transformers name or folder",
    )
    index.add_argument("--rebuild", action="store_true", help="rebuild even if the index is current")
    index.add_argument("--optimize", action="store_true", help="merge the index's segments into as few as possible")
    index.add_argument("--no-merge", dest="merge", action="store_false", help="update without merging small segments")
    index.add_argument("--json", action="store_true", help="print one JSON summary object")
    _add_backend(index)
    index.set_defaults(run=_index)

    ask = commands.add_parser("ask", help="answer a question with the best source passages")
    ask.add_argument("question", nargs="?", help="the question (put it after -- if it starts with -)")
    ask.add_argument("--questions", type=Path, help="file with one question per line (answers as JSON lines)")
    ask.add_argument("--index", type=Path, default=Path("index"), help="index folder (default: index)")
    ask.add_argument("--top-k", type=int, default=5, help="how many passages to return (default: 5)")
    ask.add_argument("--mode", choices=["hybrid", "bm25", "dense"], default="hybrid", help="retriever (default: hybrid)")
    ask.add_argument("--reader", default=TRAINED_READER, help=READER_HELP)
    ask.add_argument("--json", action="store_true", help="print the JSON contract")
    _add_backend(ask)
    ask.set_defaults(run=_ask)

    check = commands.add_parser("check", help="check a statement's figures, dates and names against the sources")
    check.add_argument("claim", nargs="?", help="the statement (put it after -- if it starts with -)")
    check.add_argument("--claims", type=Path, help="file with one statement per line (results as JSON lines)")
    check.add_argument("--index", type=Path, default=Path("index"), help="index folder (default: index)")
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_backend(check)
    check.set_defaults(run=_check)

    watch = commands.add_parser("watch", help="keep the index current while files in the corpus change")
    watch.add_argument("--corpus", type=Path, default=Path("corpus"), help="folder to watch (default: corpus)")
    watch.add_argument("--index", type=Path, default=Path("index"), help="index folder (default: index)")
    watch.add_argument("--model", default=DEFAULT_MODEL, help=f"embedding model (default: {DEFAULT_MODEL})")
    watch.add_argument("--debounce", type=float, default=2.0, help="seconds of quiet before updating (default: 2)")
    watch.add_argument("--json", action="store_true", help="print one JSON summary per update")
    _add_backend(watch)
    watch.set_defaults(run=_watch)

    evaluate = commands.add_parser("eval", help="measure retrieval and answers on a SQuAD-style (CMRC 2018) file")
    evaluate.add_argument("file", type=Path, help="SQuAD-style JSON file")
    evaluate.add_argument("--model", default=DEFAULT_MODEL, help=f"embedding model (default: {DEFAULT_MODEL})")
    evaluate.add_argument(
        "--unanswerable",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="leave this seeded random share of paragraphs out of the index, so their questions have no answer",
    )
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the --unanswerable split (default: 0)")
    evaluate.add_argument("--reader", default=TRAINED_READER, help=READER_HELP)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    _add_backend(evaluate)
    evaluate.set_defaults(run=_eval)
    return parser


def _add_backend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        type=Backend.parse,
        default=Backend(),
        metavar="local|milvus:URI",
        help=BACKEND_HELP,
    )


def _lines(path: Path) -> list[str]:
    """The non-blank lines of a UTF-8 file, one question or statement each."""
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise QAError(f"cannot read {path}: {error}") from None


def _show_progress() -> bool:
    return sys.stderr.isatty()


def _index(args: argparse.Namespace) -> int:
    from .build import build_index

    settings = Settings(index_dir=args.index, corpus_dir=args.corpus, model=args.model, backend=args.backend)
    summary = build_index(settings, rebuild=args.rebuild, optimize=args.optimize, merge=args.merge, show_progress=_show_progress())
    _print_summary(args, summary)
    return 0


def _print_summary(args: argparse.Namespace, summary) -> None:
    from .build import counted  # loaded already: a summary comes from a build

    if args.json:
        print(json.dumps(summary.to_json(), ensure_ascii=False), flush=True)
        return
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if summary.up_to_date:
        state = "already up to date"
    else:
        state = (
            f"+{summary.added} added, {summary.updated} updated, -{summary.removed} removed, "
            f"{summary.unchanged} unchanged; embedded {summary.embedded} passages"
        )
        if summary.rebuilt:
            state += f"; rebuilt everything: {summary.rebuilt}"
    if summary.merged:
        state += f"; merged {summary.merged} segments"
    state += f"; {counted(summary.segments, 'segment')}"
    print(f"{args.index}: {summary.contents()} ({state}, {summary.seconds:.1f} s)", flush=True)


_VERDICT_SYMBOLS = {"supported": "✔", "contradicted": "✘", "not_found": "？"}


def _check(args: argparse.Namespace) -> int:
    from .assistant import Assistant
    from .factcheck import VERDICT_WORDS, FactChecker

    if (args.claim is None) == (args.claims is None):
        return _fail(args, "give either a statement or --claims FILE")
    claims = _lines(args.claims) if args.claims is not None else [args.claim]
    checker = FactChecker(Assistant(Settings(index_dir=args.index, backend=args.backend)))
    for claim in claims:
        result = checker.check(claim)
        if args.json or args.claims is not None:
            print(json.dumps(result.to_json(), ensure_ascii=False), flush=True)
            continue
        print(f"{_VERDICT_SYMBOLS[result.verdict]} {result.summary} · {result.claim}")
        if result.message:
            print(f"  {result.message}")
        for fact in result.facts:
            line = f"  {fact.text}：{_VERDICT_SYMBOLS[fact.verdict]} {VERDICT_WORDS[fact.verdict]}"
            if fact.evidence:
                e = fact.evidence
                line += f"（来源写作“{e.value}”，{e.passage.article} · {e.passage.source}）"
            if fact.note:
                line += f" {fact.note}"
            print(line)
    return 0


def _watch(args: argparse.Namespace) -> int:
    from .watch import watch

    settings = Settings(index_dir=args.index, corpus_dir=args.corpus, model=args.model, backend=args.backend)
    print(f"watching {args.corpus} (Ctrl-C to stop)", file=sys.stderr)
    watch(
        settings,
        debounce=args.debounce,
        on_update=lambda summary: _print_summary(args, summary),
        on_error=lambda message: print(f"qa: error: {message}", file=sys.stderr, flush=True),
    )
    return 0


def _ask(args: argparse.Namespace) -> int:
    from .assistant import Assistant

    if (args.question is None) == (args.questions is None):
        return _fail(args, "give either a question or --questions FILE")
    if args.top_k < 1:
        return _fail(args, "--top-k must be at least 1")
    questions = _lines(args.questions) if args.questions is not None else [args.question]
    assistant = Assistant(Settings(index_dir=args.index, top_k=args.top_k, reader=args.reader, backend=args.backend))
    for question in questions:
        response = assistant.ask(question, top_k=args.top_k, mode=args.mode)
        if args.json or args.questions is not None:
            print(json.dumps(response.to_json(), ensure_ascii=False), flush=True)
        else:
            _print_response(response)
    return 0


def _print_response(response) -> None:
    if response.message:
        print(response.message)
    if not response.hits:
        print("没有找到相关段落。")
        return
    answer_hit = response.answer_hit
    if answer_hit:
        print(f"答案：{answer_hit.answer.text}（{confidence_words(answer_hit.answer.confidence)}，{answer_hit.answer.confidence:.0%}）· 见第{answer_hit.rank}条\n")
    else:
        print("资料中没有找到这个问题的答案，以下是最接近的段落。\n")
    for hit in response.hits:
        place = " › ".join([hit.passage.article, *hit.passage.headings])
        print(f"[{hit.rank}] {hit.score:.3f}  {place}  ({hit.passage.source})")
        if hit.answer and not response.no_answer:
            print(f"    此段的答案（把握 {hit.answer.confidence:.0%}）：{hit.answer.text}")
        print(f"    {hit.passage.text}\n")


def _eval(args: argparse.Namespace) -> int:
    from .embed import load_embedder
    from .evaluate import evaluate

    report = evaluate(
        args.file,
        Settings(model=args.model, reader=args.reader, backend=args.backend),
        embedder=load_embedder(args.model),
        unanswerable=args.unanswerable,
        seed=args.seed,
        show_progress=_show_progress(),
    )
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    print(f"{report['questions']} questions, {report['paragraphs']} paragraphs, {report['passages']} passages, model {report['model']}")
    print(f"{'retriever':<10}{'recall@1':>10}{'recall@5':>10}{'mrr@10':>10}")
    for mode, metrics in report["retrievers"].items():
        print(f"{mode:<10}{metrics['recall@1']:>10.3f}{metrics['recall@5']:>10.3f}{metrics['mrr@10']:>10.3f}")
    print(
        f"answer in sentence {report['answer_in_sentence']:.3f}, EM {report['answer_em']:.3f}, "
        f"F1 {report['answer_f1']:.3f}  ({report['seconds']:.1f} s)"
    )
    if "no_answer_precision" in report:
        print(
            f"{report['unanswerable_questions']} questions without an answer in the index: "
            f"no-answer precision {report['no_answer_precision']:.3f}, recall {report['no_answer_recall']:.3f}"
        )
    return 0
