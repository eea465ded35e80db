"""minibert.vocab: the WordPiece trainer against a hand-worked example, its fast and plain versions
against each other, and the shipped movie_reviews vocabulary against the character-only baseline."""

from __future__ import annotations

import doctest
import itertools
import math
import random
import runpy
import shutil
from fractions import Fraction
from pathlib import Path

import pytest
import transformers
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

import minibert.vocab
from minibert import BertTokenizer
from minibert.vocab import (
    SPECIAL_TOKENS,
    Merge,
    count_words,
    initial_alphabet,
    learn_merges,
    learn_merges_plain,
    merge_symbols,
    save_vocab,
    split_word,
    token_stats,
    train_wordpiece,
    train_wordpiece_from_counts,
)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "vocab" / "movie-reviews-wordpiece.txt"
SCRIPT = ROOT / "scripts" / "train_vocab.py"

# The worked example of the module docstring (the Hugging Face course's corpus).
HUGS = {"hug": 10, "pug": 5, "pun": 12, "bun": 4, "hugs": 5}
HUGS_TEXTS = [" ".join([word] * n) for word, n in HUGS.items()]
HUGS_ALPHABET = ["##g", "##n", "##s", "##u", "b", "h", "p"]


# ---- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_counts(review_texts):
    return count_words(review_texts)


@pytest.fixture(scope="module")
def shipped_tokens():
    assert SHIPPED.is_file(), f"{SHIPPED} is missing: run python scripts/train_vocab.py"
    return SHIPPED.read_text(encoding="utf-8").splitlines()


# ---- the pieces --------------------------------------------------------------------------------


def test_docstring_examples_hold():
    result = doctest.testmod(minibert.vocab, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 6 and result.failed == 0


def test_symbols_of_a_word_and_of_a_merge():
    assert split_word("hugs") == ["h", "##u", "##g", "##s"]
    assert split_word("a") == ["a"]
    assert merge_symbols("h", "##u") == "hu"  # a word start stays a word start
    assert merge_symbols("##g", "##s") == "##gs"  # a continuation stays a continuation
    assert merge_symbols("hu", "##gs") == "hugs"


def test_count_words_pre_tokenizes_like_bert():
    assert count_words(["The film, the FILM!", "Café"]) == {"the": 2, "film": 2, ",": 1, "!": 1, "cafe": 1}
    assert count_words(["The Café"], do_lower_case=False) == {"The": 1, "Café": 1}


def test_alphabet_is_every_symbol_or_the_most_frequent():
    assert initial_alphabet(HUGS) == HUGS_ALPHABET
    # freq: ##u 36, ##g 20, p 17, ##n 16, h 15, ##s 5, b 4
    assert initial_alphabet(HUGS, limit_alphabet=3) == ["##g", "##u", "p"]


def test_token_stats_counts_words_pieces_and_unknown_words():
    vocab = [*SPECIAL_TOKENS, *HUGS_ALPHABET, "##gs", "pu"]
    # hug: h ##u ##g, pug: pu ##g, pun: pu ##n, bun: b ##u ##n, hugs: h ##u ##gs, zz: [UNK] (no "z")
    stats = token_stats(vocab, {**HUGS, "zz": 2})
    assert stats == (38, 10 * 3 + 5 * 2 + 12 * 2 + 4 * 3 + 5 * 3 + 2 * 1, 2)
    assert stats.unk_rate == 2 / 38 and stats.tokens_per_word == 93 / 38


# ---- the hand-worked example ---------------------------------------------------------------


def test_hand_worked_example_ratio_score():
    """freq(ab) / (freq(a) freq(b)), worked by hand (module docstring), every merge with its exact score.

    Start: h ##u ##g (10), p ##u ##g (5), p ##u ##n (12), b ##u ##n (4), h ##u ##g ##s (5).
    1. ##g ##s: 5/(20*5) = 1/20 beats the five other pairs, all 5/(...) = 1/36.
    2. all five pairs left score 1/36: the most frequent wins, p ##u (17).
    3. ##u is down to 19: h ##u 15/(15*19), b ##u 4/(4*19), ##u ##gs 5/(19*5) tie at 1/19; h ##u (15) wins.
    4. b ##u: 4/(4*4) = 1/4.            5. hu ##gs: 5/(15*5) = 1/15 beats bu ##n 4/(4*16) = 1/16.
    6. hu ##g: 10/(10*15) = 1/15.       7. bu ##n: 4/(4*16) = 1/16 beats pu ##g 5/(17*5) = 1/17.
    8. pu ##g 5/(17*5) and pu ##n 12/(17*12) tie at 1/17: pu ##n (12) wins.   9. pu ##g: 5/(5*5).
    """
    expected = [
        Merge("##g", "##s", "##gs", 5, Fraction(1, 20)),
        Merge("p", "##u", "pu", 17, Fraction(1, 36)),
        Merge("h", "##u", "hu", 15, Fraction(1, 19)),
        Merge("b", "##u", "bu", 4, Fraction(1, 4)),
        Merge("hu", "##gs", "hugs", 5, Fraction(1, 15)),
        Merge("hu", "##g", "hug", 10, Fraction(1, 15)),
        Merge("bu", "##n", "bun", 4, Fraction(1, 16)),
        Merge("pu", "##n", "pun", 12, Fraction(1, 17)),
        Merge("pu", "##g", "pug", 5, Fraction(1, 5)),
    ]
    assert list(learn_merges(HUGS, min_frequency=1, score="ratio")) == expected
    assert list(learn_merges_plain(HUGS, min_frequency=1, score="ratio")) == expected

    learned = [m.token for m in expected]
    full = [*SPECIAL_TOKENS, *HUGS_ALPHABET, *learned]
    assert train_wordpiece(HUGS_TEXTS, 100, min_frequency=1, score="ratio") == full  # ran out of pairs: 21 tokens
    assert train_wordpiece(HUGS_TEXTS, 14, min_frequency=1, score="ratio") == full[:14]  # 2 merges fit


def test_hand_worked_example_likelihood_score():
    """freq(ab) log(freq(ab) N / (freq(a) freq(b))), N = symbols in the corpus, worked by hand.

    1. N = 113; the five pairs with ratio 1/36 score freq * log(113/36): ##u ##g (20) is the largest,
       22.88, above ##g ##s 5 log(5*113/(20*5)) = 8.66.
    2. N = 93: ##u ##n 16 log(16*93/(16*16)) = 28.16 beats h ##ug 15 log(15*93/(15*20)) = 23.05.
    3. N = 77: h ##ug 15 log(15*77/(15*20)) = 20.22 beats p ##un 12 log(12*77/(17*16)) = 14.67.
    4. N = 62: p ##un 12 log(12*62/(17*16)) = 12.07.   5. N = 50: p ##ug 5 log(5*50/(5*5)) = 11.51.
    6. N = 45: b ##un 4 log(4*45/(4*4)) = 9.68.         7. N = 41: hug ##s 5 log(5*41/(15*5)) = 5.03.
    """
    expected = [
        ("##u", "##ug", 20, 20 * math.log(113 / 36)),
        ("##u", "##un", 16, 16 * math.log(16 * 93 / (16 * 16))),
        ("h", "hug", 15, 15 * math.log(15 * 77 / (15 * 20))),
        ("p", "pun", 12, 12 * math.log(12 * 62 / (17 * 16))),
        ("p", "pug", 5, 5 * math.log(5 * 50 / (5 * 5))),
        ("b", "bun", 4, 4 * math.log(4 * 45 / (4 * 4))),
        ("hug", "hugs", 5, 5 * math.log(5 * 41 / (15 * 5))),
    ]
    for merges in (list(learn_merges(HUGS)), list(learn_merges_plain(HUGS))):
        assert [(m.left, m.token, m.count) for m in merges] == [e[:3] for e in expected]
        assert [m.score for m in merges] == pytest.approx([e[3] for e in expected], rel=1e-12)
    learned = [e[1] for e in expected]
    assert train_wordpiece(HUGS_TEXTS, 100) == [*SPECIAL_TOKENS, *HUGS_ALPHABET, *learned]


def test_equal_scores_and_counts_go_to_the_pair_first_in_string_order():
    # "ab" and "cd" once each: both pairs score 1/(1*1) and occur once; (a, ##b) < (c, ##d).
    for texts in (["ab cd"], ["cd ab"], ["cd", "ab"]):
        merges = list(learn_merges(count_words(texts), min_frequency=1, score="ratio"))
        assert [m.token for m in merges] == ["ab", "cd"]
        assert train_wordpiece(texts, 100, min_frequency=1) == [*SPECIAL_TOKENS, "##b", "##d", "a", "c", "ab", "cd"]


def test_min_frequency_leaves_rare_pairs_alone():
    counts = {"ab": 3, "cd": 2}
    assert [m.token for m in learn_merges(counts, min_frequency=3)] == ["ab"]
    assert [m.token for m in learn_merges(counts, min_frequency=2)] == ["ab", "cd"]
    assert [m.token for m in learn_merges(counts, min_frequency=0)] == ["ab", "cd"]  # 0 is "any pair"
    assert train_wordpiece(["ab ab ab cd cd"], 100, min_frequency=4) == [*SPECIAL_TOKENS, "##b", "##d", "a", "c"]


# ---- the fast trainer is the plain one -------------------------------------------------------

words = st.text(alphabet="abcd", min_size=1, max_size=9)


@settings(max_examples=300, deadline=None)
@given(
    counts=st.dictionaries(words, st.integers(1, 6), min_size=1, max_size=12),
    min_frequency=st.integers(0, 4),
    score=st.sampled_from(["likelihood", "ratio"]),
)
def test_incremental_trainer_gives_the_same_merges_as_recounting(counts, min_frequency, score):
    """Few letters and small counts make repeated symbols (##a ##a ##a), ties and reused strings common."""
    assert list(learn_merges(counts, min_frequency, score)) == list(learn_merges_plain(counts, min_frequency, score))


def test_incremental_trainer_gives_the_same_merges_on_real_text(corpus_counts):
    some = dict(sorted(corpus_counts.items())[::40])  # ~1000 real words, every 40th in string order
    for score in ("likelihood", "ratio"):
        fast, plain = learn_merges(some, 2, score), learn_merges_plain(some, 2, score)
        assert list(itertools.islice(fast, 300)) == list(itertools.islice(plain, 300))


# ---- determinism, bad input -------------------------------------------------------------------


def test_same_corpus_in_any_order_gives_the_same_vocabulary(review_texts):
    texts = review_texts[:150]
    shuffled = random.Random(0).sample(texts, len(texts))
    first = train_wordpiece(texts, 800)
    assert len(first) == 800 == len(set(first))
    assert train_wordpiece(texts, 800) == first
    assert train_wordpiece(shuffled, 800) == first
    assert train_wordpiece(iter(texts), 800) == first  # any iterable, read once


def test_bad_input_is_refused_with_a_clear_error():
    with pytest.raises(TypeError, match="not a single string"):
        train_wordpiece("a whole corpus in one string", 100)
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str"):
        train_wordpiece(["fine", b"bytes"], 100)
    for empty in ([], ["", "  \n\t ", "\x00"]):
        with pytest.raises(ValueError, match="no words"):
            train_wordpiece(empty, 100)
    with pytest.raises(ValueError, match=r"vocab_size=10 is smaller than .* \(12\); ask for at least 12"):
        train_wordpiece(HUGS_TEXTS, 10)
    with pytest.raises(TypeError, match="vocab_size must be an int"):
        train_wordpiece(HUGS_TEXTS, 100.0)
    with pytest.raises(TypeError, match="vocab_size must be an int"):
        train_wordpiece(HUGS_TEXTS, True)
    with pytest.raises(ValueError, match="min_frequency must be >= 0"):
        train_wordpiece(HUGS_TEXTS, 100, min_frequency=-1)
    with pytest.raises(ValueError, match="limit_alphabet must be >= 1"):
        train_wordpiece(HUGS_TEXTS, 100, limit_alphabet=0)
    with pytest.raises(ValueError, match="score must be one of 'likelihood', 'ratio'"):
        train_wordpiece(HUGS_TEXTS, 100, score="bpe")
    with pytest.raises(ValueError, match="duplicates"):
        train_wordpiece(HUGS_TEXTS, 100, special_tokens=["[PAD]", "[PAD]"])
    with pytest.raises(ValueError, match="special token"):
        train_wordpiece(HUGS_TEXTS, 100, special_tokens=["[PAD]", "two words\n"])
    with pytest.raises(TypeError, match="special_tokens must be a list"):
        train_wordpiece(HUGS_TEXTS, 100, special_tokens="[PAD]")
    with pytest.raises(ValueError, match="positive int"):
        train_wordpiece_from_counts({"hug": 0}, 100)
    with pytest.raises(ValueError, match="not a word"):
        train_wordpiece_from_counts({"two words": 1}, 100)


def test_save_vocab_writes_one_token_per_line_and_refuses_bad_tokens(tmp_path):
    path = save_vocab(["[PAD]", "a", "##b"], tmp_path / "sub" / "v.txt")
    assert path.read_bytes() == b"[PAD]\na\n##b\n"
    with pytest.raises(ValueError, match="duplicate"):
        save_vocab(["a", "b", "a"], tmp_path / "dup.txt")
    for bad in ("", "two\nlines", " a"):
        with pytest.raises(ValueError, match="cannot write token"):
            save_vocab(["a", bad], tmp_path / "bad.txt")


def test_a_limited_alphabet_gives_unk_exactly_where_the_characters_alone_do(review_texts):
    """Words with a symbol outside the alphabet are [UNK]: the same ones with or without merges.

    (Greedy longest-match never fails on a word whose every symbol is in the vocabulary, and no
    merged token holds a symbol outside the alphabet, so merges cannot add or remove an [UNK].)
    """
    counts = count_words(review_texts[:300])
    vocab = train_wordpiece_from_counts(counts, 1500, limit_alphabet=40)
    alphabet = initial_alphabet(counts, limit_alphabet=40)
    assert vocab[: 5 + 40] == [*SPECIAL_TOKENS, *alphabet]
    trained, characters = token_stats(vocab, counts), token_stats([*SPECIAL_TOKENS, *alphabet], counts)
    assert trained.unk == characters.unk > 0
    assert trained.tokens < characters.tokens


# ---- the shipped movie_reviews vocabulary ----------------------------------------------------


def test_shipped_vocabulary_is_what_the_script_trains(shipped_tokens, corpus_counts):
    """The file is `python scripts/train_vocab.py` (defaults: 8000 tokens, min_frequency 2, likelihood),
    every one of its 8000 lines (issue 13: this checked the first 1000)."""
    assert len(shipped_tokens) == 8000 == len(set(shipped_tokens))
    assert shipped_tokens[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert train_wordpiece_from_counts(corpus_counts, 8000) == shipped_tokens


def test_a_smaller_vocabulary_is_the_start_of_a_larger_one(corpus_counts):
    """Training stops after any number of tokens: a 400-token vocabulary is the first 400 lines of an 800-token one."""
    some = dict(sorted(corpus_counts.items())[::10])
    larger = train_wordpiece_from_counts(some, 800)
    assert len(larger) == 800 and train_wordpiece_from_counts(some, 400) == larger[:400]


def test_shipped_vocabulary_beats_the_character_baseline(shipped_tokens, corpus_counts, review_texts, tmp_path):
    """Acceptance (issue #6): over all 2000 reviews, no more [UNK] than the characters alone, and fewer tokens.

    The baseline is the special tokens and the alphabet, no merges: the first lines of the shipped file.
    Both give 0 [UNK] on this corpus: every character of the corpus is in both vocabularies, and
    a vocabulary that holds every symbol of a word always tokenizes it (see the test above), so
    on its own corpus a trained vocabulary cannot have strictly fewer [UNK] than its alphabet.
    Counted end to end: minibert's BertTokenizer on the raw reviews.
    """
    baseline = [*SPECIAL_TOKENS, *initial_alphabet(corpus_counts)]
    assert shipped_tokens[: len(baseline)] == baseline
    stats = {}
    for name, tokens in (("trained", shipped_tokens), ("characters", baseline)):
        tok = BertTokenizer(save_vocab(tokens, tmp_path / f"{name}.txt"))
        ids = [i for text in review_texts for i in tok.encode(text, add_special_tokens=False)]
        stats[name] = (len(ids), ids.count(tok.unk_token_id))
        assert token_stats(tokens, corpus_counts)[1:] == stats[name]  # the shortcut counts the same
    words = sum(corpus_counts.values())  # 1,587,464
    (tokens, unk), (base_tokens, base_unk) = stats["trained"], stats["characters"]
    assert unk <= base_unk
    assert unk == 0
    assert tokens / words < base_tokens / words
    assert tokens / words < 1.2  # 1.151 (characters: 3.922; bert-base-uncased's 30522 tokens: 1.070)


def test_shipped_vocabulary_loads_in_bert_tokenizers_and_round_trips_words(shipped_tokens, corpus_counts, review_texts, tmp_path):
    tok = BertTokenizer(SHIPPED)
    assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id) == (0, 1, 2, 3, 4)
    assert tok.tokenize("Unaffable performances, screenwriter hugs!") == [
        "un", "##aff", "##able", "performances", ",", "screenwriter", "hug", "##s", "!",
    ]  # fmt: skip
    # Every word of the corpus comes back from its pieces.
    for word in corpus_counts:
        pieces = tok.tokenize(word)
        assert "".join(p.removeprefix("##") for p in pieces) == word, (word, pieces)
    assert tok.decode(tok.encode("A thoroughly entertaining film.")) == "[CLS] a thoroughly entertaining film. [SEP]"

    # transformers reads the file the same way (its Rust-backed tokenizer on all reviews, the legacy one on some).
    shutil.copy(SHIPPED, tmp_path / "vocab.txt")
    rust = transformers.BertTokenizer.from_pretrained(str(tmp_path))
    mine = [tok.encode(text, add_special_tokens=False) for text in review_texts]
    assert rust(review_texts, add_special_tokens=False)["input_ids"] == mine
    legacy = BertTokenizerLegacy(str(SHIPPED))
    assert [legacy.tokenize(t) for t in review_texts[::20]] == [tok.tokenize(t) for t in review_texts[::20]]


# ---- the script ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def script_main():
    return runpy.run_path(str(SCRIPT), run_name="train_vocab")["main"]


def test_script_trains_on_files(script_main, tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(HUGS_TEXTS) + "\n", encoding="utf-8")
    out = tmp_path / "vocab.txt"
    script_main(["--files", str(corpus), "--output", str(out), "--vocab-size", "14", "--score", "ratio", "--min-frequency", "1"])
    assert out.read_text(encoding="utf-8").splitlines() == [*SPECIAL_TOKENS, *HUGS_ALPHABET, "##gs", "pu"]
    printed = capsys.readouterr().out
    assert "14 tokens" in printed and "[UNK] rate on the corpus: 0.0000%" in printed and "tokens per word" in printed
    assert BertTokenizer(out).tokenize("pug hugs") == ["pu", "##g", "h", "##u", "##gs"]


def test_script_help_documents_every_option(script_main, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # argparse wraps to the terminal, and would break the path in two
    with pytest.raises(SystemExit) as exit_:
        script_main(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    options = "--corpus --files --vocab-size --min-frequency --limit-alphabet --score --cased --output --progress"
    for option in options.split():
        assert option in text
    for default in ("(default: 8000)", "(default: 2)", "(default: likelihood)", "vocab/movie-reviews-wordpiece.txt"):
        assert default in text


def test_script_errors_are_clear(script_main, tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("hug pug pun bun hugs\n", encoding="utf-8")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf-8")
    cases = [
        (["--files", str(tmp_path / "missing.txt"), "--output", str(tmp_path / "v.txt")], "no such file"),
        (["--files", str(corpus)], "--output is required with --files"),
        (["--files", str(corpus), "--output", str(tmp_path)], "is a directory"),
        (["--files", str(corpus), "--output", str(tmp_path / "v.txt"), "--vocab-size", "0"], "--vocab-size must be >= 1"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_:
            script_main(argv)
        assert exit_.value.code == 2
        assert message in capsys.readouterr().err
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("hug\ncafé pug\n".encode("latin-1"))
    for argv, message in [
        (["--files", str(empty), "--output", str(tmp_path / "v.txt")], "the corpus has no words: the --files hold"),
        (["--files", str(corpus), "--output", str(tmp_path / "v.txt"), "--vocab-size", "10"], "ask for at least 12"),
        (["--files", str(corpus), "--output", str(tmp_path / "v.txt"), "--vocab-size", "10"], "--vocab-size 10 is smaller"),
        (["--files", str(latin1), "--output", str(tmp_path / "v.txt")], f"--files: {latin1} is not UTF-8 text (byte 0xe9 at position 7, line 2)"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            script_main(argv)
        # Issue 9: bad input is exit code 2 and one line on stderr that names the option (it was exit 1).
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "v.txt").exists()


def test_script_never_replaces_an_existing_vocabulary_unless_told(script_main, tmp_path, capsys):
    """Issue 9, point 11: with no --output the script used to rewrite the shipped vocab/movie-reviews-wordpiece.txt."""
    shipped = SHIPPED.read_bytes()
    with pytest.raises(SystemExit) as exit_:
        script_main([])  # the default output is the shipped file: refused before the corpus is read
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "movie-reviews-wordpiece.txt exists; pass --overwrite to replace it, or another --output" in err
    assert len(err.strip().splitlines()) == 1 and SHIPPED.read_bytes() == shipped

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(HUGS_TEXTS) + "\n", encoding="utf-8")
    earlier = tmp_path / "vocab.txt"
    earlier.write_text("an earlier run\n", encoding="utf-8")
    argv = ["--files", str(corpus), "--output", str(earlier), "--vocab-size", "14", "--min-frequency", "1"]
    with pytest.raises(SystemExit) as exit_:
        script_main(argv)
    assert exit_.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert earlier.read_text(encoding="utf-8") == "an earlier run\n"
    script_main([*argv, "--overwrite"])
    assert earlier.read_text(encoding="utf-8").splitlines()[:5] == list(SPECIAL_TOKENS)

    with pytest.raises(SystemExit) as exit_:
        script_main(["--files", str(corpus), "--output", str(corpus / "vocab.txt")])  # a folder that is a file
    assert exit_.value.code == 2 and "is not a writable folder); choose another --output" in capsys.readouterr().err
