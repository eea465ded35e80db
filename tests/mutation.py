"""Mutation check: do the tests catch the bugs that matter?

Each entry of MUTANTS below is a deliberate one-line semantic bug of the kind a contributor could
introduce (a tanh GELU, a missing sqrt in the attention scaling, NSP labels flipped, ...), with the tests
that should catch it. For every mutant this script copies the repository into a temporary folder,
applies the edit there (never to your checkout), runs the named tests against the copy, and reports
whether they failed (the mutant is CAUGHT) or passed (it SURVIVED: the suite has a blind spot).

    python tests/mutation.py             # every mutant, 2 at a time (the README's Tests section: how long)
    python tests/mutation.py --list      # names, files and the tests each one runs
    python tests/mutation.py --only gelu-tanh --only nsp-labels-flipped
    python tests/mutation.py --jobs 1    # one pytest at a time (a shared or small machine)
    python tests/mutation.py --baseline  # first check that every selection passes on the unchanged code
    python tests/mutation.py --only attention-no-sqrt --show   # one bug, explained: see below

`--show` is for learning (the walkthrough's exercises end with it): for each mutant named by --only it
applies the bug to a temporary copy, runs the test that catches it, and prints where the bug sits (file:line,
the original and the mutated lines), the test that failed, its failing assertion, and the size of the
difference (what `torch.testing.assert_close` reports: mismatched elements, greatest absolute and relative
difference).

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
T_RUNS = "tests/test_runs.py"

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
      'return state["step"], state["epoch"], state["batch"], state["elapsed"]',
      'return state["step"], state["epoch"], state["batch"] + 1, state["elapsed"]',
      [T_PT, "-k", "resume_ends_exactly"],
      "a resumed pre-training run skips the batch after the interruption"),
    # ---- the teaching tools: the mutation check's --show, the walkthrough's notebook ---------------------
    m("notebook-ignores-continues", "docs/make_notebook.py",
      'start = f"session({section})" if mark.group(1) is None else f"session({section}, continues={mark.group(1)})"',
      'start = f"session({section})"',
      ["tests/test_walkthrough.py", "-k", "notebook and not runs"],
      "every notebook cell starts in a fresh interpreter, also where the chapter continues an earlier section"),
    m("show-line-off-by-one", "tests/mutation.py",
      'return text.count("\\n", 0, at) + 1, original, mutated',
      'return text.count("\\n", 0, at), original, mutated',
      ["tests/test_mutation_show.py", "-k", "bug_lines"],
      "--show names the line before the bug"),
    m("held-out-counts-padding", "minibert/pretrain.py",
      "return targets[targets != IGNORE_INDEX]",
      "return targets",
      [T_PT, "-k", "held_out_score_is_the_accuracy"],
      "the held-out masked-LM accuracy divides by the padding slots of the prediction list too"),
    m("validation-reviews-lowest-numbers", "minibert/pretraining_data.py",
      "key=lambda r: r.fileid)[len(train) // 2 - n // 2:]]",
      "key=lambda r: r.fileid)[: n // 2]]",
      [T_PT, "-k", "validation_reviews_are"],
      "the held-out validation reviews are the lowest-numbered training files, not the ones finetune --val-size holds out"),
    m("unigram-baseline-least-frequent", "minibert/pretrain.py",
      "top = int(counts.argmax())",
      "top = int(counts.argmin())",
      [T_PT, "-k", "held_out_accuracy_beats"],
      "the unigram baseline answers the least frequent token instead of the most frequent"),
    m("neighbour-baseline-left-only", "minibert/pretrain.py",
      "table = between.get((left, right)) or after.get(left)",
      "table = after.get(left)",
      [T_PT, "-k", "neighbour_baseline"],
      "the neighbour baseline ignores the right neighbour, so the yardstick the tiny BERT is measured against is weaker"),
    m("snapshot-not-resumed", "minibert/pretrain.py",
      'state["elapsed"], state["history"], state["report"]',
      'state["elapsed"], state["history"], {"snapshots": []}',
      [T_PT, "-k", "resume_ends_exactly"],
      "a resumed pre-training run forgets the snapshots and the fill-mask 'before' measured before the interruption"),
    m("nbsvm-c-chosen-worst", "benchmarks/pretraining_value.py",
      "best = max(grid, key=lambda C: val[C])",
      "best = min(grid, key=lambda C: val[C])",
      ["tests/test_bench.py", "-k", "dry_run_runs_every"],
      "the pretraining-value NBSVM row keeps the C with the worst validation accuracy"),
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
    # ---- issue 20: attention explorer
    m("explorer-scale-by-dk", "minibert/attention_page.html",
      "scaled = qk / root,",
      "scaled = qk / m.hd,",
      ["tests/test_attention_page.py", "-k", "arithmetic_shows"],
      "the page divides q·k by d_k instead of sqrt(d_k)"),
    m("explorer-mask-not-shown", "minibert/attention_page.html",
      "bias = data.mask[j] ? 0 : data.mask_bias,",
      "bias = 0,",
      ["tests/test_attention_page.py", "-k", "arithmetic_shows"],
      "the page's arithmetic leaves out the padding mask: padding keys seem to get a score"),
    m("explorer-hidden-not-renormalised", "minibert/attention_page.html",
      "if (state.hideSpecial && kept > 0) for (let j = 0; j < T; j++) row[j] /= kept;",
      "",
      ["tests/test_attention_page.py", "-k", "renormalises"],
      "hiding [CLS] and [SEP] drops their weight without renormalising the rows"),
    m("explorer-recompute-without-mask", "minibert/inspection.py",
      "return (self.dots * self.scale + self.mask_bias).softmax(dim=-1)  # (L, nh, T, T)",
      "return (self.dots * self.scale).softmax(dim=-1)  # (L, nh, T, T)",
      ["tests/test_attention_page.py", "-k", "give_back"],
      "the recomputed probabilities forget the padding mask"),
    m("explorer-values-as-keys", "minibert/inspection.py",
      "for parts, one in zip((q, k, v), qkv.float()",
      "for parts, one in zip((q, v, k), qkv.float()",
      ["tests/test_attention_page.py", "-k", "give_back"],
      "the explorer's keys and values are swapped"),
    m("explorer-thumbnail-transposed", "minibert/attention_page.html",
      'canvas.addEventListener("click", () => select(g.model ?? state.model, l, h));',
      'canvas.addEventListener("click", () => select(g.model ?? state.model, h, l));',
      ["tests/test_attention_page.py", "-k", "thumbnail"],
      "clicking the thumbnail of layer l, head h opens layer h, head l"),
    m("explorer-hover-ignored", "minibert/attention_page.html",
      'text.addEventListener("mouseenter", () => { state.hover = i; isolate(); drawArithmetic(); });',
      'text.addEventListener("mouseenter", () => { isolate(); drawArithmetic(); });',
      ["tests/test_attention_page.py", "-k", "hovering"],
      "hovering a token neither isolates its lines nor shows its row"),
    m("explorer-overwrites-a-page", "scripts/show_attention.py",
      "if args.html.exists() and not args.overwrite:",
      "if args.html.exists() and args.overwrite is None:",
      ["tests/test_attention_page.py", "-k", "script"],
      "an existing --html file is replaced without --overwrite"),
    # ---- issue 19: CPU prediction ----------------------------------------------------------------------
    m("cls-only-query-of-last-token", "minibert/model.py",
      "q = q[:, :, :1]  # (B, nh, 1, hd)",
      "q = q[:, :, -1:]  # (B, nh, 1, hd)",
      [T_MODEL, "-k", "cls_alone"],
      "the classifier's last layer attends from the last token instead of [CLS]"),
    m("cls-only-residual-of-last-token", "minibert/model.py",
      "x = x[:, :1] if cls_only else x",
      "x = x[:, -1:] if cls_only else x",
      [T_MODEL, "-k", "cls_alone"],
      "the [CLS]-only last layer adds the wrong token's residual"),
    m("classifier-computes-every-row", "minibert/heads.py",
      "cls_only = not (output_hidden_states or output_attentions)",
      "cls_only = False",
      [T_MODEL, "-k", "cls_alone"],
      "the classifier computes the whole last layer (a silent 1/L slowdown)"),
    m("bf16-prediction-stays-fp32", "minibert/predict.py",
      'model = model.to(device, torch.bfloat16 if precision == "bf16" else torch.float32)',
      "model = model.to(device, torch.float32)",
      [T_PRED, "-k", "bf16_prediction"],
      "precision bf16 never casts the weights: prediction runs in float32 while saying bf16"),
    m("auto-precision-ignores-the-cpu", "minibert/training.py",
      "    if native_bf16_cpu():\n",
      "    if False:\n",
      [T_PRED, "-k", "auto_precision"],
      "auto never picks bf16 on a CPU with native bf16 units"),
    # ---- issue 17: reading users' data and inputs
    m("tsv-quote-spans-lines", "minibert/labelled_texts.py",
      "    if tsv:  # each line parsed on its own: a quoted field cannot reach into the next line",
      "    if False:  # each line parsed on its own: a quoted field cannot reach into the next line",
      ["tests/test_own_data.py", "-k", "unclosed_quote"],
      "a TSV text that opens a quote swallows the rows up to the next quote (issue 17, point 3)"),
    m("table-extra-fields-dropped", "minibert/labelled_texts.py",
      "        if len(fields) != len(columns):",
      "        if len(fields) < len(columns):",
      ["tests/test_own_data.py", "-k", "malformed_tables"],
      "a row with more fields than the header (an unquoted comma) is read, the extra fields dropped (issue 17, point 4)"),
    m("table-duplicate-column", "minibert/labelled_texts.py",
      '    check_names(columns, f"{where} line {header_line}", "column name")',
      "    pass",
      ["tests/test_own_data.py", "-k", "malformed_tables"],
      "a header that names a column twice is read, the last of the two used (issue 17, point 4)"),
    m("jsonl-keys-may-differ", "minibert/labelled_texts.py",
      "            if records and set(keys) != set(records[0][1]):  # in any order",
      "            if records and not set(records[0][1]) <= set(keys):  # in any order",
      ["tests/test_own_data.py", "-k", "malformed_tables"],
      "a JSONL row with keys the first row lacks is read without a word (issue 17, point 4)"),
    m("labels-differing-in-spaces", "minibert/labelled_texts.py",
      "        key = r.label.strip()",
      "        key = r.label",
      ["tests/test_own_data.py", "-k", "malformed_tables"],
      "'pos' and 'pos ' become two classes (issue 17, point 4)"),
    m("labels-differing-in-number-form", "minibert/labelled_texts.py",
      "            key = float(key)",
      "            key = str(key)",
      ["tests/test_own_data.py", "-k", "malformed_tables"],
      "JSON labels 1 and 1.0 become two classes (issue 17, point 4)"),
    m("semicolon-csv-not-detected", "minibert/labelled_texts.py",
      "    if len(columns) == 1:",
      "    if len(columns) == 0:",
      ["tests/test_own_data.py", "-k", "malformed_tables"],
      "a semicolon-separated CSV is reported as a missing column instead of by its separator (issue 17, point 10)"),
    m("rows-read-not-counted-in-full", "minibert/finetune.py",
      "labelled_texts.count_classes(read, labels)",
      "labelled_texts.count_classes(train, labels)",
      ["tests/test_own_data.py", "-k", "printed_before_training"],
      "the count per class printed before training leaves out the held-out rows (issue 17, point 4)"),
    m("lines-split-with-splitlines", "minibert/data.py",
      '    lines = text.split("\\n")',
      "    lines = text.splitlines()",
      ["tests/test_predict.py", "tests/test_own_data.py", "tests/test_pretraining_examples.py", "-k", "form_feeds or not_utf8"],
      "lines also end at form feeds, U+0085 and U+2028, which split one text in several (issue 17, point 6)"),
    m("logits-inf-not-refused", "minibert/predict.py",
      "            broken = (~torch.isfinite(logits).all(-1)).nonzero()  # (K, 1): windows with a NaN or inf logit",
      "            broken = torch.isnan(logits).any(-1).nonzero()  # (K, 1): windows with a NaN or inf logit",
      ["tests/test_predict.py", "-k", "overflow"],
      "logits that overflow to inf are not refused: their softmax prints 'nan' with exit 0 (issue 17, point 5)"),
    m("val-size-movie-rules-for-own-data", "minibert/finetune.py",
      "        if self.data is None and self.val_size % 2:",
      "        if self.val_size % 2:",
      ["tests/test_own_data.py", "-k", "val_size_has_its_own_rules"],
      "--val-size on your own data must be even, as for movie_reviews' two classes (issue 17, point 7)"),
    m("val-size-rounds-down", "minibert/labelled_texts.py",
      "            quota[c] += 1",
      "            pass",
      ["tests/test_own_data.py", "-k", "val_size_has_its_own_rules"],
      "--val-size N on your own data holds out fewer than N rows (issue 17, untested behaviour)"),
    m("val-size-may-empty-a-class", "minibert/labelled_texts.py",
      "        full = next((c for c in classes if quota[c] >= len(members[c])), None)",
      "        full = next((c for c in classes if quota[c] > len(members[c])), None)",
      ["tests/test_own_data.py", "-k", "val_size_has_its_own_rules"],
      "--val-size may hold out every training example of a class (issue 17, point 7)"),
    m("split-depends-on-hash-seed", "minibert/labelled_texts.py",
      "    classes = sorted({r.label for r in rows}, key=str)  # sorted: the split must not depend on PYTHONHASHSEED",
      "    classes = list({r.label for r in rows})  # sorted: the split must not depend on PYTHONHASHSEED",
      ["tests/test_own_data.py", "-k", "pythonhashseed"],
      "the classes are shuffled in set order, so the held-out test rows change with PYTHONHASHSEED (issue 17)"),
    m("limit-train-below-classes", "minibert/finetune.py",
      "    if n_classes is not None and n < n_classes:",
      "    if n_classes is not None and n < 2:",
      ["tests/test_own_data.py", "-k", "bad_options_and_models"],
      "--limit-train 2 with 3 classes trains without ever seeing one class (issue 17, point 9)"),
    m("label-column-may-be-the-text", "minibert/finetune.py",
      "        columns = [c for c in (self.text_column, self.pair_column, self.label_column) if c is not None]",
      "        columns = [c for c in (self.text_column, self.pair_column) if c is not None]",
      ["tests/test_own_data.py", "-k", "bad_options_and_models"],
      "--text-column label trains on the label as the text (issue 17, point 9)"),
    m("inf-options-accepted", "minibert/finetune.py",
      "                    and not math.isfinite(getattr(self, f.name))), None)",
      "                    and math.isnan(getattr(self, f.name))), None)",
      ["tests/test_own_data.py", "-k", "bad_options_and_models"],
      "--weight-decay inf passes the argument check and fails only once training has started (issue 17, point 10)"),
    m("max-length-checked-against-512", "minibert/finetune.py",
      "    if args.max_length > config.max_position_embeddings:",
      "    if args.max_length > 512:",
      ["tests/test_own_data.py", "-k", "bad_options_and_models"],
      "--max-length is checked against bert-base's 512 positions, not the model's (issue 17, point 10)"),
    m("predict-max-length-checked-against-512", "scripts/predict.py",
      "    if a.max_length is not None and a.max_length > positions:",
      "    if a.max_length is not None and a.max_length > 512:",
      ["tests/test_predict.py", "-k", "cannot_work"],
      "predict.py checks --max-length against bert-base's 512 positions, not the model's (issue 17, point 10)"),
    m("other-label-count-multiline", "minibert/checkpoint.py",
      'all(m.startswith("classifier.") for m in self.mismatched)',
      'all(m.startswith("classifier.weight") for m in self.mismatched)',
      ["tests/test_own_data.py", "-k", "bad_options_and_models"],
      "a classifier for another number of classes gets the generic multi-line misfit message (issue 17, point 10)"),
    m("untrained-classifier-predicts", "minibert/predict.py",
      '    if trained.get("steps") == 0:',
      '    if trained.get("steps") == "0":',
      ["tests/test_predict.py", "-k", "cannot_work"],
      "a classifier saved before any training step is predicted with (issue 17, point 9)"),
    m("files-errno-leaks", "scripts/predict.py",
      "    except OSError as e:  # a symbolic link loop, no permission, ...",
      "    except PermissionError as e:  # a symbolic link loop, no permission, ...",
      ["tests/test_predict.py", "-k", "cannot_work"],
      "a --files symbolic link loop is reported as [Errno 40] without the flag (issue 17, point 10)"),
    m("lines-with-pair-misreported", "scripts/predict.py",
      "    if pairs is not None and (a.files or a.lines is not None):",
      "    if pairs is not None and a.files:",
      ["tests/test_predict.py", "-k", "cannot_work"],
      "--lines with --pair says '1 second texts for 0 texts' instead of naming the two options (issue 17, point 10)"),
    m("uppercase-txt-ignored", "minibert/labelled_texts.py",
      '        texts = [f for f in files if f.suffix.lower() == ".txt"]',
      '        texts = [f for f in files if f.suffix == ".txt"]',
      ["tests/test_own_data.py", "-k", "any_case"],
      "a class folder of .TXT files is read as a class with no example (issue 17, point 10)"),
    m("damaged-zip-traceback", "minibert/data.py",
      "    except (zipfile.BadZipFile, EOFError, UnicodeDecodeError) as e:  # a download cut short, a damaged disk",
      "    except (EOFError, UnicodeDecodeError) as e:  # a download cut short, a damaged disk",
      ["tests/test_own_data.py", "-k", "truncated_movie_reviews_zip"],
      "a truncated movie_reviews.zip ends in a BadZipFile traceback (issue 17, point 10)"),
    m("corpus-decode-unnamed", "minibert/pretraining_data.py",
      '            documents += read_documents(decode(f.read_bytes(), f"--corpus {f}"))',
      '            documents += read_documents(f.read_text(encoding="utf-8"))',
      ["tests/test_pretraining_examples.py", "-k", "not_utf8"],
      "a non-UTF-8 --corpus file is a codec error that names neither the file nor the line (issue 17, point 10)"),
    m("pinned-revision-reads-main-offline", "minibert/hub.py",
      "    cached = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision)",
      "    cached = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=None)",
      ["tests/test_hub.py", "-k", "pinned_revision"],
      "offline, a pinned revision loads main's cached files (issue 17, untested behaviour)"),
    m("bin-before-shards", "minibert/checkpoint.py",
      "    files |= resolve_first(name_or_path, [WEIGHTS, SHARDED_INDEX, LEGACY_WEIGHTS], **where)",
      "    files |= resolve_first(name_or_path, [WEIGHTS, LEGACY_WEIGHTS, SHARDED_INDEX], **where)",
      ["tests/test_checkpoint.py", "-k", "sharded_safetensors_and"],
      "a folder with safetensors shards and a pytorch_model.bin loads the pickle (issue 17, untested behaviour)"),
    m("recorded-stride-ignored", "minibert/predict.py",
      '    if given.get("max_length") is not None and given.get("stride") is None:',
      '    if given.get("stride") is None:',
      ["tests/test_predict.py", "-k", "recorded_stride"],
      "predict.py cuts with max-length // 4 instead of the stride the model was fine-tuned with (issue 17, untested behaviour)"),
    m("mlm-random-never-last-id", "minibert/pretraining_data.py",
      "            t = rng.randrange(self.vocab_size)",
      "            t = rng.randrange(self.vocab_size - 1)",
      ["tests/test_pretraining_examples.py", "-k", "last_one_included"],
      "MLM random replacement never draws the last id of the vocabulary (issue 17, untested behaviour)"),
    # ---- issue 17: runs and their files
    m("overwrite-removes-whole-folders", "minibert/training.py",
      "(out / folder).rmdir()",
      '__import__("shutil").rmtree(out / folder)',
      [T_RUNS, "-k", "recorded_writing"],
      "--overwrite deletes the folders an earlier run made with everything in them, a user's model/mine.bin included"),
    m("model-files-not-recorded", "minibert/finetune.py",
      'with saving(*model_files(out / "model"), out / "model" / SETTINGS_FILE):',
      'with saving(out / "model" / SETTINGS_FILE):',
      [T_RUNS, "-k", "recorded_writing"],
      "the manifest misses the saved model's files, so --overwrite leaves an earlier run's model behind"),
    m("tmp-files-top-level-only", "minibert/training.py",
      'for stale in (out / rel).parent.glob(f".{Path(rel).name}.*.tmp"):',
      'for stale in out.glob(f".{Path(rel).name}.*.tmp"):',
      [T_RUNS, "-k", "recorded_writing"],
      "a killed run's temporary files in fold*/seed*/model/ are never removed (issue 17, point 11)"),
    m("lock-shared", "minibert/training.py",
      "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)",
      "fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)",
      [T_RUNS, "-k", "busy_folder"],
      "a shared lock instead of an exclusive one: two runs write into one output folder"),
    m("stale-lock-taken-silently", "minibert/training.py",
      "    if stale:  # the lock file outlived its process",
      "    if not stale:  # the lock file outlived its process",
      [T_RUNS, "-k", "busy_folder"],
      "a dead run's lock is taken over without a word"),
    m("seeds-twice-accepted", "minibert/finetune.py",
      "if values and len(set(values)) < len(values):",
      "if values and len(set(values)) < len(values) - 1:",
      [T_RUNS, "-k", "bad_arguments"],
      "--seeds 0 1 0 counts seed 0 twice in the mean and std"),
    m("resume-ignores-limit-test", "minibert/finetune.py",
      '"limit_test", "test", "group_by_length"',
      '"test", "group_by_length"',
      [T_FT, "-k", "changed_test_size"],
      "a resume with another --limit-test mixes test sizes in one summary"),
    m("cv-partial-marked-completed", "minibert/finetune.py",
      "N_FOLDS * len(seeds) if args.cv else len(seeds)",
      "len(folds) * len(seeds)",
      [T_FT, "-k", "cv_10 or folds_are_done"],
      "a --cv job with some folds still to run is marked completed"),
    m("cv-summary-forgets-earlier-folds", "minibert/finetune.py",
      "runs += earlier_folds(args, out, seeds, skip=folds)",
      "runs += []",
      [T_FT, "-k", "folds_are_done"],
      "--folds 3 --resume summarises fold 3 alone, as if the folds done earlier did not exist"),
    m("resume-ignores-the-data", "minibert/training.py",
      'if fingerprint is not None and state.get("fingerprint") != fingerprint:',
      'if fingerprint is None and state.get("fingerprint") != fingerprint:',
      [T_RUNS, "-k", "other_data"],
      "a resume on changed data continues silently, or ends in a traceback with a new class"),
    m("average-weights-later-epochs-more", "minibert/training.py",
      "self.mean[name] += (w.float() - self.mean[name]) / self.count",
      "self.mean[name] += (w.float() - self.mean[name]) / min(self.count, 2)",
      [T_FT, "-k", "average_last_3"],
      "--average-last 3 weights the last epoch twice as much as the first"),
    m("second-sigterm-ignored", "minibert/training.py",
      "        if self.set:\n            raise KeyboardInterrupt",
      "        if self.set and signum == signal.SIGINT:\n            raise KeyboardInterrupt",
      [T_FT, "-k", "second_signal"],
      "only a second Ctrl-C aborts; a second SIGTERM is ignored"),
    m("resume-forgets-the-average", "minibert/finetune.py",
      'average.load_state_dict(state.get("average"))',
      "average.load_state_dict(None)",
      [T_FT, "-k", "averaging_window"],
      "a run resumed inside the averaging window loses the epochs averaged before the interruption"),
    # ---- issue 16: CPU recipe ---------------------------------------------------------------------------
    m("cpu-preset-drifts", "minibert/finetune.py",
      '"head": 128, "epochs": 2,',
      '"head": 128, "epochs": 3,',
      [T_FT, "tests/test_bench.py", "-k", "cpu_preset"],
      "--preset cpu trains another recipe than the one chosen on validation (and a third longer)"),
    # ---- issue 19: prediction keeps its freed memory --------------------------------------------------
    m("freed-memory-goes-back-to-the-os", "minibert/training.py",
      "libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1",
      "libc.mallopt(M_MMAP_THRESHOLD, 128 * 1024) == 1",
      [T_PRED, "-k", "keeps_freed_memory"],
      "large activations still get a fresh mapping each batch, and page faults, while predict.py says it keeps them"),
    m("predict-keeps-only-small-blocks", "minibert/training.py",
      "(not any_size or libc.mallopt(M_MMAP_MAX, 0) == 1)",
      "(not any_size or True)",
      [T_PRED, "-k", "keeps_freed_memory"],
      "predict.py's any_size is ignored: fp32 activations above 32 MB are mapped and page-faulted afresh every batch"),
    m("cpu-batches-like-a-gpu", "minibert/predict.py",
      'DEFAULT_BATCH_SIZE = {"cpu": 16, "cuda": 64}',
      'DEFAULT_BATCH_SIZE = {"cpu": 64, "cuda": 64}',
      [T_PRED, "-k", "batches_16"],
      "the CPU gets the GPU's batch of 64, measured a third slower there"),
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
    output: str = ""  # pytest's output


FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.M)


def run_one(mu: Mutant, repo: Path, env: dict[str, str], timeout: float, extra: tuple[str, ...] = ()) -> Result:
    """Apply the mutant to the copy, run its tests, restore the file. A mutant without a file is a baseline
    run: the tests on the unchanged copy, which must pass."""
    path = repo / mu.file
    original = path.read_text(encoding="utf-8") if mu.file else None
    if original is not None:
        path.write_text(original.replace(mu.old, mu.new, 1), encoding="utf-8")
    started = time.perf_counter()
    try:
        cmd = [sys.executable, "-m", "pytest", *mu.tests, "-x", "-q", "-p", "no:cacheprovider", "-rfE", *extra]
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
        return Result(mu, "SURVIVED", "", seconds, output)
    if proc.returncode == 1:
        failed = FAILED.findall(output)
        return Result(mu, "caught", failed[0] if failed else "(a failing test)", seconds, output)
    last = [line for line in output.strip().split("\n") if line.strip()][-3:]
    return Result(mu, "ERROR", f"pytest exit {proc.returncode}: " + " | ".join(last), seconds, output)


# ---- --show: one bug, explained ---------------------------------------------------------------------------


def bug_lines(mu: Mutant, text: str) -> tuple[int, list[str], list[str]]:
    """Where a mutant sits in the unchanged `text` of its file: the first line's number, the whole lines its
    original text touches, and the same lines with the bug in."""
    at = text.index(mu.old)
    start = text.rfind("\n", 0, at) + 1  # the start of the first touched line
    after = at + len(mu.old)
    end = after if mu.old.endswith("\n") else (text.find("\n", after) % (len(text) + 1))
    original = text[start:end].rstrip("\n").split("\n")
    mutated = (text[start:at] + mu.new + text[after:end]).rstrip("\n").split("\n")
    return text.count("\n", 0, at) + 1, original, mutated


SIZE = re.compile(r"^E\s+(Mismatched elements:.*|Greatest (?:absolute|relative) difference:.*)$", re.M)


def explain(mu: Mutant, r: Result, text: str) -> str:
    """What --show prints for one mutant: where the bug is, the test that failed, its failing assertion
    (pytest's `E` lines) and the size of the difference."""
    line, original, mutated = bug_lines(mu, text)
    out = [f"mutant {mu.name}: {mu.why}", f"where: {mu.file}:{line}"]
    out += [f"  original | {l}" for l in original] + [f"  mutated  | {l}" for l in mutated]
    if r.status != "caught":
        out.append(f"result: {r.status} {r.caught_by}".rstrip() + f" (pytest {shlex.join(mu.tests)})")
        return "\n".join(out)
    out.append(f"caught by: {r.caught_by}")
    errors = [l for l in r.output.split("\n") if l.startswith("E ") and not SIZE.match(l)]  # the sizes come below
    while errors and not errors[-1][1:].strip():
        errors.pop()
    out.append("the failing assertion:")
    out += ["  " + l for l in errors[:25]] + (["  ... (more E lines in pytest's output)"] if len(errors) > 25 else [])
    sizes = SIZE.findall(r.output)
    out.append("size of the difference:")
    out += ["  " + s.strip() for s in sizes] or ["  the values compared are in the assertion above"]
    return "\n".join(out)


def show(mutants: list[Mutant], timeout: float) -> int:
    """Apply each mutant to a temporary copy, run its tests, and explain the failure (0: all were caught)."""
    with tempfile.TemporaryDirectory(prefix="minibert-mutation-") as tmp:
        repo = make_copy(Path(tmp) / "w0")
        env = environment(repo)
        check_imports_copy(repo, env)
        bad = 0
        for mu in mutants:
            print(f"running pytest {shlex.join(mu.tests)} -x on a copy with the bug ...", flush=True)
            r = run_one(mu, repo, env, timeout, extra=("--tb=short",))
            print(explain(mu, r, (ROOT / mu.file).read_text(encoding="utf-8")) + "\n", flush=True)
            bad += r.status != "caught"
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Exit status 1: a mutant survived, its tests erred, or the list is stale.")
    p.add_argument("--list", action="store_true", help="list the mutants and the tests each one runs, then exit")
    p.add_argument("--only", action="append", metavar="NAME", help="run only this mutant (repeatable)")
    p.add_argument("--jobs", type=int, default=2, help="mutants tested at the same time (default: 2)")
    p.add_argument("--baseline", action="store_true",
                   help="first run each distinct test selection on the unchanged code: all must pass, or 'caught' means nothing")
    p.add_argument("--timeout", type=float, default=900, help="seconds allowed for one mutant's tests (default: 900)")
    p.add_argument("--show", action="store_true",
                   help="with --only: print where each bug sits (file:line, original and mutated lines), the test "
                        "that catches it, its failing assertion and the size of the difference")
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
    if args.show and not args.only:
        print("mutation: --show explains the mutants named by --only; add --only NAME (see --list)", file=sys.stderr)
        return 2
    if args.list:
        for mu in mutants:
            print(f"{mu.name:36} {mu.file:24} {mu.why}\n{'':36} pytest {shlex.join(mu.tests)}")
        return 0

    problems = check_texts(mutants)
    if problems:
        print("mutation: the list is stale (update MUTANTS in tests/mutation.py):", *problems, sep="\n  ", file=sys.stderr)
        return 1
    if args.show:
        return show(mutants, args.timeout)

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
