"""The paths a user hits around a fine-tuning run, tried as a user would, through scripts/finetune.py: a folder
that holds an earlier run, a folder that cannot be written, a disk that fills up, SIGTERM, a corpus that is not
installed, bad arguments, a checkpoint with NaN weights. Every expected failure is one line on stderr and exit
code 2, found before the model is loaded where it can be."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_script
import torch

import minibert

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def finetune_script():
    return load_script("finetune")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, vocab_path) -> Path:
    """A small randomly initialised BERT (1M parameters) with the real bert-base-uncased vocabulary."""
    torch.manual_seed(0)
    cfg = minibert.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                              max_position_embeddings=128)
    path = tmp_path_factory.mktemp("tiny")
    minibert.BertModel(cfg).save_pretrained(path, tokenizer=minibert.BertTokenizer(vocab_path))
    return path


def options(model: Path, out: Path, *extra: str) -> list[str]:
    return ["--model", str(model), "--output-dir", str(out), "--truncation", "head", "--max-length", "64",
            "--batch-size", "4", "--epochs", "1", "--limit-train", "8", "--limit-test", "4", "--device", "cpu",
            "--no-progress", "--no-plots", *extra]


def script_env(**changes) -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), **changes)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# ---- Earlier runs, --overwrite, the umask, what a run says at the end ----------------------------------


def test_an_earlier_run_is_refused_and_overwrite_replaces_only_its_files(finetune_script, tiny_dir, tmp_path, movie_reviews, capsys):
    out = tmp_path / "run"
    old_umask = os.umask(0o027)
    try:
        assert finetune_script.main(options(tiny_dir, out)) == 0
    finally:
        os.umask(old_umask)
    # the files follow the umask (0o666 & ~0o027 = 0o640), not mkstemp's 0o600
    for name in ("checkpoint.pt", "metrics.json", "summary.json", "model/model.safetensors", "model/config.json"):
        assert (out / name).stat().st_mode & 0o777 == 0o640, name
    said = capsys.readouterr().out
    assert f"outputs in {out}/: checkpoint.pt, metrics.json, model/, summary.json" in said  # where everything went

    (out / "notes.txt").write_text("the user's own file")
    (out / ".checkpoint.pt.x8k2.tmp").write_bytes(b"half a checkpoint, left by a killed run")
    before = (out / "metrics.json").read_bytes()
    assert finetune_script.main(options(tiny_dir, out, "--lr", "2e-4")) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
    assert "holds an earlier run" in line and "--resume" in line and "--overwrite" in line
    assert (out / "metrics.json").read_bytes() == before  # nothing was touched

    assert finetune_script.main(options(tiny_dir, out, "--lr", "2e-4", "--overwrite")) == 0
    assert json.loads((out / "metrics.json").read_text())["args"]["lr"] == 2e-4
    assert (out / "notes.txt").read_text() == "the user's own file"  # only the run's own files are replaced
    assert not list(out.glob(".*.tmp"))  # the killed run's temporary file is gone
    assert finetune_script.main(options(tiny_dir, out, "--resume", "--overwrite")) == 2


# ---- Writing: checked before the work, failures keep the last checkpoint ----------------------------


def test_an_unwritable_output_folder_is_found_before_the_model_is_loaded(finetune_script, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    # the model does not exist either: the folder is checked first, so that is the error reported
    assert finetune_script.main(options(tmp_path / "no-such-model", blocker / "run")) == 2
    err = capsys.readouterr().err
    assert error_lines(err) == [err.strip()] and "cannot write to --output-dir" in err


def limit_file_size(max_bytes: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an over-limit write then fails with EFBIG, as a full disk fails with ENOSPC
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
    return apply


def test_a_failed_write_is_one_line_and_the_last_checkpoint_stays_intact(tiny_dir, tmp_path, movie_reviews):
    out = tmp_path / "run"
    first = subprocess.run([sys.executable, "scripts/finetune.py", *options(tiny_dir, out, "--epochs", "2", "--stop-after-steps", "2")],
                           cwd=ROOT, env=script_env(), capture_output=True, text=True, timeout=600)
    assert first.returncode == 130, first.stderr[-2000:]  # stopped like Ctrl-C, checkpoint saved
    saved = (out / "checkpoint.pt").read_bytes()
    # resume with a file-size limit below the checkpoint's size: the next checkpoint cannot be written
    second = subprocess.run([sys.executable, "scripts/finetune.py", *options(tiny_dir, out, "--epochs", "2", "--resume", "--no-save-model")],
                            cwd=ROOT, env=script_env(), capture_output=True, text=True, timeout=600,
                            preexec_fn=limit_file_size(len(saved) // 2))
    assert second.returncode == 2, second.stderr[-2000:]
    assert "Traceback" not in second.stderr
    (line,) = error_lines(second.stderr)
    assert "could not write" in line and "checkpoint.pt" in line and "--resume" in line
    assert (out / "checkpoint.pt").read_bytes() == saved  # the last good checkpoint, untouched
    assert not list(out.glob(".*.tmp"))  # and no half-written file beside it
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["batch"] == 2


# ---- SIGTERM -----------------------------------------------------------------------------------------


def test_sigterm_finishes_the_step_saves_and_resumes(tiny_dir, tmp_path, movie_reviews):
    out = tmp_path / "run"
    command = [sys.executable, "scripts/finetune.py",
               *options(tiny_dir, out, "--limit-train", "400", "--batch-size", "2", "--log-every", "1")]
    proc = subprocess.Popen(command, cwd=ROOT, env=script_env(), stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    for line in proc.stderr:  # said once the signal handlers are in place, right before the first step
        if "Ctrl-C or SIGTERM saves a checkpoint" in line:
            break
    proc.send_signal(signal.SIGTERM)  # what `timeout`, `kill` and cluster schedulers send
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 143, stderr[-2000:]  # 128 + SIGTERM, as a shell reports it
    assert "SIGTERM: finishing this step" in stderr and "Traceback" not in stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["stopped_by"] == "SIGTERM"
    assert 1 <= metrics["steps"] < 200
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["batch"] == metrics["steps"] and len(state["history"]["loss"]) == metrics["steps"]
    resumed = subprocess.run([*command, "--resume"], cwd=ROOT, env=script_env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["steps"] == 200
    assert metrics["history"]["step"] == list(range(1, 201))


# ---- Arguments and inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad, flag", [
    (["--limit-train", "0"], "--limit-train must be >= 1"),
    (["--limit-test", "0"], "--limit-test must be >= 1"),
    (["--max-grad-norm=-1"], "--max-grad-norm must be >= 0"),
    (["--weight-decay", "-0.01"], "--weight-decay must be >= 0"),
    (["--device", "tpu"], "--device 'tpu'"),
    (["--val-size", "1600"], "--val-size 1600 leaves no training reviews"),
])
def test_bad_arguments_are_one_line_naming_the_flag(finetune_script, tmp_path, capsys, bad, flag):
    # a model that does not exist: the arguments are checked before anything is loaded
    assert finetune_script.main(options(tmp_path / "no-such-model", tmp_path / "run", *bad)) == 2
    err = capsys.readouterr().err
    assert error_lines(err) == [err.strip()] and flag in err
    assert not (tmp_path / "run").exists()


def test_limit_train_1_trains_on_one_review(finetune_script, tiny_dir, tmp_path, movie_reviews):
    assert finetune_script.main(options(tiny_dir, tmp_path, "--limit-train", "1", "--limit-test", "1")) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["train_examples"] == 1 and summary["test_reviews"] == 1


def test_a_missing_corpus_is_one_line_with_the_fix_and_no_nltk_noise(tiny_dir, tmp_path):
    # no corpus in NLTK_DATA or HOME, and the download fails at once (a proxy that refuses connections)
    env = script_env(NLTK_DATA=str(tmp_path / "empty"), HOME=str(tmp_path), https_proxy="http://127.0.0.1:9",
                     http_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")
    r = subprocess.run([sys.executable, "scripts/finetune.py", *options(tiny_dir, tmp_path / "run")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == error_lines(r.stderr)  # nothing else: no [nltk_data] lines, no traceback
    (line,) = error_lines(r.stderr)
    assert "movie_reviews corpus is not installed" in line and "NLTK_DATA" in line and "nltk.downloader" in line


def test_nan_weights_stop_at_step_1_without_blaming_the_learning_rate(finetune_script, tiny_dir, tmp_path, movie_reviews, capsys):
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "nan-model"
    broken.mkdir()
    for f in tiny_dir.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    weights = load_file(broken / "model.safetensors")
    key = next(k for k in weights if k.endswith("attention.output.dense.weight"))
    # finite, so the loader accepts the file; the first forward pass overflows to inf and the loss is NaN
    weights[key].fill_(3e38)
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})

    assert finetune_script.main(options(broken, tmp_path / "run")) == 2
    err = capsys.readouterr().err
    (line,) = error_lines(err)
    assert "Traceback" not in err
    assert "--lr" not in line and "fp16" not in line  # the learning rate is not the cause before any update
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    assert "checkpoint" not in line or "non-finite" in line  # never points at a checkpoint that was not saved

    # NaN in the file itself is refused at load, before any training, naming the tensor
    weights[key][0, 0] = float("nan")
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    assert finetune_script.main(options(broken, tmp_path / "run")) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert "model.safetensors" in line and key.replace("bert.", "") in line and "checkpoint.pt" not in line
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_sigterm_to_torchrun_stops_every_rank_at_the_same_step(tiny_dir, tmp_path, movie_reviews):
    """torchrun forwards SIGTERM to its workers: both ranks agree on the step to stop at (no rank is left
    waiting in an all-reduce), rank 0 saves, and a plain --resume finishes the run."""
    out = tmp_path / "run"
    common = options(tiny_dir, out, "--limit-train", "400", "--batch-size", "4", "--log-every", "2")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    proc = subprocess.Popen([*torchrun, "scripts/finetune.py", *common], cwd=ROOT, env=script_env(),
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "Ctrl-C or SIGTERM saves a checkpoint" in line:
            break
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=600)
    assert stderr.count("SIGTERM: finishing this step") == 2, stderr[-3000:]  # each rank got it
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["stopped_by"] == "SIGTERM", stderr[-3000:]
    assert 1 <= metrics["steps"] < 100 and metrics["steps"] % 2 == 0  # the ranks agree at log steps
    assert torch.load(out / "checkpoint.pt", weights_only=True)["batch"] == metrics["steps"]
    resumed = subprocess.run([sys.executable, "scripts/finetune.py", *common, "--resume"], cwd=ROOT, env=script_env(),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((out / "metrics.json").read_text())["steps"] == 100
