"""Choosing the fine-tuning recipe without looking at the test reviews.

Recipes are compared by cross-validation inside the training files: cv000-cv799 of each class are cut into
`--inner-folds` blocks of consecutive file numbers (4: cv000-cv199, cv200-cv399, cv400-cv599, cv600-cv799);
each block is held out once and a model trained on the other training files is scored on it. The test files
cv800-cv999 are never read while choosing. Then `--final` trains the recipe with the best validation mean on
all 1600 training reviews and tests it once on the 400 test reviews, over the given seeds.

    python -m benchmarks.sweep --model DIR                       # all recipes, 4 inner folds, seed 0
    python -m benchmarks.sweep --model DIR --final --seeds 0 1 2 3 4
    python -m benchmarks.sweep --dry-run --output /tmp/sweep.json   # tiny model, 2 recipes, 2 folds, CPU
    python -m benchmarks.sweep --cpu --model DIR --folds 0 --base '{"precision": "bf16"}'   # the CPU recipes

Every (recipe, fold, seed) result is appended to --output as soon as it is measured, and skipped when it is
there already, so the sweep completes over several short GPU sessions. NBSVM-bi is scored on the same
validation folds as a reference row.

`--cpu` compares the CPU-sized recipes instead (CPU_VARIANTS: short head+tail inputs, 1-3 epochs, on the CPU),
written to benchmarks/results/sweep-cpu-validation.json; the best became finetune.PRESETS["cpu"].
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {
    "chunks512-lr1e-4": dict(lr=1e-4, truncation="chunks", stride=128),
    "chunks512-lr5e-5": dict(lr=5e-5, truncation="chunks", stride=128),
    "chunks512-lr1e-4-ep6": dict(lr=1e-4, truncation="chunks", stride=128, epochs=6),
    "chunks256-lr1e-4": dict(lr=1e-4, truncation="chunks", max_length=256, stride=64),
    "ht-lr5e-5": dict(lr=5e-5, truncation="head+tail"),
    "ht-lr1e-4": dict(lr=1e-4, truncation="head+tail"),
    "ht-lr1e-4-ep6": dict(lr=1e-4, truncation="head+tail", epochs=6),
    "tail-lr1e-4": dict(lr=1e-4, truncation="tail"),
}
# Recipes that fit in minutes on a CPU, for a small model such as MiniLM (6 x 384): head+tail keeps the start
# and the end of a review, where its verdict usually is, so short inputs lose little.
CPU_VARIANTS = {
    "cpu-ht256-ep2-lr1e-4": dict(truncation="head+tail", max_length=256, head=128, epochs=2, lr=1e-4),
    "cpu-ht256-ep1-lr1e-4": dict(truncation="head+tail", max_length=256, head=128, epochs=1, lr=1e-4),
    "cpu-ht128-ep3-lr1e-4": dict(truncation="head+tail", max_length=128, head=64, epochs=3, lr=1e-4),
    "cpu-ht256-ep2-lr5e-5": dict(truncation="head+tail", max_length=256, head=128, epochs=2, lr=5e-5),
    "cpu-ht256-ep3-lr1e-4": dict(truncation="head+tail", max_length=256, head=128, epochs=3, lr=1e-4),
}
TRAIN_FILES = 800  # cv000-cv799: the only files the choice may look at
OUTPUT = Path(__file__).resolve().parent / "results" / "sweep-validation.json"
CPU_OUTPUT = OUTPUT.with_name("sweep-cpu-validation.json")


def inner_fold(fileid: str, k: int) -> int:
    """Which of k validation blocks of consecutive training-file numbers a training review is in."""
    from minibert.data import file_number

    n = file_number(fileid)
    assert n < TRAIN_FILES, f"{fileid} is a test file; the sweep never uses it"
    return n * k // TRAIN_FILES


def validation_splits(reviews, k: int, folds: list[int]):
    """(fold, train, validation) for each chosen fold, from the training files only."""
    from minibert.data import split

    train, _ = split(reviews)  # cv000-cv799; the test files are dropped here, before anything else
    for f in folds:
        yield f, [r for r in train if inner_fold(r.fileid, k) != f], [r for r in train if inner_fold(r.fileid, k) == f]


def parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="pretrained BERT directory (HF layout)")
    p.add_argument("--cpu", action="store_true", help="compare the CPU recipes (CPU_VARIANTS) on the CPU; "
                                                      "default --output benchmarks/results/sweep-cpu-validation.json")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS | CPU_VARIANTS), default=None,
                   help="recipes (default: all of VARIANTS, or of CPU_VARIANTS with --cpu)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds per fold; with --final, the test seeds (default: 0)")
    p.add_argument("--inner-folds", type=int, default=4, help="validation blocks inside cv000-cv799 (default: 4)")
    p.add_argument("--folds", type=int, nargs="+", default=None, help="which inner folds to run, 0-based (default: all)")
    p.add_argument("--base", default="{}", help="JSON of FinetuneArgs fields shared by all recipes")
    p.add_argument("--final", action="store_true", help="train the best recipe on all 1600 training reviews and test it once")
    p.add_argument("--output", default=None, help="JSON file to append to (default: benchmarks/results/sweep-validation.json, "
                                                  "which benchmarks/render_readme.py reads)")
    p.add_argument("--dry-run", action="store_true", help="tiny model, two recipes, two folds, a few reviews, CPU")
    return p


def main(argv=None) -> int:
    a = parser().parse_args(argv)
    from minibert import BertTokenizer
    from minibert.data import load_movie_reviews
    from minibert.finetune import FinetuneArgs, run, train_one

    from . import nbsvm
    from .accuracy import split_data

    try:
        base = json.loads(a.base)
    except json.JSONDecodeError as e:
        print(f"error: --base is not JSON ({e.msg}); e.g. --base '{{\"epochs\": 3}}'", file=sys.stderr)
        return 2
    if a.inner_folds < 2:
        print(f"error: --inner-folds must be >= 2, got {a.inner_folds}", file=sys.stderr)
        return 2
    folds = a.folds if a.folds is not None else list(range(a.inner_folds))
    if any(not 0 <= f < a.inner_folds for f in folds):
        print(f"error: --folds must be in 0..{a.inner_folds - 1}", file=sys.stderr)
        return 2
    recipes = CPU_VARIANTS if a.cpu else VARIANTS
    variants, shrink = a.variants or list(recipes), {}
    if any(v not in recipes for v in variants):
        print(f"error: --variants: {', '.join(v for v in variants if v not in recipes)} is not in "
              f"{'CPU_VARIANTS' if a.cpu else 'VARIANTS'}; {'drop' if a.cpu else 'add'} --cpu", file=sys.stderr)
        return 2
    if a.cpu:
        base = {"device": "cpu"} | base
    work = Path(tempfile.mkdtemp(prefix="minibert-sweep-"))
    if a.dry_run:
        from .suite import Sizes, tiny_model

        model, variants, folds = tiny_model(work / "tiny-bert"), variants[:2], folds[:2]
        # every recipe keeps its truncation and learning rate, cut to tiny lengths and a few reviews
        shrink = {k: v for k, v in Sizes.dry_run().finetune.items() if k != "truncation"} | dict(stride=16, head=16)
    elif not a.model or not (Path(a.model) / "config.json").is_file():
        print(f"error: --model {a.model}: pass a directory with a pretrained BERT in HF layout (config.json ...)", file=sys.stderr)
        return 2
    else:
        model = a.model
    output = Path(a.output or (CPU_OUTPUT if a.cpu else OUTPUT))
    if not output.parent.is_dir():
        print(f"error: --output: folder {output.parent} does not exist", file=sys.stderr)
        return 2
    results = json.loads(output.read_text()) if output.exists() else {}
    results.setdefault("protocol", f"{a.inner_folds} validation folds inside cv000-cv799; the test files are never read while choosing")
    runs = results.setdefault("validation", {})

    def save():
        output.write_text(json.dumps(results, indent=1) + "\n")

    reviews = load_movie_reviews()
    tokenizer = BertTokenizer.from_pretrained(model)
    if not a.final:
        ref = results.setdefault("nbsvm_validation", {})
        X = nbsvm.binary_features(reviews)
        import numpy as np

        y = np.array([r.label for r in reviews])
        ids = [r.fileid for r in reviews]
        for f, train, val in validation_splits(reviews, a.inner_folds, folds):
            keep = {r.fileid for r in train}, {r.fileid for r in val}
            ref[str(f)] = nbsvm.nbsvm_accuracy(X, y, np.array([i in keep[0] for i in ids]), np.array([i in keep[1] for i in ids]))
        save()
        for name in variants:
            args = FinetuneArgs(model=model, progress=False, plots=False, save_model=False, **(base | recipes[name] | shrink))
            args.validate()
            for f, train, val in validation_splits(reviews, a.inner_folds, folds):
                for seed in a.seeds:
                    key = f"{name}/fold{f}/seed{seed}"
                    if key in runs:
                        continue
                    t = time.perf_counter()
                    data = split_data(args, tokenizer, train, val)
                    m = train_one(args, data, tokenizer, seed, work / key)
                    runs[key] = {"variant": name, "fold": f, "seed": seed, "args": base | recipes[name],
                                 "per_epoch": [e["accuracy"] for e in m["history"]["epochs"]],
                                 "accuracy": m["history"]["epochs"][-1]["accuracy"], "seconds": time.perf_counter() - t}
                    save()
                    print(f"{key:<32} validation accuracy {100 * runs[key]['accuracy']:6.2f}  ({runs[key]['seconds']:.0f} s)", flush=True)
    table = ranking(runs)
    results["ranking"] = table
    save()
    print(f"\nvalidation accuracy (mean over folds and seeds); NBSVM-bi on the same folds "
          f"{100 * statistics.mean(results.get('nbsvm_validation', {0: float('nan')}).values()):.2f}")
    for row in table:
        print(f"  {row['variant']:<24} {100 * row['mean']:6.2f}  ({row['runs']} runs)")
    if a.final:
        if not table:
            print("error: --final: no validation results in --output yet; run the sweep without --final first", file=sys.stderr)
            return 2
        best = table[0]["variant"]
        args = FinetuneArgs(model=model, seeds=a.seeds, output_dir=str(work / "final"), progress=False, plots=False,
                            save_model=False, **(base | recipes[best] | shrink))
        summary = run(args, reviews)
        results["final"] = {"variant": best, "args": recipes[best], "seeds": a.seeds, "test_accuracy": summary["accuracy"],
                            "test_mean": summary["accuracy_mean"], "test_std": summary["accuracy_std"]}
        save()
        print(f"chosen on validation: {best}; test accuracy over {len(a.seeds)} seed(s): "
              f"{100 * summary['accuracy_mean']:.2f} +- {100 * summary['accuracy_std']:.2f}")
    return 0


def ranking(runs: dict) -> list[dict]:
    """Recipes by mean validation accuracy over all their (fold, seed) runs, best first."""
    by = {}
    for r in runs.values():
        by.setdefault(r["variant"], []).append(r["accuracy"])
    table = [{"variant": v, "mean": statistics.mean(acc), "runs": len(acc)} for v, acc in by.items()]
    return sorted(table, key=lambda row: -row["mean"])


if __name__ == "__main__":
    sys.exit(main())
