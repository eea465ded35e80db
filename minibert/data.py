"""The fine-tuning data: NLTK's movie_reviews (Pang & Lee 2004, polarity v2.0), the fixed train/test split,
how a review longer than BERT's 512 positions is cut, and batches with as little padding as possible.

The split is fixed so that results are comparable: in each class, files cv000-cv799 train (800 + 800) and
cv800-cv999 test (200 + 200). The corpus's own protocol, 10-fold cross-validation over the folds its file names
encode (cv000-cv099 = fold 1, ..., cv900-cv999 = fold 10), is `cv_split`. A review has ~850 WordPiece tokens, so truncation matters:
  head       the first max_length - 2 tokens
  tail       the last max_length - 2 tokens (reviewers often conclude with their verdict)
  head+tail  the first `head` and the last max_length - 2 - head tokens (Sun et al. 2019, "How to
             Fine-Tune BERT for Text Classification?", found 128 + 382 best on long reviews)
  chunks     every token, in windows of max_length - 2 with `stride` overlap; a review's prediction is
             the mean of its windows' logits
Users' own labelled texts (scripts/finetune.py --data) are read by labelled_texts.py into the same Review
records; a Review may carry a second text, and a sentence pair becomes segments A and B.
"""

from __future__ import annotations

import contextlib
import io
import random
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .inputs import head_tail
from .tokenizer import BertTokenizer

LABELS = ("neg", "pos")  # label 0, label 1
STRATEGIES = ("head", "tail", "head+tail", "chunks")
TRAIN_FILES = range(0, 800)  # cv000-cv799
TEST_FILES = range(800, 1000)  # cv800-cv999


class CorpusError(RuntimeError):
    """The movie_reviews corpus is missing or not the one expected."""


@dataclass
class Review:
    fileid: str  # e.g. "pos/cv812_17924.txt"
    text: str
    label: int  # 0 = neg, 1 = pos (users' data: the index of its label name)
    pair: str | None = None  # the second text of a sentence pair (segment B); movie reviews have none


def split_lines(text: str) -> list[str]:
    r"""The lines of a text, split at "\n" and "\r\n" only (str.splitlines also splits at form feeds, U+0085,
    U+2028 and others, which are characters inside a line of a text file or a JSON string).

    >>> split_lines("one\r\ntwo\u2028still two\fand two\nthree")
    ['one', 'two\u2028still two\x0cand two', 'three']
    """
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the text ended with a line break
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def load_movie_reviews(download: bool = True) -> list[Review]:
    """All 2000 reviews, sorted by file id, read through `nltk.corpus.movie_reviews`.

    On first use NLTK fetches the corpus (about 4 MB) into its data directory; with no network, point
    NLTK_DATA at a folder holding corpora/movie_reviews.zip.
    """
    import nltk
    from nltk.corpus import movie_reviews

    try:
        try:
            movie_reviews.ensure_loaded()
        except LookupError:
            if not download or not _download_quietly(nltk):
                raise CorpusError(
                    "the NLTK movie_reviews corpus is not installed and could not be downloaded. Run "
                    "`python -m nltk.downloader movie_reviews` on a machine with network access, or set NLTK_DATA to "
                    "a folder that holds corpora/movie_reviews.zip (in this repository: NLTK_DATA=../shared/nltk_data)"
                ) from None
            movie_reviews.ensure_loaded()
        reviews = [Review(f, movie_reviews.raw(f), LABELS.index(f.split("/")[0])) for f in sorted(movie_reviews.fileids())]
    except (zipfile.BadZipFile, EOFError, UnicodeDecodeError) as e:  # a download cut short, a damaged disk
        raise CorpusError(f"the movie_reviews corpus ({_corpus_path(nltk)}) is damaged ({e}); delete it and run "
                          f"`python -m nltk.downloader movie_reviews` again") from None
    if len(reviews) != 2000:
        raise CorpusError(f"movie_reviews has {len(reviews)} files, expected 2000 (1000 pos + 1000 neg); reinstall it")
    return reviews


def _corpus_path(nltk) -> str:
    """Where NLTK's data folders hold movie_reviews.zip, for messages (nltk.data.find would open it)."""
    found = [Path(d) / "corpora" / "movie_reviews.zip" for d in nltk.data.path]
    return str(next((f for f in found if f.is_file()), "corpora/movie_reviews.zip in NLTK_DATA"))


def _download_quietly(nltk) -> bool:
    """Try NLTK's download; its own messages (printed even with quiet=True when it fails) are swallowed, so
    that the one line of CorpusError is all a user sees."""
    try:
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            return bool(nltk.download("movie_reviews", quiet=True, raise_on_error=True, print_error_to=sink))
    except Exception:  # no network, proxy errors, read-only data dir: all reported the same way
        return False


def file_number(fileid: str) -> int:
    """"neg/cv123_4567.txt" -> 123."""
    m = re.search(r"cv(\d{3})_", fileid)
    if not m:
        raise CorpusError(f"unexpected movie_reviews file name {fileid!r}")
    return int(m.group(1))


def split(reviews: list[Review]) -> tuple[list[Review], list[Review]]:
    """The fixed split: cv000-cv799 of each class train, cv800-cv999 test."""
    train = [r for r in reviews if file_number(r.fileid) in TRAIN_FILES]
    test = [r for r in reviews if file_number(r.fileid) in TEST_FILES]
    return train, test


# ---- Pang & Lee's ten folds ---------------------------------------------------------------------------
# The corpus's own protocol (Pang & Lee 2004, and every paper that compares with it, e.g. NBSVM-bi 89.45%,
# Wang & Manning 2012): 10-fold cross-validation over the folds that the file names encode,
#     fold = file number // 100 + 1:   cv000-cv099 -> fold 1,  cv100-cv199 -> fold 2,  ...,  cv900-cv999 -> fold 10
# Each fold holds 100 pos + 100 neg reviews; each is tested once by a model trained on the other nine.

N_FOLDS = 10


def fold_of(fileid: str) -> int:
    """"neg/cv123_4567.txt" -> 2 (cv100-cv199); folds are numbered 1 to 10."""
    return file_number(fileid) // 100 + 1


def pang_lee_folds(reviews: list[Review]) -> list[list[Review]]:
    """The reviews of folds 1 to 10 (a list of 10 lists, each in the given order)."""
    return [[r for r in reviews if fold_of(r.fileid) == k] for k in range(1, N_FOLDS + 1)]


def cv_split(reviews: list[Review], fold: int) -> tuple[list[Review], list[Review]]:
    """(train, test) for one fold of the ten: test = that fold's 200 reviews, train = the other 1800."""
    if not 1 <= fold <= N_FOLDS:
        raise ValueError(f"fold must be between 1 and {N_FOLDS}, got {fold}")
    return [r for r in reviews if fold_of(r.fileid) != fold], [r for r in reviews if fold_of(r.fileid) == fold]


# ---- From text to model inputs ------------------------------------------------------------------------


@dataclass
class Example:
    input_ids: list[int]  # [CLS] ... [SEP]
    label: int
    doc: int  # index of the review it came from (several examples per review with "chunks")
    token_type_ids: list[int] | None = None  # segments of a pair: 0 for [CLS] A [SEP], 1 for B [SEP]; None: all 0


def encode_reviews(
    reviews: list[Review],
    tokenizer: BertTokenizer,
    strategy: str = "head+tail",
    max_length: int = 512,
    head: int = 128,
    stride: int = 128,
) -> list[Example]:
    """Tokenize each review once and cut it to model inputs with the given truncation strategy.

    A sentence pair becomes "[CLS] A [SEP] B [SEP]" with segments 0 and 1; it is cut longest-first (the longer
    text loses tokens from its end) and only with strategy "head": the windows, heads and tails of one long
    text have no meaning for two texts.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown truncation strategy {strategy!r}; choose one of {STRATEGIES}")
    budget = max_length - 2  # room for [CLS] and [SEP]
    if budget < 1:
        raise ValueError(f"max_length {max_length} leaves no room for text next to [CLS] and [SEP]")
    if strategy == "head+tail" and not 0 <= head <= budget:
        raise ValueError(f"head={head} must be between 0 and max_length - 2 = {budget}")
    if strategy == "chunks" and not 0 <= stride < budget:
        raise ValueError(f"stride={stride} must be between 0 and max_length - 3 = {budget - 1}")
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    examples = []
    for i, review in enumerate(reviews):
        if review.pair is not None:
            if strategy != "head":
                raise ValueError(f"sentence pairs are cut longest-first, not with truncation {strategy!r}; use --truncation head")
            enc = tokenizer(review.text, review.pair, truncation="longest_first", max_length=max_length)
            examples.append(Example(enc["input_ids"], review.label, i, enc["token_type_ids"]))
            continue
        ids = tokenizer.encode(review.text, add_special_tokens=False)
        if strategy == "head":
            pieces = [ids[:budget]]
        elif strategy == "tail":
            pieces = [ids[-budget:] if len(ids) > budget else ids]
        elif strategy == "head+tail":
            pieces = [head_tail(ids, head, budget - head)]
        else:
            pieces = windows(ids, budget, stride)
        examples += [Example([cls, *p, sep], review.label, i) for p in pieces]
    return examples


def windows(ids: list[int], size: int, stride: int) -> list[list[int]]:
    """Cover `ids` with windows of `size` tokens, consecutive windows sharing `stride` tokens."""
    if len(ids) <= size:
        return [ids]
    step = size - stride
    starts = list(range(0, len(ids) - size, step)) + [len(ids) - size]  # the last window ends at the end
    return [ids[s : s + size] for s in starts]


# ---- Batches ------------------------------------------------------------------------------------------


def batch_order(
    examples: list[Example], batch_size: int, *, shuffle: bool, seed: int = 0, epoch: int = 0, group_by_length: bool = True
) -> list[list[int]]:
    """Indices of each batch. With shuffle, the order depends only on (seed, epoch), so a resumed run sees
    exactly the batches an uninterrupted one would. Length grouping sorts within pools of 50 batches so that
    a batch holds similar lengths (little padding) while the pools keep the order random."""
    idx = list(range(len(examples)))
    if shuffle:
        random.Random(seed * 100_003 + epoch).shuffle(idx)
    if group_by_length:
        pool = batch_size * 50
        idx = [i for s in range(0, len(idx), pool) for i in sorted(idx[s : s + pool], key=lambda i: -len(examples[i].input_ids))]
    batches = [idx[s : s + batch_size] for s in range(0, len(idx), batch_size)]
    if shuffle and group_by_length:
        random.Random(seed * 100_003 + epoch + 1).shuffle(batches)
    return batches


def collate(examples: list[Example], pad_id: int = 0) -> dict[str, torch.Tensor | None]:
    """Pad to the longest example of the batch. attention_mask is None when nothing is padded, which lets
    attention use its fastest kernel (no mask)."""
    T = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), T), dtype=torch.long)
    pairs = any(e.token_type_ids is not None for e in examples)
    types = torch.zeros((len(examples), T), dtype=torch.long) if pairs else None
    for row, e in enumerate(examples):
        ids[row, : len(e.input_ids)] = torch.tensor(e.input_ids)
        mask[row, : len(e.input_ids)] = 1
        if pairs and e.token_type_ids is not None:
            types[row, : len(e.input_ids)] = torch.tensor(e.token_type_ids)
    return {
        "input_ids": ids,  # (B, T)
        "attention_mask": None if bool(mask.all()) else mask,  # (B, T) or None
        "token_type_ids": types,  # (B, T) for sentence pairs; None: every token in segment A
        "labels": torch.tensor([e.label for e in examples]),  # (B,)
        "doc": torch.tensor([e.doc for e in examples]),  # (B,)
    }
