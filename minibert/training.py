"""What the training loops (finetune.py, pretrain.py) share, as small named functions that each loop calls
where a reader sees it: device and precision, distributed setup, seeding, the output folder (its lock, and the
manifest of the files a run wrote), the resumable training checkpoint (resume check, save), the optimizer
step, the buffered loss log, Ctrl-C handling, and the plots.

There is deliberately no Trainer class and no callbacks: each loop stays written out in its own file."""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import io
import json
import os
import platform
import random
import shlex
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint import CONFIG, WEIGHTS
from .hub import CONFIG_NAME, VOCAB_NAME, atomic_write
from .optim import AdamW, LinearWarmupDecay, clip_grad_norm


class TrainingError(RuntimeError):
    """A run that cannot go on: a non-finite loss, an unreadable checkpoint, a mismatched resume."""


# ---- Device, precision, distribution --------------------------------------------------------------------


def pick_device(requested: str = "auto", training: bool = True, local_rank: int | None = None) -> torch.device:
    """The device a run uses: "auto" is the GPU when there is one. Under torchrun (`local_rank` given) each
    process takes its own GPU. `training` on the CPU prints a general warning; the loops pass
    training=False and call warn_cpu_training once the model, and so its size, is known."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise TrainingError(f"--device {requested!r} is not one minibert runs on: use auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise TrainingError(f"--device {requested}: this machine has {torch.cuda.device_count()} GPU(s), numbered from 0")
    if device.type == "cuda" and local_rank is not None:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if device.type == "cpu" and training:
        print("warning: training on the CPU is slow; use a GPU (--device cuda) for full runs", file=sys.stderr)
    return device


def to_device(t: torch.Tensor | None, device) -> torch.Tensor | None:
    """`t` on `device`, or None (an optional mask)."""
    return None if t is None else t.to(device, non_blocking=True)


def warn_cpu_training(device: torch.device, model) -> None:
    """Say how large the model is that is about to train on the CPU (a few million parameters train
    there in minutes; bert-base's 110M take hours per epoch of movie_reviews)."""
    if device.type == "cpu":
        n = model.num_parameters()
        size = f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}K"
        if n < 50e6:  # BERT-Tiny and MiniLM (22.7M) are what the CPU presets train: no cause for alarm
            print(f"training a {size}-parameter model on the CPU", file=sys.stderr)
        else:
            print(f"warning: training a {size}-parameter model on the CPU takes hours per epoch; use a GPU "
                  f"(--device cuda) for full runs, or a small model (scripts/finetune.py --preset cpu)", file=sys.stderr)


def check_options(args, positive: tuple[str, ...] = (), limits: tuple[str, ...] = ()) -> None:
    """The checks both loops' arguments share; each message names the command-line flag.

    positive: options that must be >= 1. limits: --limit-* options, None (everything) or >= 1.
    """
    flag = lambda name: "--" + name.replace("_", "-")  # noqa: E731
    for name in positive:
        if getattr(args, name) < 1:
            raise ValueError(f"{flag(name)} must be >= 1, got {getattr(args, name)}")
    for name in limits:
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"{flag(name)} must be >= 1, got {getattr(args, name)}; omit it to use everything")
    if args.lr is not None and not args.lr > 0:
        raise ValueError(f"--lr must be > 0, got {args.lr}")
    if not 0 <= args.warmup < 1:
        raise ValueError(f"--warmup is a fraction of the steps in [0, 1), got {args.warmup}")
    if not args.weight_decay >= 0:
        raise ValueError(f"--weight-decay must be >= 0 (a negative decay pushes weights away from 0), got {args.weight_decay}")
    if not args.max_grad_norm >= 0:
        raise ValueError(f"--max-grad-norm must be >= 0 (0 turns clipping off), got {args.max_grad_norm}")
    if args.precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"--precision must be auto, bf16 or fp32, got {args.precision!r}")
    pick_device(args.device, training=False)  # --device tpu, or cuda without a GPU: refused before any work
    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite exclude each other: continue the earlier run, or replace it")


# glibc malloc settings (malloc.h): the size from which a block gets its own mapping, and how much free memory
# at the top of the heap is handed back to the operating system.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's cap on 64-bit systems


def keep_freed_memory(any_size: bool = False) -> bool:
    """Let glibc's malloc keep the memory that tensors free for the next ones, instead of handing it back to the
    operating system. A CPU forward pass allocates activations of several MB each; by default glibc maps the
    large ones fresh and unmaps them when freed, so every batch pays page faults (the kernel zeroing pages) on
    memory it just had. That is not the model's arithmetic: on a 2-core Xeon it cost about a sixth of a MiniLM
    forward pass at 16 x 512, and about 5% of a tiny pre-training or a MiniLM fine-tuning step. The price: the
    process keeps its peak memory until it exits, which suits a process that runs one job (scripts/predict.py,
    finetune.py and pretrain.py call this; the library never does). Returns False, changing nothing, without
    glibc (macOS, musl).

    glibc keeps blocks up to 32 MB this way; fp32's feed-forward activation at 16 x 512 (50 MB) is larger.
    any_size=True (scripts/predict.py) keeps every size: no block gets a mapping of its own (M_MMAP_MAX 0), and
    glibc grows the heap instead (or maps memory anyway when the heap cannot grow)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    kept = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 2**30) == 1
    return kept and (not any_size or libc.mallopt(M_MMAP_MAX, 0) == 1)


def native_bf16_cpu() -> bool:
    """Does this CPU multiply bf16 matrices in hardware (Intel AMX or AVX-512 bf16, as oneDNN reports)?
    Without it, bf16 is emulated in float32 arithmetic and is slower than plain float32."""
    return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def precision_and_reason(device: torch.device, requested: str = "auto", training: bool = True) -> tuple[str, str]:
    """("bf16" or "fp32", why). auto: bf16 on a GPU, and on a CPU with native bf16 units (measured several times
    faster there, for training and inference alike); fp32 on other CPUs, where bf16 is emulated and slower."""
    how = "autocast, float32 master weights" if training else "weights cast to bf16 once"
    if requested != "auto":
        return requested, f"--precision {requested}" + (f", {how}" if requested == "bf16" else "")
    if device.type == "cuda":
        return "bf16", f"auto: a GPU, {how}"
    if native_bf16_cpu():
        return "bf16", f"auto: this CPU has native bf16 units, {how}"
    return "fp32", "auto: this CPU has no native bf16 units (bf16 would be emulated, and slower)"


def choose_precision(device: torch.device, requested: str = "auto", training: bool = True, say: bool = True) -> str:
    """The precision a run uses (see precision_and_reason); `say` prints which, and why, as one line on stderr."""
    precision, why = precision_and_reason(device, requested, training)
    if say:
        print(f"precision: {precision} ({why})", file=sys.stderr)
    return precision


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

    def any(self, flag: bool) -> bool:
        """True on every process when it is True on one (a signal reached only some ranks): all ranks must
        stop at the same step, or the others would wait for it in the next all-reduce forever.
        Under torchrun this is a small all-reduce, hence a device sync, per call."""
        if self.world == 1:
            return flag
        device = torch.device("cuda", torch.cuda.current_device()) if torch.distributed.get_backend() == "nccl" else "cpu"
        x = torch.tensor([int(flag)], device=device)
        torch.distributed.all_reduce(x, op=torch.distributed.ReduceOp.MAX)
        return bool(x.item())

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


# ---- The output folder ----------------------------------------------------------------------------------
#
# An output folder belongs to one run at a time, and a run deletes only what it recorded writing:
#   .minibert-lock   who holds the folder now (pid, start time, command); an OS lock (flock) on it ends with
#                    the process, so a lock left by a killed run is recognised as stale and taken over
#   .minibert-files  every file a run of this folder wrote, one path per line, recorded *before* it is written:
#                    --overwrite deletes these and nothing else (a user's notes, or model/mine.bin, stay)

LOCK, MANIFEST = ".minibert-lock", ".minibert-files"
# A folder written before the manifest existed still counts as an earlier run when it holds one of these.
UNRECORDED_RUN_FILES = ("checkpoint.pt", "metrics.json", "summary.json")


@dataclass
class HeldFolder:
    fd: int  # the open lock file; closing it releases the OS lock
    recorded: set[str]  # the manifest's paths, relative to the folder


_held: dict[Path, HeldFolder] = {}  # the output folders this process holds, as it holds their lock files


def prepare_output_dir(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Before any model or corpus is loaded: make the folder, prove it writable, take its lock, delete the
    temporary files a killed run left behind, and refuse to mix a new run into an earlier one. With --overwrite,
    delete exactly the files the earlier run recorded writing. release_output_dir(out) gives the folder back."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".minibert-write-test."):
            pass
    except OSError as e:
        raise TrainingError(f"cannot write to --output-dir {out}: {e.strerror or e}; choose a folder you can write to") from e
    held = lock_output_dir(out)
    for rel in held.recorded:  # the temporary file of an atomic write of `name` is ".{name}.<random>.tmp"
        for stale in (out / rel).parent.glob(f".{Path(rel).name}.*.tmp"):
            stale.unlink(missing_ok=True)
    earlier = sorted({rel for rel in held.recorded if (out / rel).exists()} | {n for n in UNRECORDED_RUN_FILES if (out / n).exists()})
    if earlier and not (resume or overwrite):
        release_output_dir(out)
        shown = sorted({Path(rel).parts[0] + ("/" if len(Path(rel).parts) > 1 else "") for rel in earlier})
        raise TrainingError(f"--output-dir {out} holds an earlier run ({', '.join(shown)}); continue it "
                            f"with --resume, replace it with --overwrite, or choose another --output-dir")
    if overwrite:
        for rel in held.recorded:
            (out / rel).unlink(missing_ok=True)
        # the folders the run made (fold3/, seed1/, model/) go too, unless they hold something else
        for folder in sorted({p for rel in held.recorded for p in Path(rel).parents if p != Path(".")}, key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                (out / folder).rmdir()
        held.recorded.clear()
        (out / MANIFEST).write_text("")


def lock_output_dir(out: Path) -> HeldFolder:
    """Take the folder's lock, or say which run holds it. Returns what this process now holds."""
    import fcntl

    key = out.resolve()
    if key in _held:  # an earlier run of this process into the same folder (a test, a notebook) ended
        return _held[key]
    path = out / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode(errors="replace").strip()
            os.close(fd)
            raise TrainingError(f"--output-dir {out} is in use by another run ({holder or 'starting up'}); wait for it "
                                f"to finish, or choose another --output-dir") from None
        # the lock file could have been removed by its holder between our open and our lock: lock the one that is there
        if os.path.exists(path) and os.path.samestat(os.fstat(fd), os.stat(path)):
            break
        os.close(fd)
    stale = os.read(fd, 4096).decode(errors="replace").strip()
    if stale:  # the lock file outlived its process: killed, or out of power
        print(f"--output-dir {out}: taking over the lock of a run that is no longer running ({stale})", file=sys.stderr)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, command: {shlex.join(sys.argv)}".encode(), 0)
    recorded = set((out / MANIFEST).read_text().split("\n")) - {""} if (out / MANIFEST).exists() else set()
    _held[key] = HeldFolder(fd, recorded)
    return _held[key]


def release_output_dir(out: Path) -> None:
    """Remove the lock file and release the lock (the manifest stays: a later --overwrite reads it)."""
    held = _held.pop(out.resolve(), None)
    if held is not None:
        (out / LOCK).unlink(missing_ok=True)
        os.close(held.fd)


def record_written(path: Path) -> None:
    """Add `path` to the manifest of the held output folder it lies in, before it is written (a file written
    outside any held folder, by a test that calls train_one directly, is not recorded)."""
    path = path.parent.resolve() / path.name
    for root, held in sorted(_held.items(), key=lambda item: -len(item[0].parts)):  # the innermost held folder
        if path.is_relative_to(root):
            rel = path.relative_to(root).as_posix()
            if rel not in held.recorded:
                held.recorded.add(rel)
                with open(root / MANIFEST, "a") as f:
                    f.write(rel + "\n")
            return


def model_files(directory: Path) -> list[Path]:
    """The files save_pretrained writes in `directory`: the weights, their configuration and the tokenizer's two."""
    return [directory / name for name in (WEIGHTS, CONFIG, VOCAB_NAME, CONFIG_NAME)]


def written(out: Path) -> list[str]:
    """What the run left in `out`, for its last line: ["checkpoint.pt", "metrics.json", "model/", ...]."""
    recorded = (out / MANIFEST).read_text().split("\n") if (out / MANIFEST).exists() else []
    parts = [Path(rel).parts for rel in recorded if rel and (out / rel).exists()]
    return sorted({p[0] + ("/" if len(p) > 1 else "") for p in parts})


@contextlib.contextmanager
def saving(*paths: Path):
    """Record `paths` as written by the run, then turn a failed write (a full disk, a lost permission) into
    one line. Every file is written atomically, so what was written before, the last checkpoint included,
    stays intact."""
    for path in paths:
        record_written(path)
    try:
        yield
    except OSError as e:
        raise TrainingError(f"could not write {paths[0]}: {e.strerror or e}; the files written before it, the last checkpoint "
                            f"included, are intact. Free some space or fix the permissions, then continue with --resume") from e


def write_json(path: Path, obj) -> None:
    with saving(path), atomic_write(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2))


def save_training_state(path: Path, **state) -> None:
    """Everything needed to continue exactly where a run stopped, written atomically: a crash while
    saving leaves the previous checkpoint intact."""
    # Serialised in memory first (a transient copy of the checkpoint's size) and written by Python: torch's
    # own file writer reports a full disk as a RuntimeError about zip offsets, Python's as the OSError it is.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with saving(path), atomic_write(path) as tmp:
        Path(tmp).write_bytes(buffer.getbuffer())


def save_checkpoint(path: Path, model, optimizer: AdamW, schedule: LinearWarmupDecay, args, elapsed: float, **position) -> None:
    """The training checkpoint: weights, optimizer moments, schedule, random states, the run's arguments,
    its wall time so far, and where the loop stands (`position`: step, epoch, batch, history, ...)."""
    save_training_state(path, model=model.state_dict(), optimizer=optimizer.state_dict(), schedule=schedule.state_dict(),
                        rng=rng_state(), args=dataclasses.asdict(args), elapsed=elapsed, **position)


def load_training_state(path: Path, mmap: bool = False) -> dict:
    """mmap: map the tensors instead of reading them (cheap when only the settings and position are needed)."""
    try:
        # weights_only: tensors and plain Python values only; a checkpoint can never run code
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except FileNotFoundError:
        raise TrainingError(f"no training checkpoint at {path}; start without --resume") from None
    except Exception as e:
        raise TrainingError(
            f"the training checkpoint {path} is corrupted or truncated ({type(e).__name__}: {e}); "
            f"delete it to start over"
        ) from e


def check_resume(state: dict, args, keys: tuple[str, ...], path: Path, seed: int | None = None,
                 fingerprint: str | None = None) -> None:
    """Refuse to continue a checkpoint written with other settings in `keys` (or another seed), or on other
    data (another `fingerprint` of its examples): the result would be neither the old run nor the new one."""
    changed = [k for k in keys if state["args"].get(k) != getattr(args, k)]
    if seed is not None and state.get("seed") != seed:
        changed.append("seed")
    if changed:
        raise TrainingError(f"--resume: {path} was written with different settings ({', '.join(changed)}); "
                            f"use the same arguments or another --output-dir")
    if fingerprint is not None and state.get("fingerprint") != fingerprint:
        source = f"--data {args.data}" if getattr(args, "data", None) else "the corpus"
        raise TrainingError(f"--resume: {path} was trained on other data ({source} has changed since: other rows, texts or "
                            f"classes); resume on the data it was trained on, or start anew with --overwrite")


def resume_from(path: Path, args, keys: tuple[str, ...], model, optimizer: AdamW, schedule: LinearWarmupDecay,
                seed: int | None = None, fingerprint: str | None = None) -> dict:
    """Load a training checkpoint into the model, optimizer, schedule and random generators; return the
    whole saved state (the loop reads its own position from it)."""
    state = load_training_state(path)
    check_resume(state, args, keys, path, seed, fingerprint)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    set_rng_state(state["rng"])
    return state


class WeightAverage:
    """The running mean of a model's weights, taken at the end of each of the last epochs (checkpoint
    averaging; Izmailov et al. 2018, "Averaging Weights Leads to Wider Optima and Better Generalization").
    After add() number n:  mean <- mean + (weights - mean) / n. Kept in float32 on the model's device."""

    def __init__(self):
        self.mean: dict[str, torch.Tensor] = {}
        self.count = 0

    @torch.no_grad()
    def add(self, model) -> None:
        self.count += 1
        for name, w in model.state_dict().items():
            if w.is_floating_point():
                if name not in self.mean:
                    self.mean[name] = w.detach().float().clone()
                else:
                    self.mean[name] += (w.float() - self.mean[name]) / self.count

    def copy_to(self, model) -> None:
        model.load_state_dict({**model.state_dict(), **self.mean})  # load_state_dict casts to each tensor's dtype

    def state_dict(self) -> dict:
        return {"mean": self.mean, "count": self.count}

    def load_state_dict(self, state: dict | None) -> None:
        self.mean, self.count = dict(state["mean"]) if state else {}, state["count"] if state else 0


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
    """Ctrl-C (SIGINT) or SIGTERM (what `timeout`, `kill` and cluster schedulers send) asks the loop to stop
    after the current step, so that the checkpoint it then saves is consistent; a second signal stops at once.

    `signum` is the signal that came (None for a stop the loop asked for itself); scripts exit with
    128 + signum, as a shell reports a process killed by that signal: 130 for Ctrl-C, 143 for SIGTERM.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.set = False
        self.signum: int | None = None

    def __enter__(self):
        self.previous = {}
        if threading.current_thread() is threading.main_thread():  # only the main thread may handle signals
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum, frame):
        if self.set:
            raise KeyboardInterrupt
        self.set, self.signum = True, signum
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(f"{name}: finishing this step, saving a checkpoint, then exiting (send it again to abort)", file=sys.stderr)

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        return False

    @property
    def reason(self) -> str | None:
        """"SIGINT", "SIGTERM", or None."""
        return signal.Signals(self.signum).name if self.signum else None


# ---- Plots ----------------------------------------------------------------------------------------------


def plot_curves(history: dict, path: Path, title: str = "", losses: dict[str, str] | None = None) -> None:
    """One panel per training loss (raw and smoothed, per step) and, when history has "epochs", one with
    the test accuracy and F1 and the val accuracy per epoch (those that were measured).

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
        x = [e["epoch"] for e in epochs]
        for label, value in (("test accuracy", lambda e: e.get("accuracy")), ("test F1", lambda e: e.get("f1")),
                             ("val accuracy", lambda e: e.get("val", {}).get("accuracy"))):
            if value(epochs[0]) is not None:
                ax.plot(x, [value(e) for e in epochs], marker="o", label=label)
        ax.set_xlabel("epoch")
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
