"""Training-step and inference speed of minibert and transformers, same config, same inputs, same precision.

Each variant gets identical weights and identical token ids; time is the median of CUDA-event-timed steps
after warm-up (compilation happens during warm-up and is reported separately)."""

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


def step_benchmark(
    variants: list[str], cfg: minibert.BertConfig, B: int, T: int, device, train: bool, warmup: int = 5, iters: int = 20, precision="bf16"
) -> list[dict]:
    """Time one training step (forward, backward, clip-free AdamW step) or one inference forward per variant.

    A variant is "<impl>" or "<impl>+compile" with impl in {minibert, transformers}."""
    import transformers

    torch.manual_seed(0)
    reference = transformers.BertForSequenceClassification(transformers.BertConfig(**cfg.to_dict())).state_dict()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, cfg.vocab_size, (B, T), generator=g).to(device)
    labels = torch.randint(0, cfg.num_labels, (B,), generator=g).to(device)
    flops = model_flops(cfg, B, T, train)
    peak = peak_flops(device)
    rows = []
    for variant in variants:
        impl, _, mode = variant.partition("+")
        model = build(impl, cfg, device, reference)
        model.train(train)
        forward = torch.compile(model) if mode == "compile" else model
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
        if train:
            opt = make_optimizer(impl, model, compiled=mode == "compile")

            def fn():
                with autocast:
                    loss = forward(input_ids=ids, labels=labels).loss
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
        else:

            @torch.inference_mode()
            def fn():
                with autocast:
                    forward(input_ids=ids).logits

        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
        try:
            seconds, warm = _time(fn, warmup, iters, device)
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
        }
        rows.append(row)
        del model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


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
