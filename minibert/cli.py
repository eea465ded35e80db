"""Command-line options built from the run-argument dataclasses (FinetuneArgs, PretrainArgs), so that a
script's --help and the library's defaults cannot disagree, and the scripts' shared error handling."""

from __future__ import annotations

import argparse
import dataclasses
import signal
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


def parse_with_presets(parser: argparse.ArgumentParser, presets: dict[str, dict], argv=None) -> argparse.Namespace:
    """Parse argv where `--preset NAME` replaces the defaults with presets[NAME]; options given on the command
    line still win, whatever their order (`--preset tiny --steps 10` and `--steps 10 --preset tiny` agree)."""
    if not any(a.dest == "preset" for a in parser._actions):
        parser.add_argument("--preset", choices=sorted(presets), default=None,
                            help="a named set of defaults; other options still apply on top: "
                                 + "; ".join(f"{name}: " + ", ".join(f"{k.replace('_', '-')}={v}" for k, v in values.items())
                                             for name, values in presets.items()))
    chosen, _ = parser.parse_known_args(argv)
    if chosen.preset is not None:
        parser.set_defaults(**presets[chosen.preset])
    return parser.parse_args(argv)  # .preset says which one was used (None: none)


def main_for(run, args) -> int:
    """Run a job from a script, the one way every script fails:

    * an error the user can fix (a bad option, a missing file or corpus, a folder that cannot be written,
      a diverging run) is one line on stderr and exit code 2;
    * anything else is a bug and keeps its traceback;
    * a run stopped by a signal has saved its checkpoint and exits like a shell reports that signal:
      130 for Ctrl-C (SIGINT) or --stop-after-steps, 143 for SIGTERM.

    `run(args)` returns None or a dict with "status" ("completed", "partial" or "interrupted") and "stopped_by".
    """
    try:
        result = run(args)
    except expected_errors() as e:
        print(f"error: {error_line(e)}", file=sys.stderr)
        return 2
    if result is None or result["status"] in ("completed", "partial"):  # partial: the --folds asked for are done
        return 0
    return 128 + signal.SIGTERM if result.get("stopped_by") == "SIGTERM" else 128 + signal.SIGINT


def expected_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the input is wrong" rather than "minibert has a bug"."""
    from .data import CorpusError
    from .training import TrainingError

    return (TrainingError, CorpusError, ValueError, OSError)  # OSError includes hub.HubError


def error_line(e: BaseException) -> str:
    """The message, with a Hub error's remedy naming the command-line flag (--model) when it can."""
    script_message = getattr(e, "script_message", None)
    return script_message("--model") if callable(script_message) else str(e)
