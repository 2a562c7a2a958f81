"""Gradio app: ask a question, read the source passages with the answer highlighted.

    python app.py [--host 127.0.0.1] [--port 7860] [--index index] [--corpus corpus] [--model NAME]

The index is built from the corpus folder on start when it is missing or stale.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import gradio as gr

from qa import Assistant, QAError, Settings, build_index
from qa.embed import DEFAULT_MODEL
from qa.render import render_response

log = logging.getLogger("qa.app")

CSS = """
.qa-hit { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 14px 18px; margin: 12px 0;
          background: var(--background-fill-primary); }
.qa-hit header { display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap; font-size: 0.92em;
                 color: var(--body-text-color-subdued); margin-bottom: 8px; }
.qa-rank { font-weight: 700; color: var(--body-text-color); }
.qa-place { flex: 1 1 auto; }
.qa-confidence { white-space: nowrap; }
.qa-passage { line-height: 1.9; font-size: 1.05em; margin: 0; }
.qa-source { margin-top: 8px; font-size: 0.85em; color: var(--body-text-color-subdued); }
mark.answer { background: #ffe58f; color: inherit; padding: 1px 0; border-radius: 3px; }
mark.term { background: transparent; color: inherit; font-weight: 700; text-decoration: underline 2px #d48806; }
mark.answer mark.term { background: transparent; }
.qa-notice { padding: 10px 14px; border-radius: 8px; background: #f5f5f5; color: #434343; }
.qa-message { color: #ad6800; }
"""


def build_app(assistant: Assistant) -> gr.Blocks:
    manifest = assistant.snapshot.manifest

    def ask(question: str, top_k: float) -> str:
        if not question or not question.strip():
            return '<p class="qa-notice">请输入问题。</p>'
        return render_response(assistant.ask(question, top_k=int(top_k)))

    with gr.Blocks(title="新闻问答") as app:
        gr.Markdown(
            f"## 新闻问答\n用日常语言提问，答案会在原文段落中标出。"
            f"资料库：{manifest['counts']['articles']} 篇文章，{manifest['counts']['passages']} 个段落。"
        )
        with gr.Row(equal_height=True):
            question = gr.Textbox(
                label="问题",
                placeholder="例如：从武清坐城际到北京南站要多久？",
                elem_id="question",
                scale=5,
                autofocus=True,
            )
            button = gr.Button("提问", variant="primary", elem_id="ask", scale=1, min_width=80)
        top_k = gr.Slider(1, 10, value=assistant.settings.top_k, step=1, label="显示段落数")
        results = gr.HTML(elem_id="results")
        for trigger in (button.click, question.submit):
            trigger(ask, inputs=[question, top_k], outputs=results, api_visibility="private")
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Question answering over Chinese news articles.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--index", type=Path, default=Path("index"))
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument("--model", default=DEFAULT_MODEL, help="embedding model used when the index is (re)built")
    parser.add_argument("--reader", default="rules", help="'rules' (default) or a question-answering model's name or folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    settings = Settings(index_dir=args.index, corpus_dir=args.corpus, model=args.model, reader=args.reader)
    try:
        summary = build_index(settings, show_progress=True)
        log.info("index: %d articles, %d passages%s", summary.articles, summary.passages,
                 " (up to date)" if summary.up_to_date else f", built in {summary.seconds:.1f} s")
        assistant = Assistant(settings)
    except QAError as error:
        raise SystemExit(f"error: {error}") from None

    app = build_app(assistant)
    app.queue(default_concurrency_limit=2, max_size=64)
    app.launch(
        server_name=args.host,
        server_port=args.port,
        share=False,
        show_error=False,
        css=CSS,
        max_file_size="2mb",
    )


if __name__ == "__main__":
    main()
