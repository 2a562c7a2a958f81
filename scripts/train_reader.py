"""Train an extractive reader: multilingual-e5-small with a start/end head, on DRCD and XQuAD.

    python scripts/train_reader.py [--work runs/reader] [--resume] [--epochs 2] [--max-tokens 256]

Data: `../shared/datasets/` — DRCD dev and test (Traditional Chinese, converted to
Simplified with OpenCC; an answer whose offset the conversion moved is found again near
it, or the question is dropped and counted) and XQuAD zh. The CMRC 2018 trial set is only
read for evaluation, never trained on.

Model: the converted multilingual-e5-small folder (`qa.e5_wheel`) as an XLM-RoBERTa
encoder with a fresh question-answering head; the word embeddings (96M of its 118M
parameters) stay frozen. Question and context are cut into `--max-tokens` windows with
`--stride` tokens of overlap; a window that does not hold the answer learns to point at
the first token ("no answer here").

Deterministic for a seed; `--resume` continues from the last checkpoint in `--work`
(checkpoints are safetensors and JSON, outside git). After each epoch the model is saved
as a folder that `--reader FOLDER` loads, and read on the trial set's gold paragraphs
(`--eval-questions` of them): F1, EM, and whether the span lies in the gold answer's
sentence. Logs go to `--work/train.log`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
TRAINING_FILES = ("datasets/drcd_dev.json", "datasets/drcd_test.json", "datasets/xquad_zh.json")
TRIAL = SHARED / "bench" / "cmrc2018_trial.json"

log = logging.getLogger("train_reader")


@dataclass(frozen=True)
class Example:
    id: str
    question: str
    context: str
    answer_start: int
    answer: str


def load_examples(path: Path) -> tuple[list[Example], int]:
    """Simplified-Chinese examples of a SQuAD-style file, and how many were dropped."""
    from qa.text import simplified

    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    examples: list[Example] = []
    dropped = 0
    for document in data:
        for paragraph in document["paragraphs"]:
            original = paragraph["context"]
            context = simplified(original)
            for qa in paragraph["qas"]:
                gold = qa["answers"][0]
                answer = simplified(gold["text"])
                start = _relocate(context, answer, gold["answer_start"], same_length=len(context) == len(original))
                if start is None:
                    dropped += 1
                    continue
                examples.append(Example(qa["id"], simplified(qa["question"]), context, start, answer))
    return examples, dropped


def _relocate(context: str, answer: str, start: int, *, same_length: bool) -> int | None:
    """The answer's offset in the converted context: where it was, or its nearest occurrence."""
    if same_length and context[start : start + len(answer)] == answer:
        return start
    found = [m.start() for m in re.finditer(re.escape(answer), context)] if answer else []
    return min(found, key=lambda at: abs(at - start)) if found else None


def windows(tokenizer, examples: list[Example], *, max_tokens: int, stride: int) -> dict[str, np.ndarray]:
    """Token windows of question + context with the answer's first and last token (0, 0 when
    the window does not hold it)."""
    encoded = tokenizer(
        [e.question for e in examples],
        [e.context for e in examples],
        truncation="only_second",
        max_length=max_tokens,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length",
    )
    starts, ends = [], []
    for w, offsets in enumerate(encoded["offset_mapping"]):
        example = examples[encoded["overflow_to_sample_mapping"][w]]
        first, last = example.answer_start, example.answer_start + len(example.answer)
        sequence = encoded.sequence_ids(w)
        context = [i for i, s in enumerate(sequence) if s == 1]
        start = end = 0
        if context and offsets[context[0]][0] <= first and offsets[context[-1]][1] >= last:
            start = next(i for i in context if offsets[i][1] > first)
            end = next(i for i in reversed(context) if offsets[i][0] < last)
        starts.append(start)
        ends.append(end)
    return {
        "input_ids": np.asarray(encoded["input_ids"], dtype=np.int64),
        "attention_mask": np.asarray(encoded["attention_mask"], dtype=np.int64),
        "start": np.asarray(starts, dtype=np.int64),
        "end": np.asarray(ends, dtype=np.int64),
    }


def evaluate_reader(folder: Path, questions: int) -> dict:
    """Read the trial set's gold paragraphs with the saved model, as `--reader FOLDER` would."""
    from qa.evaluate import answer_em, answer_f1
    from qa.neural import NeuralReader
    from qa.reader import PassageInput
    from qa.text import sentence_spans

    reader = NeuralReader(str(folder))
    data = json.loads(TRIAL.read_text(encoding="utf-8"))["data"]
    items = [(p["context"], qa) for d in data for p in d["paragraphs"] for qa in p["qas"]][:questions]
    f1 = em = in_sentence = 0.0
    for context, qa in items:
        golds = [a["text"] for a in qa["answers"]]
        answer = reader.read(qa["question"], [PassageInput(context, 1.0, 1.0)]).answers[0]
        if answer is None:
            continue
        f1 += max(answer_f1(answer.text, g) for g in golds)
        em += max(answer_em(answer.text, g) for g in golds)
        sentence = next((context[s.start : s.end] for s in sentence_spans(context, clauses=False) if s.start <= answer.start < s.end), "")
        in_sentence += any(g in sentence for g in golds)
    n = max(len(items), 1)
    return {"questions": len(items), "f1": round(f1 / n, 4), "em": round(em / n, 4), "answer_in_sentence": round(in_sentence / n, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "reader")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--stride", type=int, default=96)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--warmup", type=float, default=0.06, help="share of steps warming up")
    parser.add_argument("--no-answer-windows", type=float, default=0.3, help="share of answerless windows kept")
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: all epochs)")
    parser.add_argument("--eval-questions", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch
    from safetensors.numpy import load_file as load_arrays
    from safetensors.numpy import save_file as save_arrays
    from safetensors.torch import load_file, save_file
    from tqdm.auto import tqdm
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from qa.e5_wheel import model_folder

    args.work.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(message)s",
        handlers=[logging.FileHandler(args.work / "train.log"), logging.StreamHandler()],
    )
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    encoder = model_folder()
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    data_file = args.work / f"windows-{args.max_tokens}-{args.stride}.safetensors"
    if data_file.exists():
        data = load_arrays(str(data_file))
    else:
        examples: list[Example] = []
        for name in TRAINING_FILES:
            loaded, dropped = load_examples(SHARED / name)
            log.info("%s: %d questions, %d dropped (answer not found after conversion)", name, len(loaded), dropped)
            examples += loaded
        data = windows(tokenizer, examples, max_tokens=args.max_tokens, stride=args.stride)
        save_arrays(data, str(data_file))
    rng = np.random.default_rng(args.seed)
    answerless = data["start"] == 0
    keep = ~answerless | (rng.random(len(answerless)) < args.no_answer_windows)
    data = {k: v[keep] for k, v in data.items()}
    steps_per_epoch = len(data["start"]) // args.batch
    total = steps_per_epoch * args.epochs
    log.info("%d windows (%d without the answer), %d steps an epoch", len(data["start"]), int((data["start"] == 0).sum()), steps_per_epoch)

    model = AutoModelForQuestionAnswering.from_pretrained(encoder)
    model.roberta.embeddings.word_embeddings.weight.requires_grad_(False)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW(trainable.values(), lr=args.lr, weight_decay=0.01)
    warmup = max(1, int(total * args.warmup))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )

    step = 0
    state_file = args.work / "checkpoint.json"
    if args.resume and state_file.exists():
        state = json.loads(state_file.read_text(encoding="utf-8"))
        model.load_state_dict(load_file(str(args.work / "checkpoint-model.safetensors")), strict=False)
        _load_optimizer(optimizer, load_file(str(args.work / "checkpoint-optimizer.safetensors")), state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step = state["step"]
        log.info("resumed at step %d of %d", step, total)

    def checkpoint() -> None:
        save_file({n: p.detach().contiguous() for n, p in trainable.items()}, str(args.work / "checkpoint-model.safetensors"))
        tensors, meta = _optimizer_state(optimizer)
        save_file(tensors, str(args.work / "checkpoint-optimizer.safetensors"))
        temporary = state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps({"step": step, "optimizer": meta, "schedule": schedule.state_dict(), "args": vars(args) | {"work": str(args.work)}}), encoding="utf-8")
        temporary.replace(state_file)

    model.train()
    started = time.perf_counter()
    first_step = step
    with tqdm(total=total, initial=step, unit="step", desc="training") as bar:
        while step < total and (not args.max_steps or step < args.max_steps):
            epoch, position = divmod(step, steps_per_epoch)
            order = np.random.default_rng(args.seed + epoch).permutation(len(data["start"]))
            rows = order[position * args.batch : (position + 1) * args.batch]
            batch = {k: torch.from_numpy(v[rows]) for k, v in data.items()}
            width = int(batch["attention_mask"].sum(1).max())  # windows are padded; cut the common padding
            output = model(
                input_ids=batch["input_ids"][:, :width],
                attention_mask=batch["attention_mask"][:, :width],
                start_positions=batch["start"],
                end_positions=batch["end"],
            )
            output.loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable.values(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            seconds = (time.perf_counter() - started) / (step - first_step)
            bar.set_postfix(loss=f"{output.loss.item():.3f}", left=f"{(total - step) * seconds / 60:.0f} min")
            bar.update(1)
            if step % 20 == 0:
                log.info("step %d loss %.4f lr %.2e %.2f s/step", step, output.loss.item(), schedule.get_last_lr()[0], seconds)
            if step % args.checkpoint_every == 0:
                checkpoint()
            if step % steps_per_epoch == 0 or step == total:
                checkpoint()
                folder = args.work / f"epoch-{math.ceil(step / steps_per_epoch)}"
                model.save_pretrained(folder)
                tokenizer.save_pretrained(folder)
                model.eval()
                scores = evaluate_reader(folder, args.eval_questions)
                model.train()
                log.info("after step %d, trial (gold paragraphs): %s", step, json.dumps(scores))
    checkpoint()


def _optimizer_state(optimizer) -> tuple[dict, dict]:
    """AdamW's tensors for safetensors, and the rest for JSON."""
    state = optimizer.state_dict()
    tensors, meta = {}, {"param_groups": state["param_groups"], "steps": {}}
    for key, value in state["state"].items():
        for name, item in value.items():
            if name == "step":
                meta["steps"][str(key)] = float(item)
            else:
                tensors[f"{key}.{name}"] = item.contiguous()
    return tensors, meta


def _load_optimizer(optimizer, tensors: dict, meta: dict) -> None:
    import torch

    state: dict = {}
    for name, value in tensors.items():
        key, field = name.split(".", 1)
        state.setdefault(int(key), {})[field] = value
    for key, step in meta["steps"].items():
        state.setdefault(int(key), {})["step"] = torch.tensor(step)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


if __name__ == "__main__":
    main()
