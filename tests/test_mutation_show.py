"""`python tests/mutation.py --only NAME --show`, the one command that answers each exercise of the walkthrough:
it applies the bug to a temporary copy, runs the test that catches it, and prints where the bug sits, the
failing assertion and the size of the difference. Run here on a cheap mutant (one small Linear layer)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import mutation  # noqa: E402


def test_show_prints_where_the_bug_is_the_failing_assertion_and_the_size_of_the_difference():
    name = "lr-schedule-moves-before-the-step"
    (mu,) = [m for m in mutation.MUTANTS if m.name == name]
    source = (ROOT / mu.file).read_text(encoding="utf-8")
    line = source[: source.index(mu.old)].count("\n") + 1
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "mutation.py"), "--only", name, "--show"],
                          capture_output=True, text=True, cwd=ROOT)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert f"where: minibert/training.py:{line}\n" in out
    assert ("  original |     optimizer.step()\n  original |     schedule.step()\n"
            "  mutated  |     schedule.step()\n  mutated  |     optimizer.step()\n") in out
    assert "caught by: tests/test_optim.py::test_optimizer_step_clips_then_updates" in out
    assert re.search(r"the failing assertion:\n  E +AssertionError: after step 0: Tensor-likes are not close!", out)
    size = re.search(r"size of the difference:\n  Mismatched elements: \d+ / \d+.*\n"
                     r"  Greatest absolute difference: ([0-9.e-]+) at index", out)
    assert size and float(size.group(1)) > 1e-5, out  # far beyond the tolerance of assert_close
    assert (ROOT / mu.file).read_text(encoding="utf-8") == source  # the checkout itself is never changed


def test_bug_lines_gives_whole_lines_for_a_part_of_a_line():
    mu = mutation.Mutant("t", "f.py", "sqrt(d)", "d", (), "")
    text = "a = 1\nscale = 1 / sqrt(d)  # why\nb = 2\n"
    assert mutation.bug_lines(mu, text) == (2, ["scale = 1 / sqrt(d)  # why"], ["scale = 1 / d  # why"])


def test_show_needs_only():
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "mutation.py"), "--show"], capture_output=True, text=True)
    assert proc.returncode == 2 and "add --only NAME" in proc.stderr


def test_bug_lines_locates_every_mutant_exactly():
    """For every mutant of the list, the lines --show prints are where the bug goes: putting the mutated lines in
    place of the original ones, at the line named, gives exactly the mutated file."""
    for mu in mutation.MUTANTS:
        text = (ROOT / mu.file).read_text(encoding="utf-8")
        line, original, mutated = mutation.bug_lines(mu, text)
        lines = text.split("\n")
        assert lines[line - 1 : line - 1 + len(original)] == original, mu.name
        assert "\n".join(lines[: line - 1] + mutated + lines[line - 1 + len(original) :]) == text.replace(mu.old, mu.new, 1), mu.name
