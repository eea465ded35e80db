"""Prediction: a text's answer is the mean of its windows' logits, the reported label is the most likely one,
scripts/predict.py cuts texts as the model was fine-tuned, streams results in input order, reads pairs,
writes JSON lines, and refuses (one line, exit code 2) what would print confident nonsense.

Checked against answers computed by hand: window logits from direct model calls, and a classifier whose bias
forces one class."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import load_script

import minibert
from minibert import data as D
from minibert.predict import SETTINGS_FILE, classify, classify_stream, mean_by_review

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def save_classifier(path: Path, vocab_path: Path, labels=("neg", "pos"), settings: dict | None = None, seed: int = 0,
                    bias: list[float] | None = None) -> Path:
    """A tiny classifier saved as finetune.py saves one (config with label names, minibert_finetune.json).
    Its weights are random but complete, so it loads like a fine-tuned model; `bias` (with a zero weight)
    fixes its answer."""
    torch.manual_seed(seed)
    cfg = minibert.BertConfig(**TINY, num_labels=len(labels) if labels else 2, id2label=dict(enumerate(labels)) if labels else None)
    model = minibert.BertForSequenceClassification(cfg)
    for p in model.parameters():  # larger than BERT's N(0, 0.02): texts and windows get clearly different logits
        if p.dim() == 2:
            torch.nn.init.normal_(p, std=0.3)
    if bias is not None:
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.copy_(torch.tensor(bias))
    model.save_pretrained(path, tokenizer=minibert.BertTokenizer(vocab_path))
    if settings is not None:
        (path / SETTINGS_FILE).write_text(json.dumps(settings))
    return path


CHUNKS_32 = {"truncation": "chunks", "max_length": 32, "head": 8, "stride": 8, "pairs": False, "labels": ["neg", "pos"]}


@pytest.fixture(scope="module")
def clf_dir(tmp_path_factory, vocab_path):
    return save_classifier(tmp_path_factory.mktemp("clf"), vocab_path, settings=CHUNKS_32)


@pytest.fixture(scope="module")
def predict():
    return load_script("predict")


def run_predict(predict, argv, capsys) -> tuple[int, list[str], str]:
    code = predict.main(argv)
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


# ---- The answer: mean over windows, the most likely label ----------------------------------------------


def test_mean_by_review_is_the_mean_of_each_reviews_windows():
    examples = [D.Example([101, 102], 0, doc) for doc in (0, 0, 1, 2, 2, 2)]
    logits = torch.tensor([[1.0, 2.0], [3.0, -4.0], [5.0, 6.0], [0.0, 3.0], [3.0, 0.0], [-3.0, 6.0]])
    got = mean_by_review(logits, examples, 3)
    assert got.tolist() == [[2.0, -1.0], [5.0, 6.0], [0.0, 3.0]]  # by hand; the max would be [3, 2], [3, 6]


def test_a_bias_that_forces_class_1_labels_every_text_class_1(review_texts, vocab_path, tmp_path, predict, capsys):
    forced = save_classifier(tmp_path, vocab_path, bias=[-50.0, 50.0], settings=CHUNKS_32)
    model, tok = minibert.BertForSequenceClassification.from_pretrained(forced), minibert.BertTokenizer(vocab_path)
    texts = review_texts[:3] + ["a fine film .", "two dull hours ."]  # long reviews (many windows) and short texts
    for r in classify(model, tok, texts, truncation="chunks", max_length=32, stride=8, device="cpu"):
        assert r["label"] == "pos" and r["probability"] == pytest.approx(1.0, abs=1e-12)
        assert r["probabilities"]["neg"] == pytest.approx(0.0, abs=1e-12)
    code, lines, _ = run_predict(predict, ["--model", str(forced), "--device", "cpu", *texts[3:]], capsys)
    assert code == 0 and lines == ["pos\t1.0000\targ1", "pos\t1.0000\targ2"]
    flipped = save_classifier(tmp_path / "flipped", vocab_path, bias=[50.0, -50.0])
    code, lines, _ = run_predict(predict, ["--model", str(flipped), "--device", "cpu", texts[3]], capsys)
    assert code == 0 and lines == ["neg\t1.0000\targ1"]


def test_a_two_window_text_gets_the_softmax_of_its_windows_mean_logits(review_texts, clf_dir, vocab_path, predict, capsys):
    tok = minibert.BertTokenizer(vocab_path)
    ids = tok.encode(review_texts[0], add_special_tokens=False)[:45]  # 30 tokens per window, 8 shared: two windows
    text = tok.decode(ids)
    assert tok.encode(text, add_special_tokens=False) == ids
    model = minibert.BertForSequenceClassification.from_pretrained(clf_dir)
    first, second = [tok.cls_token_id, *ids[:30], tok.sep_token_id], [tok.cls_token_id, *ids[-30:], tok.sep_token_id]
    with torch.inference_mode():
        window_logits = model(torch.tensor([first, second])).logits  # (2 windows, 2 classes)
    assert (window_logits[0] - window_logits[1]).abs().max() > 0.1  # a max or a single window would differ
    expected = window_logits.mean(0).softmax(-1)  # (2,)
    assert abs(expected[0] - expected[1]) > 0.05

    (r,) = classify(model, tok, [text], truncation="chunks", max_length=32, stride=8, device="cpu", precision="fp32")
    assert [r["probabilities"]["neg"], r["probabilities"]["pos"]] == pytest.approx(expected.tolist(), abs=1e-6)
    assert r["label"] == ("neg", "pos")[int(expected.argmax())] and r["probability"] == pytest.approx(float(expected.max()), abs=1e-6)
    # predict.py, reading chunks 32 / 8 from the model's minibert_finetune.json
    code, lines, _ = run_predict(predict, ["--model", str(clf_dir), "--device", "cpu", "--precision", "fp32", "--format", "jsonl", text], capsys)
    out = json.loads(lines[0])
    assert code == 0 and out["source"] == "arg1" and out["label"] == r["label"]
    assert [out["probabilities"]["neg"], out["probabilities"]["pos"]] == pytest.approx(expected.tolist(), abs=1e-6)


# ---- predict.py: settings, order, formats, pairs, progress ---------------------------------------------


def test_predict_cuts_texts_as_recorded_and_flags_override(review_texts, clf_dir, predict, capsys):
    model = minibert.BertForSequenceClassification.from_pretrained(clf_dir)
    tok = minibert.BertTokenizer.from_pretrained(clf_dir)
    texts = review_texts[10:13]

    def probabilities(argv):
        code, lines, _ = run_predict(predict, ["--model", str(clf_dir), "--device", "cpu", "--precision", "fp32", "--format", "jsonl", *argv, *texts], capsys)
        assert code == 0
        return [json.loads(line)["probabilities"]["pos"] for line in lines]

    fp32 = dict(device="cpu", precision="fp32")  # compared to 1e-6: the same precision as the script's
    recorded = [r["probabilities"]["pos"] for r in classify(model, tok, texts, truncation="chunks", max_length=32, stride=8, **fp32)]
    head16 = [r["probabilities"]["pos"] for r in classify(model, tok, texts, truncation="head", max_length=16, **fp32)]
    assert probabilities([]) == pytest.approx(recorded, abs=1e-6)
    assert probabilities(["--truncation", "head", "--max-length", "16"]) == pytest.approx(head16, abs=1e-6)
    assert recorded != pytest.approx(head16, abs=1e-3)


def test_results_come_back_in_input_order_whatever_the_batching(review_texts, clf_dir):
    model = minibert.BertForSequenceClassification.from_pretrained(clf_dir)
    tok = minibert.BertTokenizer.from_pretrained(clf_dir)
    texts = [review_texts[i][: 40 + 97 * i] for i in range(10)]  # lengths from a few words to several windows
    texts.reverse()
    alone = [classify(model, tok, [t], max_length=32, stride=8, device="cpu", precision="fp32")[0] for t in texts]
    stream = classify_stream(model, tok, texts, max_length=32, stride=8, batch_size=2, block=3, device="cpu", precision="fp32")
    for one, streamed in zip(alone, stream, strict=True):
        assert streamed["label"] == one["label"]
        assert streamed["probabilities"]["pos"] == pytest.approx(one["probabilities"]["pos"], abs=1e-5)


def test_jsonl_gives_every_class_by_name(vocab_path, tmp_path, predict, capsys):
    three = save_classifier(tmp_path, vocab_path, labels=("negative", "neutral", "positive"), seed=3)
    code, lines, _ = run_predict(predict, ["--model", str(three), "--device", "cpu", "--format", "jsonl", "a fine film .", "it was a film ."], capsys)
    assert code == 0 and len(lines) == 2
    for line, source in zip(lines, ("arg1", "arg2")):
        out = json.loads(line)
        assert out["source"] == source and list(out["probabilities"]) == ["negative", "neutral", "positive"]
        assert sum(out["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
        assert out["label"] == max(out["probabilities"], key=out["probabilities"].get)
        assert out["probability"] == max(out["probabilities"].values())


def test_pairs_from_the_command_line_and_from_tab_separated_lines(vocab_path, tmp_path, predict, capsys):
    pairs = save_classifier(tmp_path / "m", vocab_path, labels=("next", "random"), seed=5,
                            settings=CHUNKS_32 | {"truncation": "head", "pairs": True, "labels": ["next", "random"]})
    args = ["--model", str(pairs), "--device", "cpu", "--format", "jsonl"]
    code, from_args, _ = run_predict(predict, [*args, "the film opens .", "the film opens .", "--pair", "a town wakes .", "i ate an apple ."], capsys)
    assert code == 0
    probs = [json.loads(line)["probabilities"]["next"] for line in from_args]
    assert probs[0] != pytest.approx(probs[1], abs=1e-4)  # the second text matters
    lines = tmp_path / "pairs.tsv"
    lines.write_text("the film opens .\ta town wakes .\n\nthe film opens .\ti ate an apple .\n")
    code, from_file, _ = run_predict(predict, [*args, "--lines", str(lines)], capsys)
    assert code == 0
    assert [json.loads(line)["source"] for line in from_file] == [f"{lines}:1", f"{lines}:3"]
    assert [json.loads(line)["probabilities"]["next"] for line in from_file] == pytest.approx(probs, abs=1e-6)


def test_a_progress_bar_of_windows_on_request_even_for_one_long_file(review_texts, clf_dir, predict, tmp_path, capsys):
    long = tmp_path / "long.txt"
    long.write_text(" ".join(review_texts[:3]))  # ~2,500 tokens: about 100 windows of 30 tokens
    argv = ["--model", str(clf_dir), "--device", "cpu", "--batch-size", "8", "--files", str(long)]
    code, lines, err = run_predict(predict, [*argv, "--progress"], capsys)
    windows = len(D.encode_reviews([D.Review("x", long.read_text(), 0)], minibert.BertTokenizer.from_pretrained(clf_dir),
                                   "chunks", max_length=32, stride=8))
    assert code == 0 and len(lines) == 1 and windows > 50
    assert f"{windows}/{windows}" in err and f"8/{windows}" in err  # it advanced batch by batch
    code, lines, err = run_predict(predict, argv, capsys)
    assert code == 0 and len(lines) == 1  # by default only on a terminal (stderr is captured here):
    assert err.startswith("precision: ") and len(err.strip().split("\n")) == 1  # stderr says only the precision


def test_predict_script_labels_texts_and_files_and_reports_bad_input(vocab_path, tmp_path, capsys, predict):
    """Moved from test_finetune.py, assertions unchanged; it now uses a classifier with complete weights and
    no label names (a base encoder is refused, see below)."""
    tiny_dir = save_classifier(tmp_path / "model", vocab_path, labels=None)
    review = tmp_path / "review.txt"
    review.write_text("a gripping film . " * 300)  # longer than one window: several windows are averaged
    assert predict.main(["--model", str(tiny_dir), "--device", "cpu", "--max-length", "64", "a fine film .", "--files", str(review)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[2] for line in lines] == ["arg1", str(review)]
    assert all(line.split("\t")[0] in {"0", "1"} and 0.5 <= float(line.split("\t")[1]) <= 1 for line in lines)
    assert predict.main(["--model", str(tiny_dir), "--files", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt" in capsys.readouterr().err
    assert predict.main(["--model", str(tiny_dir)]) == 2
    assert "nothing to classify" in capsys.readouterr().err


# ---- Refusals: one line, exit code 2 ----------------------------------------------------------------------


def test_predict_refuses_what_would_print_confident_nonsense(clf_dir, vocab_path, tmp_path, predict, capsys):
    from safetensors.torch import load_file, save_file

    base = tmp_path / "base"
    minibert.BertModel(minibert.BertConfig(**TINY)).save_pretrained(base, tokenizer=minibert.BertTokenizer(vocab_path))
    broken = tmp_path / "nan"
    save_classifier(broken, vocab_path)
    weights = load_file(broken / "model.safetensors")
    weights["classifier.weight"][0, 0] = float("nan")
    save_file(weights, broken / "model.safetensors")
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("a caf\xe9 scene\n".encode("latin-1"))
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\x01\x02 abc")
    blank = tmp_path / "blank.txt"
    blank.write_text(" \n\t\n")
    nowhere = str(tmp_path / "no-model")  # input errors are found before the model is even looked for
    m = ["--model", str(clf_dir), "--device", "cpu"]
    cases = [
        (["--model", str(base), "a fine film ."], "never fine-tuned"),
        (["--model", str(broken), "a fine film ."], "NaN"),
        (["--model", nowhere, "a fine film .", ""], "arg2 is empty or only whitespace"),
        (["--model", nowhere, "   \n"], "arg1 is empty or only whitespace"),
        (["--model", nowhere, "--files", str(blank)], f"{blank} is empty or only whitespace"),
        (["--model", nowhere, "--batch-size", "0", "text"], "--batch-size must be >= 1, got 0"),
        (["--model", nowhere, "--batch-size", "-3", "text"], "--batch-size must be >= 1, got -3"),
        (["--model", nowhere, "--files", str(latin)], f"--files {latin}: not UTF-8 text (byte 0xe9 on line 1)"),
        (["--model", nowhere, "--lines", str(latin)], f"--lines {latin}: not UTF-8 text"),
        (["--model", nowhere, "--files", str(binary)], f"--files {binary}: holds NUL bytes, so it is a binary file"),
        (["--model", nowhere, "a", "b", "--pair", "c"], "--pair gives 1 second texts for 2 texts"),
        ([*m, "a fine film .", "--pair", "a second text ."], "was fine-tuned on single texts; leave out --pair"),
        ([*m, "--truncation", "head", "--max-length", "1", "a fine film ."], "max_length 1 leaves no room"),
    ]
    for argv, expected in cases:
        code, lines, err = run_predict(predict, argv, capsys)
        assert code == 2 and lines == [], (argv, err)
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), (argv, err)
        assert expected in err, (argv, err)


# ---- Precision: bf16 weights cast once, auto chosen from what the CPU offers ----------------------------------


def test_bf16_prediction_casts_the_weights_once_and_reports_it(review_texts, clf_dir, predict, capsys):
    """bf16 holds the weights in bf16 (no autocast in every batch), gives the fp32 labels on these texts with
    probabilities close to fp32's, and the script says which precision ran."""
    from minibert.predict import load_fine_tuned

    texts = [t[:600] for t in review_texts[:6]]
    model, tokenizer, _ = load_fine_tuned(clf_dir)
    fp32 = classify(model, tokenizer, texts, max_length=32, stride=8, device="cpu", precision="fp32")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    bf16 = classify(model, tokenizer, texts, max_length=32, stride=8, device="cpu", precision="bf16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}  # cast in place, once
    assert [r["label"] for r in bf16] == [r["label"] for r in fp32]
    assert max(abs(a["probability"] - b["probability"]) for a, b in zip(bf16, fp32)) < 0.05
    assert any(a["probability"] != b["probability"] for a, b in zip(bf16, fp32))  # it really ran in bf16
    for precision in ("bf16", "fp32"):
        code, lines, err = run_predict(predict, ["--model", str(clf_dir), "--device", "cpu", "--precision", precision, *texts[:2]], capsys)
        assert code == 0 and len(lines) == 2
        assert err.strip() == f"precision: {precision} (--precision {precision}" + (", weights cast to bf16 once)" if precision == "bf16" else ")")


def test_auto_precision_is_bf16_only_where_the_cpu_has_native_bf16_units(clf_dir, predict, capsys):
    from minibert.training import choose_precision, native_bf16_cpu

    cpu = torch.device("cpu")
    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert native_bf16_cpu() == native
    assert choose_precision(cpu, "auto", training=False, say=False) == ("bf16" if native else "fp32")
    assert choose_precision(cpu, "auto", training=True) == ("bf16" if native else "fp32")
    said = capsys.readouterr().err
    assert said.startswith("precision: ") and ("native bf16 units" in said) and ((" no native" in said) != native)
    code, lines, err = run_predict(predict, ["--model", str(clf_dir), "--device", "cpu", "a fine film ."], capsys)
    assert code == 0 and len(lines) == 1
    assert err.strip() == ("precision: bf16 (auto: this CPU has native bf16 units, weights cast to bf16 once)" if native else
                           "precision: fp32 (auto: this CPU has no native bf16 units (bf16 would be emulated, and slower))")


def test_the_cpu_batches_16_windows_unless_told_otherwise(clf_dir, vocab_path):
    """40 short texts are one window each: 3 forward passes at the CPU's default of 16, 1 when batch_size=64 is given."""
    model, tok = minibert.BertForSequenceClassification.from_pretrained(clf_dir), minibert.BertTokenizer(vocab_path)
    calls = []
    model.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    texts = [f"a film number {i} ." for i in range(40)]
    classify(model, tok, texts, truncation="head", max_length=32, device="cpu", precision="fp32")
    assert calls == [16, 16, 8]
    calls.clear()
    classify(model, tok, texts, truncation="head", max_length=32, device="cpu", precision="fp32", batch_size=64)
    assert calls == [40]


def test_predict_keeps_freed_memory_so_the_next_batch_reuses_it_without_page_faults():
    """keep_freed_memory (the scripts call it): a freed 24 MB tensor stays in the process for the next one (no page
    faults to map it again), a 64 MB one only with any_size=True (scripts/predict.py); by default glibc hands both
    back to the operating system at once."""
    import platform
    import subprocess
    import sys

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("keep_freed_memory is a glibc setting; elsewhere it returns False and changes nothing")
    probe = """if 1:
        import sys, torch
        from minibert.training import keep_freed_memory
        def resident_mb():  # anonymous memory only: code pages that the first tensor op loads do not count
            return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("RssAnon")) / 1024
        kept = keep_freed_memory(any_size=sys.argv[1] == "any") if sys.argv[1] != "default" else None
        torch.ones(1000).sum()  # the first tensor op's own set-up, before measuring
        start, kept_mb = resident_mb(), []
        for mb in (24, 64):  # below and above glibc's 32 MB cap
            t = torch.ones(mb * 2**18)  # written, so its pages are resident
            del t
            kept_mb.append(resident_mb() - start)  # what the process still holds after the free
        print(kept, *kept_mb)
    """
    out = {mode: [float(x) if x[0].isdigit() or x[0] == "-" else x for x in subprocess.run(
        [sys.executable, "-c", probe, mode], capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parents[1]).stdout.split()] for mode in ("keep", "any", "default")}
    assert out["keep"][0] == "True" and 20 < out["keep"][1] and out["keep"][2] < 30  # 24 MB kept, 64 MB handed back
    assert out["any"][0] == "True" and out["any"][2] > 60  # every size kept (predict.py)
    assert out["default"][1] < 4 and out["default"][2] < 4  # by default both go back to the operating system


# ---- Issue 17: users' inputs, read as written ---------------------------------------------------------------


def test_predict_honours_a_recorded_stride_that_is_not_the_default(review_texts, clf_dir, vocab_path, tmp_path, predict, capsys):
    strided = save_classifier(tmp_path, vocab_path, settings=CHUNKS_32 | {"stride": 3})  # the default would be 32 // 4 = 8
    model, tok = minibert.BertForSequenceClassification.from_pretrained(strided), minibert.BertTokenizer(vocab_path)
    texts = review_texts[20:23]
    stride3, stride8 = ([r["probabilities"]["pos"] for r in classify(model, tok, texts, truncation="chunks", max_length=32,
                                                                      stride=s, device="cpu")] for s in (3, 8))
    assert stride3 != pytest.approx(stride8, abs=1e-4)
    code, lines, _ = run_predict(predict, ["--model", str(strided), "--device", "cpu", "--format", "jsonl", *texts], capsys)
    assert code == 0 and [json.loads(line)["probabilities"]["pos"] for line in lines] == pytest.approx(stride3, abs=1e-6)


def test_lines_end_only_at_newlines_so_form_feeds_and_unicode_separators_stay_inside_a_text(clf_dir, tmp_path, predict, capsys):
    lines = tmp_path / "three.txt"
    lines.write_text("a fine film \f with a twist .\r\na dull film \x85 of two hours .\nit was a film \u2028 at most .\n", newline="")
    args = ["--model", str(clf_dir), "--device", "cpu", "--format", "jsonl"]
    code, out, _ = run_predict(predict, [*args, "--lines", str(lines)], capsys)
    assert code == 0 and [json.loads(line)["source"] for line in out] == [f"{lines}:{n}" for n in (1, 2, 3)]
    texts = ["a fine film \f with a twist .", "a dull film \x85 of two hours .", "it was a film \u2028 at most ."]
    code, direct, _ = run_predict(predict, [*args, *texts], capsys)
    assert [json.loads(line)["probabilities"] for line in out] == [json.loads(line)["probabilities"] for line in direct]


def test_finite_weights_whose_logits_overflow_are_refused_not_printed_as_nan(vocab_path, tmp_path, predict, capsys):
    from safetensors.torch import load_file, save_file

    huge = save_classifier(tmp_path, vocab_path, settings=CHUNKS_32)
    weights = load_file(huge / "model.safetensors")
    # every pooled feature tanh(5) ~ 1, so the logits are 32 x 3e38 = inf and -inf (not NaN: no inf - inf inside)
    weights["bert.pooler.dense.weight"] = torch.zeros_like(weights["bert.pooler.dense.weight"])
    weights["bert.pooler.dense.bias"] = torch.full_like(weights["bert.pooler.dense.bias"], 5.0)
    weights["classifier.weight"] = torch.full_like(weights["classifier.weight"], 3e38)  # finite, but their sum overflows
    weights["classifier.weight"][1] *= -1
    save_file(weights, huge / "model.safetensors")
    model, tok, _ = minibert.predict.load_fine_tuned(huge)  # every weight is finite: loading accepts it
    with pytest.raises(ValueError, match="not finite"):
        classify(model, tok, ["a fine film ."], device="cpu")
    for fmt in ("text", "jsonl"):
        code, lines, err = run_predict(predict, ["--model", str(huge), "--device", "cpu", "--format", fmt, "a fine film ."], capsys)
        said = [line for line in err.strip().splitlines() if not line.startswith("precision: ")]  # then one error line
        assert code == 2 and lines == [] and len(said) == 1, err
        assert "outputs for text 1 are not finite" in err


def test_input_paths_and_options_that_cannot_work_are_one_line_naming_the_flag(clf_dir, vocab_path, tmp_path, predict, capsys):
    loop = tmp_path / "loop.txt"
    loop.symlink_to(loop)
    (tmp_path / "folder").mkdir()
    untrained = save_classifier(tmp_path / "untrained", vocab_path, settings=CHUNKS_32 | {"steps": 0})
    trained = save_classifier(tmp_path / "trained", vocab_path, settings=CHUNKS_32 | {"steps": 1})
    lines = tmp_path / "lines.txt"
    lines.write_text("a fine film .\n")
    m = ["--model", str(clf_dir), "--device", "cpu"]
    cases = [
        ([*m, "--files", str(tmp_path / "missing.txt")], f"--files {tmp_path / 'missing.txt'}: no such file"),
        ([*m, "--files", str(loop)], f"--files {loop}: cannot be read (too many levels of symbolic links)"),
        ([*m, "--files", str(tmp_path / "folder")], "is a folder"),
        ([*m, "--lines", str(tmp_path / "missing.txt")], f"--lines {tmp_path / 'missing.txt'}: no such file"),
        ([*m, "--lines", str(lines), "--pair", "a second text ."], "--pair goes with texts on the command line, not with --lines"),
        ([*m, "--max-length", "256", "a fine film ."], f"--max-length 256 is longer than the 128 positions of --model {clf_dir}"),
        (["--model", str(untrained), "--device", "cpu", "a fine film ."], "saved before any training step"),
    ]
    for argv, expected in cases:
        code, out, err = run_predict(predict, argv, capsys)
        assert code == 2 and out == [], (argv, err)
        assert len(err.strip().splitlines()) == 1 and "Errno" not in err and expected in err, (argv, err)
    code, out, _ = run_predict(predict, ["--model", str(trained), "--device", "cpu", "a fine film ."], capsys)
    assert code == 0 and len(out) == 1
