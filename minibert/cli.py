"""Command-line options built from the run-argument dataclasses (FinetuneArgs, PretrainArgs), so that a
script's --help and the library's defaults cannot disagree, and the scripts' shared error handling."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing


def parser_for(cls, help: dict[str, str], description: str, choices: dict[str, tuple] | None = None) -> argparse.ArgumentParser:
    """One --option per dataclass field, typed from its annotation, with its default in the help text
    (unless the help already says what the default means)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    hints = typing.get_type_hints(cls)
    defaults = cls()
    for f in dataclasses.fields(cls):
        flag, default, kind = "--" + f.name.replace("_", "-"), getattr(defaults, f.name), hints[f.name]
        shown = " ".join(map(str, default)) if isinstance(default, list) else default
        text = help[f.name] if "(default:" in help[f.name] else f"{help[f.name]} (default: {shown})"
        if kind is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=text)
            continue
        if typing.get_origin(kind) in (typing.Union, types.UnionType):  # X | None -> X
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        base = kind
        if typing.get_origin(base) is list:
            p.add_argument(flag, type=typing.get_args(base)[0], nargs="+", default=default, help=text)
        else:
            p.add_argument(flag, type=base, default=default, choices=(choices or {}).get(f.name), help=text)
    return p


def main_for(run, args) -> int:
    """Run a job from a script: errors the user can fix are one line on stderr (exit 2), an interrupted
    run exits 130 after saving its checkpoint."""
    from .training import TrainingError

    try:
        result = run(args)
    except (TrainingError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0 if result["status"] == "completed" else 130
