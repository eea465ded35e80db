"""The layering of minibert/ (CONTRIBUTING.md): a module imports only from its own layer or the layers below,
counting the imports inside functions too, so each file can be read without the ones above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "minibert"

LAYERS = [  # bottom first
    {"config", "tokenizer", "inputs", "vocab", "optim", "hub"},
    {"checkpoint"},
    {"model"},
    {"heads", "inspection"},
    {"data", "labelled_texts", "pretraining_data"},
    {"training", "cli"},
    {"predict"},
    {"finetune", "pretrain"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def imported_modules(path: Path) -> set[str]:
    """The minibert modules a file imports: `from .x import y`, `from . import x`, `from minibert.x import y`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1 and not module or module == "minibert":  # from . import x
                found |= {alias.name for alias in node.names}
            elif node.level == 1 or module.startswith("minibert."):
                found.add(module.removeprefix("minibert.").split(".")[0])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("minibert.")}
    return found


def test_every_module_has_a_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(RANK), f"give these a layer here and in CONTRIBUTING.md: {modules ^ set(RANK)}"


@pytest.mark.parametrize("name", sorted(RANK))
def test_no_import_goes_upwards(name):
    upwards = {m for m in imported_modules(PACKAGE / f"{name}.py") if RANK[m] > RANK[name]}
    assert not upwards, f"minibert/{name}.py imports {sorted(upwards)} from a layer above its own"


def test_the_check_sees_imports_inside_functions(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from .finetune import run\n    from . import heads\n    import minibert.pretrain\n")
    assert imported_modules(f) == {"finetune", "heads", "pretrain"}
