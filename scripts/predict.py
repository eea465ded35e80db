#!/usr/bin/env python
"""Classify texts with a fine-tuned minibert (or transformers) sequence classifier: one line per text,
"label <TAB> probability <TAB> source", or with --format jsonl one JSON object per text with every class's
probability. Results come in input order, as soon as they are computed.

    python scripts/predict.py --model runs/finetune/model "a gripping, beautifully acted film" "two dull hours"
    python scripts/predict.py --model runs/finetune/model --files review1.txt review2.txt --format jsonl
    cat reviews.txt | python scripts/predict.py --model runs/finetune/model --lines -
    python scripts/predict.py --model runs/nli/model "a man is sleeping" --pair "nobody is awake"

Long texts are cut the way the model was fine-tuned (scripts/finetune.py records its truncation in
model/minibert_finetune.json); --truncation, --max-length, --head and --stride override it.
"""

import argparse
import json
import sys
from pathlib import Path

import torch

from minibert.cli import main_for
from minibert.data import STRATEGIES, encode_reviews
from minibert.predict import classify_stream, inference_settings, load_fine_tuned
from minibert.data import split_lines
from minibert.labelled_texts import decode
from minibert.training import keep_freed_memory, pick_device, precision_and_reason


def parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("texts", nargs="*", help="texts to classify")
    p.add_argument("--model", required=True, help="fine-tuned model directory (HF layout), e.g. runs/finetune/model")
    p.add_argument("--pair", nargs="+", default=[], help="sentence pairs: the second text of each text given, in the same order")
    p.add_argument("--files", nargs="+", default=[], help="text files, each classified as one text")
    p.add_argument("--lines", default=None, help="a file (or - for stdin) with one text per line (pairs: first <TAB> second); blank lines are skipped")
    p.add_argument("--format", choices=("text", "jsonl"), default="text", help="text: label, probability, source; jsonl: also every class's probability (default: text)")
    p.add_argument("--truncation", choices=STRATEGIES, default=None, help="how long texts are cut (default: as the model was fine-tuned, else chunks)")
    p.add_argument("--max-length", type=int, default=None, help="tokens per window including [CLS] and [SEP] (default: as fine-tuned, else 512)")
    p.add_argument("--head", type=int, default=None, help="head+tail: tokens kept from the start (default: as fine-tuned, else 128)")
    p.add_argument("--stride", type=int, default=None, help="chunks: tokens shared by consecutive windows (default: as fine-tuned, else max-length // 4)")
    p.add_argument("--batch-size", type=int, default=None, help="windows per forward pass (default: 16 on the CPU, where larger "
                                                                 "batches measured slower, 64 on a GPU)")
    p.add_argument("--device", default="auto", help="auto, cuda or cpu (default: auto)")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                   help="bf16: weights cast to bf16 once at load; auto: bf16 on a GPU or a CPU with native bf16 units, "
                        "else fp32 (default: auto; the choice is printed on stderr)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a bar of the windows done on stderr (default: on a terminal, once a run takes more than 2 s)")
    return p


def read_inputs(a) -> tuple[list[str], list[str] | None, list[str]]:
    """(texts, second texts or None, where each came from), every one checked before the model is loaded."""
    texts, sources = list(a.texts), [f"arg{i + 1}" for i in range(len(a.texts))]
    pairs = list(a.pair) if a.pair else None
    if pairs is not None and (a.files or a.lines is not None):
        raise ValueError(f"--pair goes with texts on the command line, not with {'--files' if a.files else '--lines'}; "
                         f"for pairs in a file use --lines with first <TAB> second on each line")
    if pairs is not None and len(pairs) != len(texts):
        raise ValueError(f"--pair gives {len(pairs)} second texts for {len(texts)} texts; give one per text")
    for f in a.files:
        texts.append(decode(read_file(f, "--files"), f"--files {f}"))
        sources.append(f)
    if a.lines is not None:
        raw = sys.stdin.buffer.read() if a.lines == "-" else read_file(a.lines, "--lines")
        for n, line in enumerate(split_lines(decode(raw, f"--lines {a.lines}")), 1):
            if line.strip():
                texts.append(line)
                sources.append(f"{a.lines}:{n}")
    if not texts:
        raise ValueError("nothing to classify: give texts, --files or --lines")
    for i, (text, source) in enumerate(zip(texts, sources)):
        if not text.strip():
            raise ValueError(f"{source} is empty or only whitespace; give it a text to classify")
        if pairs is not None and not pairs[i].strip():
            raise ValueError(f"the --pair text of {source} is empty or only whitespace")
    return texts, pairs, sources


def read_file(path: str, flag: str) -> bytes:
    """The bytes of a file the user named; a path that cannot be read is one line naming the flag."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{flag} {path}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{flag} {path}: is a folder; give the text files in it") from None
    except OSError as e:  # a symbolic link loop, no permission, ...
        raise ValueError(f"{flag} {path}: cannot be read ({e.strerror.lower() if e.strerror else e})") from None


def predict(a) -> None:
    """Check every input, load the model, print one result per text as soon as it is known."""
    if a.batch_size is not None and a.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {a.batch_size}")
    texts, pairs, sources = read_inputs(a)
    device = pick_device(a.device, training=False)
    precision, why = precision_and_reason(device, a.precision, training=False)
    if device.type == "cpu":
        keep_freed_memory(any_size=True)  # no page faults on every batch's activations: see its docstring
    model, tokenizer, trained = load_fine_tuned(a.model, dtype=torch.bfloat16 if precision == "bf16" else None)
    positions = model.config.max_position_embeddings
    if a.max_length is not None and a.max_length > positions:
        raise ValueError(f"--max-length {a.max_length} is longer than the {positions} positions of --model {a.model}; "
                         f"give --max-length {positions} or less")
    if trained.get("pairs") and pairs is None and a.lines is not None:  # "first <TAB> second" lines
        split = [t.split("\t", 1) for t in texts]
        bad = next((s for s, parts in zip(sources, split) if len(parts) != 2), None)
        if bad:
            raise ValueError(f"{bad}: the model classifies sentence pairs; write each line as first <TAB> second")
        texts, pairs = [p[0] for p in split], [p[1] for p in split]
        empty = next((src for src, first, second in zip(sources, texts, pairs) if not first.strip() or not second.strip()), None)
        if empty:
            raise ValueError(f"{empty}: one text of the pair is empty or only whitespace")
    if "pairs" in trained and trained["pairs"] != (pairs is not None):
        raise ValueError(f"--model {a.model} was fine-tuned on {'sentence pairs' if trained['pairs'] else 'single texts'}; "
                         + ("give the second texts with --pair" if trained["pairs"] else "leave out --pair"))
    settings = inference_settings(trained, truncation=a.truncation, max_length=a.max_length, head=a.head, stride=a.stride)
    stride = settings["stride"] if settings["stride"] is not None else settings["max_length"] // 4
    encode_reviews([], tokenizer, settings["truncation"], settings["max_length"], settings["head"], stride)  # checks the window
    print(f"precision: {precision} ({why})", file=sys.stderr)  # every check passed: say how it will run
    results = classify_stream(model, tokenizer, texts, pairs, **settings, batch_size=a.batch_size, device=device,
                             precision=precision, progress=a.progress)
    for r, source in zip(results, sources):  # results first: its end closes the progress bar
        if a.format == "jsonl":
            print(json.dumps({"source": source, **r}, allow_nan=False), flush=True)  # NaN is not JSON
        else:
            print(f"{r['label']}\t{r['probability']:.4f}\t{source}", flush=True)


def main(argv=None) -> int:
    return main_for(predict, parser().parse_args(argv))  # bad input: one line on stderr, exit code 2


if __name__ == "__main__":
    sys.exit(main())
