"""The neural reader's loading and span code, on a tiny random model built here."""

import pytest

from qa.neural import NeuralReader, ReaderError
from qa.reader import PassageInput

from .conftest import query

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

PASSAGES = [
    PassageInput("新城际铁路今天开通。从新城站到中心站只要18分钟。", 0.9, 0.5),
    PassageInput("南湖湿地公园占地1200亩。" * 40, 0.4, 0.3),  # longer than one window
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-qa")
    characters = sorted({c for p in PASSAGES for c in p.text} | set("从到要多久？"))
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *characters]
    (folder / "vocab.txt").write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    tokenizer.save_pretrained(folder)
    config = transformers.BertConfig(
        vocab_size=len(vocabulary),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    transformers.BertForQuestionAnswering(config).save_pretrained(folder)
    return folder


def test_spans_from_a_question_answering_model_lie_inside_the_passages(tiny_model):
    reader = NeuralReader(str(tiny_model))
    reading = reader.read(query("从新城站到中心站要多久？"), PASSAGES)
    assert len(reading.answers) == 2 and 0.0 <= reading.answerable <= 1.0
    for passage, answer in zip(PASSAGES, reading.answers):
        assert answer is not None
        assert passage.text[answer.start : answer.end] == answer.text and answer.text
        assert answer.sentence.start <= answer.start and answer.end <= len(passage.text)
        assert 0.0 <= answer.confidence <= 1.0


def test_unloadable_model_says_what_to_do(tmp_path):
    with pytest.raises(ReaderError, match="rules"):
        NeuralReader(str(tmp_path / "missing"))
