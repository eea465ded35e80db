#!/usr/bin/env python
"""Draw every attention map of a BERT for one sentence (or pair), and trace the input through the model.

    python scripts/show_attention.py "the cat sat on the mat ."                       # grid: layers x heads
    python scripts/show_attention.py "the cat sat on the mat ." --pair "it was happy ."
    python scripts/show_attention.py "the cat sat on the mat ." --layer 3 --head 7    # one map, large
    python scripts/show_attention.py "the cat sat on the mat ." --layer 3             # all heads of layer 3

Prints the trace (tokens, ids, segment ids, positions, and the tensor shape after every stage) and writes
the PNG: row = layer, column = head, each cell a T x T heatmap whose row i is where token i attends.
"""

import argparse
import sys

from minibert.cli import main_for
from minibert.inspection import attention, load_encoder, plot_attention, trace


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("text", help="the sentence (segment A)")
    p.add_argument("--pair", default=None, help="a second sentence (segment B) (default: none)")
    p.add_argument("--model", default="bert-base-uncased", help="Hub id or local directory (default: bert-base-uncased)")
    p.add_argument("--output", default="attention.png", help="where to write the PNG (default: attention.png)")
    p.add_argument("--layer", type=int, default=None, help="draw only this layer (0-based) with token labels (default: all)")
    p.add_argument("--head", type=int, default=None, help="with --layer: draw only this head (0-based), large (default: all)")
    p.add_argument("--dpi", type=int, default=100, help="pixels per inch of the PNG (default: 100)")
    p.add_argument("--trace", action=argparse.BooleanOptionalAction, default=True,
                   help="print the tokens and the shape after every stage (default: True)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    return p


def run(args) -> None:
    model, tokenizer = load_encoder(args.model, args.device)
    if args.trace:
        print(trace(model, tokenizer, args.text, args.pair).format())
    tokens, probs = attention(model, tokenizer, args.text, args.pair)
    title = args.text if args.pair is None else f"{args.text}  ||  {args.pair}"
    drawn = plot_attention(tokens, probs, args.output, title=title, layer=args.layer, head=args.head, dpi=args.dpi)
    print(f"wrote {drawn.path}: {drawn.rows} layer(s) x {drawn.cols} head(s), {drawn.size_px[0]} x {drawn.size_px[1]} px")


def main(argv=None) -> int:
    return main_for(run, parser().parse_args(argv))  # a bad model, text or --layer: one line, exit 2


if __name__ == "__main__":
    sys.exit(main())
