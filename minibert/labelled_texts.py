"""Users' own labelled texts for fine-tuning: read a folder or a table, check every row, split off a test set.

Two layouts are read:
  a folder    one subfolder per class holding .txt files, one text per file (the layout of the original
              polarity dataset, txt_sentoken/pos/*.txt and txt_sentoken/neg/*.txt); the class names are
              the subfolder names
  a table     .csv, .tsv or .jsonl with a text column, a label column and, for sentence pairs, a second
              text column (default names: text, label, text_pair)

Labels are kept as names end to end: they are sorted (numerically when every name is a number) and label i
is the i-th name, so "neg", "pos" -> 0, 1 as in movie_reviews. Anything that cannot be used is a DataError,
one line that names the file, the row and what to do.

>>> rows = [Row("r1", "fine", None, "pos"), Row("r2", "dull", None, "neg"), Row("r3", "ok", None, "neutral")]
>>> label_names(rows)
('neg', 'neutral', 'pos')
"""

from __future__ import annotations

import csv
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from .data import Review

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl")


class DataError(ValueError):
    """Users' data that cannot be used as given (the message names the file, the row and the fix)."""


@dataclass
class Row:
    source: str  # where it came from, for messages and predictions: "pos/cv000_29590.txt", "data.csv line 7"
    text: str
    pair: str | None  # the second text of a sentence pair
    label: str  # the class name as written in the data


def read(path: str | Path, *, text_column: str = "text", pair_column: str | None = None, label_column: str = "label",
         flag: str = "--data") -> tuple[list[Row], list[str]]:
    """The rows of a folder or table, and the class names it declares (a folder's subfolders, even empty ones).

    pair_column None means "text_pair when the table has that column"; a name given explicitly must exist.
    """
    path = Path(path)
    if path.is_dir():
        return read_folder(path, flag)
    if not path.is_file():
        raise DataError(f"{flag} {path}: no such file or folder")
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise DataError(f"{flag} {path}: expected a folder of class subfolders or a {', '.join(TABLE_SUFFIXES)} file")
    rows = read_table(path, text_column, pair_column, label_column, flag)
    return rows, sorted({r.label for r in rows})


def read_folder(path: Path, flag: str) -> tuple[list[Row], list[str]]:
    """PATH/<class>/*.txt, one text per file, files in name order."""
    classes = sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"{flag} {path}: the folder holds no class subfolders; put each class's .txt files in "
                        f"a subfolder named after it ({path}/pos/*.txt, {path}/neg/*.txt, ...)")
    rows = []
    for folder in classes:
        for file in sorted(folder.glob("*.txt")):
            text = decode(file.read_bytes(), f"{flag} {file}")
            if not text.strip():
                raise DataError(f"{flag} {file}: the file is empty; remove it or write its text")
            rows.append(Row(f"{folder.name}/{file.name}", text, None, folder.name))
    return rows, [d.name for d in classes]


def decode(raw: bytes, where: str) -> str:
    """UTF-8 text (a byte-order mark is dropped); anything else is named, with the line of the first bad byte."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{where}: not UTF-8 text (byte {raw[e.start]:#04x} on line {line}); save it as UTF-8") from None
    if "\x00" in text:
        raise DataError(f"{where}: holds NUL bytes, so it is a binary file, not text")
    return text


def read_table(path: Path, text_column: str, pair_column: str | None, label_column: str, flag: str) -> list[Row]:
    """Rows of a CSV/TSV (header line first) or JSONL (one object per line) file."""
    content = decode(path.read_bytes(), f"{flag} {path}")
    if path.suffix.lower() == ".jsonl":
        records = []
        for n, line in enumerate(content.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{flag} {path} line {n}: not valid JSON ({e.msg}); write one JSON object per line") from None
            if not isinstance(obj, dict):
                raise DataError(f"{flag} {path} line {n}: expected a JSON object like {{\"{text_column}\": ..., \"{label_column}\": ...}}")
            records.append((f"{path.name} line {n}", obj))
        columns = list(records[0][1]) if records else []
    else:
        csv.field_size_limit(2**31 - 1)  # whole reviews in one cell are longer than csv's default limit
        reader = csv.DictReader(content.splitlines(keepends=True), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        columns = list(reader.fieldnames or [])
        records = [(f"{path.name} line {reader.line_num}", rec) for rec in reader]
    if not records:
        raise DataError(f"{flag} {path}: the file holds no rows")
    if pair_column is None:
        pair_column = "text_pair" if "text_pair" in columns else None
    for name, option in ((text_column, "--text-column"), (label_column, "--label-column"), (pair_column, "--pair-column")):
        if name is not None and name not in columns:
            raise DataError(f"{flag} {path}: no column {name!r} (columns found: {', '.join(map(repr, columns))}); "
                            f"name the right one with {option}")
    rows = []
    for where, rec in records:
        text = cell(rec, text_column, where, flag, path)
        pair = cell(rec, pair_column, where, flag, path) if pair_column else None
        rows.append(Row(where, text, pair, cell(rec, label_column, where, flag, path)))
    return rows


def cell(record: dict, column: str, where: str, flag: str, path: Path) -> str:
    """One non-empty cell as a string (JSON numbers and booleans become their text: 1 -> "1")."""
    value = record.get(column)
    if isinstance(value, bool):
        value = str(value).lower()
    elif isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        what = "missing" if value is None else "empty" if isinstance(value, str) else f"a {type(value).__name__}"
        raise DataError(f"{flag} {path}: {where}: the {column!r} value is {what}; every row needs a text and a label")
    return value


def label_names(rows) -> tuple[str, ...]:
    """The class names, sorted: numerically when all are integers ("2" < "10"), else alphabetically."""
    names = {r.label for r in rows}
    numeric = all(re.fullmatch(r"-?\d+", n) for n in names)
    return tuple(sorted(names, key=int if numeric else str))


def stratified_split(rows: list, fraction: float, seed: int) -> tuple[list, list]:
    """(kept, held out): about `fraction` of each class held out, chosen by a seeded shuffle, at least one
    example of each class kept. Both keep the input order. Works on Rows and Reviews (anything with .label)."""
    rng = random.Random(seed)
    held = set()
    for label in sorted({r.label for r in rows}, key=str):
        members = [i for i, r in enumerate(rows) if r.label == label]
        rng.shuffle(members)
        held.update(members[: min(round(len(members) * fraction), len(members) - 1)])
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


def load(data: str | Path, test_data: str | Path | None = None, *, test_fraction: float = 0.2, seed: int = 0,
         text_column: str = "text", pair_column: str | None = None, label_column: str = "label"
         ) -> tuple[list[Review], list[Review], tuple[str, ...]]:
    """Train and test reviews (label = index into the names) and the label names, checked:
    at least two classes, every class with a training example, no test label that training never saw,
    all texts single or all pairs."""
    if not 0 < test_fraction < 1 and test_data is None:
        raise DataError(f"--test-fraction must be between 0 and 1 (exclusive), got {test_fraction}")
    columns = {"text_column": text_column, "pair_column": pair_column, "label_column": label_column}
    train, declared = read(data, **columns)
    if test_data is not None:
        test, _ = read(test_data, **columns, flag="--test-data")
    else:
        train, test = stratified_split(train, test_fraction, seed)
        if not test:
            raise DataError(f"--data {data}: --test-fraction {test_fraction} of {len(train)} examples holds out none; "
                            f"raise it, or give --test-data")
    names = label_names(train)
    empty = [c for c in declared if c not in names]
    if empty:
        raise DataError(f"--data {data}: class {', '.join(map(repr, empty))} has no training example; add "
                        f"examples or remove the class")
    if len(names) < 2:
        raise DataError(f"--data {data}: only one class ({names[0]!r}); a classifier needs examples of at least two")
    unseen = sorted({r.label for r in test} - set(names))
    if unseen:
        first = next(r for r in test if r.label in unseen)
        raise DataError(f"--test-data: label {unseen[0]!r} ({first.source}) never occurs in the training data "
                        f"(its labels: {', '.join(names)}); fix the label or add training examples of it")
    paired = {r.pair is not None for r in train + test}
    if len(paired) > 1:
        raise DataError("--data and --test-data must both be sentence pairs or both single texts")
    index = {n: i for i, n in enumerate(names)}
    as_review = lambda r: Review(r.source, r.text, index[r.label], r.pair)  # noqa: E731
    return [as_review(r) for r in train], [as_review(r) for r in test], names
