"""The reviews a fine-tuning run must not train on: with --val-size N, the validation slice is the N / 2
highest-numbered training files of each class (cv800 - N/2 ... cv799), the rest of cv000-cv799 trains, and
cv800-cv999 stay the test set; each review is in exactly one of them. Checked review by review on the real corpus."""

from __future__ import annotations

from collections import Counter

import pytest

from minibert import BertTokenizer
from minibert.data import encode_reviews, file_number, load_movie_reviews
from minibert.finetune import FinetuneArgs, prepare_data


@pytest.fixture(scope="module")
def reviews(movie_reviews):
    return load_movie_reviews(download=False)


def as_set(examples) -> Counter:
    """The examples as a multiset of (label, ids): a few reviews of the corpus begin alike."""
    return Counter((e.label, tuple(e.input_ids)) for e in examples)


@pytest.mark.parametrize("val_size", [0, 100])
def test_validation_slice_is_the_last_training_files_and_is_never_trained_on(reviews, vocab_path, val_size):
    tok = BertTokenizer(vocab_path)
    args = FinetuneArgs(model="unused", truncation="head", max_length=40, val_size=val_size)
    data = prepare_data(args, tok, reviews)

    def expected(low: int, high: int) -> Counter:
        chosen = [r for r in reviews if low <= file_number(r.fileid) < high]
        return as_set(encode_reviews(chosen, tok, "head", max_length=40))

    cut = 800 - val_size // 2
    assert as_set(data.train) == expected(0, cut)
    assert as_set(data.val) == expected(cut, 800)
    assert as_set(data.test) == expected(800, 1000)
    assert (len(data.train), len(data.val), len(data.test)) == (1600 - val_size, val_size, 400)  # one example per review
    assert (data.n_val_docs, data.n_test_docs) == (val_size, 400)
    assert sum(e.label for e in data.val) == val_size // 2  # half per class
