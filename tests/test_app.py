"""The Gradio app builds over an index; its handlers answer, and editing is gated."""

import importlib.util

import pytest

from qa.assistant import Assistant
from qa.build import build_index

from .conftest import ROOT


@pytest.fixture(scope="module")
def app_module():
    spec = importlib.util.spec_from_file_location("app", ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def assistant(tiny_corpus, settings, hashing_embedder, tokenizer):
    build_index(settings, embedder=hashing_embedder, tokenizer=tokenizer)
    return Assistant(settings, embedder=hashing_embedder, tokenizer=tokenizer)


def handler(blocks, name):
    return next(fn for fn in blocks.fns.values() if fn.fn.__name__ == name).fn


class NoProgress:
    def __call__(self, *args, **kwargs):
        pass


def test_app_has_the_question_box_ask_button_and_api(app_module, assistant):
    blocks = app_module.build_app(assistant)
    elem_ids = {c.get("props", {}).get("elem_id") for c in blocks.config["components"]}
    assert {"question", "ask", "results", "articles", "upload", "upload-button", "remove-button"} <= elem_ids
    html = handler(blocks, "show_answer")("新城站到中心站要多久？", 3)
    assert '<mark class="answer">18分钟</mark>' in html
    assert "请输入问题" in handler(blocks, "show_answer")("  ", 3)
    response = handler(blocks, "ask_api")("新城站到中心站要多久？", 2)
    assert response["hits"][0]["answer"]["text"] == "18分钟" and len(response["hits"]) == 2


@pytest.mark.parametrize("host, expected", [("127.0.0.1", True), ("localhost", True), ("::1", True), ("0.0.0.0", False), ("192.168.1.5", False)])
def test_loopback_addresses(app_module, host, expected):
    assert app_module.is_loopback(host) is expected


def test_editing_is_refused_on_a_network_address_without_a_password(app_module, assistant, tmp_path):
    blocks = app_module.build_app(assistant, host="0.0.0.0")
    upload = tmp_path / "new.md"
    upload.write_text("# 新\n\n内容。", encoding="utf-8")
    message = handler(blocks, "upload")([str(upload)], False, NoProgress())[0]
    assert "QA_ADMIN_PASSWORD" in message
    assert not (assistant.settings.corpus_dir / "new.md").exists()
    assert "QA_ADMIN_PASSWORD" in handler(blocks, "remove")("rail.md", False, NoProgress())[0]
    assert (assistant.settings.corpus_dir / "rail.md").exists()


def test_with_a_password_editing_needs_it(app_module, assistant, tmp_path):
    blocks = app_module.build_app(assistant, host="0.0.0.0", admin_password="s3cret")
    unlock = handler(blocks, "unlock")
    assert unlock("wrong")[0] is False
    unlocked, _ = unlock("s3cret")
    assert unlocked is True
    upload = tmp_path / "library.md"
    upload.write_text("# 图书馆\n\n新城图书馆新增藏书五万册。", encoding="utf-8")
    assert "请先输入管理密码" in handler(blocks, "upload")([str(upload)], False, NoProgress())[0]
    message = handler(blocks, "upload")([str(upload)], unlocked, NoProgress())[0]
    assert "已保存：library.md" in message and "新增 1 个文件" in message
    assert assistant.ask("图书馆新增多少藏书？").hits[0].answer.text == "五万册"
    message = handler(blocks, "remove")("library.md", unlocked, NoProgress())[0]
    assert "已删除：library.md" in message and "删除 1 个" in message


def test_uploads_outside_the_limits_change_nothing(app_module, assistant, tmp_path):
    blocks = app_module.build_app(assistant)
    script = tmp_path / "evil.sh"
    script.write_text("rm -rf /", encoding="utf-8")
    good = tmp_path / "good.md"
    good.write_text("# 好\n\n内容。", encoding="utf-8")
    message = handler(blocks, "upload")([str(good), str(script)], False, NoProgress())[0]
    assert "不支持的文件类型" in message
    assert not (assistant.settings.corpus_dir / "good.md").exists()  # a rejected batch writes nothing


def test_oversized_and_too_many_uploads_are_refused(app_module, assistant, tmp_path):
    from qa.library import MAX_UPLOAD_BYTES, MAX_UPLOAD_FILES

    blocks = app_module.build_app(assistant)
    big = tmp_path / "big.md"
    big.write_bytes(b"a" * (MAX_UPLOAD_BYTES + 1))
    assert "文件过大" in handler(blocks, "upload")([str(big)], False, NoProgress())[0]
    small = [tmp_path / f"n{i}.md" for i in range(MAX_UPLOAD_FILES + 1)]
    for path in small:
        path.write_text("# 短\n\n内容。", encoding="utf-8")
    assert "一次最多上传" in handler(blocks, "upload")([str(p) for p in small], False, NoProgress())[0]
    assert not any((assistant.settings.corpus_dir / p.name).exists() for p in small)
