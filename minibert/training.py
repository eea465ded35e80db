"""What the training loops (finetune.py, pretrain.py) share, as small named functions that each loop calls
where a reader sees it: device and precision, distributed setup, seeding, the resumable training checkpoint
(resume check, save), the optimizer step, the buffered loss log, Ctrl-C handling, and the plots.

There is deliberately no Trainer class and no callbacks: each loop stays written out in its own file."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .hub import atomic_write
from .optim import AdamW, LinearWarmupDecay, clip_grad_norm


class TrainingError(RuntimeError):
    """A run that cannot go on: a non-finite loss, an unreadable checkpoint, a mismatched resume."""


# ---- Device, precision, distribution --------------------------------------------------------------------


def pick_device(requested: str = "auto", training: bool = True, local_rank: int | None = None) -> torch.device:
    """The device a run uses: "auto" is the GPU when there is one. Under torchrun (`local_rank` given) each
    process takes its own GPU."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
    if device.type == "cuda" and local_rank is not None:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if device.type == "cpu" and training:
        print("warning: training on the CPU is slow (bert-base on movie_reviews: hours; on a GPU: minutes)", file=sys.stderr)
    return device


def choose_precision(device: torch.device, requested: str = "auto") -> str:
    """auto: bf16 autocast on a GPU; float32 on the CPU, where bf16 matrix multiplies are rarely faster."""
    if requested == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return requested


def autocast(device: torch.device, precision: str):
    """bf16 autocast keeps float32 master weights and optimizer state; matrix multiplies run in bf16."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp32":
        return contextlib.nullcontext()
    raise ValueError(f"precision must be 'bf16' or 'fp32', got {precision!r}")


@dataclass
class Dist:
    """This process's place in a torchrun job (rank 0 of 1 when run plainly)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device_type: str) -> "Dist":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
        return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))

    def barrier(self):
        if self.world > 1:
            torch.distributed.barrier()

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of a scalar over all processes (the loss of the global batch)."""
        if self.world == 1:
            return x
        x = x.detach().clone()
        torch.distributed.all_reduce(x)
        return x / self.world


# ---- Reproducibility ------------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def rng_state() -> dict:
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_as_tuple(state["python"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


# ---- The training checkpoint ----------------------------------------------------------------------------


def save_training_state(path: Path, **state) -> None:
    """Everything needed to continue exactly where a run stopped, written atomically: a crash while
    saving leaves the previous checkpoint intact."""
    with atomic_write(path) as tmp:
        torch.save(state, tmp)


def save_checkpoint(path: Path, model, optimizer: AdamW, schedule: LinearWarmupDecay, args, elapsed: float, **position) -> None:
    """The training checkpoint: weights, optimizer moments, schedule, random states, the run's arguments,
    its wall time so far, and where the loop stands (`position`: step, epoch, batch, history, ...)."""
    save_training_state(path, model=model.state_dict(), optimizer=optimizer.state_dict(), schedule=schedule.state_dict(),
                        rng=rng_state(), args=dataclasses.asdict(args), elapsed=elapsed, **position)


def load_training_state(path: Path) -> dict:
    try:
        # weights_only: tensors and plain Python values only; a checkpoint can never run code
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TrainingError(f"no training checkpoint at {path}; start without --resume") from None
    except Exception as e:
        raise TrainingError(
            f"the training checkpoint {path} is corrupted or truncated ({type(e).__name__}: {e}); "
            f"delete it to start over"
        ) from e


def check_resume(state: dict, args, keys: tuple[str, ...], path: Path, seed: int | None = None) -> None:
    """Refuse to continue a checkpoint written with other settings in `keys` (or another seed): the result
    would be neither the old run nor the new one."""
    changed = [k for k in keys if state["args"].get(k) != getattr(args, k)]
    if seed is not None and state.get("seed") != seed:
        changed.append("seed")
    if changed:
        raise TrainingError(f"--resume: {path} was written with different settings ({', '.join(changed)}); "
                            f"use the same arguments or another --output-dir")


def resume_from(path: Path, args, keys: tuple[str, ...], model, optimizer: AdamW, schedule: LinearWarmupDecay,
                seed: int | None = None) -> dict:
    """Load a training checkpoint into the model, optimizer, schedule and random generators; return the
    whole saved state (the loop reads its own position from it)."""
    state = load_training_state(path)
    check_resume(state, args, keys, path, seed)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    set_rng_state(state["rng"])
    return state


# ---- The optimizer step and the loss log ----------------------------------------------------------------


def optimizer_step(model, optimizer: AdamW, schedule: LinearWarmupDecay, max_grad_norm: float) -> None:
    """After loss.backward(): clip the global gradient norm (0: no clipping), update the weights, move the
    learning rate to the next step's, clear the gradients."""
    if max_grad_norm:
        clip_grad_norm(model.parameters(), max_grad_norm)
    optimizer.step()
    schedule.step()
    optimizer.zero_grad()


class LossLog:
    """The per-step losses, written into `history` once per log interval.

    A loss is a tensor on the device; reading its value waits for the device to finish all queued work
    (a host sync, which stalls a GPU). So the loop `add`s the tensors and reads them all at once in `flush`:
    one sync per log interval, not one per step. `flush` also stops the run at the first non-finite loss.
    """

    def __init__(self, history: dict, names: tuple[str, ...], every: int, checkpoint: Path | None = None):
        self.history, self.names, self.every, self.checkpoint = history, names, every, checkpoint
        self.pending: list[tuple[int, torch.Tensor, float]] = []  # (step, losses (n,), lr)
        self.examples, self.since = 0, time.perf_counter()

    def add(self, step: int, losses: list[torch.Tensor], lr: float, examples: int) -> None:
        self.pending.append((step, torch.stack([x.detach() for x in losses]), lr))
        self.examples += examples

    def due(self) -> bool:
        return len(self.pending) >= self.every

    def flush(self) -> dict[str, str]:
        """Write the pending steps into history; return the interval's means for the progress bar."""
        if not self.pending:
            return {}
        values = torch.stack([v for _, v, _ in self.pending]).float().cpu()  # (k, n): the one sync per interval
        check_finite(values.sum(-1), self.pending[-1][0], self.checkpoint)
        for (step, _, lr), row in zip(self.pending, values.tolist()):
            self.history["step"].append(step)
            for name, v in zip(self.names, row):
                self.history[name].append(v)
            self.history["lr"].append(lr)
        shown = {name: f"{values[:, j].mean():.4f}" for j, name in enumerate(self.names)}
        shown |= {"lr": f"{self.pending[-1][2]:.2e}", "ex_s": f"{self.examples / (time.perf_counter() - self.since):.0f}"}
        self.pending, self.examples, self.since = [], 0, time.perf_counter()
        return shown


def check_finite(losses: torch.Tensor, last_step: int, checkpoint: Path | None = None) -> None:
    """Stop on a NaN/inf among the losses of the steps up to `last_step` (one value or several)."""
    losses = losses.detach().float().reshape(-1).cpu()
    bad = (~torch.isfinite(losses)).nonzero()
    if not len(bad):
        return
    first = int(bad[0])
    step, value = last_step - len(losses) + 1 + first, losses[first].item()
    if step == 1:  # before any update: the learning rate cannot be the cause
        raise TrainingError(f"the loss was {value} at step 1, before any weight update: the model already computes "
                            f"non-finite values (check --model: are its weights finite?)")
    kept = (f"the last checkpoint, {checkpoint}, is intact" if checkpoint is not None and checkpoint.exists()
            else "no checkpoint had been saved yet")
    raise TrainingError(f"the loss became {value} at step {step}; stopping ({kept}). Lower --lr, or keep gradient "
                        f"clipping on (--max-grad-norm 1)")


class StopFlag:
    """Ctrl-C asks the loop to stop after the current step (so the checkpoint is consistent); a second
    Ctrl-C stops at once."""

    def __init__(self):
        self.set = False

    def __enter__(self):
        self.previous = None
        if threading.current_thread() is threading.main_thread():  # only the main thread may handle signals
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.set:
            raise KeyboardInterrupt
        self.set = True
        print("Ctrl-C: finishing this step, saving a checkpoint, then exiting (Ctrl-C again to abort)", file=sys.stderr)

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


# ---- Plots ----------------------------------------------------------------------------------------------


def plot_curves(history: dict, path: Path, title: str = "", losses: dict[str, str] | None = None) -> None:
    """One panel per training loss (raw and smoothed, per step) and, when history has "epochs", one with
    the test accuracy and F1 per epoch.

    losses: {history key: axis label}; fine-tuning has {"loss": "training loss"}, pre-training
    {"mlm": "masked LM loss", "nsp": "next sentence loss"}.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = losses or {"loss": "training loss"}
    epochs = history.get("epochs", [])
    panels = len(losses) + bool(epochs)
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels if panels > 1 else 6, 4), squeeze=False)
    for ax, (key, label) in zip(axes[0], losses.items()):
        plot_loss(ax, history.get("step", []), history.get(key, []), label)
    if epochs:
        ax = axes[0, -1]
        for key in ("accuracy", "f1"):
            ax.plot([e["epoch"] for e in epochs], [e[key] for e in epochs], marker="o", label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test")
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_loss(ax, steps: list[int], values: list[float], ylabel: str) -> None:
    """A noisy per-step loss, faint, under its running mean."""
    ax.plot(steps, values, alpha=0.3, label="per step")
    if len(values) >= 10:
        k = max(1, len(values) // 20)
        smooth = [sum(values[max(0, i - k) : i + 1]) / len(values[max(0, i - k) : i + 1]) for i in range(len(values))]
        ax.plot(steps, smooth, label=f"mean of {k + 1} steps")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend()


def plot_confusion(matrix: list[list[int]], labels: tuple[str, ...], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(matrix, cmap="Blues")
    for i, row in enumerate(matrix):
        for j, n in enumerate(row):
            ax.text(j, i, str(n), ha="center", va="center", color="black")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
