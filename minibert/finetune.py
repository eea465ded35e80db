"""Fine-tuning BERT for sentiment on movie_reviews (or on your own labelled texts, --data): the loop behind
scripts/finetune.py. Classifying texts with the fine-tuned model is predict.py's job (behind scripts/predict.py).

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
import hashlib
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import labelled_texts
from .data import (
    LABELS,
    N_FOLDS,
    STRATEGIES,
    Example,
    Review,
    batch_order,
    collate,
    cv_split,
    encode_reviews,
    file_number,
    load_movie_reviews,
    split,
)
from .config import BertConfig
from .heads import BertForSequenceClassification
from .hub import resolve
from .optim import AdamW, LinearWarmupDecay, param_groups
from .predict import SETTINGS_FILE, mean_by_review, predict_logits, save_inference_settings
from .tokenizer import BertTokenizer
from .training import (
    Dist,
    LossLog,
    StopFlag,
    WeightAverage,
    autocast,
    check_options,
    check_resume,
    choose_precision,
    load_training_state,
    model_files,
    optimizer_step,
    pick_device,
    plot_confusion,
    plot_curves,
    prepare_output_dir,
    release_output_dir,
    resume_from,
    save_checkpoint,
    saving,
    seed_everything,
    to_device,
    warn_cpu_training,
    write_json,
    written,
)

# Arguments that must be the same for --resume to continue a run (the rest, e.g. the device, may change).
RESUME_KEYS = ("model", "truncation", "head", "max_length", "stride", "epochs", "batch_size", "lr", "warmup",
               "weight_decay", "max_grad_norm", "layer_decay", "classifier_dropout", "val_size", "limit_train",
               "limit_test", "test", "group_by_length", "cv", "average_last", "data", "test_data", "test_fraction",
               "split_seed", "text_column", "pair_column", "label_column")

# Named sets of defaults (scripts/finetune.py --preset NAME; options given beside it still apply on top).
# "cpu": the pretrained MiniLM (6 layers, 384 wide) fine-tuned on a laptop CPU in minutes: 256 tokens a review
# (head+tail) instead of every 512-token window. Chosen on validation only (python -m benchmarks.sweep --cpu,
# benchmarks/results/sweep-cpu-validation.json): trained on cv200-cv799, scored on cv000-cv199, one seed, no test
# file read. It scored 82.0, above 1 epoch (77.5), head+tail 128 x 3 epochs (80.0) and lr 5e-5 (78.5); NBSVM-bi
# 88.0 on the same fold. 3 epochs is still owed; tests/test_bench.py fails when a recipe there ranks above this.
PRESETS = {
    "cpu": {"model": "sentence-transformers/all-MiniLM-L6-v2", "truncation": "head+tail", "max_length": 256,
            "head": 128, "epochs": 2, "batch_size": 16, "lr": 1e-4, "output_dir": "runs/finetune-cpu"},
}


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
    layer_decay: float = 1.0  # layer-wise lr decay: layer i of L learns at lr * layer_decay ** (L - i); 1 = off
    average_last: int = 0  # the model kept is the mean of the weights at the end of the last N epochs; 0 = off
    classifier_dropout: float | None = None  # None: the checkpoint's hidden dropout (0.1)
    seed: int = 0
    seeds: list[int] | None = None  # several runs, reported as mean +- std
    val_size: int = 0  # reviews held out of training (half per class) to pick the best epoch; 0: last epoch
    test: bool = True  # evaluate on the test reviews; --no-test for choosing a recipe on --val-size alone
    cv: int = 0  # 10: Pang & Lee's 10-fold cross-validation over the file-name folds; 0: the fixed split
    folds: list[int] | None = None  # with --cv 10: run only these folds (1-10), e.g. to split the work
    eval_batch_size: int = 64
    group_by_length: bool = True
    device: str = "auto"  # auto | cuda | cpu | cuda:1 ...
    precision: str = "auto"  # auto (bf16 on a GPU or a CPU with native bf16 units, else fp32) | bf16 | fp32
    compile: bool = False  # torch.compile the model and the AdamW update
    resume: bool = False  # continue from output_dir/checkpoint.pt
    overwrite: bool = False  # replace the earlier run in output_dir (its files only)
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
        if self.truncation not in STRATEGIES:
            raise ValueError(f"--truncation must be one of {STRATEGIES}, got {self.truncation!r}")
        check_options(self, positive=("epochs", "batch_size", "eval_batch_size", "max_length", "log_every"),
                      limits=("limit_train", "limit_test", "stop_after_steps"))
        if self.val_size < 0:
            raise ValueError(f"--val-size must be >= 0, got {self.val_size}")
        if self.data is None and self.val_size % 2:  # movie_reviews' rules; own data is checked once it is read
            raise ValueError(f"--val-size must be an even number (half per class of movie_reviews), got {self.val_size}")
        if self.data is None and self.val_size >= 1600:
            raise ValueError(f"--val-size {self.val_size} leaves no training reviews (there are 1600)")
        bad = next((f.name for f in dataclasses.fields(self) if isinstance(getattr(self, f.name), float)
                    and not math.isfinite(getattr(self, f.name))), None)
        if bad:
            raise ValueError(f"--{bad.replace('_', '-')} must be a finite number, got {getattr(self, bad)}")
        columns = [c for c in (self.text_column, self.pair_column, self.label_column) if c is not None]
        if len(set(columns)) < len(columns):
            raise ValueError(f"--text-column, --pair-column and --label-column must name different columns, got "
                             f"{', '.join(map(repr, columns))}")
        if self.classifier_dropout is not None and not 0 <= self.classifier_dropout < 1:
            raise ValueError(f"--classifier-dropout must be in [0, 1), got {self.classifier_dropout}")
        if not 0 <= self.average_last <= self.epochs:
            raise ValueError(f"--average-last must be between 0 (off) and --epochs ({self.epochs}), got {self.average_last}")
        if not 0 < self.layer_decay <= 1:
            raise ValueError(f"--layer-decay must be in (0, 1] (1 turns it off), got {self.layer_decay}")
        if not self.test and not self.val_size:
            raise ValueError("--no-test needs --val-size N: without the test reviews, only held-out training reviews can score a run")
        if self.cv not in (0, N_FOLDS):
            raise ValueError(f"--cv must be {N_FOLDS} (Pang & Lee's folds) or 0 (the fixed split), got {self.cv}")
        if self.folds is not None and (not self.cv or not all(1 <= f <= N_FOLDS for f in self.folds)):
            raise ValueError(f"--folds takes fold numbers from 1 to {N_FOLDS}, with --cv {N_FOLDS}; got {self.folds}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"--test-fraction must be between 0 and 1 (exclusive), got {self.test_fraction}")
        if self.test_data is not None and self.data is None:
            raise ValueError("--test-data goes with --data (movie_reviews has its fixed test split)")
        if self.data is not None and self.cv:
            raise ValueError("--cv 10 runs movie_reviews' ten folds; with --data, give --test-data or --test-fraction")


@dataclass
class Data:
    train: list[Example]
    test: list[Example]
    val: list[Example] = field(default_factory=list)
    n_test_docs: int = 0
    n_val_docs: int = 0
    labels: tuple[str, ...] = LABELS  # label i is labels[i]
    pairs: bool = False  # sentence pairs (segments A and B)
    fingerprint: str = ""  # sha256 of the examples: a resume on other data is refused


def fingerprint(data: Data) -> str:
    """sha256 of the label names and of every example's token ids, label and split: any changed row, class or
    split of the data gives another fingerprint."""
    h = hashlib.sha256(json.dumps(list(data.labels)).encode())
    for name, examples in (("train", data.train), ("test", data.test), ("val", data.val)):
        h.update(name.encode())
        for e in examples:
            h.update(json.dumps([e.input_ids, e.token_type_ids, e.label, e.doc]).encode())
    return h.hexdigest()


def prepare_data(args: FinetuneArgs, tokenizer: BertTokenizer, reviews: list[Review] | None = None, fold: int | None = None) -> Data:
    """Read the corpus, split it (the fixed split, or one of the ten folds), and tokenize each review once.

    The validation reviews (--val-size) are the highest-numbered training files of each class: they are
    never test reviews, so choosing an epoch or a recipe on them leaves the test split unseen."""
    if args.data:
        return prepare_own_data(args, tokenizer)
    reviews = reviews if reviews is not None else load_movie_reviews()
    train, test = split(reviews) if fold is None else cv_split(reviews, fold)
    if not args.test:
        test = []
    val = []
    if args.val_size:
        held = {id(r) for c in (0, 1) for r in sorted((r for r in train if r.label == c), key=lambda r: file_number(r.fileid))[-(args.val_size // 2):]}
        val = [r for r in train if id(r) in held]
        train = [r for r in train if id(r) not in held]
    if args.limit_train:
        train = balanced_subset(train, args.limit_train)
    if args.limit_test:
        test = balanced_subset(test, args.limit_test)
    return encode_splits(args, tokenizer, train, test, val)


def encode_splits(args: FinetuneArgs, tokenizer: BertTokenizer, train: list[Review], test: list[Review], val: list[Review],
                  labels: tuple[str, ...] = LABELS, pairs: bool = False) -> Data:
    """Tokenize each review once and cut it with the run's truncation strategy."""
    stride = args.max_length // 4 if args.stride is None else args.stride
    enc = dict(tokenizer=tokenizer, strategy=args.truncation, max_length=args.max_length, head=args.head, stride=stride)
    data = Data(encode_reviews(train, **enc), encode_reviews(test, **enc), encode_reviews(val, **enc), len(test), len(val),
                labels, pairs)
    data.fingerprint = fingerprint(data)
    return data


def prepare_own_data(args: FinetuneArgs, tokenizer: BertTokenizer) -> Data:
    """--data: read and check the user's texts, hold out the test (and val) examples stratified, tokenize."""
    train, test, labels = labelled_texts.load(
        args.data, args.test_data, test_fraction=args.test_fraction, seed=args.split_seed,
        text_column=args.text_column, pair_column=args.pair_column, label_column=args.label_column,
    )
    read = train + test
    if not args.test:
        test = []
    val = []
    if args.val_size:
        train, val = labelled_texts.stratified_split(train, 0.0, args.split_seed + 1, total=args.val_size, flag="--val-size",
                                                         names=labels)
    if args.limit_train:
        train = balanced_subset(train, args.limit_train, len(labels))
    if args.limit_test:
        test = balanced_subset(test, args.limit_test)
    if int(os.environ.get("RANK", "0")) == 0:  # what was read, before any training: a misread table shows here
        print(f"--data {args.data}: read {len(read)} examples ({labelled_texts.count_classes(read, labels)}); "
              f"training on {len(train)}, validating on {len(val)}, testing on {len(test)}", flush=True)
    pairs = train[0].pair is not None
    if pairs and args.truncation != "head":
        raise ValueError(f"--data {args.data} holds sentence pairs, which are cut longest-first: "
                         f"use --truncation head (not {args.truncation})")
    return encode_splits(args, tokenizer, train, test, val, labels, pairs)


def balanced_subset(reviews: list[Review], n: int, n_classes: int | None = None) -> list[Review]:
    """The first n reviews, n // C per class of the C classes (the first n % C classes get one more: an odd n
    gives neg the extra one), in their original order. With n_classes (--limit-train on your own data), n must
    give every class at least one example: a classifier never shown a class cannot learn it."""
    if n_classes is not None and n < n_classes:
        raise ValueError(f"--limit-train {n} is fewer than the {n_classes} classes, so some class would have no "
                         f"training example; give at least {n_classes}")
    classes = sorted({r.label for r in reviews})
    share = {c: n // len(classes) + (k < n % len(classes)) for k, c in enumerate(classes)}
    keep = {id(r) for c in classes for r in [r for r in reviews if r.label == c][: share[c]]}
    return [r for r in reviews if id(r) in keep]


# ---- Evaluation ---------------------------------------------------------------------------------------


def evaluate(model, examples: list[Example], n_docs: int, args: FinetuneArgs, device, precision: str, pad_id: int = 0) -> dict:
    """Accuracy, F1 of the positive class and the confusion matrix, per review."""
    logits = predict_logits(model, examples, args.eval_batch_size, device, precision, pad_id)
    return review_metrics(logits, examples, n_docs)


def review_metrics(logits: torch.Tensor, examples: list[Example], n_docs: int) -> dict:
    """Score reviews, not windows: a review's logits are the mean over its examples (one unless "chunks")."""
    doc = torch.tensor([e.doc for e in examples])
    labels = torch.zeros(n_docs, dtype=torch.long).index_put_((doc,), torch.tensor([e.label for e in examples]))
    return classification_metrics(mean_by_review(logits, examples, n_docs).argmax(-1), labels, logits.shape[1])


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


# ---- Training -----------------------------------------------------------------------------------------


def train_one(args: FinetuneArgs, data: Data, tokenizer: BertTokenizer, seed: int, out: Path, dist: Dist | None = None) -> dict:
    """One fine-tuning run with one seed. Returns its metrics (also written to out/metrics.json)."""
    dist = dist or Dist()
    device = pick_device(args.device, training=False, local_rank=dist.local_rank if dist.world > 1 else None)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    started = time.perf_counter()

    seed_everything(seed)
    model = load_classifier(args, device, data.labels)
    precision = choose_precision(device, args.precision, say=dist.main)  # said once the model loaded: a bad one is the only line
    if dist.main:
        warn_cpu_training(device, model)
    steps_per_epoch = math.ceil(len(data.train) / args.batch_size)
    total = steps_per_epoch * args.epochs
    optimizer, schedule = make_optimizer(model, args, total)
    history = {"step": [], "loss": [], "lr": [], "epochs": []}
    start_epoch, start_batch, best, elapsed_before, average = 0, 0, None, 0.0, WeightAverage()
    if args.resume and ckpt_path.exists():
        state = resume_from(ckpt_path, args, RESUME_KEYS, model, optimizer, schedule, seed=seed, fingerprint=data.fingerprint)
        history, best, elapsed_before = state["history"], state["best"], state["elapsed"]
        average.load_state_dict(state.get("average"))
        start_epoch, start_batch = state["epoch"], state["batch"]
        if dist.main:
            tqdm.write(f"resuming {out} at epoch {start_epoch + 1}, batch {start_batch}")
    elif args.resume and dist.main:
        tqdm.write(f"--resume: no checkpoint in {out} yet, starting from the beginning")

    def save(epoch: int, batch: int) -> None:
        if dist.main:  # every rank holds the same weights; one writes them
            save_checkpoint(ckpt_path, model, optimizer, schedule, args, elapsed_before + time.perf_counter() - started,
                            epoch=epoch, batch=batch, history=history, best=best, seed=seed, average=average.state_dict(),
                            fingerprint=data.fingerprint)

    forward = wrap_model(model, args, dist, device)
    log = LossLog(history, ("loss",), args.log_every, ckpt_path)
    status, stopped_by, stopping, step = "completed", None, False, start_epoch * steps_per_epoch + start_batch
    first_step = step
    with StopFlag() as stop:
        dist.barrier()  # every rank handles SIGTERM from here on, before the run says so
        if dist.main:
            tqdm.write(f"seed {seed}: {total - step} steps to go; Ctrl-C or SIGTERM saves a checkpoint and stops", file=sys.stderr)
        for epoch in range(start_epoch, args.epochs):
            batches = batch_order(data.train, args.batch_size, shuffle=True, seed=seed, epoch=epoch, group_by_length=args.group_by_length)
            first = start_batch if epoch == start_epoch else 0
            bar = tqdm(total=len(batches), initial=first, desc=f"seed {seed} epoch {epoch + 1}/{args.epochs}",
                       disable=not (args.progress and dist.main), dynamic_ncols=True)
            for b in range(first, len(batches)):
                batch = collate([data.train[i] for i in batches[b][dist.rank :: dist.world]], tokenizer.pad_token_id)
                with autocast(device, precision):
                    loss = forward(batch["input_ids"].to(device, non_blocking=True),
                                   attention_mask=to_device(batch["attention_mask"], device),
                                   token_type_ids=to_device(batch["token_type_ids"], device),
                                   labels=batch["labels"].to(device, non_blocking=True)).loss
                loss.backward()
                optimizer_step(model, optimizer, schedule, args.max_grad_norm)
                step += 1
                log.add(step, [dist.mean(loss.detach())], schedule.lr, len(batches[b]))
                bar.update(1)
                if args.stop_after_steps is not None and step - first_step >= args.stop_after_steps:
                    stop.set = True
                # Under torchrun all ranks must stop at the same step: they agree once per log interval
                # (an all-reduce, a device sync), not every step; alone, a process stops at once.
                stopping = dist.any(stop.set) if dist.world == 1 or log.due() else False
                if log.due() or b == len(batches) - 1 or stopping:
                    bar.set_postfix(**log.flush())
                if stopping:
                    break
            bar.close()
            if stopping:
                status, stopped_by = "interrupted", stop.reason or "--stop-after-steps"
                save(epoch, b + 1)
                if dist.main:
                    tqdm.write(f"saved {ckpt_path}; continue with the same command plus --resume")
                break
            if dist.main:  # end of epoch: evaluate on rank 0, keep the best model
                best = end_of_epoch(model, tokenizer, data, args, seed, epoch, step, history, best, out, device, precision)
            if epoch >= args.epochs - args.average_last:
                average.add(model)
            save(epoch + 1, 0)
            dist.barrier()
    if status == "completed" and args.average_last and dist.main:
        best = select_average(model, average, tokenizer, data, args, seed, out, device, precision)
    metrics = {"status": status, "stopped_by": stopped_by,  # SIGINT, SIGTERM, --stop-after-steps or None
               "seed": seed, "wall_seconds": elapsed_before + time.perf_counter() - started, "steps": step, "history": history,
               "selected": best,  # the epoch whose model is in out/model
               } | run_facts(args, data, device, precision)
    if dist.main:
        write_outputs(args, out, metrics)
    return metrics


def make_optimizer(model, args: FinetuneArgs, total_steps: int) -> tuple[AdamW, LinearWarmupDecay]:
    """AdamW over the decay groups (with layer-wise lr decay) and the warmup-then-linear-decay schedule."""
    optimizer = AdamW(param_groups(model, args.weight_decay, args.layer_decay), lr=args.lr, compile=args.compile)
    return optimizer, LinearWarmupDecay(optimizer, warmup_steps=int(args.warmup * total_steps), total_steps=total_steps)


def run_facts(args: FinetuneArgs, data: Data, device: torch.device, precision: str) -> dict:
    """What metrics.json records about how a run was made: its arguments, its data, where it ran."""
    return {"args": dataclasses.asdict(args), "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "precision": precision, "labels": list(data.labels), "data_fingerprint": data.fingerprint}


def load_classifier(args: FinetuneArgs, device: torch.device, labels: tuple[str, ...] = LABELS) -> BertForSequenceClassification:
    """The pretrained encoder with a new classifier, one output per label (neg, pos), in training mode on `device`."""
    overrides = {"num_labels": len(labels), "id2label": dict(enumerate(labels))}
    if args.classifier_dropout is not None:
        overrides["classifier_dropout"] = args.classifier_dropout
    return BertForSequenceClassification.from_pretrained(args.model, **overrides).to(device).train()


def wrap_model(model, args: FinetuneArgs, dist: Dist, device: torch.device):
    """What the loop calls for the forward pass: the model itself, under DistributedDataParallel when
    torchrun started several processes (it averages the gradients), compiled with --compile."""
    net = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return torch.compile(net) if args.compile else net


def end_of_epoch(model, tokenizer, data: Data, args: FinetuneArgs, seed: int, epoch: int, step: int, history: dict,
                 best: dict | None, out: Path, device, precision: str) -> dict:
    """Evaluate (test, and val when held out), record it in history, and keep the best epoch's model:
    the best val accuracy when there is a val set, otherwise the last epoch. Returns the new best."""
    record = {"epoch": epoch + 1, "step": step} | evaluate_splits(model, tokenizer, data, args, device, precision)
    history["epochs"].append(record)
    score = record["val"]["accuracy"] if data.val else record["epoch"]  # never the test split; no val set: the last epoch
    if best is None or score > best["score"]:
        best = {"score": score, **record}
        if args.save_model and not args.average_last and (data.val or epoch + 1 == args.epochs):
            save_model(model, tokenizer, data, args, out, step)
    tqdm.write(f"seed {seed} epoch {epoch + 1}:"
               + (f"  test accuracy {record['accuracy']:.4f}  F1 {record['f1']:.4f}" if data.test else "")
               + (f"  val accuracy {record['val']['accuracy']:.4f}" if data.val else ""))
    return best


def select_average(model, average: WeightAverage, tokenizer, data: Data, args: FinetuneArgs, seed: int, out: Path,
                   device, precision: str) -> dict:
    """--average-last N: put the mean of the last N epochs' weights into the model, evaluate it, and keep it
    (in out/model) instead of a single epoch. Returns the record that becomes metrics["selected"]."""
    average.copy_to(model)
    record = {"epoch": args.epochs, "averaged_epochs": list(range(args.epochs - args.average_last + 1, args.epochs + 1))}
    record |= evaluate_splits(model, tokenizer, data, args, device, precision)
    if args.save_model:  # only a completed run is averaged: every epoch's steps were taken
        save_model(model, tokenizer, data, args, out, args.epochs * math.ceil(len(data.train) / args.batch_size))
    tqdm.write(f"seed {seed}, mean weights of epochs {record['averaged_epochs']}:"
               + (f"  test accuracy {record['accuracy']:.4f}" if data.test else "")
               + (f"  val accuracy {record['val']['accuracy']:.4f}" if data.val else ""))
    return record


def evaluate_splits(model, tokenizer, data: Data, args: FinetuneArgs, device, precision: str) -> dict:
    """The test metrics (when there is a test split) at the top level, the val metrics under "val"."""
    pad, record = tokenizer.pad_token_id, {}
    if data.test:
        record |= evaluate(model, data.test, data.n_test_docs, args, device, precision, pad)
    if data.val:
        record["val"] = evaluate(model, data.val, data.n_val_docs, args, device, precision, pad)
    return record


def save_model(model, tokenizer, data: Data, args: FinetuneArgs, out: Path, steps: int) -> None:
    """out/model: the HF-layout model and tokenizer, plus how it was fine-tuned (for predict.py), after `steps`
    optimizer steps."""
    with saving(*model_files(out / "model"), out / "model" / SETTINGS_FILE):
        model.save_pretrained(out / "model", tokenizer=tokenizer)
        save_inference_settings(out / "model", args, data.labels, data.pairs, steps)


def write_outputs(args: FinetuneArgs, out: Path, metrics: dict) -> None:
    """metrics.json, and with --plots the loss curve and the selected epoch's confusion matrix."""
    write_json(out / "metrics.json", metrics)
    history, best = metrics["history"], metrics["selected"]
    if args.plots and history["step"]:
        with saving(out / "curves.png"):
            plot_curves(history, out / "curves.png", title=f"seed {metrics['seed']}")
    if args.plots and history["step"] and best and "confusion" in best:
        with saving(out / "confusion.png"):
            plot_confusion(best["confusion"], metrics["labels"], out / "confusion.png", title=f"test, epoch {best['epoch']}")


def run(args: FinetuneArgs, reviews: list[Review] | None = None) -> dict:
    """Fine-tune once per seed (and per fold with --cv 10); write output_dir/summary.json with the mean and
    std of the test accuracy over seeds (over folds with --cv). With --resume, runs that completed are
    skipped and an interrupted one continues, so a 10-fold job can be finished in several sittings.
    The output folder is locked for the whole run: a second run into it is refused."""
    args.validate()
    check_repeats(args)
    device_type = "cuda" if (args.device == "auto" and torch.cuda.is_available()) or args.device.startswith("cuda") else "cpu"
    dist = Dist.from_env(device_type)
    out = Path(args.output_dir)
    if dist.main:  # before the corpus and the model: a folder that cannot be written is found at once
        prepare_output_dir(out, resume=args.resume, overwrite=args.overwrite)
    dist.barrier()
    try:
        summary = run_all(args, reviews, out, dist)
    finally:
        if dist.main:
            release_output_dir(out)
    if dist.world > 1:
        torch.distributed.destroy_process_group()
    return summary


def check_repeats(args: FinetuneArgs) -> None:
    """A seed or fold given twice would be counted twice in the mean and std."""
    for flag, values in (("--seeds", args.seeds), ("--folds", args.folds)):
        if values and len(set(values)) < len(values):
            twice = sorted({v for v in values if values.count(v) > 1})
            raise ValueError(f"{flag} names {', '.join(map(str, twice))} more than once; give each once")


def run_all(args: FinetuneArgs, reviews: list[Review] | None, out: Path, dist: Dist) -> dict:
    """Every (fold, seed) run of the job in turn, then the summary (run() holds the output folder meanwhile)."""
    started = time.perf_counter()
    if reviews is None and not args.data:
        reviews = load_movie_reviews()
    check_max_length(args)
    tokenizer = BertTokenizer.from_pretrained(args.model)
    seeds = args.seeds or [args.seed]
    folds = (args.folds or list(range(1, N_FOLDS + 1))) if args.cv else [None]
    runs = []
    for fold in folds:
        data = prepare_data(args, tokenizer, reviews, fold)
        for seed in seeds:
            where = out / (f"fold{fold}" if fold else "") / (f"seed{seed}" if len(seeds) > 1 else "")
            runs.append((args.resume and finished_run(where, args, seed, data.fingerprint)) or train_one(args, data, tokenizer, seed, where, dist))
            runs[-1]["fold"] = fold
            if runs[-1]["status"] != "completed":
                break
        if runs[-1]["status"] != "completed":
            break
    if args.cv and args.resume:  # the folds of earlier sittings count too
        runs += earlier_folds(args, out, seeds, skip=folds)
    summary = summarize(runs, args, N_FOLDS * len(seeds) if args.cv else len(seeds), data)
    summary["wall_seconds"] = time.perf_counter() - started
    if dist.main:
        write_json(out / "summary.json", summary)
        if summary["accuracy"]:
            over = f"{len(summary['accuracy'])} fold(s)" if args.cv else f"{len(summary['accuracy'])} seed(s)"
            print(f"test accuracy over {over}: {100 * summary['accuracy_mean']:.2f} +- {100 * summary['accuracy_std']:.2f}  "
                  f"({', '.join(f'{100 * a:.2f}' for a in summary['accuracy'])}), wall {summary['wall_seconds']:.0f} s")
        if summary["val_accuracy"]:
            print(f"val accuracy (held-out training reviews): {100 * statistics.mean(summary['val_accuracy']):.2f}")
        if summary.get("folds_missing"):
            print(f"folds done: {' '.join(map(str, summary['folds']))}; still to run: "
                  f"{' '.join(map(str, summary['folds_missing']))} (--folds ... --resume)")
        print(f"outputs in {out}/: {', '.join(written(out))}")
    return summary


def check_max_length(args: FinetuneArgs) -> None:
    """--max-length must fit the model's position table: found at the start, not at the first forward pass."""
    found = resolve(args.model, ["config.json"])
    if "config.json" not in found:
        return  # loading the model names what is missing
    config = BertConfig.from_json_file(found["config.json"])
    if args.max_length > config.max_position_embeddings:
        raise ValueError(f"--max-length {args.max_length} is longer than the {config.max_position_embeddings} positions "
                         f"of --model {args.model}; give --max-length {config.max_position_embeddings} or less")


def earlier_folds(args: FinetuneArgs, out: Path, seeds: list[int], skip: list[int]) -> list[dict]:
    """--cv --resume: the runs of the folds not asked for this time that an earlier sitting completed, with the
    same settings (--cv reads movie_reviews only: its folds' data is fixed, and not tokenized again here)."""
    found = []
    for fold in range(1, N_FOLDS + 1):
        where = out / f"fold{fold}"
        if fold in skip or not where.is_dir():
            continue
        for seed in seeds:
            done = finished_run(where / (f"seed{seed}" if len(seeds) > 1 else ""), args, seed)
            if done:
                found.append(done | {"fold": fold})
    return found


def finished_run(out: Path, args: FinetuneArgs, seed: int, fingerprint: str | None = None) -> dict | None:
    """The metrics of a run that already completed in `out` with these settings (--resume skips it), or None.
    Its checkpoint is still checked: readable, the same settings and data, at the end of the last epoch."""
    path, ckpt_path = out / "metrics.json", out / "checkpoint.pt"
    if not (path.is_file() and ckpt_path.is_file()):
        return None
    metrics = json.loads(path.read_text())
    state = load_training_state(ckpt_path, mmap=True)  # the weights are not read
    check_resume(state, args, RESUME_KEYS, ckpt_path, seed, fingerprint)
    return metrics if metrics.get("status") == "completed" and state["epoch"] == args.epochs else None


def summarize(runs: list[dict], args: FinetuneArgs, expected: int, data: Data) -> dict:
    """Mean +- std of the selected epochs' test accuracy: over seeds, or with --cv over folds (each fold's
    accuracy being the mean over its seeds). Only rank 0 evaluates, so other ranks summarize nothing.
    "completed" means every run of the job is done: with --cv, all ten folds; "partial": what was asked for
    (--folds) is done, other folds are still to run."""
    done = [r for r in runs if r["status"] == "completed" and r["selected"]]
    per_seed = [r["selected"].get("accuracy") for r in done if "accuracy" in r["selected"]]
    if args.cv:
        folds = sorted({r["fold"] for r in done})
        acc = [statistics.mean(r["selected"]["accuracy"] for r in done if r["fold"] == f) for f in folds] if per_seed else []
    else:
        folds, acc = [], per_seed
    finished = sum(r["status"] == "completed" for r in runs)
    interrupted = any(r["status"] != "completed" for r in runs)
    status = "completed" if finished == expected else "interrupted" if interrupted else "partial"
    return {
        "status": status,
        "stopped_by": next((r["stopped_by"] for r in runs if r["status"] != "completed"), None),
        "seeds": sorted({r["seed"] for r in done}),
        "folds": folds,
        **({"folds_missing": [f for f in range(1, N_FOLDS + 1) if f not in folds]} if args.cv else {}),
        "accuracy": acc,  # per seed, or per fold with --cv
        "accuracy_mean": statistics.mean(acc) if acc else None,
        "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
        "f1_mean": statistics.mean(r["selected"]["f1"] for r in done) if per_seed else None,
        "macro_f1_mean": statistics.mean(r["selected"]["macro_f1"] for r in done) if per_seed else None,
        "labels": list(data.labels),
        "val_accuracy": [r["selected"]["val"]["accuracy"] for r in done if "val" in r["selected"]],
        "train_examples": len(data.train),
        "test_reviews": data.n_test_docs,
        "data_fingerprint": data.fingerprint if not args.cv else None,  # with --cv, each fold's metrics.json has its own
        "args": dataclasses.asdict(args),
    }
