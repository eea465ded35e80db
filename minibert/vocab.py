"""Learning a WordPiece vocabulary from a corpus: the likelihood-based merge algorithm, written out.

BERT cuts words into pieces from a fixed vocabulary ("unaffable" -> "una", "##ffa", "##ble").
This module learns such a vocabulary from raw text; `minibert.BertTokenizer` (and transformers'
BertTokenizer) can load the file that `save_vocab` writes.

The algorithm (Schuster & Nakajima 2012, "Japanese and Korean Voice Search", section 3.1; the
Hugging Face course, chapter 6, "WordPiece tokenization"):

1. Pre-tokenize every text with BERT's `BasicTokenizer` (clean, lower-case, strip accents, split off
   punctuation) and count the words.
2. Split every word into characters. The first character is written bare and the following ones
   with the prefix "##", which means "continues a word": "hug" -> h ##u ##g. The alphabet is
   the set of these symbols (with `limit_alphabet`, only the most frequent ones).
3. Repeat until the vocabulary is full or no pair is left: over the whole corpus (each word
   weighted by its count), count every symbol and every pair of adjacent symbols, score each
   pair, and merge the best pair everywhere, left to right. The new symbol is
   `a + b.removeprefix("##")` (h + ##u -> hu, ##g + ##s -> ##gs). Only pairs seen at least
   `min_frequency` times take part.
4. The vocabulary is the special tokens, then the alphabet (sorted), then the merged symbols in
   the order they were learned.

The score: WordPiece merges the pair that raises the likelihood of the corpus most. Under a
unigram model (P(s) = freq(s) / N, N = the number of symbols in the corpus), each occurrence of
`a b` that becomes one symbol `ab` changes the log-likelihood by
log P(ab) - log P(a) - log P(b), so merging all freq(ab) of them gains about

    score="likelihood" (the default):  freq(ab) * log( freq(ab) * N / (freq(a) * freq(b)) )

"Do a and b occur together more often than chance (the log), and how often (the count)?"
The Hugging Face course drops the count and the log and keeps the per-occurrence ratio,

    score="ratio":  freq(ab) / (freq(a) * freq(b))

which prefers pairs of rare symbols: it learns rare whole words letter by letter ("culpabi",
"culpabil", "culpabili", ...) before frequent endings. On movie_reviews, 8000 tokens learned
with "ratio" cut a word into 3.07 pieces on average ("performances" into 12), with
"likelihood" into 1.15. (BPE, which the `tokenizers` library's WordPieceTrainer runs, merges
the most frequent pair: freq(ab) alone.)

Ties. "ratio" scores are compared exactly, as fractions; "likelihood" scores are floats
(the same counts always give the same float). Among pairs with equal scores, the pair seen more
often wins (more evidence); then the pair (a, b) that comes first in Python's string order (code
points). So the result depends only on the word counts: not on the order of the texts, nor on
dict or set order.

A worked example (tests/test_vocab.py checks it). Words and counts:
hug 10, pug 5, pun 12, bun 4, hugs 5.

    h ##u ##g (10)   p ##u ##g (5)   p ##u ##n (12)   b ##u ##n (4)   h ##u ##g ##s (5)
    freq: h 15, p 17, b 4, ##u 36, ##g 20, ##n 16, ##s 5; N = 113 symbols

    pair     freq   ratio               likelihood
    h ##u     15    15/(15*36) = 1/36   15 log(15*113/(15*36)) = 17.16
    p ##u     17    17/(17*36) = 1/36   17 log(17*113/(17*36)) = 19.45
    b ##u      4     4/(4*36)  = 1/36    4 log( 4*113/(4*36))  =  4.58
    ##u ##g   20    20/(36*20) = 1/36   20 log(20*113/(36*20)) = 22.88  <- likelihood merges ##ug
    ##u ##n   16    16/(36*16) = 1/36   16 log(16*113/(36*16)) = 18.30
    ##g ##s    5     5/(20*5)  = 1/20    5 log( 5*113/(20*5))  =  8.66
                                 ^ ratio merges ##gs

    ratio: ##g ##s -> ##gs. Now hugs = h ##u ##gs, ##g 15, ##s 0, and all five pairs left score
           1/36: the most frequent wins, p ##u -> pu. Then ##u 19, and h ##u, b ##u, ##u ##gs
           all score 1/19: h ##u -> hu. Then bu, hugs, hug, bun, pun, pug.
    likelihood: ##ug, ##un, hug, pun, pug, bun, hugs.

Two implementations of step 3 give the same merges (a test checks it on random corpora):
- `learn_merges_plain` recounts everything after each merge: the algorithm exactly as above, slow.
- `learn_merges` updates the counts after a merge only in the words that contain the merged pair
  (an index maps each pair to its words) and keeps the pairs in a heap. Training 8000 tokens on
  the 1.6 million words of movie_reviews takes about 15 s on one CPU core instead of ~20 minutes.

Conventions of the vocabulary file: one token per line, id = line number; the special tokens come
first, in the order of the tokenizers library: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4.
(bert-base-uncased has [PAD] 0, 99 "[unusedN]" lines, then [UNK] 100 ... [MASK] 103; nothing in
minibert or transformers depends on those numbers, they are read from the file.)
"""

from __future__ import annotations

import heapq
import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

from tqdm import tqdm

from .inputs import check_count
from .tokenizer import (
    MAX_WORD_CHARS,
    SPECIAL_TOKENS,
    BasicTokenizer,
    WordpieceTokenizer,
)

__all__ = [
    "SPECIAL_TOKENS",
    "SCORES",
    "Merge",
    "TokenStats",
    "count_words",
    "split_word",
    "merge_symbols",
    "initial_alphabet",
    "pair_score",
    "learn_merges",
    "learn_merges_plain",
    "train_wordpiece",
    "train_wordpiece_from_counts",
    "save_vocab",
    "token_stats",
]

SCORES = ("likelihood", "ratio")
PREFIX = "##"  # marks a piece that continues a word


class Merge(NamedTuple):
    """One learned merge: `left right -> token`, with the pair's count and score when it was chosen."""

    left: str
    right: str
    token: str
    count: int  # freq(left right) over the corpus
    score: float | Fraction  # see pair_score


# --------------------------------------------------------------------------------------------
# Steps 1 and 2: words, symbols, alphabet
# --------------------------------------------------------------------------------------------


def count_words(texts: Iterable[str], do_lower_case: bool = True) -> Counter[str]:
    """Pre-tokenize texts with BERT's BasicTokenizer and count the words (punctuation marks are words).

    >>> count_words(["The film, the FILM!"])
    Counter({'the': 2, 'film': 2, ',': 1, '!': 1})
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError("texts must be an iterable of strings (e.g. a list), not a single string")
    basic = BasicTokenizer(do_lower_case=do_lower_case)
    counts: Counter[str] = Counter()
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] must be a str, got {type(text).__name__}")
        counts.update(basic.tokenize(text))
    return counts


def split_word(word: str) -> list[str]:
    """A word as its initial symbols: the first character bare, the others with "##".

    >>> split_word("hugs")
    ['h', '##u', '##g', '##s']
    """
    return [word[0]] + [PREFIX + char for char in word[1:]]


def merge_symbols(left: str, right: str) -> str:
    """The symbol that merging `left right` makes: "h" + "##u" -> "hu", "##g" + "##s" -> "##gs"."""
    return left + right.removeprefix(PREFIX)


def initial_alphabet(word_counts: Mapping[str, int], limit_alphabet: int | None = None) -> list[str]:
    """The symbols of step 2, sorted; with `limit_alphabet`, only that many of the most frequent.

    Among symbols seen equally often, the one first in string order is kept.

    >>> initial_alphabet({"hug": 10, "bun": 4})
    ['##g', '##n', '##u', 'b', 'h']
    """
    counts: Counter[str] = Counter()
    for word, n in word_counts.items():
        for symbol in split_word(word):
            counts[symbol] += n
    kept = sorted(counts, key=lambda s: (-counts[s], s))
    if limit_alphabet is not None:
        kept = kept[:limit_alphabet]
    return sorted(kept)


def pair_score(score: str, pair_freq: int, left_freq: int, right_freq: int, total: int) -> float | Fraction:
    """The score of a pair seen `pair_freq` times, its symbols `left_freq` and `right_freq` times,
    in a corpus of `total` symbols (the module docstring explains both scores).

    >>> pair_score("ratio", 5, 20, 5, 113)
    Fraction(1, 20)
    >>> round(pair_score("likelihood", 5, 20, 5, 113), 2)  # 5 * log(5 * 113 / (20 * 5))
    8.66
    """
    if score == "ratio":
        return Fraction(pair_freq, left_freq * right_freq)
    return pair_freq * math.log(pair_freq * total / (left_freq * right_freq))


def _merge_in_word(symbols: list[str], left: str, right: str, token: str) -> list[str]:
    """Replace every `left right` in a word by `token`, scanning left to right.

    >>> _merge_in_word(["b", "##a", "##a", "##a"], "##a", "##a", "##aa")  # the first two pair up
    ['b', '##aa', '##a']
    """
    out = []
    i = 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == left and symbols[i + 1] == right:
            out.append(token)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def _check_score(score: str) -> None:
    if score not in SCORES:
        raise ValueError(f"score must be one of {', '.join(map(repr, SCORES))}, got {score!r}")


# --------------------------------------------------------------------------------------------
# Step 3, plainly: recount everything after every merge
# --------------------------------------------------------------------------------------------


def learn_merges_plain(word_counts: Mapping[str, int], min_frequency: int = 2, score: str = "likelihood") -> Iterator[Merge]:
    """Yield the merges in the order they are learned, recounting the whole corpus each time.

    This is the reference: short and obviously the algorithm of the module docstring, but each
    merge costs a pass over every word. `learn_merges` gives the same merges, fast.

    Args:
        word_counts: word -> count (the words as pre-tokenized, e.g. by `count_words`).
        min_frequency: pairs seen fewer times are never merged (0 and 1 both mean "any pair").
        score: "likelihood" or "ratio" (see `pair_score`).
    """
    _check_score(score)
    segmented = {word: split_word(word) for word in word_counts}
    while True:
        symbol_freq: Counter[str] = Counter()
        pair_freq: Counter[tuple[str, str]] = Counter()
        for word, n in word_counts.items():
            symbols = segmented[word]
            for symbol in symbols:
                symbol_freq[symbol] += n
            for pair in zip(symbols, symbols[1:]):
                pair_freq[pair] += n
        candidates = [pair for pair, f in pair_freq.items() if f >= max(min_frequency, 1)]
        if not candidates:
            return
        total = sum(symbol_freq.values())
        scores = {
            (a, b): pair_score(score, pair_freq[a, b], symbol_freq[a], symbol_freq[b], total) for a, b in candidates
        }
        # The highest score, then the highest count, then the pair first in string order.
        best = min(candidates, key=lambda pair: (-scores[pair], -pair_freq[pair], pair))
        left, right = best
        token = merge_symbols(left, right)
        yield Merge(left, right, token, pair_freq[best], scores[best])
        for word, symbols in segmented.items():
            segmented[word] = _merge_in_word(symbols, left, right, token)


# --------------------------------------------------------------------------------------------
# Step 3, fast: update only what a merge changes
# --------------------------------------------------------------------------------------------


def _count_and_index(words: list[list[str]], counts: list[int]):
    """The counts and the two indexes `learn_merges` keeps up to date: freq(symbol), freq(pair), and
    pair -> the ids of the words that hold it, symbol -> the pairs it is part of."""
    symbol_freq: Counter[str] = Counter()
    pair_freq: Counter[tuple[str, str]] = Counter()
    words_with: defaultdict[tuple[str, str], set[int]] = defaultdict(set)  # pair -> ids of words holding it
    pairs_with: defaultdict[str, set[tuple[str, str]]] = defaultdict(set)  # symbol -> pairs it is part of
    for i, (symbols, n) in enumerate(zip(words, counts)):
        for symbol in symbols:
            symbol_freq[symbol] += n
        for pair in zip(symbols, symbols[1:]):
            pair_freq[pair] += n
            words_with[pair].add(i)
            pairs_with[pair[0]].add(pair)
            pairs_with[pair[1]].add(pair)
    return symbol_freq, pair_freq, words_with, pairs_with


def learn_merges(word_counts: Mapping[str, int], min_frequency: int = 2, score: str = "likelihood") -> Iterator[Merge]:
    """Yield the merges in the order they are learned (the same as `learn_merges_plain`, fast).

    What a merge of `a b` changes:
    - the words that contain `a b`, and only those: their pairs are recounted (an index maps
      each pair to the words that contain it, so these words are found without a scan);
    - freq(a) and freq(b) go down, so the score of every pair that contains a or b goes UP,
      even in words that do not change (an index maps each symbol to the pairs it is in);
    - the corpus has fewer symbols (N), which lowers every "likelihood" score a little.
    Every pair whose score may have gone up gets a fresh entry in a heap ordered like the
    plain version's `min`. Entries are never removed: when one reaches the top, its priority is
    recomputed from the current counts and, if it is out of date, the entry is dropped (and
    pushed again with its current priority when that is lower: a score that went down pushed
    nothing). So the entry that survives at the top is the best pair, as in the plain version.

    Args:
        word_counts: word -> count (the words as pre-tokenized, e.g. by `count_words`).
        min_frequency: pairs seen fewer times are never merged (0 and 1 both mean "any pair").
        score: "likelihood" or "ratio" (see `pair_score`).
    """
    _check_score(score)
    min_frequency = max(min_frequency, 1)
    words = [split_word(word) for word in word_counts]
    counts = list(word_counts.values())
    symbol_freq, pair_freq, words_with, pairs_with = _count_and_index(words, counts)
    total = sum(symbol_freq.values())

    # "ratio" scores are fractions p / q with q = freq(a) * freq(b) <= N^2. Two different such
    # fractions differ by at least 1 / N^4, so scaled by SCALE >= 2 N^4 and rounded down they stay
    # different and in the same order: an integer key that sorts exactly like the fraction and
    # that Python compares as fast as any integer (Fraction keys make training ~3.5x slower).
    scale = 1 << (4 * total.bit_length() + 1)

    def priority(pair):  # the smallest priority is the best pair, as in learn_merges_plain
        f, fa, fb = pair_freq[pair], symbol_freq[pair[0]], symbol_freq[pair[1]]
        key = f * scale // (fa * fb) if score == "ratio" else pair_score(score, f, fa, fb, total)
        return (-key, -f, pair)

    heap = [priority(pair) for pair, f in pair_freq.items() if f >= min_frequency]
    heapq.heapify(heap)
    while heap:
        entry = heapq.heappop(heap)
        best = entry[2]
        if pair_freq[best] < min_frequency:
            continue  # merged already, or too rare now
        current = priority(best)
        if entry != current:
            if entry < current:  # the score went down since this entry was pushed
                heapq.heappush(heap, current)
            continue

        left, right = best
        token = merge_symbols(left, right)
        f, fa, fb = pair_freq[best], symbol_freq[left], symbol_freq[right]
        yield Merge(left, right, token, f, pair_score(score, f, fa, fb, total))

        changed = set()  # pairs whose count changed
        for i in words_with.pop(best):
            old = words[i]
            new = _merge_in_word(old, left, right, token)
            merges = len(old) - len(new)
            if merges == 0:
                continue  # the index may hold words that lost the pair to an earlier merge
            n = counts[i]
            for pair in zip(old, old[1:]):
                pair_freq[pair] -= n
                changed.add(pair)
            for pair in zip(new, new[1:]):
                pair_freq[pair] += n
                changed.add(pair)
                words_with[pair].add(i)
                pairs_with[pair[0]].add(pair)
                pairs_with[pair[1]].add(pair)
            symbol_freq[left] -= merges * n  # when left == right, both lines subtract from it
            symbol_freq[right] -= merges * n
            symbol_freq[token] += merges * n
            total -= merges * n
            words[i] = new

        for pair in changed:
            if pair_freq[pair] == 0:  # gone from the corpus: forget it, so the indexes stay small
                del pair_freq[pair]
                pairs_with[pair[0]].discard(pair)
                pairs_with[pair[1]].discard(pair)
        for pair in changed | pairs_with[left] | pairs_with[right]:
            if pair_freq[pair] >= min_frequency:
                heapq.heappush(heap, priority(pair))


# --------------------------------------------------------------------------------------------
# The whole trainer, and the vocabulary file
# --------------------------------------------------------------------------------------------


def train_wordpiece(
    texts: Iterable[str],
    vocab_size: int,
    *,
    min_frequency: int = 2,
    do_lower_case: bool = True,
    special_tokens: Iterable[str] = SPECIAL_TOKENS,
    limit_alphabet: int | None = None,
    score: str = "likelihood",
    show_progress: bool = False,
) -> list[str]:
    """Learn a WordPiece vocabulary from texts: special tokens, then the alphabet, then merges.

    Args:
        texts: the corpus, an iterable of strings (read once).
        vocab_size: the number of tokens wanted, special tokens and alphabet included. The result
            is shorter when the corpus runs out of pairs to merge.
        min_frequency: a pair must occur at least this often to be merged. The alphabet is not
            affected: every character is kept (unless limit_alphabet is set), so every word of
            the corpus can be tokenized.
        do_lower_case: lower-case and strip accents when pre-tokenizing (as the BertTokenizer that
            will use the vocabulary must do).
        special_tokens: written first, in this order. BertTokenizer needs [PAD], [UNK], [CLS],
            [SEP] and [MASK]; add others (e.g. "[unused0]") after them.
        limit_alphabet: keep only this many initial symbols (the most frequent). Words that
            contain another symbol are left out of training: they would be [UNK] anyway.
        score: which pair to merge: "likelihood" (the default) or "ratio" (see the module docstring).
        show_progress: draw a progress bar on stderr.

    Returns:
        the tokens; token i has id i.

    Raises:
        TypeError: texts is a single string, or holds something that is not a string.
        ValueError: no words in texts, bad special tokens, an unknown score, or a vocab_size
            smaller than the special tokens plus the alphabet.

    Example:
        >>> vocab = train_wordpiece(["hug"] * 10 + ["pug"] * 5 + ["pun"] * 12 + ["bun"] * 4 + ["hugs"] * 5, 15)
        >>> vocab[5:]
        ['##g', '##n', '##s', '##u', 'b', 'h', 'p', '##ug', '##un', 'hug']
    """
    specials = _check_options(vocab_size, min_frequency, special_tokens, limit_alphabet, score)
    word_counts = count_words(texts, do_lower_case=do_lower_case)
    return train_wordpiece_from_counts(
        word_counts,
        vocab_size,
        min_frequency=min_frequency,
        special_tokens=specials,
        limit_alphabet=limit_alphabet,
        score=score,
        show_progress=show_progress,
    )


def train_wordpiece_from_counts(
    word_counts: Mapping[str, int],
    vocab_size: int,
    *,
    min_frequency: int = 2,
    special_tokens: Iterable[str] = SPECIAL_TOKENS,
    limit_alphabet: int | None = None,
    score: str = "likelihood",
    show_progress: bool = False,
) -> list[str]:
    """`train_wordpiece` on words that are already counted (word -> count, e.g. from `count_words`).

    The words are used as they are: pre-tokenize them the way the tokenizer will (lower-cased,
    punctuation split off), or pieces will be learned that the tokenizer never looks up.
    """
    specials = _check_options(vocab_size, min_frequency, special_tokens, limit_alphabet, score)
    for word, n in word_counts.items():
        if not isinstance(word, str) or not word or any(c.isspace() for c in word):
            raise ValueError(f"{word!r} is not a word: words are non-empty strings without spaces")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"the count of {word!r} must be a positive int, got {n!r}")
    # WordpieceTokenizer makes longer words [UNK] without looking at them: nothing to learn there.
    word_counts = {w: n for w, n in word_counts.items() if len(w) <= MAX_WORD_CHARS}
    if not word_counts:
        raise ValueError("the corpus has no words: texts is empty or holds only spaces and control characters")

    alphabet = initial_alphabet(word_counts, limit_alphabet)
    vocab = list(dict.fromkeys([*specials, *alphabet]))  # a special token may also be a character
    if vocab_size < len(vocab):
        raise ValueError(
            f"vocab_size={vocab_size} is smaller than the {len(specials)} special tokens plus the {len(alphabet)} "
            f"symbols of the alphabet ({len(vocab)}); ask for at least {len(vocab)}, or pass limit_alphabet"
        )
    if limit_alphabet is not None:  # words with a symbol outside the alphabet will be [UNK]: leave them out
        known = set(alphabet)
        word_counts = {w: n for w, n in word_counts.items() if all(s in known for s in split_word(w))}

    seen = set(vocab)
    merges = learn_merges(word_counts, min_frequency, score)
    with tqdm(total=vocab_size, initial=len(vocab), unit="token", desc="WordPiece", disable=not show_progress) as bar:
        while len(vocab) < vocab_size:
            merge = next(merges, None)
            if merge is None:
                break  # no pair left to merge
            if merge.token not in seen:  # never write a token twice (a special token may spell it)
                seen.add(merge.token)
                vocab.append(merge.token)
                bar.update(1)
    return vocab


def save_vocab(tokens: Iterable[str], path: str | os.PathLike) -> Path:
    """Write a vocabulary file (UTF-8, one token per line, "\\n" line ends); returns its path.

    Raises:
        ValueError: a token is empty, has a newline or surrounding spaces, or appears twice.
    """
    tokens = list(tokens)
    for token in tokens:
        _check_token(token, "cannot write token")
    if len(set(tokens)) != len(tokens):
        duplicates = sorted(t for t, n in Counter(tokens).items() if n > 1)
        raise ValueError(f"the vocabulary has duplicate tokens: {duplicates[:10]}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(token + "\n" for token in tokens)
    return path


# --------------------------------------------------------------------------------------------
# How well a vocabulary covers a corpus
# --------------------------------------------------------------------------------------------


class TokenStats(NamedTuple):
    """What WordPiece makes of a corpus with a given vocabulary."""

    words: int  # words after pre-tokenization (punctuation marks count as words)
    tokens: int  # WordPiece tokens
    unk: int  # [UNK] tokens (a word that cannot be cut into vocabulary pieces is one [UNK])

    @property
    def unk_rate(self) -> float:
        """The share of words that become [UNK]."""
        return self.unk / self.words if self.words else 0.0

    @property
    def tokens_per_word(self) -> float:
        return self.tokens / self.words if self.words else 0.0


def token_stats(vocab: Iterable[str], word_counts: Mapping[str, int], unk_token: str = "[UNK]") -> TokenStats:
    """Tokenize every word of a corpus (given as word -> count, see `count_words`) with a vocabulary.

    Each distinct word is cut once, with the same WordpieceTokenizer that BertTokenizer uses.
    """
    wordpiece = WordpieceTokenizer(set(vocab), unk_token=unk_token)
    words = tokens = unk = 0
    for word, n in word_counts.items():
        pieces = wordpiece.tokenize_word(word)
        words += n
        tokens += n * len(pieces)
        unk += n * pieces.count(unk_token)
    return TokenStats(words, tokens, unk)


def _check_options(vocab_size, min_frequency, special_tokens, limit_alphabet, score) -> list[str]:
    """Check train_wordpiece's options before any work is done; returns the special tokens as a list."""
    if isinstance(special_tokens, str):
        raise TypeError("special_tokens must be a list of strings, not a single string")
    specials = list(special_tokens)
    check_count("vocab_size", vocab_size, minimum=1)
    check_count("min_frequency", min_frequency, minimum=0)
    if limit_alphabet is not None:
        check_count("limit_alphabet", limit_alphabet, minimum=1)
    _check_score(score)
    for token in specials:
        _check_token(token, "bad special token")
    if len(set(specials)) != len(specials):
        raise ValueError(f"special_tokens has duplicates: {specials}")
    return specials


def _check_token(token, what: str) -> None:
    """A token is one line of the vocabulary file: a non-empty string, no spaces around it, no newline."""
    if not isinstance(token, str) or not token or token != token.strip() or "\n" in token:
        raise ValueError(f"{what} {token!r}: a vocabulary token is a non-empty string without spaces around it or newlines")
