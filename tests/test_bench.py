"""The benchmarks: the NBSVM baseline on the real corpus, the two bugs that once cost GPU time (a float16
Trainer baseline, predictions scored against the wrong reviews), the sweep's protocol, the speed table's
refusal of a broken baseline, the README rendered from the results file, and --dry-run through every section."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import minibert
from minibert import data as D
from minibert.finetune import FinetuneArgs, evaluate, mean_by_review, review_metrics

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the benchmarks/ package

from benchmarks import hf_trainer, nbsvm, render_readme, results, speed, suite, sweep  # noqa: E402


@pytest.fixture(scope="module")
def reviews(movie_reviews):
    return D.load_movie_reviews(download=False)


def env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}


# ---- NBSVM ---------------------------------------------------------------------------------------------


def test_ngrams_and_log_count_ratio_worked_example():
    assert nbsvm.ngrams("a fine film .".split()) == ["a", "fine", "film", ".", "a fine", "fine film", "film ."]
    # feature 0 in both positive reviews, feature 1 in the negative one: r > 0 for 0, r < 0 for 1
    X = nbsvm.scipy.sparse.csr_matrix(np.array([[1, 0], [1, 0], [0, 1]], dtype=float))
    r = nbsvm.log_count_ratio(X, np.array([1, 1, 0]))
    # p = 1 + [2, 0] = [3, 1], q = 1 + [0, 1] = [1, 2]: r = log((3/4) / (1/3)), log((1/4) / (2/3))
    np.testing.assert_allclose(r, [np.log(9 / 4), np.log(3 / 8)])


def test_pang_lee_folds_are_the_file_number_hundreds(reviews):
    assert nbsvm.pang_lee_fold("neg/cv000_29416.txt") == 0 and nbsvm.pang_lee_fold("pos/cv999_13106.txt") == 9
    sizes = {}
    for r in reviews:
        sizes.setdefault(nbsvm.pang_lee_fold(r.fileid), []).append(r.label)
    assert sorted(sizes) == list(range(10))
    assert all(len(v) == 200 and sum(v) == 100 for v in sizes.values())  # 100 pos + 100 neg in every fold


def test_svm_solver_finds_liblinears_solution(reviews):
    """The dual solver minimizes liblinear's L2-regularized L2-loss SVM (bias as a regularized constant feature)."""
    from sklearn.svm import LinearSVC

    some = [r for r in reviews if D.file_number(r.fileid) % 5 == 0]  # 400 reviews
    X = nbsvm.binary_features(some)
    y = np.array([r.label for r in some])
    Xr = X.multiply(nbsvm.log_count_ratio(X, y)).tocsr()
    w, b = nbsvm.linear_svm(Xr, y)
    ref = LinearSVC(C=nbsvm.C, loss="squared_hinge", dual=True, intercept_scaling=1.0, tol=1e-10, max_iter=100_000).fit(Xr, y)
    np.testing.assert_allclose(w, ref.coef_.ravel(), atol=1e-5)
    assert abs(b - ref.intercept_[0]) < 1e-5


def test_nbsvm_reproduces_the_published_figure_in_pang_lee_cross_validation(reviews):
    """Wang & Manning 2012 report 89.45% for NBSVM-bi in this protocol; the recorded figures are the ones this
    code computes (deterministic up to floating-point order: at most one review in a fold may flip)."""
    out = nbsvm.evaluate(reviews)
    cv = out["cv"]
    assert cv["folds"] == list(range(1, 11)) and len(cv["accuracy"]) == 10
    assert cv["accuracy_mean"] >= 0.875, cv
    assert abs(cv["accuracy_mean"] - 0.8945) < 0.02
    assert out["fixed_split"]["train_reviews"] == 1600 and out["fixed_split"]["test_reviews"] == 400
    assert out["fixed_split"]["accuracy"] >= 0.87
    recorded = results.load(results.DEFAULT)["sections"]["nbsvm"]
    assert recorded, "benchmarks/results/results.json has no nbsvm entry"
    for machine, entry in recorded.items():
        assert abs(entry["result"]["fixed_split"]["accuracy"] - out["fixed_split"]["accuracy"]) <= 1 / 400, machine
        np.testing.assert_allclose(entry["result"]["cv"]["accuracy"], cv["accuracy"], rtol=0, atol=1 / 200, err_msg=machine)


# ---- The Trainer baseline: the two bugs that cost GPU time ----------------------------------------


def test_trainer_baseline_loads_a_float16_file_as_float32(tmp_path):
    from safetensors import safe_open

    folder = suite.tiny_model(tmp_path / "fp16")
    with safe_open(str(Path(folder) / "model.safetensors"), "pt") as f:
        stored = {k: f.get_tensor(k) for k in f.keys()}
    assert {t.dtype for t in stored.values()} == {torch.float16}  # the file really is float16
    model = hf_trainer.load_model(FinetuneArgs(model=folder))
    params = dict(model.named_parameters())
    assert {p.dtype for p in params.values()} == {torch.float32}
    word = next(k for k in stored if k.endswith("word_embeddings.weight"))
    torch.testing.assert_close(params["bert.embeddings.word_embeddings.weight"], stored[word].float(), rtol=0, atol=0)


def test_baseline_scorer_and_minibert_evaluation_agree_on_the_same_fixed_model(minilm_dir, reviews):
    """Real MiniLM weights with a fixed classifier, real test reviews cut into overlapping windows: the score the
    Trainer baseline reports equals minibert's evaluation, review by review."""
    args = FinetuneArgs(model=str(minilm_dir), truncation="chunks", max_length=64, stride=16, eval_batch_size=8)
    torch.manual_seed(0)
    hf = hf_trainer.load_model(args).eval()
    mb = minibert.BertForSequenceClassification.from_pretrained(str(minilm_dir), num_labels=2)
    from minibert.checkpoint import load_state_dict

    load_state_dict(mb, hf.state_dict())  # the same classifier head too
    _, test = D.split(reviews)
    # 16 test reviews, 8 per class, each cut to its first ~100-200 words: a few windows each, cheap on a CPU
    test = [D.Review(r.fileid, " ".join(r.text.split()[: 100 + 7 * i]), r.label)
            for i, r in enumerate(r for r in test if D.file_number(r.fileid) % 25 == 0)]
    tok = minibert.BertTokenizer.from_pretrained(str(minilm_dir))
    examples = D.encode_reviews(test, tok, "chunks", max_length=64, stride=16)
    assert len(examples) > 2 * len(test)  # several windows per review, of several lengths: the order matters
    cpu = torch.device("cpu")
    theirs = hf_trainer.score(hf, examples, len(test), args, cpu, "fp32")
    ours = evaluate(mb.eval(), examples, len(test), args, cpu, "fp32")
    assert theirs["accuracy"] == ours["accuracy"] and theirs["confusion"] == ours["confusion"]
    assert 0 < sum(theirs["confusion"][0]) and 0 < sum(theirs["confusion"][1])


def test_review_scoring_keeps_each_window_with_its_own_review(reviews, vocab_path):
    """Shuffling the examples (as a length-sorted evaluation order does) with their logits changes nothing;
    shuffling the logits alone (the old bug) changes the per-review result."""
    _, test = D.split(reviews)
    test = [r for r in test if D.file_number(r.fileid) % 20 == 0]
    examples = D.encode_reviews(test, minibert.BertTokenizer(str(vocab_path)), "chunks", max_length=64, stride=16)
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(len(examples), 2, generator=g)
    reference = mean_by_review(logits, examples, len(test))
    order = list(range(len(examples)))
    random.Random(0).shuffle(order)
    shuffled = [examples[i] for i in order]
    torch.testing.assert_close(mean_by_review(logits[order], shuffled, len(test)), reference)
    assert review_metrics(logits[order], shuffled, len(test)) == review_metrics(logits, examples, len(test))
    assert not torch.allclose(mean_by_review(logits[order], examples, len(test)), reference)


# ---- Speed: the broken-baseline rule ------------------------------------------------------------------


def test_ratios_refuse_a_compiled_baseline_slower_than_its_eager_form():
    rows = [{"variant": "transformers", "ms": 46.9}, {"variant": "transformers+compile", "ms": 49.2},
            {"variant": "minibert", "ms": 44.6}, {"variant": "minibert+compile", "ms": 32.8}]
    out = speed.ratios(rows)
    assert out["baseline"] == "transformers" and "slower than eager" in out["note"]
    assert out["ratio"]["minibert+compile"] == pytest.approx(46.9 / 32.8)
    rows[1]["ms"] = 33.3  # a correctly compiled baseline is the one compared against
    out = speed.ratios(rows)
    assert out["baseline"] == "transformers+compile" and out["note"] is None
    assert out["ratio"]["minibert+compile"] == pytest.approx(33.3 / 32.8)
    assert speed.ratios(rows[1:2])["ratio"] == {}  # a compiled baseline without its eager form cannot be checked


def test_neither_model_breaks_the_graph_when_called_as_the_benchmark_calls_it():
    for impl in ("transformers", "minibert"):
        out = speed.graph_breaks(impl)
        assert out["graph_breaks"] == 0 and out["graphs"] == 1, (impl, out["reasons"])


# ---- The sweep never looks at the test files ----------------------------------------------------------


def test_sweep_validation_folds_partition_the_training_files_only(reviews):
    seen = []
    for fold, train, val in sweep.validation_splits(reviews, 4, [0, 1, 2, 3]):
        numbers = [D.file_number(r.fileid) for r in train + val]
        assert max(numbers) < 800  # never cv800-cv999
        assert not {r.fileid for r in train} & {r.fileid for r in val}
        assert len(train) + len(val) == 1600 and sum(r.label for r in val) == len(val) // 2
        seen += [r.fileid for r in val]
    assert sorted(seen) == sorted(r.fileid for r in D.split(reviews)[0])  # every training review held out once
    with pytest.raises(AssertionError, match="test file"):
        sweep.inner_fold("pos/cv812_17924.txt", 4)


def test_sweep_dry_run_chooses_on_validation_then_tests_once(tmp_path):
    out = tmp_path / "sweep.json"
    cmd = [sys.executable, "-m", "benchmarks.sweep", "--dry-run", "--variants", "ht-lr1e-4", "--folds", "0", "--output", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=ROOT)
    assert p.returncode == 0, p.stderr[-2000:]
    first = json.loads(out.read_text())
    assert list(first["validation"]) == ["ht-lr1e-4/fold0/seed0"] and "final" not in first
    assert 0.5 < first["nbsvm_validation"]["0"] <= 1  # the classical reference on the same validation fold
    p = subprocess.run(cmd + ["--final"], capture_output=True, text=True, env=env(), cwd=ROOT)
    assert p.returncode == 0, p.stderr[-2000:]
    final = json.loads(out.read_text())
    assert final["validation"] == first["validation"]  # nothing measured again
    assert final["final"]["variant"] == "ht-lr1e-4" and len(final["final"]["test_accuracy"]) == 1


def test_cpu_preset_is_the_recipe_the_cpu_sweep_ranked_first():
    """finetune.PRESETS["cpu"] is the CPU recipe with the best validation accuracy in the recorded sweep
    (python -m benchmarks.sweep --cpu), measured on validation folds inside cv000-cv799 only."""
    from minibert.finetune import PRESETS

    runs = json.loads(sweep.CPU_OUTPUT.read_text())["validation"]
    assert runs and all(r["variant"] in sweep.CPU_VARIANTS and r["args"]["device"] == "cpu" for r in runs.values())
    best = sweep.ranking(runs)[0]["variant"]
    assert {k: PRESETS["cpu"][k] for k in sweep.CPU_VARIANTS[best]} == sweep.CPU_VARIANTS[best], best


def test_sweep_cpu_takes_only_the_cpu_recipes(tmp_path):
    cmd = [sys.executable, "-m", "benchmarks.sweep", "--cpu", "--dry-run", "--variants", "ht-lr1e-4", "--output", str(tmp_path / "s.json")]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=ROOT)
    assert p.returncode == 2 and p.stderr == "error: --variants: ht-lr1e-4 is not in CPU_VARIANTS; drop --cpu\n"
    assert not (tmp_path / "s.json").exists()  # refused before anything ran


# ---- README and results file --------------------------------------------------------------------------


def test_readme_tables_are_rendered_from_the_results_file():
    data = results.load(results.DEFAULT)
    text = (ROOT / "README.md").read_text()
    assert render_readme.render(text, data) == text, "README.md is out of date: run python benchmarks/render_readme.py"
    walkthrough = (ROOT / "docs" / "WALKTHROUGH.md").read_text()
    assert render_readme.render_walkthrough(walkthrough, data) == walkthrough, "docs/WALKTHROUGH.md is out of date: run python benchmarks/render_readme.py"
    block = text.split("<!-- results:begin -->")[1].split("<!-- results:end -->")[0]
    tables = [t for t in block.split("\n\n") if t.startswith("| ")]
    assert len(tables) >= 4 and all("NBSVM-bi" in t for t in tables)  # the baseline stands in every accuracy table
    nb = data["sections"]["nbsvm"]["2-core AMD EPYC CPU"]["result"]
    assert f"{100 * nb['cv']['accuracy_mean']:.2f} +- {100 * nb['cv']['accuracy_std']:.2f}" in block


def test_imported_results_are_what_the_source_files_say():
    from benchmarks import import_results

    assert results.load(results.DEFAULT)["imported"] == json.loads(json.dumps(import_results.imported()))
    run2 = import_results.imported()["finetune-minibert-run2"]["result"]
    assert run2["accuracy"] == [0.9, 0.9, 0.9025, 0.9075, 0.9025] and run2["wall_seconds"] == 164


# ---- scripts/bench.py ---------------------------------------------------------------------------------


def bench(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), *args], capture_output=True, text=True, env=env(), cwd=cwd)


def test_bench_bad_input_is_one_line_and_exit_2(tmp_path):
    p = bench("--sections", "nbsvm", "--output", str(tmp_path / "missing" / "r.json"))
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0 and "--output" in p.stderr
    p = bench("--sections", "finetune", "--model", str(tmp_path / "nowhere"))
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0
    assert ("--dry-run" in p.stderr) if not torch.cuda.is_available() else ("--model" in p.stderr)
    p = bench("--dry-run", "--model", str(tmp_path))
    assert p.returncode == 2 and "--model" in p.stderr
    p = bench("--sections", "cpu-predict", "--predict-texts", "0")
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0 and "--predict-texts" in p.stderr


def test_dry_run_runs_every_section_through_the_same_code(tmp_path):
    out = tmp_path / "dry.json"
    p = bench("--dry-run", "--output", str(out), "--work-dir", str(tmp_path / "work"))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    data = results.load(out)
    machine = results.machine_name() + " (dry run)"
    got = {s: data["sections"][s][machine]["result"] for s in suite.SECTIONS}
    ft = got["finetune"]
    assert len(ft["minibert"]["accuracy"]) == 2 and len(ft["transformers_trainer"]["accuracy"]) == 2
    assert all(len(r["per_epoch"]) == 1 for r in ft["transformers_trainer"]["runs"])
    assert got["cv"]["folds"] == [1, 2] and len(got["cv"]["accuracy"]) == 2
    assert got["pretrain"]["pretrain"]["exclude_test_reviews"] is True
    assert set(got["pretrain"]) >= {"from_model", "from_continued_pretraining"}
    for s in ("speed-train", "speed-infer"):
        rows = {r["variant"]: r for r in got[s]["rows"]}
        assert set(rows) == {"transformers", "transformers+compile", "minibert", "minibert+compile"}, got[s]["rows"]
        assert all(r["attention"] for r in rows.values()) and got[s]["graph_breaks"]["minibert"]["graph_breaks"] == 0
        assert got[s]["baseline"] in ("transformers", "transformers+compile")
    assert got["profile"]["top_kernels"] and abs(sum(k["share"] for k in got["profile"]["top_kernels"]) - 1) < 0.5
    assert got["nbsvm"]["cv"]["folds"] == [1, 2]
    cp = got["cpu-predict"]  # both libraries at both precisions and by default, each with its memory, labels and accuracy
    assert {(r["impl"], r["runs_in"]) for r in cp["rows"]} >= {(i, p) for i in ("minibert", "pipeline") for p in ("fp32", "bf16")}
    assert all(r["peak_rss_mb"] > 0 and len(r["labels"]) == 4 and 0 <= r["accuracy"] <= 1 for r in cp["rows"])
    assert [r["impl"] == "pipeline" and r["minibert_speedup"] > 0 for r in cp["rows"]] == [False, True] * 3 + [True, True]
    assert cp["rows"][5]["batch_size"] == 1 and set(cp["gold"]) == {"neg", "pos"}  # 4 texts from both classes
    assert [r.get("keep_freed_memory", False) for r in cp["rows"]] == [False] * 6 + [True, True]  # the pipeline with predict.py's allocator
    assert cp["quality"]["texts"] == 4 and cp["quality"]["agreement"] == cp["rows"][2]["agreement_with_minibert_fp32"]
    assert {(r["precision"], r["variant"]) for r in cp["forward"]["rows"]} == {
        (p, v) for p in ("fp32", "bf16 autocast", "bf16, weights cast once") for v in ("transformers", "minibert")}
    assert {r["precision"] for r in cp["train_step"]["rows"]} == {"fp32", "bf16 autocast"}
    ops = cp["operators"]  # the side-by-side profile: each case lists operators with both libraries' call counts
    assert all(ops[case] and {"transformers_calls", "minibert_calls"} <= set(ops[case][0]) for case in
               ("forward, bf16 autocast", "forward, bf16 weights cast once", "fine-tuning step, bf16 autocast"))
    # pretraining-value: a row per snapshot of the tiny pre-training (run first, in the work folder), MiniLM, NBSVM
    value = got["pretraining-value"]
    assert [r["row"][:3] for r in value["rows"]] == ["(a)", "(c)", "(b)", "(d)", "NBS"]
    assert [r.get("pretraining_steps") for r in value["rows"][:3]] == [0, 2, 4]
    assert all(len(r["accuracy"]) == 2 and r["wall_seconds"] > 0 for r in value["rows"][:4])
    nb = value["rows"][-1]
    assert nb["validation_accuracy"][str(nb["C"])] == max(nb["validation_accuracy"].values())  # C chosen on validation folds
    assert value["pretraining"]["args"]["exclude_test_reviews"] and value["pretraining"]["args"]["val_size"] == 20
    assert value["pretraining"]["folder"].startswith(str(tmp_path / "work"))  # the dry run never touches runs/
    speed = got["cpu-pretrain"]
    assert {(r["variant"], r["precision"]) for r in speed["rows"]} == {(v, p) for v in ("minibert", "transformers") for p in ("fp32", "bf16")}
    assert set(speed["ratio_vs_transformers"]) == {"fp32", "bf16"} and speed["profile_minibert_fp32"]
    assert speed["peak"]["how"] and all(r["gflop_per_s"] > 0 for r in speed["rows"])
    # the README renderer reads these measured sections (as if measured for real) and owes none of them
    real = {"sections": {s: {"a GPU": m[machine]} for s, m in data["sections"].items()}, "imported": results.load(results.DEFAULT)["imported"]}
    text = render_readme.render((ROOT / "README.md").read_text(), real)
    accuracy, speed_part = text.split("<!-- results:end -->")[0], text.split("<!-- speed:begin -->")[1]
    assert "--sections finetune" not in accuracy and "--sections cv" not in accuracy and "--sections pretrain" not in accuracy
    assert "transformers Trainer" in accuracy and "| minibert" in accuracy
    assert "owed" not in speed_part.split("<!-- speed:end -->")[0].split("Tokenizer")[0]
    assert rows["minibert+compile"]["attention"] in speed_part
    assert "bf16 against fp32, minibert, 4 test reviews" in speed_part and "One fine-tuning step" in speed_part
    assert "| transformers pipeline, bf16 (dtype=torch.bfloat16) | bf16 | 16 |" in speed_part
    block = text.split("<!-- pretraining-value:begin -->")[1].split("<!-- pretraining-value:end -->")[0]
    assert "Owed" not in block and "(a) BERT-Tiny, random init" in block and "| NBSVM-bi |" in block
    assert "](docs/figures/pretraining_value.png)" in block and "| minibert | bf16 |" in block
    walk = render_readme.render_walkthrough((ROOT / "docs" / "WALKTHROUGH.md").read_text(), real)
    assert "](figures/pretraining_value.png)" in walk.split("<!-- pretraining-value:begin -->")[1]
    assert render_readme.draw_pretraining_value(real, tmp_path / "value.png") and (tmp_path / "value.png").stat().st_size > 10_000
    # a second run finds every section done for this machine and measures nothing again
    p = bench("--dry-run", "--output", str(out), "--work-dir", str(tmp_path / "work2"))
    assert p.returncode == 0 and p.stdout.count("skipped") == len(suite.SECTIONS)
