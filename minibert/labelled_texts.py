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

A table is read strictly, because a misread table trains without a word on wrong data: every row has exactly
the header's fields, no column name appears twice, a TSV row is one line, and labels that differ only in
spaces or in how a number is written ("pos" and "pos ", 1 and 1.0) are refused, not made two classes. Lines
end at "\\n" (or "\\r\\n") only: a form feed, U+0085 or U+2028 inside a text is part of the text.

>>> rows = [Row("r1", "fine", None, "pos"), Row("r2", "dull", None, "neg"), Row("r3", "ok", None, "neutral")]
>>> label_names(rows)
('neg', 'neutral', 'pos')
"""

from __future__ import annotations

import csv
import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .data import Review, split_lines

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
    if path.is_symlink() and not path.exists():
        raise DataError(f"{flag} {path}: a symbolic link that leads nowhere (a loop, or its target is gone); give the real path")
    if not path.is_file():
        raise DataError(f"{flag} {path}: no such file or folder")
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise DataError(f"{flag} {path}: expected a folder of class subfolders or a {', '.join(TABLE_SUFFIXES)} file")
    rows = read_table(path, text_column, pair_column, label_column, flag)
    return rows, sorted({r.label for r in rows})


def read_folder(path: Path, flag: str) -> tuple[list[Row], list[str]]:
    """PATH/<class>/*.txt (or .TXT: any case), one text per file, files in name order."""
    classes = sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"{flag} {path}: the folder holds no class subfolders; put each class's .txt files in "
                        f"a subfolder named after it ({path}/pos/*.txt, {path}/neg/*.txt, ...)")
    rows = []
    for folder in classes:
        files = sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))
        texts = [f for f in files if f.suffix.lower() == ".txt"]
        if files and not texts:
            raise DataError(f"{flag} {folder}: the class folder holds no .txt files (found {files[0].name}, ...); "
                            f"give each text file the suffix .txt")
        for file in texts:
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
    """Rows of a CSV/TSV (header line first) or JSONL (one object per line) file, read strictly."""
    content = decode(path.read_bytes(), f"{flag} {path}")
    where = f"{flag} {path}"
    if path.suffix.lower() == ".jsonl":
        records = []
        for n, line in enumerate(split_lines(content), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line, object_pairs_hook=lambda pairs: pairs)
            except json.JSONDecodeError as e:
                raise DataError(f"{where} line {n}: not valid JSON ({e.msg}); write one JSON object per line") from None
            if not isinstance(obj, list):  # the hook turned every object into its list of (key, value)
                raise DataError(f"{where} line {n}: expected a JSON object like {{\"{text_column}\": ..., \"{label_column}\": ...}}")
            keys = [k for k, _ in obj]
            check_names(keys, f"{where} line {n}", "key")
            if records and set(keys) != set(records[0][1]):  # in any order
                raise DataError(f"{where} line {n}: keys {', '.join(map(repr, keys))} differ from the first row's "
                                f"({', '.join(map(repr, records[0][1]))}); give every row the same keys")
            records.append((f"{path.name} line {n}", dict(obj)))
        columns = list(records[0][1]) if records else []
    else:
        records, columns = read_delimited(content, path, where)
    if not records:
        raise DataError(f"{where}: the file holds no rows")
    if pair_column is None:
        pair_column = "text_pair" if "text_pair" in columns else None
    for name, option in ((text_column, "--text-column"), (label_column, "--label-column"), (pair_column, "--pair-column")):
        if name is not None and name not in columns:
            raise DataError(f"{where}: no column {name!r} (columns found: {', '.join(map(repr, columns))}); "
                            f"name the right one with {option}")
    rows = []
    for row_at, rec in records:
        text = cell(rec, text_column, row_at, flag, path)
        pair = cell(rec, pair_column, row_at, flag, path) if pair_column else None
        rows.append(Row(row_at, text, pair, cell(rec, label_column, row_at, flag, path)))
    return rows


def read_delimited(content: str, path: Path, where: str) -> tuple[list[tuple[str, dict]], list[str]]:
    """(rows as (where, {column: value}), the header's columns) of a CSV or TSV file.

    CSV follows RFC 4180 (a quoted field may hold commas, quotes and line breaks). In a TSV every row is one
    line: a quote that opens a field and does not close on its line would otherwise swallow the rows after it.
    """
    tsv = path.suffix.lower() == ".tsv"
    delimiter = "\t" if tsv else ","
    csv.field_size_limit(2**31 - 1)  # whole reviews in one cell are longer than csv's default limit
    lines = [line + "\n" for line in split_lines(content)]
    check_separator(lines[0] if lines else "", tsv, where)
    if tsv:  # each line parsed on its own: a quoted field cannot reach into the next line
        parsed, line_numbers = [], []
        for n, line in enumerate(lines, 1):
            try:
                parsed += list(csv.reader([line], delimiter=delimiter, strict=True))
            except csv.Error:
                raise DataError(f"{where} line {n}: a quote opens a field that does not close on its line; in a TSV "
                                f"every row is one line: remove the quote, or close it and double the quotes inside") from None
            line_numbers.append(n)
    else:
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        parsed, line_numbers, start = [], [], 1
        try:
            for fields in reader:
                parsed.append(fields)
                line_numbers.append(start)
                start = reader.line_num + 1
        except csv.Error as e:
            raise DataError(f"{where} line {start}: not valid CSV ({e}); a text that holds a comma, a quote or a line "
                            f"break must be quoted, with its quotes doubled (\"she said \"\"hi\"\"\")") from None
    rows = [(n, fields) for n, fields in zip(line_numbers, parsed) if fields and fields != [""]]  # blank lines
    if not rows:
        return [], []
    header_line, columns = rows[0]
    check_names(columns, f"{where} line {header_line}", "column name")
    records = []
    for n, fields in rows[1:]:
        if len(fields) != len(columns):
            raise DataError(f"{where} line {n}: {len(fields)} fields where the header has {len(columns)} "
                            f"({', '.join(columns)}); quote a text that holds a {'tab' if tsv else 'comma'}")
        records.append((f"{path.name} line {n}", dict(zip(columns, fields))))
    return records, columns


def check_separator(header_line: str, tsv: bool, where: str) -> None:
    """A header of one column that holds a semicolon (or the other of comma and tab) is another kind of table."""
    try:
        columns = next(csv.reader([header_line], delimiter="\t" if tsv else ","), [])
    except csv.Error:
        return  # the full read reports it with its line
    own = "tabs" if tsv else "commas"
    if len(columns) == 1:
        for sep, name in ((";", "semicolons"), ("," if tsv else "\t", "commas" if tsv else "tabs")):
            if sep in columns[0]:
                raise DataError(f"{where}: the header {columns[0]!r} is separated by {name}, not {own}; save the file "
                                f"separated by {own} (a tab-separated table as .tsv, a comma-separated one as .csv)")


def check_names(names: list[str], where: str, what: str) -> None:
    """A column (or JSON key) named twice would silently read one of the two."""
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice is not None:
        raise DataError(f"{where}: the {what} {twice!r} appears twice; rename one of them")


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


def check_labels(rows: list[Row], flag: str) -> None:
    """Refuse labels that are one class written two ways: "pos" and "pos " (spaces), 1 and 1.0 (a number)."""
    first = {}
    for r in rows:
        key = r.label.strip()
        try:
            key = float(key)
        except ValueError:
            pass
        seen = first.setdefault(key, r)
        if seen.label != r.label:
            raise DataError(f"{flag}: the labels {seen.label!r} ({seen.source}) and {r.label!r} ({r.source}) differ only "
                            f"in {'how the number is written' if isinstance(key, float) else 'spaces'}; write one class one way")


def count_classes(rows, names) -> str:
    """"neg 10, pos 12": the examples of each class (label index or name)."""
    counts = Counter(names[r.label] if isinstance(r.label, int) else r.label for r in rows)
    return ", ".join(f"{n} {counts[n]}" for n in names)


def label_names(rows) -> tuple[str, ...]:
    """The class names, sorted: numerically when all are integers ("2" < "10"), else alphabetically."""
    names = {r.label for r in rows}
    numeric = all(re.fullmatch(r"-?\d+", n) for n in names)
    return tuple(sorted(names, key=int if numeric else str))


def stratified_split(rows: list, fraction: float, seed: int, total: int | None = None, flag: str = "--test-fraction",
                     names: tuple[str, ...] | None = None) -> tuple[list, list]:
    """(kept, held out): about `fraction` of each class held out, chosen by a seeded shuffle, at least one
    example of each class kept. Both keep the input order. Works on Rows and Reviews (anything with .label).

    total: hold out exactly this many instead, shared among the classes in proportion to their sizes (the
    largest remainders round up); a class that would keep no example is refused, naming `flag` (and the class
    by its name in `names` when the labels are indices).
    """
    rng = random.Random(seed)
    classes = sorted({r.label for r in rows}, key=str)  # sorted: the split must not depend on PYTHONHASHSEED
    members = {c: [i for i, r in enumerate(rows) if r.label == c] for c in classes}
    if total is None:
        quota = {c: min(round(len(members[c]) * fraction), len(members[c]) - 1) for c in classes}
    else:
        share = {c: total * len(members[c]) / len(rows) for c in classes}
        quota = {c: int(share[c]) for c in classes}
        for c in sorted(classes, key=lambda c: int(share[c]) - share[c])[: total - sum(quota.values())]:
            quota[c] += 1
        full = next((c for c in classes if quota[c] >= len(members[c])), None)
        if full is not None:
            raise DataError(f"{flag} {total} would hold out all {len(members[full])} training examples of class "
                            f"{names[full] if names else full!r}; make it smaller (there are {len(rows)} training examples)")
    held = set()
    for c in classes:
        rng.shuffle(members[c])
        held.update(members[c][: quota[c]])
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
    check_labels(train, f"--data {data}")
    if test_data is not None:
        test, _ = read(test_data, **columns, flag="--test-data")
        check_labels(train + test, "--data and --test-data")
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
