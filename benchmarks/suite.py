"""The sections of scripts/bench.py, each sized to finish within 10 minutes on one H100, and their --dry-run
twins: the very same code at tiny sizes on the CPU (a random 2-layer BERT, a few reviews, a few steps), so that
a CPU run catches what would otherwise waste GPU time.

    section       what it measures                                                        where
    nbsvm         NBSVM-bi: fixed split and Pang & Lee's 10 folds                         CPU, ~1 min
    finetune      minibert vs the transformers Trainer: same weights, examples, recipe   GPU
    cv            Pang & Lee's 10-fold cross-validation of the default recipe             GPU
    pretrain      continued pre-training on the training reviews, then fine-tuning       GPU
    speed-train   training step, eager and compiled, minibert and transformers           GPU
    speed-infer   inference, the same four variants                                      GPU
    profile       torch.profiler: the compiled training step's top kernels, MFU          GPU
    cpu-tokenizer tokenizer throughput over the corpus                                   CPU
    cpu-infer     MiniLM inference, minibert vs transformers                             CPU
    cpu-predict   predict.py vs transformers.pipeline at equal precision, bf16 vs fp32    CPU, ~10 min
                  quality, the classifier's forward and a fine-tuning step vs transformers
    cpu-pretrain  the BERT-Tiny pre-training step, minibert vs BertForPreTraining, fp32+bf16 CPU, ~1 min
    pretraining-value  fine-tuning from random init, pre-training snapshots, MiniLM, NBSVM  CPU, after the tiny
                  pre-training (runs/pretrain-tiny, run first when missing)
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

import minibert

GPU = ("finetune", "cv", "pretrain", "speed-train", "speed-infer", "profile")
CPU = ("nbsvm", "cpu-tokenizer", "cpu-infer", "cpu-predict", "cpu-pretrain", "pretraining-value")
SECTIONS = GPU + CPU
GROUPS = {"gpu": GPU, "cpu": CPU, "all": SECTIONS}


@dataclass
class Sizes:
    """How big each section runs. Sizes() is the real run; Sizes.dry_run() the tiny CPU one."""

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    finetune: dict = field(default_factory=dict)  # FinetuneArgs overrides (none: the default recipe)
    folds: list[int] = field(default_factory=lambda: list(range(10)))  # Pang & Lee folds, 0-based
    pretrain: dict = field(default_factory=lambda: dict(steps=600, batch_size=64, max_length=256))
    config: dict = field(default_factory=dict)  # BertConfig of the speed sections (none: bert-base)
    train_batch: int = 32
    infer_batch: int = 64
    seq_len: int = 512
    warmup: int = 5
    iters: int = 20
    compile_backend: str = "inductor"
    every_nth_review: int = 1  # NBSVM / tokenizer: use only files cv000, cv00n, cv0(2n), ... (1: all 2000)
    device: str = "auto"  # auto: the GPU when there is one
    cpu_infer: dict = field(default_factory=lambda: dict(B=32, T=512, iters=10))
    predict_texts: int | None = None  # cpu-predict: the first N test reviews (None: all 400)
    predict_max_length: int = 512
    cpu_forward: dict = field(default_factory=lambda: dict(B=32, T=512, iters=10))  # cpu-predict: the classifier's forward
    cpu_train: dict = field(default_factory=lambda: dict(B=16, T=256, iters=5))  # cpu-predict: one fine-tuning step
    # cpu-pretrain: the BertConfig (BERT-Tiny; the vocabulary is the movie-review one) and the batch
    cpu_pretrain: dict = field(default_factory=lambda: dict(
        config=dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512), B=32, T=128,
        warmup=3, iters=20, documents=None))
    # pretraining-value: where the tiny pre-training is (or goes), and overrides of its preset and of the recipes
    value: dict = field(default_factory=lambda: dict(seeds=[0, 1, 2], pretrain_dir="runs/pretrain-tiny", pretrain={},
                                                     tiny_recipe={}, minilm={}))

    @classmethod
    def dry_run(cls) -> "Sizes":
        tiny = dict(truncation="head", max_length=64, epochs=1, batch_size=8, eval_batch_size=16, limit_train=16,
                    limit_test=8, device="cpu")
        return cls(
            seeds=[0, 1], finetune=tiny, folds=[0, 1],
            pretrain=dict(steps=2, batch_size=4, max_length=32, limit_documents=20, device="cpu"),
            config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=64),
            train_batch=2, infer_batch=2, seq_len=32, warmup=1, iters=2,
            compile_backend="aot_eager",  # dynamo and autograd tracing as on the GPU, without inductor's C++ build
            every_nth_review=10, device="cpu", cpu_infer=dict(B=2, T=32, iters=2), predict_texts=4, predict_max_length=64,
            cpu_forward=dict(B=2, T=32, iters=2), cpu_train=dict(B=2, T=32, iters=2),
            cpu_pretrain=dict(config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
                              B=2, T=32, warmup=1, iters=2, documents=20),
            value=dict(seeds=[0, 1], pretrain_dir=None,  # None: in the work folder, never the user's runs/
                       pretrain=dict(hidden_size=32, steps=4, snapshot_steps=[0, 2, 4], batch_size=4, max_length=32,
                                     limit_documents=20, val_size=20, device="cpu"),
                       tiny_recipe=dict(max_length=32, head=16, epochs=1, batch_size=8, limit_train=16, limit_test=8, val_size=20,
                                        eval_batch_size=16, device="cpu"),
                       minilm=tiny | dict(truncation="head+tail", head=32)),
        )


def tiny_model(folder: Path) -> str:
    """A randomly initialised 2-layer BERT with the real bert-base-uncased vocabulary, in HF layout, saved in
    float16 like the shared MiniLM copy (so the dry run also loads a float16 file into float32)."""
    vocab = Path(__file__).resolve().parents[1] / "vocab" / "bert-base-uncased.txt"
    torch.manual_seed(0)
    cfg = minibert.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    model = minibert.BertModel(cfg).half()
    model.save_pretrained(folder, tokenizer=minibert.BertTokenizer(str(vocab)))
    return str(folder)


def run_section(name: str, model: str, sizes: Sizes, work: Path) -> dict:
    """Measure one section; returns its result (a JSON-ready dict)."""
    from . import accuracy, speed

    device = torch.device("cuda" if torch.cuda.is_available() and sizes.device == "auto" else "cpu")
    reviews = None
    if name in ("nbsvm", "cpu-tokenizer", "finetune", "cv", "pretrain", "pretraining-value"):
        from minibert.data import file_number, load_movie_reviews

        reviews = load_movie_reviews()
        if name in ("nbsvm", "cpu-tokenizer"):
            reviews = [r for r in reviews if file_number(r.fileid) % sizes.every_nth_review == 0]
    if name == "pretraining-value":
        from .pretraining_value import TINY_RECIPE, pretraining_value

        v = sizes.value
        folder = Path(v["pretrain_dir"]) if v["pretrain_dir"] else work / "pretrain-tiny"
        subset = [r for r in reviews if file_number(r.fileid) % sizes.every_nth_review == 0]
        return pretraining_value(model, v["seeds"], folder, v["pretrain"], TINY_RECIPE | v["tiny_recipe"], v["minilm"], work,
                                 reviews, subset)
    if name == "cpu-pretrain":
        from .pretrain_speed import cpu_pretrain

        return cpu_pretrain(**sizes.cpu_pretrain)
    if name == "nbsvm":
        from . import nbsvm

        return nbsvm.evaluate(reviews, sizes.folds)
    if name == "finetune":
        return accuracy.finetune_vs_trainer(model, sizes.seeds, sizes.finetune, work, reviews)
    if name == "cv":
        return accuracy.cross_validation(model, sizes.folds, sizes.finetune, work, reviews)
    if name == "pretrain":
        return accuracy.continued_pretraining(model, sizes.seeds, sizes.finetune, sizes.pretrain, work, reviews)
    cfg = minibert.BertConfig(**sizes.config)
    shape = "bert-base" if not sizes.config else f"H={cfg.hidden_size}, {cfg.num_hidden_layers} layers"
    if name in ("speed-train", "speed-infer"):
        train = name == "speed-train"
        B = sizes.train_batch if train else sizes.infer_batch
        variants = ["transformers", "transformers+compile", "minibert", "minibert+compile"]
        rows = speed.step_benchmark(variants, cfg, B, sizes.seq_len, device, train=train, warmup=sizes.warmup,
                                    iters=sizes.iters, backend=sizes.compile_backend)
        return {"config": f"{shape}, batch {B} x {sizes.seq_len}, bf16 autocast, all-ones attention mask",
                "rows": rows, **speed.ratios(rows),
                "graph_breaks": {impl: speed.graph_breaks(impl, train) for impl in ("transformers", "minibert")}}
    if name == "profile":
        out = speed.profile_step(cfg, sizes.train_batch, sizes.seq_len, device, backend=sizes.compile_backend)
        return {"config": f"minibert + torch.compile, {shape}, batch {sizes.train_batch} x {sizes.seq_len}, bf16 autocast"} | out
    if name == "cpu-tokenizer":
        from .tokenizer_speed import tokenizer_benchmark

        vocab = str(Path(__file__).resolve().parents[1] / "vocab" / "bert-base-uncased.txt")
        return {"rows": tokenizer_benchmark([r.text for r in reviews], vocab)}
    if name == "cpu-infer":
        c = sizes.cpu_infer
        return {"config": f"{model}, batch {c['B']} x {c['T']}, fp32",
                "rows": speed.cpu_inference(model, B=c["B"], T=c["T"], iters=c["iters"])}
    if name == "cpu-predict":
        from minibert.predict import SETTINGS_FILE

        from .predict_speed import predict_benchmark

        # A model fine-tuned by scripts/finetune.py (it has minibert_finetune.json) is used as it is; a pretrained
        # encoder is first fine-tuned briefly (enough for the speed rows, not for the bf16-vs-fp32 quality ones).
        fine_tuned = (Path(model) / SETTINGS_FILE).is_file()
        out = predict_benchmark(model_dir=model if fine_tuned else None, base=model, limit=sizes.predict_texts,
                                max_length=sizes.predict_max_length, workdir=str(work / "predict"))
        f, t = sizes.cpu_forward, sizes.cpu_train
        out["forward"] = {"config": f"sequence classifier, batch {f['B']} x {f['T']}, all-ones mask, {f['iters']} alternating calls, medians",
                          "rows": speed.cpu_forward(out["model"], **f)}
        out["train_step"] = {"config": f"sequence classifier, batch {t['B']} x {t['T']}, forward + backward + AdamW, {t['iters']} "
                                       f"alternating steps, medians", "rows": speed.cpu_train_step(out["model"], **t)}
        out["operators"] = speed.cpu_operator_profile(out["model"], B=f["B"], T=f["T"] // 2)  # where each spends its time
        return out
    raise ValueError(f"unknown section {name!r}")


def run_sections(names: list[str], model: str, sizes: Sizes, output: Path, work_dir: Path, force: bool, command: str,
                 dry_run: bool) -> list[str]:
    """Run each section not yet in `output` for this machine; append each result as soon as it is done.
    Returns the names of the sections that failed (their errors are in the file too, and not counted as done)."""
    from . import results

    machine = results.machine_name() + (" (dry run)" if dry_run else "")
    failed = []
    for name in names:
        if not force and results.done(results.load(output), name, machine):
            print(f"== {name}: already in {output} for {machine}, skipped (--force measures it again)")
            continue
        print(f"== {name} on {machine} ...", flush=True)
        work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work_dir))
        started = time.perf_counter()
        entry = {"date": time.strftime("%Y-%m-%d"), **results.versions(), "command": command, "model": model,
                 "sizes": dataclasses.asdict(sizes)}
        try:
            entry["result"] = run_section(name, model, sizes, work)
        except Exception as e:  # reported, then the next section; the traceback is printed for the fix
            import traceback

            traceback.print_exc()
            failed.append(name)
            print(f"   {name} failed: {type(e).__name__}: {e}")
            continue
        finally:
            shutil.rmtree(work, ignore_errors=True)
        entry["seconds"] = time.perf_counter() - started
        results.record(output, name, machine, entry)
        print(summary_line(name, entry["result"]) + f"   ({entry['seconds']:.0f} s)", flush=True)
    return failed


def summary_line(name: str, r: dict) -> str:
    """One readable line per section for the console (the README tables come from benchmarks/render_readme.py)."""
    pct = lambda m, s: f"{100 * m:.2f} +- {100 * s:.2f}"  # noqa: E731
    if name == "nbsvm":
        return f"   NBSVM-bi fixed split {100 * r['fixed_split']['accuracy']:.2f}; folds {r['cv']['folds']}: {pct(r['cv']['accuracy_mean'], r['cv']['accuracy_std'])}"
    if name == "finetune":
        m, h = r["minibert"], r["transformers_trainer"]
        return (f"   minibert {pct(m['accuracy_mean'], m['accuracy_std'])} in {m['wall_seconds']:.0f} s; "
                f"Trainer {pct(h['accuracy_mean'], h['accuracy_std'])} in {h['wall_seconds']:.0f} s")
    if name == "cv":
        return f"   folds {r['folds']}: {pct(r['accuracy_mean'], r['accuracy_std'])}"
    if name == "pretrain":
        return (f"   from the model {pct(r['from_model']['accuracy_mean'], r['from_model']['accuracy_std'])}, after continued "
                f"pre-training {pct(r['from_continued_pretraining']['accuracy_mean'], r['from_continued_pretraining']['accuracy_std'])}")
    if name in ("speed-train", "speed-infer"):
        lines = []
        for row in r["rows"]:
            if "error" in row:
                lines.append(f"   {row['variant']:<22} error: {row['error']}")
                continue
            ratio = r["ratio"].get(row["variant"])
            lines.append(f"   {row['variant']:<22} {row['ms']:8.2f} ms  x{ratio:.2f} vs {r['baseline']}  [{row['attention']}]"
                         if ratio else f"   {row['variant']:<22} {row['ms']:8.2f} ms  [{row['attention']}]")
        if r.get("note"):
            lines.append(f"   note: {r['note']}")
        return "\n".join(lines)
    if name == "profile":
        mfu = f"MFU {100 * r['mfu']:.1f}%" if r.get("mfu") else "MFU n/a (no GPU peak)"
        return f"   {r['ms']:.2f} ms per step, {mfu}; top kernel {r['top_kernels'][0]['kernel'][:60]}"
    if name == "cpu-tokenizer":
        return "\n".join(f"   {x['tokenizer']:<30} {x['mode']:<13} {x['mb_per_s']:7.2f} MB/s" for x in r["rows"])
    if name == "cpu-infer":
        return "\n".join(f"   {x['variant']:<14} {x['ms']:9.1f} ms" for x in r["rows"])
    if name == "cpu-pretrain":
        return "\n".join(f"   {x['variant']:<13} {x['precision']}  {x['ms']:8.1f} ms  {x['tokens_per_s']:8.0f} tokens/s  "
                         f"{x['gflop_per_s']:6.1f} GFLOP/s" for x in r["rows"]) + \
            "\n   minibert / transformers: " + ", ".join(f"{p} x{v:.2f}" for p, v in r["ratio_vs_transformers"].items())
    if name == "pretraining-value":
        return "\n".join(f"   {x['row']:<46} {100 * x['accuracy_mean']:6.2f} +- {100 * x['accuracy_std']:.2f}   {x['wall_seconds']:6.0f} s"
                         for x in r["rows"])
    if name == "cpu-predict":
        lines = [f"   {x['variant']:<62} {x['texts_per_s']:7.2f} texts/s  {x['peak_rss_mb']:5.0f} MB"
                 + (f"  minibert x{x['minibert_speedup']:.2f}" if x.get("minibert_speedup") else "") for x in r["rows"]]
        q = r["quality"]
        lines.append(f"   bf16 vs fp32 on {q['texts']} reviews: labels agree {100 * q['agreement']:.2f}%, accuracy "
                     f"{100 * q['accuracy_fp32']:.2f} -> {100 * q['accuracy_bf16']:.2f}, largest probability difference {q['max_probability_diff']:.4f}")
        for part in ("forward", "train_step"):
            lines += [f"   {part} {x['precision']:<24} {x['variant']:<13} {x['ms']:9.1f} ms"
                      + (f"  minibert x{x['minibert_speedup']:.2f}" if x.get("minibert_speedup") else "") for x in r[part]["rows"]]
        return "\n".join(lines)
    return ""
