from __future__ import annotations

import json
import logging

import jieba
import numpy as np
import pytest

from qa import jieba_dictionary

_TEXT = "武清区有多少家高新技术企业？京津冀协同发展，22分钟到北京南站"


@pytest.fixture(scope="module")
def jiebas_own() -> jieba.Tokenizer:
    own = jieba.Tokenizer()
    own.initialize()
    return own


def _kept_folder(cache):
    (folder,) = cache.iterdir()  # no staging folder left beside it
    return folder


def test_the_kept_dictionary_is_the_one_jieba_builds(tmp_path, jiebas_own):
    tokenizer = jieba.Tokenizer()
    jieba_dictionary.initialize(tokenizer, cache=tmp_path)
    assert _kept_folder(tmp_path).name.startswith(f"jieba-{jieba.__version__}-")
    assert tokenizer.initialized
    assert tokenizer.total == jiebas_own.total
    assert tokenizer.FREQ == jiebas_own.FREQ
    assert list(tokenizer.cut_for_search(_TEXT)) == list(jiebas_own.cut_for_search(_TEXT))


def test_a_kept_dictionary_is_read_back_not_built_again(tmp_path, jiebas_own):
    jieba_dictionary.initialize(jieba.Tokenizer(), cache=tmp_path)
    folder = _kept_folder(tmp_path)
    words = (folder / "words.txt").read_text(encoding="utf-8").split("\n")
    counts = np.load(folder / "counts.npy")
    counts[words.index("武清")] = 123456789  # a mark only a read of the folder can see
    np.save(folder / "counts.npy", counts)

    tokenizer = jieba.Tokenizer()
    jieba_dictionary.initialize(tokenizer, cache=tmp_path)
    assert tokenizer.FREQ["武清"] == 123456789
    assert tokenizer.total == jiebas_own.total
    assert len(tokenizer.FREQ) == len(jiebas_own.FREQ)


def test_an_unwritable_cache_falls_back_to_jiebas_loader(tmp_path, jiebas_own, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    tokenizer = jieba.Tokenizer()
    with caplog.at_level(logging.WARNING, logger="qa.jieba_dictionary"):
        jieba_dictionary.initialize(tokenizer, cache=blocker / "models")
    assert "jieba's own loader" in caplog.text
    assert tokenizer.FREQ == jiebas_own.FREQ and tokenizer.total == jiebas_own.total


def test_a_damaged_folder_falls_back_to_jiebas_loader(tmp_path, jiebas_own, caplog):
    jieba_dictionary.initialize(jieba.Tokenizer(), cache=tmp_path)
    folder = _kept_folder(tmp_path)
    header = json.loads((folder / "total.json").read_text())
    (folder / "total.json").write_text(json.dumps({**header, "words": header["words"] + 1}))
    tokenizer = jieba.Tokenizer()
    with caplog.at_level(logging.WARNING, logger="qa.jieba_dictionary"):
        jieba_dictionary.initialize(tokenizer, cache=tmp_path)
    assert "could not be kept in or read from" in caplog.text
    assert tokenizer.FREQ == jiebas_own.FREQ and tokenizer.total == jiebas_own.total


def test_another_dictionary_is_left_to_jieba(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("武清区 5 ns\n高新技术 3 n\n", encoding="utf-8")
    tokenizer = jieba.Tokenizer(str(words))
    tokenizer.tmp_dir = str(tmp_path)  # jieba's own cache of it
    jieba_dictionary.initialize(tokenizer, cache=tmp_path / "cache")
    assert tokenizer.FREQ["武清区"] == 5 and tokenizer.total == 8
    assert not (tmp_path / "cache").exists()
