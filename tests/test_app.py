"""The Gradio app builds over an index; its handler returns rendered answers."""

import importlib.util

import pytest

from qa.assistant import Assistant
from qa.build import build_index

from .conftest import ROOT


@pytest.fixture
def app_module():
    spec = importlib.util.spec_from_file_location("app", ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_app_has_the_question_box_and_ask_button(app_module, tiny_corpus, settings, hashing_embedder, tokenizer):
    build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    assistant = Assistant(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    blocks = app_module.build_app(assistant)
    elem_ids = {c.get("props", {}).get("elem_id") for c in blocks.config["components"]}
    assert {"question", "ask", "results"} <= elem_ids
    handler = next(fn for fn in blocks.fns.values() if fn.fn.__name__ == "ask").fn
    html = handler("新城站到中心站要多久？", 3)
    assert '<mark class="answer">' in html and "18分钟" in html
    assert "请输入问题" in handler("  ", 3)
