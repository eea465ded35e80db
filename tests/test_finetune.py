"""Fine-tuning on CPU: the hand-written AdamW against torch's, the schedule, the split, truncation, batching,
learning on real reviews, exact resume after an interruption, and clear errors."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import minibert
from minibert import data as D
from minibert.finetune import FinetuneArgs, prepare_data, run, train_one
from minibert.predict import classify, predict_logits
from minibert.optim import AdamW, LinearWarmupDecay, clip_grad_norm, param_groups
from minibert.training import StopFlag, TrainingError

ROOT = Path(__file__).resolve().parents[1]


def tiny_bert(path: Path, vocab_path: Path, dropout: float = 0.1) -> Path:
    """A small randomly initialised BERT with the real bert-base-uncased vocabulary, saved in HF layout."""
    torch.manual_seed(0)
    cfg = minibert.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                              max_position_embeddings=128, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    minibert.BertModel(cfg).save_pretrained(path, tokenizer=minibert.BertTokenizer(vocab_path))
    return path


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, vocab_path):
    return tiny_bert(tmp_path_factory.mktemp("tiny"), vocab_path)


@pytest.fixture(scope="module")
def tiny_dir_no_dropout(tmp_path_factory, vocab_path):
    return tiny_bert(tmp_path_factory.mktemp("tiny0"), vocab_path, dropout=0.0)


@pytest.fixture(scope="module")
def reviews(movie_reviews):
    return D.load_movie_reviews(download=False)


def quick(model_dir, out, **kw) -> FinetuneArgs:
    base = dict(model=str(model_dir), output_dir=str(out), truncation="head", max_length=64, batch_size=8, epochs=2,
                lr=1e-3, limit_train=24, limit_test=8, progress=False, plots=False, device="cpu")
    return FinetuneArgs(**(base | kw))


# ---- AdamW, schedule, clipping -----------------------------------------------------------------------


def test_adamw_matches_torch_adamw_over_100_steps_on_a_real_model(review_texts, vocab_path):
    cfg = minibert.BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    ours = minibert.BertForSequenceClassification(cfg)
    theirs = minibert.BertForSequenceClassification(cfg)
    theirs.load_state_dict(ours.state_dict())
    start = {k: v.clone() for k, v in ours.state_dict().items()}
    tok = minibert.BertTokenizer(vocab_path)
    batch = tok(review_texts[:4], truncation=True, max_length=32, padding=True, return_tensors="pt")
    labels = torch.tensor([0, 1, 0, 1])
    opt_ours = AdamW(param_groups(ours, 0.01), lr=1e-3, betas=(0.9, 0.98), eps=1e-6)
    opt_torch = torch.optim.AdamW(param_groups(theirs, 0.01), lr=1e-3, betas=(0.9, 0.98), eps=1e-6, foreach=True)
    sched = LinearWarmupDecay(opt_ours, warmup_steps=10, total_steps=100)
    for step in range(100):
        for group in opt_torch.param_groups:
            group["lr"] = sched.lr  # the same learning rate every step, warmup and decay included
        for model, opt in ((ours, opt_ours), (theirs, opt_torch)):
            model(**batch, labels=labels).loss.backward()
            clip_grad_norm(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
        sched.step()
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, msg=lambda s, name=name: f"{name}: {s}")
    # every tensor that received a gradient moved (the padding row of the embeddings did not)
    moved = [k for k, v in ours.state_dict().items() if not torch.equal(v, start[k])]
    assert len(moved) == len(start)


def test_compiled_adamw_update_matches_the_plain_one():
    """The fast path: torch.compile fuses the update; it must compute the same step."""
    torch.manual_seed(0)
    cfg = minibert.BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # the same gradients in both
    plain, fused = minibert.BertForSequenceClassification(cfg), minibert.BertForSequenceClassification(cfg)
    fused.load_state_dict(plain.state_dict())
    opt_plain = AdamW(param_groups(plain, 0.01), lr=1e-2)
    opt_fused = AdamW(param_groups(fused, 0.01), lr=1e-2, compile=True)
    ids, labels = torch.randint(0, 100, (4, 12)), torch.tensor([0, 1, 1, 0])
    for step in range(4):
        for group in opt_plain.param_groups + opt_fused.param_groups:
            group["lr"] = 1e-2 / (step + 1)  # a new lr every step must not change the result (nor recompile)
        for model, opt in ((plain, opt_plain), (fused, opt_fused)):
            model(ids, labels=labels).loss.backward()
            opt.step()
            opt.zero_grad()
    for a, b in zip(plain.parameters(), fused.parameters()):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)  # float32 rounding of a differently fused sum


def test_adamw_state_dict_round_trip_continues_identically():
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(5, 3))
    opt = AdamW([p], lr=0.1)
    for _ in range(3):
        p.grad = torch.randn(5, 3)
        opt.step()
    q = torch.nn.Parameter(p.detach().clone())
    opt2 = AdamW([q], lr=0.1)
    opt2.load_state_dict(opt.state_dict())
    g = torch.randn(5, 3)
    p.grad, q.grad = g, g.clone()
    opt.step(), opt2.step()
    assert torch.equal(p, q)


def test_no_weight_decay_on_biases_and_layernorm():
    model = minibert.BertForSequenceClassification(minibert.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64))
    decay, no_decay = param_groups(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[id(p)].endswith("weight") and p.ndim == 2 for p in decay["params"])
    assert {names[id(p)] for p in no_decay["params"]} >= {"bert.embeddings.norm.weight", "bert.encoder.layers.0.attn.qkv.bias", "classifier.bias"}
    assert no_decay["weight_decay"] == 0.0 and decay["weight_decay"] == 0.01


def test_schedule_warms_up_then_decays_linearly_to_zero():
    opt = AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = LinearWarmupDecay(opt, warmup_steps=4, total_steps=12)
    lrs = []
    for _ in range(12):
        lrs.append(sched.lr)
        sched.step()
    assert lrs[:4] == pytest.approx([1 / 5, 2 / 5, 3 / 5, 4 / 5])  # never 0 on the first step
    assert lrs[4] == pytest.approx(1.0)  # the peak right after warmup
    assert lrs[4:] == pytest.approx([(12 - s) / 8 for s in range(4, 12)])
    assert sched.lr == 0.0
    with pytest.raises(ValueError, match="warmup_steps"):
        LinearWarmupDecay(opt, warmup_steps=13, total_steps=12)


def test_clip_grad_norm_matches_torch():
    torch.manual_seed(0)
    a = [torch.nn.Parameter(torch.randn(4, 4)) for _ in range(3)]
    b = [torch.nn.Parameter(x.detach().clone()) for x in a]
    for x, y in zip(a, b):
        x.grad = torch.randn(4, 4) * 3
        y.grad = x.grad.clone()
    n1 = clip_grad_norm(a, 1.0)
    n2 = torch.nn.utils.clip_grad_norm_(b, 1.0)
    torch.testing.assert_close(n1, n2)
    for x, y in zip(a, b):
        torch.testing.assert_close(x.grad, y.grad)
    assert math.isclose(torch.linalg.vector_norm(torch.stack([x.grad.norm() for x in a])).item(), 1.0, rel_tol=1e-5)


# ---- Data --------------------------------------------------------------------------------------------


def test_fixed_split_counts_and_balance(reviews):
    train, test = D.split(reviews)
    assert len(train) == 1600 and len(test) == 400
    assert sum(r.label for r in train) == 800 and sum(r.label for r in test) == 200
    assert {D.file_number(r.fileid) for r in train} == set(range(800))
    assert {D.file_number(r.fileid) for r in test} == set(range(800, 1000))
    assert not {r.fileid for r in train} & {r.fileid for r in test}
    assert all(r.fileid.startswith(("neg/", "pos/")) and r.label == (r.fileid[:3] == "pos") for r in reviews)


def test_truncation_strategies_on_a_real_review(reviews, vocab_path):
    tok = minibert.BertTokenizer(vocab_path)
    review = max(reviews[:50], key=lambda r: len(r.text))
    ids = tok.encode(review.text, add_special_tokens=False)
    assert len(ids) > 1100
    cls, sep = tok.cls_token_id, tok.sep_token_id

    def cut(strategy, **kw):
        return D.encode_reviews([review], tok, strategy, **kw)

    (head,) = cut("head")
    assert head.input_ids == [cls, *ids[:510], sep]
    (tail,) = cut("tail")
    assert tail.input_ids == [cls, *ids[-510:], sep]
    (ht,) = cut("head+tail", head=128)
    assert ht.input_ids == [cls, *ids[:128], *ids[-382:], sep]
    windows = cut("chunks", max_length=512, stride=128)
    assert len(windows) == math.ceil((len(ids) - 510) / 382) + 1
    assert all(len(w.input_ids) == 512 and w.input_ids[0] == cls and w.input_ids[-1] == sep for w in windows)
    assert windows[0].input_ids[1:-1] == ids[:510] and windows[-1].input_ids[1:-1] == ids[-510:]
    assert windows[1].input_ids[1:129] == windows[0].input_ids[-129:-1]  # consecutive windows share `stride` tokens
    covered = set()
    step = 510 - 128
    for i, _ in enumerate(windows[:-1]):
        covered |= set(range(i * step, i * step + 510))
    covered |= set(range(len(ids) - 510, len(ids)))
    assert covered == set(range(len(ids)))  # every token is read
    short = D.Review("pos/cv000_1.txt", "a fine film .", 1)
    for strategy in D.STRATEGIES:
        (e,) = D.encode_reviews([short], tok, strategy)
        assert tok.decode(e.input_ids) == "[CLS] a fine film. [SEP]"
    with pytest.raises(ValueError, match="truncation strategy"):
        D.encode_reviews([short], tok, "middle")


def test_batch_order_is_deterministic_complete_and_groups_lengths(reviews, vocab_path):
    tok = minibert.BertTokenizer(vocab_path)
    examples = D.encode_reviews(reviews[:200], tok, "head", max_length=128)
    examples += D.encode_reviews([D.Review("neg/cv001_1.txt", "short " * n, 0) for n in range(1, 60)], tok, "head", max_length=128)
    a = D.batch_order(examples, 16, shuffle=True, seed=3, epoch=1)
    assert a == D.batch_order(examples, 16, shuffle=True, seed=3, epoch=1)
    assert a != D.batch_order(examples, 16, shuffle=True, seed=3, epoch=2)
    assert sorted(i for b in a for i in b) == list(range(len(examples)))

    def padding(batches):
        return sum(max(len(examples[i].input_ids) for i in b) * len(b) - sum(len(examples[i].input_ids) for i in b) for b in batches)

    ungrouped = D.batch_order(examples, 16, shuffle=True, seed=3, epoch=1, group_by_length=False)
    assert padding(a) < padding(ungrouped) / 2


def test_collate_pads_and_drops_an_all_ones_mask():
    ex = [D.Example([101, 5, 6, 102], 1, 0), D.Example([101, 7, 102], 0, 1)]
    b = D.collate(ex)
    assert b["input_ids"].tolist() == [[101, 5, 6, 102], [101, 7, 102, 0]]
    assert b["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert b["labels"].tolist() == [1, 0]
    assert D.collate(ex[:1])["attention_mask"] is None


def test_missing_corpus_gives_a_clear_error(tmp_path):
    code = "from minibert.data import load_movie_reviews; load_movie_reviews(download=False)"
    env = dict(os.environ, NLTK_DATA=str(tmp_path), HOME=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "movie_reviews corpus is not installed" in r.stderr and "NLTK_DATA" in r.stderr


# ---- Training ------------------------------------------------------------------------------------------


def test_a_model_learns_real_reviews_and_can_overfit_32_of_them(minilm_dir, reviews, tmp_path):
    args = FinetuneArgs(model=str(minilm_dir), output_dir=str(tmp_path), truncation="head", max_length=96, batch_size=8,
                        epochs=8, lr=1e-4, warmup=0.0, limit_train=32, limit_test=8, progress=False, plots=True, device="cpu")
    tok = minibert.BertTokenizer.from_pretrained(minilm_dir)
    data = prepare_data(args, tok, reviews)
    metrics = train_one(args, data, tok, seed=0, out=tmp_path)
    losses = metrics["history"]["loss"]
    assert sum(losses[-4:]) / 4 < 0.5 * sum(losses[:4]) / 4  # the loss falls clearly
    model = minibert.BertForSequenceClassification.from_pretrained(tmp_path / "model")
    logits = predict_logits(model, data.train, 16, torch.device("cpu"), "fp32")
    labels = torch.tensor([e.label for e in data.train])
    assert (logits.argmax(-1) == labels).all()  # 32 of 32 training reviews
    for name in ("metrics.json", "curves.png", "confusion.png", "checkpoint.pt", "model/config.json", "model/vocab.txt"):
        assert (tmp_path / name).is_file(), name
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["selected"]["epoch"] == 8 and len(saved["history"]["epochs"]) == 8
    assert sum(map(sum, saved["selected"]["confusion"])) == 8
    # the saved classifier answers through predict's code path
    out = classify(model, tok, [r.text for r in reviews[:2]], truncation="head", max_length=96, device="cpu")
    assert [set(o["probabilities"]) for o in out] == [{"neg", "pos"}] * 2


def test_resume_after_an_interruption_is_bit_identical(tiny_dir, reviews, tmp_path):
    full = run(quick(tiny_dir, tmp_path / "full", epochs=3), reviews)
    interrupted = run(quick(tiny_dir, tmp_path / "cut", epochs=3, stop_after_steps=5), reviews)  # mid-epoch 2
    assert interrupted["status"] == "interrupted"
    resumed = run(quick(tiny_dir, tmp_path / "cut", epochs=3, resume=True), reviews)
    assert resumed["status"] == "completed" and full["status"] == "completed"
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["history"]["loss"] == b["history"]["loss"]
    assert full["accuracy"] == resumed["accuracy"]


def test_resume_refuses_other_settings_and_corrupted_checkpoints(tiny_dir, reviews, tmp_path):
    run(quick(tiny_dir, tmp_path, epochs=1, limit_train=8), reviews)
    with pytest.raises(TrainingError, match="different settings.*lr"):
        run(quick(tiny_dir, tmp_path, epochs=1, limit_train=8, lr=5e-4, resume=True), reviews)
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="corrupted or truncated"):
        run(quick(tiny_dir, tmp_path, epochs=1, limit_train=8, resume=True), reviews)


def test_a_non_finite_loss_stops_the_run_with_a_message(tiny_dir, reviews, tmp_path):
    with pytest.raises(TrainingError, match="loss became (nan|inf)"):
        run(quick(tiny_dir, tmp_path, lr=1e30, max_grad_norm=0.0, epochs=2, log_every=1), reviews)


def test_ctrl_c_sets_the_stop_flag_instead_of_killing():
    # a process started in the background inherits SIGINT ignored: start from Python's usual handler
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with StopFlag() as stop:
            os.kill(os.getpid(), signal.SIGINT)
            assert stop.set
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, outer)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_aborts_at_once(signum):
    """The first Ctrl-C or SIGTERM asks for a clean stop; a second one, from a user who will not wait for the
    step to finish, raises at once."""
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with StopFlag() as stop:
            os.kill(os.getpid(), signum)
            assert stop.set and stop.reason == signal.Signals(signum).name
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signum)
    finally:
        signal.signal(signal.SIGINT, outer)


def test_two_gloo_processes_reproduce_the_single_process_loss_trajectory(tiny_dir_no_dropout, tmp_path):
    # dropout off, a global batch of 8 split 4 + 4: DDP averages gradients, so the steps are the same
    common = ["--model", str(tiny_dir_no_dropout), "--truncation", "head", "--max-length", "64", "--batch-size", "8",
              "--epochs", "2", "--lr", "1e-3", "--limit-train", "32", "--limit-test", "8", "--device", "cpu",
              "--no-progress", "--no-plots", "--log-every", "1", "--precision", "fp32"]  # bf16 rounds 8 and 4 + 4 apart
    env = dict(os.environ, OMP_NUM_THREADS="1")
    single = subprocess.run([sys.executable, "scripts/finetune.py", *common, "--output-dir", str(tmp_path / "one")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-2000:]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    double = subprocess.run([*torchrun, "scripts/finetune.py", *common, "--output-dir", str(tmp_path / "two")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert double.returncode == 0, double.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())["history"]["loss"]
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())["history"]["loss"]
    assert len(one) == len(two) == 8
    assert one[0] != one[-1]
    torch.testing.assert_close(torch.tensor(two), torch.tensor(one), atol=1e-5, rtol=1e-5)


# ---- The protocol: Pang & Lee's ten folds, choosing on held-out training reviews, layer-wise lr decay ----


def test_pang_lee_folds_follow_the_file_names(reviews):
    assert [D.fold_of(f"neg/cv{n:03d}_1.txt") for n in (0, 99, 100, 455, 899, 900, 999)] == [1, 1, 2, 5, 9, 10, 10]
    folds = D.pang_lee_folds(reviews)
    assert len(folds) == 10
    for k, fold in enumerate(folds, start=1):
        assert len(fold) == 200 and sum(r.label for r in fold) == 100
        assert {D.file_number(r.fileid) // 100 for r in fold} == {k - 1}
    assert sorted(r.fileid for fold in folds for r in fold) == sorted(r.fileid for r in reviews)
    train, test = D.cv_split(reviews, 3)
    assert [r.fileid for r in test] == [r.fileid for r in folds[2]]
    assert len(train) == 1800 and not {r.fileid for r in train} & {r.fileid for r in test}
    assert {r.fileid for r in D.split(reviews)[1]} == {r.fileid for r in folds[8] + folds[9]}  # the fixed test split
    with pytest.raises(ValueError, match="fold must be between 1 and 10"):
        D.cv_split(reviews, 11)


def test_validation_reviews_are_the_last_training_files_never_test_files(reviews, vocab_path):
    tok = minibert.BertTokenizer(vocab_path)
    args = FinetuneArgs(val_size=10, truncation="head", max_length=32, limit_test=2)
    for fold in (None, 10, 1):
        train_reviews, _ = D.split(reviews) if fold is None else D.cv_split(reviews, fold)
        data = prepare_data(args, tok, reviews, fold)
        assert data.n_val_docs == 10 and len(data.train) == len(train_reviews) - 10
        # the five highest-numbered training files of each class: cv795-cv799 (fixed split), cv895-cv899 (fold 10),
        # cv995-cv999 (fold 1)
        numbers = {None: range(795, 800), 10: range(895, 900), 1: range(995, 1000)}[fold]
        expected = [r for r in train_reviews if D.file_number(r.fileid) in numbers]
        assert len(expected) == 10
        assert [e.input_ids for e in data.val] == [e.input_ids for e in D.encode_reviews(expected, tok, "head", max_length=32)]
        assert not {tuple(e.input_ids) for e in data.val} & {tuple(e.input_ids) for e in data.train}


def test_choosing_on_val_never_evaluates_the_test_split(tiny_dir, reviews, tmp_path):
    """--no-test with --val-size: the recipe-selection mode. The test reviews are never scored; the epoch kept
    is the one with the best val accuracy. Layer-wise lr decay runs through the same loop."""
    summary = run(quick(tiny_dir, tmp_path, epochs=3, val_size=8, test=False, layer_decay=0.8, save_model=False), reviews)
    assert summary["status"] == "completed" and summary["test_reviews"] == 0
    assert summary["accuracy"] == [] and summary["accuracy_mean"] is None and len(summary["val_accuracy"]) == 1
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    epochs = metrics["history"]["epochs"]
    assert all("accuracy" not in e and "confusion" not in e and e["val"]["n"] == 8 for e in epochs)
    best = max(epochs, key=lambda e: e["val"]["accuracy"])  # the first of the best, as the loop keeps it
    assert metrics["selected"]["epoch"] == best["epoch"]
    assert metrics["args"]["layer_decay"] == 0.8
    with pytest.raises(ValueError, match="--no-test needs --val-size"):
        run(quick(tiny_dir, tmp_path / "x", test=False), reviews)


def test_cv_10_tests_each_fold_once_and_resumes_fold_by_fold(tiny_dir, reviews, tmp_path):
    """Two folds in a first sitting (--folds 1 2), the other eight with --resume: the finished folds are
    skipped (their files untouched), and the summary is the mean +- std over the ten folds."""
    settings = dict(cv=10, epochs=1, limit_train=4, limit_test=4, save_model=False)
    first = run(quick(tiny_dir, tmp_path, folds=[1, 2], **settings), reviews)
    assert first["status"] == "partial" and first["folds"] == [1, 2] and len(first["accuracy"]) == 2
    kept = {k: (tmp_path / f"fold{k}" / "metrics.json").read_bytes() for k in (1, 2)}
    summary = run(quick(tiny_dir, tmp_path, resume=True, **settings), reviews)
    assert summary["status"] == "completed" and summary["folds"] == list(range(1, 11))
    assert {k: (tmp_path / f"fold{k}" / "metrics.json").read_bytes() for k in (1, 2)} == kept  # skipped, not redone
    per_fold = [json.loads((tmp_path / f"fold{k}" / "metrics.json").read_text())["selected"]["accuracy"] for k in range(1, 11)]
    assert summary["accuracy"] == per_fold and summary["accuracy"][:2] == first["accuracy"]
    assert summary["accuracy_mean"] == pytest.approx(sum(per_fold) / 10)
    assert summary["accuracy_std"] == pytest.approx(torch.tensor(per_fold).std().item())
    assert json.loads((tmp_path / "summary.json").read_text())["folds"] == list(range(1, 11))
    with pytest.raises(ValueError, match="--cv must be 10"):
        run(quick(tiny_dir, tmp_path / "x", cv=5), reviews)


def test_a_resumed_cv_job_says_which_folds_are_done_and_which_are_missing(tiny_dir, reviews, tmp_path):
    """--folds 3 --resume after --folds 1: the summary holds folds 1 and 3, names the eight still to run, and is
    not "completed" (that takes all ten)."""
    settings = dict(cv=10, epochs=1, limit_train=4, limit_test=4, save_model=False)
    run(quick(tiny_dir, tmp_path, folds=[1], **settings), reviews)
    summary = run(quick(tiny_dir, tmp_path, folds=[3], resume=True, **settings), reviews)
    assert summary["status"] == "partial" and summary["stopped_by"] is None
    assert summary["folds"] == [1, 3] and summary["folds_missing"] == [2, 4, 5, 6, 7, 8, 9, 10]
    per_fold = [json.loads((tmp_path / f"fold{k}" / "metrics.json").read_text())["selected"]["accuracy"] for k in (1, 3)]
    assert summary["accuracy"] == per_fold
    assert json.loads((tmp_path / "summary.json").read_text())["folds_missing"] == summary["folds_missing"]


def test_resume_refuses_a_changed_test_size(tiny_dir, reviews, tmp_path):
    """--limit-test changes what is reported, so a resume (or a --cv job finished in sittings) must keep it."""
    run(quick(tiny_dir, tmp_path, epochs=1, limit_train=8, limit_test=4), reviews)
    with pytest.raises(TrainingError, match="different settings.*limit_test"):
        run(quick(tiny_dir, tmp_path, epochs=1, limit_train=8, limit_test=8, resume=True), reviews)


def test_layer_decay_scales_each_layers_learning_rate():
    cfg = minibert.BertConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64)
    model = minibert.BertForSequenceClassification(cfg)
    assert len(param_groups(model, 0.01)) == 2 and len(param_groups(model, 0.01, layer_decay=1.0)) == 2  # off by default
    groups = param_groups(model, 0.01, layer_decay=0.5)
    opt = AdamW(groups, lr=1e-3)
    lr_of = {id(p): (g["lr"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]}
    assert len(lr_of) == sum(1 for _ in model.parameters())  # every parameter in exactly one group
    expected = {"bert.embeddings": 0.125, "bert.encoder.layers.0": 0.25, "bert.encoder.layers.1": 0.5,
                "bert.encoder.layers.2": 1.0, "bert.pooler": 1.0, "classifier": 1.0}
    for name, p in model.named_parameters():
        scale = next(v for k, v in expected.items() if name.startswith(k + "."))
        lr, wd = lr_of[id(p)]
        assert lr == pytest.approx(1e-3 * scale), name
        assert wd == (0.01 if p.ndim >= 2 else 0.0), name
    sched = LinearWarmupDecay(opt, warmup_steps=2, total_steps=10)
    for _ in range(5):
        sched.step()
    assert sched.lr == pytest.approx(1e-3 * 5 / 8)  # groups[0] is the top: the logged lr is the full one
    assert [g["lr"] / sched.lr for g in opt.param_groups] == pytest.approx([g["lr_scale"] for g in groups])


def test_average_last_keeps_the_mean_of_the_last_epochs_weights(tiny_dir, reviews, tmp_path):
    """--average-last 2 over 3 epochs: model/ holds (weights after epoch 2 + weights after epoch 3) / 2, and
    that averaged model is the one evaluated and reported."""
    summary = run(quick(tiny_dir, tmp_path / "avg", epochs=3, average_last=2), reviews)
    selected = json.loads((tmp_path / "avg" / "metrics.json").read_text())["selected"]
    assert selected["averaged_epochs"] == [2, 3] and summary["accuracy"] == [selected["accuracy"]]
    after_3 = torch.load(tmp_path / "avg" / "checkpoint.pt", weights_only=True)["model"]
    steps_per_epoch = 24 // 8
    run(quick(tiny_dir, tmp_path / "two", epochs=3, average_last=2, stop_after_steps=2 * steps_per_epoch), reviews)
    after_2 = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)["model"]  # the same run, stopped after epoch 2
    averaged = minibert.BertForSequenceClassification.from_pretrained(tmp_path / "avg" / "model").state_dict()
    for name, w in averaged.items():
        torch.testing.assert_close(w, (after_2[name] + after_3[name]) / 2, msg=lambda s, name=name: f"{name}: {s}")
    assert not torch.equal(after_2["classifier.weight"], after_3["classifier.weight"])  # two different points
    with pytest.raises(ValueError, match="--average-last must be between 0"):
        run(quick(tiny_dir, tmp_path / "x", epochs=2, average_last=3), reviews)


def test_average_last_3_weights_three_epochs_equally(tiny_dir, reviews, tmp_path):
    """--average-last 3 of 3 epochs: model/ is (w1 + w2 + w3) / 3, each epoch's weights counted once."""
    run(quick(tiny_dir, tmp_path / "avg", epochs=3, average_last=3), reviews)
    after = [torch.load(tmp_path / "avg" / "checkpoint.pt", weights_only=True)["model"]]
    for k in (1, 2):  # the same run, stopped after epoch k
        run(quick(tiny_dir, tmp_path / f"e{k}", epochs=3, average_last=3, stop_after_steps=k * 3, save_model=False), reviews)
        after.insert(k - 1, torch.load(tmp_path / f"e{k}" / "checkpoint.pt", weights_only=True)["model"])
    averaged = minibert.BertForSequenceClassification.from_pretrained(tmp_path / "avg" / "model").state_dict()
    for name, w in averaged.items():
        torch.testing.assert_close(w, (after[0][name] + after[1][name] + after[2][name]) / 3, msg=lambda s, name=name: f"{name}: {s}")
    assert json.loads((tmp_path / "avg" / "metrics.json").read_text())["selected"]["averaged_epochs"] == [1, 2, 3]


@pytest.mark.parametrize("stop_after", [4, 7])  # inside epoch 2 (nothing averaged yet), inside epoch 3 (epoch 2 averaged)
def test_resuming_inside_the_averaging_window_gives_the_uninterrupted_model(tiny_dir, reviews, tmp_path, stop_after):
    run(quick(tiny_dir, tmp_path / "full", epochs=3, average_last=2), reviews)
    run(quick(tiny_dir, tmp_path / "cut", epochs=3, average_last=2, stop_after_steps=stop_after), reviews)
    resumed = run(quick(tiny_dir, tmp_path / "cut", epochs=3, average_last=2, resume=True), reviews)
    assert resumed["status"] == "completed"
    full = minibert.BertForSequenceClassification.from_pretrained(tmp_path / "full" / "model").state_dict()
    cut = minibert.BertForSequenceClassification.from_pretrained(tmp_path / "cut" / "model").state_dict()
    assert all(torch.equal(full[k], cut[k]) for k in full)


# ---- The CPU recipe: scripts/finetune.py --preset cpu ----------------------------------------------------


def preset_args(*argv: str) -> FinetuneArgs:
    """The FinetuneArgs scripts/finetune.py builds from argv, without running anything."""
    from conftest import load_script
    from minibert.cli import parse_with_presets
    from minibert.finetune import PRESETS

    options = vars(parse_with_presets(load_script("finetune").parser(), PRESETS, list(argv)))
    options.pop("preset")
    return FinetuneArgs(**options)


def test_cpu_preset_is_the_chosen_recipe_and_explicit_options_override_it():
    cpu = preset_args("--preset", "cpu")
    recipe = dict(model="sentence-transformers/all-MiniLM-L6-v2", truncation="head+tail", max_length=256, head=128,
                  epochs=2, batch_size=16, lr=1e-4, output_dir="runs/finetune-cpu")
    assert {k: getattr(cpu, k) for k in recipe} == recipe
    cpu.validate()  # head fits max_length
    plain = preset_args()
    assert plain.epochs == FinetuneArgs().epochs and plain.truncation == "chunks"  # no preset: the usual defaults
    assert [f for f in vars(plain) if f not in recipe and getattr(cpu, f) != getattr(plain, f)] == []  # nothing else changes
    # options given beside it win, before or after --preset; the rest of the preset stays
    for argv in (["--preset", "cpu", "--epochs", "1", "--model", "my/bert"], ["--epochs", "1", "--model", "my/bert", "--preset", "cpu"]):
        mine = preset_args(*argv)
        assert {k: getattr(mine, k) for k in recipe} == recipe | {"epochs": 1, "model": "my/bert"}
