"""Train a WordPiece vocabulary (minibert.vocab) and write it as a vocab.txt that BertTokenizer loads.

    python scripts/train_vocab.py --output runs/my-vocab.txt     # movie_reviews -> runs/my-vocab.txt
    python scripts/train_vocab.py --overwrite                   # rebuild the shipped vocab/movie-reviews-wordpiece.txt
    python scripts/train_vocab.py --files a.txt b.txt --output my-vocab.txt --vocab-size 16000

An existing file (the shipped vocabulary included) is never replaced without --overwrite.
Bad input ends with one line on stderr and exit code 2.

Then: `minibert.BertTokenizer("vocab/movie-reviews-wordpiece.txt")` (or transformers' BertTokenizer).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import NoReturn

from minibert.tokenizer import MAX_WORD_CHARS, first_bad_utf8
from minibert.vocab import (
    SCORES,
    SPECIAL_TOKENS,
    count_words,
    initial_alphabet,
    save_vocab,
    token_stats,
    train_wordpiece_from_counts,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "vocab" / "movie-reviews-wordpiece.txt"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--corpus",
        choices=["movie_reviews"],
        default="movie_reviews",
        help="train on a named corpus: NLTK's movie_reviews (2000 reviews, 1.6M words), read through nltk.corpus "
        "(set NLTK_DATA if it lives outside NLTK's usual folders); the default when no --files are given",
    )
    source.add_argument(
        "--files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="train on these UTF-8 text files instead of --corpus (read line by line)",
    )
    parser.add_argument(
        "--vocab-size",
        type=int,
        default=8000,
        help="tokens in the vocabulary, the special tokens and the alphabet included (default: %(default)s)",
    )
    parser.add_argument(
        "--min-frequency", type=int, default=2, help="merge only pairs seen at least this many times (default: %(default)s)"
    )
    parser.add_argument(
        "--limit-alphabet",
        type=int,
        default=None,
        help="keep only this many of the most frequent initial symbols (default: keep every character seen)",
    )
    parser.add_argument(
        "--score",
        choices=SCORES,
        default="likelihood",
        help="which pair to merge: 'likelihood' = freq(ab) log(freq(ab) N / (freq(a) freq(b))), the likelihood gain; "
        "'ratio' = freq(ab) / (freq(a) freq(b)), the Hugging Face course's version (default: %(default)s)",
    )
    parser.add_argument(
        "--cased",
        action="store_true",
        help="keep upper case and accents (default: lower-case and strip accents, as uncased BERT)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"where to write the vocabulary, one token per line (default with --corpus: {DEFAULT_OUTPUT.relative_to(ROOT)} "
        f"in the repository, which already holds the shipped file: pass --overwrite to rebuild it; required with --files)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the --output file if it exists (default: refuse)"
    )
    parser.add_argument("--progress", action="store_true", help="show a progress bar while merging (default: off)")
    args = parser.parse_args(argv)

    if args.files is not None:
        if args.output is None:
            fail("--output is required with --files (the default path is for the movie_reviews vocabulary)")
        for path in args.files:
            if not path.exists():
                fail(f"--files: no such file: {path}")
            if not path.is_file():
                fail(f"--files: {path} is not a regular file")
    elif args.output is None:
        args.output = DEFAULT_OUTPUT
    if args.output.is_dir():
        fail(f"--output {args.output} is a directory; give the path of the file to write")
    if args.output.exists() and not args.overwrite:
        fail(f"--output {args.output} exists; pass --overwrite to replace it, or another --output path")
    folder = next(p for p in args.output.absolute().parents if p.exists())  # the folder that will hold it
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        fail(f"--output {args.output} cannot be written ({folder} is not a writable folder); choose another --output")
    for name in ("vocab_size", "min_frequency", "limit_alphabet"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "min_frequency" else 1):
            fail(f"--{name.replace('_', '-')} must be {'>= 0' if name == 'min_frequency' else '>= 1'}, got {value}")
    return args


def fail(message: str) -> NoReturn:
    """Expected bad input: one line on stderr naming the option to change, exit code 2 (as argparse does)."""
    print(f"train_vocab.py: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def read_texts(args: argparse.Namespace):
    """The corpus as an iterable of strings (lines of the files, or whole reviews)."""
    if args.files is not None:
        return _lines(args.files)
    from nltk.corpus import movie_reviews

    try:
        fileids = sorted(movie_reviews.fileids())
    except LookupError:
        fail(
            "--corpus movie_reviews: the NLTK corpus is not installed. Run python -c \"import nltk; "
            "nltk.download('movie_reviews')\", set NLTK_DATA to the folder that holds corpora/movie_reviews, or pass --files"
        )
    return (movie_reviews.raw(f) for f in fileids)


def _lines(paths):
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                yield from f
        except UnicodeDecodeError:
            fail(f"--files: {path} is not UTF-8 text ({first_bad_utf8(path)}); convert it to UTF-8")


def main(argv=None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    word_counts = count_words(read_texts(args), do_lower_case=not args.cased)
    counted = time.perf_counter()
    words, distinct = sum(word_counts.values()), len(word_counts)
    print(f"corpus: {words:,} words, {distinct:,} distinct ({counted - start:.1f} s to read and count)")
    # The checks of train_wordpiece_from_counts, made here so that the message names the option.
    trainable = {w: n for w, n in word_counts.items() if len(w) <= MAX_WORD_CHARS}  # longer words are [UNK]
    if not trainable:
        fail("the corpus has no words: the --files hold only spaces, control characters and words over 100 characters")
    smallest = len(set(SPECIAL_TOKENS) | set(initial_alphabet(trainable, args.limit_alphabet)))
    if args.vocab_size < smallest:
        fail(
            f"--vocab-size {args.vocab_size} is smaller than the {len(SPECIAL_TOKENS)} special tokens plus the alphabet "
            f"of the corpus; ask for at least {smallest}, or pass --limit-alphabet"
        )

    vocab = train_wordpiece_from_counts(
        word_counts,
        args.vocab_size,
        min_frequency=args.min_frequency,
        limit_alphabet=args.limit_alphabet,
        score=args.score,
        show_progress=args.progress,
    )
    trained = time.perf_counter()
    save_vocab(vocab, args.output)

    stats = token_stats(vocab, word_counts)
    baseline = token_stats([*SPECIAL_TOKENS, *initial_alphabet(word_counts, args.limit_alphabet)], word_counts)
    print(f"vocabulary: {len(vocab):,} tokens ({args.score} score) learned in {trained - counted:.1f} s")
    print(f"written to {args.output}")
    if len(vocab) < args.vocab_size:
        print(f"  (fewer than --vocab-size {args.vocab_size}: no pair seen {args.min_frequency} times or more was left to merge)")
    print(f"[UNK] rate on the corpus: {stats.unk_rate:.4%} of the words ({stats.unk:,} [UNK] in {stats.tokens:,} tokens)")
    print(f"tokens per word: {stats.tokens_per_word:.3f} (characters only, no merges: {baseline.tokens_per_word:.3f})")
    print(f"total time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
