"""Pre-training: the examples are built the way BERT built them (sentence pairs, 50% NotNext, 15% of the
tokens predicted with 80/10/10 corruption), the loss is BertForPreTraining's (checked against transformers),
and a small model trained on the CPU for a few hundred steps clearly lowers both losses; runs resume
exactly after Ctrl-C and refuse a corrupted checkpoint."""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path

import pytest
from conftest import load_script
import torch
import transformers

from minibert import BertConfig, BertForPreTraining, BertForSequenceClassification, BertTokenizer
from minibert.pretrain import PretrainArgs, PretrainingLoss, epoch_batches, run as pretrain
from minibert.pretraining_data import (Masker, build_examples, create_pairs, load_corpus, pairs_from_document,
                                       pretraining_batch, tokenize_documents, truncate_pair)
from minibert.checkpoint import load_state_dict, to_hf_state_dict
from minibert.heads import IGNORE_INDEX
from minibert.training import TrainingError

ROOT = Path(__file__).resolve().parents[1]
TOL = dict(atol=1e-5, rtol=1e-5)

# ---- A corpus where next sentence prediction is learnable in seconds -----------------------------------
# Every document talks about one of four topics (8 words each). A continuation shares its document's topic,
# a NotNext segment comes from a random document, so its topic differs 3 times out of 4: a model that compares
# the topics of A and B can reach the Bayes loss of ~0.31 (the 1 in 4 same-topic NotNext pairs stay
# undecidable). On real reviews the cue is the same (what the text is about) but far too subtle for a tiny
# model in a few hundred CPU steps, so real text is used below for the masked LM only.

TOPIC_WORDS = (
    "cat dog horse cow sheep goat bird fish car bus train plane boat ship truck bike "
    "red blue green yellow black white pink brown apple pear plum grape lemon lime peach berry"
).split()
TOPICS = [TOPIC_WORDS[i : i + 8] for i in range(0, 32, 8)]


def topic_documents(n_docs: int = 300, sentences: int = 12, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    docs = []
    for d in range(n_docs):
        words = TOPICS[d % len(TOPICS)]
        docs.append([" ".join(["the", *rng.choices(words, k=rng.randint(4, 8)), "."]) for _ in range(sentences)])
    return docs


@pytest.fixture(scope="module")
def topic_vocab(tmp_path_factory) -> Path:
    """A 39-token WordPiece vocabulary for the topic corpus: small, so that a CPU step takes milliseconds."""
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", ".", *TOPIC_WORDS]) + "\n")
    return path


@pytest.fixture(scope="module")
def topic_corpus(tmp_path_factory) -> Path:
    """The topic corpus as a text file in the documented format: blank line between documents, a sentence per line."""
    path = tmp_path_factory.mktemp("corpus") / "topics.txt"
    path.write_text("\n\n".join("\n".join(doc) for doc in topic_documents()) + "\n")
    return path


@pytest.fixture(scope="module")
def bert_tokenizer(vocab_path) -> BertTokenizer:
    return BertTokenizer(vocab_path)


@pytest.fixture(scope="module")
def review_docs(movie_reviews, bert_tokenizer) -> list[list[list[int]]]:
    """The training reviews (cv000-cv799) tokenized with the bert-base-uncased vocabulary."""
    docs = load_corpus("movie_reviews", exclude_test_reviews=True)
    return tokenize_documents(docs, bert_tokenizer)


def tiny_args(tmp_path, vocab, corpus, **overrides) -> PretrainArgs:
    settings = dict(from_scratch=True, vocab=str(vocab), corpus=[str(corpus)], hidden_size=32, layers=1, heads=2,
                    max_length=32, batch_size=8, steps=12, lr=1e-3, log_every=1, device="cpu",
                    output_dir=str(tmp_path / "run"), progress=False, plots=False)
    return PretrainArgs(**{**settings, **overrides})


# ---- Reading a corpus ----------------------------------------------------------------------------------


def test_text_files_are_documents_separated_by_blank_lines(tmp_path):
    (tmp_path / "a.txt").write_text("first sentence .\n  second sentence .  \n\n\n\nother document .\n\nlast one .")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("\nin a subfolder .\nstill here .\n")
    (tmp_path / "ignored.md").write_text("not a .txt file\n")
    docs = load_corpus([str(tmp_path)])
    assert docs == [["first sentence .", "second sentence ."], ["other document ."], ["last one ."],
                    ["in a subfolder .", "still here ."]]
    assert load_corpus([str(tmp_path / "a.txt")]) == docs[:3]
    with pytest.raises(FileNotFoundError, match="neither 'movie_reviews' nor an existing file"):
        load_corpus([str(tmp_path / "missing.txt")])


def test_movie_reviews_corpus_leaves_out_the_test_reviews(movie_reviews):
    train_only = load_corpus("movie_reviews")
    everything = load_corpus("movie_reviews", exclude_test_reviews=False)
    assert len(train_only) == 1600 and len(everything) == 2000
    # one review per document, one sentence per line
    first = sorted(movie_reviews.fileids())[0]
    assert train_only[0] == [line.strip() for line in movie_reviews.raw(first).splitlines() if line.strip()]
    test_reviews = {tuple(line.strip() for line in movie_reviews.raw(f).splitlines() if line.strip())
                    for f in movie_reviews.fileids() if int(f.split("/cv")[1][:3]) >= 800}
    assert len(test_reviews) == 400
    assert not test_reviews & {tuple(doc) for doc in train_only}
    assert test_reviews <= {tuple(doc) for doc in everything}


# ---- Sentence pairs ------------------------------------------------------------------------------------


def numbered_documents(n_docs=60, seed=0) -> list[list[list[int]]]:
    """Documents whose token ids say where they come from: id = 100_000 * (doc + 1) + position in the document."""
    rng = random.Random(seed)
    docs = []
    for d in range(n_docs):
        lengths = [rng.randint(1, 9) for _ in range(rng.randint(1, 15))]
        starts = [sum(lengths[:i]) for i in range(len(lengths))]
        docs.append([[100_000 * (d + 1) + s + k for k in range(n)] for s, n in zip(starts, lengths)])
    return docs


def _contiguous(ids: list[int]) -> bool:
    return ids == list(range(ids[0], ids[0] + len(ids)))


@pytest.mark.parametrize("max_length", [5, 8, 16, 64, 128])
def test_pairs_fit_and_b_is_the_continuation_or_another_document(max_length):
    docs = numbered_documents()
    pairs = create_pairs(docs, max_length, random.Random(max_length))
    assert len(pairs) > 60
    adjacent = 0
    for p in pairs:
        assert len(p.a) >= 1 and len(p.b) >= 1
        assert len(p.a) + len(p.b) + 3 <= max_length
        assert _contiguous(p.a) and _contiguous(p.b)  # each segment is one run of a document's text
        if p.is_random_next:
            assert p.b[0] // 100_000 != p.a[0] // 100_000  # another document
        else:
            assert p.b[0] // 100_000 == p.a[0] // 100_000 and p.b[0] > p.a[-1]  # later in the same document
            if len(p.a) + len(p.b) < max_length - 3:  # not truncated: B starts right where A ends
                assert p.b[0] == p.a[-1] + 1
                adjacent += 1
    assert adjacent > 0 or max_length < 16  # at 5 and 8 nearly every pair needs trimming


def test_nsp_labels_are_balanced(review_docs):
    for max_length in (64, 128):
        pairs = create_pairs(review_docs, max_length, random.Random(1))
        not_next = sum(p.is_random_next for p in pairs) / len(pairs)
        assert len(pairs) > 10_000
        assert abs(not_next - 0.5) < 0.02, (max_length, not_next)


def test_short_sequences_appear_as_often_as_asked():
    """short_seq_prob is the fraction of documents whose pairs aim at a random length below max_length."""
    docs = [[[d * 100 + s] * 5 for s in range(100)] for d in range(1000)]  # long documents of 5-token sentences

    def short_fraction(prob):
        rng = random.Random(0)
        firsts = [pairs_from_document(docs, i, 64, rng, short_seq_prob=prob)[0] for i in range(len(docs))]
        return sum(len(p.a) + len(p.b) < 64 - 3 for p in firsts) / len(docs)

    # Without short_seq_prob only a NotNext pair whose random document runs out is short.
    assert short_fraction(0.0) < 0.05
    assert 0.06 < short_fraction(0.1) < 0.17
    assert 0.4 < short_fraction(0.5) < 0.6


def test_truncate_pair_trims_the_longer_side_from_both_ends():
    fronts = backs = 0
    for seed in range(50):
        a, b = list(range(30)), list(range(100, 110))
        truncate_pair(a, b, 24, random.Random(seed))
        assert len(a) + len(b) == 24
        assert b == list(range(100, 110))  # the shorter side is untouched while the longer one is longer
        assert a == list(range(a[0], a[0] + len(a)))  # what is left is a contiguous piece
        fronts += a[0] > 0
        backs += a[-1] < 29
    assert fronts > 10 and backs > 10  # both ends are cut
    a, b = list(range(8)), list(range(100, 108))
    truncate_pair(a, b, 6, random.Random(0))
    assert (len(a), len(b)) == (3, 3)  # equal sides shrink together


def test_fewer_than_two_documents_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2 documents"):
        create_pairs([[[1, 2], [3]]], 32, random.Random(0))


# ---- Masking -------------------------------------------------------------------------------------------


def test_masking_statistics(review_docs, bert_tokenizer):
    """Over ~70k predictions: 15% of the maskable tokens, of those 80% [MASK], 10% random, 10% unchanged;
    [CLS]/[SEP] never chosen; a random replacement is never a special token."""
    tok = bert_tokenizer
    masker = Masker.from_tokenizer(tok, mlm_prob=0.15, max_predictions=20)
    examples = build_examples(review_docs[:400], masker, tok.cls_token_id, tok.sep_token_id, 128, random.Random(0))
    special = set(tok.all_special_ids)
    candidates = chosen = n_mask = n_random = n_same = 0
    for e in examples:
        assert len(e.input_ids) == len(e.token_type_ids) == len(e.labels) <= 128
        seps = [i for i, t in enumerate(e.input_ids) if t == tok.sep_token_id]
        assert e.input_ids[0] == tok.cls_token_id and len(seps) == 2 and seps[1] == len(e.input_ids) - 1
        assert e.token_type_ids == [0] * (seps[0] + 1) + [1] * (seps[1] - seps[0])
        assert tok.pad_token_id not in e.input_ids
        n_candidates = 0
        for inp, label in zip(e.input_ids, e.labels):
            original = inp if label == IGNORE_INDEX else label
            if original in special:
                assert label == IGNORE_INDEX  # [CLS], [SEP] (and [UNK]) are never chosen
                continue
            n_candidates += 1
            if label == IGNORE_INDEX:
                continue
            chosen += 1
            if inp == tok.mask_token_id:
                n_mask += 1
            elif inp == label:
                n_same += 1
            else:
                n_random += 1
                assert inp not in special
        candidates += n_candidates
        assert sum(label != IGNORE_INDEX for label in e.labels) == min(20, max(1, round(0.15 * n_candidates)))
    assert chosen > 50_000
    assert abs(chosen / candidates - 0.15) < 0.005
    assert abs(n_mask / chosen - 0.8) < 0.01
    assert abs(n_random / chosen - 0.1) < 0.01
    assert abs(n_same / chosen - 0.1) < 0.01


def test_max_predictions_caps_the_number_of_masked_tokens(bert_tokenizer):
    masker = Masker.from_tokenizer(bert_tokenizer, mlm_prob=0.5, max_predictions=3)
    ids = [bert_tokenizer.cls_token_id, *range(2000, 2040), bert_tokenizer.sep_token_id]
    for seed in range(20):
        _, labels = masker(ids, random.Random(seed))
        assert sum(label != IGNORE_INDEX for label in labels) == 3


def test_whole_word_masking_chooses_every_piece_of_a_word(review_docs, bert_tokenizer):
    tok = bert_tokenizer
    masker = Masker.from_tokenizer(tok, whole_word=True, max_predictions=20)
    examples = build_examples(review_docs[:100], masker, tok.cls_token_id, tok.sep_token_id, 128, random.Random(0))
    is_piece = {i for t, i in tok.vocab.items() if t.startswith("##")}
    words_split = 0
    for e in examples:
        original = [label if label != IGNORE_INDEX else t for t, label in zip(e.input_ids, e.labels)]
        chosen = [label != IGNORE_INDEX for label in e.labels]
        for pos in range(1, len(original)):
            if original[pos] in is_piece and original[pos - 1] not in tok.all_special_ids:
                words_split += 1
                assert chosen[pos] == chosen[pos - 1], "a word was masked only in part"
    assert words_split > 1000


def test_examples_are_deterministic_and_dynamic_masking_changes_per_epoch(topic_vocab, tmp_path):
    tok = BertTokenizer(topic_vocab)
    docs = tokenize_documents(topic_documents(40), tok)
    args = tiny_args(tmp_path, topic_vocab, "unused", batch_size=4)
    masker = Masker.from_tokenizer(tok, max_predictions=args.predictions_per_seq)
    e0, b0 = epoch_batches(docs, masker, tok, args, epoch=0)
    again, b_again = epoch_batches(docs, masker, tok, args, epoch=0)
    e1, b1 = epoch_batches(docs, masker, tok, args, epoch=1)
    assert e0 == again and b0 == b_again  # same seed and epoch: the same examples, the same batches
    assert e0 != e1 and b0 != b1  # dynamic: new pairs and masks every epoch
    static = tiny_args(tmp_path, topic_vocab, "unused", batch_size=4, masking="static")
    s0, sb0 = epoch_batches(docs, masker, tok, static, epoch=0)
    s1, sb1 = epoch_batches(docs, masker, tok, static, epoch=1)
    assert s0 == s1 == e0 and sb0 != sb1  # static: the same examples in a new order
    other_seed = tiny_args(tmp_path, topic_vocab, "unused", batch_size=4, seed=1)
    assert epoch_batches(docs, masker, tok, other_seed, epoch=0)[0] != e0
    assert all(len(b) == 4 for b in b0)


# ---- The loss against transformers ---------------------------------------------------------------------


def test_pretraining_loss_logits_and_gradients_match_transformers(topic_vocab):
    """PretrainingLoss (MLM logits at the chosen positions only) gives transformers' BertForPreTraining loss
    and gradients; minibert's BertForPreTraining gives its logits."""
    tok = BertTokenizer(topic_vocab)
    docs = tokenize_documents(topic_documents(20), tok)
    masker = Masker.from_tokenizer(tok, max_predictions=5)
    examples = build_examples(docs, masker, tok.cls_token_id, tok.sep_token_id, 32, random.Random(0), short_seq_prob=0.5)
    batch = pretraining_batch(examples[:6], max_length=32, max_predictions=5, pad_id=tok.pad_token_id)
    assert (batch["attention_mask"] == 0).any()  # some padding, so that the mask is exercised

    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=48, max_position_embeddings=32)
    torch.manual_seed(0)
    hf = transformers.BertForPreTraining(transformers.BertConfig(**cfg.to_dict(), attn_implementation="eager")).eval()
    mb = BertForPreTraining(cfg).eval()
    report = load_state_dict(mb, hf.state_dict())
    assert not report.initialized and not report.missing

    inputs = dict(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], token_type_ids=batch["token_type_ids"])
    h = hf(**inputs, labels=batch["labels"], next_sentence_label=batch["next_sentence_label"])
    m = mb(**inputs, labels=batch["labels"], next_sentence_label=batch["next_sentence_label"])
    torch.testing.assert_close(m.prediction_logits, h.prediction_logits, **TOL)
    torch.testing.assert_close(m.seq_relationship_logits, h.seq_relationship_logits, **TOL)

    mlm, nsp = PretrainingLoss(mb)(**inputs, mlm_positions=batch["mlm_positions"], mlm_labels=batch["mlm_labels"],
                                     next_sentence_label=batch["next_sentence_label"])
    torch.testing.assert_close(mlm + nsp, h.loss, **TOL)
    torch.testing.assert_close(nsp, torch.nn.functional.cross_entropy(h.seq_relationship_logits, batch["next_sentence_label"]), **TOL)
    (mlm + nsp).backward()
    h.loss.backward()
    hf_grads = {k: p.grad for k, p in hf.named_parameters()}
    mb_grads = to_hf_state_dict(mb, {k: p.grad for k, p in mb.named_parameters()})
    for key, grad in mb_grads.items():
        torch.testing.assert_close(grad, hf_grads[key], **TOL, msg=lambda s, key=key: f"grad {key}: {s}")


# ---- Training ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory, topic_vocab, topic_corpus):
    """A 2-layer H=64 BERT pre-trained from scratch for 400 steps on the topic corpus (a text file)."""
    out = tmp_path_factory.mktemp("pretrained")
    args = PretrainArgs(from_scratch=True, vocab=str(topic_vocab), corpus=[str(topic_corpus)], hidden_size=64,
                          layers=2, heads=4, max_length=32, batch_size=32, steps=400, lr=3e-3, warmup=0.1,
                          device="cpu", output_dir=str(out), progress=False, val_size=20, snapshot_steps=[0, 50, 400, 9999])
    return out, pretrain(args)


def test_pretraining_from_scratch_lowers_both_losses(trained):
    out, metrics = trained
    h = metrics["history"]
    assert metrics["status"] == "completed" and metrics["steps"] == 400 and h["step"] == list(range(1, 401))
    mean = lambda xs: sum(xs) / len(xs)
    mlm_start, mlm_end = mean(h["mlm"][:10]), mean(h["mlm"][-50:])
    nsp_start, nsp_end = mean(h["nsp"][:20]), mean(h["nsp"][-50:])
    assert mlm_start > 3.2  # ~ln(39) = 3.66: a uniform guess over the vocabulary
    assert mlm_end < mlm_start - 1.0, (mlm_start, mlm_end)
    assert nsp_start > 0.65  # ~ln(2): a coin toss
    assert nsp_end < 0.5, (nsp_start, nsp_end)  # the Bayes-optimal loss is ~0.31
    # the outputs promised: metrics.json, the curves, the model with its heads and vocabulary
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["history"]["mlm"] == h["mlm"] and saved["corpus"]["documents"] == 280  # 20 held out
    assert (out / "curves.png").stat().st_size > 10_000
    assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"} <= {p.name for p in (out / "model").iterdir()}


def test_the_pretrained_model_loads_in_transformers_with_the_same_logits(trained, topic_vocab):
    out, _ = trained
    mb = BertForPreTraining.from_pretrained(out / "model")
    hf = transformers.BertForPreTraining.from_pretrained(out / "model").eval()
    tok = BertTokenizer.from_pretrained(out / "model")
    enc = tok("the cat [MASK] horse .", "the dog cow [MASK] .", return_tensors="pt")
    m, h = mb(**enc), hf(**enc)
    torch.testing.assert_close(m.prediction_logits, h.prediction_logits, **TOL)
    torch.testing.assert_close(m.seq_relationship_logits, h.seq_relationship_logits, **TOL)
    # and the fine-tuning class reads it (the pre-training heads are set aside, a classifier is added)
    clf, report = BertForSequenceClassification.from_pretrained(out / "model", num_labels=2, output_loading_info=True)
    assert report.initialized == ["classifier.weight", "classifier.bias"]
    assert any(k.startswith("cls.predictions") for k in report.ignored)


def test_the_pretrained_model_fills_masks_sensibly(trained):
    from minibert.inspection import fill_mask, load_masked_lm

    out, _ = trained
    model, tok, warning = load_masked_lm(str(out / "model"))
    assert warning is None
    for topic in TOPICS:
        text = f"the {topic[0]} {topic[1]} [MASK] {topic[2]} {topic[3]} ."
        (candidates,) = fill_mask(model, tok, text, top_k=8)
        assert all(token in topic for token, _ in candidates[:3]), (text, candidates)  # words of the same topic
        assert sum(p for token, p in candidates if token in topic) > 0.8, (text, candidates)


def test_the_neighbour_baseline_looks_up_both_neighbours_then_the_left_one_then_the_most_frequent_token():
    """Worked by hand: in the documents, 6 stands between 5 and 7 twice, while 8 follows 5 three times, so the pair
    (5, 7) answers 6 where the left neighbour alone would answer 8; an unseen pair falls back to the left neighbour,
    and an unseen left neighbour to the most frequent token (6)."""
    from minibert.pretrain import HeldOut
    from minibert.pretraining_data import PretrainingExample, pretraining_batch

    docs = [[[5, 6, 7]], [[5, 6, 7]], [[5, 8, 1]], [[5, 8, 1]], [[5, 8, 1]], [[9, 6, 6]]]
    M, CLS, SEP = 4, 2, 3

    def example(ids, position, target):
        labels = [-100] * len(ids)
        labels[position] = target
        return PretrainingExample(ids, [0] * len(ids), labels, 0)

    held = HeldOut.__new__(HeldOut)
    held.batches = [pretraining_batch([
        example([CLS, 5, M, 7, SEP], 2, 6),  # the pair (5, 7): 6, right (the left neighbour alone says 8)
        example([CLS, 9, M, 8, SEP], 2, 6),  # (9, 8) never seen; after 9 comes 6: right
        example([CLS, 11, M, SEP], 2, 7),  # nothing known about 11: the most frequent token, 6: wrong
        example([CLS, 5, M, SEP], 2, 1),  # (5, [SEP]) never seen; after 5 most often 8: wrong
    ], max_length=6, max_predictions=2)]
    assert held.neighbour_baseline(docs) == {"accuracy": 0.5}


def test_held_out_accuracy_beats_the_unigram_baseline_and_grows_with_the_snapshots(trained, topic_vocab):
    """The last 20 documents are never trained on; the model's top prediction for their masked tokens beats always
    answering the most frequent token, and each snapshot (the initialisation, 50 and 400 steps) scores better."""
    out, metrics = trained
    held, unigram = metrics["held_out"], metrics["unigram_baseline"]
    tok = BertTokenizer(topic_vocab)
    assert held["documents"] == 20 and held["masked_tokens"] > 300
    assert tok.convert_ids_to_tokens([unigram["token_id"]]) == ["the"]  # one token in ~6 of this corpus
    assert 0.1 < unigram["accuracy"] < 0.25
    assert held["accuracy"] > unigram["accuracy"] + 0.1 and held["loss"] < unigram["loss"]
    snaps = metrics["snapshots"]
    assert [s["step"] for s in snaps] == [0, 50, 400]  # 9999 is past --steps: left out
    acc = [s["held_out"]["accuracy"] for s in snaps]
    assert acc[0] < unigram["accuracy"] < acc[2] and acc[0] < acc[1] < acc[2] == held["accuracy"], acc
    # each snapshot is a model folder in HF layout; the last one is the final model
    first = BertForPreTraining.from_pretrained(out / "snapshots" / "step-0")
    last, final = (BertForPreTraining.from_pretrained(out / p) for p in ("snapshots/step-400", "model"))
    for key, value in final.state_dict().items():
        assert torch.equal(value, last.state_dict()[key]), key
    assert not torch.equal(first.bert.embeddings.tok.weight, final.bert.embeddings.tok.weight)
    # fill-mask before (random init) and after, for every prompt
    assert set(metrics["fill_mask"]["before"]) == set(metrics["fill_mask"]["after"]) and len(metrics["fill_mask"]["after"]) == 4


def test_held_out_score_is_the_accuracy_of_transformers_logits(trained, topic_vocab):
    """HeldOut.score counts the masked positions only, and agrees with BertForPreTraining's full logits."""
    from minibert.pretrain import HeldOut
    from minibert.pretraining_data import read_documents

    out, metrics = trained
    tok = BertTokenizer(topic_vocab)
    args = PretrainArgs(max_length=32, batch_size=32, seed=0)
    docs = tokenize_documents(topic_documents()[-20:], tok)
    held = HeldOut(docs, Masker.from_tokenizer(tok, 0.15, args.predictions_per_seq), tok, args)
    hf = transformers.BertForPreTraining.from_pretrained(out / "model").eval()
    correct = total = 0
    with torch.no_grad():
        for b in held.batches:
            logits = hf(input_ids=b["input_ids"], attention_mask=b["attention_mask"], token_type_ids=b["token_type_ids"]).prediction_logits
            chosen = b["labels"] != IGNORE_INDEX
            correct += (logits.argmax(-1)[chosen] == b["labels"][chosen]).sum().item()
            total += chosen.sum().item()
    model = BertForPreTraining.from_pretrained(out / "model")
    mine = held.score(model, torch.device("cpu"), "fp32")
    assert mine["masked_tokens"] == total == metrics["held_out"]["masked_tokens"]
    assert abs(mine["accuracy"] - correct / total) < 2 / total  # a near-tie may flip between the two libraries
    # the run scored in its own precision (bf16 where the CPU has native bf16 units): the same score again
    assert held.score(model, torch.device("cpu"), metrics["precision"])["accuracy"] == metrics["held_out"]["accuracy"]


def test_validation_reviews_are_the_highest_numbered_training_files_and_are_never_pre_trained_on(movie_reviews):
    from minibert.pretraining_data import held_out_documents, validation_reviews

    val = validation_reviews(200)
    assert sorted(int(r.fileid.split("/cv")[1][:3]) for r in val) == sorted(2 * list(range(700, 800)))
    assert sum(r.label for r in val) == 100
    kept = load_corpus("movie_reviews", held_out=200)
    assert len(kept) == 1400 and not {tuple(d) for d in kept} & {tuple(d) for d in held_out_documents(200)}
    with pytest.raises(ValueError, match="even number"):
        validation_reviews(3)


def test_tiny_preset_and_options_on_top_of_it(tmp_path, capsys):
    from minibert.cli import parse_with_presets
    from minibert.pretrain import PRESETS

    script = load_script("pretrain")
    tiny = vars(parse_with_presets(script.parser(), PRESETS, ["--preset", "tiny", "--steps", "20"]))
    assert tiny["steps"] == 20 and tiny["hidden_size"] == 128 and tiny["layers"] == 2 and tiny["from_scratch"]
    assert tiny["val_size"] == 200 and tiny["snapshot_steps"][0] == 0 and tiny["output_dir"] == "runs/pretrain-tiny"
    assert BertTokenizer.from_pretrained(tiny["vocab"]).vocab == BertTokenizer(str(ROOT / "vocab" / "movie-reviews-wordpiece.txt")).vocab
    assert tiny["corpus"] == ["movie_reviews"] and tiny["exclude_test_reviews"]  # the training reviews only
    assert script.main(["--preset", "tiny", "--snapshot-steps", "-1", "--output-dir", str(tmp_path)]) == 2
    assert "--snapshot-steps must be >= 0" in capsys.readouterr().err


def test_real_text_masked_lm_loss_drops(movie_reviews, tmp_path):
    """A small BERT with the bert-base-uncased vocabulary on the training reviews: 40 steps take the masked-LM
    loss from ~ln(30522) = 10.3 (uniform) to below 8 (it learns at least the word frequencies)."""
    args = PretrainArgs(from_scratch=True, hidden_size=64, layers=2, heads=2, max_length=64, batch_size=16,
                          steps=40, lr=2e-3, limit_documents=200, device="cpu", output_dir=str(tmp_path),
                          progress=False, plots=False, save_model=False)
    metrics = pretrain(args)
    h = metrics["history"]
    assert sum(h["mlm"][:3]) / 3 > 9.5
    assert sum(h["mlm"][-5:]) / 5 < 8.0
    assert metrics["corpus"]["documents"] == 200 and metrics["examples_per_epoch"] > 16 * 40  # less than one epoch


def test_continued_pretraining_of_a_checkpoint_without_heads_then_finetuning(minilm_dir, movie_reviews, tmp_path):
    """MiniLM has no MLM/NSP heads: they are initialised, trained, and the saved model/ folder (weights, heads,
    vocab.txt, tokenizer_config.json) is what scripts/finetune.py --model takes."""
    from minibert.finetune import FinetuneArgs, run as finetune

    args = PretrainArgs(model=str(minilm_dir), steps=3, batch_size=4, max_length=64, limit_documents=20,
                          device="cpu", output_dir=str(tmp_path / "dapt"), progress=False, plots=False)
    metrics = pretrain(args)
    assert metrics["status"] == "completed" and metrics["lr"] == 1e-4
    model_dir = tmp_path / "dapt" / "model"
    before = BertForPreTraining.from_pretrained(minilm_dir)
    after, report = BertForPreTraining.from_pretrained(model_dir, output_loading_info=True)
    assert not report.initialized  # the heads are now part of the checkpoint
    assert not torch.equal(before.bert.embeddings.tok.weight, after.bert.embeddings.tok.weight)  # it trained
    assert BertTokenizer.from_pretrained(model_dir).vocab == BertTokenizer.from_pretrained(minilm_dir).vocab
    summary = finetune(FinetuneArgs(model=str(model_dir), output_dir=str(tmp_path / "ft"), epochs=1, batch_size=4,
                                    max_length=64, truncation="head", limit_train=8, limit_test=8, device="cpu", progress=False,
                                    plots=False, save_model=False))
    assert summary["status"] == "completed" and summary["test_reviews"] == 8


# ---- Interruption, resume, failures --------------------------------------------------------------------


def test_ctrl_c_saves_and_resume_ends_exactly_like_an_uninterrupted_run(tmp_path, topic_vocab, topic_corpus):
    more = dict(val_size=20, snapshot_steps=[0, 3, 8])  # what was measured before the interruption is kept
    whole = pretrain(tiny_args(tmp_path / "whole", topic_vocab, topic_corpus, **more))

    def ctrl_c_at_step_5(step, losses):
        if step == 5:
            signal.raise_signal(signal.SIGINT)  # a real Ctrl-C, handled by the loop's StopFlag

    first = pretrain(tiny_args(tmp_path / "split", topic_vocab, topic_corpus, **more), callback=ctrl_c_at_step_5)
    assert first["status"] == "interrupted" and first["steps"] == 5
    assert not (tmp_path / "split" / "run" / "model").exists()  # only a finished run saves the model
    second = pretrain(tiny_args(tmp_path / "split", topic_vocab, topic_corpus, resume=True, **more))
    assert second["status"] == "completed" and second["steps"] == 12
    assert second["history"] == whole["history"]
    assert [(s["step"], s["held_out"]) for s in second["snapshots"]] == [(s["step"], s["held_out"]) for s in whole["snapshots"]]
    assert second["fill_mask"] == whole["fill_mask"] and second["held_out"] == whole["held_out"]
    a = torch.load(tmp_path / "whole" / "run" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "split" / "run" / "checkpoint.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_refuses_a_corrupted_checkpoint_or_changed_settings(tmp_path, topic_vocab, topic_corpus):
    args = tiny_args(tmp_path, topic_vocab, topic_corpus, steps=2)
    pretrain(args)
    with pytest.raises(TrainingError, match="different settings \\(steps\\)"):
        pretrain(tiny_args(tmp_path, topic_vocab, topic_corpus, steps=3, resume=True))
    ckpt = tmp_path / "run" / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])  # a truncated file, as after a crash mid-copy
    with pytest.raises(TrainingError, match="corrupted or truncated"):
        pretrain(tiny_args(tmp_path, topic_vocab, topic_corpus, steps=2, resume=True))


def test_a_diverging_run_stops_with_a_message(tmp_path, topic_vocab, topic_corpus):
    with pytest.raises(TrainingError, match="the loss became (nan|inf)"):
        pretrain(tiny_args(tmp_path, topic_vocab, topic_corpus, lr=1e30, max_grad_norm=0.0, steps=10))


def test_invalid_settings_are_refused(tmp_path, topic_vocab, topic_corpus):
    with pytest.raises(ValueError, match="exclude each other"):
        pretrain(PretrainArgs(model="x", from_scratch=True))
    with pytest.raises(ValueError, match="--vocab is only for --from-scratch"):
        pretrain(PretrainArgs(vocab="vocab.txt"))
    with pytest.raises(ValueError, match="fewer than --batch-size"):
        pretrain(tiny_args(tmp_path, topic_vocab, topic_corpus, batch_size=100_000))


# ---- The script ----------------------------------------------------------------------------------------


def test_script_documents_every_option_and_runs(tmp_path, topic_vocab, topic_corpus, capsys):
    script = load_script("pretrain")
    text = script.parser().format_help()
    for field in PretrainArgs.__dataclass_fields__:
        assert f"--{field.replace('_', '-')}" in text
    assert "(default: bert-base-uncased" in text and "(default: 128)" in text and "(default: None)" not in text
    rc = script.main(["--from-scratch", "--vocab", str(topic_vocab), "--corpus", str(topic_corpus), "--hidden-size", "32",
                      "--layers", "1", "--heads", "2", "--max-length", "32", "--batch-size", "8", "--steps", "3",
                      "--device", "cpu", "--output-dir", str(tmp_path), "--no-progress", "--no-plots"])
    assert rc == 0 and (tmp_path / "model" / "model.safetensors").is_file()
    assert script.main(["--model", "x", "--from-scratch"]) == 2
    assert "exclude each other" in capsys.readouterr().err


def test_script_refuses_an_earlier_run_overwrites_when_told_and_checks_limits(tmp_path, topic_vocab, topic_corpus, capsys):
    script = load_script("pretrain")
    common = ["--from-scratch", "--vocab", str(topic_vocab), "--corpus", str(topic_corpus), "--hidden-size", "32",
              "--layers", "1", "--heads", "2", "--max-length", "32", "--batch-size", "8", "--steps", "2",
              "--device", "cpu", "--output-dir", str(tmp_path), "--no-progress", "--no-plots"]
    assert script.main(common) == 0
    assert f"outputs in {tmp_path}/: checkpoint.pt, metrics.json, model/" in capsys.readouterr().out
    before = (tmp_path / "metrics.json").read_bytes()
    assert script.main([*common, "--lr", "1e-3"]) == 2
    err = capsys.readouterr().err
    assert "holds an earlier run" in err and "--resume" in err and "--overwrite" in err
    assert (tmp_path / "metrics.json").read_bytes() == before
    assert script.main([*common, "--lr", "1e-3", "--overwrite"]) == 0
    assert json.loads((tmp_path / "metrics.json").read_text())["args"]["lr"] == 1e-3
    err = capsys.readouterr().err
    assert "K-parameter model on the CPU" in err and "bert-base" not in err  # its real size (32.7K), not bert-base
    for bad, message in ((["--limit-documents", "0"], "--limit-documents must be >= 1"),
                         (["--max-grad-norm=-1"], "--max-grad-norm must be >= 0"),
                         (["--weight-decay", "-1"], "--weight-decay must be >= 0"),
                         (["--device", "tpu"], "--device 'tpu'")):
        assert script.main([*common, "--overwrite", *bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and message in err
