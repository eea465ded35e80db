"""The accuracy sections of scripts/bench.py: minibert against the transformers Trainer, Pang & Lee's
cross-validation of the default recipe, and the effect of continued pre-training on the training reviews.

Every section trains with minibert's own fine-tuning code (minibert.finetune) and scores reviews with its
evaluation, so that the figures in the README are those a user of scripts/finetune.py gets."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from minibert import BertTokenizer
from minibert import data as D
from minibert.finetune import Data, FinetuneArgs, balanced_subset, prepare_data, run

from .hf_trainer import summarize, trainer_run


def finetune_vs_trainer(model: str, seeds: list[int], overrides: dict, work: Path, reviews=None) -> dict:
    """minibert's scripts/finetune.py recipe and transformers' Trainer given the same float32 weights, the very
    same tokenized examples and the same hyperparameters, one run per seed each; accuracy and wall time."""
    args = FinetuneArgs(model=model, seeds=seeds, output_dir=str(work / "minibert"), progress=False, plots=False,
                        save_model=False, **overrides)
    started = time.perf_counter()
    mine = run(args, reviews)
    result = {"model": model, "args": overrides, "minibert": mine | {"wall_seconds": time.perf_counter() - started}}
    started = time.perf_counter()
    data = prepare_data(args, BertTokenizer.from_pretrained(model), reviews)
    runs = [trainer_run(args, data, s) for s in seeds]
    result["transformers_trainer"] = summarize(runs) | {"wall_seconds": time.perf_counter() - started}
    return result


def cross_validation(model: str, folds: list[int], overrides: dict, work: Path, reviews=None) -> dict:
    """Pang & Lee's protocol for the default recipe: fold k (cv{k}00-cv{k}99 of both classes) is tested once by
    a model fine-tuned on the other nine folds; mean +- std over the folds, through scripts/finetune.py's
    own --cv 10."""
    base = dict(model=model, progress=False, plots=False, save_model=False) | overrides
    started = time.perf_counter()
    summary = run(FinetuneArgs(output_dir=str(work / "cv"), cv=D.N_FOLDS, folds=[k + 1 for k in folds], **base), reviews)
    acc = summary["accuracy"]  # one per fold
    return {
        "model": model,
        "args": overrides,
        "folds": [k + 1 for k in folds],
        "accuracy": acc,
        "accuracy_mean": statistics.mean(acc),
        "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
        "wall_seconds": time.perf_counter() - started,
    }


def split_data(args: FinetuneArgs, tokenizer: BertTokenizer, train: list[D.Review], test: list[D.Review]) -> Data:
    """Any train / test division of the reviews (a cross-validation fold, a validation fold inside the training
    files), cut into model inputs the way prepare_data cuts the fixed split."""
    if args.limit_train:
        train = balanced_subset(train, args.limit_train)
    if args.limit_test:
        test = balanced_subset(test, args.limit_test)
    stride = args.max_length // 4 if args.stride is None else args.stride
    enc = dict(tokenizer=tokenizer, strategy=args.truncation, max_length=args.max_length, head=args.head, stride=stride)
    return Data(D.encode_reviews(train, **enc), D.encode_reviews(test, **enc), n_test_docs=len(test))


def continued_pretraining(model: str, seeds: list[int], overrides: dict, pretrain: dict, work: Path, reviews=None) -> dict:
    """scripts/pretrain.py --model M on the training reviews only (cv000-cv799; never the test files), then the
    default fine-tuning from what it saved, against the same fine-tuning from M, same seeds, same card."""
    from minibert.pretrain import PretrainArgs
    from minibert.pretrain import run as pretrain_run

    pre_args = PretrainArgs(model=model, output_dir=str(work / "pretrain"), exclude_test_reviews=True, progress=False,
                            plots=False, **pretrain)
    started = time.perf_counter()
    pre = pretrain_run(pre_args)
    pre_seconds = time.perf_counter() - started
    common = dict(seeds=seeds, progress=False, plots=False, save_model=False) | overrides
    base = run(FinetuneArgs(model=model, output_dir=str(work / "from-model"), **common), reviews)
    dapt = run(FinetuneArgs(model=str(work / "pretrain" / "model"), output_dir=str(work / "from-pretrained"), **common), reviews)
    keep = ("seeds", "accuracy", "accuracy_mean", "accuracy_std", "wall_seconds")
    return {
        "model": model,
        "args": overrides,
        "pretrain": {"args": pretrain, "seconds": pre_seconds, "status": pre.get("status"),
                     "exclude_test_reviews": pre_args.exclude_test_reviews},
        "from_model": {k: base[k] for k in keep},
        "from_continued_pretraining": {k: dapt[k] for k in keep},
        "difference_points": 100 * (dapt["accuracy_mean"] - base["accuracy_mean"]),
    }
