"""The walkthrough stays true: every code excerpt docs/WALKTHROUGH.md quotes is still, verbatim, in the file
it names, every Python session it shows still prints what it shows, and every figure it shows exists.

The conventions of docs/WALKTHROUGH.md that these tests rely on (CONTRIBUTING.md repeats them):

* **Quotes.** A quoted excerpt is a fenced block on the line right after an HTML comment that names its file:

      <!-- quote: minibert/model.py -->
      ```python
              x = self.tok(input_ids) + self.seg(token_type_ids)  # (B, T, H)
      ```

  Its lines must appear in that file exactly, indentation included, one after the other. A line whose text
  starts with `# ...` (any indentation, e.g. `    # ... the matching .bias rows`) says "lines left out here":
  the runs of lines between such markers must each appear in the file, in order. Every ```python block is a
  quote, so no excerpt escapes the check. When the prose just before a quote names a file
  (`minibert/model.py`, `Embeddings.forward`:), it must name the same file.
* **Sessions.** A ```pycon block is an interactive session, and the line right before it says where it
  starts: `(fresh interpreter)` or `(continues §4)` (the names defined by the last session of section 4).
  The tests run every session and compare its output with the text (floats to 4 significant digits; a
  `...` in an output line stands for any text, e.g. a path). Bare ``` blocks are shell commands and their
  output; they are not run.
"""

from __future__ import annotations

import doctest
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WALKTHROUGH = ROOT / "docs" / "WALKTHROUGH.md"

QUOTE_MARK = re.compile(r"^<!-- quote: (\S+) -->$")
SESSION_MARK = re.compile(r"^\((?:fresh interpreter|continues §(\d+))\)$")
ELISION = re.compile(r"^\s*# \.\.\.")
FENCE = re.compile(r"^```(\w*)\s*$")
SECTION = re.compile(r"^## (\d+)\. ")
FILE_NAMED = re.compile(r"`((?:minibert|scripts|tests|benchmarks|docs)/[\w/]+\.py)`")


@dataclass
class Block:
    lang: str  # "python", "pycon", "bash", "" ...
    text: str  # the lines between the fences
    line: int  # 1-based line of the opening fence in WALKTHROUGH.md
    section: int  # the "## N." section it is in (0 before the first)
    before: list[str]  # the lines between the previous block's closing fence and this block's opening fence


def read_blocks(markdown: str) -> list[Block]:
    blocks, lines = [], markdown.splitlines()
    section, since, i = 0, 0, 0
    while i < len(lines):
        if m := SECTION.match(lines[i]):
            section = int(m.group(1))
        if m := FENCE.match(lines[i]):
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            blocks.append(Block(m.group(1), "\n".join(lines[i + 1 : end]) + "\n", i + 1, section, lines[since:i]))
            i = since = end + 1
            continue
        i += 1
    return blocks


def quoted_file(block: Block) -> str | None:
    """The file a block quotes: the `<!-- quote: path -->` on the line right before its fence."""
    m = QUOTE_MARK.match(block.before[-1]) if block.before else None
    return m.group(1) if m else None


def find_quote(quote: str, source: str) -> str | None:
    """None when `quote` appears in `source` as the convention says; else what is wrong, in one line.

    The runs of lines between `# ...` markers must each appear as consecutive lines of `source`, in order.
    Taking the earliest place for each run is enough: a later place for a run never helps the runs after it.
    """
    file_lines = source.splitlines()
    runs, run = [], []
    for line in quote.splitlines():
        if ELISION.match(line):
            runs.append(run)
            run = []
        else:
            run.append(line)
    runs.append(run)
    start = 0
    for run in runs:
        if not run:
            continue
        at = next((i for i in range(start, len(file_lines) - len(run) + 1) if file_lines[i : i + len(run)] == run), None)
        if at is None:
            missing = next((l for l in run if l not in file_lines[start:]), None)
            if missing is not None:
                return f"this line is not in the file (after the previous run): {missing!r}"
            return f"these lines are in the file, but not one after the other: {run!r}"
        start = at + len(run)
    return None


BLOCKS = read_blocks(WALKTHROUGH.read_text(encoding="utf-8"))
QUOTES = [b for b in BLOCKS if quoted_file(b)]
SESSIONS = [b for b in BLOCKS if b.lang == "pycon"]


def test_the_walkthrough_has_quotes_and_sessions():
    assert len(QUOTES) >= 30 and len(SESSIONS) >= 20


def test_every_python_block_is_a_quote_of_a_named_file():
    unmarked = [b.line for b in BLOCKS if b.lang == "python" and not quoted_file(b)]
    assert not unmarked, f"```python blocks without a `<!-- quote: path -->` line before them, at lines {unmarked}"
    for b in QUOTES:
        assert (ROOT / quoted_file(b)).is_file(), f"line {b.line}: {quoted_file(b)} does not exist"


@pytest.mark.parametrize("block", QUOTES, ids=[f"line{b.line}-{quoted_file(b)}" for b in QUOTES])
def test_quote_appears_verbatim_in_the_file_it_names(block):
    path = quoted_file(block)
    problem = find_quote(block.text, (ROOT / path).read_text(encoding="utf-8"))
    assert problem is None, f"WALKTHROUGH.md line {block.line} quotes {path}, but {problem}"


def test_the_prose_before_a_quote_names_the_same_file():
    wrong = []
    for b in QUOTES:
        paragraph = []
        for line in reversed(b.before[:-1]):  # the lines above the marker, up to the previous blank line
            if not line.strip():
                break
            paragraph.insert(0, line)
        named = FILE_NAMED.findall(" ".join(paragraph))
        if named and named[-1] != quoted_file(b):
            wrong.append(f"line {b.line}: the prose names {named[-1]}, the quote is from {quoted_file(b)}")
    assert not wrong, "\n".join(wrong)


def test_the_quote_check_fails_when_a_quoted_line_changes():
    source = (ROOT / "minibert" / "optim.py").read_text(encoding="utf-8")
    quote = (
        "        if step < self.warmup_steps:\n"
        "            return (step + 1) / (self.warmup_steps + 1)\n"
        "        return max(0.0, (self.total_steps - step) / max(1, self.total_steps - self.warmup_steps))\n"
    )
    assert find_quote(quote, source) is None
    assert "not in the file" in find_quote(quote.replace("step + 1", "step"), source)  # a changed line
    assert "not in the file" in find_quote(quote.replace("        if", "    if"), source)  # indentation counts
    lines = quote.splitlines(keepends=True)
    assert "not one after the other" in find_quote(lines[0] + lines[2], source)  # a line left out silently
    assert find_quote(lines[0] + "        # ... the warmup branch\n" + lines[2], source) is None  # ... and said
    assert find_quote(lines[2] + "    # ...\n" + lines[0], source) is not None  # runs keep their order


# ---- Sessions -------------------------------------------------------------------------------------------


def test_every_session_says_where_it_starts():
    starts = {}
    for b in SESSIONS:
        m = SESSION_MARK.match(b.before[-1]) if b.before else None
        assert m, f"line {b.line}: a ```pycon block needs a line `(fresh interpreter)` or `(continues §N)` right before it"
        starts[b.line] = m
    sections_with_sessions = {b.section for b in SESSIONS}
    for b in SESSIONS:
        if starts[b.line].group(1):
            n = int(starts[b.line].group(1))
            assert n <= b.section and n in sections_with_sessions, f"line {b.line}: §{n} has no session before it"


class FloatTolerantChecker(doctest.OutputChecker):
    """Exact output, except that floats match to 4 significant digits (other CPUs round the last bits
    differently) and `...` stands for any text."""

    NUMBER = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?")

    def check_output(self, want, got, optionflags):
        if super().check_output(want, got, optionflags | doctest.ELLIPSIS):
            return True
        w, g = self.NUMBER.findall(want), self.NUMBER.findall(got)
        if len(w) != len(g) or not w:
            return False
        if not all(abs(float(a) - float(b)) <= 1e-4 * max(abs(float(a)), abs(float(b))) + 1e-9 for a, b in zip(w, g)):
            return False
        return super().check_output(self.NUMBER.sub("0", want), self.NUMBER.sub("0", got), optionflags | doctest.ELLIPSIS)


class PrintLogRecords(logging.Handler):
    """Shows minibert's log records (the loading report) in the session's output, as a terminal would."""

    def emit(self, record):
        print(self.format(record))


def test_every_session_prints_what_the_walkthrough_shows():
    """Runs all sessions in order, each in the namespace its `(continues §N)` line names."""
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(checker=FloatTolerantChecker(), optionflags=doctest.ELLIPSIS)
    namespaces: dict[int, dict] = {}  # section -> the names its last session left behind
    handler = PrintLogRecords()
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("minibert")
    log.addHandler(handler)
    failures = []
    try:
        for b in SESSIONS:
            continues = SESSION_MARK.match(b.before[-1]).group(1)
            names = dict(namespaces[int(continues)]) if continues else {"__name__": "__walkthrough__"}
            test = parser.get_doctest(b.text, names, f"WALKTHROUGH.md line {b.line}", str(WALKTHROUGH), b.line)
            out: list[str] = []
            result = runner.run(test, out=out.append, clear_globs=False)
            if result.failed:
                failures.append("".join(out))
            namespaces[b.section] = test.globs
    finally:
        log.removeHandler(handler)
    assert not failures, "\n".join(failures)


# ---- Figures --------------------------------------------------------------------------------------------


def test_every_figure_shown_exists_and_every_figure_is_shown():
    shown = set(re.findall(r"!\[[^\]]*\]\(figures/([\w.-]+\.png)\)", WALKTHROUGH.read_text(encoding="utf-8")))
    drawn = {p.name for p in (ROOT / "docs" / "figures").glob("*.png")}
    assert shown and shown == drawn, f"shown but missing: {shown - drawn}; drawn but not shown: {drawn - shown}"


def test_make_figures_draws_every_figure_from_the_current_code(tmp_path, monkeypatch, capsys):
    """docs/make_figures.py still runs against the library as it is (into a temporary folder: the shipped
    PNGs are not touched), and prints the numbers the walkthrough quotes about its figures."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_figures", ROOT / "docs" / "make_figures.py")
    make_figures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_figures)
    monkeypatch.setattr(make_figures, "OUT", tmp_path)
    monkeypatch.setattr(make_figures, "ROOT", tmp_path)  # so that it prints paths relative to the temporary folder
    make_figures.main([])
    assert {p.name for p in tmp_path.glob("*.png")} == {p.name for p in (ROOT / "docs" / "figures").glob("*.png")}
    printed = capsys.readouterr().out
    text = WALKTHROUGH.read_text(encoding="utf-8")
    # §10 and Figure 9 quote these measurements; they must be what the code gives now.
    assert "layers 1-4: 27 of 48 heads" in printed and "27 of the 48 heads" in text
    assert "above 0.5 for 12; the two `it`s: 0.61, 0.70" in printed and "(0.61 and 0.70)" in text and "12 of them" in text
    assert "3821 training examples (chunks), batch 16, 4 epochs: 239 steps per epoch, 956 in all, warmup 95" in printed
    assert "3821 training chunks (section 15),\nbatch 16, 4 epochs, so 239 steps per epoch and 956 in all; warmup is the first 95" in text


# ---- §5: one head written out is SelfAttention ----------------------------------------------------------


def one_head_from_the_walkthrough():
    """The `one_head` function that §5 defines in a session, run from the chapter's own text."""
    (block,) = [b for b in SESSIONS if ">>> def one_head(" in b.text]
    names = {"torch": __import__("torch")}
    for example in doctest.DocTestParser().get_examples(block.text):
        exec(example.source, names)
    return names["one_head"]


@pytest.mark.parametrize("attn_implementation", ["sdpa", "math"])
def test_one_head_written_out_is_self_attention(attn_implementation):
    """§5's single-head attention, one query at a time, run on every head and merged by W_O, equals
    SelfAttention on random weights, for each sentence of a padded batch (on the real tokens of the padded one:
    padding keys must get no weight), on both attention paths."""
    import torch

    from minibert import BertConfig
    from minibert.model import SelfAttention, attention_bias

    one_head = one_head_from_the_walkthrough()
    torch.manual_seed(0)
    cfg = BertConfig(hidden_size=24, num_attention_heads=3, intermediate_size=48, attn_implementation=attn_implementation)
    attn = SelfAttention(cfg).eval()
    with torch.no_grad():
        for p in attn.parameters():
            p.normal_(0, 0.5)  # well away from the initial weights, so that a wrong head slice shows
    x = torch.randn(2, 7, 24)  # (B, T, H)
    lengths = [7, 4]  # row 1: 3 padding tokens
    mask = torch.tensor([[1] * n + [0] * (7 - n) for n in lengths])
    with torch.no_grad():
        fused, _ = attn(x, attention_bias(mask, torch.float32))
        H, hd = 24, 8
        W, b = attn.qkv.weight, attn.qkv.bias
        for row, n in enumerate(lengths):
            heads = [one_head(x[row, :n], *(t[part * H + k * hd : part * H + (k + 1) * hd] for part in range(3) for t in (W, b)))
                     for k in range(3)]
            by_hand = attn.out(torch.cat(heads, dim=-1))  # (n, H)
            torch.testing.assert_close(by_hand, fused[row, :n], atol=1e-5, rtol=1e-5)


# ---- The notebook ----------------------------------------------------------------------------------------

NOTEBOOK = ROOT / "docs" / "walkthrough.ipynb"
PY_WARNING = re.compile(r"^\S.*:\d+: \w*Warning: .*\n(?:  .*\n)?", re.M)  # "file:line: XWarning: ..." and its source line


def make_notebook():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_notebook", ROOT / "docs" / "make_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_notebook_is_a_fresh_generation_of_the_chapter():
    expected = make_notebook().notebook(WALKTHROUGH.read_text(encoding="utf-8"))
    assert NOTEBOOK.read_text(encoding="utf-8") == expected, "docs/walkthrough.ipynb is stale: run python docs/make_notebook.py"


def test_the_notebook_has_one_code_cell_per_session_in_order_and_starts_each_as_the_chapter_says():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c.source for c in nb.cells if c.cell_type == "code"][1:]  # after the setup cell
    assert len(code) == len(SESSIONS)
    parser = doctest.DocTestParser()
    for source, b in zip(code, SESSIONS):
        first, rest = source.split("\n", 1)
        continues = SESSION_MARK.match(b.before[-1]).group(1)
        assert first.startswith(f"session({b.section})" if continues is None else f"session({b.section}, continues={continues})")
        assert rest.rstrip("\n") == "".join(e.source for e in parser.get_examples(b.text)).rstrip("\n")
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "## 21. How the tests prove it" in prose  # the prose, to the end
    assert not [line for line in prose.split("\n") if SESSION_MARK.match(line)]  # the marks became session(...) calls


def test_the_notebook_runs_on_the_cpu_and_prints_what_the_chapter_shows():
    """Executes the notebook in a Jupyter kernel (nbclient), then compares each session's cell output with the
    chapter's, as the session test does (Python warnings printed by the kernel set aside)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "docs")}}).execute()
    checker, parser = FloatTolerantChecker(), doctest.DocTestParser()
    wrong = []
    for cell, b in zip([c for c in nb.cells if c.cell_type == "code"][1:], SESSIONS):
        got = ""
        for o in cell.outputs:
            if o.output_type == "stream":
                got += PY_WARNING.sub("", o.text) if o.name == "stderr" else o.text
            elif o.output_type == "execute_result":
                got += o.data["text/plain"] + "\n"
            else:
                got += f"{o.output_type} {o.get('ename', '')}: {o.get('evalue', '')}\n"
        want = "".join(e.want for e in parser.get_examples(b.text))
        if not checker.check_output(want, got, doctest.ELLIPSIS):
            wrong.append(f"WALKTHROUGH.md line {b.line}: the notebook printed\n{got}instead of\n{want}")
    assert not wrong, "\n".join(wrong)
