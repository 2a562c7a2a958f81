"""The app: the Gradio page (ask, check, manage the corpus) and the JSON API (qa.api) on one port.

    python app.py [--host 127.0.0.1] [--port 7860] [--index index] [--corpus corpus]
                  [--model multilingual-e5-small] [--reader trained] [--backend local|milvus:URI]
                  [--max-queue 64] [--rate-limit 60] [--timeout 30]

The index is built from the corpus folder on start when it is missing or stale. Editing
the corpus (资料库 tab) needs the password in QA_ADMIN_PASSWORD when that is set; without
it, editing is allowed only while the app listens on a loopback address.
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import logging
import os
from pathlib import Path

import gradio as gr
import uvicorn

from qa import Assistant, QAError, Settings, build_index
from qa.api import ApiLimits, create_api
from qa.backend import BACKEND_HELP, Backend
from qa.config import READER_HELP, TRAINED_READER
from qa.embed import DEFAULT_MODEL
from qa.errors import IndexBusyError
from qa.examples import example_questions
from qa.factcheck import FactChecker
from qa.formats import SUPPORTED_SUFFIXES
from qa.library import ARTICLE_COLUMNS, MAX_UPLOAD_BYTES, article_rows, index_facts, remove_article, save_uploads
from qa.render import render_check, render_response

log = logging.getLogger("qa.app")

TITLE = "新闻问答"
CSS = """
.gradio-container { max-width: 1100px !important; margin: 0 auto; }
.qa-hit { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 14px 18px; margin: 12px 0;
          background: var(--background-fill-primary); }
.qa-hit header { display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap; font-size: 0.92em;
                 color: var(--body-text-color-subdued); margin-bottom: 8px; }
.qa-rank { font-weight: 700; color: var(--body-text-color); }
.qa-place { flex: 1 1 auto; }
.qa-confidence { white-space: nowrap; }
.qa-passage { line-height: 1.9; font-size: 1.05em; margin: 0; overflow-wrap: anywhere; }
.qa-source { margin-top: 8px; font-size: 0.85em; color: var(--body-text-color-subdued); }
mark.answer { background: #ffe58f; color: inherit; padding: 1px 2px; border-radius: 3px; font-weight: 700; }
mark.term { background: transparent; color: inherit; text-decoration: underline 2px #d48806; text-underline-offset: 3px; }
.qa-answer-line { padding: 10px 14px; border-radius: 8px; background: #fff7e6; color: #262626; font-size: 1.05em; }
.qa-answer-line strong { color: #ad4e00; }
.qa-notice { padding: 10px 14px; border-radius: 8px; background: #f5f5f5; color: #434343; }
.qa-check { padding: 10px 14px; border-radius: 8px; margin-bottom: 8px; }
.qa-check .qa-claim { margin: 4px 0 0; }
.qa-check.qa-supported, .qa-fact.qa-supported { border-left: 6px solid #389e0d; }
.qa-check.qa-contradicted, .qa-fact.qa-contradicted { border-left: 6px solid #cf1322; }
.qa-check.qa-not_found, .qa-fact.qa-not_found { border-left: 6px solid #8c8c8c; }
.qa-check.qa-supported { background: #f6ffed; } .qa-check.qa-contradicted { background: #fff1f0; }
.qa-check.qa-not_found { background: #fafafa; }
.qa-fact-value { font-weight: 700; }
.qa-supported mark.evidence { background: #d9f7be; } .qa-contradicted mark.evidence { background: #ffccc7; }
mark.evidence { color: inherit; font-weight: 700; padding: 1px 2px; border-radius: 3px; }
.qa-message { color: #ad6800; }
"""
LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_app(assistant: Assistant, *, host: str = "127.0.0.1", admin_password: str | None = None) -> gr.Blocks:
    settings = assistant.settings
    open_editing = admin_password is None and is_loopback(host)
    examples = example_questions(assistant.index, assistant.tokenizer)
    checker = FactChecker(assistant)

    def show_answer(question: str, top_k: float) -> str:
        if not question or not question.strip():
            return '<p class="qa-notice">请输入问题。</p>'
        try:
            return render_response(assistant.ask(question, top_k=int(top_k)))
        except QAError as error:  # the index cannot be read now (a Milvus server down): say so, keep serving
            log.warning("could not answer: %s", error)
            return '<p class="qa-notice">资料库暂时无法访问，请稍后再试。</p>'

    def show_check(claim: str) -> str:
        if not claim or not claim.strip():
            return '<p class="qa-notice">请输入要核查的陈述。</p>'
        return render_check(checker.check(claim[:500]))

    def ask_api(question: str, top_k: int = 5) -> dict:
        """Answer a question; returns the `qa ask --json` object."""
        try:
            return assistant.ask(question or "", top_k=max(1, min(int(top_k), 20))).to_json()
        except QAError as error:  # the shape of an answer, as `qa ask --json` reports errors
            return {"query": question or "", "no_answer": True, "hits": [], "message": str(error), "error": str(error)}

    def library_view():
        index = assistant.index
        rows = article_rows(index)
        facts = index_facts(index, len(rows))
        summary = (
            f"**索引**：{facts['articles']} 篇文章，{facts['passages']} 个段落 · "
            f"向量模型 `{facts['model']}` · 最近更新 {facts['built']}"
        )
        files = list(dict.fromkeys(row[2] for row in rows))  # a page's articles are removed with their file
        return summary, rows, gr.update(choices=files, value=None)

    def allowed(unlocked: bool) -> bool:
        return open_editing or bool(unlocked)

    def unlock(password: str):
        if admin_password is None:
            return False, "未设置管理密码。"
        if hmac.compare_digest((password or "").encode(), admin_password.encode()):
            return True, "已解锁，可以上传或删除文章。"
        return False, "密码不正确。"

    def update_index(progress: gr.Progress) -> str:
        progress(0.3, desc="正在更新索引")
        embedder = assistant.embedder(settings.model)
        summary = build_index(settings, embedder=embedder, tokenizer=assistant.tokenizer, show_progress=True)
        progress(1.0, desc="完成")
        warnings = "；".join(summary.warnings)
        return (
            f"索引已更新：新增 {summary.added} 个文件，更新 {summary.updated} 个，删除 {summary.removed} 个；"
            f"共 {summary.articles} 篇文章{f'（{summary.files} 个文件）' if summary.files != summary.articles else ''}、"
            f"{summary.passages} 个段落。"
            + (f"\n注意：{warnings}" if warnings else "")
        )

    def edit(unlocked: bool, change, failure: str, progress: gr.Progress):
        """Run an editing `change` (it returns what it did) if allowed, then update the index."""
        if not allowed(unlocked):
            return (locked_message(),) + library_view()
        try:
            message = change() + update_index(progress)
        except IndexBusyError:
            message = "另一个索引更新正在进行，请稍后再试。"
        except QAError as error:
            message = f"{failure}：{error}"
        return (message,) + library_view()

    def upload(files, unlocked: bool, progress=gr.Progress(track_tqdm=True)):
        def save() -> str:
            paths = [Path(f) for f in (files or [])]
            saved = save_uploads(settings.corpus_dir, paths, [_original_name(f) for f in (files or [])])
            return f"已保存：{'、'.join(saved)}。"

        return edit(unlocked, save, "未能上传", progress)

    def remove(source: str | None, unlocked: bool, progress=gr.Progress()):
        def delete() -> str:
            if not source:
                raise QAError("请先选择要删除的文章。")
            remove_article(settings.corpus_dir, source, assistant.index)
            return f"已删除：{source}。"

        return edit(unlocked, delete, "未能删除", progress)

    def locked_message() -> str:
        if admin_password is not None:
            return "请先输入管理密码。"
        return "编辑已关闭：应用在非本机地址上运行，需设置环境变量 QA_ADMIN_PASSWORD。"

    with gr.Blocks(title=TITLE) as app:
        gr.Markdown(f"## {TITLE}\n用日常语言提问，答案会在原文段落中标出；资料中没有答案时会如实说明。")
        with gr.Tab("问答", id="ask-tab"):
            with gr.Row(equal_height=True):
                question = gr.Textbox(
                    label="问题",
                    placeholder=examples[0] if examples else "请输入问题",
                    elem_id="question",
                    scale=5,
                    autofocus=True,
                    max_length=500,
                )
                button = gr.Button("提问", variant="primary", elem_id="ask", scale=1, min_width=80)
            with gr.Row():
                top_k = gr.Slider(1, 10, value=settings.top_k, step=1, label="显示段落数", scale=2)
            if examples:
                gr.Examples(examples=examples, inputs=question, label="试试这些问题")
            results = gr.HTML(elem_id="results")
            for trigger in (button.click, question.submit):
                trigger(show_answer, inputs=[question, top_k], outputs=results, api_visibility="private")
        with gr.Tab("核查", id="check-tab"):
            gr.Markdown("输入一句陈述（例如新闻稿中的一句话），逐项核对其中的数字、日期和人名：绿色为有来源支持，红色为与来源矛盾（并给出来源的说法），灰色为未找到来源。")
            with gr.Row(equal_height=True):
                claim = gr.Textbox(label="陈述", placeholder="京津城际武清站每日停靠车次最高达到70列", elem_id="claim", scale=5, max_length=500)
                check_button = gr.Button("核查", variant="primary", elem_id="check", scale=1, min_width=80)
            check_results = gr.HTML(elem_id="check-results")
            for trigger in (check_button.click, claim.submit):
                trigger(show_check, inputs=claim, outputs=check_results, api_visibility="private")
        with gr.Tab("资料库", id="library-tab"):
            unlocked = gr.State(False)
            if admin_password is not None:
                with gr.Row():
                    password = gr.Textbox(label="管理密码", type="password", elem_id="password", scale=4)
                    unlock_button = gr.Button("解锁", elem_id="unlock", scale=1)
                unlock_status = gr.Markdown()
                unlock_button.click(unlock, inputs=password, outputs=[unlocked, unlock_status], api_visibility="private")
            elif not open_editing:
                gr.Markdown(locked_message())
            facts = gr.Markdown(elem_id="index-facts")
            table = gr.Dataframe(
                headers=list(ARTICLE_COLUMNS),
                datatype=["str"] * len(ARTICLE_COLUMNS),
                interactive=False,
                elem_id="articles",
                wrap=True,
            )
            with gr.Row():
                with gr.Column():
                    files = gr.File(
                        label=f"上传文章（{' '.join(SUPPORTED_SUFFIXES)}，每个不超过 {MAX_UPLOAD_BYTES // 1024 // 1024} MB）",
                        file_count="multiple",
                        file_types=list(SUPPORTED_SUFFIXES),
                        elem_id="upload",
                    )
                    upload_button = gr.Button("上传并更新索引", variant="primary", elem_id="upload-button")
                with gr.Column():
                    chosen = gr.Dropdown(label="选择要删除的文章", choices=[], elem_id="remove-choice")
                    remove_button = gr.Button("删除并更新索引", variant="stop", elem_id="remove-button")
            status = gr.Markdown(elem_id="library-status")
            upload_button.click(
                upload, inputs=[files, unlocked], outputs=[status, facts, table, chosen], api_visibility="private"
            )
            remove_button.click(
                remove, inputs=[chosen, unlocked], outputs=[status, facts, table, chosen], api_visibility="private"
            )
        app.load(library_view, outputs=[facts, table, chosen], api_visibility="private")
        gr.api(ask_api, api_name="ask")
    return app


def _original_name(file) -> str:
    return getattr(file, "orig_name", None) or Path(str(file)).name


def main() -> None:
    parser = argparse.ArgumentParser(description="Question answering over Chinese news articles.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--index", type=Path, default=Path("index"))
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument("--model", default=DEFAULT_MODEL, help="embedding model used when the index is (re)built")
    parser.add_argument("--reader", default=TRAINED_READER, help=READER_HELP)
    parser.add_argument("--backend", type=Backend.parse, default=Backend(), metavar="local|milvus:URI", help=BACKEND_HELP)
    parser.add_argument("--max-queue", type=int, default=64, help="requests that may wait; more are told the app is busy")
    parser.add_argument("--rate-limit", type=int, default=60, help="questions a client may ask the API a minute (default: 60)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before an API request is answered 504 (default: 30)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    settings = Settings(
        index_dir=args.index, corpus_dir=args.corpus, model=args.model, reader=args.reader, backend=args.backend
    )
    try:
        summary = build_index(settings, show_progress=True)
        log.info(
            "index: %s%s",
            summary.contents(),
            " (up to date)" if summary.up_to_date else f", updated in {summary.seconds:.1f} s",
        )
        assistant = Assistant(settings)
    except QAError as error:
        raise SystemExit(f"error: {error}") from None

    page = build_app(assistant, host=args.host, admin_password=os.environ.get("QA_ADMIN_PASSWORD") or None)
    page.queue(default_concurrency_limit=2, max_size=args.max_queue)
    limits = ApiLimits(max_waiting=args.max_queue, per_minute=args.rate_limit, timeout=args.timeout)
    project = Path(__file__).resolve().parent
    server = gr.mount_gradio_app(
        create_api(assistant, FactChecker(assistant), limits),
        page,
        path="/",
        server_name=args.host,
        server_port=args.port,
        show_error=False,
        css=CSS,
        max_file_size=MAX_UPLOAD_BYTES,
        # Nothing of the project, the index or the corpus is served as a file.
        blocked_paths=[str(project), str(args.index.resolve()), str(args.corpus.resolve())],
    )
    log.info("serving the page on http://%s:%d/ and the API on /api (documentation: /docs)", args.host, args.port)
    # open event streams of the page would hold a graceful shutdown up without end
    uvicorn.run(server, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
