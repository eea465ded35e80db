#!/usr/bin/env python
"""Fill in [MASK] tokens with a pretrained BERT's masked-LM head: the top-k tokens and their probabilities.

    python scripts/fill_mask.py "the man went to the [MASK] ."
    python scripts/fill_mask.py "paris is the [MASK] of france ." --top-k 10
    python scripts/fill_mask.py "this movie was [MASK] ." --model runs/pretrain/model
"""

import argparse
import sys

from minibert.cli import main_for
from minibert.inspection import fill_mask, format_fill_mask, load_masked_lm


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("text", help="text with one or more [MASK] tokens (upper-case, with the brackets)")
    p.add_argument("--pair", default=None, help="an optional second sentence (segment B) (default: none)")
    p.add_argument("--model", default="bert-base-uncased",
                   help="Hub id or local directory of a checkpoint with its MLM head (default: bert-base-uncased)")
    p.add_argument("--top-k", type=int, default=5, help="candidates shown per [MASK] (default: 5)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    return p


def run(args) -> None:
    model, tokenizer, warning = load_masked_lm(args.model, args.device)
    if warning:
        print(f"\n!!! WARNING: {warning}\n", file=sys.stderr)
    predictions = fill_mask(model, tokenizer, args.text, top_k=args.top_k, text_pair=args.pair)
    print(format_fill_mask(args.text if args.pair is None else f"{args.text} || {args.pair}", predictions))


def main(argv=None) -> int:
    return main_for(run, parser().parse_args(argv))  # a bad model or text: one line, exit 2


if __name__ == "__main__":
    sys.exit(main())
