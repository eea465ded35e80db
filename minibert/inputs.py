"""From word-piece ids to model inputs: pairs, truncation, padding, BatchEncoding, tensors.

The tokenizer (minibert/tokenizer.py) turns a text into ids. A model wants more than that:

    one text:  [CLS] A [SEP]          token_type_ids 0 ... 0          attention_mask 1 ... 1
    a pair:    [CLS] A [SEP] B [SEP]  token_type_ids 0 ... 0 1 ... 1  attention_mask 1 ... 1

cut to at most `max_length` ids (truncation), and in a batch every row as long as the longest
(padding with [PAD] on the right, attention_mask 0 there), as lists or as (B, T) tensors.
Nothing here knows about text or the vocabulary: `BertTokenizer` passes in the ids of the texts
and of [CLS], [SEP] and [PAD]. The rules and the messages are those of transformers' tokenizers.
"""

from __future__ import annotations

import operator

__all__ = ["MODEL_INPUTS", "BatchEncoding", "batch_inputs", "build_inputs", "head_tail", "head_tail_inputs", "pad", "truncate"]

MODEL_INPUTS = ("input_ids", "token_type_ids", "attention_mask")

TRUNCATION = {True: "longest_first", "longest_first": "longest_first", "only_first": "only_first", "only_second": "only_second"}
PADDING = {False: None, "do_not_pad": None, True: "longest", "longest": "longest", "max_length": "max_length"}


class BatchEncoding(dict):
    """The model inputs: a dict with input_ids, token_type_ids and attention_mask (lists or tensors).

    Keys can also be read as attributes (`enc.input_ids`), and `enc.to(device)` moves tensors.
    """

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to(self, device) -> BatchEncoding:
        return BatchEncoding({k: v.to(device) for k, v in self.items()})


# --------------------------------------------------------------------------------------------
# Options: checked once, before any text is tokenized
# --------------------------------------------------------------------------------------------


def check_padding(padding, return_tensors) -> str | None:
    """The padding rule ("longest", "max_length" or None) after checking `padding` and `return_tensors`."""
    if padding not in PADDING:
        raise ValueError(f"padding must be False, True, 'longest', 'max_length' or 'do_not_pad', got {padding!r}")
    if return_tensors not in (None, "pt"):
        raise ValueError(f"return_tensors must be None (lists) or 'pt' (torch tensors), got {return_tensors!r}")
    return PADDING[padding]


def check_options(padding, truncation, max_length, return_tensors, model_max_length):
    """Check the options of `BertTokenizer.__call__`; returns (padding rule, truncation strategy, max_length).

    truncation=None (the default) follows transformers' rule: max_length alone (without padding)
    means "truncate". max_length=None means model_max_length when something needs a length.

    >>> check_options(True, None, None, "pt", 512)
    ('longest', None, None)
    >>> check_options(False, None, 128, None, 512)
    (None, 'longest_first', 128)
    >>> check_options("max_length", "only_second", None, None, 512)
    ('max_length', 'only_second', 512)
    """
    pad_to = check_padding(padding, return_tensors)
    if truncation is None:
        truncation = max_length is not None and padding is False
    if truncation not in TRUNCATION and truncation is not False and truncation != "do_not_truncate":
        raise ValueError(
            f"truncation must be False, True, 'longest_first', 'only_first' or 'only_second', got {truncation!r}"
        )
    strategy = TRUNCATION.get(truncation)
    if max_length is None and (strategy or pad_to == "max_length"):
        max_length = model_max_length
    if max_length is not None:
        check_count("max_length", max_length, minimum=0)
    return pad_to, strategy, max_length


# --------------------------------------------------------------------------------------------
# One example: truncate, then add [CLS] and [SEP]
# --------------------------------------------------------------------------------------------


def build_inputs(a: list[int], b: list[int] | None, cls: int, sep: int, *, add_special_tokens=True, strategy=None, max_length=None):
    """ids and token types of one example: truncate the text ids, then add [CLS]/[SEP].

    >>> build_inputs([7, 8], None, cls=101, sep=102)
    ([101, 7, 8, 102], [0, 0, 0, 0])
    >>> build_inputs([7, 8], [9], cls=101, sep=102)
    ([101, 7, 8, 102, 9, 102], [0, 0, 0, 0, 1, 1])
    >>> build_inputs([7, 8, 9], [5, 6], cls=101, sep=102, strategy="longest_first", max_length=6)
    ([101, 7, 8, 102, 5, 102], [0, 0, 0, 0, 1, 1])
    """
    n_special = (2 if b is None else 3) if add_special_tokens else 0
    if strategy is not None:
        if max_length < n_special:
            raise ValueError(
                f"max_length={max_length} is too small to hold the {n_special} special tokens of "
                f"{'[CLS] A [SEP] B [SEP]' if b is not None else '[CLS] A [SEP]'}; use max_length >= {n_special}"
            )
        a, b = truncate(a, b, max_length - n_special, strategy)
    if not add_special_tokens:
        ids = a + (b or [])
        return ids, [0] * len(ids)
    if b is None:
        return [cls, *a, sep], [0] * (len(a) + 2)
    return [cls, *a, sep, *b, sep], [0] * (len(a) + 2) + [1] * (len(b) + 1)


def truncate(a: list[int], b: list[int] | None, budget: int, strategy: str):
    """Shorten the texts so that len(a) + len(b) <= budget (the room left beside the special tokens).

    Ids are always removed from the end of a text.

    only_first: cut the first text only.
        >>> truncate([1, 2, 3, 4], [5, 6], 4, "only_first")
        ([1, 2], [5, 6])

    only_second: cut the second text only (a question kept whole, the context cut).
        >>> truncate([1, 2, 3, 4], [5, 6], 5, "only_second")
        ([1, 2, 3, 4], [5])

    longest_first: cut the longer text until both are equally long, then both in turn, the
    second text losing the odd one (the rule of transformers' Python tokenizer). A single text
    is simply cut.
        >>> truncate([1, 2, 3, 4, 5], [6, 7], 5, "longest_first")  # 5 + 2 -> 3 + 2
        ([1, 2, 3], [6, 7])
        >>> truncate([1, 2, 3, 4], [5, 6, 7, 8], 5, "longest_first")  # 4 + 4 -> 3 + 2
        ([1, 2, 3], [5, 6])
        >>> truncate([1, 2, 3], None, 2, "longest_first")
        ([1, 2], None)
    """
    excess = len(a) + len(b or ()) - budget
    if excess <= 0:
        return a, b
    if strategy == "only_second":
        if b is None:
            raise ValueError("truncation='only_second' needs a text pair; use truncation=True for a single text")
        if excess > len(b):
            raise ValueError(
                f"truncation='only_second' cannot make the pair fit: {excess} tokens must go but the second text has "
                f"{len(b)}; use truncation='longest_first' or a larger max_length"
            )
        return a, b[: len(b) - excess]
    if strategy == "only_first" or b is None:
        if excess > len(a):
            raise ValueError(
                f"truncation='only_first' cannot make the pair fit: {excess} tokens must go but the first text has "
                f"{len(a)}; use truncation='longest_first' or a larger max_length"
            )
        return a[: len(a) - excess], b
    # longest_first on a pair: first even out the lengths, then share what is left to remove.
    uneven = min(abs(len(a) - len(b)), excess)
    rest = excess - uneven
    if len(a) > len(b):
        cut_a, cut_b = uneven + rest // 2, rest - rest // 2
    else:
        cut_a, cut_b = rest // 2, uneven + rest - rest // 2
    return a[: len(a) - cut_a], b[: len(b) - cut_b]


def head_tail(ids, head: int, tail: int) -> list[int]:
    """Keep the first `head` and the last `tail` ids of a sequence longer than head + tail.

    Keeping the beginning and the end of a long review works better than either alone
    (Sun et al. 2019, "How to Fine-Tune BERT for Text Classification?": head 128 + tail 382).

    >>> head_tail([1, 2, 3, 4, 5, 6], 2, 1)
    [1, 2, 6]
    >>> head_tail([1, 2, 3], 2, 1)
    [1, 2, 3]
    """
    check_count("head", head, minimum=0)
    check_count("tail", tail, minimum=0)
    ids = list(ids)
    if len(ids) <= head + tail:
        return ids
    return ids[:head] + ids[len(ids) - tail :]


def check_head_tail(max_length: int, head: int) -> None:
    """max_length holds [CLS], the `head` ids and [SEP]."""
    check_count("max_length", max_length, minimum=2)
    check_count("head", head, minimum=0)
    if head > max_length - 2:
        raise ValueError(
            f"head={head} does not fit in max_length={max_length} with [CLS] and [SEP] (at most {max_length - 2})"
        )


def head_tail_inputs(ids, cls: int, sep: int, max_length: int, head: int) -> list[int]:
    """`[CLS] first head ids ... last (max_length - 2 - head) ids [SEP]`: a long text cut to max_length.

    >>> head_tail_inputs([1, 2, 3, 4, 5, 6, 7], cls=101, sep=102, max_length=6, head=1)
    [101, 1, 5, 6, 7, 102]
    """
    check_head_tail(max_length, head)
    return [cls, *head_tail(ids, head, max_length - 2 - head), sep]


# --------------------------------------------------------------------------------------------
# A batch: rows -> BatchEncoding, padded, as lists or tensors
# --------------------------------------------------------------------------------------------


def batch_inputs(rows, pad_to, max_length, pad_id, return_tensors, batched) -> BatchEncoding:
    """(ids, token types) rows -> BatchEncoding, padded; a single example (batched=False) without the batch level."""
    encoding = BatchEncoding(
        input_ids=[ids for ids, _ in rows],
        token_type_ids=[types for _, types in rows],
        attention_mask=[[1] * len(ids) for ids, _ in rows],
    )
    return _finish(encoding, pad_to, max_length, pad_id, return_tensors, single=not batched)


def pad(encoded, padding, max_length, return_tensors, pad_id, model_max_length) -> BatchEncoding:
    """Pad already-encoded examples with `pad_id`.

    Args:
        encoded: a batch dict of lists {"input_ids": [[...], ...], ...}, one example's dict
            {"input_ids": [...], ...}, or a list of dicts [{"input_ids": [...], "label": 1}, ...].
            token_type_ids and attention_mask are padded when present; attention_mask is created if
            missing; other keys (labels, ...) are passed through.
        padding: True/"longest" or "max_length" (to max_length, default model_max_length).
        return_tensors: None or "pt".

    >>> pad([{"input_ids": [101, 102]}, {"input_ids": [101, 7, 102]}], True, None, None, 0, 512)["input_ids"]
    [[101, 102, 0], [101, 7, 102]]
    """
    pad_to = check_padding(padding, return_tensors)
    if isinstance(encoded, (list, tuple)) and all(isinstance(e, dict) for e in encoded) and encoded:
        encoded = {k: [e[k] for e in encoded] for k in encoded[0]}
    if not isinstance(encoded, dict) or "input_ids" not in encoded:
        raise TypeError("pad expects a dict of lists or a non-empty list of dicts, with an 'input_ids' key")
    single = len(encoded["input_ids"]) > 0 and is_int(encoded["input_ids"][0])
    batch = {k: [v] if single else list(v) for k, v in encoded.items()}
    rows = {k: [list(row) for row in batch[k]] for k in MODEL_INPUTS if k in batch}
    rows.setdefault("attention_mask", [[1] * len(ids) for ids in rows["input_ids"]])
    if max_length is None and pad_to == "max_length":
        max_length = model_max_length
    return _finish(BatchEncoding({**batch, **rows}), pad_to, max_length, pad_id, return_tensors, single)


def _finish(batch: BatchEncoding, pad_to, max_length, pad_id, return_tensors, single) -> BatchEncoding:
    """Right-pad every row of the model inputs to the longest row or to max_length (longer rows stay
    as they are), then make tensors, or drop the batch level of a single example."""
    if pad_to is not None:
        target = max(map(len, batch["input_ids"]), default=0) if pad_to == "longest" else max_length
        fill = {"input_ids": pad_id, "token_type_ids": 0, "attention_mask": 0}
        for key in MODEL_INPUTS:
            if key in batch:
                batch[key] = [row + [fill[key]] * (target - len(row)) for row in batch[key]]
    if return_tensors == "pt":
        return to_tensors(batch)
    return BatchEncoding({k: v[0] for k, v in batch.items()}) if single else batch


def to_tensors(encoding: BatchEncoding) -> BatchEncoding:
    """Lists of equally long rows -> torch.long tensors of shape (B, T)."""
    import torch

    lengths = {len(row) for row in encoding["input_ids"]}
    if len(lengths) > 1:
        raise ValueError(
            f"cannot make a tensor from sequences of different lengths ({min(lengths)} to {max(lengths)} tokens); "
            f"pass padding=True (or 'max_length') together with return_tensors='pt'"
        )
    if not lengths:  # an empty batch
        return BatchEncoding({k: torch.zeros((0, 0), dtype=torch.long) for k in encoding})
    return BatchEncoding({k: torch.tensor(v, dtype=torch.long) for k, v in encoding.items()})


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------


def as_pairs(text, text_pair) -> list[tuple[str, str | None]]:
    """The texts of a call as a list of (first, second-or-None), each checked to be a string."""
    if not isinstance(text, (list, tuple)):
        return [(check_str(text, "text"), None if text_pair is None else check_str(text_pair, "text_pair"))]
    if text_pair is not None:
        if not isinstance(text_pair, (list, tuple)) or len(text_pair) != len(text):
            raise ValueError("when text is a list, text_pair must be a list of the same length")
        pairs = zip(text, text_pair)
        return [(check_str(a, f"text[{i}]"), check_str(b, f"text_pair[{i}]")) for i, (a, b) in enumerate(pairs)]
    pairs = []
    for i, item in enumerate(text):
        if isinstance(item, (list, tuple)):
            if len(item) != 2:
                raise ValueError(f"text[{i}] should be a string or a (text, text_pair) pair, got {len(item)} items")
            pairs.append((check_str(item[0], f"text[{i}][0]"), check_str(item[1], f"text[{i}][1]")))
        else:
            pairs.append((check_str(item, f"text[{i}]"), None))
    return pairs


def check_str(value, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(
            f"{what} must be a str, got {'None' if value is None else type(value).__name__}"
            f"{'' if value is None else ': ' + repr(value)[:40]}; "
            f"pass text as a string (or a list of strings for a batch)"
        )
    return value


def check_count(name: str, value, minimum: int) -> None:
    """An int (a Python or numpy int, a 0-d tensor; not a bool) that is at least `minimum`."""
    if isinstance(value, bool) or not is_int(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def is_int(value) -> bool:
    try:
        operator.index(value)
    except TypeError:
        return False
    return not (hasattr(value, "ndim") and value.ndim > 0)  # a 0-d tensor counts, a 1-d one does not


def as_id_list(ids) -> list:
    """A list of ids from a list, a tuple, a 1-D tensor or array."""
    if hasattr(ids, "tolist"):  # torch tensor or numpy array
        ids = ids.tolist()
    if is_int(ids) or isinstance(ids, (str, bytes)) or ids is None:
        raise TypeError(f"expected a sequence of token ids, got {type(ids).__name__}")
    return list(ids)
