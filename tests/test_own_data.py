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
    ours = classify(model, tok, texts, **minibert.predict.inference_settings(trained), device="cpu")
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
    a, b, c = classify(model, tok, ["the film opens in a small town ."] * 3, ["the town has a secret .", "i ate an apple .", "the town has a secret ."], **settings, device="cpu")
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
