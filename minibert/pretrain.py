"""Pre-training BERT with its two objectives (section 3.1 of the paper): masked language modelling (MLM)
and next sentence prediction (NSP). The loop behind scripts/pretrain.py trains a small BERT from scratch,
or continues pre-training a pretrained one on in-domain text before fine-tuning (Gururangan et al. 2020,
"Don't Stop Pretraining").

    text -> documents -> sentences -> WordPiece ids                          once: load_corpus, tokenize_documents
    every epoch:  sentence pairs "[CLS] A [SEP] B [SEP]" from each document  create_pairs
                    A = a run of sentences; B = their real continuation (IsNext, label 0)
                                             or text from another document (NotNext, label 1), 50 / 50
                  masking: 15% of the tokens are chosen for prediction;      Masker
                    of those 80% become [MASK], 10% a random token, 10% stay as they are
    every step:   loss = MLM cross-entropy (at the chosen positions) + NSP cross-entropy (from [CLS])

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
  * Masking is dynamic by default (RoBERTa, Liu et al. 2019): every epoch draws new pairs and new masks
    from (seed, epoch). BERT masked once, offline (`static`, still available), and duplicated its 3.3B-word
    corpus 10 times with different masks to get variety; a corpus of a few MB such as movie_reviews is
    seen for many epochs, so a fixed mask would be memorised, and re-drawing costs a second per epoch.
  * The MLM logits are computed only at the ~15% chosen positions (as the original TF code did with
    `masked_lm_positions`): the loss is the same number as `BertForPreTraining(...).loss`, but the (B, T, V)
    logits tensor, the largest in the model (2 GB for B=64, T=256 in float32), is never built.

Corpus format for text files: documents are separated by blank lines, one sentence per line.
movie_reviews already is one sentence per line, one review per document.

The loop runs in one process on one device (no torchrun): a small BERT, or a few hundred steps of
continued pre-training, fit one GPU comfortably.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import data as D
from .config import BertConfig
from .heads import IGNORE_INDEX, BertForPreTraining
from .optim import AdamW, LinearWarmupDecay, clip_grad_norm, param_groups
from .tokenizer import BertTokenizer
from .training import (
    plot_loss,
    StopFlag,
    TrainingError,
    autocast,
    check_finite,
    load_training_state,
    pick_device,
    rng_state,
    save_training_state,
    seed_everything,
    set_rng_state,
)

IS_NEXT, NOT_NEXT = 0, 1  # next_sentence_label values, as in BERT and transformers
NOT_NEXT_PROB = 0.5
MOVIE_REVIEWS = "movie_reviews"


# ---- Corpus: documents of sentences -------------------------------------------------------------------


def load_corpus(corpus: list[str] | str = MOVIE_REVIEWS, exclude_test_reviews: bool = True) -> list[list[str]]:
    """Read a corpus as documents, each a list of sentences.

    Args:
        corpus: "movie_reviews", or paths of text files and folders (every *.txt file below a folder).
            In a text file, a blank line ends a document and each line is one sentence.
        exclude_test_reviews: for movie_reviews, keep only the training split (cv000-cv799), so that
            continued pre-training never reads the text of the reviews that fine-tuning is tested on.
    Returns:
        documents: list of documents, each a list of non-empty sentences (strings).
    """
    names = [corpus] if isinstance(corpus, str) else list(corpus)
    if not names:
        raise ValueError("no corpus given: pass 'movie_reviews' or paths of text files")
    documents = []
    for name in names:
        if name == MOVIE_REVIEWS:
            reviews = D.load_movie_reviews()
            if exclude_test_reviews:
                reviews = D.split(reviews)[0]
            documents += [_sentences(r.text) for r in reviews]
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
            documents += read_documents(f.read_text(encoding="utf-8"))
    return [d for d in documents if d]


def read_documents(text: str) -> list[list[str]]:
    """Split a text into documents at blank lines; each remaining line is one sentence."""
    documents, current = [], []
    for line in text.splitlines():
        if line.strip():
            current.append(line.strip())
        elif current:
            documents.append(current)
            current = []
    if current:
        documents.append(current)
    return documents


def _sentences(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


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


def collate(examples: list[PretrainingExample], max_length: int, max_predictions: int, pad_id: int = 0) -> dict[str, torch.Tensor]:
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


# ---- The loss ---------------------------------------------------------------------------------------


class PretrainingLoss(nn.Module):
    """BertForPreTraining's two losses, with the MLM head applied only at the chosen positions.

    A module (rather than a function) so that torch.compile sees the whole step as one graph.
    """

    def __init__(self, model: BertForPreTraining):
        super().__init__()
        self.model = model

    def forward(self, input_ids, token_type_ids, attention_mask, mlm_positions, mlm_labels, next_sentence_label):
        """Returns (mlm loss, nsp loss), two scalars."""
        m = self.model
        out = m.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        h = out.last_hidden_state  # (B, T, H)
        index = mlm_positions[..., None].expand(-1, -1, h.shape[-1])  # (B, P, H)
        mlm_logits = m.mlm(h.gather(1, index), m.bert.embeddings.tok.weight)  # (B, P, V)
        mlm = F.cross_entropy(mlm_logits.flatten(0, 1).float(), mlm_labels.flatten(), ignore_index=IGNORE_INDEX)
        nsp_logits = m.nsp(out.pooler_output)  # (B, 2)
        nsp = F.cross_entropy(nsp_logits.float(), next_sentence_label)
        return mlm, nsp


# ---- The training run --------------------------------------------------------------------------------

# Arguments that must be the same for --resume to continue a run (the rest, e.g. the device, may change).
RESUME_KEYS = ("model", "from_scratch", "hidden_size", "layers", "heads", "intermediate_size", "vocab", "corpus",
               "exclude_test_reviews", "limit_documents", "max_length", "steps", "batch_size", "lr", "warmup",
               "weight_decay", "max_grad_norm", "mlm_prob", "max_predictions", "short_seq_prob", "whole_word_masking",
               "masking", "seed")

DEFAULT_MODEL = "bert-base-uncased"
DEFAULT_LR = {"continue": 1e-4, "scratch": 5e-4}


@dataclass
class PretrainArgs:
    model: str | None = None  # checkpoint to continue pre-training (Hub id or local directory); None: bert-base-uncased
    from_scratch: bool = False  # build a new randomly initialised BERT instead of loading one
    hidden_size: int = 128  # from scratch: H
    layers: int = 2  # from scratch: number of encoder layers
    heads: int = 2  # from scratch: attention heads per layer
    intermediate_size: int | None = None  # from scratch: feed-forward width; None: 4 H
    vocab: str | None = None  # from scratch: vocabulary (file, folder or Hub id); None: bert-base-uncased
    corpus: list[str] = field(default_factory=lambda: [MOVIE_REVIEWS])  # "movie_reviews" and/or text files/folders
    exclude_test_reviews: bool = True  # movie_reviews: only the training split cv000-cv799
    limit_documents: int | None = None  # use only the first N documents (quick checks)
    max_length: int = 128  # tokens per pair, [CLS] and [SEP]s included
    steps: int = 1000  # optimizer steps
    batch_size: int = 32
    lr: float | None = None  # peak learning rate; None: 1e-4 continuing, 5e-4 from scratch
    warmup: float = 0.1  # fraction of the steps spent warming up
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0  # 0 disables clipping
    mlm_prob: float = 0.15  # fraction of tokens chosen for prediction
    max_predictions: int | None = None  # per sequence; None: ceil(mlm_prob * max_length)
    short_seq_prob: float = 0.1  # fraction of pairs aiming at a random shorter length
    whole_word_masking: bool = False  # choose whole words rather than single word pieces
    masking: str = "dynamic"  # dynamic: new pairs and masks every epoch | static: the same every epoch
    seed: int = 0
    output_dir: str = "runs/pretrain"  # model/, checkpoint.pt, metrics.json and curves.png go here
    device: str = "auto"  # auto | cuda | cpu | cuda:1 ...
    precision: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | bf16 | fp32
    compile: bool = False  # torch.compile the training step
    resume: bool = False  # continue from output_dir/checkpoint.pt
    save_every: int = 500  # steps between training checkpoints (0: only at the end and on Ctrl-C)
    log_every: int = 10  # steps between progress-bar updates (each reads the losses: a device sync)
    plots: bool = True
    save_model: bool = True
    progress: bool = True

    def validate(self) -> None:
        for name in ("steps", "batch_size", "hidden_size", "layers", "heads", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.max_length < 5:
            raise ValueError(f"--max-length must be >= 5 ([CLS] A [SEP] B [SEP]), got {self.max_length}")
        if self.from_scratch and self.model is not None:
            raise ValueError("--model and --from-scratch exclude each other: continue a checkpoint, or build a new model")
        if not self.from_scratch and self.vocab is not None:
            raise ValueError("--vocab is only for --from-scratch: a pretrained model must keep its own vocabulary")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"--warmup is a fraction of the steps in [0, 1), got {self.warmup}")
        if not 0 < self.mlm_prob < 1:
            raise ValueError(f"--mlm-prob must be in (0, 1), got {self.mlm_prob}")
        if not 0 <= self.short_seq_prob <= 1:
            raise ValueError(f"--short-seq-prob must be in [0, 1], got {self.short_seq_prob}")
        if self.max_predictions is not None and self.max_predictions < 1:
            raise ValueError(f"--max-predictions must be >= 1, got {self.max_predictions}")
        if self.masking not in ("dynamic", "static"):
            raise ValueError(f"--masking must be dynamic or static, got {self.masking!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"--precision must be auto, bf16 or fp32, got {self.precision!r}")
        if self.save_every < 0:
            raise ValueError(f"--save-every must be >= 0, got {self.save_every}")

    @property
    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR["scratch" if self.from_scratch else "continue"]

    @property
    def predictions_per_seq(self) -> int:
        return self.max_predictions or math.ceil(self.mlm_prob * self.max_length)


def build_model(args: PretrainArgs) -> tuple[BertForPreTraining, BertTokenizer]:
    """A new BERT (--from-scratch) or a pretrained one with its tokenizer; MLM/NSP heads that the
    checkpoint lacks are initialised (and reported)."""
    if args.from_scratch:
        tokenizer = BertTokenizer.from_pretrained(args.vocab or DEFAULT_MODEL)
        config = BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=args.hidden_size,
            num_hidden_layers=args.layers,
            num_attention_heads=args.heads,
            intermediate_size=args.intermediate_size or 4 * args.hidden_size,
            max_position_embeddings=max(512, args.max_length),
            pad_token_id=tokenizer.pad_token_id,
        )
        return BertForPreTraining(config), tokenizer
    name = args.model or DEFAULT_MODEL
    model, report = BertForPreTraining.from_pretrained(name, output_loading_info=True)
    tokenizer = BertTokenizer.from_pretrained(name)
    if report.initialized:  # e.g. a sentence-embedding BERT such as all-MiniLM-L6-v2 ships without its heads
        heads = sorted({"MLM" if k.startswith("cls.predictions") else "NSP" for k in report.initialized})
        tqdm.write(f"{name} has no {' and '.join(heads)} head weights: they start from a fresh initialisation, so the "
                   f"first steps' losses are those of an untrained head")
    if tokenizer.vocab_size > model.config.vocab_size:
        raise ValueError(f"the tokenizer of {name} has {tokenizer.vocab_size} tokens but the model only {model.config.vocab_size}")
    if args.max_length > model.config.max_position_embeddings:
        raise ValueError(f"--max-length {args.max_length} exceeds the {model.config.max_position_embeddings} positions of {name}")
    return model, tokenizer


def epoch_batches(documents, masker: Masker, tokenizer: BertTokenizer, args: PretrainArgs, epoch: int):
    """The examples of one epoch and their batches. Depends only on (seed, epoch), so a resumed run
    sees exactly what an uninterrupted one would have."""
    draw = epoch if args.masking == "dynamic" else 0  # static: the same pairs and masks every epoch
    rng = random.Random(f"minibert-pretrain/{args.seed}/{draw}")
    examples = build_examples(documents, masker, tokenizer.cls_token_id, tokenizer.sep_token_id, args.max_length, rng, args.short_seq_prob)
    order = D.batch_order(examples, args.batch_size, shuffle=True, seed=args.seed, epoch=epoch, group_by_length=False)
    batches = [b for b in order if len(b) == args.batch_size]  # drop the last partial batch: same shapes every step
    if not batches:
        raise ValueError(f"the corpus gives only {len(examples)} examples per epoch, fewer than --batch-size {args.batch_size}")
    return examples, batches


def run(args: PretrainArgs, documents: list[list[str]] | None = None, callback: Callable[[int, dict], None] | None = None) -> dict:
    """Pre-train (or continue pre-training) a BERT; write output_dir/{model/, checkpoint.pt, metrics.json, curves.png}.

    Args:
        args: the settings (see PretrainArgs and scripts/pretrain.py --help).
        documents: the corpus as documents of sentences; None reads args.corpus with load_corpus.
        callback: called as callback(step, losses) after every optimizer step, where losses holds the
            step's "mlm" and "nsp" loss tensors (reading them syncs the device).
    Returns:
        the metrics also written to metrics.json ("status" is "completed" or "interrupted").
    """
    args.validate()
    device = pick_device(args.device)
    precision = ("bf16" if device.type == "cuda" else "fp32") if args.precision == "auto" else args.precision
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    started = time.perf_counter()

    seed_everything(args.seed)  # the initialisation of a new model or of missing heads, and dropout
    model, tokenizer = build_model(args)
    model.to(device).train()

    texts = documents if documents is not None else load_corpus(args.corpus, args.exclude_test_reviews)
    if args.limit_documents:
        texts = texts[: args.limit_documents]
    docs = tokenize_documents(texts, tokenizer)
    corpus_stats = {"documents": len(docs), "sentences": sum(map(len, docs)), "tokens": sum(len(s) for d in docs for s in d)}
    masker = Masker.from_tokenizer(tokenizer, args.mlm_prob, args.predictions_per_seq, args.whole_word_masking)

    optimizer = AdamW(param_groups(model, args.weight_decay), lr=args.peak_lr)
    schedule = LinearWarmupDecay(optimizer, warmup_steps=int(args.warmup * args.steps), total_steps=args.steps)
    history = {"step": [], "mlm": [], "nsp": [], "lr": []}
    step, epoch, next_batch, elapsed_before = 0, 0, 0, 0.0

    if args.resume and ckpt_path.exists():
        state = load_training_state(ckpt_path)
        changed = [k for k in RESUME_KEYS if state["args"].get(k) != getattr(args, k)]
        if changed:
            raise TrainingError(f"--resume: {ckpt_path} was written with different settings ({', '.join(changed)}); "
                                f"use the same arguments or another --output-dir")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        set_rng_state(state["rng"])
        history, elapsed_before = state["history"], state["elapsed"]
        step, epoch, next_batch = state["step"], state["epoch"], state["batch"]
        tqdm.write(f"resuming {out} at step {step} (epoch {epoch + 1}, batch {next_batch})")
    elif args.resume:
        tqdm.write(f"--resume: no checkpoint in {out} yet, starting from the beginning")

    loss_fn = PretrainingLoss(model)
    forward = torch.compile(loss_fn) if args.compile else loss_fn

    def save() -> None:
        save_training_state(
            ckpt_path, model=model.state_dict(), optimizer=optimizer.state_dict(), schedule=schedule.state_dict(),
            rng=rng_state(), step=step, epoch=epoch, batch=next_batch, history=history,
            args=dataclasses.asdict(args), elapsed=elapsed_before + time.perf_counter() - started,
        )

    status = "completed"
    examples_per_epoch, batches = None, []
    bar = tqdm(total=args.steps, initial=step, desc="pre-training", disable=not args.progress, dynamic_ncols=True)
    pending, t_log, n_log = [], time.perf_counter(), 0
    with StopFlag() as stop:
        while step < args.steps and not stop.set:
            examples, batches = epoch_batches(docs, masker, tokenizer, args, epoch)
            examples_per_epoch = len(examples)
            while next_batch < len(batches) and step < args.steps and not stop.set:
                batch = collate([examples[i] for i in batches[next_batch]], args.max_length, args.predictions_per_seq, tokenizer.pad_token_id)
                inputs = {k: batch[k].to(device, non_blocking=True) for k in
                          ("input_ids", "token_type_ids", "attention_mask", "mlm_positions", "mlm_labels", "next_sentence_label")}
                with autocast(device, precision):
                    mlm, nsp = forward(**inputs)
                (mlm + nsp).backward()
                if args.max_grad_norm:
                    clip_grad_norm(model.parameters(), args.max_grad_norm)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                step += 1
                next_batch += 1
                pending.append((step, mlm.detach(), nsp.detach(), schedule.lr))
                n_log += args.batch_size
                bar.update(1)
                if callback is not None:
                    callback(step, {"mlm": mlm.detach(), "nsp": nsp.detach()})
                if len(pending) >= args.log_every or step == args.steps or stop.set:
                    values = torch.stack([torch.stack([m, n]) for _, m, n, _ in pending]).float().cpu()  # (k, 2): one sync
                    for (s, _, _, _), row in zip(pending, values):
                        check_finite(row.sum(), s)  # names the first step whose loss is not finite
                    for (s, _, _, lr), (m, n) in zip(pending, values.tolist()):
                        history["step"].append(s), history["mlm"].append(m), history["nsp"].append(n), history["lr"].append(lr)
                    rate = n_log / (time.perf_counter() - t_log)
                    bar.set_postfix(mlm=f"{values[:, 0].mean():.3f}", nsp=f"{values[:, 1].mean():.3f}", lr=f"{schedule.lr:.2e}",
                                    ex_s=f"{rate:.0f}", epoch=epoch + 1)
                    pending, t_log, n_log = [], time.perf_counter(), 0
                if args.save_every and step % args.save_every == 0 and step < args.steps:
                    save()
            if next_batch >= len(batches):
                epoch, next_batch = epoch + 1, 0
        bar.close()
        if stop.set and step < args.steps:
            status = "interrupted"
        save()
        if status == "interrupted":
            tqdm.write(f"saved {ckpt_path} at step {step}; continue with the same command plus --resume")

    if status == "completed" and args.save_model:
        # HF layout with the MLM and NSP heads and the vocabulary: scripts/finetune.py --model out/model,
        # scripts/fill_mask.py --model out/model and transformers' from_pretrained all read it.
        model.save_pretrained(out / "model", tokenizer=tokenizer)
    metrics = {
        "status": status,
        "args": dataclasses.asdict(args),
        "lr": args.peak_lr,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": precision,
        "parameters": model.num_parameters(),
        "corpus": corpus_stats,
        "examples_per_epoch": examples_per_epoch,
        "epochs": epoch + (next_batch / len(batches) if batches else 0.0),  # passes over the corpus
        "steps": step,
        "wall_seconds": elapsed_before + time.perf_counter() - started,
        "loss_start": _window_mean(history, slice(0, 10)),
        "loss_end": _window_mean(history, slice(-10, None)),
        "history": history,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if args.plots and history["step"]:
        plot_losses(history, out / "curves.png", title=f"pre-training {'from scratch' if args.from_scratch else args.model or DEFAULT_MODEL}")
    return metrics


def _window_mean(history: dict, window: slice) -> dict | None:
    if not history["step"]:
        return None
    return {k: sum(history[k][window]) / len(history[k][window]) for k in ("mlm", "nsp")}


def plot_losses(history: dict, path: Path, title: str = "") -> None:
    """The MLM and the NSP training loss per step, raw and smoothed, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    steps = history["step"]
    for ax, key, name in ((axes[0], "mlm", "masked LM loss"), (axes[1], "nsp", "next sentence loss")):
        plot_loss(ax, steps, history[key], name)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
