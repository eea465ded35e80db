"""Write docs/walkthrough.ipynb from docs/WALKTHROUGH.md: the chapter's prose as markdown cells, and one code
cell per Python session (```pycon block), in order.

    python docs/make_notebook.py           # (re)write docs/walkthrough.ipynb
    python docs/make_notebook.py --check   # exit 1 if the committed notebook is not what the chapter gives

The chapter is the source; never edit the notebook by hand (tests/test_walkthrough.py checks that it is a fresh
generation, and runs it). Each session of the chapter starts either in a fresh interpreter or where the last
session of section N left off (the line `(fresh interpreter)` or `(continues §N)` before it). A notebook has
one interpreter, the kernel, so the first code cell defines `session(section, continues=None)`, and each
session's cell starts with it: it forgets every name the sessions defined, and for `continues=N` brings back
the names that section N's last session left behind, as tests/test_walkthrough.py does when it runs the
sessions. The cells hold only code; their outputs are what running the notebook prints.
"""

from __future__ import annotations

import argparse
import doctest
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WALKTHROUGH = ROOT / "docs" / "WALKTHROUGH.md"
NOTEBOOK = ROOT / "docs" / "walkthrough.ipynb"

SESSION_MARK = re.compile(r"^\((?:fresh interpreter|continues §(\d+))\)$")
SECTION = re.compile(r"^## (\d+)\. ")

SETUP = '''\
# This notebook is generated from docs/WALKTHROUGH.md by docs/make_notebook.py: one code cell per session.
# It needs minibert installed with its test extra (the setup below) and, for section 15, the movie_reviews corpus.
# A session of the chapter starts in a fresh interpreter, or where section N's last session left off;
# `session(section, continues=N)` at the top of each cell does the same in this one kernel.
from IPython import get_ipython

shell = get_ipython()
shell.ast_node_interactivity = "all"  # show the value of every expression, as the Python prompt does
shell.display_formatter.formatters["text/plain"].pprint = False  # and show it as repr(), as the prompt does
_kept = {}  # section -> the names its last session left behind
_current = [0]


def session(section, continues=None):
    """Forget the names of earlier sessions; with continues=N, bring back those of section N's last session."""
    for name in [n for n in shell.user_ns if n not in _always]:
        del shell.user_ns[name]
    shell.user_ns.update(_kept.get(continues, {}) if continues is not None else {})
    _current[0] = section


def _remember(result):
    _kept[_current[0]] = {k: v for k, v in shell.user_ns.items() if k not in _always}


shell.events.register("post_run_cell", _remember)
_always = set(shell.user_ns) | {"_always"}  # IPython's names and the ones above: never forgotten
'''


def session_source(block: str) -> str:
    """The Python code of a pycon session: its `>>>` and `...` lines, without the prompts and the outputs."""
    return "".join(example.source for example in doctest.DocTestParser().get_examples(block))


def cells(markdown: str) -> list[tuple[str, str]]:
    """(kind, text) for each cell: "markdown" for the prose between sessions, "code" for each session."""
    out: list[tuple[str, str]] = [("code", SETUP)]
    lines = markdown.split("\n")
    prose: list[str] = []
    section, i = 0, 0

    def flush():
        text = "\n".join(prose).strip("\n")
        if text:
            out.append(("markdown", text))
        prose.clear()

    while i < len(lines):
        line = lines[i]
        if m := SECTION.match(line):
            section = int(m.group(1))
        if line == "```pycon":
            end = lines.index("```", i + 1)
            mark = SESSION_MARK.match(prose.pop() if prose else "")  # the line right before the fence
            if not mark:
                sys.exit(f"make_notebook: the session at line {i + 1} of WALKTHROUGH.md has no (fresh interpreter) "
                         f"or (continues §N) line before it")
            flush()
            start = f"session({section})" if mark.group(1) is None else f"session({section}, continues={mark.group(1)})"
            comment = "  # a fresh interpreter" if mark.group(1) is None else f"  # continues section {mark.group(1)}"
            out.append(("code", start + comment + "\n" + session_source("\n".join(lines[i + 1 : end]) + "\n")))
            i = end + 1
            continue
        prose.append(line)
        i += 1
    flush()
    return out


def notebook(markdown: str) -> str:
    """The .ipynb text (nbformat 4.5, no outputs), the same for the same chapter."""
    nb_cells = []
    for n, (kind, text) in enumerate(cells(markdown)):
        source = text.rstrip("\n").split("\n")
        cell = {"cell_type": kind, "id": f"cell-{n:03d}", "metadata": {},
                "source": [line + "\n" for line in source[:-1]] + [source[-1]]}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        nb_cells.append(cell)
    nb = {
        "cells": nb_cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="do not write: exit 1 if docs/walkthrough.ipynb is out of date")
    args = p.parse_args(argv)
    text = notebook(WALKTHROUGH.read_text(encoding="utf-8"))
    if args.check:
        current = NOTEBOOK.read_text(encoding="utf-8") if NOTEBOOK.is_file() else ""
        if current != text:
            print("make_notebook: docs/walkthrough.ipynb is out of date; run python docs/make_notebook.py", file=sys.stderr)
            return 1
        return 0
    NOTEBOOK.write_text(text, encoding="utf-8")
    sessions = sum(kind == "code" for kind, _ in cells(WALKTHROUGH.read_text(encoding="utf-8"))) - 1  # not the setup cell
    print(f"wrote {NOTEBOOK.relative_to(ROOT)}: {sessions} sessions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
