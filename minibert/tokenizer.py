"""BERT's WordPiece tokenizer, written from scratch: text -> word pieces -> ids, and back.

Tokenizing a text takes three steps, each a class below:

1. `BasicTokenizer` cleans the text and cuts it into words: it drops NUL, U+FFFD and control
   characters, turns every kind of space into " ", puts spaces around CJK ideographs, composes
   the text (Unicode NFC), splits it on whitespace, lower-cases each word and strips its accents
   (NFD, then drop the combining marks), and splits punctuation off into words of its own.
2. `WordpieceTokenizer` cuts each word into vocabulary pieces, greedily taking the longest piece
   that matches from the left: "unaffable" -> "una", "##ffa", "##ble" ("##" marks a piece that
   continues a word). A word that cannot be cut this way, or is longer than 100 characters,
   becomes "[UNK]".
3. `BertTokenizer` ties them to the vocabulary file, and hands the ids to minibert/inputs.py, which
   builds the model inputs: "[CLS] A [SEP]" or "[CLS] A [SEP] B [SEP]" with token types 0/1,
   truncation, padding, tensors.

The output is identical, id for id, to the pure-Python reference
`transformers.models.bert.tokenization_bert_legacy.BertTokenizerLegacy` (see
docs/tokenizer_notes.md for where the Rust-backed `transformers.BertTokenizer` differs from it).

Speed comes from three memo tables, not from a different algorithm:
- each distinct whitespace-separated word is tokenized once and its ids are remembered
  (text is Zipf-distributed: a review has ~700 words but only a few hundred distinct ones);
- the per-character rules (control? space? CJK? punctuation?) are evaluated once per distinct
  character and remembered in tables that `str.translate` applies at C speed;
- pure-ASCII text, the common case, skips Unicode normalization entirely (NFC and NFD do not
  change ASCII, and ASCII holds no CJK ideographs and no combining marks).
"""

from __future__ import annotations

import json
import operator
import os
import re
import unicodedata
from pathlib import Path

from . import hub
from .hub import atomic_write
from .inputs import (
    MODEL_INPUTS,
    BatchEncoding,
    as_id_list,
    as_pairs,
    batch_inputs,
    build_inputs,
    check_count,
    check_head_tail,
    check_options,
    check_str,
    head_tail,
    head_tail_inputs,
    is_int,
    pad,
)

# BatchEncoding and head_tail live in inputs.py; they stay importable from here, where they used to be.
__all__ = ["BasicTokenizer", "WordpieceTokenizer", "BertTokenizer", "BatchEncoding", "head_tail", "load_vocab"]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # every BERT vocabulary must hold these
MAX_WORD_CHARS = 100  # WordPiece turns a longer word into [UNK] without looking at it (google-research/bert)
VOCAB_NAME = "vocab.txt"
CONFIG_NAME = "tokenizer_config.json"
# Names whose vocabulary ships with minibert: bert-base-uncased's Hub ids (same file, md5
# 64800d5d8528ce344256daf115d4965e), and the movie-review vocabulary trained by scripts/train_vocab.py.
SHIPPED_VOCABS = {
    "bert-base-uncased": "bert-base-uncased.txt",
    "google-bert/bert-base-uncased": "bert-base-uncased.txt",
    "movie-reviews-wordpiece": "movie-reviews-wordpiece.txt",
}


# --------------------------------------------------------------------------------------------
# Character classes (the definitions of the original BERT, google-research/bert tokenization.py)
# --------------------------------------------------------------------------------------------


def _is_whitespace(char: str) -> bool:
    """Space, tab, newline, carriage return, and Unicode space separators (category Zs)."""
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    """Unicode "other" characters (Cc, Cf, Cn, Co, Cs), except tab/newline/return, which count as spaces."""
    return char not in "\t\n\r" and unicodedata.category(char).startswith("C")


def _is_punctuation(char: str) -> bool:
    """Every non-alphanumeric printable ASCII character, and Unicode punctuation (categories P*).

    "$", "^", "`", "+", "<" ... are symbols (S*) in Unicode, but BERT splits them off too.
    """
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(char: str) -> bool:
    """CJK ideographs (the Unified Ideographs blocks and extensions, and the compatibility ideographs).

    Hangul, Hiragana and Katakana are not included: those scripts separate words with spaces.
    """
    cp = ord(char)
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


class _CharTable(dict):
    """A `str.translate` table filled in lazily: `rule(char)` runs once per distinct character.

    Why: calling `unicodedata.category` for every character of every text is the slow part of a
    Python tokenizer. The table grows with the number of distinct characters seen (a few hundred
    for ordinary text), and lookups after the first are a dict hit inside `str.translate`.
    """

    def __init__(self, rule):
        super().__init__()
        self.rule = rule

    def __missing__(self, codepoint: int):
        value = self[codepoint] = self.rule(chr(codepoint))
        return value


def _clean_rule(char: str) -> str | None:
    """Cleaning: drop NUL, U+FFFD and control characters (None deletes), make every space a " "."""
    if char in "\x00\ufffd" or _is_control(char):
        return None
    return " " if _is_whitespace(char) else char


def _clean_and_cjk_rule(char: str) -> str | None:
    """Cleaning, then spaces around CJK ideographs so that each becomes a word of its own."""
    char = _clean_rule(char)
    return f" {char} " if char is not None and _is_cjk(char) else char


_CLEAN = _CharTable(_clean_rule)
_CLEAN_AND_CJK = _CharTable(_clean_and_cjk_rule)
_PUNCTUATION = _CharTable(_is_punctuation)  # codepoint -> bool, used as a memo, not for translate

# The only ASCII characters that cleaning changes: C0 controls and DEL (dropped), tab/newline/return (-> " ").
_ASCII_CLEAN = {cp: _clean_rule(chr(cp)) for cp in [*range(0x20), 0x7F]}
_ASCII_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# --------------------------------------------------------------------------------------------
# Step 1: text -> words
# --------------------------------------------------------------------------------------------


class BasicTokenizer:
    """Cleans text and splits it into words and punctuation marks (no vocabulary involved).

    Args:
        do_lower_case: lower-case every word (uncased models).
        never_split: words that are kept exactly as written (not lower-cased nor split), for
            example the special tokens "[MASK]" and "[SEP]".
        tokenize_chinese_chars: put spaces around CJK ideographs, so each is a word.
        strip_accents: remove accents (NFD, then drop combining marks, category Mn). None means
            "same as do_lower_case", as in the original BERT; False keeps accents even when
            lower-casing; True strips them even without lower-casing.
    """

    def __init__(
        self,
        do_lower_case: bool = True,
        never_split=None,
        tokenize_chinese_chars: bool = True,
        strip_accents: bool | None = None,
    ):
        self.do_lower_case = bool(do_lower_case)
        self.never_split = frozenset(never_split or ())
        self.tokenize_chinese_chars = bool(tokenize_chinese_chars)
        self.strip_accents = strip_accents
        self._char_table = _CLEAN_AND_CJK if self.tokenize_chinese_chars else _CLEAN

    def normalize(self, text: str) -> str:
        """Clean the text, space out CJK ideographs, and compose it (NFC); whitespace is not yet split.

        NFC makes "e" + U+0301 (combining acute) and the precomposed "é" the same word.
        """
        if text.isascii():
            # Fast path: for ASCII, NFC is the identity and there are no CJK ideographs; cleaning
            # only touches control characters, and a regex scan for them is cheaper than a copy.
            # Tab/newline/return are left in place: str.split() treats them as spaces anyway.
            return text.translate(_ASCII_CLEAN) if _ASCII_CONTROL.search(text) else text
        return unicodedata.normalize("NFC", text.translate(self._char_table))

    def split_word(self, word: str) -> list[str]:
        """Lower-case (or not), strip accents (or not), and split punctuation off one whitespace-free word."""
        if word in self.never_split:
            return [word]
        if self.do_lower_case:
            word = word.lower()
            if self.strip_accents is not False:
                word = _strip_accents(word)
        elif self.strip_accents:
            word = _strip_accents(word)
        if word in self.never_split:  # "[MASK]" + U+0338, accents stripped without lower-casing
            return [word]
        return _split_on_punctuation(word)

    def tokenize(self, text: str) -> list[str]:
        """Split a text into words: `"Hello, [MASK]!"` -> `["hello", ",", "[MASK]", "!"]`."""
        return [piece for word in self.normalize(text).split() for piece in self.split_word(word)]


def _strip_accents(word: str) -> str:
    """Decompose (NFD: "é" -> "e" + U+0301) and drop the combining marks (category Mn)."""
    if word.isascii():  # ASCII has nothing to decompose
        return word
    return "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")


def _split_on_punctuation(word: str) -> list[str]:
    """Every punctuation character becomes a word of its own: "don't!" -> ["don", "'", "t", "!"]."""
    pieces: list[str] = []
    start = 0
    for i, char in enumerate(word):
        if _PUNCTUATION[ord(char)]:
            if start < i:
                pieces.append(word[start:i])
            pieces.append(char)
            start = i + 1
    if start < len(word):
        pieces.append(word[start:])
    return pieces


# --------------------------------------------------------------------------------------------
# Step 2: word -> word pieces
# --------------------------------------------------------------------------------------------


class WordpieceTokenizer:
    """Greedy longest-match-first WordPiece over a fixed vocabulary.

    Args:
        vocab: the vocabulary (a container of token strings; continuation pieces start with "##").
        unk_token: what a word becomes when it cannot be covered by vocabulary pieces.
        max_input_chars_per_word: longer words become `unk_token` without being looked at.
    """

    def __init__(self, vocab, unk_token: str = "[UNK]", max_input_chars_per_word: int = MAX_WORD_CHARS):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word
        # No piece can be longer than the longest vocabulary entry, so never try a longer one:
        # this turns the search from O(len(word)^2) substrings into O(len(word) * longest).
        self._longest = max(map(len, vocab), default=0)

    def tokenize(self, text: str) -> list[str]:
        """Split a text on whitespace and cut each word into pieces (see `tokenize_word`).

        >>> WordpieceTokenizer({"un", "##want", "##ed", "runn", "##ing"}).tokenize("unwanted running")
        ['un', '##want', '##ed', 'runn', '##ing']
        """
        return [piece for word in text.split() for piece in self.tokenize_word(word)]

    def tokenize_word(self, word: str) -> list[str]:
        """Cut one word into pieces, taking at each step the longest vocabulary piece that matches.

        A worked example, with the vocabulary {"un", "##aff", "##able"}, for "unaffable":

            start 0: "unaffa", "unaff", "unaf", "una" are not in the vocabulary; "un" is  -> un
            start 2: "##affabl", "##affab", "##affa" are not; "##aff" is                 -> ##aff
            start 5: "##able" is                                                         -> ##able

        (The first candidate is as long as the longest vocabulary entry: no longer one can match.)

        >>> WordpieceTokenizer({"un", "##aff", "##able"}).tokenize_word("unaffable")
        ['un', '##aff', '##able']

        The search never goes back: with "una" in the vocabulary too, it would take "una" and then
        find no piece for "##ffable", and the word becomes unknown, although "un ##aff ##able" exists.

        >>> WordpieceTokenizer({"una", "un", "##aff", "##able"}).tokenize_word("unaffable")
        ['[UNK]']
        """
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        vocab = self.vocab
        pieces = []
        start = 0
        while start < len(word):
            prefix = "##" if start > 0 else ""
            # Try the longest candidate first and shorten it one character at a time.
            for end in range(min(len(word), start + self._longest), start, -1):
                piece = prefix + word[start:end]
                if piece in vocab:
                    break
            else:  # not even a single character matched: the whole word is unknown
                return [self.unk_token]
            pieces.append(piece)
            start = end
        return pieces


# --------------------------------------------------------------------------------------------
# Step 3: the vocabulary file, and the tokenizer files of a pretrained model
# --------------------------------------------------------------------------------------------


def load_vocab(vocab_file: str | os.PathLike) -> list[str]:
    """Read a WordPiece vocabulary: one token per line, the line number is the id.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is empty, or lacks one of [PAD], [UNK], [CLS], [SEP], [MASK].
    """
    path = Path(vocab_file)
    if not path.is_file():
        raise FileNotFoundError(
            f"vocab file {str(path)!r} does not exist; pass the path of a WordPiece vocab.txt, a directory "
            f"that holds one, or a Hub id such as 'bert-base-uncased' to BertTokenizer.from_pretrained"
        )
    try:
        # utf-8-sig drops a leading byte order mark, which some editors write: it is not part of "[PAD]".
        with open(path, encoding="utf-8-sig") as f:
            tokens = [line.rstrip("\n") for line in f]  # only the newline: a token may end in other spaces
    except UnicodeDecodeError:
        raise ValueError(
            f"vocab file {str(path)!r} is not UTF-8 text ({first_bad_utf8(path)}); save it as UTF-8, one token per line"
        ) from None
    if not tokens:
        raise ValueError(f"vocab file {str(path)!r} is empty; a WordPiece vocabulary has one token per line")
    missing = [t for t in SPECIAL_TOKENS if t not in set(tokens)]
    if missing:
        raise ValueError(
            f"vocab file {str(path)!r} has no {' '.join(missing)} token; a BERT vocabulary must contain "
            f"[PAD], [UNK], [CLS], [SEP] and [MASK] (one token per line)"
        )
    return tokens


def first_bad_utf8(path: str | os.PathLike) -> str:
    """Where a file stops being UTF-8, for error messages: "byte 0xe9 at position 34, line 6".

    (A UnicodeDecodeError raised while reading a text file counts from the reader's last buffer.)
    """
    data = Path(path).read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"byte {data[e.start]:#04x} at position {e.start}, line {data.count(10, 0, e.start) + 1}"
    return "valid UTF-8"


def load_pretrained_files(
    name_or_path: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
) -> tuple[Path, dict]:
    """The vocabulary file of a Hub id, a directory or a vocab file path, and the options its
    tokenizer_config.json sets (do_lower_case, strip_accents, tokenize_chinese_chars, model_max_length).

    "bert-base-uncased" uses the vocabulary shipped with minibert (no network).
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(
            f"from_pretrained expects a Hub id, a directory or a vocab file path, got {type(name_or_path).__name__}"
        )
    name = os.fspath(name_or_path)
    path = Path(name).expanduser()
    if path.is_file():
        return path, {}
    if not path.exists() and name in SHIPPED_VOCABS and revision is None:
        return _shipped_vocab(SHIPPED_VOCABS[name]), {}
    # force_download is passed only when asked for, so that older hub.resolve versions work too.
    extra = {"force_download": True} if force_download else {}
    files = hub.resolve(
        name_or_path,
        [VOCAB_NAME, CONFIG_NAME],
        cache_dir=cache_dir,
        revision=revision,
        local_files_only=local_files_only,
        **extra,
    )
    if VOCAB_NAME not in files:
        where = "" if path.is_dir() else " (or it is not in the local cache and the Hub cannot be reached)"
        raise FileNotFoundError(f"{name!r} has no {VOCAB_NAME}{where}; a BERT tokenizer needs its WordPiece vocabulary")
    options = {}
    if CONFIG_NAME in files:
        config = json.loads(files[CONFIG_NAME].read_text(encoding="utf-8"))
        options = {key: config[key] for key in ("do_lower_case", "strip_accents", "tokenize_chinese_chars") if key in config}
        # transformers writes a huge placeholder (1e30) when a model sets no limit: ignore it.
        if isinstance(config.get("model_max_length"), int) and 0 < config["model_max_length"] < 1 << 31:
            options["model_max_length"] = config["model_max_length"]
    return files[VOCAB_NAME], options


def save_pretrained_files(save_directory: str | os.PathLike, tokens: list[str], options: dict) -> tuple[Path, Path]:
    """Write vocab.txt and tokenizer_config.json (with `options`) so that transformers' AutoTokenizer
    loads the directory; each file is replaced whole or not at all."""
    directory = Path(save_directory)
    if directory.exists() and not directory.is_dir():
        raise FileExistsError(f"{str(directory)!r} is a file; save_pretrained needs a directory")
    directory.mkdir(parents=True, exist_ok=True)
    vocab_path, config_path = directory / VOCAB_NAME, directory / CONFIG_NAME
    with atomic_write(vocab_path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(token + "\n" for token in tokens)
    names = dict(zip(("pad_token", "unk_token", "cls_token", "sep_token", "mask_token"), SPECIAL_TOKENS))
    config = {"tokenizer_class": "BertTokenizer", **options, **names, "clean_up_tokenization_spaces": True}
    with atomic_write(config_path) as tmp:
        Path(tmp).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return vocab_path, config_path


def _shipped_vocab(filename: str) -> Path:
    """The vocabulary shipped with minibert: inside the wheel (minibert/vocab/) or in a source checkout (vocab/)."""
    here = Path(__file__).resolve().parent
    for folder in (here / "vocab", here.parent / "vocab"):
        if (folder / filename).is_file():
            return folder / filename
    raise FileNotFoundError(
        f"the vocabulary {filename} that ships with minibert is missing (looked in {here / 'vocab'} and "
        f"{here.parent / 'vocab'}); reinstall minibert, or pass the path of a vocab.txt"
    )


# --------------------------------------------------------------------------------------------
# The tokenizer: the steps above joined to a vocabulary, and to the model inputs of inputs.py
# --------------------------------------------------------------------------------------------


def _special_token_id(token: str) -> property:
    return property(lambda self: self._vocab[token], doc=f"The id of {token} in this vocabulary.")


class BertTokenizer:
    """BERT's tokenizer: WordPiece over a vocabulary file, with the special tokens [CLS], [SEP], [PAD], [MASK], [UNK].

    Args:
        vocab_file: the vocabulary, one token per line (id = line number).
        do_lower_case: True for uncased models (lower-case, and strip accents unless told not to).
        strip_accents: None follows do_lower_case; True/False forces it.
        tokenize_chinese_chars: make each CJK ideograph a word of its own.
        model_max_length: the longest input the model accepts; used when truncation or
            padding="max_length" is asked for without a max_length.
        cache_size: how many distinct words to remember (their ids); 0 turns the cache off.

    Example:
        >>> tok = BertTokenizer.from_pretrained("bert-base-uncased")
        >>> tok.tokenize("Unaffable [MASK]!")
        ['una', '##ffa', '##ble', '[MASK]', '!']
        >>> tok("a movie", "a film")["token_type_ids"]
        [0, 0, 0, 0, 1, 1, 1]
    """

    special_tokens = SPECIAL_TOKENS
    model_input_names = MODEL_INPUTS
    # pad_token_id = the id of "[PAD]", and so on, in the order of SPECIAL_TOKENS.
    pad_token_id, unk_token_id, cls_token_id, sep_token_id, mask_token_id = map(_special_token_id, SPECIAL_TOKENS)

    def __init__(
        self,
        vocab_file: str | os.PathLike,
        do_lower_case: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        model_max_length: int = 512,
        cache_size: int = 1 << 17,
    ):
        if strip_accents not in (None, True, False):
            raise TypeError(f"strip_accents must be None, True or False, got {strip_accents!r}")
        check_count("model_max_length", model_max_length, minimum=1)
        check_count("cache_size", cache_size, minimum=0)
        self.vocab_file = Path(vocab_file)
        self._id_to_token = load_vocab(vocab_file)
        # If a token appears twice, the later line wins (as in every BERT implementation).
        self._vocab = {token: i for i, token in enumerate(self._id_to_token)}
        self.model_max_length = int(model_max_length)
        self.basic_tokenizer = BasicTokenizer(do_lower_case, SPECIAL_TOKENS, tokenize_chinese_chars, strip_accents)
        self.wordpiece_tokenizer = WordpieceTokenizer(self._vocab, unk_token="[UNK]")
        # Special tokens written in the text ("Paris is the [MASK] of France.") are found before any
        # cleaning and kept whole. The five tokens cannot overlap (each is "[" + letters + "]"), so
        # leftmost matching with a regex is the same as the reference's trie.
        self._special_split = re.compile("(" + "|".join(re.escape(t) for t in SPECIAL_TOKENS) + ")").split
        self._cache: dict[str, tuple[int, ...]] = {}
        self._cache_size = int(cache_size)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        cache_dir: str | os.PathLike | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        force_download: bool = False,
        **kwargs,
    ) -> BertTokenizer:
        """Load a tokenizer from a Hub id, a local directory, or a vocabulary file.

        Args:
            name_or_path: "bert-base-uncased" (uses the vocabulary shipped with minibert, no network),
                another Hub id, a directory with vocab.txt (and optionally tokenizer_config.json, whose
                do_lower_case / strip_accents / tokenize_chinese_chars / model_max_length are read),
                or the path of a vocab .txt file.
            cache_dir, revision, local_files_only, force_download: passed to huggingface_hub for Hub ids.
            **kwargs: override the constructor arguments (e.g. do_lower_case=False).

        Raises:
            TypeError: name_or_path is not a string or path.
            FileNotFoundError: a directory without vocab.txt.
            minibert.hub.HubError: a Hub id that cannot be found or fetched.
        """
        hub_options = {"cache_dir": cache_dir, "revision": revision, "local_files_only": local_files_only}
        vocab_file, options = load_pretrained_files(name_or_path, **hub_options, force_download=force_download)
        return cls(vocab_file, **{**options, **kwargs})

    def save_pretrained(self, save_directory: str | os.PathLike) -> tuple[Path, Path]:
        """Write vocab.txt and tokenizer_config.json; transformers' AutoTokenizer can load the directory.

        Returns:
            the paths of the two files written.
        """
        return save_pretrained_files(save_directory, self._id_to_token, self._options())

    def _options(self) -> dict:
        """The constructor options that tokenizer_config.json records (and __repr__ shows)."""
        basic = self.basic_tokenizer
        return {
            "do_lower_case": basic.do_lower_case,
            "strip_accents": basic.strip_accents,
            "tokenize_chinese_chars": basic.tokenize_chinese_chars,
            "model_max_length": self.model_max_length,
        }

    # ---- vocabulary ------------------------------------------------------------------------

    @property
    def vocab(self) -> dict[str, int]:
        """A copy of the token -> id mapping."""
        return dict(self._vocab)

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def do_lower_case(self) -> bool:
        return self.basic_tokenizer.do_lower_case

    @property
    def all_special_ids(self) -> list[int]:
        """The ids of [PAD], [UNK], [CLS], [SEP], [MASK]."""
        return [self._vocab[t] for t in SPECIAL_TOKENS]

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v}" for k, v in self._options().items())
        return f"BertTokenizer(vocab_file={str(self.vocab_file)!r}, vocab_size={self.vocab_size}, {options})"

    def convert_tokens_to_ids(self, tokens: str | list[str]) -> int | list[int]:
        """Token(s) -> id(s); a token not in the vocabulary gives the id of [UNK]."""
        unk = self.unk_token_id
        if isinstance(tokens, str):
            return self._vocab.get(tokens, unk)
        if not isinstance(tokens, (list, tuple)):
            raise TypeError(f"expected a token (str) or a list of tokens, got {type(tokens).__name__}")
        return [self._vocab.get(check_str(t, "token"), unk) for t in tokens]

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False) -> str | list[str]:
        """Id(s) -> token(s). Accepts an int, a list of ints, or a 1-D tensor.

        Raises:
            ValueError: an id outside the vocabulary.
        """
        if is_int(ids):
            return self._id_to_token[self._check_id(ids)]
        skip = set(self.all_special_ids) if skip_special_tokens else ()
        return [self._id_to_token[i] for i in map(self._check_id, as_id_list(ids)) if i not in skip]

    def _check_id(self, i) -> int:
        i = operator.index(i)
        if not 0 <= i < len(self._id_to_token):
            raise ValueError(f"token id {i} is outside the vocabulary (ids 0..{len(self._id_to_token) - 1})")
        return i

    # ---- text -> ids ---------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[str]:
        """Text -> word pieces: "Hello, unaffable world" -> ['hello', ',', 'una', '##ffa', '##ble', 'world']."""
        return [self._id_to_token[i] for i in self._text_to_ids(text)]

    def _text_to_ids(self, text: str) -> list[int]:
        """The ids of a text, without [CLS]/[SEP]. This is the hot loop, hence the local names."""
        check_str(text, "text")
        # Special tokens written in the text are cut out first, exactly as typed ("[mask]" is not one).
        parts = self._special_split(text) if "[" in text else (text,)
        cache, normalize = self._cache, self.basic_tokenizer.normalize
        ids: list[int] = []
        for n, part in enumerate(parts):
            if n % 2:  # re.split puts the matched special tokens at odd positions
                ids.append(self._vocab[part])
                continue
            for word in normalize(part).split():
                word_ids = cache.get(word)
                if word_ids is None:
                    word_ids = self._word_to_ids(word)
                ids += word_ids
        return ids

    def _word_to_ids(self, word: str) -> tuple[int, ...]:
        """The plain algorithm for one whitespace-free word: basic split, then WordPiece, then ids."""
        vocab = self._vocab
        wordpiece = self.wordpiece_tokenizer.tokenize_word
        pieces = [piece for sub in self.basic_tokenizer.split_word(word) for piece in wordpiece(sub)]
        ids = tuple(vocab[piece] for piece in pieces)  # a tuple: cached values must not be modified
        # Once full, the cache stops growing rather than evicting: the words seen first in a corpus
        # are mostly its frequent ones, and no eviction bookkeeping slows the hot loop.
        if len(self._cache) < self._cache_size:
            self._cache[word] = ids
        return ids

    def encode(self, text: str, text_pair: str | None = None, add_special_tokens: bool = True,
               max_length: int | None = None, truncation: bool | str | None = None) -> list[int]:  # fmt: skip
        """The input_ids of one text or pair (no padding). Arguments as in `__call__`."""
        encoding = self(text, text_pair, add_special_tokens=add_special_tokens, max_length=max_length, truncation=truncation)
        return encoding["input_ids"]

    def encode_head_tail(self, text: str, max_length: int = 512, head: int = 128) -> list[int]:
        """`[CLS] first head ids ... last (max_length - 2 - head) ids [SEP]` for a long text; see
        `inputs.head_tail_inputs`. A text that fits is returned whole."""
        check_head_tail(max_length, head)
        return head_tail_inputs(self._text_to_ids(text), self.cls_token_id, self.sep_token_id, max_length, head)

    def __call__(self, text, text_pair=None, *, add_special_tokens: bool = True, padding: bool | str = False,
                 truncation: bool | str | None = None, max_length: int | None = None,
                 return_tensors: str | None = None) -> BatchEncoding:  # fmt: skip
        """Build model inputs from a text, a pair, a list of texts, or a list of pairs.

        Args:
            text: a string, or a list whose items are strings or (text, text_pair) tuples.
            text_pair: the second text (or a list of them, as long as `text`).
            add_special_tokens: wrap as "[CLS] A [SEP]" / "[CLS] A [SEP] B [SEP]".
            padding: False; True or "longest" (to the longest in the batch); "max_length".
            truncation: False; True or "longest_first" (cut the longer text of a pair first);
                "only_first"; "only_second". None (the default) truncates only when max_length is
                given (and padding is off), as transformers does. See `inputs.truncate`.
            max_length: the length to truncate and/or pad to; model_max_length when truncation or
                padding="max_length" is asked for without it.
            return_tensors: None for lists, "pt" for torch.long tensors of shape (batch, length)
                (batch = 1 for a single text).

        Returns:
            BatchEncoding with input_ids, token_type_ids (0 for the first text, 1 for the second)
            and attention_mask (1 for tokens, 0 for padding).
        """
        pad_to, strategy, max_length = check_options(padding, truncation, max_length, return_tensors, self.model_max_length)
        cls, sep = self.cls_token_id, self.sep_token_id
        rows = [
            build_inputs(self._text_to_ids(a), None if b is None else self._text_to_ids(b), cls, sep,
                         add_special_tokens=add_special_tokens, strategy=strategy, max_length=max_length)
            for a, b in as_pairs(text, text_pair)
        ]
        batched = isinstance(text, (list, tuple))
        return batch_inputs(rows, pad_to, max_length, self.pad_token_id, return_tensors, batched)

    def pad(self, encoded, padding: bool | str = True, max_length: int | None = None,
            return_tensors: str | None = None) -> BatchEncoding:  # fmt: skip
        """Pad already-encoded examples (a batch dict of lists, one example's dict, or a list of dicts,
        e.g. with labels) with [PAD]; see `inputs.pad`."""
        return pad(encoded, padding, max_length, return_tensors, self.pad_token_id, self.model_max_length)

    # ---- ids -> text ---------------------------------------------------------------------------

    def decode(self, ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool = True) -> str:
        """Ids -> text: pieces joined by spaces, "##" continuations glued to the piece before.

        Lower-casing, stripped accents and [UNK] cannot be undone: decode(encode(t)) is not t.

        Args:
            ids: a list of ints or a 1-D tensor.
            skip_special_tokens: leave out [CLS], [SEP], [PAD], [MASK], [UNK].
            clean_up_tokenization_spaces: remove the space before . , ! ? and in "n't", "'s", ...
                (as transformers does by default for BERT).
        """
        tokens = self.convert_ids_to_tokens(as_id_list(ids), skip_special_tokens=skip_special_tokens)
        text = " ".join(tokens).replace(" ##", "").strip()
        if clean_up_tokenization_spaces:
            for before, after in _CLEANUP:
                text = text.replace(before, after)
        return text

    def batch_decode(self, sequences, **kwargs) -> list[str]:
        return [self.decode(ids, **kwargs) for ids in sequences]


_CLEANUP = [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
            (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")]  # fmt: skip
