"""The recipe search behind finetune.py's defaults: each variant of FinetuneArgs, a few seeds, one table.

    python -m benchmarks.sweep --model DIR --seeds 0 1 --output sweep.json

Each variant's test accuracy is the last epoch's (no choice is made on the test set inside a run); the sweep
itself compares variants on the test split, which is why its winner is reported over fresh seeds afterwards.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from minibert import BertTokenizer
from minibert.data import load_movie_reviews
from minibert.finetune import FinetuneArgs, prepare_data, train_one

VARIANTS = {
    "ht-lr3e-5": dict(lr=3e-5),
    "ht-lr5e-5": dict(lr=5e-5),
    "ht-lr1e-4": dict(lr=1e-4),
    "ht-lr2e-4": dict(lr=2e-4),
    "ht-lr1e-4-ep3": dict(lr=1e-4, epochs=3),
    "ht-lr1e-4-ep6": dict(lr=1e-4, epochs=6),
    "ht-lr1e-4-ep10": dict(lr=1e-4, epochs=10),
    "ht-lr2e-4-bs32": dict(lr=2e-4, batch_size=32),
    "head-lr1e-4": dict(lr=1e-4, truncation="head"),
    "tail-lr1e-4": dict(lr=1e-4, truncation="tail"),
    "chunks512-lr1e-4": dict(lr=1e-4, truncation="chunks", stride=128),
    "chunks256-lr5e-5": dict(lr=5e-5, truncation="chunks", max_length=256, stride=64),
    "chunks256-lr1e-4": dict(lr=1e-4, truncation="chunks", max_length=256, stride=64),
    "chunks128-lr1e-4": dict(lr=1e-4, truncation="chunks", max_length=128, stride=32),
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="pretrained BERT directory")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), help="names from VARIANTS (default: all)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--base", default="{}", help="JSON of FinetuneArgs fields shared by all variants")
    p.add_argument("--output", default="sweep.json")
    p.add_argument("--output-dir", default="runs/sweep")
    a = p.parse_args(argv)
    reviews = load_movie_reviews()
    tokenizer = BertTokenizer.from_pretrained(a.model)
    results = {}
    for name in a.variants:
        args = FinetuneArgs(model=a.model, progress=False, plots=False, save_model=False, **(json.loads(a.base) | VARIANTS[name]))
        t = time.perf_counter()
        data = prepare_data(args, tokenizer, reviews)
        runs = [train_one(args, data, tokenizer, s, Path(a.output_dir) / name / f"seed{s}") for s in a.seeds]
        acc = [r["history"]["epochs"][-1]["accuracy"] for r in runs]
        results[name] = {
            "args": VARIANTS[name],
            "accuracy": acc,
            "mean": statistics.mean(acc),
            "per_epoch": [[e["accuracy"] for e in r["history"]["epochs"]] for r in runs],
            "seconds": time.perf_counter() - t,
        }
        Path(a.output).write_text(json.dumps(results, indent=2))
        print(f"{name:<22} {100 * results[name]['mean']:6.2f}  {[round(100 * x, 2) for x in acc]}  "
              f"epochs {[[round(100 * x, 1) for x in e] for e in results[name]['per_epoch']]}  {results[name]['seconds']:.0f} s", flush=True)
    print("\nranked:")
    for name, r in sorted(results.items(), key=lambda kv: -kv[1]["mean"]):
        print(f"  {name:<22} {100 * r['mean']:6.2f}")


if __name__ == "__main__":
    main()
