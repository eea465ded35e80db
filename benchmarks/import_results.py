"""Convert the result files written before benchmarks/results/results.json existed into its "imported" part,
each with its machine, versions and where it came from, and with the caveats that belong to it.

    python -m benchmarks.import_results        # rewrites only the "imported" part of results.json

The sources stay where they are (benchmarks/results/h100-2026-11-25/, cpu-2026-11-25.json); this only reads them.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

from . import results

HERE = Path(__file__).resolve().parent / "results"
H100 = "NVIDIA H100 80GB HBM3"
H100_VERSIONS = {"torch": "2.11.0+cu130", "transformers": "5.17.0", "date": "2026-11-25"}
CPU = "2-core AMD EPYC CPU"
COMPILED_DOUBT = ("compiled transformers was slower than eager transformers, which points at a broken compiled baseline "
                  "(it was called without an attention mask; an independent run with plain torch.compile, fused AdamW, bf16 "
                  "and an all-ones mask got 33.3 ms per training step against 50.3 ms eager): no ratio against it is reported")


def _read(name: str) -> dict:
    return json.loads((HERE / name).read_text())


def imported() -> dict:
    out = {}

    def add(key, source, call, result, machine=H100, versions=H100_VERSIONS, caveat=None):
        out[key] = {"machine": machine, **versions, "source": f"benchmarks/results/{source}",
                    "provenance": call, "result": result} | ({"caveat": caveat} if caveat else {})

    eager = _read("h100-2026-11-25/gpu_eager.json")["sections"]
    add("speed-train-eager", "h100-2026-11-25/gpu_eager.json", "H100 call 1 of 4 (eager pair)", eager["gpu-train"])
    add("speed-infer-eager", "h100-2026-11-25/gpu_eager.json", "H100 call 1 of 4 (eager pair)", eager["gpu-infer"])
    add("speed-train-compiled", "h100-2026-11-25/gpu_train_compiled.json", "H100 call 3 of 4 (compiled pair, another machine start)",
        _read("h100-2026-11-25/gpu_train_compiled.json")["sections"]["gpu-train"], caveat=COMPILED_DOUBT)
    add("speed-infer-compiled", "h100-2026-11-25/gpu_infer_compiled.json", "H100 call 4 of 4 (compiled pair, another machine start)",
        _read("h100-2026-11-25/gpu_infer_compiled.json")["sections"]["gpu-infer"], caveat=COMPILED_DOUBT)

    run1 = _read("h100-2026-11-25/finetune_run1.json")["sections"]["finetune"]["minibert"]
    keep = ("seeds", "accuracy", "accuracy_mean", "accuracy_std", "wall_seconds")
    add("finetune-minibert-run1", "h100-2026-11-25/finetune_run1.json", "H100 call 3 of 4",
        {k: run1[k] for k in keep},
        caveat="the Trainer part of this file is invalid (float16 weights kept in float16: it diverged to 50%) and is not used")

    log = (HERE / "h100-2026-11-25/finetune_run2_log.txt").read_text()
    last = {}
    for seed, epoch, acc in re.findall(r"seed (\d+) epoch (\d+): test accuracy ([\d.]+)", log):
        last[int(seed)] = (int(epoch), float(acc))  # the lines come in epoch order: keep each seed's last
    acc = [last[s][1] for s in sorted(last)]
    wall = float(re.search(r"wall (\d+) s", log).group(1))
    add("finetune-minibert-run2", "h100-2026-11-25/finetune_run2_log.txt", "H100 call 4 of 4 (console log)",
        {"seeds": sorted(last), "accuracy": acc, "accuracy_mean": statistics.mean(acc), "accuracy_std": statistics.stdev(acc),
         "wall_seconds": wall},
        caveat="the Trainer's accuracies in this call were scored against the wrong reviews and are not used")

    sweep = _read("h100-2026-11-25/sweep.json")
    add("sweep-on-test", "h100-2026-11-25/sweep.json", "H100 call 2 of 4", sweep,
        caveat="recipes compared on the TEST split: the old protocol, superseded by benchmarks/sweep.py (validation folds "
               "inside cv000-cv799); kept as a record of how the default was first chosen")

    cpu = _read("cpu-2026-11-25.json")
    versions = {"torch": cpu["torch"], "transformers": cpu["transformers"], "date": cpu["date"]}
    for section in ("cpu-tokenizer", "cpu-infer"):
        add(section, "cpu-2026-11-25.json", "scripts/bench.py --sections cpu-tokenizer cpu-infer (before results.json)",
            cpu["sections"][section], machine=CPU, versions=versions)
    pred = _read("cpu-predict-2026-11-25.json")
    add("cpu-predict", "cpu-predict-2026-11-25.json", "python -m benchmarks.predict_speed (before results.json)", pred,
        machine=CPU, versions={k: pred[k] for k in ("torch", "transformers", "date")},
        caveat="measured while other test runs shared the machine (load average 8-16), which lowers all texts/s alike")
    return out


def main():
    data = results.load(results.DEFAULT)
    data["imported"] = imported()
    results.DEFAULT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"imported {len(data['imported'])} entries into {results.DEFAULT}")


if __name__ == "__main__":
    main()
