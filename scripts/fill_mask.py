#!/usr/bin/env python
"""Fill in [MASK] tokens with a pretrained BERT's masked-LM head: the top-k tokens and their probabilities.

    python scripts/fill_mask.py "the man went to the [MASK] ."
    python scripts/fill_mask.py "paris is the [MASK] of france ." --top-k 10
    python scripts/fill_mask.py "this movie was [MASK] ." --model runs/pretrain/model
"""

import argparse
import sys

from minibert.inspection import InspectionError, fill_mask, format_fill_mask, load_masked_lm


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("text", help="text with one or more [MASK] tokens (upper-case, with the brackets)")
    p.add_argument("--pair", default=None, help="an optional second sentence (segment B) (default: none)")
    p.add_argument("--model", default="bert-base-uncased",
                   help="Hub id or local directory of a checkpoint with its MLM head (default: bert-base-uncased)")
    p.add_argument("--top-k", type=int, default=5, help="candidates shown per [MASK] (default: 5)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        model, tokenizer, warning = load_masked_lm(args.model, args.device)
        if warning:
            print(f"\n!!! WARNING: {warning}\n", file=sys.stderr)
        predictions = fill_mask(model, tokenizer, args.text, top_k=args.top_k, text_pair=args.pair)
    except (InspectionError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_fill_mask(args.text if args.pair is None else f"{args.text} || {args.pair}", predictions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
