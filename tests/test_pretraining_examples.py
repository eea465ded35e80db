"""Pre-training examples pinned to what BERT means by them, not to minibert's own constants:

* next_sentence_label 0 = IsNext (B is the text that really follows A), 1 = NotNext (B from another
  document), as in BERT and transformers' BertForPreTraining; checked on pairs built by hand and on the
  pairs the example builder makes from documents whose token ids say where each token comes from.
* The masking statistics within about 4 standard deviations of a binomial, over ~250k predictions on real
  reviews with fixed seeds: 15% of the maskable tokens chosen, uniformly over the positions, and of those
  80% [MASK], 10% a random token, 10% unchanged.
"""

from __future__ import annotations

import math
import random

import pytest
import transformers

from minibert import BertTokenizer
from minibert.heads import IGNORE_INDEX

from minibert import pretraining_data as PD
from minibert.pretrain import PretrainArgs

CLS, SEP, MASK = 2, 3, 4
SPECIAL = frozenset({0, 1, CLS, SEP, MASK})


def numbered_documents(n_docs: int = 80, seed: int = 0) -> list[list[list[int]]]:
    """Documents whose token ids say where they come from: id = 1_000_000 * (doc + 1) + 1000 * sentence + word."""
    rng = random.Random(seed)
    return [[[1_000_000 * (d + 1) + 1000 * s + w for w in range(rng.randint(1, 8))] for s in range(rng.randint(1, 12))]
            for d in range(n_docs)]


def where(token: int) -> tuple[int, int, int]:
    return token // 1_000_000 - 1, token // 1000 % 1000, token % 1000  # (document, sentence, word)


def originals(example) -> list[int]:
    """The example's ids before masking (a chosen position's label holds its original id)."""
    return [t if label == IGNORE_INDEX else label for t, label in zip(example.input_ids, example.labels)]


def segments(example) -> tuple[list[int], list[int]]:
    ids = originals(example)
    assert ids[0] == CLS and ids[-1] == SEP and ids.count(SEP) == 2
    first_sep = ids.index(SEP)
    return ids[1:first_sep], ids[first_sep + 1 : -1]


def follows(a: list[int], b: list[int]) -> bool:
    """Is b the text that comes right after a in the same document (b starts at the next word or sentence)?"""
    (da, sa, wa), (db, sb, wb) = where(a[-1]), where(b[0])
    return da == db and ((sb == sa and wb == wa + 1) or (sb == sa + 1 and wb == 0))


def test_nsp_label_constants_are_berts_and_transformers():
    """transformers documents BertForPreTraining's next_sentence_label: 0 continuation, 1 random."""
    doc = transformers.BertForPreTraining.forward.__doc__
    assert "0 indicates sequence B is a continuation of sequence A" in doc
    assert "1 indicates sequence B is a random sequence" in doc
    assert (PD.IS_NEXT, PD.NOT_NEXT) == (0, 1)


def test_hand_built_continuation_and_random_pairs_get_labels_0_and_1():
    masker = PD.Masker(mask_id=MASK, vocab_size=10_000_000, special_ids=SPECIAL)
    docs = numbered_documents()
    document = next(d for d in docs if len(d) >= 2)
    a, continuation, other = document[0], document[1], docs[-1][0]
    for b, is_random_next, label in ((continuation, False, 0), (other, True, 1)):
        e = PD.make_example(PD.SentencePair(list(a), list(b), is_random_next), masker, CLS, SEP, random.Random(0))
        assert e.next_sentence_label == label
        assert segments(e) == (a, b)
        assert e.token_type_ids == [0] * (len(a) + 2) + [1] * (len(b) + 1)


@pytest.mark.parametrize("max_length", [16, 64, 128])
def test_label_0_means_b_continues_a_and_label_1_means_another_document(max_length):
    """On the builder's own examples: every label-0 pair is A then later text of the same document (and,
    whenever neither side was trimmed, exactly the next text); every label-1 pair takes B from another document."""
    masker = PD.Masker(mask_id=MASK, vocab_size=10_000_000, special_ids=SPECIAL)
    examples = PD.build_examples(numbered_documents(400), masker, CLS, SEP, max_length, random.Random(max_length))
    counts = {0: 0, 1: 0}
    consecutive = 0
    for e in examples:
        a, b = segments(e)
        counts[e.next_sentence_label] += 1
        if e.next_sentence_label == 0:
            assert where(b[0])[0] == where(a[0])[0] and b[0] > a[-1], (a, b)
            consecutive += follows(a, b)
        else:
            assert e.next_sentence_label == 1
            assert where(b[0])[0] != where(a[0])[0], (a, b)
            assert not follows(a, b)
    assert min(counts.values()) > 0.4 * len(examples), counts
    assert consecutive > 0.5 * counts[0], (consecutive, counts)  # most IsNext pairs are untrimmed continuations


# ---- Masking statistics ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def review_examples(vocab_path, movie_reviews):
    """Examples built from the first 200 training reviews with the bert-base-uncased vocabulary, default masker."""
    tok = BertTokenizer(vocab_path)
    docs = PD.tokenize_documents(PD.load_corpus("movie_reviews")[:200], tok)
    masker = PD.Masker.from_tokenizer(tok, max_predictions=PretrainArgs(max_length=128).predictions_per_seq)
    examples = PD.build_examples(docs, masker, tok.cls_token_id, tok.sep_token_id, 128, random.Random(0))
    return tok, masker, examples


def within(count: int, n: int, p: float, sigmas: float = 4.0) -> bool:
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def test_default_masking_rate_is_15_percent():
    assert PretrainArgs().mlm_prob == 0.15
    assert PD.Masker(mask_id=MASK, vocab_size=100, special_ids=SPECIAL).mlm_prob == 0.15
    assert PretrainArgs(max_length=128).predictions_per_seq == 20  # ceil(0.15 * 128)


def test_masking_chooses_15_percent_uniformly_and_corrupts_80_10_10(review_examples):
    """Every input of the examples is masked again with 10 fixed seeds: ~250k predictions. Each input gets
    exactly round(15% of its maskable tokens) predictions (capped at max_predictions); every maskable position
    is as likely to be chosen as any other (checked by quarters of the input); the chosen tokens become [MASK],
    a random non-special token and themselves in 80/10/10 proportions, each within 4 binomial sigmas."""
    tok, masker, examples = review_examples
    assert masker.mlm_prob == 0.15
    special = set(tok.all_special_ids)
    chosen = n_mask = n_random = n_same = 0
    by_quarter = [[0, 0] for _ in range(4)]  # [candidates, chosen] by position among the maskable tokens
    for seed in range(10):
        rng = random.Random(seed)
        for e in examples:
            ids = originals(e)
            corrupted, labels = masker(ids, rng)
            candidates = [pos for pos, t in enumerate(ids) if t not in special]
            picked = [pos for pos, label in enumerate(labels) if label != IGNORE_INDEX]
            assert set(picked) <= set(candidates)
            assert len(picked) == min(masker.max_predictions, max(1, round(0.15 * len(candidates))))
            for rank, pos in enumerate(candidates):
                quarter = by_quarter[4 * rank // len(candidates)]
                quarter[0] += 1
                quarter[1] += labels[pos] != IGNORE_INDEX
            for pos in picked:
                assert labels[pos] == ids[pos]
                chosen += 1
                if corrupted[pos] == masker.mask_id:
                    n_mask += 1
                elif corrupted[pos] == ids[pos]:
                    n_same += 1
                else:
                    n_random += 1
                    assert corrupted[pos] not in special
            assert [t for pos, t in enumerate(corrupted) if pos not in picked] == [t for pos, t in enumerate(ids) if pos not in picked]
    assert chosen > 200_000
    rate = chosen / sum(c for c, _ in by_quarter)
    assert abs(rate - 0.15) < 0.005  # only the rounding to whole tokens moves it off 15%
    for candidates, picked in by_quarter:
        assert within(picked, candidates, rate), by_quarter
    # a random replacement equals the original once in ~30k draws: "unchanged" is 10% plus that
    assert within(n_mask, chosen, 0.8), (n_mask, chosen)
    assert within(n_random, chosen, 0.1), (n_random, chosen)
    assert within(n_same, chosen, 0.1), (n_same, chosen)


def test_random_replacements_can_be_every_non_special_id_the_last_one_included():
    masker = PD.Masker(mask_id=MASK, vocab_size=12, special_ids=SPECIAL | {7})
    rng = random.Random(0)
    drawn = {masker.random_token(rng) for _ in range(2000)}  # 6 ids: each missed with probability (5/6)^2000
    assert drawn == set(range(12)) - SPECIAL - {7}


def test_a_corpus_file_that_is_not_utf8_is_named_with_its_line(tmp_path, capsys):
    from conftest import load_script

    bad = tmp_path / "corpus.txt"
    bad.write_bytes("a first sentence .\na second one .\na caf\xe9 scene .\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"--corpus .*corpus\.txt: not UTF-8 text \(byte 0xe9 on line 3\); save it as UTF-8"):
        PD.load_corpus([str(bad)])
    (tmp_path / "odd.txt").write_text("one \f sentence .\nanother \u2028 one .\n\na second document .\n")
    assert PD.load_corpus([str(tmp_path / "odd.txt")]) == [["one \f sentence .", "another \u2028 one ."], ["a second document ."]]
    code = load_script("pretrain").main(["--corpus", str(bad), "--output-dir", str(tmp_path / "run"), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and f"--corpus {bad}: not UTF-8 text (byte 0xe9 on line 3)" in err
