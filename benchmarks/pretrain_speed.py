"""The pre-training step on the CPU: minibert against transformers' BertForPreTraining trained the way its users
train it, side by side in one run, same weights, same batch, same precision (fp32, then bf16 autocast).

    minibert       PretrainingLoss: the MLM head (transform + (H, V) decoder) only at the ~15% chosen positions,
                   minibert's AdamW, gradient clipping at 1.0
    transformers   BertForPreTraining(labels=(B, T) with -100 outside the chosen positions, next_sentence_label):
                   logits at every position, as DataCollatorForLanguageModeling feeds it; torch.optim.AdamW,
                   clip_grad_norm_ at 1.0

Both see the very same masked batch, built from the training reviews by minibert/pretraining_data.py. Each row
gives tokens/s (B x T per second) and the achieved GFLOP/s of the arithmetic the step needs (minibert's count:
transformers computes more, the decoder at every position), beside an estimate of the CPU's peak. A profile of
minibert's step (torch.profiler) lists where its time goes.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import torch

import minibert
from minibert.checkpoint import load_state_dict
from minibert.optim import AdamW, LinearWarmupDecay, param_groups
from minibert.pretrain import PretrainingLoss
from minibert.pretraining_data import Masker, build_examples, load_corpus, pretraining_batch, tokenize_documents
from minibert.training import autocast, optimizer_step

from .speed import _time

VOCAB = Path(__file__).resolve().parents[1] / "vocab" / "movie-reviews-wordpiece.txt"


def cpu_peak_flops() -> dict:
    """Peak FLOP/s of this CPU, estimated as cores x clock x FLOPs per cycle per core for its widest units:

        fp32: AVX-512 with FMA: 2 FMA units x 16 lanes x 2 (multiply + add) = 64 FLOP/cycle; AVX2 with FMA: 32
        bf16: AMX (amx_bf16): one tile product, 16 x 16 x 32 multiply-adds (16,384 FLOPs), per 16 cycles
              = 1024 FLOP/cycle; else AVX512_BF16 (vdpbf16ps: 32 bf16 pairs per FMA unit) = 128; else the fp32 peak

    The clock is the nominal one of /proc/cpuinfo ("cpu MHz"), the cores those Linux shows (os.cpu_count(): on a
    VM they may be hyperthreads of fewer physical cores). An estimate, said to be one: turbo clocks, AVX-512
    down-clocking and a single FMA unit on some parts move it either way."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = set(re.search(r"^flags\s*:(.*)$", text, re.M).group(1).split()) if "flags" in text else set()
    mhz = re.search(r"^cpu MHz\s*:\s*([\d.]+)", text, re.M)
    name = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    cores, ghz = os.cpu_count() or 1, float(mhz.group(1)) / 1e3 if mhz else None
    fp32 = 64 if "avx512f" in flags and "fma" in flags else 32 if "avx2" in flags and "fma" in flags else 8
    bf16 = 1024 if "amx_bf16" in flags else 128 if "avx512_bf16" in flags else fp32
    isa = {"fp32": "AVX-512 FMA" if fp32 == 64 else "AVX2 FMA" if fp32 == 32 else "SSE",
           "bf16": "AMX" if bf16 == 1024 else "AVX512_BF16" if bf16 == 128 else "none (fp32 units)"}
    peak = {p: cores * ghz * 1e9 * per_cycle if ghz else None for p, per_cycle in (("fp32", fp32), ("bf16", bf16))}
    return {"cpu": name.group(1).strip() if name else "unknown", "cores": cores, "ghz": ghz, "isa": isa,
            "flop_per_cycle": {"fp32": fp32, "bf16": bf16}, "peak_flops": peak,
            "how": "cores x nominal clock x FLOPs per cycle per core of the widest units (see cpu_peak_flops)"}


def pretraining_flops(cfg: minibert.BertConfig, B: int, T: int, P: int) -> float:
    """Matrix-multiply FLOPs of one training step (x3: forward + backward) of minibert's pre-training loss:
    the encoder for every token, the attention products, the MLM head at the P chosen positions per sequence,
    the pooler and NSP. transformers' step does more: the MLM head at all T positions."""
    H, I, L, V = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers, cfg.vocab_size
    encoder = 2 * L * (4 * H * H + 2 * H * I) * B * T + L * B * 4 * T * T * H
    heads = 2 * (H * H + H * V) * B * P + 2 * (H * H + 2 * H) * B
    return 3 * (encoder + heads)


def real_batch(B: int, T: int, documents: int | None, tokenizer: minibert.BertTokenizer) -> dict:
    """B masked sentence pairs from the training reviews (the first `documents` of them; None: all)."""
    texts = load_corpus()[:documents] if documents else load_corpus()
    docs = tokenize_documents(texts, tokenizer)
    P = round(0.15 * T) + 1
    masker = Masker.from_tokenizer(tokenizer, 0.15, P)
    examples = build_examples(docs, masker, tokenizer.cls_token_id, tokenizer.sep_token_id, T, random.Random(0), 0.0)
    if len(examples) < B:
        raise ValueError(f"only {len(examples)} examples from {documents} documents, fewer than the batch {B}")
    return pretraining_batch(examples[:B], T, P, tokenizer.pad_token_id)


def step_functions(cfg: minibert.BertConfig, batch: dict, precision: str) -> dict:
    """{variant: a function doing one full training step}, both models starting from the same weights."""
    import transformers

    torch.manual_seed(0)
    # transformers' default attention (sdpa), as its users get it; the weights are copied into minibert
    hf = transformers.BertForPreTraining(transformers.BertConfig(**cfg.to_dict(), attn_implementation="sdpa")).train()
    mb = minibert.BertForPreTraining(cfg).train()
    report = load_state_dict(mb, hf.state_dict())
    assert not report.missing and not report.initialized, report
    cpu = torch.device("cpu")
    loss_fn = PretrainingLoss(mb)
    mb_opt = AdamW(param_groups(mb, 0.01), lr=1e-4)
    schedule = LinearWarmupDecay(mb_opt, warmup_steps=0, total_steps=10_000)
    hf_opt = torch.optim.AdamW(hf.parameters(), lr=1e-4, weight_decay=0.01)
    mb_inputs = {k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask", "mlm_positions", "mlm_labels", "next_sentence_label")}
    hf_inputs = {k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask", "labels", "next_sentence_label")}

    def minibert_step():
        with autocast(cpu, precision):
            mlm, nsp = loss_fn(**mb_inputs)
        (mlm + nsp).backward()
        optimizer_step(mb, mb_opt, schedule, 1.0)

    def transformers_step():
        with autocast(cpu, precision):
            loss = hf(**hf_inputs).loss  # (B, T, V) prediction logits inside
        loss.backward()
        torch.nn.utils.clip_grad_norm_(hf.parameters(), 1.0)
        hf_opt.step()
        hf_opt.zero_grad(set_to_none=True)

    return {"minibert": minibert_step, "transformers": transformers_step}


def profile(fn, steps: int = 3, top: int = 12) -> list[dict]:
    """torch.profiler over `steps` calls: the operators with the most self CPU time and their share."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            fn()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return [{"op": e.key, "share": e.self_cpu_time_total / total, "calls": e.count // steps} for e in events[:top]]


def cpu_pretrain(config: dict, B: int, T: int, warmup: int, iters: int, documents: int | None = None) -> dict:
    """Both steps at fp32 and at bf16 autocast, one process, one machine; ratios and the profile of minibert's."""
    tokenizer = minibert.BertTokenizer(str(VOCAB))
    cfg = minibert.BertConfig(vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.pad_token_id, **config)
    batch = real_batch(B, T, documents, tokenizer)
    P = batch["mlm_positions"].shape[1]
    peak = cpu_peak_flops()
    flops = pretraining_flops(cfg, B, T, P)
    rows, ratio = [], {}
    for precision in ("fp32", "bf16"):
        steps = step_functions(cfg, batch, precision)
        for variant, fn in steps.items():
            seconds, _ = _time(fn, warmup, iters, torch.device("cpu"))
            rows.append({"variant": variant, "precision": precision, "ms": 1e3 * seconds, "tokens_per_s": B * T / seconds,
                         "gflop_per_s": flops / seconds / 1e9,
                         "share_of_peak": flops / seconds / peak["peak_flops"][precision] if peak["peak_flops"][precision] else None})
        mine, theirs = (next(r for r in rows if r["variant"] == v and r["precision"] == precision) for v in ("minibert", "transformers"))
        ratio[precision] = theirs["ms"] / mine["ms"]  # > 1: minibert is faster
    return {"config": f"H={cfg.hidden_size}, {cfg.num_hidden_layers} layers, {cfg.num_attention_heads} heads, "
                      f"vocab {cfg.vocab_size}, batch {B} x {T}, {P} predictions per sequence, torch threads {torch.get_num_threads()}",
            "rows": rows, "ratio_vs_transformers": ratio, "goal": 1.5, "step_gflop": flops / 1e9, "peak": peak,
            "profile_minibert_fp32": profile(step_functions(cfg, batch, "fp32")["minibert"])}
