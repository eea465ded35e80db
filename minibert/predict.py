"""Classifying texts with a fine-tuned model: loading it, cutting texts as in training, batching by length,
precision, and the probabilities of each text (behind scripts/predict.py; the loop in finetune.py scores its
evaluation splits with the same predict_logits).

    model, tokenizer, trained = load_fine_tuned("runs/finetune/model")
    classify(model, tokenizer, ["a gripping film", "two dull hours"], **inference_settings(trained))
    -> [{"label": "pos", "probability": 0.97, "probabilities": {...}}, {"label": "neg", ...}]

A text longer than the model's window is cut the way the model was fine-tuned (recorded in
minibert_finetune.json beside config.json); with "chunks", each window is classified and the text's
logits are the mean of its windows' logits.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .data import Example, Review, collate, encode_reviews
from .heads import BertForSequenceClassification
from .tokenizer import BertTokenizer
from .training import autocast, choose_precision, pick_device, to_device

@torch.inference_mode()
def predict_logits(model, examples: list[Example], batch_size: int, device, precision: str, pad_id: int = 0, bar=None) -> torch.Tensor:
    """(N, num_labels) float32 logits, one row per example, computed in length-sorted batches (a tqdm `bar`
    advances by each batch's examples). precision "bf16" autocasts a float32 model (the training loop's
    evaluation); weights already cast to bf16 (classify) run as they are."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
    out = torch.empty(len(examples), model.config.num_labels)
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        b = collate([examples[i] for i in idx], pad_id)
        with autocast(device, precision if next(model.parameters()).dtype == torch.float32 else "fp32"):
            logits = model(b["input_ids"].to(device), attention_mask=to_device(b["attention_mask"], device),
                           token_type_ids=to_device(b["token_type_ids"], device)).logits
        out[idx] = logits.float().cpu()
        if bar is not None:
            bar.update(len(idx))
    model.train(was_training)
    return out



def mean_by_review(logits: torch.Tensor, examples: list[Example], n_docs: int) -> torch.Tensor:
    """(N examples, C) -> (n_docs, C): the mean of each review's windows."""
    logits = torch.as_tensor(logits).float()
    doc = torch.tensor([e.doc for e in examples])
    total = torch.zeros(n_docs, logits.shape[1]).index_add_(0, doc, logits)
    return total / torch.bincount(doc, minlength=n_docs).clamp(min=1)[:, None]


# ---- Saved settings and prediction ---------------------------------------------------------------

SETTINGS_FILE = "minibert_finetune.json"  # beside config.json: how the saved model was fine-tuned

# Windows per forward pass when none is given. On the CPU, 16 x 512: MiniLM's predict.py in bf16 ran the 400 test
# reviews in 6.8 s at batch 16 and 10.4 s at 64 on a 2-core Xeon (benchmarks/predict_speed.py, 2026-12-05): a
# larger batch only makes larger activations, which cost page faults; a GPU wants large batches to fill it.
DEFAULT_BATCH_SIZE = {"cpu": 16, "cuda": 64}


def default_batch_size(device) -> int:
    return DEFAULT_BATCH_SIZE.get(torch.device(device).type, 64)


def save_inference_settings(directory: Path, args, labels: tuple[str, ...], pairs: bool, steps: int) -> None:
    """Record how texts were cut in training (`args`: the run's FinetuneArgs), so that prediction cuts them the
    same way, and how many optimizer steps trained the model (0: its classifier is still random)."""
    stride = args.max_length // 4 if args.stride is None else args.stride
    settings = {"truncation": args.truncation, "max_length": args.max_length, "head": args.head, "stride": stride,
                "pairs": pairs, "labels": list(labels), "steps": steps}
    (Path(directory) / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")


def inference_settings(trained: dict, **given) -> dict:
    """The truncation to predict with: what was given explicitly (not None), else what the model was
    fine-tuned with, else the defaults (chunks of 512 overlapping by 128)."""
    defaults = {"truncation": "chunks", "max_length": 512, "head": 128, "stride": None}
    settings = {k: given.get(k) if given.get(k) is not None else trained.get(k, v) for k, v in defaults.items()}
    if given.get("max_length") is not None and given.get("stride") is None:
        settings["stride"] = None  # a new window size: its own default overlap
    return settings


def load_fine_tuned(path, dtype=None) -> tuple[BertForSequenceClassification, BertTokenizer, dict]:
    """A fine-tuned classifier, its tokenizer and its recorded fine-tuning settings ({} when there are none).

    Refuses what would print confident-looking nonsense: a checkpoint whose classifier was never trained
    (a pretrained encoder: from_pretrained initialises the classifier at random) and non-finite weights.
    """
    log = logging.getLogger("minibert")
    level = log.level
    log.setLevel(logging.ERROR)  # the "initialised randomly" warning becomes the error below
    try:
        model, report = BertForSequenceClassification.from_pretrained(path, output_loading_info=True, dtype=dtype)
    finally:
        log.setLevel(level)
    if report.initialized:
        raise ValueError(f"--model {path} holds no trained classifier ({', '.join(report.initialized)} would be random): "
                         f"it was never fine-tuned; fine-tune it first with scripts/finetune.py --model {path}")
    bad = [name for name, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
    if bad:
        raise ValueError(f"--model {path}: {len(bad)} weight tensors hold NaN or inf ({', '.join(bad[:3])}, ...); "
                         f"the model is broken: use an earlier checkpoint or fine-tune again")
    settings_file = Path(path) / SETTINGS_FILE
    trained = json.loads(settings_file.read_text()) if settings_file.is_file() else {}
    if trained.get("steps") == 0:
        raise ValueError(f"--model {path} was saved before any training step (its {SETTINGS_FILE} says steps: 0), so "
                         f"its classifier is random; fine-tune it for at least one step")
    return model, BertTokenizer.from_pretrained(path), trained


@torch.inference_mode()
def classify_stream(model, tokenizer: BertTokenizer, texts: list[str], pairs: list[str] | None = None, *,
                    truncation: str = "chunks", max_length: int = 512, head: int = 128, stride: int | None = None,
                    batch_size: int | None = None, device="auto", precision: str = "auto", block: int | None = None,
                    progress: bool | None = False) -> Iterator[dict]:
    """Label each text (or pair), yielding {"label", "probability", "probabilities"} in input order.

    Texts are read `block` at a time (default: 16 batches' worth; a batch: DEFAULT_BATCH_SIZE windows unless given); within a block predict_logits sorts
    the windows by length, so a batch holds similar lengths and little is padded, and the block's results
    are yielded as soon as it is done. A text's probabilities are the softmax of its windows' mean logits.
    progress: True shows a bar of windows on stderr; None shows it only on a terminal and after 2 s.
    precision: "bf16" casts the model's weights to bf16 (in place, like the move to `device`, and once: later
    calls find them cast), "fp32" to float32; "auto" is bf16 on a GPU or a CPU with native bf16 units, else fp32.
    Casting once beats autocast, which casts every weight again in every batch.
    """
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("classify() takes a list of strings")
    if pairs is not None and len(pairs) != len(texts):
        raise ValueError(f"{len(pairs)} second texts for {len(texts)} texts; give one per text")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = pick_device(device, training=False) if isinstance(device, str) else device
    batch_size = batch_size or default_batch_size(device)
    precision = choose_precision(device, precision, training=False, say=False)
    stride = max_length // 4 if stride is None else stride
    model = model.to(device, torch.bfloat16 if precision == "bf16" else torch.float32)
    names = model.config.id2label or {i: str(i) for i in range(model.config.num_labels)}
    block = block or 16 * batch_size
    show = progress or (progress is None and sys.stderr.isatty())
    with tqdm(total=0, desc="windows", unit="window", disable=not show, delay=0 if progress else 2,
              mininterval=0 if progress else 0.1, dynamic_ncols=True) as bar:  # asked for: every batch shows
        for start in range(0, len(texts), block):
            part = range(start, min(start + block, len(texts)))
            reviews = [Review(f"text{i}", texts[i], 0, pairs[i] if pairs is not None else None) for i in part]
            examples = encode_reviews(reviews, tokenizer, truncation, max_length=max_length, head=head, stride=stride)
            bar.total += len(examples)  # known block by block: a long text shows its windows as they are done
            bar.refresh()
            logits = predict_logits(model, examples, batch_size, device, precision, tokenizer.pad_token_id, bar)
            broken = (~torch.isfinite(logits).all(-1)).nonzero()  # (K, 1): windows with a NaN or inf logit
            if len(broken):  # finite weights can still overflow: a NaN would be printed as a confident label
                first = part[examples[int(broken[0])].doc]
                raise ValueError(f"the model's outputs for text {first + 1} are not finite (NaN or inf) in {precision}: "
                                 f"its weights overflow; use an earlier checkpoint or fine-tune again")
            for p in mean_by_review(logits, examples, len(reviews)).softmax(-1):  # (C,) per text
                yield {"label": names[int(p.argmax())], "probability": float(p.max()),
                       "probabilities": {names[i]: float(x) for i, x in enumerate(p)}}


def classify(model, tokenizer: BertTokenizer, texts: list[str], pairs: list[str] | None = None, **kwargs) -> list[dict]:
    """Label each text with a fine-tuned classifier: {"label", "probability", "probabilities"} per text.

    Texts are cut exactly as in training (default: every window, logits averaged), so long reviews are read
    whole. Keyword arguments as for classify_stream.
    """
    return list(classify_stream(model, tokenizer, texts, pairs, **kwargs))
