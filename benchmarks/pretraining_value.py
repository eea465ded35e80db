"""What pre-training buys, measured on the CPU: the same fine-tuning of the same tiny architecture from its random
initialisation and from snapshots of one tiny pre-training run, beside MiniLM (pre-trained on a large corpus)
and NBSVM-bi, all on the fixed split (cv000-cv799 train, cv800-cv999 test), 3 seeds per row.

    (a) BERT-Tiny, random init       the pre-training run's step-0 snapshot, fine-tuned with TINY_RECIPE
    (c) BERT-Tiny after N steps      its intermediate snapshots (same run, same recipe): the accuracy-vs-budget curve
    (b) BERT-Tiny, pre-trained       its last snapshot, the end of `scripts/pretrain.py --preset tiny`
    (d) MiniLM                       scripts/finetune.py --preset cpu --model M
    (e) NBSVM-bi                     C chosen by 4-fold validation inside cv000-cv799, then trained on all of them

The pre-training run is reused from its output folder (runs/pretrain-tiny, the preset's) when it has completed
there, and run (or resumed) first otherwise. The snapshots are points of one run, not separate runs of each
length: at step N the learning rate is still that of a longer schedule.

TINY_RECIPE was chosen on the 200 validation reviews alone (cv700-cv799, the ones pre-training held out; the
test reviews choose nothing): head+tail 128 (the length the model was pre-trained at), batch 16, 8 epochs, the
epoch kept being the one with the best validation accuracy, and lr 3e-4 out of 3e-4, 1e-3 and 3e-3, fine-tuning
both the random initialisation and the pre-trained model once each (benchmarks/results/tiny-recipe-validation.json:
the best mean of the two). A first guess, Turc et al. 2019's lr 1e-4 over 4 epochs, left the random
initialisation at chance (50%) on validation, so it was dropped.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np

from minibert.data import file_number, split
from minibert.finetune import PRESETS as FINETUNE_PRESETS
from minibert.finetune import FinetuneArgs
from minibert.finetune import run as finetune
from minibert.pretrain import PRESETS as PRETRAIN_PRESETS
from minibert.pretrain import PretrainArgs
from minibert.pretrain import run as pretrain

from . import nbsvm

TINY_RECIPE = dict(truncation="head+tail", max_length=128, head=64, batch_size=16, lr=3e-4, epochs=8, val_size=200, device="cpu")
NBSVM_C = (0.01, 0.1, 1.0, 10.0)  # the grid for NBSVM's C
INNER_FOLDS = 4  # cv000-cv199, cv200-cv399, cv400-cv599, cv600-cv799


def tiny_pretraining(folder: Path, overrides: dict) -> dict:
    """The metrics of `scripts/pretrain.py --preset tiny` (plus overrides) in `folder`: read when it completed there
    with the same settings, otherwise run (resumed if it was interrupted)."""
    args = PretrainArgs(**(PRETRAIN_PRESETS["tiny"] | overrides | {"output_dir": str(folder), "progress": False}))
    metrics_path = folder / "metrics.json"
    if metrics_path.is_file():
        done = json.loads(metrics_path.read_text())
        same = {k: v for k, v in done["args"].items() if k not in ("progress", "resume", "overwrite")} == \
               {k: v for k, v in vars(args).items() if k not in ("progress", "resume", "overwrite")}
        if done["status"] == "completed" and same and all(Path(s["model"]).is_dir() for s in done["snapshots"]):
            print(f"   reusing the tiny pre-training in {folder}")
            return done
    args.resume = (folder / "checkpoint.pt").is_file()
    return pretrain(args)


def finetune_row(label: str, model: str, recipe: dict, seeds: list[int], work: Path, reviews) -> dict:
    started = time.perf_counter()
    s = finetune(FinetuneArgs(model=model, seeds=seeds, output_dir=str(work), progress=False, plots=False,
                              save_model=False, **recipe), reviews)
    return {"row": label, "model": model, "recipe": recipe, "accuracy": s["accuracy"], "accuracy_mean": s["accuracy_mean"],
            "accuracy_std": s["accuracy_std"], "val_accuracy": s["val_accuracy"], "wall_seconds": time.perf_counter() - started}


def nbsvm_row(reviews, grid=NBSVM_C) -> dict:
    """NBSVM-bi with its C chosen like minibert's recipe: on validation folds inside the training files only."""
    started = time.perf_counter()
    train, test = split(reviews)  # the test reviews are scored only in the last line
    reviews = train + test
    X = nbsvm.binary_features(reviews)
    y = np.array([r.label for r in reviews])
    number = np.array([file_number(r.fileid) for r in reviews])
    is_train = number < 800
    block = np.where(is_train, number * INNER_FOLDS // 800, -1)  # inner fold of a training file; -1: a test file
    val = {C: statistics.mean(nbsvm.nbsvm_accuracy(X, y, is_train & (block != k), block == k, C=C) for k in range(INNER_FOLDS))
           for C in grid}
    best = max(grid, key=lambda C: val[C])
    acc = nbsvm.nbsvm_accuracy(X, y, is_train, ~is_train, C=best)
    return {"row": "NBSVM-bi", "C": best, "validation_accuracy": {str(C): v for C, v in val.items()}, "accuracy": [acc], "accuracy_mean": acc,
            "accuracy_std": 0.0, "deterministic": True, "wall_seconds": time.perf_counter() - started}


def pretraining_value(minilm: str, seeds: list[int], pretrain_dir: Path, pretrain_overrides: dict, tiny_recipe: dict,
                      minilm_overrides: dict, work: Path, reviews, nbsvm_reviews=None) -> dict:
    """Every row of the table; nbsvm_reviews: a subset for NBSVM (the dry run's), default all the reviews."""
    started = time.perf_counter()
    pre = tiny_pretraining(pretrain_dir, pretrain_overrides)
    pre_seconds = time.perf_counter() - started
    snaps = pre["snapshots"]
    rows = []
    for i, s in enumerate(snaps):
        label = ("(a) BERT-Tiny, random init" if s["step"] == 0 else
                 "(b) BERT-Tiny, pre-trained" if i == len(snaps) - 1 else f"(c) BERT-Tiny after {s['step']} steps")
        row = finetune_row(label, s["model"], tiny_recipe, seeds, work / f"step-{s['step']}", reviews)
        rows.append(row | {"pretraining_steps": s["step"], "pretraining_seconds": s.get("seconds"),
                           "held_out_mlm_accuracy": s.get("held_out", {}).get("accuracy")})
    minilm_recipe = {k: v for k, v in FINETUNE_PRESETS["cpu"].items() if k not in ("model", "output_dir")} | {"device": "cpu"} | minilm_overrides
    rows.append(finetune_row("(d) MiniLM (pre-trained on a large corpus)", minilm, minilm_recipe, seeds, work / "minilm", reviews))
    rows.append(nbsvm_row(nbsvm_reviews if nbsvm_reviews is not None else reviews))
    return {"rows": rows, "seeds": seeds,
            "pretraining": {"folder": str(pretrain_dir), "args": pre["args"], "wall_seconds": pre["wall_seconds"],
                            "seconds_in_this_run": pre_seconds, "held_out": pre.get("held_out"),
                            "unigram_baseline": pre.get("unigram_baseline"), "neighbour_baseline": pre.get("neighbour_baseline"),
                            "fill_mask": pre.get("fill_mask"),
                            "history": pre.get("history")}}  # the loss curves, drawn beside the accuracies
