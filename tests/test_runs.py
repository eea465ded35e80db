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


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_overwrite_deletes_only_the_files_the_run_recorded_writing(finetune_script, tiny_dir, tmp_path, movie_reviews, capsys):
    """A user's files whose names look like a run's (fold1_notes.txt, seed2024.csv, model/mine.bin) survive
    --overwrite, at every depth; the earlier run's files, and the temporary file a killed run left three
    folders down, are gone."""
    out = tmp_path / "run"
    assert finetune_script.main(options(tiny_dir, out, "--cv", "10", "--folds", "1", "--seeds", "0", "1")) == 0
    recorded = set((out / ".minibert-files").read_text().split("\n")) - {""}
    assert files_under(out) == recorded | {".minibert-files"}  # every file the run wrote, and nothing else, is listed
    assert {"summary.json", "fold1/seed0/checkpoint.pt", "fold1/seed1/model/model.safetensors"} <= recorded
    users = {"fold1_notes.txt": "my notes", "seed2024.csv": "a,b\n", "model/mine.bin": "weights of mine",
             "fold1/seed0/model/mine.bin": "more of mine", "fold1/seed1/notes.txt": "a note"}
    for name, text in users.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    (out / "fold1/seed0/model/.model.safetensors.k3v9.tmp").write_bytes(b"half the weights, left by a killed run")
    capsys.readouterr()

    assert finetune_script.main(options(tiny_dir, out, "--overwrite")) == 0
    assert capsys.readouterr().out.strip().split("\n")[-1] == f"outputs in {out}/: checkpoint.pt, metrics.json, model/, summary.json"
    assert {name: (out / name).read_text() for name in users} == users  # every file of the user's is intact
    assert files_under(out) == set(users) | {".minibert-files", "checkpoint.pt", "metrics.json", "summary.json",
                                             "model/model.safetensors", "model/config.json", "model/vocab.txt",
                                             "model/tokenizer_config.json", "model/minibert_finetune.json"}
    assert not (out / "fold1" / "seed0" / "checkpoint.pt").exists()  # the earlier run's files are gone
    assert (out / "fold1" / "seed0" / "model").is_dir()  # its folders too, unless they hold something of the user's
    assert not (out / "fold1" / "seed0" / "model" / "config.json").exists()

    # pre-training keeps the same rule, with its own files
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join("the film was good .\nthe plot was thin .\nthe cast was fine ." for _ in range(40)) + "\n")
    pretrain = load_script("pretrain")
    common = ["--from-scratch", "--vocab", str(tiny_dir / "vocab.txt"), "--corpus", str(corpus), "--hidden-size", "16",
              "--layers", "1", "--heads", "2", "--max-length", "16", "--batch-size", "4", "--steps", "1",
              "--device", "cpu", "--no-progress", "--no-plots", "--output-dir", str(tmp_path / "pre")]
    assert pretrain.main(common) == 0
    (tmp_path / "pre" / "model" / "mine.bin").write_text("mine")
    (tmp_path / "pre" / "model" / ".config.json.a1b2.tmp").write_text("half")
    assert pretrain.main([*common, "--overwrite", "--no-save-model"]) == 0
    assert files_under(tmp_path / "pre") == {".minibert-files", "checkpoint.pt", "metrics.json", "model/mine.bin"}


def start_run(model: Path, out: Path, *extra: str) -> subprocess.Popen:
    """A fine-tuning run long enough to be caught in the middle (32,000 steps), returned once it is training."""
    proc = subprocess.Popen([sys.executable, "scripts/finetune.py",
                             *options(model, out, "--limit-train", "1600", "--batch-size", "1", "--epochs", "20", *extra)],
                            cwd=ROOT, env=script_env(), stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "Ctrl-C or SIGTERM saves a checkpoint" in line:
            return proc
    raise AssertionError(f"the run never started: {proc.communicate()}")


def test_a_second_run_into_a_busy_folder_is_refused_and_a_dead_runs_lock_is_taken_over(tiny_dir, tmp_path, movie_reviews):
    out = tmp_path / "run"
    first = start_run(tiny_dir, out)
    try:
        for script, extra in (("finetune", ["--overwrite"]), ("finetune", ["--resume"]), ("pretrain", ["--steps", "1", "--overwrite"])):
            argv = options(tiny_dir, out, *extra) if script == "finetune" else [
                "--model", str(tiny_dir), "--output-dir", str(out), "--device", "cpu", "--no-progress", *extra]
            assert first.poll() is None  # still training
            second = subprocess.run([sys.executable, f"scripts/{script}.py", *argv], cwd=ROOT, env=script_env(),
                                    capture_output=True, text=True, timeout=600)
            assert second.returncode == 2, second.stderr[-2000:]
            assert second.stderr.strip().split("\n") == error_lines(second.stderr)  # one line, no traceback
            (line,) = error_lines(second.stderr)
            assert f"--output-dir {out} is in use by another run" in line
            assert f"pid {first.pid}, started " in line and "scripts/finetune.py" in line and "--epochs 20" in line
        assert first.poll() is None  # the first run goes on, untouched
    finally:
        first.kill()  # SIGKILL: no handler runs, the lock file stays behind
        first.communicate(timeout=600)
    assert f"pid {first.pid}" in (out / ".minibert-lock").read_text()

    third = subprocess.run([sys.executable, "scripts/finetune.py", *options(tiny_dir, out, "--overwrite")], cwd=ROOT,
                           env=script_env(), capture_output=True, text=True, timeout=600)
    assert third.returncode == 0, third.stderr[-2000:]
    assert f"taking over the lock of a run that is no longer running (pid {first.pid}, started" in third.stderr
    assert not (out / ".minibert-lock").exists()  # given back at the end
    assert json.loads((out / "summary.json").read_text())["status"] == "completed"


def test_a_resume_on_other_data_is_refused_in_one_line(finetune_script, tiny_dir, tmp_path, capsys):
    """The checkpoint records a fingerprint of the examples: after a new class (which would change the
    classifier's shape) or a changed row, --resume is one line naming --data, not a traceback or a silent mix."""
    def write_table(rows):
        table.write_text("text,label\n" + "".join(f"{text},{label}\n" for text, label in rows))

    table, out = tmp_path / "texts.csv", tmp_path / "run"
    rows = [(f"a {word} film number {i}", word) for word in ("good", "bad") for i in range(12)]
    write_table(rows)
    common = ["--model", str(tiny_dir), "--output-dir", str(out), "--data", str(table), "--truncation", "head",
              "--max-length", "32", "--batch-size", "4", "--epochs", "2", "--device", "cpu", "--no-progress", "--no-plots"]
    assert finetune_script.main([*common, "--stop-after-steps", "1"]) == 130
    write_table(rows + [(f"a so-so film number {i}", "so-so") for i in range(12)])  # a third class
    assert finetune_script.main([*common, "--resume"]) == 2
    err = capsys.readouterr().err
    (line,) = error_lines(err)
    assert "Traceback" not in err and "other data" in line and f"--data {table}" in line
    write_table(rows)
    assert finetune_script.main([*common, "--resume"]) == 0  # the data it was trained on: it resumes
    assert json.loads((out / "metrics.json").read_text())["data_fingerprint"] == json.loads((out / "summary.json").read_text())["data_fingerprint"]
    rows[3] = ("a changed review", "good")
    write_table(rows)
    capsys.readouterr()
    assert finetune_script.main([*common, "--resume"]) == 2  # a finished run on changed rows is not reported as theirs
    (line,) = error_lines(capsys.readouterr().err)
    assert "other data" in line and f"--data {table}" in line


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
    (["--seeds", "0", "1", "0"], "--seeds names 0 more than once"),
    (["--cv", "10", "--folds", "3", "3"], "--folds names 3 more than once"),
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
