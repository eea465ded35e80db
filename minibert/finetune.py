"""Fine-tuning BERT for sentiment on movie_reviews: the loop behind scripts/finetune.py.

    for each epoch:
        for each batch:   loss = cross_entropy(classifier(pooled [CLS]), label)
                          backward, clip the gradient norm, AdamW step, next learning rate
        evaluate on the test reviews (accuracy, F1, confusion matrix), save a resumable checkpoint

Everything that decides the result is an argument with a measured default (see FinetuneArgs), and the
batch order depends only on (seed, epoch), so an interrupted run resumed with --resume ends with the same
weights as one that never stopped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import data as D
from . import labelled_texts
from .heads import BertForSequenceClassification
from .optim import AdamW, LinearWarmupDecay, clip_grad_norm, param_groups
from .tokenizer import BertTokenizer
from .training import (
    Dist,
    StopFlag,
    TrainingError,
    autocast,
    check_finite,
    load_training_state,
    pick_device,
    plot_confusion,
    plot_curves,
    rng_state,
    save_training_state,
    seed_everything,
    set_rng_state,
)

# Arguments that must be the same for --resume to continue a run (the rest, e.g. the device, may change).
RESUME_KEYS = ("model", "truncation", "head", "max_length", "stride", "epochs", "batch_size", "lr", "warmup",
               "weight_decay", "max_grad_norm", "classifier_dropout", "val_size", "limit_train", "group_by_length",
               "data", "test_data", "test_fraction", "split_seed", "text_column", "pair_column", "label_column")


@dataclass
class FinetuneArgs:
    model: str = "bert-base-uncased"  # Hub id or local directory (HF layout) of the pretrained BERT
    output_dir: str = "runs/finetune"  # model/, checkpoint.pt, metrics.json and plots go here
    truncation: str = "chunks"  # head | tail | head+tail | chunks (see minibert/data.py)
    head: int = 128  # head+tail: tokens kept from the start (the rest from the end)
    max_length: int = 512  # tokens per example, [CLS] and [SEP] included
    stride: int | None = None  # chunks: tokens shared by consecutive windows; None = max_length // 4
    epochs: int = 4
    batch_size: int = 16
    lr: float = 1e-4  # peak learning rate
    warmup: float = 0.1  # fraction of the steps spent warming up
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0  # 0 disables clipping
    classifier_dropout: float | None = None  # None: the checkpoint's hidden dropout (0.1)
    seed: int = 0
    seeds: list[int] | None = None  # several runs, reported as mean +- std
    val_size: int = 0  # reviews held out of training (half per class) to pick the best epoch; 0: last epoch
    eval_batch_size: int = 64
    group_by_length: bool = True
    device: str = "auto"  # auto | cuda | cpu | cuda:1 ...
    precision: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | bf16 | fp32
    compile: bool = False  # torch.compile the model and the AdamW update
    resume: bool = False  # continue from output_dir/checkpoint.pt
    stop_after_steps: int | None = None  # behave as if Ctrl-C came after this many steps of this run (time limits)
    limit_train: int | None = None  # use only this many training reviews (half per class): quick checks
    limit_test: int | None = None  # likewise for the test reviews
    log_every: int = 10  # steps between progress-bar updates (each reads the loss: a device sync)
    plots: bool = True
    save_model: bool = True
    progress: bool = True
    # Your own data instead of movie_reviews (see minibert/labelled_texts.py)
    data: str | None = None  # a folder with one subfolder of .txt files per class, or a .csv / .tsv / .jsonl file
    test_data: str | None = None  # the test set in the same layout; None: hold out test_fraction of --data
    test_fraction: float = 0.2  # share of each class held out for testing when there is no --test-data
    split_seed: int = 0  # the held-out test (and val) examples; the same for every --seeds run
    text_column: str = "text"
    pair_column: str | None = None  # second text of sentence pairs; None: "text_pair" when the table has it
    label_column: str = "label"

    def validate(self) -> None:
        if self.truncation not in D.STRATEGIES:
            raise ValueError(f"--truncation must be one of {D.STRATEGIES}, got {self.truncation!r}")
        for name in ("epochs", "batch_size", "eval_batch_size", "max_length", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"--warmup is a fraction of the steps in [0, 1), got {self.warmup}")
        if self.val_size < 0 or self.val_size % 2:
            raise ValueError(f"--val-size must be an even number >= 0 (half per class), got {self.val_size}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"--precision must be auto, bf16 or fp32, got {self.precision!r}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"--test-fraction must be between 0 and 1 (exclusive), got {self.test_fraction}")
        if self.test_data is not None and self.data is None:
            raise ValueError("--test-data goes with --data (movie_reviews has its fixed test split)")


@dataclass
class Data:
    train: list[D.Example]
    test: list[D.Example]
    val: list[D.Example] = field(default_factory=list)
    n_test_docs: int = 0
    n_val_docs: int = 0
    labels: tuple[str, ...] = D.LABELS  # label i is labels[i]
    pairs: bool = False  # sentence pairs (segments A and B)


def prepare_data(args: FinetuneArgs, tokenizer: BertTokenizer, reviews: list[D.Review] | None = None) -> Data:
    """Read the corpus (or --data), split it, and tokenize each review once."""
    if args.data:
        return prepare_own_data(args, tokenizer)
    reviews = reviews if reviews is not None else D.load_movie_reviews()
    train, test = D.split(reviews)
    val = []
    if args.val_size:
        cut = 800 - args.val_size // 2  # the highest-numbered training files of each class
        val = [r for r in train if D.file_number(r.fileid) >= cut]
        train = [r for r in train if D.file_number(r.fileid) < cut]
    if args.limit_train:
        train = balanced_subset(train, args.limit_train)
    if args.limit_test:
        test = balanced_subset(test, args.limit_test)
    stride = args.max_length // 4 if args.stride is None else args.stride
    enc = dict(tokenizer=tokenizer, strategy=args.truncation, max_length=args.max_length, head=args.head, stride=stride)
    return Data(D.encode_reviews(train, **enc), D.encode_reviews(test, **enc), D.encode_reviews(val, **enc), len(test), len(val))


def prepare_own_data(args: FinetuneArgs, tokenizer: BertTokenizer) -> Data:
    """--data: read and check the user's texts, hold out the test (and val) examples stratified, tokenize."""
    train, test, labels = labelled_texts.load(
        args.data, args.test_data, test_fraction=args.test_fraction, seed=args.split_seed,
        text_column=args.text_column, pair_column=args.pair_column, label_column=args.label_column,
    )
    val = []
    if args.val_size:
        train, val = labelled_texts.stratified_split(train, min(args.val_size / len(train), 1.0), args.split_seed + 1)
    if args.limit_train:
        train = balanced_subset(train, args.limit_train)
    if args.limit_test:
        test = balanced_subset(test, args.limit_test)
    pairs = train[0].pair is not None
    if pairs and args.truncation != "head":
        raise ValueError(f"--data {args.data} holds sentence pairs, which are cut longest-first: "
                         f"use --truncation head (not {args.truncation})")
    stride = args.max_length // 4 if args.stride is None else args.stride
    enc = dict(tokenizer=tokenizer, strategy=args.truncation, max_length=args.max_length, head=args.head, stride=stride)
    return Data(D.encode_reviews(train, **enc), D.encode_reviews(test, **enc), D.encode_reviews(val, **enc), len(test),
                len(val), labels, pairs)


def balanced_subset(reviews: list[D.Review], n: int) -> list[D.Review]:
    """The first n // C reviews of each of the C classes, in their original order."""
    classes = sorted({r.label for r in reviews})
    keep = {id(r) for c in classes for r in [r for r in reviews if r.label == c][: n // len(classes)]}
    return [r for r in reviews if id(r) in keep]


# ---- Evaluation ---------------------------------------------------------------------------------------


@torch.inference_mode()
def predict_logits(model, examples: list[D.Example], batch_size: int, device, precision: str, pad_id: int = 0, bar=None) -> torch.Tensor:
    """(N, num_labels) float32 logits, one row per example, computed in length-sorted batches (a tqdm `bar`
    advances by each batch's examples)."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
    out = torch.empty(len(examples), model.config.num_labels)
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        b = D.collate([examples[i] for i in idx], pad_id)
        with autocast(device, precision):
            logits = model(b["input_ids"].to(device), attention_mask=_to(b["attention_mask"], device),
                           token_type_ids=_to(b["token_type_ids"], device)).logits
        out[idx] = logits.float().cpu()
        if bar is not None:
            bar.update(len(idx))
    model.train(was_training)
    return out


def evaluate(model, examples: list[D.Example], n_docs: int, args: FinetuneArgs, device, precision: str, pad_id: int = 0) -> dict:
    """Accuracy, F1 of the positive class and the confusion matrix, per review."""
    logits = predict_logits(model, examples, args.eval_batch_size, device, precision, pad_id)
    return review_metrics(logits, examples, n_docs)


def review_metrics(logits: torch.Tensor, examples: list[D.Example], n_docs: int) -> dict:
    """Score reviews, not windows: a review's logits are the mean over its examples (one unless "chunks")."""
    doc = torch.tensor([e.doc for e in examples])
    labels = torch.zeros(n_docs, dtype=torch.long).index_put_((doc,), torch.tensor([e.label for e in examples]))
    return classification_metrics(mean_by_review(logits, examples, n_docs).argmax(-1), labels, logits.shape[1])


def mean_by_review(logits: torch.Tensor, examples: list[D.Example], n_docs: int) -> torch.Tensor:
    """(N examples, C) -> (n_docs, C): the mean of each review's windows."""
    logits = torch.as_tensor(logits).float()
    doc = torch.tensor([e.doc for e in examples])
    total = torch.zeros(n_docs, logits.shape[1]).index_add_(0, doc, logits)
    return total / torch.bincount(doc, minlength=n_docs).clamp(min=1)[:, None]


def classification_metrics(pred: torch.Tensor, labels: torch.Tensor, num_classes: int = 2) -> dict:
    """Accuracy, the confusion matrix (rows true, columns predicted), per-class precision / recall / F1 and
    their macro mean. "f1" is the F1 of the positive class (label 1) with two classes, the macro F1 with more.

    >>> m = classification_metrics(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 3)
    >>> m["confusion"], m["accuracy"], round(m["macro_f1"], 4)
    ([[1, 0, 0], [0, 1, 0], [0, 1, 1]], 0.75, 0.7778)
    """
    cm = [[int(((labels == t) & (pred == p)).sum()) for p in range(num_classes)] for t in range(num_classes)]
    per_class = []
    for c in range(num_classes):
        tp = cm[c][c]
        fp = sum(cm[t][c] for t in range(num_classes)) - tp
        fn = sum(cm[c]) - tp
        per_class.append({"precision": tp / (tp + fp) if tp else 0.0, "recall": tp / (tp + fn) if tp else 0.0,
                          "f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0, "support": sum(cm[c])})
    macro_f1 = sum(c["f1"] for c in per_class) / num_classes
    return {"accuracy": float((pred == labels).float().mean()), "f1": per_class[1]["f1"] if num_classes == 2 else macro_f1,
            "macro_f1": macro_f1, "confusion": cm, "per_class": per_class, "n": int(labels.numel())}


# ---- Prediction -----------------------------------------------------------------------------------------

SETTINGS_FILE = "minibert_finetune.json"  # beside config.json: how the saved model was fine-tuned


def save_inference_settings(directory: Path, args: FinetuneArgs, labels: tuple[str, ...], pairs: bool) -> None:
    """Record how texts were cut in training, so that prediction cuts them the same way."""
    stride = args.max_length // 4 if args.stride is None else args.stride
    settings = {"truncation": args.truncation, "max_length": args.max_length, "head": args.head, "stride": stride,
                "pairs": pairs, "labels": list(labels)}
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
    return model, BertTokenizer.from_pretrained(path), trained


@torch.inference_mode()
def classify_stream(model, tokenizer: BertTokenizer, texts: list[str], pairs: list[str] | None = None, *,
                    truncation: str = "chunks", max_length: int = 512, head: int = 128, stride: int | None = None,
                    batch_size: int = 64, device="auto", precision: str = "auto", block: int | None = None,
                    progress: bool | None = False) -> Iterator[dict]:
    """Label each text (or pair), yielding {"label", "probability", "probabilities"} in input order.

    Texts are read `block` at a time (default: 16 batches' worth); within a block predict_logits sorts
    the windows by length, so a batch holds similar lengths and little is padded, and the block's results
    are yielded as soon as it is done. A text's probabilities are the softmax of its windows' mean logits.
    progress: True shows a bar of windows on stderr; None shows it only on a terminal and after 2 s.
    """
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("classify() takes a list of strings")
    if pairs is not None and len(pairs) != len(texts):
        raise ValueError(f"{len(pairs)} second texts for {len(texts)} texts; give one per text")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = pick_device(device, training=False) if isinstance(device, str) else device
    precision = ("bf16" if device.type == "cuda" else "fp32") if precision == "auto" else precision
    stride = max_length // 4 if stride is None else stride
    model = model.to(device)
    names = model.config.id2label or {i: str(i) for i in range(model.config.num_labels)}
    block = block or 16 * batch_size
    show = progress or (progress is None and sys.stderr.isatty())
    with tqdm(total=0, desc="windows", unit="window", disable=not show, delay=0 if progress else 2, dynamic_ncols=True) as bar:
        for start in range(0, len(texts), block):
            part = range(start, min(start + block, len(texts)))
            reviews = [D.Review(f"text{i}", texts[i], 0, pairs[i] if pairs is not None else None) for i in part]
            examples = D.encode_reviews(reviews, tokenizer, truncation, max_length=max_length, head=head, stride=stride)
            bar.total += len(examples)  # known block by block: a long text shows its windows as they are done
            bar.refresh()
            logits = predict_logits(model, examples, batch_size, device, precision, tokenizer.pad_token_id, bar)
            for p in mean_by_review(logits, examples, len(reviews)).softmax(-1):  # (C,) per text
                yield {"label": names[int(p.argmax())], "probability": float(p.max()),
                       "probabilities": {names[i]: float(x) for i, x in enumerate(p)}}


def classify(model, tokenizer: BertTokenizer, texts: list[str], pairs: list[str] | None = None, **kwargs) -> list[dict]:
    """Label each text with a fine-tuned classifier: {"label", "probability", "probabilities"} per text.

    Texts are cut exactly as in training (default: every window, logits averaged), so long reviews are read
    whole. Keyword arguments as for classify_stream.
    """
    return list(classify_stream(model, tokenizer, texts, pairs, **kwargs))


def _to(t, device):
    return None if t is None else t.to(device, non_blocking=True)


# ---- Training -----------------------------------------------------------------------------------------


def train_one(args: FinetuneArgs, data: Data, tokenizer: BertTokenizer, seed: int, out: Path, dist: Dist | None = None) -> dict:
    """One fine-tuning run with one seed. Returns its metrics (also written to out/metrics.json)."""
    dist = dist or Dist()
    device = pick_device(args.device)
    if dist.world > 1 and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    precision = ("bf16" if device.type == "cuda" else "fp32") if args.precision == "auto" else args.precision
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    started = time.perf_counter()

    seed_everything(seed)
    overrides = {"num_labels": len(data.labels), "id2label": dict(enumerate(data.labels))}
    if args.classifier_dropout is not None:
        overrides["classifier_dropout"] = args.classifier_dropout
    model = BertForSequenceClassification.from_pretrained(args.model, **overrides).to(device).train()
    optimizer = AdamW(param_groups(model, args.weight_decay), lr=args.lr, compile=args.compile)
    steps_per_epoch = math.ceil(len(data.train) / args.batch_size)
    total = steps_per_epoch * args.epochs
    schedule = LinearWarmupDecay(optimizer, warmup_steps=int(args.warmup * total), total_steps=total)
    history = {"step": [], "loss": [], "lr": [], "epochs": []}
    start_epoch, start_batch, best, elapsed_before = 0, 0, None, 0.0

    if args.resume and ckpt_path.exists():
        state = load_training_state(ckpt_path)
        saved = state["args"]
        changed = [k for k in RESUME_KEYS if saved.get(k) != getattr(args, k)]
        if changed or state["seed"] != seed:
            raise TrainingError(
                f"--resume: {ckpt_path} was written with different settings ({', '.join(changed) or 'seed'}); "
                f"use the same arguments or another --output-dir"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        set_rng_state(state["rng"])
        history, best, elapsed_before = state["history"], state["best"], state["elapsed"]
        start_epoch, start_batch = state["epoch"], state["batch"]
        if dist.main:
            tqdm.write(f"resuming {out} at epoch {start_epoch + 1}, batch {start_batch}")
    elif args.resume and dist.main:
        tqdm.write(f"--resume: no checkpoint in {out} yet, starting from the beginning")

    net = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    forward = torch.compile(net) if args.compile else net

    def save(epoch: int, batch: int) -> None:
        if dist.main:
            save_training_state(
                ckpt_path, model=model.state_dict(), optimizer=optimizer.state_dict(), schedule=schedule.state_dict(),
                rng=rng_state(), epoch=epoch, batch=batch, history=history, best=best, seed=seed,
                args=dataclasses.asdict(args), elapsed=elapsed_before + time.perf_counter() - started,
            )

    status = "completed"
    step = first_step = start_epoch * steps_per_epoch + start_batch
    with StopFlag() as stop:
        for epoch in range(start_epoch, args.epochs):
            batches = D.batch_order(data.train, args.batch_size, shuffle=True, seed=seed, epoch=epoch, group_by_length=args.group_by_length)
            bar = tqdm(total=len(batches), initial=start_batch if epoch == start_epoch else 0, desc=f"seed {seed} epoch {epoch + 1}/{args.epochs}",
                       disable=not (args.progress and dist.main), dynamic_ncols=True)
            pending, t_log, n_log = [], time.perf_counter(), 0
            for b in range(start_batch if epoch == start_epoch else 0, len(batches)):
                batch = D.collate([data.train[i] for i in batches[b][dist.rank :: dist.world]], tokenizer.pad_token_id)
                with autocast(device, precision):
                    loss = forward(batch["input_ids"].to(device, non_blocking=True),
                                   attention_mask=_to(batch["attention_mask"], device),
                                   token_type_ids=_to(batch["token_type_ids"], device),
                                   labels=batch["labels"].to(device, non_blocking=True)).loss
                loss.backward()
                if args.max_grad_norm:
                    clip_grad_norm(model.parameters(), args.max_grad_norm)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                step += 1
                pending.append((step, dist.mean(loss.detach()), schedule.lr))
                n_log += len(batches[b])
                bar.update(1)
                if args.stop_after_steps is not None and step - first_step >= args.stop_after_steps:
                    stop.set = True
                if len(pending) >= args.log_every or b == len(batches) - 1 or stop.set:
                    values = torch.stack([l for _, l, _ in pending]).float().cpu()  # the one sync per log interval
                    check_finite(values, step)
                    for (s, _, lr), v in zip(pending, values.tolist()):
                        history["step"].append(s), history["loss"].append(v), history["lr"].append(lr)
                    rate = n_log / (time.perf_counter() - t_log)
                    bar.set_postfix(loss=f"{values.mean():.4f}", lr=f"{schedule.lr:.2e}", ex_s=f"{rate:.0f}")
                    pending, t_log, n_log = [], time.perf_counter(), 0
                if stop.set:
                    break
            bar.close()
            if stop.set:
                status = "interrupted"
                save(epoch, b + 1)
                if dist.main:
                    tqdm.write(f"saved {ckpt_path}; continue with the same command plus --resume")
                break

            # End of epoch: evaluate on rank 0, keep the best model, checkpoint.
            if dist.main:
                record = {"epoch": epoch + 1, "step": step, **evaluate(model, data.test, data.n_test_docs, args, device, precision, tokenizer.pad_token_id)}
                if data.val:
                    record["val"] = evaluate(model, data.val, data.n_val_docs, args, device, precision, tokenizer.pad_token_id)
                history["epochs"].append(record)
                score = record["val"]["accuracy"] if data.val else record["epoch"]  # no val set: the last epoch
                if best is None or score > best["score"]:
                    best = {"score": score, **record}
                    if args.save_model and (data.val or epoch + 1 == args.epochs):
                        model.save_pretrained(out / "model", tokenizer=tokenizer)
                        save_inference_settings(out / "model", args, data.labels, data.pairs)
                tqdm.write(f"seed {seed} epoch {epoch + 1}: test accuracy {record['accuracy']:.4f}  F1 {record['f1']:.4f}"
                           + (f"  val accuracy {record['val']['accuracy']:.4f}" if data.val else ""))
            save(epoch + 1, 0)
            dist.barrier()

    metrics = {
        "status": status,
        "seed": seed,
        "args": dataclasses.asdict(args),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": precision,
        "wall_seconds": elapsed_before + time.perf_counter() - started,
        "steps": step,
        "history": history,
        "selected": best,  # the epoch whose model is in out/model
        "labels": list(data.labels),
    }
    if dist.main:
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        if args.plots and history["step"]:
            plot_curves(history, out / "curves.png", title=f"seed {seed}")
            if best:
                plot_confusion(best["confusion"], data.labels, out / "confusion.png", title=f"test, epoch {best['epoch']}")
    return metrics


def run(args: FinetuneArgs, reviews: list[D.Review] | None = None) -> dict:
    """Fine-tune once per seed; write output_dir/summary.json with the mean and std of the test accuracy."""
    args.validate()
    device_type = "cuda" if (args.device == "auto" and torch.cuda.is_available()) or args.device.startswith("cuda") else "cpu"
    dist = Dist.from_env(device_type)
    started = time.perf_counter()
    tokenizer = BertTokenizer.from_pretrained(args.model)
    data = prepare_data(args, tokenizer, reviews)
    seeds = args.seeds or [args.seed]
    out = Path(args.output_dir)
    runs = []
    for seed in seeds:
        runs.append(train_one(args, data, tokenizer, seed, out / f"seed{seed}" if len(seeds) > 1 else out, dist))
        if runs[-1]["status"] != "completed":
            break
    done = [r for r in runs if r["status"] == "completed" and r["selected"]]  # only rank 0 evaluates
    acc = [r["selected"]["accuracy"] for r in done]
    completed = sum(r["status"] == "completed" for r in runs) == len(seeds)
    summary = {
        "status": "completed" if completed else "interrupted",
        "seeds": [r["seed"] for r in done],
        "accuracy": acc,
        "accuracy_mean": statistics.mean(acc) if acc else None,
        "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
        "f1_mean": statistics.mean(r["selected"]["f1"] for r in done) if done else None,
        "macro_f1_mean": statistics.mean(r["selected"]["macro_f1"] for r in done) if done else None,
        "labels": list(data.labels),
        "wall_seconds": time.perf_counter() - started,
        "train_examples": len(data.train),
        "test_reviews": data.n_test_docs,
        "args": dataclasses.asdict(args),
    }
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        if acc:
            print(f"test accuracy over {len(acc)} seed(s): {100 * summary['accuracy_mean']:.2f} +- "
                  f"{100 * summary['accuracy_std']:.2f}  ({', '.join(f'{100 * a:.2f}' for a in acc)}), "
                  f"wall {summary['wall_seconds']:.0f} s")
    if dist.world > 1:
        torch.distributed.destroy_process_group()
    return summary
