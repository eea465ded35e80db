"""Looking inside a BERT: fill in [MASK] tokens with the pre-training head, draw every attention map, explore
them in an offline HTML page, and trace one input through the model stage by stage (the logic behind
scripts/fill_mask.py and scripts/show_attention.py).

    fill_mask(model, tok, "the man went to the [MASK] .")   -> [[("store", 0.17), ("hospital", 0.09), ...]]
    attention(model, tok, "a sentence", "optional pair")     -> tokens and (L, nh, T, T) probabilities
    plot_attention(tokens, probs, "attention.png")            -> a grid: one row per layer, one column per head
    trace(model, tok, "a sentence")                           -> tokens, ids, segments, positions, and the
                                                                 shape of the tensor after every stage
    attention_detail(model, tok, "a sentence")                -> per layer and head: q, k, v, q·k, the mask, the
                                                                 model's probabilities (the explorer's numbers)
    attention_page([("name", detail)], "a sentence")          -> the attention explorer: one offline HTML page
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .heads import BertForMaskedLM
from .model import BertModel, attention_bias
from .tokenizer import BertTokenizer

MASK = "[MASK]"


class InspectionError(ValueError):
    """An input the inspection tools cannot use: no [MASK] to fill, too long, a layer that does not exist."""


# ---- Fill-mask ----------------------------------------------------------------------------------------


def load_masked_lm(name_or_path: str, device: str | torch.device = "cpu") -> tuple[BertForMaskedLM, BertTokenizer, str | None]:
    """A masked-LM model and its tokenizer, plus a warning when the checkpoint has no MLM head weights.

    Returns:
        (model, tokenizer, warning): warning is None when the head was loaded, else a message saying that
        the head was initialised randomly and that its predictions are therefore meaningless.
    """
    model, report = BertForMaskedLM.from_pretrained(name_or_path, output_loading_info=True)
    tokenizer = BertTokenizer.from_pretrained(name_or_path)
    warning = None
    head_missing = [k for k in report.initialized if k.startswith("cls.predictions")]
    if head_missing:
        warning = (
            f"{name_or_path} has no masked-LM head weights ({', '.join(head_missing)}): the head was initialised "
            f"RANDOMLY, so the predictions below are RANDOM and mean nothing. Use a checkpoint saved with its "
            f"pre-training heads (bert-base-uncased from the Hub, or the model/ folder that scripts/pretrain.py writes)."
        )
    return model.to(device).eval(), tokenizer, warning


@torch.inference_mode()
def fill_mask(model, tokenizer: BertTokenizer, text: str, top_k: int = 5, text_pair: str | None = None) -> list[list[tuple[str, float]]]:
    """The most probable tokens for each [MASK] in `text`, as the masked-LM head predicts them.

    Args:
        model: a BertForMaskedLM or BertForPreTraining (anything whose output has `.logits` or
            `.prediction_logits` of shape (1, T, V)).
        tokenizer: the model's tokenizer.
        text: text with one or more "[MASK]" tokens, e.g. "the man went to the [MASK] ."
        top_k: how many candidates to return per [MASK].
        text_pair: an optional second segment (which may also hold [MASK]s).
    Returns:
        one list per [MASK], in order of appearance, of (token, probability) pairs, most probable first.
    Raises:
        InspectionError: no [MASK] in the text, or the text is longer than the model's positions.
    """
    if MASK not in text and (text_pair is None or MASK not in text_pair):
        raise InspectionError(f"the text has no {MASK} token to fill in; write it where a word is missing, e.g. "
                              f"'the man went to the {MASK} .' (upper-case, with the brackets)")
    if top_k < 1:
        raise InspectionError(f"top_k must be >= 1, got {top_k}")
    enc = tokenizer(text, text_pair, return_tensors="pt")
    ids = enc["input_ids"]  # (1, T)
    limit = min(model.config.max_position_embeddings, tokenizer.model_max_length)
    if ids.shape[1] > limit:
        raise InspectionError(f"the text is {ids.shape[1]} tokens long ([CLS] and [SEP] included) but the model reads "
                              f"at most {limit}; shorten it around the [MASK]")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()  # no dropout: the same text always gives the same answer
    out = model(ids.to(device), token_type_ids=enc["token_type_ids"].to(device))
    model.train(was_training)
    logits = out.logits if hasattr(out, "logits") else out.prediction_logits  # (1, T, V)
    where = (ids[0] == tokenizer.mask_token_id).nonzero().flatten()  # (M,) positions of the [MASK]s
    probs = logits[0, where.to(device)].float().softmax(-1)  # (M, V)
    top = probs.topk(min(top_k, probs.shape[-1]), dim=-1)
    return [
        [(tokenizer.convert_ids_to_tokens(i), p) for i, p in zip(row_ids.tolist(), row_p.tolist())]
        for row_ids, row_p in zip(top.indices.cpu(), top.values.cpu())
    ]


def format_fill_mask(text: str, predictions: list[list[tuple[str, float]]]) -> str:
    """Readable text for the output of fill_mask: one block per [MASK]."""
    lines = [text]
    for n, candidates in enumerate(predictions, 1):
        lines.append(f"[MASK] #{n}:" if len(predictions) > 1 else "[MASK]:")
        width = max(len(t) for t, _ in candidates)
        for token, p in candidates:
            lines.append(f"  {token:<{width}}  {p:7.2%}  {'#' * round(40 * p)}")
    return "\n".join(lines)


# ---- Attention maps -----------------------------------------------------------------------------------


def load_encoder(name_or_path: str, device: str | torch.device = "cpu") -> tuple[BertModel, BertTokenizer]:
    """The bare encoder of any BERT checkpoint (task heads are ignored) and its tokenizer."""
    model = BertModel.from_pretrained(name_or_path).to(device).eval()
    return model, BertTokenizer.from_pretrained(name_or_path)


def _encode(model, tokenizer: BertTokenizer, text: str, text_pair: str | None) -> dict:
    enc = tokenizer(text, text_pair, return_tensors="pt")
    limit = min(model.config.max_position_embeddings, tokenizer.model_max_length)
    if enc["input_ids"].shape[1] > limit:
        raise InspectionError(f"the input is {enc['input_ids'].shape[1]} tokens long but the model reads at most {limit}")
    return enc


@torch.inference_mode()
def attention(model: BertModel, tokenizer: BertTokenizer, text: str, text_pair: str | None = None) -> tuple[list[str], torch.Tensor]:
    """Every layer's attention probabilities for one sentence (or pair).

    Returns:
        tokens: the T word pieces, [CLS] and [SEP] included.
        probs: (L, nh, T, T) float32 on the CPU; probs[l, h, i] is how token i distributes its attention
            over all tokens in head h of layer l (a distribution: the row sums to 1).
    """
    enc = _encode(model, tokenizer, text, text_pair)
    device = next(model.parameters()).device
    out = model(enc["input_ids"].to(device), token_type_ids=enc["token_type_ids"].to(device), output_attentions=True)
    probs = torch.cat(out.attentions).float().cpu()  # L x (1, nh, T, T) -> (L, nh, T, T)
    return tokenizer.convert_ids_to_tokens(enc["input_ids"][0]), probs


@dataclass
class AttentionFigure:
    """What plot_attention drew."""

    figure: object  # the matplotlib Figure (close it with matplotlib.pyplot.close when done)
    rows: int  # layers drawn
    cols: int  # heads drawn
    maps: list  # one (layer, head) per heatmap, row by row
    tick_labels: bool  # whether the tokens are written on the axes
    path: Path | None = None
    size_px: tuple[int, int] = (0, 0)  # (width, height) of the PNG


GRID_CELL_INCHES = 2.0  # side of one heatmap in the full grid
LAYER_CELL_INCHES = 2.2  # side of one heatmap when one layer's heads are drawn in a row
SINGLE_INCHES = 7.0  # side of one heatmap drawn alone
MAX_LABELLED_TOKENS = 40  # above this, token labels on a full grid would be unreadable
COLORBAR_INCHES = 0.9  # the strip on the right that holds the colour bar and its label


def plot_attention(tokens: list[str], probs: torch.Tensor, path: str | Path | None = None, title: str = "",
                   layer: int | None = None, head: int | None = None, dpi: int = 100) -> AttentionFigure:
    """Draw attention maps: each a T x T heatmap, row i = where token i looks, tokens on both axes.

    Args:
        tokens: the T tokens (from `attention`).
        probs: (L, nh, T, T) attention probabilities (from `attention`).
        path: where to write the PNG (None: only build the figure).
        title: the figure's title (e.g. the text).
        layer, head: 0-based. Both given: that one map, large. layer only: that layer's heads in one row.
            Neither: the full grid, one row per layer and one column per head.
        dpi: pixels per inch of the PNG.
    Returns:
        AttentionFigure with the figure, the grid's rows and columns, the (layer, head) of each map and the
        PNG's size in pixels.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    L, nh, T, _ = probs.shape
    if len(tokens) != T:
        raise InspectionError(f"{len(tokens)} tokens for attention maps over {T} positions")
    for name, value, n in (("layer", layer, L), ("head", head, nh)):
        if value is not None and not 0 <= value < n:
            raise InspectionError(f"--{name} {value} does not exist: the model has {n} {name}s, numbered 0 to {n - 1}")
    if head is not None and layer is None:
        raise InspectionError("--head needs --layer (which layer's head to draw)")
    layers = [layer] if layer is not None else list(range(L))
    heads = [head] if head is not None else list(range(nh))
    rows, cols = len(layers), len(heads)
    single = rows * cols == 1
    # Tokens on the axes: always for a selected layer or head; on the full grid only while they stay readable.
    # Row labels go on the left column only, column labels under every map of a single row (else the bottom row).
    labels = layer is not None or T <= MAX_LABELLED_TOKENS
    cell = SINGLE_INCHES if single else LAYER_CELL_INCHES if layer is not None else GRID_CELL_INCHES
    font = 9 if single else max(2.5, min(8.0, 0.9 * 72 * cell / max(T, 1)))  # refined below, once the maps are placed
    margin = 1.0 if labels else 0.3  # inches around the grid for the tick labels
    fig_width = cols * cell + margin + COLORBAR_INCHES
    fig, axes = plt.subplots(rows, cols, figsize=(fig_width, rows * cell + margin + 0.4), squeeze=False, dpi=dpi)
    maps = []
    for r, l in enumerate(layers):
        for c, h in enumerate(heads):
            ax = axes[r, c]
            image = ax.imshow(probs[l, h].numpy(), cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
            maps.append((l, h))
            ax.set_xticks([])
            ax.set_yticks([])
            if labels and (single or layer is not None or r == rows - 1):
                ax.set_xticks(range(T), tokens, rotation=90, fontsize=font)
            if labels and (single or c == 0):  # row labels once, on the left: the maps then get the width
                ax.set_yticks(range(T), tokens, fontsize=font)
            if r == 0 or layer is not None:
                ax.set_title(f"head {h}", fontsize=8 if not single else 11)
            if c == 0:
                ax.set_ylabel(f"layer {l}", fontsize=8 if not single else 11)
    if single:
        ax.set_xlabel("attended to (key)")
        ax.set_ylabel("attending token (query)")
        ax.set_title(f"layer {layers[0]}, head {heads[0]}")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - COLORBAR_INCHES / fig_width, 1))
    if labels and not single:
        # Now that the maps have their final size, make a label exactly as tall as a heatmap row allows
        # (72 points per inch): readable, and not overlapping its neighbours.
        map_inches = axes[0, 0].get_position().height * fig.get_size_inches()[1]
        font = max(2.5, min(8.0, 0.9 * 72 * map_inches / max(T, 1)))
        for ax in axes.flat:
            ax.tick_params(labelsize=font)
        fig.tight_layout(rect=(0, 0, 1 - COLORBAR_INCHES / fig_width, 1))
    # One colour bar serves every map: all share the scale 0 (no attention) to 1 (all of a row on one key).
    bar = fig.add_axes((1 - 0.75 * COLORBAR_INCHES / fig_width, 0.15, 0.12 / fig_width, 0.7))
    fig.colorbar(image, cax=bar).set_label("attention weight (each row sums to 1)", fontsize=8 if not single else 10)
    bar.tick_params(labelsize=7 if not single else 9)
    width, height = (round(v * dpi) for v in fig.get_size_inches())
    result = AttentionFigure(fig, rows, cols, maps, labels, None, (width, height))
    if path is not None:
        result.path = Path(path)
        fig.savefig(result.path, dpi=dpi)  # no bbox_inches="tight": the PNG keeps the figure's exact size
    return result


# ---- The trace: one input through the model ------------------------------------------------------------


@dataclass
class Trace:
    tokens: list[str]
    input_ids: list[int]
    token_type_ids: list[int]  # segment: 0 = sentence A, 1 = sentence B
    positions: list[int]  # index into the position-embedding table
    stages: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)  # (what, tensor shape) in execution order

    def format(self) -> str:
        """The trace as text: a table of the input, then one line per stage."""
        width = max(len("token"), *(len(t) for t in self.tokens))
        lines = [f"{'pos':>4}  {'token':<{width}}  {'id':>6}  segment"]
        for p, t, i, s in zip(self.positions, self.tokens, self.input_ids, self.token_type_ids):
            lines.append(f"{p:>4}  {t:<{width}}  {i:>6}  {'A' if s == 0 else 'B'} ({s})")
        lines.append("")
        lines.append("shapes (B = 1 sentence, T tokens, H hidden, nh heads, hd = H / nh):")
        name_width = max(len(n) for n, _ in self.stages)
        lines += [f"  {name:<{name_width}}  {tuple(shape)}" for name, shape in self.stages]
        return "\n".join(lines)


@torch.inference_mode()
def trace(model: BertModel, tokenizer: BertTokenizer, text: str, text_pair: str | None = None) -> Trace:
    """Run one input through the encoder and record the shape of every stage as it happens.

    The shapes are recorded by forward hooks on the modules as they run (only the per-head split of q, k, v,
    a view inside SelfAttention, is derived from the projection's shape):
    input_ids (1, T) -> embeddings (1, T, H) -> per layer: q|k|v projection (1, T, 3H), q, k, v per head
    (1, nh, T, hd), attention probabilities (1, nh, T, T), attention output (1, T, H), feed-forward inside
    (1, T, I), layer output (1, T, H) -> pooler (1, H).
    """
    enc = _encode(model, tokenizer, text, text_pair)
    ids, types = enc["input_ids"], enc["token_type_ids"]  # (1, T) each
    cfg = model.config
    stages: list[tuple[str, tuple[int, ...]]] = [("input_ids", tuple(ids.shape)), ("token_type_ids", tuple(types.shape))]
    hooks = []

    def record(name):
        def hook(module, args, output):
            stages.append((name, tuple(output.shape)))
        return hook

    def record_attention(i):
        def hook(module, args, output):
            out, probs = output  # SelfAttention returns (output, probabilities)
            stages.append((f"layer {i} attention probabilities softmax(q k^T / sqrt(hd))", tuple(probs.shape)))
            stages.append((f"layer {i} attention output (heads merged, projected)", tuple(out.shape)))
        return hook

    def record_qkv(i):
        def hook(module, args, output):
            B, T, _ = output.shape
            stages.append((f"layer {i} q|k|v projection", tuple(output.shape)))
            # model.py views this as (B, T, 3, nh, hd) and permutes it into q, k, v of (B, nh, T, hd) each.
            stages.append((f"layer {i} q, k, v each, split into heads", (B, cfg.num_attention_heads, T, cfg.head_size)))
        return hook

    hooks.append(model.embeddings.register_forward_hook(record("embeddings (token + segment + position)")))
    for i, layer in enumerate(model.encoder.layers):
        hooks.append(layer.attn.qkv.register_forward_hook(record_qkv(i)))
        hooks.append(layer.attn.register_forward_hook(record_attention(i)))
        hooks.append(layer.ffn.up.register_forward_hook(record(f"layer {i} feed-forward inside")))
        hooks.append(layer.register_forward_hook(lambda m, a, o, i=i: stages.append((f"layer {i} output", tuple(o[0].shape)))))
    if model.pooler is not None:
        hooks.append(model.pooler.register_forward_hook(record("pooler (tanh(dense([CLS])))")))
    try:
        device = next(model.parameters()).device
        model(ids.to(device), token_type_ids=types.to(device), output_attentions=True)
    finally:
        for h in hooks:
            h.remove()
    return Trace(
        tokens=tokenizer.convert_ids_to_tokens(ids[0]),
        input_ids=ids[0].tolist(),
        token_type_ids=types[0].tolist(),
        positions=list(range(ids.shape[1])),
        stages=stages,
    )


# ---- The attention explorer: q, k, v and the arithmetic of every head -----------------------------------


@dataclass
class AttentionDetail:
    """Everything the attention explorer page shows for one input, taken from the model's written-out
    attention path: per layer and head, the queries, keys, values, the dot products q·k and the
    probabilities the model returned.

    Shapes: L layers, nh heads, T tokens (padding included), hd = d_k numbers per query, key or value.
    """

    tokens: list[str]
    segments: list[int]  # token_type_ids: 0 = segment A, 1 = segment B
    attention_mask: list[int]  # 1 = a real token, 0 = padding
    mask_bias: torch.Tensor  # (T,) the additive mask M of section 7: 0, or finfo.min for padding keys
    q: torch.Tensor  # (L, nh, T, hd)
    k: torch.Tensor  # (L, nh, T, hd)
    v: torch.Tensor  # (L, nh, T, hd)
    dots: torch.Tensor  # (L, nh, T, T) q_i · k_j, before the division by sqrt(d_k)
    probs: torch.Tensor  # (L, nh, T, T) the model's own attention probabilities (output_attentions)
    scale: float  # 1 / sqrt(d_k)

    def recomputed_probs(self) -> torch.Tensor:
        """softmax(q·k / sqrt(d_k) + M) from the parts above: equals `probs` when the parts are the model's."""
        return (self.dots * self.scale + self.mask_bias).softmax(dim=-1)  # (L, nh, T, T)

    def outputs(self) -> torch.Tensor:
        """The weighted sums of the values, sum_j p_ij v_j, one per query token: (L, nh, T, hd)."""
        return self.probs @ self.v


@torch.inference_mode()
def attention_detail(model: BertModel, tokenizer: BertTokenizer, text: str, text_pair: str | None = None,
                     pad_to: int | None = None) -> AttentionDetail:
    """Run one input (padded to `pad_to` tokens, to show the padding mask at work) and collect, for every
    layer and head, what attention computed from it.

    q, k and v are recomputed by the model's own projection (`layer.attn.qkv`) on each layer's input, which
    output_hidden_states returns (hidden_states[l] is what layer l reads), split into heads as SelfAttention
    splits them. The probabilities are the model's own; tests check that softmax(q·k / sqrt(d_k) + M) of the
    recomputed parts gives them back.
    """
    enc = _encode(model, tokenizer, text, text_pair)
    T = enc["input_ids"].shape[1]
    if pad_to is not None:
        limit = min(model.config.max_position_embeddings, tokenizer.model_max_length)
        if not T <= pad_to <= limit:
            raise InspectionError(f"--pad-to {pad_to} must be between the input's length ({T} tokens) and the "
                                  f"model's limit ({limit})")
        enc = tokenizer(text, text_pair, padding="max_length", max_length=pad_to, return_tensors="pt")
    ids, types, mask = enc["input_ids"], enc["token_type_ids"], enc["attention_mask"]  # (1, T) each
    device = next(model.parameters()).device
    out = model(ids.to(device), attention_mask=mask.to(device), token_type_ids=types.to(device),
                output_hidden_states=True, output_attentions=True)
    cfg = model.config
    B, T = ids.shape
    q, k, v = [], [], []
    for layer, x in zip(model.encoder.layers, out.hidden_states):  # x: (1, T, H), the input of this layer
        qkv = layer.attn.qkv(x).view(B, T, 3, cfg.num_attention_heads, cfg.head_size)  # (1, T, 3, nh, hd)
        for parts, one in zip((q, k, v), qkv.float().permute(2, 0, 3, 1, 4).unbind(0)):  # each (1, nh, T, hd)
            parts.append(one[0].cpu())
    q, k, v = torch.stack(q), torch.stack(k), torch.stack(v)  # (L, nh, T, hd) each
    return AttentionDetail(
        tokens=tokenizer.convert_ids_to_tokens(ids[0]),
        segments=types[0].tolist(),
        attention_mask=mask[0].tolist(),
        mask_bias=attention_bias(mask, torch.float32)[0, 0, 0],  # (T,): section 7's M, in float32
        q=q, k=k, v=v,
        dots=q @ k.transpose(-2, -1),  # (L, nh, T, T)
        probs=torch.cat(out.attentions).float().cpu(),  # L x (1, nh, T, T) -> (L, nh, T, T)
        scale=1.0 / cfg.head_size ** 0.5,
    )


PAGE_TEMPLATE = Path(__file__).with_name("attention_page.html")  # the explorer's HTML and JavaScript


def _base64(t: torch.Tensor, dtype: str) -> str:
    """A tensor as base64 of its little-endian bytes, which the page reads back into a typed array."""
    import base64

    return base64.b64encode(t.contiguous().numpy().astype(dtype).tobytes()).decode("ascii")


def attention_page(details: list[tuple[str, AttentionDetail]], text: str, text_pair: str | None = None,
                   layer: int = 0, head: int = 0) -> str:
    """The attention explorer: one self-contained HTML page (model, head and arithmetic views) for one input
    and one or two models, opened at `layer` and `head`. Two models must split the text into the same tokens and
    have the same layers and heads, so that the page can show the difference head by head.

    The probabilities and the dot products q·k are embedded as float32, exactly the model's numbers; q, k and v,
    drawn as coloured strips and printed to 3 digits, as float16, which halves the page.
    """
    first = details[0][1]
    for name, d in details[1:]:
        if d.tokens != first.tokens:
            raise InspectionError(f"{name} splits the text into other tokens than {details[0][0]}: compare models "
                                  f"that share a vocabulary")
        if d.probs.shape != first.probs.shape:
            raise InspectionError(f"{name} has {d.probs.shape[0]} layers x {d.probs.shape[1]} heads and "
                                  f"{details[0][0]} {first.probs.shape[0]} x {first.probs.shape[1]}: the page "
                                  f"compares models of the same shape, head by head")
    for name, value, n in (("layer", layer, first.probs.shape[0]), ("head", head, first.probs.shape[1])):
        if not 0 <= value < n:
            raise InspectionError(f"--{name} {value} does not exist: the model has {n} {name}s, numbered 0 to {n - 1}")
    data = {
        "text": text,
        "start": {"layer": layer, "head": head},
        "pair": text_pair,
        "tokens": first.tokens,
        "segments": first.segments,
        "mask": first.attention_mask,
        "mask_bias": torch.finfo(torch.float32).min,
        "models": [
            {
                "name": name,
                "layers": d.probs.shape[0],
                "heads": d.probs.shape[1],
                "hd": d.q.shape[-1],
                "probs": _base64(d.probs, "<f4"),
                "dots": _base64(d.dots, "<f4"),
                **{part: _base64(getattr(d, part), "<f2") for part in ("q", "k", "v")},
            }
            for name, d in details
        ],
    }
    # "</" inside a <script> block could end it early (a token "</script>"): JSON allows the escape "<\/".
    embedded = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    return PAGE_TEMPLATE.read_text(encoding="utf-8").replace("__DATA__", embedded)
