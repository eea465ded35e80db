"""The optimiser minibert fine-tunes and pre-trains with, written out: AdamW as PyTorch defines it
(`torch.optim.AdamW`: Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization", with bias
correction and the decay scaled by the learning rate), a linear warmup / linear decay learning-rate
schedule, and gradient-norm clipping. These are PyTorch's and transformers' conventions, not exactly
google-research/bert's `optimization.py` (no bias correction there, eps 1e-6, a warmup whose first step has
lr 0): docs/WALKTHROUGH.md, the box at the end of section 17, lists the differences.

One AdamW step for a parameter p with gradient g, at step t (from 1):

    p <- p - lr * wd * p                     decoupled decay: shrinks the weight, not part of the gradient
    m <- b1 * m + (1 - b1) * g               running mean of gradients
    v <- b2 * v + (1 - b2) * g^2             running mean of squared gradients
    p <- p - lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)
                                             the bias corrections undo m and v's start at zero

The update runs on all parameters at once with `torch._foreach_*` (one multi-tensor kernel per line instead
of one small kernel per parameter), and matches `torch.optim.AdamW` to float32 rounding.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float, layer_decay: float = 1.0) -> list[dict]:
    """Decay the matrices; not biases, LayerNorm parameters or other vectors (decaying a LayerNorm gain
    toward 0 would fight the normalisation rather than regularise).

    layer_decay < 1: layer-wise learning-rate decay (Sun et al. 2019, "How to Fine-Tune BERT for Text
    Classification?"; ELECTRA, Clark et al. 2020). The lower a layer, the more general what it holds, the
    less it should move: with L encoder layers numbered 1 (bottom) to L (top),

        lr_scale(embeddings) = layer_decay ** L
        lr_scale(layer i)    = layer_decay ** (L - i)
        lr_scale(pooler, task head) = 1

    e.g. L = 6, layer_decay = 0.8: embeddings 0.26, layer 1 0.33, ..., layer 5 0.8, layer 6 1, head 1.
    Each group carries its `lr_scale`; AdamW multiplies the learning rate by it (and so does the schedule).
    Groups come top first, so groups[0] (whose lr the loops log) learns at the full rate.
    """
    L = getattr(getattr(model, "config", None), "num_hidden_layers", 0)
    groups: dict[tuple[int, bool], list] = {}  # (depth from the top, decayed?) -> parameters
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        layer = re.search(r"\.layers\.(\d+)\.", name)  # "bert.encoder.layers.0.attn..." is layer i = 1
        if layer_decay == 1 or not (layer or "embeddings." in name):
            depth = 0  # pooler and task heads (or no decay at all)
        elif layer:
            depth = L - (int(layer.group(1)) + 1)
        else:
            depth = L  # the embeddings, below layer 1
        groups.setdefault((depth, p.ndim >= 2), []).append(p)
    if layer_decay == 1:  # two groups, as without layer decay
        return [{"params": groups.get((0, True), []), "weight_decay": weight_decay},
                {"params": groups.get((0, False), []), "weight_decay": 0.0}]
    return [
        {"params": params, "weight_decay": weight_decay if decayed else 0.0, "lr_scale": layer_decay**depth}
        for (depth, decayed), params in sorted(groups.items(), key=lambda kv: (kv[0][0], not kv[0][1]))
    ]


class AdamW:
    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float = 2e-5,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        compile: bool = False,
    ):
        if not lr >= 0 or not eps >= 0 or not weight_decay >= 0:
            raise ValueError(f"lr, eps and weight_decay must be >= 0 (got {lr}, {eps}, {weight_decay})")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        params = list(params)
        if params and not isinstance(params[0], dict):
            params = [{"params": params}]
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        self.param_groups = [{**defaults, **g, "params": list(g["params"])} for g in params]
        for g in self.param_groups:  # layer-wise lr decay (see param_groups): a group's lr is scaled once, here
            g["lr"] *= g.get("lr_scale", 1.0)
        self.step_count = 0  # a Python int: the bias correction needs no tensor, hence no device sync
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}
        # torch.compile fuses the per-tensor update below into a few kernels that read p, g, m, v once
        self._compiled_update = torch.compile(_update_per_tensor) if compile else None

    @torch.no_grad()
    def step(self) -> None:
        self.step_count += 1
        t = self.step_count
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
            b1, b2 = group["betas"]
            grads = [p.grad for p in params]
            for p in params:
                if p not in self.state:
                    self.state[p] = {"m": torch.zeros_like(p), "v": torch.zeros_like(p)}
            m = [self.state[p]["m"] for p in params]
            v = [self.state[p]["v"] for p in params]

            if self._compiled_update is not None:
                # the step's scalars travel as one tensor: as Python floats, each new lr would recompile
                h = [1.0 - lr * wd, 1.0 - b1, b2, 1.0 - b2, lr / (1.0 - b1**t), math.sqrt(1.0 - b2**t), eps]
                self._compiled_update(params, grads, m, v, torch.tensor(h, device=params[0].device))
                continue
            if wd:
                torch._foreach_mul_(params, 1.0 - lr * wd)  # p <- p - lr * wd * p
            torch._foreach_lerp_(m, grads, 1.0 - b1)  # m <- b1 m + (1 - b1) g
            torch._foreach_mul_(v, b2)
            torch._foreach_addcmul_(v, grads, grads, 1.0 - b2)  # v <- b2 v + (1 - b2) g^2
            denom = torch._foreach_sqrt(v)
            torch._foreach_div_(denom, math.sqrt(1.0 - b2**t))  # sqrt(v_hat)
            torch._foreach_add_(denom, eps)
            torch._foreach_addcdiv_(params, m, denom, -lr / (1.0 - b1**t))  # p -= lr m_hat / (sqrt(v_hat) + eps)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    def state_dict(self) -> dict:
        """Moments by parameter position (group by group), so a fresh optimizer over the same model can resume."""
        order = [p for g in self.param_groups for p in g["params"]]
        return {
            "step": self.step_count,
            "groups": [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups],
            "moments": {i: self.state[p] for i, p in enumerate(order) if p in self.state},
        }

    def load_state_dict(self, sd: dict) -> None:
        order = [p for g in self.param_groups for p in g["params"]]
        if len(sd["groups"]) != len(self.param_groups):
            raise ValueError(f"optimizer state has {len(sd['groups'])} parameter groups, this optimizer {len(self.param_groups)}")
        self.step_count = sd["step"]
        for group, saved in zip(self.param_groups, sd["groups"]):
            group.update({k: (tuple(v) if k == "betas" else v) for k, v in saved.items()})
        self.state = {}
        for i, moments in sd["moments"].items():
            p = order[int(i)]
            if moments["m"].shape != p.shape:
                raise ValueError(f"optimizer state for parameter {i} has shape {tuple(moments['m'].shape)}, the model {tuple(p.shape)}")
            self.state[p] = {k: t.to(device=p.device, dtype=p.dtype, copy=True) for k, t in moments.items()}


def _update_per_tensor(params, grads, ms, vs, h):
    """The same AdamW update, tensor by tensor: the form torch.compile turns into fused kernels.
    h = [1 - lr wd, 1 - b1, b2, 1 - b2, lr / (1 - b1^t), sqrt(1 - b2^t), eps]."""
    for p, g, m, v in zip(params, grads, ms, vs):
        p.mul_(h[0])
        m.lerp_(g, h[1])
        v.mul_(h[2]).add_(g * g * h[3])
        p.sub_(h[4] * m / (v.sqrt() / h[5] + h[6]))


class LinearWarmupDecay:
    """Linear warmup, then linear decay. With w = warmup_steps and N = total_steps, step t (0-based) uses

        peak * (t + 1) / (w + 1)        for t < w    (the first step: peak / (w + 1), never 0)
        peak * (N - t) / (N - w)        for t >= w   (the peak at t = w; the last step, N - 1: peak / (N - w))

    The rate would reach 0 at t = N, a step never taken. transformers' `get_linear_schedule_with_warmup`
    decays the same way but warms up with t / w, so its first step has lr 0; google-research/bert decays one
    line from step 0, so it never reaches the full peak after warmup. Call `step()` after each optimizer step."""

    def __init__(self, optimizer: AdamW, warmup_steps: int, total_steps: int):
        if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
            raise ValueError(f"need 0 <= warmup_steps ({warmup_steps}) <= total_steps ({total_steps}), total >= 1")
        self.optimizer = optimizer
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.peak = [g["lr"] for g in optimizer.param_groups]
        self.done = 0  # optimizer steps taken so far
        self._apply()

    def factor(self, step: int) -> float:
        """Multiplier of the peak lr for optimizer step number `step` (0-based): never 0 on the first step."""
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        return max(0.0, (self.total_steps - step) / max(1, self.total_steps - self.warmup_steps))

    def _apply(self) -> None:
        f = self.factor(self.done)
        for group, peak in zip(self.optimizer.param_groups, self.peak):
            group["lr"] = peak * f

    def step(self) -> None:
        self.done += 1
        self._apply()

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return {"done": self.done, "peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}

    def load_state_dict(self, sd: dict) -> None:
        self.done, self.peak = sd["done"], list(sd["peak"])
        self.warmup_steps, self.total_steps = sd["warmup_steps"], sd["total_steps"]
        self._apply()


@torch.no_grad()
def clip_grad_norm(params: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale all gradients together so that their global L2 norm is at most `max_norm`; return the norm
    before clipping. Stays on the device (no sync): the scale is min(1, max_norm / norm)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    scale = (max_norm / (norm + 1e-6)).clamp(max=1.0)
    torch._foreach_mul_(grads, scale)
    return norm
