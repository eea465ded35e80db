"""The results file every benchmark section appends to (benchmarks/results/results.json), and the name of the
machine a figure was measured on.

    {"sections": {section: {machine: entry}},      what scripts/bench.py measured, one entry per section and machine
     "imported": {name: entry}}                    earlier runs' files, converted, with where they came from

An entry holds the result and its circumstances: date, torch / transformers versions, the command, how long the
section took. A section already in the file for this machine is skipped (unless --force), so that several
short GPU sessions complete the file between them.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

DEFAULT = Path(__file__).resolve().parent / "results" / "results.json"


def machine_name() -> str:
    """The GPU's name, or e.g. "2-core AMD EPYC CPU" (the cores this process may use and the CPU model)."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores}-core {model} CPU"


def versions() -> dict:
    out = {"torch": torch.__version__}
    try:
        import transformers

        out["transformers"] = transformers.__version__
    except ImportError:
        pass
    return out


def load(path: Path) -> dict:
    path = Path(path)
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault("sections", {})
    data.setdefault("imported", {})
    return data


def done(data: dict, section: str, machine: str) -> bool:
    return machine in data["sections"].get(section, {})


def record(path: Path, section: str, machine: str, entry: dict) -> None:
    """Add one section's entry and rewrite the file (read again first: another run may have added to it)."""
    data = load(path)
    data["sections"].setdefault(section, {})[machine] = entry
    tmp = Path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)
