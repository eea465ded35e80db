#!/usr/bin/env python
"""Classify texts with a fine-tuned minibert (or transformers) sequence classifier: one line per text,
"label <TAB> probability <TAB> source".

    python scripts/predict.py --model runs/finetune/model "a gripping, beautifully acted film" "two dull hours"
    python scripts/predict.py --model runs/finetune/model --files review1.txt review2.txt
    cat reviews.txt | python scripts/predict.py --model runs/finetune/model --lines -
"""

import argparse
import sys
from pathlib import Path

from minibert import BertForSequenceClassification, BertTokenizer
from minibert.data import STRATEGIES
from minibert.finetune import classify


def parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("texts", nargs="*", help="texts to classify")
    p.add_argument("--model", required=True, help="fine-tuned model directory (HF layout), e.g. runs/finetune/model")
    p.add_argument("--files", nargs="+", default=[], help="text files, each classified as one text")
    p.add_argument("--lines", default=None, help="a file (or - for stdin) with one text per line")
    p.add_argument("--truncation", choices=STRATEGIES, default="chunks", help="how long texts are cut (default: chunks, all windows averaged)")
    p.add_argument("--max-length", type=int, default=512, help="tokens per window including [CLS] and [SEP] (default: 512)")
    p.add_argument("--head", type=int, default=128, help="head+tail: tokens kept from the start (default: 128)")
    p.add_argument("--batch-size", type=int, default=64, help="windows per forward pass (default: 64)")
    p.add_argument("--device", default="auto", help="auto, cuda or cpu (default: auto)")
    return p


def main(argv=None) -> int:
    a = parser().parse_args(argv)
    texts, sources = list(a.texts), [f"arg{i + 1}" for i in range(len(a.texts))]
    try:
        for f in a.files:
            texts.append(Path(f).read_text(encoding="utf-8"))
            sources.append(f)
        if a.lines is not None:
            stream = sys.stdin if a.lines == "-" else open(a.lines, encoding="utf-8")
            with stream:
                for n, line in enumerate(stream, 1):
                    if line.strip():
                        texts.append(line.rstrip("\n"))
                        sources.append(f"{a.lines}:{n}")
        if not texts:
            print("error: nothing to classify: give texts, --files or --lines", file=sys.stderr)
            return 2
        tokenizer = BertTokenizer.from_pretrained(a.model)
        model = BertForSequenceClassification.from_pretrained(a.model)
        results = classify(model, tokenizer, texts, truncation=a.truncation, max_length=a.max_length, head=a.head,
                           batch_size=a.batch_size, device=a.device)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for r, source in zip(results, sources):
        print(f"{r['label']}\t{r['probability']:.4f}\t{source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
