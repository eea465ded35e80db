"""Tokenizer throughput over the whole movie_reviews corpus: minibert (pure Python) against transformers'
pure-Python BertTokenizerLegacy and its Rust-backed BertTokenizer, with identical ids asserted."""

from __future__ import annotations

import time


def tokenizer_benchmark(texts: list[str], vocab_file: str) -> list[dict]:
    import transformers
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    import minibert

    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    # each tokenizer is created fresh, so minibert's word cache starts empty: the pass pays for filling it
    makers = {
        "minibert": lambda: minibert.BertTokenizer(vocab_file),
        "transformers-legacy (Python)": lambda: BertTokenizerLegacy(vocab_file),
        "transformers (Rust)": lambda: transformers.BertTokenizer(vocab_file),
    }
    rows, reference = [], None
    for name, make in makers.items():
        for mode in ("per document", "batched"):
            if mode == "batched" and name.startswith("transformers-legacy"):
                continue  # the legacy tokenizer loops over the batch in Python: the same as per document
            tok = make()
            t = time.perf_counter()
            if mode == "per document":
                ids = [tok(text, truncation=False)["input_ids"] for text in texts]
            else:
                ids = tok(texts, truncation=False)["input_ids"]
            seconds = time.perf_counter() - t
            if reference is None:
                reference = ids
            same = ids == reference
            rows.append({"tokenizer": name, "mode": mode, "seconds": seconds, "mb_per_s": megabytes / seconds, "identical_ids": same})
    base = {r["mode"]: r for r in rows if r["tokenizer"] == "minibert"}
    for r in rows:
        r["minibert_speedup"] = base[r["mode"]]["mb_per_s"] / r["mb_per_s"] if r["mode"] in base else None
    return rows
