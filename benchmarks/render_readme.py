"""Render the README's result tables from benchmarks/results/results.json, so that no figure is copied by hand.

    python benchmarks/render_readme.py            # rewrite the blocks between the markers in README.md
    python benchmarks/render_readme.py --check    # exit 1 if README.md is not what the results file gives

Three blocks are rendered: the accuracy tables (between <!-- results:begin --> and <!-- results:end --> in
"Fine-tuning on movie reviews"), the speed tables (<!-- speed:begin --> / <!-- speed:end --> in "Speed"), and what
pre-training buys (<!-- pretraining-value:begin --> / <!-- pretraining-value:end -->, in the README and in
docs/WALKTHROUGH.md, with its figure docs/figures/pretraining_value.png drawn from the same results).
A figure that has not been measured yet is shown as owed, with the one command that measures it. Results
measured by scripts/bench.py win over imported ones from earlier runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the benchmarks package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = "benchmarks"

from benchmarks import results  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"
WALKTHROUGH = README.parent / "docs" / "WALKTHROUGH.md"
M = "$M"  # in commands: the pretrained MiniLM directory, e.g. ../shared/models/minilm-l6-h384-uncased-fp16
GPU_COMMAND = f"python scripts/bench.py --sections gpu --model {M}"
PUBLISHED = [("NBSVM-bi, Wang & Manning 2012 (published)", "89.45"), ("Pang & Lee 2004 (published)", "87.2")]


def pct(x: float) -> str:
    return f"{100 * x:.2f}"


def mean_std(r: dict, mean="accuracy_mean", std="accuracy_std") -> str:
    return f"**{pct(r[mean])} +- {pct(r[std])}**"


def values(xs: list[float]) -> str:
    return ", ".join(pct(x) for x in xs)


def owed(section: str) -> str:
    return f"owed: `python scripts/bench.py --sections {section} --model {M}`"


def newest(data: dict, section: str) -> tuple[str, dict] | None:
    """(machine, entry) of a section measured by scripts/bench.py, GPU machines first, dry runs never."""
    found = [(m, e) for m, e in data["sections"].get(section, {}).items() if not m.endswith("(dry run)")]
    found.sort(key=lambda me: ("CPU" in me[0], me[1]["date"]))
    return found[0] if found else None


# ---- Accuracy ----------------------------------------------------------------------------------------


def nbsvm_rows(data: dict) -> tuple[str | None, str | None, str]:
    """(fixed-split accuracy, 10-fold mean +- std, where) of the NBSVM section, or Nones when not measured."""
    got = newest(data, "nbsvm")
    if not got:
        return None, None, owed("nbsvm").replace(f" --model {M}", "")
    machine, e = got
    r = e["result"]
    return pct(r["fixed_split"]["accuracy"]), mean_std(r["cv"]), f"{machine}, {e['date']}"


def accuracy_block(data: dict) -> str:
    imp = data["imported"]
    nb_fixed, nb_cv, nb_where = nbsvm_rows(data)
    nb_fixed_cell = f"**{nb_fixed}** (deterministic: no seed)" if nb_fixed else nb_where
    lines = ["Fixed split (cv000-cv799 train, cv800-cv999 test), MiniLM (all-MiniLM-L6-v2 BERT, float32 weights), "
             "the default recipe, 5 seeds:", "",
             "| system | test accuracy per seed | mean +- std | wall time, 5 seeds | machine, date |",
             "| --- | --- | --- | --- | --- |"]
    got = newest(data, "finetune")
    if got:
        machine, e = got
        m, h = e["result"]["minibert"], e["result"]["transformers_trainer"]
        lines.append(f"| minibert | {values(m['accuracy'])} | {mean_std(m)} | {m['wall_seconds']:.0f} s | {machine}, {e['date']} |")
        lines.append(f"| transformers Trainer, same weights, examples and hyperparameters | {values(h['accuracy'])} | "
                     f"{mean_std(h)} | {h['wall_seconds']:.0f} s | {machine}, {e['date']} |")
    else:
        for key, label in (("finetune-minibert-run1", "minibert, run 1"), ("finetune-minibert-run2", "minibert, run 2 (another machine start)")):
            r = imp[key]
            lines.append(f"| {label} | {values(r['result']['accuracy'])} | {mean_std(r['result'])} | "
                         f"{r['result']['wall_seconds']:.0f} s | {r['machine']}, {r['date']} ([source]({r['source']})) |")
        lines.append(f"| transformers Trainer, same weights, examples and hyperparameters | {owed('finetune')} | | | |")
    lines.append(f"| NBSVM-bi (word uni+bigrams, Wang & Manning 2012) | | {nb_fixed_cell} | | {nb_where if nb_fixed else ''} |")
    lines += ["", "Wall time is the whole job: tokenizing the corpus, loading the model, training, evaluating after every "
              "epoch (and, for minibert, writing a resumable checkpoint every epoch). For scale, the tutorials' "
              "bert-base-uncased figures on an 80/20 split are 87.0% (HF Trainer) and 88.25% (plain PyTorch loop)."]

    lines += ["", "Pang & Lee's 10-fold cross-validation (fold k = files cv(k-1)00-cv(k-1)99 of both classes, each tested "
              "once by a model trained on the other nine), mean +- std over the folds:", "",
              "| system | accuracy, 10 folds | machine, date |", "| --- | --- | --- |"]
    got = newest(data, "cv")
    if got:
        machine, e = got
        lines.append(f"| minibert, default recipe, MiniLM, seed 0 | {mean_std(e['result'])} | {machine}, {e['date']} |")
    else:
        lines.append(f"| minibert, default recipe, MiniLM | {owed('cv')} | |")
    lines.append(f"| NBSVM-bi, measured here | {nb_cv or nb_where} | {nb_where if nb_cv else ''} |")
    lines += [f"| {name} | {figure} | |" for name, figure in PUBLISHED]

    lines += ["", "Continued pre-training (`scripts/pretrain.py --model M` on the training reviews cv000-cv799 only, "
              "600 steps of 64 x 256 tokens), then the default fine-tuning, against fine-tuning M directly; same seeds, same card:", "",
              "| system | fixed-split test accuracy, 5 seeds | machine, date |", "| --- | --- | --- |"]
    got = newest(data, "pretrain")
    if got:
        machine, e = got
        r = e["result"]
        lines.append(f"| minibert from MiniLM | {mean_std(r['from_model'])} | {machine}, {e['date']} |")
        lines.append(f"| minibert from MiniLM + continued pre-training | {mean_std(r['from_continued_pretraining'])} | {machine}, {e['date']} |")
    else:
        lines.append(f"| minibert from MiniLM, and after continued pre-training | {owed('pretrain')} | |")
    lines.append(f"| NBSVM-bi | {nb_fixed or nb_where} | {nb_where if nb_fixed else ''} |")

    lines += sweep_tables(imp["sweep-on-test"], nb_fixed or nb_where)

    missing = [s for s in ("finetune", "cv", "pretrain") if not newest(data, s)]
    if missing:
        lines += ["", f"Owed accuracy figures ({', '.join(missing)}) come from one command on a GPU machine, with the MiniLM "
                  f"copy (`../shared/models/minilm-l6-h384-uncased-fp16`) at `$M`: `{GPU_COMMAND}` (each section under "
                  "10 minutes on one H100; sections already measured are skipped, so several short sessions complete it), "
                  "then `python benchmarks/render_readme.py`."]
    return "\n".join(lines)


def sweep_tables(old: dict, nb_fixed: str) -> list[str]:
    """The recipe choice: the validation sweep when it has been run (benchmarks/sweep.py), and the first sweep,
    which compared recipes on the test split, kept as a record and labelled so."""
    import json

    from benchmarks.sweep import OUTPUT, VARIANTS

    lines = [""]
    new = json.loads(OUTPUT.read_text()) if OUTPUT.exists() else None
    if new and new.get("ranking"):
        nb = new.get("nbsvm_validation", {})
        lines += [f"Recipe choice ({new['protocol']}), validation accuracy, mean over folds and seeds "
                  f"([source](benchmarks/results/{OUTPUT.name})):", "", "| recipe | settings | validation accuracy | runs |",
                  "| --- | --- | --- | --- |"]
        lines += [f"| {r['variant']} | {VARIANTS[r['variant']]} | {pct(r['mean'])} | {r['runs']} |" for r in new["ranking"]]
        if nb:
            lines.append(f"| NBSVM-bi, same validation folds | | {pct(sum(nb.values()) / len(nb))} | {len(nb)} |")
        if new.get("final"):
            f = new["final"]
            lines += ["", f"The chosen recipe, {f['variant']}, trained on all 1600 training reviews and tested once: "
                          f"{values(f['test_accuracy'])} (**{pct(f['test_mean'])} +- {pct(f['test_std'])}**, seeds {f['seeds']})."]
        else:
            lines += ["", "The chosen recipe's single test (owed): `python -m benchmarks.sweep --model $M --final --seeds 0 1 2 3 4`."]
        lines.append("")
    else:
        lines.append("The recipe choice on validation folds inside cv000-cv799 is owed: `python -m benchmarks.sweep --model $M` "
                     "(resumable: each recipe, fold and seed is appended as it finishes), then "
                     "`python -m benchmarks.sweep --model $M --final --seeds 0 1 2 3 4` tests the chosen one once.")
        lines.append("")
    names = {"chunks512-lr1e-4": "chunks 512/128, lr 1e-4, 4 epochs", "ht-lr1e-4": "head+tail 128+382, lr 1e-4, 4 epochs",
             "ht-lr1e-4-ep6": "head+tail, lr 1e-4, 6 epochs", "chunks256-lr1e-4": "chunks 256/64, lr 1e-4",
             "ht-lr5e-5": "head+tail, lr 5e-5", "tail-lr1e-4": "tail 510, lr 1e-4", "ht-lr2e-4": "head+tail, lr 2e-4"}
    rows = sorted(old["result"].items(), key=lambda kv: -kv[1]["mean"])
    lines += [f"The first recipe sweep ({old['machine']}, {old['date']}, 2 seeds each, [source]({old['source']})) compared "
              "recipes on the **test** split. That is the old protocol: a choice made on the test reviews inflates the "
              "figure then reported on them; it is kept as a record of how today's default was first picked.", "",
              "| recipe (old sweep, scored on the test split) | seeds 0, 1 | mean |", "| --- | --- | --- |"]
    lines += [f"| {names.get(k, k)} | {values(r['accuracy'])} | {pct(r['mean'])} |" for k, r in rows]
    lines.append(f"| NBSVM-bi, same test split | | {nb_fixed} |")
    return lines


# ---- Speed -------------------------------------------------------------------------------------------


def speed_table(rows: list[dict], ratio: dict, baseline: str | None, kind: str) -> list[str]:
    out = [f"| {kind} | ms | tokens/s | {'vs ' + baseline if baseline else 'ratio'} | MFU | peak memory | attention kernel |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['variant']} | error: {r['error'][:80]} | | | | | |")
            continue
        x = ratio.get(r["variant"])
        mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else ""
        mem = f"{r['peak_mem_gb']:.1f} GiB" if r.get("peak_mem_gb") is not None else ""
        out.append(f"| {r['variant']} | {r['ms']:.2f} | {r['tokens_per_s']:,.0f} | {f'{x:.2f}' if x else 'not given'} | "
                   f"{mfu} | {mem} | {r.get('attention', 'not recorded')} |")
    return out


def speed_block(data: dict) -> str:
    from benchmarks.speed import ratios

    imp = data["imported"]
    lines = []
    measured = {s: newest(data, s) for s in ("speed-train", "speed-infer", "profile")}
    for section, kind in (("speed-train", "training step"), ("speed-infer", "inference")):
        got = measured[section]
        if got:
            machine, e = got
            r = e["result"]
            lines += [f"{kind.capitalize()}, {r['config']}; all four variants in one run, {machine}, torch {e['torch']}, "
                      f"transformers {e.get('transformers')}, {e['date']}:", ""]
            lines += speed_table(r["rows"], r["ratio"], r["baseline"], kind)
            if r.get("note"):
                lines += ["", f"Note: {r['note']}."]
            lines.append("")
            continue
        eager, compiled = imp[f"{section}-eager"], imp[f"{section}-compiled"]
        lines += [f"{kind.capitalize()}, {eager['result']['config']}, {eager['machine']}, torch {eager['torch']}, transformers "
                  f"{eager['transformers']}, {eager['date']}. Each pair was measured in one run, but the eager and the compiled "
                  f"pair in different machine starts ([eager]({eager['source']}), [compiled]({compiled['source']})):", ""]
        for entry in (eager, compiled):
            rows = entry["result"]["rows"]
            pair = ratios(rows)
            if entry is compiled:  # the pair has no eager transformers of its own: its baseline cannot be checked
                pair = {"baseline": None, "ratio": {}}
            lines += speed_table(rows, pair["ratio"], pair["baseline"], f"{kind} ({entry['provenance']})") + [""]
        lines += [f"Compiled transformers ({imp[f'{section}-compiled']['result']['rows'][0]['ms']:.2f} ms) was slower than eager "
                  f"transformers ({imp[f'{section}-eager']['result']['rows'][0]['ms']:.2f} ms) across these runs: "
                  f"{COMPILED_DOUBT_SHORT[section]} The four variants in one run, each naming its attention kernel, are owed: "
                  f"`python scripts/bench.py --sections {section} --model {M}`.", ""]
    got = measured["profile"]
    if got:
        machine, e = got
        r = e["result"]
        mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else "n/a"
        lines += [f"Profile of the compiled training step ({r['config']}, {machine}, {e['date']}): {r['ms']:.2f} ms per step, "
                  f"MFU {mfu}, attention: {r['attention']}.", "", "| kernel | ms per step | share of device time | calls per step |",
                  "| --- | --- | --- | --- |"]
        lines += [f"| `{k['kernel'][:90]}` | {k['ms_per_step']:.2f} | {100 * k['share']:.1f}% | {k['calls_per_step']:.0f} |" for k in r["top_kernels"]]
        lines.append("")
    else:
        lines += [f"The profile of the compiled training step (its top kernels and MFU, against the 45% target) is owed: "
                  f"`python scripts/bench.py --sections profile --model {M}`.", ""]

    tok = newest(data, "cpu-tokenizer") or (imp["cpu-tokenizer"]["machine"], imp["cpu-tokenizer"])
    machine, e = tok
    lines += [f"Tokenizer, all 2000 reviews, same ids on every document ({machine}, torch {e['torch']}, transformers "
              f"{e['transformers']}, {e['date']}; `python scripts/bench.py --sections cpu-tokenizer`):", "",
              "| tokenizer | mode | MB/s | minibert is |", "| --- | --- | --- | --- |"]
    for r in e["result"]["rows"]:
        x = r.get("minibert_speedup")
        faster = f"{x:.1f}x faster" if x and r["tokenizer"] != "minibert" else ""
        lines.append(f"| {r['tokenizer']} | {r['mode']} | {r['mb_per_s']:.2f} | {faster} |")
    inf = newest(data, "cpu-infer") or (imp["cpu-infer"]["machine"], imp["cpu-infer"])
    machine, e = inf
    rows = e["result"]["rows"]
    base = next(r for r in rows if r["variant"] == "transformers")
    lines += ["", f"MiniLM (real weights) inference on the CPU, {e['result']['config']}, calls alternating between the two "
              f"({machine}, {e['date']}; `python scripts/bench.py --sections cpu-infer`):", "",
              "| model | ms (median) | ratio |", "| --- | --- | --- |"]
    lines += [f"| {r['variant']} | {r['ms']:.1f} | {base['ms'] / r['ms']:.2f} |" for r in rows]
    got = newest(data, "cpu-predict")
    if got and "quality" in got[1]["result"]:
        return "\n".join(lines + [""] + cpu_predict_block(*got))
    machine, e = got or (imp["cpu-predict"]["machine"], imp["cpu-predict"])
    caveat = f" Caveat: {e['caveat']}." if e.get("caveat") else ""
    lines += ["", f"Prediction on the CPU: `predict.py`'s code path against `transformers.pipeline(\"text-classification\")`, "
              f"same fine-tuned MiniLM, same texts and truncation, {e['result']['config']}; every variant gave the same labels "
              f"({machine}, torch {e['torch']}, transformers {e['transformers']}, {e['date']}; "
              f"`python scripts/bench.py --sections cpu-predict`).{caveat}", "",
              "| variant | texts/s | minibert is | peak memory |", "| --- | --- | --- | --- |"]
    for r in e["result"]["rows"]:
        faster = f"{r['minibert_speedup']:.2f}x faster" if not r["variant"].startswith("minibert") else ""
        lines.append(f"| {r['variant']}, batch {r['batch_size']} | {r['texts_per_s']:.2f} | {faster} | {r['peak_rss_mb']:.0f} MB |")
    lines += ["", "Owed, from one run on a quiet machine: predict.py against the pipeline at equal precision (fp32, and bf16 with "
              "the weights cast once), each one's default, bf16's labels and accuracy against fp32's on the 400 test reviews, and "
              "the classifier's forward and fine-tuning step against transformers in fp32 and bf16: "
              "`python scripts/finetune.py --preset cpu --model $M`, then "
              "`python scripts/bench.py --sections cpu-predict --model runs/finetune-cpu/model --force`."]
    return "\n".join(lines)


def cpu_predict_block(machine: str, e: dict) -> list[str]:
    """The cpu-predict section: prediction rows, bf16's quality, the forward and the fine-tuning step."""
    r = e["result"]
    bf16_cpu = "a CPU with native bf16 units" if r.get("native_bf16") else "a CPU without native bf16 units"
    lines = [f"Prediction on the CPU ({machine}: {r['machine']}, {bf16_cpu}; torch {e['torch']}, transformers {e['transformers']}, "
             f"{e['date']}; `python scripts/bench.py --sections cpu-predict --model runs/finetune-cpu/model`): `predict.py`'s code "
             f"path against `transformers.pipeline(\"text-classification\")`, the same fine-tuned model ({r['model']}), "
             f"{r['config']}; chunks of texts alternate between the variants, each in its own process:", "",
             "| variant | runs in | batch | texts/s | minibert's speed / this | peak memory | labels as minibert fp32 | accuracy |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for x in r["rows"]:  # each pipeline row against minibert at the same precision and batch (defaults: each one's own)
        faster = f"{x['minibert_speedup']:.3f}x" if x.get("minibert_speedup") else ""  # 3 places: 1.296 must not read as 1.30
        lines.append(f"| {x['variant']} | {x['runs_in']} | {x['batch_size']} | {x['texts_per_s']:.2f} | {faster} | "
                     f"{x['peak_rss_mb']:.0f} MB | {pct(x['agreement_with_minibert_fp32'])}% | {pct(x['accuracy'])} |")
    q = r["quality"]
    verdict = ("within the bar (labels agree on at least 99.5%, accuracy moves by at most 0.5 points), so `--precision auto` "
               "uses bf16 for inference on such CPUs" if q["bf16_good_enough"] else
               "outside the bar (labels agree on at least 99.5%, accuracy moves by at most 0.5 points): `--precision auto` "
               "should keep fp32 for inference")
    lines += ["", f"bf16 against fp32, minibert, {q['texts']} test reviews: the labels agree on {pct(q['agreement'])}%, accuracy "
                  f"{pct(q['accuracy_fp32'])} (fp32) and {pct(q['accuracy_bf16'])} (bf16), largest probability difference "
                  f"{q['max_probability_diff']:.4f}; {verdict}."]
    for part, title in (("forward", "The classifier's forward"), ("train_step", "One fine-tuning step")):
        rows = r[part]["rows"]
        lines += ["", f"{title}, {r[part]['config']}, same weights and inputs, minibert against transformers:", "",
                  "| precision | transformers, ms | minibert, ms | minibert is |", "| --- | --- | --- | --- |"]
        for precision in dict.fromkeys(x["precision"] for x in rows):
            t, m = (next(x for x in rows if x["precision"] == precision and x["variant"] == v) for v in ("transformers", "minibert"))
            lines.append(f"| {precision} | {t['ms']:.1f} | {m['ms']:.1f} | {m['minibert_speedup']:.2f}x |")
    return lines


COMPILED_DOUBT_SHORT = {
    section: ("a compiled baseline slower than its own eager form is a broken baseline, so no ratio is given against it "
              f"(the earlier headline, {x} compiled transformers, is withdrawn until the four variants run side by side).")
    for section, x in (("speed-train", "1.50x"), ("speed-infer", "2.11x"))
}


# ---- What pre-training buys (README and walkthrough) ----------------------------------------------------

VALUE_FIGURE = "docs/figures/pretraining_value.png"  # drawn by draw_pretraining_value from the same results
VALUE_COMMANDS = ("python scripts/pretrain.py --preset tiny", f"python scripts/bench.py --sections pretraining-value cpu-pretrain --model {M}")


def pretraining_value_block(data: dict, figure: str = VALUE_FIGURE) -> str:
    """The ablation table (every row: accuracy mean +- std over the seeds, wall time), the accuracy-vs-budget
    figure and the pre-training step's speed, or the commands that owe them. `figure`: the figure's path as the
    rendered file links it."""
    got = newest(data, "pretraining-value")
    if not got:
        lines = ["*Owed, measured on a quiet CPU: `" + "`, then `".join(VALUE_COMMANDS) + "`.*"]
    else:
        machine, e = got
        r = e["result"]
        n = len(r["seeds"])
        lines = [f"Fine-tuned on the fixed split (400 test reviews; the BERT-Tiny rows train on 1,400 reviews and choose the "
                 f"epoch on the other 200, MiniLM trains on all 1,600), {n} seeds per row; {machine}, {e['date']}.", "",
                 "| model | pre-training | held-out masked-LM accuracy | test accuracy (%) | fine-tuning wall time |",
                 "| --- | --- | --- | --- | --- |"]
        for row in r["rows"]:
            steps = row.get("pretraining_steps")
            budget = ("none" if steps == 0 else f"{steps} steps, {row['pretraining_seconds']:.0f} s") if steps is not None else \
                "large corpus" if row["row"].startswith("(d)") else "none (C chosen on validation folds)"
            mlm = f"{pct(row['held_out_mlm_accuracy'])}%" if row.get("held_out_mlm_accuracy") is not None else ""
            acc = pct(row["accuracy_mean"]) if row.get("deterministic") else f"{pct(row['accuracy_mean'])} +- {pct(row['accuracy_std'])}"
            lines.append(f"| {row['row']} | {budget} | {mlm} | {acc} | {row['wall_seconds']:.0f} s |")
        base = r["pretraining"].get("unigram_baseline")
        if base:
            near = r["pretraining"].get("neighbour_baseline")
            lines += ["", f"The unigram baseline (always the most frequent token) gets {pct(base['accuracy'])}% of the same held-out masked tokens"
                      + (f"; a lookup table of each token's two neighbours in the pre-training text (`HeldOut.neighbour_baseline`) gets "
                         f"{pct(near['accuracy'])}%." if near else ".")]
        fill = r["pretraining"].get("fill_mask")
        if fill:
            lines += ["", "| fill-mask (top 5) | random init | after the tiny pre-training |", "| --- | --- | --- |"]
            lines += [f"| `{text}` | {' '.join(before)} | {' '.join(fill['after'][text])} |" for text, before in fill["before"].items()]
        lines += ["", f"![test accuracy against pre-training budget]({figure})"]
    speed = newest(data, "cpu-pretrain")
    if speed:
        machine, e = speed
        r = e["result"]
        lines += ["", f"The pre-training step ({r['config']}), {machine}, {e['date']}; the CPU's peak is estimated as "
                      f"{r['peak']['how']}:", "",
                  "| step | precision | tokens/s | GFLOP/s | share of the estimated peak | minibert vs transformers |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for row in r["rows"]:
            share = f"{100 * row['share_of_peak']:.1f}%" if row["share_of_peak"] else "n/a"
            ratio = f"{r['ratio_vs_transformers'][row['precision']]:.2f}x" if row["variant"] == "minibert" else ""
            lines.append(f"| {row['variant']} | {row['precision']} | {row['tokens_per_s']:,.0f} | {row['gflop_per_s']:.1f} | {share} | {ratio} |")
    return "\n".join(lines)


def draw_pretraining_value(data: dict, path: Path) -> bool:
    """The tiny pre-training's loss curves, and test accuracy against pre-training steps (mean +- std of the tiny
    rows) with MiniLM and NBSVM as lines; False when the section has not been measured."""
    got = newest(data, "pretraining-value")
    if not got:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from minibert.training import plot_loss

    rows, history = got[1]["result"]["rows"], got[1]["result"]["pretraining"].get("history")
    tiny = [r for r in rows if r.get("pretraining_steps") is not None]
    curves = {"mlm": "masked LM loss", "nsp": "next sentence loss"} if history else {}
    fig, axes = plt.subplots(1, len(curves) + 1, figsize=(5.5 * (len(curves) + 1), 4), squeeze=False)
    for ax, (key, label) in zip(axes[0], curves.items()):  # the tiny pre-training's loss curves
        plot_loss(ax, history["step"], history[key], label)
        ax.set_title(f"pre-training BERT-Tiny: {label}", fontsize=9)
    ax = axes[0, -1]
    x = [max(r["pretraining_steps"], 1) for r in tiny]  # step 0 drawn at 1 on the log axis
    ax.errorbar(x, [100 * r["accuracy_mean"] for r in tiny], yerr=[100 * r["accuracy_std"] for r in tiny], marker="o",
                capsize=3, label="BERT-Tiny, fine-tuned from the snapshot")
    for r, style in zip([r for r in rows if r.get("pretraining_steps") is None], ("--", ":")):
        ax.axhline(100 * r["accuracy_mean"], ls=style, color="grey" if style == ":" else "black", label=r["row"])
    ax.set_xscale("log")
    ax.set_xlabel("pre-training steps of the tiny run (0 = random init, drawn at 1)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("after fine-tuning: test accuracy against pre-training", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


# ---- README ------------------------------------------------------------------------------------------


def render(text: str, data: dict, figure: str = VALUE_FIGURE) -> str:
    blocks = (("results", accuracy_block(data)), ("speed", speed_block(data)), ("pretraining-value", pretraining_value_block(data, figure)))
    return render_blocks(text, blocks)


def render_walkthrough(text: str, data: dict) -> str:
    """docs/WALKTHROUGH.md holds the pre-training table too (its figure path is relative to docs/)."""
    return render_blocks(text, (("pretraining-value", pretraining_value_block(data, VALUE_FIGURE.removeprefix("docs/"))),))


def render_blocks(text: str, blocks) -> str:
    for name, block in blocks:
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        if begin not in text or end not in text:
            raise SystemExit(f"error: the file has no {begin} ... {end} block; add the two markers where the tables go")
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{begin}\n<!-- rendered by benchmarks/render_readme.py from benchmarks/results/results.json: do not edit by hand -->\n{block}\n{end}{tail}"
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=str(results.DEFAULT), help="results JSON (default: benchmarks/results/results.json)")
    p.add_argument("--readme", default=str(README), help="README to render into (default: the repository's README.md)")
    p.add_argument("--walkthrough", default=str(WALKTHROUGH), help="walkthrough to render the pre-training table into "
                                                                   "(default: the repository's docs/WALKTHROUGH.md)")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if the README or walkthrough is out of date")
    a = p.parse_args(argv)
    data = results.load(Path(a.results))
    stale = []
    for path, render_one in ((Path(a.readme), render), (Path(a.walkthrough), render_walkthrough)):
        text = path.read_text()
        new = render_one(text, data)
        if a.check:
            stale += [str(path)] if new != text else []
            continue
        path.write_text(new)
        print(f"rendered {path}")
    if stale:
        print(f"{', '.join(stale)} out of date with {a.results}: run python benchmarks/render_readme.py", file=sys.stderr)
        return 1
    if not a.check and draw_pretraining_value(data, README.parent / VALUE_FIGURE):
        print(f"drew {VALUE_FIGURE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
