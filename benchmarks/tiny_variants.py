"""What was tried to get the tiny pre-training past predicting frequent pieces (issue 16): each variant of
`scripts/pretrain.py --preset tiny` runs 1000 steps (the preset's 3000 is the budget; 1000 is where its held-out
accuracy flattens) and is scored on the same 200 validation reviews, never a test review.

    python -m benchmarks.tiny_variants                       # every variant, one after the other (about 40 min)
    python -m benchmarks.tiny_variants --only lr1e-3 mlm40   # some of them

Variants that PretrainArgs cannot express (dropout, the initialiser's scale, sinusoidal starting positions, no NSP)
change the model built by pretrain.build_model, or the loss, for this process only. Results are appended to
benchmarks/results/tiny-pretrain-variants.jsonl as they come.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

OUTPUT = Path(__file__).resolve().parent / "results" / "tiny-pretrain-variants.jsonl"
VARIANTS = {  # name: (PretrainArgs overrides, model/loss change, what it tests)
    "preset": ({}, None, "the preset as it is (lr 2e-3, BERT-Tiny 2 x 128, 32 x 128 tokens, 15% masked)"),
    "lr1e-3": ({"lr": 1e-3}, None, "a lower peak learning rate"),
    "lr5e-3": ({"lr": 5e-3}, None, "a higher peak learning rate"),
    "dropout0": ({}, "dropout0", "no dropout (Geiping & Goldstein 2022: dropout only slows a short run)"),
    "mlm40": ({"mlm_prob": 0.4}, None, "40% of the tokens predicted (Wettig et al. 2022)"),
    "mini": ({"hidden_size": 256, "layers": 4, "heads": 4, "lr": 1e-3}, None, "BERT-Mini, 4 x 256"),
    "T64": ({"max_length": 64, "batch_size": 64}, None, "64-token pairs, twice as many per step"),
    "T32": ({"max_length": 32, "batch_size": 128}, None, "32-token pairs, four times as many per step"),
    "batch16": ({"batch_size": 16, "lr": 1e-3, "steps": 2000}, None, "half the batch, twice the steps"),
    "init0.08": ({}, "init0.08", "weights drawn with std 0.08 (about 1/sqrt(H)) instead of BERT's 0.02"),
    "sinusoid": ({}, "sinusoid", "position table started at Vaswani et al.'s sinusoids (scaled to std 0.02)"),
    "no-nsp": ({}, "no-nsp", "masked LM alone (the NSP loss multiplied by 0)"),
}


def apply_change(change: str | None, P) -> None:
    """Make pretrain.run build the changed model (or compute the changed loss) in this process."""
    if change is None:
        return
    if change == "no-nsp":
        forward = P.PretrainingLoss.forward
        P.PretrainingLoss.forward = lambda self, *a, **k: (lambda mlm, nsp: (mlm, 0 * nsp))(*forward(self, *a, **k))
        return
    build = P.build_model

    def changed(args):
        model, tokenizer = build(args)
        if change == "dropout0":
            for m in model.modules():
                if isinstance(m, torch.nn.Dropout):
                    m.p = 0.0
                if hasattr(m, "dropout_p"):
                    m.dropout_p = 0.0
        elif change == "init0.08":
            model.config.initializer_range = 0.08
            model.init_weights()
        elif change == "sinusoid":
            pos = model.bert.embeddings.pos.weight
            T, H = pos.shape
            angle = torch.arange(T)[:, None] / 10000 ** (torch.arange(0, H, 2) / H)  # (T, H/2)
            with torch.no_grad():
                pos[:, 0::2], pos[:, 1::2] = 0.02 * math.sqrt(2) * angle.sin(), 0.02 * math.sqrt(2) * angle.cos()
        return model, tokenizer

    P.build_model = changed


def run_variant(name: str, work: Path) -> dict:
    import minibert.pretrain as P

    overrides, change, what = VARIANTS[name]
    apply_change(change, P)
    args = P.PretrainArgs(**(P.PRESETS["tiny"] | {"steps": 1000, "snapshot_steps": [], "output_dir": str(work / name),
                                                   "overwrite": True, "progress": False, "plots": False,
                                                   "save_model": False} | overrides))
    started = time.perf_counter()
    m = P.run(args)
    return {"variant": name, "what": what, "overrides": overrides, "change": change, "steps": args.steps,
            "held_out_accuracy": m["held_out"]["accuracy"], "held_out_loss": m["held_out"]["loss"],
            "unigram_baseline": m["unigram_baseline"]["accuracy"], "neighbour_baseline": m["neighbour_baseline"]["accuracy"],
            "fill_mask_after": m["fill_mask"]["after"], "seconds": time.perf_counter() - started}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", choices=sorted(VARIANTS), default=None, help="run these variants only")
    p.add_argument("--work-dir", default="runs/tiny-variants", help="where the runs go (default: runs/tiny-variants)")
    p.add_argument("--output", default=str(OUTPUT), help=f"JSON lines to append to (default: {OUTPUT})")
    a = p.parse_args(argv)
    for name in a.only or VARIANTS:  # each in its own process: a change must not leak into the next variant
        if len(a.only or VARIANTS) > 1:
            import subprocess

            subprocess.run([sys.executable, "-m", "benchmarks.tiny_variants", "--only", name, "--work-dir", a.work_dir,
                            "--output", a.output], check=True)
            continue
        row = run_variant(name, Path(a.work_dir))
        with open(a.output, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{name}: held-out accuracy {100 * row['held_out_accuracy']:.1f}% ({row['what']})")


if __name__ == "__main__":
    main()
