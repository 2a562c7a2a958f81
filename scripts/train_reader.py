"""Train the span model of the default reader: multilingual-e5-small with a start/end head, on DRCD.

    python scripts/train_reader.py [--work runs/reader] [--resume] [--epochs 3] [--lr 1.5e-4] [--generated N]

Data: `../shared/datasets/` — DRCD dev and test (Traditional Chinese, converted to
Simplified with OpenCC; an answer whose offset the conversion moved is found again near
it, or the question is dropped and counted). XQuAD zh is kept out: the reader's
combination with the rule features is fitted on it (scripts/fit_span_reader.py). The
CMRC 2018 trial set is only read for evaluation, never trained on. `--generated N` adds N
questions made from the DRCD contexts' own clauses, a figure or date replaced by its
question word (`generated_examples`).

Model: the converted multilingual-e5-small folder (`qa.e5_wheel`) as an XLM-RoBERTa
encoder with a fresh question-answering head; the word embeddings (96M of its 118M
parameters) stay frozen. Each question is read in a window of whole sentences grown in
random order around its answer (`qa.span_windows`, the code serving uses); for a share
`--negatives` of questions, also a window around another sentence, which learns to point
at <s> ("not here"). Windows are drawn afresh each epoch. bfloat16 autocast where the CPU
has it (`--no-bf16` to turn it off).

Deterministic for a seed on one machine; `--resume` continues from the last checkpoint in
`--work` (checkpoints are safetensors and JSON, outside git). After each epoch the
fine-tuned weights are written as `epoch-N.safetensors` (float16; `--reader` takes the
file) and read on the trial set's gold paragraphs (`--eval-questions` of them): F1, EM,
and whether the span lies in the gold answer's sentence. The last epoch is also written
as `span-e5-small.safetensors`, the file the project ships. Logs go to `--work/train.log`.
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

from qa.span_model import SHIPPED_WEIGHTS
from qa.span_windows import ContextTokens, Window, batch_arrays, context_tokens, question_ids, top_spans, window

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
# XQuAD is kept out: the reader's combination with the rule features is fitted on it.
TRAINING_FILES = ("datasets/drcd_dev.json", "datasets/drcd_test.json")
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


_NUMERAL_HEAD = re.compile(r"^[约近超逾]?[\d.,，零〇一二两三四五六七八九十百千万亿]+[余多]?")
_NUMERAL_CHARS = set("0123456789.,，零〇一二两三四五六七八九十百千万亿")
_CLAUSE = re.compile(r"[^，,；;：:。！？!?]+")


def generated_examples(examples: list[Example], count: int, rng: random.Random) -> list[Example]:
    """`count` questions made from the training contexts' own clauses: a figure with its
    unit or a date (qa.candidates) replaced by its question word (“建于1992年” → “建于哪一年？”,
    “长1200米” → “长多少米？”). They teach where such answers start and end, where the span
    model errs most. Names are left out: jieba's tags on Wikipedia text cut too many of
    them wrongly (“哪里溪” for 大汉溪)."""
    from qa.candidates import extract_candidates
    from qa.tokens import Tokenizer as Words

    words = Words()
    contexts = list(dict.fromkeys(e.context for e in examples))
    rng.shuffle(contexts)
    made: list[Example] = []
    for number, context in enumerate(contexts):
        for clause in _CLAUSE.finditer(context):
            text = clause.group()
            if not 8 <= len(text) <= 60:
                continue
            for candidate in extract_candidates(text, words):
                question_word = _question_word(text[candidate.start : candidate.end], candidate.kind)
                glued = candidate.start > 0 and text[candidate.start - 1] in _NUMERAL_CHARS  # a piece of a larger figure
                rest = len(text) - (candidate.end - candidate.start)  # the words the question keeps
                if question_word is None or glued or rest < 6 or candidate.end - candidate.start > 20:
                    continue
                question = (text[: candidate.start] + question_word + text[candidate.end :]).strip() + "？"
                answer = text[candidate.start : candidate.end]
                made.append(Example(f"generated-{number}-{clause.start() + candidate.start}", question, context, clause.start() + candidate.start, answer))
    rng.shuffle(made)
    return made[:count]


def _question_word(answer: str, kind: str) -> str | None:
    if kind == "quantity":
        head = _NUMERAL_HEAD.match(answer)
        if not head or head.end() == len(answer) or head.group() == "一":  # no unit, or 一 as an article (一种…)
            return None
        return "多少" + answer[head.end() :]
    if kind == "date":
        return "哪一年" if re.fullmatch(r"\d{4}年", answer) else "什么时候"
    return None


@dataclass(frozen=True)
class Item:
    """An example tokenized once: question ids, context tokens, the answer's token range."""

    question: tuple[int, ...]
    context: ContextTokens
    answer: tuple[int, int]


def tokenize(tokenizer, examples: list[Example]) -> list[Item]:
    contexts: dict[str, ContextTokens] = {}
    items = []
    for e in examples:
        context = contexts.get(e.context) or contexts.setdefault(e.context, context_tokens(tokenizer, e.context))
        first, last = e.answer_start, e.answer_start + len(e.answer)
        inside = [i for i, (a, b) in enumerate(context.offsets) if b > first and a < last]
        if inside:
            items.append(Item(question_ids(tokenizer, e.question), context, (inside[0], inside[-1] + 1)))
    return items


def epoch_windows(items: list[Item], rng: random.Random, negatives: float) -> list[tuple[Window, int, int]]:
    """Each question's window around its answer (sentences added in random order), and for
    a share `negatives` of them a window around another sentence without it, which learns
    to point at <s> ("not here"); shuffled."""
    out = []
    for item in items:
        w = window(item.question, item.context, item.answer, rng)
        if w.token_range[0] <= item.answer[0] and item.answer[1] <= w.token_range[1]:
            out.append((w, w.position(item.answer[0]), w.position(item.answer[1] - 1)))
        if rng.random() < negatives:
            others = [s for s in item.context.sentences if s[1] <= item.answer[0] or s[0] >= item.answer[1]]
            if others:
                other = window(item.question, item.context, rng.choice(others), rng)
                if other.token_range[1] <= item.answer[0] or other.token_range[0] >= item.answer[1]:
                    out.append((other, 0, 0))
    rng.shuffle(out)
    return out


def evaluate_reader(model, tokenizer, questions: int) -> dict:
    """The network alone on the trial set's gold paragraphs: every sentence-anchored window
    read, the best span over all of them."""
    import torch

    from qa.evaluate import answer_em, answer_f1

    data = json.loads(TRIAL.read_text(encoding="utf-8"))["data"]
    items = [(p["context"], qa) for d in data for p in d["paragraphs"] for qa in p["qas"]][:questions]
    f1 = em = in_sentence = 0.0
    for context_text, qa in items:
        golds = [a["text"] for a in qa["answers"]]
        context = context_tokens(tokenizer, context_text)
        question = question_ids(tokenizer, qa["question"])
        read = {w.token_range: w for w in (window(question, context, s) for s in context.sentences)}
        batch = list(read.values())
        ids, mask = batch_arrays(batch)
        with torch.no_grad():
            output = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
        best = max(
            (span, w) for row, w in enumerate(batch)
            for span in top_spans(w, output.start_logits[row].numpy(), output.end_logits[row].numpy(), k=1)
        )
        (_, first, last), w = best
        start, end = w.char_span(context, first, last)
        answer = context_text[start:end]
        f1 += max(answer_f1(answer, g) for g in golds)
        em += max(answer_em(answer, g) for g in golds)
        a, b = context.sentence_chars[context.sentence_of_char(start)]
        in_sentence += any(g in context_text[a:b] for g in golds)
    n = max(len(items), 1)
    return {"questions": len(items), "f1": round(f1 / n, 4), "em": round(em / n, 4), "answer_in_sentence": round(in_sentence / n, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "reader")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1.5e-4)
    parser.add_argument("--warmup", type=float, default=0.06, help="share of steps warming up")
    parser.add_argument("--negatives", type=float, default=0.15, help="share of questions that also get a window without the answer")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True, help="bfloat16 autocast (1.5x faster on CPUs with AVX512-BF16)")
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: all epochs)")
    parser.add_argument("--eval-questions", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generated", type=int, default=0, help="add this many questions generated from the training contexts (generated_examples)")
    args = parser.parse_args()

    import torch
    from safetensors.torch import load_file, save_file
    from tokenizers import Tokenizer
    from tqdm.auto import tqdm
    from transformers import AutoModelForQuestionAnswering

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
    tokenizer = Tokenizer.from_file(str(encoder / "tokenizer.json"))
    examples: list[Example] = []
    for name in TRAINING_FILES:
        loaded, dropped = load_examples(SHARED / name)
        log.info("%s: %d questions, %d dropped (answer not found after conversion)", name, len(loaded), dropped)
        examples += loaded
    if args.generated:
        generated = generated_examples(examples, args.generated, random.Random(args.seed))
        log.info("%d generated questions, e.g. %s", len(generated), "; ".join(f"{g.question} → {g.answer}" for g in generated[:5]))
        examples += generated
    items = tokenize(tokenizer, examples)
    steps_per_epoch = len(epoch_windows(items, random.Random(args.seed), args.negatives)) // args.batch
    total = steps_per_epoch * args.epochs
    log.info("%d questions, about %d steps an epoch, %d in all", len(items), steps_per_epoch, total)

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
        rng_file = args.work / "checkpoint-rng.safetensors"
        if rng_file.exists():  # dropout continues exactly where it stopped
            torch.set_rng_state(load_file(str(rng_file))["torch"])
        else:
            torch.manual_seed(args.seed + step)
        log.info("resumed at step %d of %d", step, total)

    def checkpoint() -> None:
        save_file({n: p.detach().contiguous() for n, p in trainable.items()}, str(args.work / "checkpoint-model.safetensors"))
        tensors, meta = _optimizer_state(optimizer)
        save_file(tensors, str(args.work / "checkpoint-optimizer.safetensors"))
        save_file({"torch": torch.get_rng_state()}, str(args.work / "checkpoint-rng.safetensors"))
        temporary = state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps({"step": step, "optimizer": meta, "schedule": schedule.state_dict(), "args": vars(args) | {"work": str(args.work)}}), encoding="utf-8")
        temporary.replace(state_file)

    model.train()
    started = time.perf_counter()
    first_step = step
    epoch_data: tuple[int, list] = (-1, [])
    with tqdm(total=total, initial=step, unit="step", desc="training") as bar:
        while step < total and (not args.max_steps or step < args.max_steps):
            epoch, position = divmod(step, steps_per_epoch)
            if epoch_data[0] != epoch:  # the same windows for an epoch however often it resumes
                epoch_data = (epoch, epoch_windows(items, random.Random(args.seed * 1000 + epoch), args.negatives))
            rows = epoch_data[1][position * args.batch : (position + 1) * args.batch]
            ids, mask = batch_arrays([w for w, _, _ in rows])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                output = model(
                    input_ids=torch.from_numpy(ids),
                    attention_mask=torch.from_numpy(mask),
                    start_positions=torch.tensor([s for _, s, _ in rows]),
                    end_positions=torch.tensor([e for _, _, e in rows]),
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
                epoch_file = args.work / f"epoch-{math.ceil(step / steps_per_epoch)}.safetensors"
                save_shipped(trainable, epoch_file)
                if step == total:
                    save_shipped(trainable, args.work / SHIPPED_WEIGHTS)
                model.eval()
                scores = evaluate_reader(model, tokenizer, args.eval_questions)
                model.train()
                log.info("after step %d, trial (gold paragraphs, network alone): %s", step, json.dumps(scores))
    checkpoint()


def save_shipped(trainable: dict, path: Path) -> None:
    """The fine-tuned weights as float16: what `SpanModel.from_weights` loads."""
    from safetensors.torch import save_file

    save_file({name: p.detach().half().contiguous() for name, p in trainable.items()}, str(path))


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
