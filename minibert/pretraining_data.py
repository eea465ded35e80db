"""Pre-training examples for BERT's two objectives (section 3.1 of the paper), built from plain text; no model
needed. A student can read this file alone: it is what the model is asked to learn.

    text -> documents -> sentences -> WordPiece ids                          load_corpus, tokenize_documents
    sentence pairs "[CLS] A [SEP] B [SEP]" from each document                create_pairs
        A = a run of sentences; B = their real continuation (IsNext, label 0)
                                 or text from another document (NotNext, label 1), 50 / 50
    masking: 15% of the tokens are chosen for prediction;                    Masker
        of those 80% become [MASK], 10% a random token, 10% stay as they are
    batches of fixed shape: ids, segments, mask, and the chosen positions    pretraining_batch

The example creation follows google-research/bert `create_pretraining_data.py`: a target length of
max_length - 3 (for 10% of the documents, `short_seq_prob`, a random shorter one, so that the model also sees
short inputs), A and B cut at a random sentence boundary, and the longer of A and B trimmed one token at a time
from a random end until the pair fits. Where this code differs, on purpose:

  * The NSP label of every pair is a fair coin. The original falls back to NotNext whenever a chunk holds a
    single sentence (a long sentence, or the last one of a document), which tilts the labels toward NotNext.
    Here the label is drawn first; an IsNext chunk of one sentence borrows the next (or the previous)
    sentence. Only a document of a single sentence, which has no continuation, always gives NotNext.
  * The number of predictions is 15% of the maskable tokens, not of all tokens. [CLS], [SEP] and [UNK]
    are never chosen (predicting [UNK] teaches nothing), and a random replacement is never a special token.
  * Masking is dynamic in minibert/pretrain.py by default (RoBERTa, Liu et al. 2019): every epoch draws new
    pairs and new masks from (seed, epoch). BERT masked once, offline, and duplicated its 3.3B-word corpus
    10 times with different masks to get variety; a corpus of a few MB such as movie_reviews is seen for
    many epochs, so a fixed mask would be memorised, and re-drawing costs a second per epoch.

Corpus format for text files: documents are separated by blank lines, one sentence per line.
movie_reviews already is one sentence per line, one review per document.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch

from .data import Review, load_movie_reviews, split, split_lines
from .heads import IGNORE_INDEX
from .labelled_texts import decode
from .tokenizer import BertTokenizer

IS_NEXT, NOT_NEXT = 0, 1  # next_sentence_label values, as in BERT and transformers
NOT_NEXT_PROB = 0.5
MOVIE_REVIEWS = "movie_reviews"


# ---- Corpus: documents of sentences -------------------------------------------------------------------


def load_corpus(corpus: list[str] | str = MOVIE_REVIEWS, exclude_test_reviews: bool = True, held_out: int = 0,
                reviews: list[Review] | None = None) -> list[list[str]]:
    """Read a corpus as documents, each a list of sentences.

    Args:
        corpus: "movie_reviews", or paths of text files and folders (every *.txt file below a folder).
            In a text file, a blank line ends a document and each line is one sentence.
        exclude_test_reviews: for movie_reviews, keep only the training split (cv000-cv799), so that
            continued pre-training never reads the text of the reviews that fine-tuning is tested on.
        held_out: for movie_reviews, leave out these validation reviews (see validation_reviews).
        reviews: movie_reviews as load_movie_reviews returns it, when the caller has read it already.
    Returns:
        documents: list of documents, each a list of non-empty sentences (strings).
    """
    names = [corpus] if isinstance(corpus, str) else list(corpus)
    if not names:
        raise ValueError("no corpus given: pass 'movie_reviews' or paths of text files")
    documents = []
    for name in names:
        if name == MOVIE_REVIEWS:
            reviews = reviews or load_movie_reviews()
            kept = split(reviews)[0] if exclude_test_reviews else reviews
            held = {r.fileid for r in validation_reviews(held_out, reviews)}
            documents += [_sentences(r.text) for r in kept if r.fileid not in held]
            continue
        path = Path(name)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*.txt") if p.is_file())
            if not files:
                raise FileNotFoundError(f"the corpus folder {path} holds no .txt files")
        elif path.is_file():
            files = [path]
        else:
            raise FileNotFoundError(f"corpus {name!r} is neither 'movie_reviews' nor an existing file or folder")
        for f in files:
            documents += read_documents(decode(f.read_bytes(), f"--corpus {f}"))
    return [d for d in documents if d]


def validation_reviews(n: int, reviews: list[Review] | None = None) -> list[Review]:
    """The n highest-numbered training reviews (cv000-cv799), half per class: those that scripts/finetune.py
    --val-size n holds out, never a test review. Pre-training leaves them out to measure its masked LM on
    text it never read."""
    if n % 2 or not 0 <= n < 1600:
        raise ValueError(f"the validation reviews are half per class of the 1600 training reviews: an even number below 1600, got {n}")
    train = split(reviews or load_movie_reviews())[0] if n else []
    return [r for c in (0, 1) for r in sorted((r for r in train if r.label == c), key=lambda r: r.fileid)[len(train) // 2 - n // 2:]]


def held_out_documents(n: int, reviews: list[Review] | None = None) -> list[list[str]]:
    """The validation reviews (validation_reviews(n)) as documents of sentences."""
    return [_sentences(r.text) for r in validation_reviews(n, reviews)]


def read_documents(text: str) -> list[list[str]]:
    """Split a text into documents at blank lines; each remaining line is one sentence."""
    documents, current = [], []
    for line in split_lines(text):
        if line.strip():
            current.append(line.strip())
        elif current:
            documents.append(current)
            current = []
    if current:
        documents.append(current)
    return documents


def _sentences(text: str) -> list[str]:
    return [line.strip() for line in split_lines(text) if line.strip()]


def tokenize_documents(documents: list[list[str]], tokenizer: BertTokenizer) -> list[list[list[int]]]:
    """documents of sentences -> documents of sentences of WordPiece ids (no special tokens).
    Sentences that tokenize to nothing and documents left empty are dropped."""
    out = []
    for doc in documents:
        ids = [tokenizer.encode(s, add_special_tokens=False) for s in doc]
        ids = [s for s in ids if s]
        if ids:
            out.append(ids)
    return out


# ---- Sentence pairs for next sentence prediction -----------------------------------------------------


@dataclass
class SentencePair:
    a: list[int]  # ids of segment A (a run of consecutive sentences)
    b: list[int]  # ids of segment B
    is_random_next: bool  # True: B comes from another document (NotNext)


def create_pairs(documents: list[list[list[int]]], max_length: int, rng: random.Random, short_seq_prob: float = 0.1) -> list[SentencePair]:
    """Every sentence pair of one pass over the corpus, document by document (not shuffled).

    Args:
        documents: tokenized documents (lists of sentences of ids), at least two.
        max_length: the length of "[CLS] A [SEP] B [SEP]" never exceeds this.
        rng: the only source of randomness, so that the same seed gives the same pairs.
        short_seq_prob: how often a pair aims at a random shorter length than max_length.
    """
    if len(documents) < 2:
        raise ValueError(f"next sentence prediction needs at least 2 documents (NotNext takes text from another one); got {len(documents)}")
    if max_length < 5:
        raise ValueError(f"max_length must be >= 5 ([CLS] A [SEP] B [SEP] with one token each), got {max_length}")
    pairs = []
    for index in range(len(documents)):
        pairs += pairs_from_document(documents, index, max_length, rng, short_seq_prob)
    return pairs


def pairs_from_document(documents, index: int, max_length: int, rng: random.Random, short_seq_prob: float = 0.1) -> list[SentencePair]:
    """The pairs of documents[index]: collect sentences into a chunk until it reaches the target length,
    then cut the chunk into A and B (or replace B by random text), and start the next chunk."""
    document = documents[index]
    max_tokens = max_length - 3  # room for [CLS], [SEP], [SEP]
    # Mostly fill the whole length (padding is wasted compute), but sometimes aim shorter, so that the
    # model does not only ever see full-length inputs (fine-tuning inputs are often short).
    target = rng.randint(2, max_tokens) if rng.random() < short_seq_prob else max_tokens
    pairs = []
    chunk, chunk_len = [], 0
    i = 0
    while i < len(document):
        chunk.append(document[i])
        chunk_len += len(document[i])
        if i == len(document) - 1 or chunk_len >= target:
            random_next = rng.random() < NOT_NEXT_PROB
            if not random_next and len(chunk) == 1:
                # IsNext needs two sentences: take the next one (or, at the end, the previous one).
                if i + 1 < len(document):
                    i += 1
                    chunk.append(document[i])
                elif i >= 1:
                    chunk.insert(0, document[i - 1])
                else:
                    random_next = True  # a one-sentence document has no continuation
            a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1  # sentences in A
            a = [t for sentence in chunk[:a_end] for t in sentence]
            if random_next:
                b = _random_text(documents, index, target - len(a), rng)
                # The sentences of the chunk that B would have used go back into the document for the next pair.
                i -= len(chunk) - a_end
            else:
                b = [t for sentence in chunk[a_end:] for t in sentence]
            truncate_pair(a, b, max_tokens, rng)
            pairs.append(SentencePair(a, b, random_next))
            chunk, chunk_len = [], 0
        i += 1
    return pairs


def _random_text(documents, index: int, length: int, rng: random.Random) -> list[int]:
    """At least `length` tokens (when available) of consecutive sentences from a document other than `index`."""
    other = rng.randrange(len(documents) - 1)
    other += other >= index  # uniform over the other documents
    document = documents[other]
    b = []
    for sentence in document[rng.randrange(len(document)) :]:
        b += sentence
        if len(b) >= length:
            break
    return b


def truncate_pair(a: list[int], b: list[int], max_tokens: int, rng: random.Random) -> None:
    """Shorten a and b in place until len(a) + len(b) <= max_tokens: always the longer one, one token at a
    time, from the front or the back at random (always cutting the end would teach the model that
    sentences never start mid-way)."""
    while len(a) + len(b) > max_tokens:
        longer = a if len(a) > len(b) else b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


# ---- Masking ----------------------------------------------------------------------------------------
#
# For an input x_1 .. x_T with n maskable tokens (every token but [CLS], [SEP], [UNK], [PAD], [MASK]):
#
#     k = min(max_predictions, max(1, round(mlm_prob * n)))     how many positions are predicted
#     C = k positions drawn uniformly without replacement         (whole words with whole_word=True)
#     for i in C:   label_i = x_i, and the input becomes
#                     [MASK]                       with probability 0.8
#                     a random non-special token   with probability 0.1
#                     x_i itself                   with probability 0.1
#     for i not in C:   label_i = -100 (ignored by the loss), the input stays x_i
#
# The MLM loss is the mean cross-entropy over C only: -1/k * sum_{i in C} log p(x_i | corrupted input).
#
# Worked example (bert-base-uncased vocabulary, mlm_prob=0.15, Masker(...)(ids, random.Random(0))):
#     [CLS] the film opens with a long shot of the city at night , and the camera never stops
#     moving until the credits . [SEP]
#     25 tokens, 23 maskable -> k = round(0.15 * 23) = round(3.45) = 3 chosen:
#       position 12 "night"   -> [MASK]    (the 80% case)
#       position 21 "the"     -> [MASK]
#       position 22 "credits" -> "dino"    (the 10% case: a random token; the model must still say "credits")
#     labels: -100 everywhere except 12: id("night"), 21: id("the"), 22: id("credits").


@dataclass
class Masker:
    """Chooses the tokens the model must predict and corrupts them (80% [MASK], 10% random, 10% unchanged).

    Keeping 10% unchanged and replacing 10% by random tokens means the model cannot assume that only
    [MASK] positions matter: it must keep a good representation of every token, because [MASK] never
    appears at fine-tuning time.
    """

    mask_id: int
    vocab_size: int
    special_ids: frozenset[int]  # never chosen, never used as a random replacement
    continuation_ids: frozenset[int] = frozenset()  # "##" pieces: whole-word masking keeps them with their word
    mlm_prob: float = 0.15  # fraction of the maskable tokens chosen for prediction
    max_predictions: int = 20  # at most this many per sequence
    whole_word: bool = False  # choose whole words (all their pieces) rather than single pieces

    @classmethod
    def from_tokenizer(cls, tokenizer: BertTokenizer, mlm_prob: float = 0.15, max_predictions: int = 20, whole_word: bool = False) -> "Masker":
        if not 0 < mlm_prob < 1:
            raise ValueError(f"mlm_prob must be in (0, 1), got {mlm_prob}")
        if max_predictions < 1:
            raise ValueError(f"max_predictions must be >= 1, got {max_predictions}")
        continuation = frozenset(i for t, i in tokenizer.vocab.items() if t.startswith("##")) if whole_word else frozenset()
        return cls(tokenizer.mask_token_id, tokenizer.vocab_size, frozenset(tokenizer.all_special_ids), continuation,
                   mlm_prob, max_predictions, whole_word)

    def __call__(self, ids: list[int], rng: random.Random) -> tuple[list[int], list[int]]:
        """
        Args:
            ids: a whole input, special tokens included.
        Returns:
            (corrupted ids, labels): labels hold the original id at each chosen position, IGNORE_INDEX (-100)
            everywhere else.
        """
        groups: list[list[int]] = []  # positions that are chosen together (a word, or a single piece)
        for pos, t in enumerate(ids):
            if t in self.special_ids:
                continue
            if self.whole_word and groups and t in self.continuation_ids and groups[-1][-1] == pos - 1:
                groups[-1].append(pos)
            else:
                groups.append([pos])
        n_candidates = sum(len(g) for g in groups)
        n_predict = min(self.max_predictions, max(1, round(n_candidates * self.mlm_prob)))
        rng.shuffle(groups)
        chosen: list[int] = []
        for g in groups:
            if len(chosen) >= n_predict:
                break
            if len(chosen) + len(g) > n_predict:
                continue  # a whole word that would overshoot is skipped, as in BERT
            chosen += g

        corrupted, labels = list(ids), [IGNORE_INDEX] * len(ids)
        for pos in sorted(chosen):
            labels[pos] = ids[pos]
            r = rng.random()
            if r < 0.8:
                corrupted[pos] = self.mask_id
            elif r < 0.9:
                corrupted[pos] = self.random_token(rng)
            # else: the token stays as it is (and must still be predicted)
        return corrupted, labels

    def random_token(self, rng: random.Random) -> int:
        while True:
            t = rng.randrange(self.vocab_size)
            if t not in self.special_ids:
                return t


# ---- Examples and batches -------------------------------------------------------------------------


@dataclass
class PretrainingExample:
    input_ids: list[int]  # [CLS] A [SEP] B [SEP], with the chosen tokens corrupted
    token_type_ids: list[int]  # 0 for [CLS] A [SEP], 1 for B [SEP]
    labels: list[int]  # original id at each chosen position, -100 elsewhere
    next_sentence_label: int  # 0 IsNext, 1 NotNext


def make_example(pair: SentencePair, masker: Masker, cls_id: int, sep_id: int, rng: random.Random) -> PretrainingExample:
    ids = [cls_id, *pair.a, sep_id, *pair.b, sep_id]
    segments = [0] * (len(pair.a) + 2) + [1] * (len(pair.b) + 1)
    corrupted, labels = masker(ids, rng)
    return PretrainingExample(corrupted, segments, labels, NOT_NEXT if pair.is_random_next else IS_NEXT)


def build_examples(documents, masker: Masker, cls_id: int, sep_id: int, max_length: int, rng: random.Random,
                   short_seq_prob: float = 0.1) -> list[PretrainingExample]:
    """One pass over the corpus: pairs, then masks, all drawn from `rng` (in document order)."""
    pairs = create_pairs(documents, max_length, rng, short_seq_prob)
    return [make_example(p, masker, cls_id, sep_id, rng) for p in pairs]


def pretraining_batch(examples: list[PretrainingExample], max_length: int, max_predictions: int, pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Pad every example to max_length and list each one's chosen positions.

    The shapes are the same at every step ((B, max_length) and (B, max_predictions)), so torch.compile
    builds one graph; almost every pair fills the whole length anyway (see pairs_from_document).
    """
    B = len(examples)
    ids = torch.full((B, max_length), pad_id, dtype=torch.long)
    types = torch.zeros((B, max_length), dtype=torch.long)
    mask = torch.zeros((B, max_length), dtype=torch.long)
    labels = torch.full((B, max_length), IGNORE_INDEX, dtype=torch.long)
    positions = torch.zeros((B, max_predictions), dtype=torch.long)  # padded with 0 ([CLS]) ...
    targets = torch.full((B, max_predictions), IGNORE_INDEX, dtype=torch.long)  # ... whose target is ignored
    for row, e in enumerate(examples):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        types[row, :n] = torch.tensor(e.token_type_ids)
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(e.labels)
        chosen = [p for p, label in enumerate(e.labels) if label != IGNORE_INDEX]
        positions[row, : len(chosen)] = torch.tensor(chosen, dtype=torch.long)
        targets[row, : len(chosen)] = torch.tensor([e.labels[p] for p in chosen], dtype=torch.long)
    return {
        "input_ids": ids,  # (B, T)
        "token_type_ids": types,  # (B, T)
        "attention_mask": mask,  # (B, T)
        "labels": labels,  # (B, T): what BertForPreTraining(labels=...) takes
        "mlm_positions": positions,  # (B, P): where the chosen tokens are
        "mlm_labels": targets,  # (B, P): their original ids (-100 for padding)
        "next_sentence_label": torch.tensor([e.next_sentence_label for e in examples]),  # (B,)
    }
