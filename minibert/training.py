"""What the training loops (finetune.py, pretrain.py) share: device and precision, distributed setup,
the resumable training checkpoint, seeding, and the plots."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from .hub import atomic_write


class TrainingError(RuntimeError):
    """A run that cannot go on: a non-finite loss, an unreadable checkpoint, a mismatched resume."""


# ---- Device, precision, distribution --------------------------------------------------------------------


def pick_device(requested: str = "auto", training: bool = True) -> torch.device:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
    if device.type == "cpu" and training:
        print("warning: training on the CPU is slow (bert-base on movie_reviews: hours; on a GPU: minutes)", file=sys.stderr)
    return device


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


def check_finite(losses: torch.Tensor, last_step: int) -> None:
    """Stop on a NaN/inf among the losses of the steps up to `last_step` (one value or several)."""
    losses = losses.detach().float().reshape(-1).cpu()
    bad = (~torch.isfinite(losses)).nonzero()
    if len(bad):
        first = int(bad[0])
        step = last_step - len(losses) + 1 + first
        raise TrainingError(
            f"the loss became {losses[first].item()} at step {step}; stopping. Lower the learning rate, keep "
            f"gradient clipping on, or train in bf16 rather than fp16. The last saved checkpoint is intact."
        )


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


def plot_curves(history: dict, path: Path, title: str = "") -> None:
    """Training loss per step (raw and smoothed) and, when present, test accuracy per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = history.get("epochs", [])
    fig, axes = plt.subplots(1, 2 if epochs else 1, figsize=(11 if epochs else 6, 4), squeeze=False)
    plot_loss(axes[0, 0], history.get("step", []), history.get("loss", []), "training loss")
    if epochs:
        ax = axes[0, 1]
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
