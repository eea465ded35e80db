"""The teaching tools: fill-mask gives transformers' masked-LM probabilities, the attention PNG is a
layers x heads grid of attention distributions, and the trace reports the shape after every stage."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image
import matplotlib.pyplot as plt
import pytest
from conftest import load_script
import torch
import transformers

from minibert import BertConfig, BertForMaskedLM, BertForPreTraining, BertTokenizer
from minibert.checkpoint import load_state_dict
from minibert.inspection import (
    InspectionError,
    attention,
    fill_mask,
    format_fill_mask,
    load_encoder,
    load_masked_lm,
    plot_attention,
    trace,
)

ROOT = Path(__file__).resolve().parents[1]
TOL = dict(atol=1e-5, rtol=1e-5)
WORDS = "the man went to store market park school a dog cat sat on mat and it was happy sad .".split()


@pytest.fixture(scope="module")
def small_tokenizer(tmp_path_factory) -> BertTokenizer:
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    return BertTokenizer(path)


def twin(hf_cls, mb_cls, tokenizer, max_positions=32):
    """A transformers model with random weights and the minibert model holding the same weights."""
    cfg = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=48, max_position_embeddings=max_positions)
    torch.manual_seed(0)
    hf = hf_cls(transformers.BertConfig(**cfg.to_dict(), attn_implementation="eager")).eval()
    mb = mb_cls(cfg).eval()
    report = load_state_dict(mb, hf.state_dict())
    assert not report.initialized and not report.missing
    return hf, mb


# ---- Fill-mask -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("classes", [(transformers.BertForMaskedLM, BertForMaskedLM),
                                     (transformers.BertForPreTraining, BertForPreTraining)], ids=["MaskedLM", "PreTraining"])
def test_fill_mask_matches_transformers(classes, small_tokenizer):
    hf, mb = twin(*classes, small_tokenizer)
    text, pair = "the man went to the [MASK] .", "it was [MASK] ."
    enc = small_tokenizer(text, pair, return_tensors="pt")
    h = hf(**enc)
    hf_logits = h.logits if hasattr(h, "logits") else h.prediction_logits  # (1, T, V)
    m = mb(**enc)
    mb_logits = m.logits if hasattr(m, "logits") else m.prediction_logits
    torch.testing.assert_close(mb_logits, hf_logits, **TOL)

    predictions = fill_mask(mb, small_tokenizer, text, top_k=4, text_pair=pair)
    masks = (enc["input_ids"][0] == small_tokenizer.mask_token_id).nonzero().flatten()
    assert len(predictions) == len(masks) == 2
    for candidates, pos in zip(predictions, masks):
        want = hf_logits[0, pos].softmax(-1).topk(4)
        assert [t for t, _ in candidates] == small_tokenizer.convert_ids_to_tokens(want.indices)
        torch.testing.assert_close(torch.tensor([p for _, p in candidates]), want.values, **TOL)
        assert [p for _, p in candidates] == sorted((p for _, p in candidates), reverse=True)
    text_out = format_fill_mask(text, predictions)
    assert "[MASK] #2:" in text_out and candidates[0][0] in text_out


def test_fill_mask_errors_are_clear(small_tokenizer):
    _, mb = twin(transformers.BertForMaskedLM, BertForMaskedLM, small_tokenizer, max_positions=16)
    with pytest.raises(InspectionError, match="no \\[MASK\\] token"):
        fill_mask(mb, small_tokenizer, "the man went to the store .")
    with pytest.raises(InspectionError, match="no \\[MASK\\] token"):
        fill_mask(mb, small_tokenizer, "the man went to the [mask] .")  # lower case is an ordinary word
    with pytest.raises(InspectionError, match="23 tokens long .* at most 16"):
        fill_mask(mb, small_tokenizer, "the man went to the [MASK] . " * 3)
    with pytest.raises(InspectionError, match="top_k must be >= 1"):
        fill_mask(mb, small_tokenizer, "the [MASK] .", top_k=0)


def test_a_checkpoint_without_mlm_head_gives_a_loud_warning(minilm_dir, small_tokenizer, tmp_path, capsys):
    model, tok, warning = load_masked_lm(str(minilm_dir))
    assert "RANDOMLY" in warning and "cls.predictions.bias" in warning
    (candidates,) = fill_mask(model, tok, "the man went to the [MASK] .")
    assert len(candidates) == 5  # it still answers, after the warning

    _, mb = twin(transformers.BertForMaskedLM, BertForMaskedLM, small_tokenizer)
    mb.save_pretrained(tmp_path / "with-head", tokenizer=small_tokenizer)
    _, _, warning = load_masked_lm(str(tmp_path / "with-head"))
    assert warning is None

    script = load_script("fill_mask")
    assert script.main(["the man went to the [MASK] .", "--model", str(tmp_path / "with-head"), "--top-k", "3"]) == 0
    out = capsys.readouterr()
    assert "WARNING" not in out.err
    assert out.out.startswith("the man went to the [MASK] .\n[MASK]:") and out.out.count("%") == 3
    assert script.main(["the man went to the [MASK] .", "--model", str(minilm_dir)]) == 0
    assert "!!! WARNING" in capsys.readouterr().err
    assert script.main(["no mask here", "--model", str(tmp_path / "with-head")]) == 2
    assert "no [MASK] token" in capsys.readouterr().err


# ---- Attention maps ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    return load_encoder(str(minilm_dir))


def test_attention_probabilities_are_transformers_attentions(minilm, minilm_dir):
    model, tok = minilm
    tokens, probs = attention(model, tok, "the cat sat on the mat .", "it was happy .")
    assert tokens[0] == "[CLS]" and tokens.count("[SEP]") == 2 and len(tokens) == 14
    assert probs.shape == (6, 12, 14, 14)
    torch.testing.assert_close(probs.sum(-1), torch.ones(6, 12, 14), **TOL)
    hf = transformers.BertModel.from_pretrained(minilm_dir, attn_implementation="eager").eval()
    enc = tok("the cat sat on the mat .", "it was happy .", return_tensors="pt")
    with torch.no_grad():
        want = torch.cat(hf(**enc, output_attentions=True).attentions)
    torch.testing.assert_close(probs, want, **TOL)


def drawn_maps(fig) -> list:
    """The heatmaps of a figure, row by row, as arrays."""
    return [im.get_array() for ax in fig.axes for im in ax.get_images()]


def test_attention_png_is_a_layers_by_heads_grid_of_distributions(minilm, tmp_path):
    model, tok = minilm
    tokens, probs = attention(model, tok, "the cat sat on the mat .")
    T = len(tokens)
    drawn = plot_attention(tokens, probs, tmp_path / "grid.png", title="the cat sat on the mat .")
    try:
        assert (drawn.rows, drawn.cols) == (6, 12)
        assert drawn.maps == [(layer, head) for layer in range(6) for head in range(12)]
        maps = drawn_maps(drawn.figure)
        assert len(maps) == 72
        for (layer, head), m in zip(drawn.maps, maps):
            assert m.shape == (T, T)
            torch.testing.assert_close(torch.as_tensor(m.sum(-1)), torch.ones(T, dtype=probs.dtype), **TOL)  # rows: distributions
            torch.testing.assert_close(torch.as_tensor(m), probs[layer, head])
        # tokens along the outer edges only: left column (rows), bottom row (columns)
        axes = [ax for ax in drawn.figure.axes if ax.get_images()]
        assert [t.get_text() for t in axes[-1].get_xticklabels()] == tokens
        assert [t.get_text() for t in axes[0].get_yticklabels()] == tokens
        assert axes[0].get_xticklabels() == [] and axes[1].get_yticklabels() == []
        assert drawn.figure.get_suptitle() == "the cat sat on the mat ."
    finally:
        plt.close(drawn.figure)
    png = matplotlib.image.imread(drawn.path)
    height, width = png.shape[:2]
    assert (width, height) == drawn.size_px
    assert width > height  # 12 heads across, 6 layers down


def test_one_layer_or_one_head_is_drawn_with_token_labels(minilm, tmp_path):
    model, tok = minilm
    tokens, probs = attention(model, tok, "the cat sat on the mat .")
    one = plot_attention(tokens, probs, tmp_path / "one.png", layer=2, head=5)
    row = plot_attention(tokens, probs, tmp_path / "row.png", layer=4)
    try:
        assert (one.rows, one.cols, one.maps) == (1, 1, [(2, 5)])
        (m,) = drawn_maps(one.figure)
        torch.testing.assert_close(torch.as_tensor(m), probs[2, 5])
        (ax,) = [ax for ax in one.figure.axes if ax.get_images()]
        assert [t.get_text() for t in ax.get_xticklabels()] == tokens == [t.get_text() for t in ax.get_yticklabels()]
        assert (row.rows, row.cols) == (1, 12) and row.maps == [(4, h) for h in range(12)]
        assert all([t.get_text() for t in ax.get_xticklabels()] == tokens for ax in row.figure.axes if ax.get_images())
    finally:
        plt.close(one.figure)
        plt.close(row.figure)
    for drawn in (one, row):
        height, width = matplotlib.image.imread(drawn.path).shape[:2]
        assert (width, height) == drawn.size_px
    assert one.size_px[0] < one.size_px[1] * 1.2  # one square map


def test_a_long_input_drops_the_labels_of_the_full_grid_only(minilm):
    model, tok = minilm
    tokens, probs = attention(model, tok, "the cat sat on the mat . " * 8)
    assert len(tokens) > 40
    grid = plot_attention(tokens, probs)
    one = plot_attention(tokens, probs, layer=0, head=0)
    try:
        assert not grid.tick_labels and all(ax.get_xticklabels() == [] for ax in grid.figure.axes)
        assert one.tick_labels and len(one.figure.axes[0].get_xticklabels()) == len(tokens)
    finally:
        plt.close(grid.figure)
        plt.close(one.figure)


def test_attention_figures_have_one_colour_bar_and_token_labels_that_fit(minilm):
    """The walkthrough's figures 5 and 6: a 0-to-1 colour bar, and token labels as large as a heatmap row allows
    (readable, not overlapping) for the 19 tokens of its sentence pair."""
    model, tok = minilm
    tokens, probs = attention(model, tok, "the cat sat on the mat because it was tired.", "it fell asleep there.")
    assert len(tokens) == 19
    for options in ({}, {"layer": 5}, {"layer": 5, "head": 11}):
        drawn = plot_attention(tokens, probs, **options)
        try:
            fig = drawn.figure
            fig.canvas.draw()
            bars = [ax for ax in fig.axes if not ax.get_images()]
            assert len(bars) == 1, options  # one colour bar for all maps: they share one scale
            assert bars[0].get_ylim() == (0.0, 1.0)
            assert "attention weight" in bars[0].get_ylabel()
            maps = [ax for ax in fig.axes if ax.get_images()]
            assert all(ax.get_images()[0].get_clim() == (0.0, 1.0) for ax in maps)
            labelled = maps[0]  # the top-left map always carries the row labels
            row_points = labelled.get_window_extent().height / fig.dpi * 72 / len(tokens)
            sizes = {t.get_fontsize() for t in labelled.get_yticklabels()}
            assert len(sizes) == 1 and 6.0 <= sizes.pop() <= row_points, (options, row_points)
        finally:
            plt.close(drawn.figure)


def test_attention_errors_are_clear(minilm):
    model, tok = minilm
    tokens, probs = attention(model, tok, "a b")
    with pytest.raises(InspectionError, match="--layer 6 does not exist: the model has 6 layers, numbered 0 to 5"):
        plot_attention(tokens, probs, layer=6)
    with pytest.raises(InspectionError, match="--head needs --layer"):
        plot_attention(tokens, probs, head=1)
    with pytest.raises(InspectionError, match="at most 512"):
        attention(model, tok, "word " * 600)


# ---- The trace -----------------------------------------------------------------------------------------


def test_trace_reports_the_input_and_every_stage_shape(minilm):
    model, tok = minilm
    t = trace(model, tok, "the cat sat on the mat .", "it was happy .")
    enc = tok("the cat sat on the mat .", "it was happy .")
    T, H, nh, hd, I = 14, 384, 12, 32, 1536
    assert t.tokens == tok.convert_ids_to_tokens(enc["input_ids"])
    assert t.input_ids == enc["input_ids"] and t.token_type_ids == enc["token_type_ids"] == [0] * 9 + [1] * 5
    assert t.positions == list(range(T))
    expected = [("input_ids", (1, T)), ("token_type_ids", (1, T)), ("embeddings (token + segment + position)", (1, T, H))]
    for i in range(6):
        expected += [
            (f"layer {i} q|k|v projection", (1, T, 3 * H)),
            (f"layer {i} q, k, v each, split into heads", (1, nh, T, hd)),
            (f"layer {i} attention probabilities softmax(q k^T / sqrt(hd))", (1, nh, T, T)),
            (f"layer {i} attention output (heads merged, projected)", (1, T, H)),
            (f"layer {i} feed-forward inside", (1, T, I)),
            (f"layer {i} output", (1, T, H)),
        ]
    expected.append(("pooler (tanh(dense([CLS])))", (1, H)))
    assert t.stages == expected
    text = t.format()
    assert "   9  it       2009  B (1)" in text.splitlines()
    assert "pooler (tanh(dense([CLS])))" in text and "(1, 12, 14, 14)" in text
    assert not any(m._forward_hooks for m in model.modules())  # the hooks are removed afterwards


def test_show_attention_script(minilm_dir, tmp_path, capsys):
    script = load_script("show_attention")
    help_text = script.parser().format_help()
    for flag in ("--pair", "--model", "--output", "--layer", "--head", "--dpi", "--trace", "--device"):
        assert flag in help_text
    out = tmp_path / "att.png"
    assert script.main(["the cat sat on the mat .", "--pair", "it was happy .", "--model", str(minilm_dir), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "layer 5 output" in printed and f"wrote {out}: 6 layer(s) x 12 head(s)" in printed
    assert matplotlib.image.imread(out).shape[1] > 1000
    assert script.main(["the cat .", "--model", str(minilm_dir), "--layer", "9", "--output", str(out)]) == 2
    assert "--layer 9 does not exist" in capsys.readouterr().err
