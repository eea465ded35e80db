#!/usr/bin/env python
"""Draw every attention map of a BERT for one sentence (or pair), and trace the input through the model.

    python scripts/show_attention.py "the cat sat on the mat ."                       # grid: layers x heads
    python scripts/show_attention.py "the cat sat on the mat ." "it was happy ."      # a pair (or --pair)
    python scripts/show_attention.py "the cat sat on the mat ." --layer 3 --head 7    # one map, large
    python scripts/show_attention.py "the cat sat on the mat ." --layer 3             # all heads of layer 3

    python scripts/show_attention.py "the cat sat on the mat ." --html attention.html  # the explorer page
    python scripts/show_attention.py "the cat sat on the mat ." --html a.html --compare runs/finetune/model

Prints the trace (tokens, ids, segment ids, positions, and the tensor shape after every stage) and writes
the PNG: row = layer, column = head, each cell a T x T heatmap whose row i is where token i attends.

With --html it writes the attention explorer instead (and the PNG too only when --output is given): one HTML
file that opens from disk, offline, in any current browser. It shows every head as a thumbnail, one head as
lines between the tokens, and the arithmetic of one query token, softmax(q·k / sqrt(d_k) + M) and the weighted
sum of the values, with the model's numbers. An existing --html file is replaced only with --overwrite.
"""

import argparse
import sys
from pathlib import Path

from minibert.cli import main_for
from minibert.inspection import attention, attention_detail, attention_page, load_encoder, plot_attention, trace


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("text", help="the sentence (segment A)")
    p.add_argument("second", nargs="?", default=None, help="a second sentence (segment B), as --pair (default: none)")
    p.add_argument("--pair", default=None, help="a second sentence (segment B) (default: none)")
    p.add_argument("--model", default="bert-base-uncased", help="Hub id or local directory (default: bert-base-uncased)")
    p.add_argument("--output", default=None,
                   help="where to write the PNG (default: attention.png, or no PNG when --html is given)")
    p.add_argument("--html", type=Path, default=None, help="write the attention explorer page to this file (default: none)")
    p.add_argument("--compare", default=None,
                   help="with --html: a second model (Hub id or directory) shown beside --model, head by head (default: none)")
    p.add_argument("--pad-to", type=int, default=None,
                   help="with --html: pad the input with [PAD] to this many tokens, to see the padding mask (default: no padding)")
    p.add_argument("--overwrite", action="store_true", help="replace the --html file if it exists (default: refuse)")
    p.add_argument("--layer", type=int, default=None,
                   help="draw only this layer (0-based) with token labels; the page opens at it (default: all; the page: 0)")
    p.add_argument("--head", type=int, default=None,
                   help="with --layer: draw only this head (0-based), large; the page opens at it (default: all; the page: 0)")
    p.add_argument("--dpi", type=int, default=100, help="pixels per inch of the PNG (default: 100)")
    p.add_argument("--trace", action=argparse.BooleanOptionalAction, default=True,
                   help="print the tokens and the shape after every stage (default: True)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    return p


def check(args) -> None:
    """Refuse a bad command line before loading any model."""
    if args.second is not None:
        if args.pair is not None:
            raise ValueError("the second segment is given twice (as a second argument and as --pair): give it once")
        args.pair = args.second
    if args.html is None:
        for flag, value in (("--compare", args.compare), ("--pad-to", args.pad_to)):
            if value is not None:
                raise ValueError(f"{flag} needs --html (it changes the explorer page, not the PNG)")
        if args.overwrite:
            raise ValueError("--overwrite needs --html (it lets the page replace an existing file)")
        args.output = args.output or "attention.png"
        return
    if args.html.exists() and not args.overwrite:
        raise ValueError(f"--html {args.html} exists; pass --overwrite to replace it, or another --html path")
    if not args.html.parent.is_dir():
        raise ValueError(f"--html {args.html}: the folder {args.html.parent} does not exist; create it first")


def run(args) -> None:
    check(args)
    model, tokenizer = load_encoder(args.model, args.device)
    if args.trace:
        print(trace(model, tokenizer, args.text, args.pair).format())
    if args.output is not None:
        tokens, probs = attention(model, tokenizer, args.text, args.pair)
        title = args.text if args.pair is None else f"{args.text}  ||  {args.pair}"
        drawn = plot_attention(tokens, probs, args.output, title=title, layer=args.layer, head=args.head, dpi=args.dpi)
        print(f"wrote {drawn.path}: {drawn.rows} layer(s) x {drawn.cols} head(s), {drawn.size_px[0]} x {drawn.size_px[1]} px")
    if args.html is not None:
        details = [(args.model, attention_detail(model, tokenizer, args.text, args.pair, args.pad_to))]
        if args.compare is not None:
            other, other_tokenizer = load_encoder(args.compare, args.device)
            details.append((args.compare, attention_detail(other, other_tokenizer, args.text, args.pair, args.pad_to)))
        page = attention_page(details, args.text, args.pair, layer=args.layer or 0, head=args.head or 0)
        args.html.write_text(page, encoding="utf-8")
        print(f"wrote {args.html}: the attention explorer, {len(page.encode()) / 1e6:.1f} MB, "
              f"{len(details[0][1].tokens)} tokens; open it in a browser")


def main(argv=None) -> int:
    return main_for(run, parser().parse_args(argv))  # a bad model, text or --layer: one line, exit 2


if __name__ == "__main__":
    sys.exit(main())
