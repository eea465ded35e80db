"""Fine-tuning on your own labelled texts (--data): every input layout, three classes, sentence pairs, label
names kept through a transformers round trip of the saved model, and one clear line for every bad input.

The datasets are built from the corpus's own text: movie_reviews holds one sentence per line, so its lines
are real sentences; the classes are the review's polarity ("neg", "pos") and "question" (lines ending in "?").
"""

from __future__ import annotations

import csv
import doctest
import json
from pathlib import Path

import pytest
from conftest import load_script
import torch
from test_finetune import tiny_bert

import minibert
import minibert.finetune
import minibert.predict
import minibert.labelled_texts
from minibert import data as D
from minibert import labelled_texts as L
from minibert.finetune import FinetuneArgs, classification_metrics, prepare_data, run
from minibert.predict import classify

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("neg", "pos", "question")


@pytest.fixture(scope="module")
def sentences(movie_reviews) -> dict[str, list[str]]:
    """Real sentences by class: questions apart, the others by the polarity of their review."""
    out = {c: [] for c in CLASSES}
    for polarity in ("neg", "pos"):
        for f in movie_reviews.fileids(polarity)[:40]:
            for line in movie_reviews.raw(f).splitlines():
                line = line.strip()
                if len(line.split()) >= 5:
                    out["question" if line.endswith("?") else polarity].append(line)
    assert all(len(v) >= 40 for v in out.values())
    return out


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, vocab_path):
    return tiny_bert(tmp_path_factory.mktemp("tiny"), vocab_path)


def rows_of(sentences, n: int, classes=CLASSES) -> list[tuple[str, str]]:
    """(text, label): the first n sentences of each class, grouped by class in class order."""
    return [(text, c) for c in classes for text in sentences[c][:n]]


def write_folder(root: Path, rows) -> Path:
    for i, (text, label) in enumerate(rows):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / f"{i:04d}.txt").write_text(text + "\n")
    return root


def write_table(path: Path, rows, header=("text", "label")) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(dict(zip(header, r))) + "\n" for r in rows))
    else:
        with open(path, "w", newline="") as f:
            w = csv.writer(f, delimiter="\t" if path.suffix == ".tsv" else ",")
            w.writerow(header)
            w.writerows(rows)
    return path


def quick(model_dir, out, data, **kw) -> FinetuneArgs:
    base = dict(model=str(model_dir), output_dir=str(out), data=str(data), truncation="head", max_length=64,
                batch_size=8, epochs=1, lr=1e-3, progress=False, plots=False, device="cpu")
    return FinetuneArgs(**(base | kw))


def test_docstring_examples():
    assert doctest.testmod(minibert.labelled_texts).failed == 0
    assert doctest.testmod(minibert.finetune).failed == 0
    result = doctest.testmod(D)  # split_lines
    assert result.attempted >= 1 and result.failed == 0


# ---- Reading ------------------------------------------------------------------------------------------


def test_every_layout_reads_the_same_examples_and_splits_them_the_same_way(sentences, tmp_path):
    rows = rows_of(sentences, 10)
    paths = [write_folder(tmp_path / "folder", rows)] + [write_table(tmp_path / f"data{s}", rows) for s in (".csv", ".tsv", ".jsonl")]
    loaded = [L.load(p, test_fraction=0.3, seed=1) for p in paths]
    for train, test, names in loaded:
        assert names == CLASSES
        assert [(r.text.strip(), r.label, r.pair) for r in train] == [(r.text.strip(), r.label, r.pair) for r in loaded[0][0]]
        assert [(r.text.strip(), r.label) for r in test] == [(r.text.strip(), r.label) for r in loaded[0][1]]
    train, test, _ = loaded[1]
    assert sorted((r.text, CLASSES[r.label]) for r in train + test) == sorted(rows)  # nothing lost, labels right
    assert [sum(r.label == c for r in test) for c in range(3)] == [3, 3, 3]  # stratified: 30% of 10 per class
    assert test[0].fileid == "data.csv line " + str(2 + rows.index((test[0].text, CLASSES[test[0].label])))
    # seeded: another seed holds out other examples, the same seed the same ones
    assert [r.text for r in L.load(paths[1], test_fraction=0.3, seed=2)[1]] != [r.text for r in test]
    assert [r.text for r in L.load(paths[1], test_fraction=0.3, seed=1)[1]] == [r.text for r in test]


def test_labels_sort_numerically_when_they_are_numbers_and_columns_can_be_renamed(sentences, tmp_path):
    rows = [(t, str(10 if c == "neg" else 2)) for t, c in rows_of(sentences, 4, ("neg", "pos"))]
    path = write_table(tmp_path / "d.csv", [(label, text) for text, label in rows], header=("stars", "review"))
    train, test, names = L.load(path, test_fraction=0.25, text_column="review", label_column="stars")
    assert names == ("2", "10")
    assert all(r.label == (0 if "2" == dict(rows)[r.text] else 1) for r in train + test)


def test_the_movie_reviews_path_is_unchanged(movie_reviews, vocab_path):
    """No --data: the fixed split, two classes (neg, pos), single texts; limits take the same reviews as before."""
    reviews = D.load_movie_reviews(download=False)
    tok = minibert.BertTokenizer(vocab_path)
    args = FinetuneArgs(truncation="head", max_length=32, limit_train=10, limit_test=4)
    data = prepare_data(args, tok, reviews)
    assert data.labels == ("neg", "pos") and not data.pairs
    train, test = D.split(reviews)
    old_subset = [r for r in train if r in [r for r in train if r.label == 0][:5] or r in [r for r in train if r.label == 1][:5]]
    assert [e.input_ids for e in data.train] == [e.input_ids for e in D.encode_reviews(old_subset, tok, "head", max_length=32)]
    assert all(e.token_type_ids is None for e in data.train + data.test)
    assert D.collate(data.train[:4])["token_type_ids"] is None  # the model sees token_type_ids=None, as before
    # binary metrics: F1 of the positive class as before, and the macro F1 beside it
    m = classification_metrics(torch.tensor([1, 1, 0, 0, 1]), torch.tensor([1, 0, 0, 1, 1]))
    assert m["confusion"] == [[1, 1], [1, 2]] and m["f1"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3) / 2)


# ---- Training on three classes, label names end to end ----------------------------------------------


def test_three_classes_from_a_folder_keep_their_names_through_training_saving_and_transformers(sentences, tiny_dir, tmp_path):
    import transformers

    data = write_folder(tmp_path / "txt_sentoken", rows_of(sentences, 12))
    summary = run(quick(tiny_dir, tmp_path / "run", data, plots=True))
    assert summary["status"] == "completed" and summary["labels"] == list(CLASSES)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["selected"]
    assert len(metrics["confusion"]) == 3 and all(len(row) == 3 for row in metrics["confusion"])
    assert sum(map(sum, metrics["confusion"])) == metrics["n"] == 3 * round(12 * 0.2)
    assert [sum(row) for row in metrics["confusion"]] == [c["support"] for c in metrics["per_class"]] == [2, 2, 2]
    assert metrics["macro_f1"] == pytest.approx(sum(c["f1"] for c in metrics["per_class"]) / 3)
    assert metrics["f1"] == metrics["macro_f1"]  # more than two classes: F1 is the macro F1
    assert (tmp_path / "run" / "confusion.png").is_file()
    saved = tmp_path / "run" / "model"
    config = json.loads((saved / "config.json").read_text())
    assert config["id2label"] == {"0": "neg", "1": "pos", "2": "question"}
    assert config["label2id"] == {"neg": 0, "pos": 1, "question": 2}
    settings = json.loads((saved / minibert.predict.SETTINGS_FILE).read_text())
    assert settings == {"truncation": "head", "max_length": 64, "head": 128, "stride": 16, "pairs": False, "labels": list(CLASSES),
                        "steps": 4}  # 30 training examples in batches of 8, one epoch

    texts = [sentences[c][20] for c in CLASSES] + [" ".join(sentences["pos"][:30])]  # the last one is cut to 64 tokens
    model, tok, trained = minibert.predict.load_fine_tuned(saved)
    ours = classify(model, tok, texts, **minibert.predict.inference_settings(trained), device="cpu", precision="fp32")  # as the pipeline
    pipe = transformers.pipeline("text-classification", model=str(saved), device="cpu", top_k=None)
    theirs = pipe(texts, truncation=True, max_length=64)
    for o, t in zip(ours, theirs):
        assert set(o["probabilities"]) == {d["label"] for d in t} == set(CLASSES)
        for d in t:
            assert d["score"] == pytest.approx(o["probabilities"][d["label"]], abs=1e-5)


# ---- Sentence pairs ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair_file(movie_reviews, tmp_path_factory) -> Path:
    """Next-sentence pairs: (a line, the line after it) is "next", (a line, a line of another review) "random"."""
    rows = []
    files = movie_reviews.fileids()[:24]
    for i, f in enumerate(files):
        lines = [x for x in movie_reviews.raw(f).splitlines() if len(x.split()) >= 5]
        other = [x for x in movie_reviews.raw(files[i - 1]).splitlines() if len(x.split()) >= 5]
        rows.append({"text": lines[0], "text_pair": lines[1], "label": "next"})
        rows.append({"text": lines[2], "text_pair": other[3], "label": "random"})
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_pairs_become_segments_a_and_b_and_segment_b_reaches_the_model(pair_file, tiny_dir, vocab_path, tmp_path):
    tok = minibert.BertTokenizer(vocab_path)
    data = prepare_data(quick(tiny_dir, tmp_path, pair_file), tok)
    assert data.pairs and data.labels == ("next", "random")
    first = data.train[0]
    sep = first.input_ids.index(tok.sep_token_id)
    assert first.token_type_ids == [0] * (sep + 1) + [1] * (len(first.input_ids) - sep - 1)
    batch = D.collate(data.train[:8], tok.pad_token_id)
    assert batch["token_type_ids"].shape == batch["input_ids"].shape and (batch["token_type_ids"] == 1).any()

    # training feeds the segments: with no weight decay, the segment-B embedding moves only if B is seen
    before = minibert.BertModel.from_pretrained(tiny_dir).embeddings.seg.weight.detach().clone()
    run(quick(tiny_dir, tmp_path / "pairs", pair_file, weight_decay=0.0))
    run(quick(tiny_dir, tmp_path / "single", write_folder(tmp_path / "f", [(f"a fine film number {i} .", c) for i in range(6) for c in ("a", "b")]), weight_decay=0.0))
    seg = {k: minibert.BertForSequenceClassification.from_pretrained(tmp_path / k / "model").bert.embeddings.seg.weight for k in ("pairs", "single")}
    assert not torch.equal(seg["pairs"][1], before[1]) and not torch.equal(seg["pairs"][0], before[0])
    assert torch.equal(seg["single"][1], before[1]) and not torch.equal(seg["single"][0], before[0])

    # prediction feeds them too: another second text, or the same ids without segments, changes the logits
    model, tok, trained = minibert.predict.load_fine_tuned(tmp_path / "pairs" / "model")
    assert trained["pairs"] is True
    settings = minibert.predict.inference_settings(trained)
    a, b, c = classify(model, tok, ["the film opens in a small town ."] * 3, ["the town has a secret .", "i ate an apple .", "the town has a secret ."], **settings, device="cpu", precision="fp32")
    assert a == c and a["probabilities"] != b["probabilities"]
    enc = tok("the film opens in a small town .", "the town has a secret .", return_tensors="pt")
    with torch.inference_mode():
        with_segments = model(enc["input_ids"], token_type_ids=enc["token_type_ids"]).logits.softmax(-1)[0]
        without = model(enc["input_ids"]).logits.softmax(-1)[0]
    assert with_segments.tolist() == pytest.approx(list(a["probabilities"].values()), abs=1e-5)
    assert not torch.allclose(with_segments, without)


def test_pairs_refuse_window_strategies(pair_file, tiny_dir, tmp_path, capsys):
    finetune = load_script("finetune")
    code = finetune.main(["--model", str(tiny_dir), "--data", str(pair_file), "--output-dir", str(tmp_path), "--device", "cpu",
                          "--max-length", "64"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "sentence pairs" in err and "--truncation head" in err


# ---- Bad input: one line, exit code 2 --------------------------------------------------------------------


def _bad_cases(sentences, tmp: Path) -> list[tuple[str, list[str], str]]:
    """(name, extra arguments, what the one line must say)."""
    rows = rows_of(sentences, 4, ("neg", "pos"))
    cases = []
    write_table(tmp / "renamed.csv", rows, header=("review", "sentiment"))
    cases.append(("missing column", ["--data", str(tmp / "renamed.csv")], "no column 'text' (columns found: 'review', 'sentiment'); name the right one with --text-column"))
    cases.append(("misnamed label column", ["--data", str(tmp / "renamed.csv"), "--text-column", "review", "--label-column", "stars"], "no column 'stars'"))
    write_table(tmp / "single.csv", rows)
    cases.append(("misnamed pair column", ["--data", str(tmp / "single.csv"), "--pair-column", "second"], "no column 'second'"))
    write_table(tmp / "empty_text.csv", rows[:3] + [("  ", "pos")] + rows[3:])
    cases.append(("empty text", ["--data", str(tmp / "empty_text.csv")], "empty_text.csv line 5: the 'text' value is empty"))
    write_table(tmp / "empty_label.jsonl", rows[:6] + [(rows[6][0], "")])
    cases.append(("empty label", ["--data", str(tmp / "empty_label.jsonl")], "empty_label.jsonl line 7: the 'label' value is empty"))
    (tmp / "null.jsonl").write_text(json.dumps({"text": "a fine film", "label": None}) + "\n")
    cases.append(("null label", ["--data", str(tmp / "null.jsonl")], "line 1: the 'label' value is missing"))
    folder = write_folder(tmp / "no_examples", rows)
    (folder / "neutral").mkdir()
    cases.append(("class with no training example", ["--data", str(folder)], "class 'neutral' has no training example"))
    write_table(tmp / "train.csv", rows)
    write_table(tmp / "test.csv", rows[:2] + [(sentences["question"][0], "question")])
    cases.append(("unseen test label", ["--data", str(tmp / "train.csv"), "--test-data", str(tmp / "test.csv")],
                  "label 'question' (test.csv line 4) never occurs in the training data (its labels: neg, pos)"))
    latin = write_folder(tmp / "latin1", rows)
    (latin / "pos" / "bad.txt").write_bytes("a caf\xe9 scene , na\xefve and charming .".encode("latin-1"))
    cases.append(("non-UTF-8 file in a folder", ["--data", str(latin)], f"{latin / 'pos' / 'bad.txt'}: not UTF-8 text (byte 0xe9 on line 1)"))
    (tmp / "latin1.csv").write_bytes(("text,label\n" + "a caf\xe9 scene,pos\n").encode("latin-1"))
    cases.append(("non-UTF-8 table", ["--data", str(tmp / "latin1.csv")], "latin1.csv: not UTF-8 text"))
    (tmp / "empty_dir").mkdir()
    cases.append(("empty folder", ["--data", str(tmp / "empty_dir")], "the folder holds no class subfolders"))
    cases.append(("one class", ["--data", str(write_folder(tmp / "one", rows[:4]))], "only one class ('neg')"))
    empty_file = write_folder(tmp / "empty_file", rows)
    (empty_file / "neg" / "blank.txt").write_text("\n")
    cases.append(("empty text file", ["--data", str(empty_file)], "blank.txt: the file is empty"))
    cases.append(("missing path", ["--data", str(tmp / "nowhere.csv")], "nowhere.csv: no such file or folder"))
    (tmp / "loop.csv").symlink_to(tmp / "loop.csv")
    cases.append(("symbolic link loop", ["--data", str(tmp / "loop.csv")], "loop.csv: a symbolic link that leads nowhere (a loop, or its target is gone)"))
    (tmp / "data.xlsx").write_bytes(b"PK")
    cases.append(("unknown format", ["--data", str(tmp / "data.xlsx")], "expected a folder of class subfolders or a .csv, .tsv, .jsonl file"))
    (tmp / "broken.jsonl").write_text('{"text": "a fine film", "label": "pos"}\n{"text": "oops\n')
    cases.append(("broken JSON line", ["--data", str(tmp / "broken.jsonl")], "broken.jsonl line 2: not valid JSON"))
    cases.append(("test fraction out of range", ["--data", str(tmp / "single.csv"), "--test-fraction", "1.5"], "--test-fraction must be between 0 and 1"))
    cases.append(("test data without data", ["--test-data", str(tmp / "single.csv")], "--test-data goes with --data"))
    return cases


def test_every_bad_input_is_one_line_naming_the_problem_and_exit_code_2(sentences, tiny_dir, tmp_path, capsys):
    finetune = load_script("finetune")
    for name, extra, expected in _bad_cases(sentences, tmp_path):
        out = tmp_path / "runs" / name.replace(" ", "_")
        code = finetune.main(["--model", str(tiny_dir), "--output-dir", str(out), "--device", "cpu", "--no-progress",
                              "--max-length", "64", *extra])
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert code == 2, (name, captured.err[-2000:])
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, lines)
        assert expected in lines[0], (name, lines[0])
        assert not (out / "checkpoint.pt").exists(), name  # refused before any training


# ---- Issue 17: tables read strictly, own --val-size rules, the split, what was read ------------------------


def _one_line_error(finetune, tiny_dir, out, extra, capsys) -> str:
    code = finetune.main(["--model", str(tiny_dir), "--output-dir", str(out), "--device", "cpu", "--no-progress",
                          "--max-length", "64", "--truncation", "head", *extra])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (extra, captured.err[-2000:])
    assert "Errno" not in lines[0] and not (out / "checkpoint.pt").exists()
    return lines[0]


def test_a_tsv_text_opening_an_unclosed_quote_does_not_swallow_the_rows_after_it(sentences, tmp_path):
    rows = rows_of(sentences, 8, ("neg", "pos"))
    lines = ["text\tlabel"] + [f"{t}\t{c}" for t, c in rows]
    lines[3] = '"' + lines[3]  # a text that starts with a quote and never closes it on its line
    lines[8] = lines[8].replace("\t", '"\t', 1)  # a quote at the end of a later text: read as one file, rows 4-9 become one
    (tmp_path / "quote.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(L.DataError, match=r"quote\.tsv line 4: a quote opens a field that does not close on its line"):
        L.read(tmp_path / "quote.tsv")
    lines[3] = '"' + lines[3][1:].replace("\t", '"\t', 1)  # closed on its line: one quoted field
    (tmp_path / "closed.tsv").write_text("\n".join(lines) + "\n")
    got, _ = L.read(tmp_path / "closed.tsv")
    assert len(got) == 16 and got[2].text == rows[2][0] and got[2].source == "closed.tsv line 4"
    assert got[7].text == rows[7][0] + '"'  # a quote inside a field is a character of the text


def test_malformed_tables_are_refused_with_one_line(sentences, tiny_dir, tmp_path, capsys):
    finetune = load_script("finetune")
    rows = rows_of(sentences, 4, ("neg", "pos"))
    good = write_table(tmp_path / "good.csv", rows).read_text()
    cases = [
        ("comma.csv", good + "a film, honestly fine,pos\n", "comma.csv line 10: 3 fields where the header has 2 (text, label); quote a text that holds a comma"),
        ("extra.csv", good.replace(",pos\n", ",pos,5\n", 1), "line 6: 3 fields where the header has 2"),
        ("short.csv", good + "a lone text\n", "line 10: 1 fields where the header has 2"),
        ("twice.csv", write_table(tmp_path / "t.csv", [(t, c, "x") for t, c in rows], ("text", "label", "text")).read_text(),
         "twice.csv line 1: the column name 'text' appears twice"),
        ("space.csv", good.replace(",pos\n", ",pos \n", 1), "the labels 'pos ' (space.csv line 6) and 'pos' (space.csv line 7) differ only in spaces"),
        ("semicolon.csv", "text;label\n" + "".join(f"{t};{c}\n" for t, c in rows), "the header 'text;label' is separated by semicolons, not commas"),
        ("tabs.csv", "text\tlabel\n" + "".join(f"{t}\t{c}\n" for t, c in rows), "is separated by tabs, not commas"),
        ("numbers.jsonl", "".join(json.dumps({"text": t, "label": 1 if c == "pos" else 0}) + "\n" for t, c in rows)
         + json.dumps({"text": "a fine film", "label": 1.0}) + "\n",
         "the labels '1' (numbers.jsonl line 5) and '1.0' (numbers.jsonl line 9) differ only in how the number is written"),
        ("keys.jsonl", "".join(json.dumps({"text": t, "label": c}) + "\n" for t, c in rows) + '{"text": "a", "label": "pos", "text": "b"}\n',
         "keys.jsonl line 9: the key 'text' appears twice"),
        ("extra.jsonl", "".join(json.dumps({"text": t, "label": c} if i % 2 else {"label": c, "text": t}) + "\n" for i, (t, c) in enumerate(rows))
         + json.dumps({"text": "a", "label": "pos", "note": 1}) + "\n",
         "extra.jsonl line 9: keys 'text', 'label', 'note' differ from the first row's ('label', 'text')"),
    ]
    for name, content, expected in cases:
        (tmp_path / name).write_text(content)
        err = _one_line_error(finetune, tiny_dir, tmp_path / "runs" / name, ["--data", str(tmp_path / name)], capsys)
        assert expected in err, (name, err)
    test_file = write_table(tmp_path / "test.csv", [(rows[0][0], "pos ")] + rows[1:])
    train_file = write_table(tmp_path / "train.csv", rows)
    err = _one_line_error(finetune, tiny_dir, tmp_path / "runs" / "test", ["--data", str(train_file), "--test-data", str(test_file)], capsys)
    assert "--data and --test-data: the labels 'pos' (train.csv line 6) and 'pos ' (test.csv line 2) differ only in spaces" in err


def test_folders_take_txt_files_in_any_case_and_name_a_class_without_them(sentences, tmp_path):
    rows = rows_of(sentences, 3, ("neg", "pos"))
    folder = write_folder(tmp_path / "upper", rows)
    for f in (folder / "pos").iterdir():
        f.rename(f.with_suffix(".TXT"))
    got, classes = L.read(folder)
    assert classes == ["neg", "pos"] and sorted(r.text.strip() for r in got) == sorted(t for t, _ in rows)
    for f in (folder / "pos").iterdir():
        f.rename(f.with_suffix(".md"))
    with pytest.raises(L.DataError, match=r"upper/pos: the class folder holds no \.txt files \(found 0003\.md, \.\.\.\)"):
        L.read(folder)


def test_tables_hold_texts_with_form_feeds_and_unicode_line_separators(sentences, tmp_path):
    odd = ["a fine \f film", "a dull \x85 film", "a long \u2028 film", "a \u2029 twist"]
    rows = [(f"{o} {t}", c) for o, (t, c) in zip(odd * 2, rows_of(sentences, 4, ("neg", "pos")))]
    jsonl = tmp_path / "odd.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t, "label": c}, ensure_ascii=False) + "\n" for t, c in rows), encoding="utf-8")
    for path in (jsonl, write_table(tmp_path / "odd.csv", rows), write_table(tmp_path / "odd.tsv", rows)):
        got, _ = L.read(path)
        assert [(r.text, r.label) for r in got] == rows, path
        assert [r.source for r in got][-1].endswith(f" line {len(rows) + (path.suffix != '.jsonl')}")


def test_what_was_read_is_printed_before_training(sentences, tiny_dir, tmp_path, capsys):
    data = write_table(tmp_path / "d.csv", rows_of(sentences, 10))
    finetune = load_script("finetune")
    code = finetune.main(["--model", str(tiny_dir), "--output-dir", str(tmp_path / "run"), "--device", "cpu", "--no-progress",
                          "--max-length", "32", "--truncation", "head", "--epochs", "1", "--no-plots", "--data", str(data),
                          "--val-size", "3"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(f"--data {data}: read 30 examples (neg 10, pos 10, question 10); training on 21, validating on 3, testing on 6\n")


def test_own_data_val_size_has_its_own_rules_and_gives_the_intended_rows(sentences, tiny_dir, vocab_path, tmp_path, capsys):
    tok = minibert.BertTokenizer(vocab_path)
    rows = rows_of(sentences, 12, ("neg", "pos")) + rows_of(sentences, 6, ("question",))  # 12, 12, 6
    data = write_table(tmp_path / "d.csv", rows)
    # 30 examples, 6 held out for testing (2 + 2 + 1 ... rounded per class), val taken from the rest
    train, test, _ = L.load(data, test_fraction=0.2)
    for val_size in (1, 5, 7):  # odd sizes are fine: nothing halves them
        got = prepare_data(quick(tiny_dir, tmp_path, data, val_size=val_size), tok)
        assert (len(got.train), got.n_val_docs, got.n_test_docs) == (len(train) - val_size, val_size, len(test))
        assert sorted(e.doc for e in got.val) == list(range(val_size))
    got = prepare_data(quick(tiny_dir, tmp_path, data, val_size=12), tok)  # 24 training examples: 10, 10, 4 -> 5, 5, 2
    assert [sum(e.label == c for e in got.val) for c in range(3)] == [5, 5, 2]
    summary = run(quick(tiny_dir, tmp_path / "run", data, val_size=5))
    selected = json.loads((tmp_path / "run" / "metrics.json").read_text())["selected"]
    assert summary["train_examples"] == len(train) - 5 and selected["val"]["n"] == 5 and selected["n"] == len(test)
    capsys.readouterr()

    finetune = load_script("finetune")
    for val_size, expected in ((24, "--val-size 24 would hold out all 10 training examples of class 'neg'"),
                               (40, "--val-size 40 would hold out all"),
                               (23, "would hold out all 5 training examples of class 'question'")):
        err = _one_line_error(finetune, tiny_dir, tmp_path / f"v{val_size}", ["--data", str(data), "--val-size", str(val_size)], capsys)
        assert expected in err, err
    err = _one_line_error(finetune, tiny_dir, tmp_path / "odd", ["--val-size", "3"], capsys)  # movie_reviews keeps its rules
    assert "--val-size must be an even number" in err


def test_bad_options_and_models_for_own_data_are_one_line(sentences, tiny_dir, vocab_path, tmp_path, capsys):
    finetune = load_script("finetune")
    data = write_table(tmp_path / "d.csv", rows_of(sentences, 6))
    three = run(quick(tiny_dir, tmp_path / "three", data))
    assert three["status"] == "completed"
    capsys.readouterr()
    two = write_table(tmp_path / "two.csv", rows_of(sentences, 6, ("neg", "pos")))
    cases = [
        (["--data", str(data), "--limit-train", "2"], "--limit-train 2 is fewer than the 3 classes"),
        (["--data", str(data), "--text-column", "label"], "--text-column, --pair-column and --label-column must name different columns, got 'label', 'label'"),
        (["--data", str(data), "--weight-decay", "inf"], "--weight-decay must be a finite number, got inf"),
        (["--data", str(data), "--lr", "nan"], "--lr must be"),
        (["--data", str(data), "--warmup", "nan"], "--warmup"),
        (["--data", str(data), "--max-length", "256"], f"--max-length 256 is longer than the 128 positions of --model {tiny_dir}"),
        (["--data", str(two), "--model", str(tmp_path / "three" / "model")], "was fine-tuned for another number of classes (classifier.bias: file (3,) vs model (2,))"),
    ]
    for extra, expected in cases:
        err = _one_line_error(finetune, tiny_dir, tmp_path / "runs" / str(len(extra)) / extra[-1].replace("/", "_"), extra, capsys)
        assert expected in err, (extra, err)


def test_the_own_data_split_does_not_depend_on_pythonhashseed(sentences, tmp_path):
    import os
    import subprocess
    import sys

    data = write_table(tmp_path / "d.csv", rows_of(sentences, 10))
    code = (f"from minibert import labelled_texts as L; train, test, _ = L.load({str(data)!r}, test_fraction=0.3, seed=4); "
            "print([r.fileid for r in test])")
    splits = set()
    for hashseed in ("1", "2", "3"):
        env = os.environ | {"PYTHONHASHSEED": hashseed, "PYTHONPATH": str(ROOT)}
        splits.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)
    assert len(splits) == 1


def test_a_truncated_movie_reviews_zip_is_one_line_not_a_traceback(tmp_path):
    import os
    import subprocess
    import sys

    zipped = next(Path(p) / "corpora" / "movie_reviews.zip" for p in os.environ["NLTK_DATA"].split(os.pathsep)
                  if (Path(p) / "corpora" / "movie_reviews.zip").is_file())
    cut = tmp_path / "nltk_data" / "corpora" / "movie_reviews.zip"
    cut.parent.mkdir(parents=True)
    cut.write_bytes(zipped.read_bytes()[: zipped.stat().st_size // 2])  # a download cut short
    env = os.environ | {"NLTK_DATA": str(tmp_path / "nltk_data"), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "finetune.py"), "--output-dir", str(tmp_path / "run"),
                           "--device", "cpu"], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"error: the movie_reviews corpus ({cut}) is damaged (File is not a zip file); delete it and run "
        "`python -m nltk.downloader movie_reviews` again"], done.stderr[-2000:]
