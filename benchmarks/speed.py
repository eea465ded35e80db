"""Training-step and inference speed of minibert and transformers, same config, same inputs, same precision.

Each variant gets identical weights, token ids and attention mask; time is the median of CUDA-event-timed
steps after warm-up (compilation happens during warm-up and is reported separately). Each row also says which
attention kernel ran and whether anything recompiled while it was timed; `ratios` refuses a compiled baseline
that is slower than its own eager form, and `profile_step` lists the compiled step's top kernels with its MFU."""

from __future__ import annotations

import gc
import statistics
import time

import torch

import minibert
from minibert.checkpoint import load_state_dict
from minibert.optim import AdamW, param_groups

# Dense bf16 peak of the tensor cores (datasheet, SXM parts): the denominator of model FLOP utilisation.
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def peak_flops(device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def model_flops(cfg: minibert.BertConfig, B: int, T: int, train: bool) -> float:
    """Matrix-multiply FLOPs of one forward (x3 for forward + backward): 2 per weight per token, plus the
    attention products Q K^T and P V (2 * T * T * H each, per layer and sequence)."""
    H, I, L = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    per_token = 2 * (L * (4 * H * H + 2 * H * I) + H * H + H * cfg.num_labels)
    attention = L * B * 4 * T * T * H
    forward = per_token * B * T + attention
    return 3 * forward if train else forward


def _time(fn, warmup: int, iters: int, device) -> tuple[float, float]:
    """(median seconds per call, seconds spent in warm-up)."""
    t0 = time.perf_counter()
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    warm = time.perf_counter() - t0
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return statistics.median(times), warm


def build(impl: str, cfg: minibert.BertConfig, device, reference_state: dict):
    """A sequence classifier of `impl` ("minibert" or "transformers") holding the reference weights."""
    if impl == "transformers":
        import transformers

        model = transformers.BertForSequenceClassification(
            transformers.BertConfig(**cfg.to_dict(), attn_implementation="sdpa")
        )
        model.load_state_dict(reference_state)
    else:
        model = minibert.BertForSequenceClassification(cfg)
        load_state_dict(model, reference_state)
    return model.to(device)


def make_optimizer(impl: str, model, compiled: bool, lr: float = 2e-5, wd: float = 0.01):
    if impl == "transformers":
        fused = next(model.parameters()).is_cuda
        return torch.optim.AdamW(param_groups(model, wd), lr=lr, fused=fused)  # what the HF Trainer uses on GPU
    return AdamW(param_groups(model, wd), lr=lr, compile=compiled)


# Which kernel computed attention: the aten operator names SDPA dispatches to, in the profiler's events.
SDPA_KERNELS = {"flash": "SDPA flash", "efficient": "SDPA memory-efficient", "cudnn": "SDPA cuDNN", "math": "SDPA math"}


def attention_kernel(fn, device) -> str:
    """Run fn once under torch.profiler and name the attention kernel(s) it used."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        fn()
    names = {e.key for e in prof.key_averages()}
    sdpa = [n for n in names if "scaled_dot_product" in n]
    found = sorted({label for n in sdpa for key, label in SDPA_KERNELS.items() if key in n})
    if found:
        return " + ".join(found)
    if any("softmax" in n for n in names):
        return "eager (matmul + softmax)"
    return "no SDPA call (written-out attention, fused by the compiler)"


def graph_breaks(impl: str, train: bool = True) -> dict:
    """torch._dynamo.explain on a tiny model on the CPU, called as the benchmark calls it (all-ones attention
    mask, labels): how many graphs torch.compile makes of one step, and why it breaks between them."""
    cfg = minibert.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    import transformers

    torch.manual_seed(0)
    state = transformers.BertForSequenceClassification(transformers.BertConfig(**cfg.to_dict())).state_dict()
    model = build(impl, cfg, torch.device("cpu"), state).train(train)
    ids = torch.randint(1000, cfg.vocab_size, (2, 16))
    torch._dynamo.reset()
    e = torch._dynamo.explain(model)(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.tensor([0, 1]))
    torch._dynamo.reset()
    return {"graphs": e.graph_count, "graph_breaks": e.graph_break_count, "reasons": [str(b.reason)[:300] for b in e.break_reasons]}


def _compile_count() -> int:
    """Graphs torch.compile has compiled so far in this process (a rise during timing = a recompile)."""
    return int(torch._dynamo.utils.counters["stats"]["unique_graphs"])


def step_benchmark(
    variants: list[str], cfg: minibert.BertConfig, B: int, T: int, device, train: bool, warmup: int = 5, iters: int = 20,
    precision="bf16", backend: str = "inductor",
) -> list[dict]:
    """Time one training step (forward, backward, clip-free AdamW step) or one inference forward per variant.

    A variant is "<impl>" or "<impl>+compile" with impl in {minibert, transformers}. Every variant gets the same
    weights, the same token ids and the same all-ones attention mask (the mask a data collator passes);
    "+compile" is a plain torch.compile(model) (`backend` only changes for CPU dry runs). Each row names the
    attention kernel the variant ran and counts the graphs compiled during warm-up and during timing."""
    import transformers

    torch.manual_seed(0)
    reference = transformers.BertForSequenceClassification(transformers.BertConfig(**cfg.to_dict())).state_dict()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, cfg.vocab_size, (B, T), generator=g).to(device)
    mask = torch.ones_like(ids)
    labels = torch.randint(0, cfg.num_labels, (B,), generator=g).to(device)
    flops = model_flops(cfg, B, T, train)
    peak = peak_flops(device)
    rows = []
    for variant in variants:
        impl, _, mode = variant.partition("+")
        model = build(impl, cfg, device, reference)
        model.train(train)
        torch._dynamo.reset()
        forward = torch.compile(model, backend=backend) if mode == "compile" else model
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
        if train:
            opt = make_optimizer(impl, model, compiled=mode == "compile")

            def fn():
                with autocast:
                    loss = forward(input_ids=ids, attention_mask=mask, labels=labels).loss
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
        else:

            @torch.inference_mode()
            def fn():
                with autocast:
                    forward(input_ids=ids, attention_mask=mask).logits

        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
        try:
            before = _compile_count()
            seconds, warm = _time(fn, warmup, iters, device)
            warm_graphs = _compile_count() - before
            timed_graphs = _compile_count() - before - warm_graphs
            kernel = attention_kernel(fn, device)
        except Exception as e:  # a failing variant is reported, not fatal for the others
            rows.append({"variant": variant, "error": f"{type(e).__name__}: {e}"[:500]})
            continue
        finally:
            del forward
        row = {
            "variant": variant,
            "ms": 1e3 * seconds,
            "tokens_per_s": B * T / seconds,
            "tflops": flops / seconds / 1e12,
            "mfu": flops / seconds / peak if peak else None,
            "warmup_s": warm,
            "peak_mem_gb": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
            "attention": kernel,
            "graphs_compiled_in_warmup": warm_graphs,
            "recompiles_while_timed": timed_graphs,
        }
        rows.append(row)
        del model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def ratios(rows: list[dict]) -> dict:
    """Each variant's speed relative to transformers, the baseline being its compiled form only when that is
    at least as fast as its eager form. A compiled baseline slower than eager is a broken baseline (the
    doubt about an earlier 1.50x); the ratio is then refused against it and taken against eager instead."""
    ms = {r["variant"]: r["ms"] for r in rows if "ms" in r}
    eager, compiled = ms.get("transformers"), ms.get("transformers+compile")
    note = None
    if compiled is not None and eager is not None and compiled > eager:
        base = "transformers"
        note = (f"compiled transformers ({compiled:.2f} ms) is slower than eager transformers ({eager:.2f} ms): "
                f"no ratio is reported against it; ratios are against eager transformers")
    elif compiled is not None:
        base = "transformers+compile" if eager is not None else None
        if base is None:
            note = "transformers+compile ran without its eager form in the same run: no ratio (cannot check the baseline)"
    else:
        base = "transformers" if eager is not None else None
    return {"baseline": base, "ratio": {v: ms[base] / t for v, t in ms.items()} if base else {}, "note": note}


def profile_step(cfg: minibert.BertConfig, B: int, T: int, device, steps: int = 3, top: int = 15, backend: str = "inductor") -> dict:
    """torch.profiler over a few compiled minibert training steps (bf16 autocast, all-ones mask): the kernels
    that take the most device time, and the step's model FLOP utilisation."""
    torch.manual_seed(0)
    model = minibert.BertForSequenceClassification(cfg).to(device).train()
    forward = torch.compile(model, backend=backend)
    opt = make_optimizer("minibert", model, compiled=True)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, cfg.vocab_size, (B, T), generator=g).to(device)
    mask, labels = torch.ones_like(ids), torch.randint(0, cfg.num_labels, (B,), generator=g).to(device)

    def fn():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = forward(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    seconds, _ = _time(fn, warmup=3, iters=max(steps, 3), device=device)
    activities = [torch.profiler.ProfilerActivity.CPU]
    cuda = device.type == "cuda"
    if cuda:
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(steps):
            fn()
        if cuda:
            torch.cuda.synchronize()
    # Self times do not overlap, so the shares add up: GPU kernels on a GPU, operators' own CPU time on a CPU.
    key = (lambda e: e.self_device_time_total) if cuda else (lambda e: e.self_cpu_time_total)
    events = [e for e in prof.key_averages() if key(e) > 0 and (e.device_type.name == "CUDA" or not cuda)]
    total = sum(key(e) for e in events) or 1.0
    rows = [{"kernel": e.key[:120], "ms_per_step": key(e) / 1e3 / steps, "share": key(e) / total, "calls_per_step": e.count / steps}
            for e in sorted(events, key=key, reverse=True)[:top]]
    flops = model_flops(cfg, B, T, train=True)
    peak = peak_flops(device)
    return {"ms": 1e3 * seconds, "tflops": flops / seconds / 1e12, "mfu": flops / seconds / peak if peak else None,
            "device_ms_per_step": total / 1e3 / steps, "top_kernels": rows, "attention": attention_kernel(fn, device)}


def cpu_inference(model_dir: str, B: int = 32, T: int = 512, iters: int = 10, threads: int | None = None) -> list[dict]:
    """Real MiniLM weights on the CPU, fp32: minibert.BertModel against transformers.BertModel (sdpa).
    The two alternate call by call, so that drifts in the machine's load hit both alike."""
    import transformers

    if threads:
        torch.set_num_threads(threads)
    ids = torch.randint(1000, 30522, (B, T), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    models = {
        "transformers": transformers.BertModel.from_pretrained(model_dir, attn_implementation="sdpa", dtype=torch.float32).eval(),
        "minibert": minibert.BertModel.from_pretrained(model_dir).eval(),
    }
    times = {name: [] for name in models}
    outputs = {}
    with torch.inference_mode():
        for i in range(iters + 1):
            for name, model in models.items():
                t = time.perf_counter()
                outputs[name] = model(input_ids=ids, attention_mask=mask).last_hidden_state
                if i:  # the first round is warm-up
                    times[name].append(time.perf_counter() - t)
    torch.testing.assert_close(outputs["minibert"], outputs["transformers"], atol=1e-4, rtol=1e-4)
    return [
        {"variant": name, "ms": 1e3 * statistics.median(ts), "tokens_per_s": B * T / statistics.median(ts),
         "threads": torch.get_num_threads(), "iters": iters}
        for name, ts in times.items()
    ]


def alternate(fns: dict, iters: int) -> dict[str, float]:
    """Median seconds per call of each function, calling them in turn (after one warm-up round), so that drifts
    in the machine's load hit all of them alike."""
    times = {name: [] for name in fns}
    for i in range(iters + 1):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            if i:  # the first round is warm-up
                times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def classifier_twins(model_dir: str, num_labels: int = 2) -> dict:
    """transformers' and minibert's BertForSequenceClassification (sdpa attention) holding the same weights: the
    pretrained encoder of model_dir and one classifier layer (random, seeded), float32, on the CPU."""
    import transformers

    torch.manual_seed(0)
    hf = transformers.BertForSequenceClassification.from_pretrained(model_dir, num_labels=num_labels, attn_implementation="sdpa",
                                                                     dtype=torch.float32)
    mb = minibert.BertForSequenceClassification.from_pretrained(model_dir, num_labels=num_labels)
    load_state_dict(mb, hf.state_dict())
    return {"transformers": hf, "minibert": mb}


def cpu_forward(model_dir: str, B: int = 32, T: int = 512, iters: int = 10) -> list[dict]:
    """The sequence classifier's forward on the CPU (what prediction runs), minibert against transformers, same
    weights and inputs, all-ones mask, in fp32, under bf16 autocast, and with the weights cast to bf16 once.
    Calls alternate between the two libraries; each row is a median. The logits are checked against each other."""
    import copy

    ids = torch.randint(1000, 30000, (B, T), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    fp32 = {name: m.eval() for name, m in classifier_twins(model_dir).items()}
    cast = {name: copy.deepcopy(m).to(torch.bfloat16) for name, m in fp32.items()}
    rows = []
    for precision, models, autocast in (("fp32", fp32, False), ("bf16 autocast", fp32, True), ("bf16, weights cast once", cast, False)):
        logits = {}

        def call(name, models=models, autocast=autocast):
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                logits[name] = models[name](input_ids=ids, attention_mask=mask).logits.float()

        seconds = alternate({name: (lambda name=name: call(name)) for name in models}, iters)
        tol = 1e-4 if precision == "fp32" else 0.1  # bf16 keeps about 3 significant digits
        torch.testing.assert_close(logits["minibert"], logits["transformers"], atol=tol, rtol=tol)
        for name, s in seconds.items():
            rows.append({"precision": precision, "variant": name, "ms": 1e3 * s, "tokens_per_s": B * T / s,
                         "minibert_speedup": seconds["transformers"] / seconds["minibert"] if name == "minibert" else None})
    return rows


def cpu_train_step(model_dir: str, B: int = 16, T: int = 256, iters: int = 5) -> list[dict]:
    """One fine-tuning step (forward, backward, AdamW) of the sequence classifier on the CPU, minibert (its own AdamW)
    against transformers (torch.optim.AdamW), same weights and batch, in fp32 and under bf16 autocast; calls alternate
    between the two libraries, medians."""
    ids = torch.randint(1000, 30000, (B, T), generator=torch.Generator().manual_seed(0))
    mask, labels = torch.ones_like(ids), torch.randint(0, 2, (B,), generator=torch.Generator().manual_seed(1))
    rows = []
    for precision in ("fp32", "bf16"):
        models = {name: m.train() for name, m in classifier_twins(model_dir).items()}
        optimizers = {name: make_optimizer(name, m, compiled=False) for name, m in models.items()}

        def step(name, precision=precision, models=models, optimizers=optimizers):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss = models[name](input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            optimizers[name].step()
            optimizers[name].zero_grad(set_to_none=True)

        seconds = alternate({name: (lambda name=name: step(name)) for name in models}, iters)
        for name, s in seconds.items():
            rows.append({"precision": precision if precision == "fp32" else "bf16 autocast", "variant": name, "ms": 1e3 * s,
                         "tokens_per_s": B * T / s,
                         "minibert_speedup": seconds["transformers"] / seconds["minibert"] if name == "minibert" else None})
    return rows


def cpu_operator_profile(model_dir: str, B: int = 8, T: int = 256, top: int = 12) -> dict:
    """torch.profiler over one bf16 call of each library, side by side: the forward under autocast, with the weights
    cast once, and a fine-tuning step under autocast (forward + backward). For each, the operators that take the
    most CPU time in either library, with their call counts and self times (the counts do not depend on the
    machine's load, the times do)."""
    import copy

    ids = torch.randint(1000, 30000, (B, T), generator=torch.Generator().manual_seed(0))
    mask, labels = torch.ones_like(ids), torch.randint(0, 2, (B,), generator=torch.Generator().manual_seed(1))
    models = classifier_twins(model_dir)
    cast = {name: copy.deepcopy(m).to(torch.bfloat16).eval() for name, m in models.items()}

    def forward(m, autocast):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            m.eval()(input_ids=ids, attention_mask=mask)

    def train(m):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = m.train()(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        m.zero_grad(set_to_none=True)

    cases = {"forward, bf16 autocast": lambda name: forward(models[name], True),
             "forward, bf16 weights cast once": lambda name: forward(cast[name], False),
             "fine-tuning step, bf16 autocast": lambda name: train(models[name])}
    out = {"config": f"sequence classifier, batch {B} x {T}, all-ones mask"}
    for case, fn in cases.items():
        ops = {}
        for name in ("transformers", "minibert"):
            fn(name)  # warm-up
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                fn(name)
            ops[name] = {e.key: (e.count, e.self_cpu_time_total / 1e3) for e in prof.key_averages() if e.key.startswith("aten::")}
        shown = sorted(set(ops["transformers"]) | set(ops["minibert"]),
                       key=lambda k: -max(ops[n].get(k, (0, 0.0))[1] for n in ops))[:top]
        out[case] = [{"operator": k, **{f"{n}_calls": ops[n].get(k, (0, 0.0))[0] for n in ops},
                      **{f"{n}_self_ms": ops[n].get(k, (0, 0.0))[1] for n in ops}} for k in shown]
    return out
