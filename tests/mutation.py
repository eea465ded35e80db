"""Mutation check: do the tests catch the bugs that matter?

Each entry of MUTANTS below is a deliberate one-line semantic bug of the kind a contributor could
introduce (a tanh GELU, a missing sqrt in the attention scaling, NSP labels flipped, ...), with the tests
that should catch it. For every mutant this script copies the repository into a temporary folder,
applies the edit there (never to your checkout), runs the named tests against the copy, and reports
whether they failed (the mutant is CAUGHT) or passed (it SURVIVED: the suite has a blind spot).

    python tests/mutation.py             # every mutant, 2 at a time (~7 minutes on a 2-core machine)
    python tests/mutation.py --list      # names, files and the tests each one runs
    python tests/mutation.py --only gelu-tanh --only nsp-labels-flipped
    python tests/mutation.py --jobs 1    # one pytest at a time (a shared or small machine)
    python tests/mutation.py --baseline  # first check that every selection passes on the unchanged code

It exits with status 1 if any mutant survives, if its tests erred (collection error, no test selected,
timeout), if a --baseline selection fails, or if a mutant's original text is no longer found exactly once
in its file: when the code changes, the list must change with it, loudly. Run it after changing a test or
the code a mutant names, and before relying on the suite to guard a refactoring; it is too slow for CI on
every push. A new kind of bug the suite should catch is a new entry: the file, the exact original text,
the replacement, the tests that must fail, and the bug in words.

How it runs the tests: the copy holds minibert/, tests/, scripts/, vocab/, docs/, benchmarks/ and
pyproject.toml, beside a link named `shared` to the real ../shared (the tests read the corpus and the
models there); pytest runs with PYTHONPATH pointing at the copy, so the copy's minibert is imported
(not the editable install), with PYTHONDONTWRITEBYTECODE=1, so that no stale bytecode of a mutated file
can survive its restoration, and with OMP_NUM_THREADS=1 unless set (one core per job). Each mutant runs only its selected tests, with -x (stop at the first
failure); which test failed first is reported as the one that caught it.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("minibert", "tests", "scripts", "vocab", "docs", "benchmarks", "pyproject.toml", "README.md", "CONTRIBUTING.md")


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str  # path relative to the repository root
    old: str  # exact text, found exactly once in the file
    new: str
    tests: tuple[str, ...]  # pytest arguments: node ids, files, "-k" expressions
    why: str  # the bug, in words


def m(name, file, old, new, tests, why) -> Mutant:
    return Mutant(name, file, old, new, tuple(tests.split()) if isinstance(tests, str) else tuple(tests), why)


T_TOK = "tests/test_tokenizer.py"
T_MODEL = "tests/test_model.py"
T_CKPT = "tests/test_checkpoint.py"
T_FT = "tests/test_finetune.py"
T_PT = "tests/test_pretrain.py"
T_PTX = "tests/test_pretraining_examples.py"
T_OPT = "tests/test_optim.py"
T_PRED = "tests/test_predict.py"

MUTANTS: list[Mutant] = [
    # ---- tokenizer --------------------------------------------------------------------------------
    m("punctuation-ps-pe-pc", "minibert/tokenizer.py",
      'return unicodedata.category(char).startswith("P")',
      'return unicodedata.category(char).startswith("P") and unicodedata.category(char) not in ("Ps", "Pe", "Pc")',
      [T_TOK, "-k", "punctuation"],
      "open, close and connector punctuation (「」, ‿, ...) no longer split words (issue 13, bug 1)"),
    m("lowercase-off", "minibert/tokenizer.py",
      "            word = word.lower()\n",
      "            word = word\n",
      [T_TOK, "-k", "basic_tokenizer_steps or tokenize_examples"],
      "an uncased tokenizer keeps upper case"),
    m("accents-kept", "minibert/tokenizer.py",
      "        if self.do_lower_case:\n            word = word.lower()\n            if self.strip_accents is not False:\n                word = _strip_accents(word)",
      "        if self.do_lower_case:\n            word = word.lower()\n            if self.strip_accents is not False:\n                word = word",
      [T_TOK, "-k", "basic_tokenizer_steps or tokenize_examples or unicode_text_matches_legacy"],
      "lower-casing no longer strips accents (é stays é)"),
    m("cjk-not-spaced", "minibert/tokenizer.py",
      'return f" {char} " if char is not None and _is_cjk(char) else char',
      "return char",
      [T_TOK, "-k", "basic_tokenizer_steps or tokenize_examples or unicode_text_matches_legacy"],
      "CJK ideographs are not spaced out, so a run of them is one word"),
    m("wordpiece-no-hash-prefix", "minibert/tokenizer.py",
      'prefix = "##" if start > 0 else ""',
      'prefix = ""',
      [T_TOK, "-k", "all_reviews_match_legacy or wordpiece_greedy"],
      "continuation pieces are looked up without their ## prefix"),
    m("wordpiece-shortest-match", "minibert/tokenizer.py",
      "for end in range(min(len(word), start + self._longest), start, -1):",
      "for end in range(start + 1, min(len(word), start + self._longest) + 1):",
      [T_TOK, "-k", "all_reviews_match_legacy or wordpiece_greedy"],
      "WordPiece takes the shortest matching piece instead of the longest"),
    # ---- model inputs and the fine-tuning data ------------------------------------------------------
    m("head-tail-swapped", "minibert/inputs.py",
      "return ids[:head] + ids[len(ids) - tail :]",
      "return ids[:tail] + ids[len(ids) - head :]",
      [T_TOK, T_FT, "-k", "head_tail or truncation_strategies"],
      "head+tail keeps `tail` tokens from the start and `head` from the end"),
    m("pair-first-sep-is-segment-b", "minibert/inputs.py",
      "[0] * (len(a) + 2) + [1] * (len(b) + 1)",
      "[0] * (len(a) + 1) + [1] * (len(b) + 2)",
      [T_TOK, "-k", "review_pairs_match_legacy"],
      "in a pair, the [SEP] after A gets token type 1"),
    m("longest-first-odd-cut-from-a", "minibert/inputs.py",
      "cut_a, cut_b = rest // 2, uneven + rest - rest // 2",
      "cut_a, cut_b = rest - rest // 2, uneven + rest // 2",
      [T_TOK, "-k", "truncated_pairs_match_legacy"],
      "longest_first removes the odd token from the first text instead of the second"),
    m("tail-keeps-head", "minibert/data.py",
      "pieces = [ids[-budget:] if len(ids) > budget else ids]",
      "pieces = [ids[:budget]]",
      [T_FT, "-k", "truncation_strategies"],
      "the tail strategy drops the tail instead of the head"),
    m("chunks-no-overlap", "minibert/data.py",
      "step = size - stride",
      "step = size",
      [T_FT, "-k", "truncation_strategies"],
      "chunk windows ignore the stride: consecutive windows share nothing"),
    m("split-cv800-in-train", "minibert/data.py",
      "TRAIN_FILES = range(0, 800)",
      "TRAIN_FILES = range(0, 801)",
      [T_FT, "-k", "fixed_split"],
      "cv800, a test file, is also trained on"),
    m("validation-reviews-also-train", "minibert/finetune.py",
      "train = [r for r in train if id(r) not in held]",
      "train = list(train)",
      [T_FT, "-k", "validation_reviews_are_the_last"],
      "with --val-size, the validation reviews are trained on too"),
    m("validation-lowest-files", "minibert/finetune.py",
      "key=lambda r: file_number(r.fileid))[-(args.val_size // 2):]",
      "key=lambda r: file_number(r.fileid))[: args.val_size // 2]",
      [T_FT, "-k", "validation_reviews_are_the_last"],
      "the validation slice takes the lowest-numbered training files instead of the highest"),
    m("fold-boundary-off-by-one", "minibert/data.py",
      "return file_number(fileid) // 100 + 1",
      "return (file_number(fileid) + 1) // 100 + 1",
      [T_FT, "-k", "pang_lee_folds"],
      "Pang & Lee's folds shifted by one file: cv099 lands in fold 2"),
    m("labels-neg-pos-flipped", "minibert/data.py",
      'LABELS = ("neg", "pos")',
      'LABELS = ("pos", "neg")',
      [T_FT, "-k", "fixed_split"],
      "label 0 means pos: every review gets the other class"),
    # ---- model ---------------------------------------------------------------------------------------
    m("gelu-tanh", "minibert/model.py",
      '"gelu": F.gelu,',
      '"gelu": lambda x: F.gelu(x, approximate="tanh"),',
      [T_MODEL, "-k", "parity"],
      "BERT's erf GELU replaced by the tanh approximation"),
    m("attention-no-sqrt", "minibert/model.py",
      "self.scale = 1.0 / math.sqrt(self.head_size)",
      "self.scale = 1.0 / self.head_size",
      [T_MODEL, "-k", "parity"],
      "attention scores divided by d_k instead of sqrt(d_k)"),
    m("pooler-last-token", "minibert/model.py",
      "return torch.tanh(self.dense(x[:, 0]))",
      "return torch.tanh(self.dense(x[:, -1]))",
      [T_MODEL, "-k", "parity"],
      "the pooler reads the last token instead of [CLS]"),
    m("softmax-over-queries", "minibert/model.py",
      "probs = scores.softmax(dim=-1)",
      "probs = scores.softmax(dim=-2)",
      [T_MODEL, "-k", "parity"],
      "attention probabilities normalised over the queries instead of the keys"),
    m("mask-over-queries", "minibert/model.py",
      "return bias[:, None, None, :]  # (B, 1, 1, T)",
      "return bias[:, None, :, None]  # (B, 1, 1, T)",
      [T_MODEL, "-k", "parity"],
      "the padding mask hides padded queries instead of padded keys"),
    m("no-attention-residual", "minibert/model.py",
      "x = self.attn_norm(x + self.drop(a))",
      "x = self.attn_norm(self.drop(a))",
      [T_MODEL, "-k", "parity"],
      "the attention sublayer loses its residual connection"),
    m("pooler-no-tanh", "minibert/model.py",
      "return torch.tanh(self.dense(x[:, 0]))",
      "return self.dense(x[:, 0])",
      [T_MODEL, "-k", "parity"],
      "the pooler forgets its tanh"),
    m("token-types-dropped", "minibert/model.py",
      "x = self.tok(input_ids) + self.seg(token_type_ids)",
      "x = self.tok(input_ids)",
      [T_MODEL, "-k", "parity"],
      "segment (token type) embeddings are never added"),
    m("positions-off-by-one", "minibert/model.py",
      "positions = torch.arange(T, device=input_ids.device)",
      "positions = torch.arange(1, T + 1, device=input_ids.device)",
      [T_MODEL, "-k", "parity"],
      "position ids start at 1"),
    # ---- checkpoint key table ----------------------------------------------------------------------
    m("layernorm-biases-swapped", "minibert/checkpoint.py",
      '    ("attention.output.LayerNorm.bias", "attn_norm.bias", None),\n'
      '    ("intermediate.dense.weight", "ffn.up.weight", None),\n'
      '    ("intermediate.dense.bias", "ffn.up.bias", None),\n'
      '    ("output.dense.weight", "ffn.down.weight", None),\n'
      '    ("output.dense.bias", "ffn.down.bias", None),\n'
      '    ("output.LayerNorm.weight", "ffn_norm.weight", None),\n'
      '    ("output.LayerNorm.bias", "ffn_norm.bias", None),\n',
      '    ("attention.output.LayerNorm.bias", "ffn_norm.bias", None),\n'
      '    ("intermediate.dense.weight", "ffn.up.weight", None),\n'
      '    ("intermediate.dense.bias", "ffn.up.bias", None),\n'
      '    ("output.dense.weight", "ffn.down.weight", None),\n'
      '    ("output.dense.bias", "ffn.down.bias", None),\n'
      '    ("output.LayerNorm.weight", "ffn_norm.weight", None),\n'
      '    ("output.LayerNorm.bias", "attn_norm.bias", None),\n',
      [T_MODEL, "-k", "parity"],
      "the key table swaps the two LayerNorm biases of every layer (the names on two lines exchanged)"),
    m("gamma-beta-misread", "minibert/checkpoint.py",
      'key = key[: -len("beta")] + "bias"',
      'key = key[: -len("beta")] + "weight"',
      [T_CKPT, "-k", "gamma_beta"],
      "an old checkpoint's LayerNorm beta is read as the gain"),
    # ---- optimiser and schedule ----------------------------------------------------------------------
    m("adamw-no-bias-correction", "minibert/optim.py",
      "torch._foreach_addcdiv_(params, m, denom, -lr / (1.0 - b1**t))",
      "torch._foreach_addcdiv_(params, m, denom, -lr)",
      [T_OPT, "-k", "adamw"],
      "AdamW's first moment is not bias-corrected"),
    m("adamw-decay-in-gradient", "minibert/optim.py",
      "torch._foreach_mul_(params, 1.0 - lr * wd)  # p <- p - lr * wd * p",
      "torch._foreach_add_(grads, params, alpha=wd)  # L2 in the gradient, not decoupled",
      [T_OPT, "-k", "adamw"],
      "weight decay added to the gradient (Adam + L2) instead of decoupled"),
    m("decay-on-biases-and-layernorm", "minibert/optim.py",
      "groups.setdefault((depth, p.ndim >= 2), []).append(p)",
      "groups.setdefault((depth, True), []).append(p)",
      [T_OPT, "-k", "decay_rule"],
      "param_groups decays biases and LayerNorm parameters too"),
    m("warmup-transformers-style", "minibert/optim.py",
      "return (step + 1) / (self.warmup_steps + 1)",
      "return step / max(1, self.warmup_steps)",
      [T_OPT, "-k", "schedule"],
      "warmup starts at lr 0, so the first step is wasted (the documented one-step shift lost)"),
    m("clip-sum-of-norms", "minibert/optim.py",
      "norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))",
      "norm = torch.stack(torch._foreach_norm(grads)).sum()",
      [T_FT, "-k", "clip_grad_norm"],
      "clipping uses the sum of the per-tensor norms instead of the global L2 norm"),
    m("lr-schedule-moves-before-the-step", "minibert/training.py",
      "    optimizer.step()\n    schedule.step()\n",
      "    schedule.step()\n    optimizer.step()\n",
      [T_OPT, "-k", "optimizer_step"],
      "the loops move the schedule before the update: every step uses the next step's lr (two lines swapped)"),
    m("gradients-accumulate", "minibert/training.py",
      "    optimizer.zero_grad()\n",
      "    pass\n",
      [T_OPT, "-k", "optimizer_step"],
      "the loops never clear the gradients: each step adds to the last one's"),
    m("loop-never-clips", "minibert/training.py",
      "    if max_grad_norm:\n",
      "    if max_grad_norm is None:\n",
      [T_OPT, "-k", "optimizer_step"],
      "the loops skip gradient clipping whatever --max-grad-norm says"),
    # ---- pre-training examples -------------------------------------------------------------------------
    m("nsp-labels-flipped", "minibert/pretraining_data.py",
      "NOT_NEXT if pair.is_random_next else IS_NEXT",
      "IS_NEXT if pair.is_random_next else NOT_NEXT",
      [T_PTX, "-k", "label"],
      "a real continuation gets next_sentence_label 1 (issue 13, bug 3)"),
    m("isnext-b-overlaps-a", "minibert/pretraining_data.py",
      "b = [t for sentence in chunk[a_end:] for t in sentence]",
      "b = [t for sentence in chunk[a_end - 1 :] for t in sentence]",
      [T_PTX, "-k", "label"],
      "an IsNext pair's B starts with A's last sentence again"),
    m("special-tokens-maskable", "minibert/pretraining_data.py",
      "            if t in self.special_ids:\n",
      "            if t == self.mask_id:\n",
      [T_PTX, "-k", "masking"],
      "[CLS] and [SEP] can be chosen for prediction"),
    m("masking-10-80-10", "minibert/pretraining_data.py",
      "            if r < 0.8:\n",
      "            if r < 0.1:\n",
      [T_PTX, "-k", "masking"],
      "10% of the chosen tokens become [MASK] and 80% random tokens, instead of 80% and 10%"),
    m("mlm-rate-20-percent", "minibert/pretrain.py",
      "mlm_prob: float = 0.15  # fraction of tokens chosen for prediction",
      "mlm_prob: float = 0.2  # fraction of tokens chosen for prediction",
      [T_PTX, "-k", "masking_rate"],
      "pre-training predicts 20% of the tokens by default"),
    m("decoder-not-tied", "minibert/pretrain.py",
      "mlm_logits = m.mlm(h.gather(1, index), m.bert.embeddings.tok.weight)  # (B, P, V)",
      "mlm_logits = m.mlm(h.gather(1, index), m.bert.embeddings.tok.weight.detach())  # (B, P, V)",
      [T_PT, "-k", "pretraining_loss_logits_and_gradients"],
      "the MLM decoder is not tied in training: no gradient reaches the word embeddings through it"),
    m("pretraining-resume-skips-a-batch", "minibert/pretrain.py",
      'step, epoch, next_batch = state["step"], state["epoch"], state["batch"]',
      'step, epoch, next_batch = state["step"], state["epoch"], state["batch"] + 1',
      [T_PT, "-k", "resume_ends_exactly"],
      "a resumed pre-training run skips the batch after the interruption"),
    # ---- fine-tuning ------------------------------------------------------------------------------------
    m("windows-max-not-mean", "minibert/predict.py",
      "return total / torch.bincount(doc, minlength=n_docs).clamp(min=1)[:, None]",
      'return torch.full_like(total, float("-inf")).index_reduce_(0, doc, logits, "amax")',
      [T_PRED, "-k", "mean_by_review or two_window"],
      "a review's windows are aggregated by max instead of mean (issue 13, bug 2)"),
    m("classify-least-likely", "minibert/predict.py",
      '"label": names[int(p.argmax())]',
      '"label": names[int(p.argmin())]',
      [T_PRED, "-k", "forces_class"],
      "classify reports the least likely label (issue 13, bug 4)"),
    m("resume-skips-a-batch", "minibert/finetune.py",
      "save(epoch, b + 1)",
      "save(epoch, b + 2)",
      [T_FT, "-k", "resume_after_an_interruption"],
      "an interrupted run resumes one batch too late"),
    # ---- issue 16: CPU recipe ---------------------------------------------------------------------------
    m("cpu-preset-drifts", "minibert/finetune.py",
      '"head": 128, "epochs": 2,',
      '"head": 128, "epochs": 3,',
      [T_FT, "tests/test_bench.py", "-k", "cpu_preset"],
      "--preset cpu trains another recipe than the one chosen on validation (and a third longer)"),
]


# ---- Running ----------------------------------------------------------------------------------------


def check_texts(mutants: list[Mutant]) -> list[str]:
    """Every mutant's original text must occur exactly once in its file."""
    problems = []
    for mu in mutants:
        path = ROOT / mu.file
        if not path.is_file():
            problems.append(f"{mu.name}: {mu.file} does not exist")
            continue
        n = path.read_text(encoding="utf-8").count(mu.old)
        if n != 1:
            problems.append(f"{mu.name}: the original text occurs {n} times in {mu.file} (expected once): {mu.old.strip()[:80]!r}")
        if mu.old == mu.new:
            problems.append(f"{mu.name}: the replacement is the original text")
    return problems


def make_copy(base: Path) -> Path:
    """base/repo: a copy of what the tests need; base/shared: a link to the real ../shared."""
    repo = base / "repo"
    repo.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".pytest_cache", "results")
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name, ignore=ignore)
        elif src.is_file():
            shutil.copy2(src, repo / name)
    shared = ROOT.parent / "shared"
    if shared.is_dir():
        (base / "shared").symlink_to(shared.resolve(), target_is_directory=True)
    return repo


def environment(repo: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(repo) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("HF_HUB_OFFLINE", "1")
    if "NLTK_DATA" not in env and (ROOT.parent / "shared" / "nltk_data").is_dir():
        env["NLTK_DATA"] = str((ROOT.parent / "shared" / "nltk_data").resolve())
    env.pop("HYPOTHESIS_PROFILE", None)  # the derandomised default: the same examples every run
    # One thread per pytest: with --jobs N on N cores, more threads only fight over the cores (measured: the
    # AdamW parity test took 51 s with torch's default threads on a busy 2-core machine, 11 s with one).
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def check_imports_copy(repo: Path, env: dict[str, str]) -> None:
    out = subprocess.run([sys.executable, "-c", "import minibert; print(minibert.__file__)"], cwd=repo, env=env,
                         capture_output=True, text=True)
    where = Path(out.stdout.strip()).resolve() if out.returncode == 0 else None
    if where is None or repo.resolve() not in where.parents:
        sys.exit(f"mutation: the copy in {repo} imports minibert from {where or out.stderr.strip()}, not from the copy")


@dataclass
class Result:
    mutant: Mutant
    status: str  # caught | SURVIVED | ERROR | TIMEOUT
    caught_by: str
    seconds: float


FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.M)


def run_one(mu: Mutant, repo: Path, env: dict[str, str], timeout: float) -> Result:
    """Apply the mutant to the copy, run its tests, restore the file. A mutant without a file is a baseline
    run: the tests on the unchanged copy, which must pass."""
    path = repo / mu.file
    original = path.read_text(encoding="utf-8") if mu.file else None
    if original is not None:
        path.write_text(original.replace(mu.old, mu.new, 1), encoding="utf-8")
    started = time.perf_counter()
    try:
        cmd = [sys.executable, "-m", "pytest", *mu.tests, "-x", "-q", "-p", "no:cacheprovider", "-rfE"]
        try:
            proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Result(mu, "TIMEOUT", f"no result within {timeout:.0f} s", time.perf_counter() - started)
    finally:
        if original is not None:
            path.write_text(original, encoding="utf-8")
    seconds = time.perf_counter() - started
    output = proc.stdout + proc.stderr
    if not mu.file:  # baseline
        failed = FAILED.findall(output)
        ok = proc.returncode == 0
        return Result(mu, "ok" if ok else "FAILS", shlex.join(mu.tests) if ok else (failed[0] if failed else f"pytest exit {proc.returncode}"), seconds)
    if proc.returncode == 0:
        return Result(mu, "SURVIVED", "", seconds)
    if proc.returncode == 1:
        failed = FAILED.findall(output)
        return Result(mu, "caught", failed[0] if failed else "(a failing test)", seconds)
    last = [line for line in output.strip().splitlines() if line.strip()][-3:]
    return Result(mu, "ERROR", f"pytest exit {proc.returncode}: " + " | ".join(last), seconds)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Exit status 1: a mutant survived, its tests erred, or the list is stale.")
    p.add_argument("--list", action="store_true", help="list the mutants and the tests each one runs, then exit")
    p.add_argument("--only", action="append", metavar="NAME", help="run only this mutant (repeatable)")
    p.add_argument("--jobs", type=int, default=2, help="mutants tested at the same time (default: 2)")
    p.add_argument("--baseline", action="store_true",
                   help="first run each distinct test selection on the unchanged code: all must pass, or 'caught' means nothing")
    p.add_argument("--timeout", type=float, default=900, help="seconds allowed for one mutant's tests (default: 900)")
    args = p.parse_args(argv)

    mutants = MUTANTS
    if args.only:
        unknown = sorted(set(args.only) - {mu.name for mu in MUTANTS})
        if unknown:
            print(f"mutation: no mutant named {', '.join(unknown)}; see --list", file=sys.stderr)
            return 2
        mutants = [mu for mu in MUTANTS if mu.name in args.only]
    if args.jobs < 1:
        print(f"mutation: --jobs must be >= 1, got {args.jobs}", file=sys.stderr)
        return 2
    if args.list:
        for mu in mutants:
            print(f"{mu.name:36} {mu.file:24} {mu.why}\n{'':36} pytest {shlex.join(mu.tests)}")
        return 0

    problems = check_texts(mutants)
    if problems:
        print("mutation: the list is stale (update MUTANTS in tests/mutation.py):", *problems, sep="\n  ", file=sys.stderr)
        return 1

    if args.baseline:
        selections = list(dict.fromkeys(mu.tests for mu in mutants))
        mutants = [Mutant(f"baseline {i + 1}", "", "", "", tests, "the selection unchanged") for i, tests in enumerate(selections)] + mutants
    jobs = min(args.jobs, len(mutants))
    todo: queue.Queue[Mutant] = queue.Queue()
    for mu in mutants:
        todo.put(mu)
    results: dict[str, Result] = {}
    lock = threading.Lock()
    started = time.perf_counter()
    print(f"{len(mutants)} mutants, {jobs} at a time", flush=True)

    with tempfile.TemporaryDirectory(prefix="minibert-mutation-") as tmp:
        copies = [make_copy(Path(tmp) / f"w{i}") for i in range(jobs)]
        env = [environment(repo) for repo in copies]
        check_imports_copy(copies[0], env[0])

        def worker(i: int) -> None:
            while True:
                try:
                    mu = todo.get_nowait()
                except queue.Empty:
                    return
                r = run_one(mu, copies[i], env[i], args.timeout)
                with lock:
                    results[mu.name] = r
                    print(f"[{len(results):2}/{len(mutants)}] {r.status:8} {mu.name:36} {r.seconds:5.0f} s  {r.caught_by}", flush=True)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    ordered = [results[mu.name] for mu in mutants]
    bad = [r for r in ordered if r.status not in ("caught", "ok")]
    print(f"\n{'mutant':36} {'result':8} caught by")
    for r in ordered:
        print(f"{r.mutant.name:36} {r.status:8} {r.caught_by}")
    real = [r for r in ordered if r.mutant.file]
    print(f"\n{sum(r.status == 'caught' for r in real)} of {len(real)} mutants caught in {time.perf_counter() - started:.0f} s"
          + (f"; not caught or failing: {', '.join(r.mutant.name for r in bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
