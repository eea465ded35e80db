"""BERT, the encoder of Devlin et al. 2018 ("BERT: Pre-training of Deep Bidirectional Transformers for
Language Understanding"), read top to bottom:

    token ids ──> Embeddings (token + segment + position, LayerNorm)          (B, T) -> (B, T, H)
              ──> Encoder: L x EncoderLayer                                   (B, T, H) -> (B, T, H)
                    x = LayerNorm(x + SelfAttention(x))     multi-head scaled dot-product attention
                    x = LayerNorm(x + FeedForward(x))       Linear(H, 4H) -> GELU -> Linear(4H, H)
              ──> Pooler: tanh(Linear(x[:, 0]))  the [CLS] vector for sentence-level tasks  (B, H)

Shapes: B batch, T tokens, H hidden size, nh heads, hd = H / nh per head, V vocabulary.
The task heads (masked LM, next sentence, classification, ...) live in heads.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoint  # reading and writing HF files: it knows the key table, not this module
from .config import BertConfig


class InputError(ValueError):
    """Inputs the model cannot embed: ids outside the vocabulary, sequences longer than the position table."""


def activation(name: str):
    # "gelu" is the exact erf form that BERT was trained with; the tanh approximation is a different function.
    return {
        "gelu": F.gelu,
        "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
        "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
        "relu": F.relu,
    }[name]


class Embeddings(nn.Module):
    """Section 3, figure 2 of the paper: a token's input vector is the sum of three learned embeddings."""

    def __init__(self, config: BertConfig):
        super().__init__()
        H = config.hidden_size
        self.tok = nn.Embedding(config.vocab_size, H, padding_idx=config.pad_token_id)  # which WordPiece
        self.seg = nn.Embedding(config.type_vocab_size, H)  # sentence A or sentence B
        self.pos = nn.Embedding(config.max_position_embeddings, H)  # where in the sequence (learned, not sinusoids)
        self.norm = nn.LayerNorm(H, eps=config.layer_norm_eps)
        self.drop = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        T = input_ids.shape[1]
        positions = torch.arange(T, device=input_ids.device)  # (T,) broadcast over the batch
        x = self.tok(input_ids) + self.seg(token_type_ids)  # (B, T, H)
        x = x + self.pos(positions)  # (B, T, H)
        return self.drop(self.norm(x))


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product attention (Vaswani et al. 2017), followed by its output projection.

    Two paths compute the same function. The written-out one, `softmax(Q K^T / sqrt(hd) + mask) V`, is what
    to read, and runs whenever the attention probabilities are asked for. The fused one calls
    `F.scaled_dot_product_attention`, which never materialises the (T, T) matrix and is much faster.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        H = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_size = config.head_size
        self.scale = 1.0 / math.sqrt(self.head_size)  # keeps the logits' variance ~1 whatever hd is
        self.qkv = nn.Linear(H, 3 * H)  # W_Q, W_K, W_V stacked: one matrix multiply instead of three
        self.out = nn.Linear(H, H)  # W_O: mixes the heads back together
        self.dropout_p = config.attention_probs_dropout_prob  # a probability (the modules elsewhere are nn.Dropout)
        self.fused = config.attn_implementation == "sdpa"

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, need_weights: bool = False, cls_only: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """
        Args:
            x: (B, T, H) token vectors.
            mask: (B, 1, 1, T) additive: 0 for real tokens, a huge negative number for padding keys; or None.
            need_weights: also return the attention probabilities (forces the written-out path).
            cls_only: attend from [CLS] (position 0) alone: one query against all T keys and values.
        Returns:
            (B, T, H) attention output ((B, 1, H) with cls_only), and (B, nh, T, T) probabilities or None.
        """
        B, T, H = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.num_heads, self.head_size)  # (B, T, 3, nh, hd)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, nh, T, hd)
        if cls_only:
            q = q[:, :, :1]  # (B, nh, 1, hd): the query of [CLS]; keys and values stay (B, nh, T, hd)
        p_drop = self.dropout_p if self.training else 0.0

        if self.fused and not need_weights:
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p_drop, scale=self.scale)
            probs = None
        else:
            scores = (q @ k.transpose(-2, -1)) * self.scale  # (B, nh, T, T): how much query i looks at key j
            if mask is not None:
                scores = scores + mask  # padding keys get ~-inf, hence probability 0
            probs = scores.softmax(dim=-1)  # (B, nh, T, T), each row sums to 1
            probs = F.dropout(probs, p_drop, self.training)
            ctx = probs @ v  # (B, nh, T, hd): the weighted average of the values

        ctx = ctx.transpose(1, 2).reshape(B, -1, H)  # (B, T, H): heads side by side again
        return self.out(ctx), probs


class FeedForward(nn.Module):
    """The position-wise feed-forward network: the same two-layer MLP applied to every token."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.up = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = activation(config.hidden_act)
        self.down = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.up(x)))  # (B, T, H) -> (B, T, 4H) -> (B, T, H)


class EncoderLayer(nn.Module):
    """One Transformer block, post-LN as in the original: sublayer, dropout, residual add, then LayerNorm."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attn = SelfAttention(config)
        self.attn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.ffn = FeedForward(config)
        self.ffn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.drop = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, need_weights: bool = False, cls_only: bool = False):
        """cls_only: compute the output of [CLS] alone, (B, 1, H): see Encoder."""
        a, probs = self.attn(x, mask, need_weights, cls_only)
        x = x[:, :1] if cls_only else x  # the rows that attention computed: (B, 1, H) for [CLS] alone
        x = self.attn_norm(x + self.drop(a))  # (B, T, H)
        x = self.ffn_norm(x + self.drop(self.ffn(x)))  # (B, T, H)
        return x, probs


class Encoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, x, mask, output_hidden_states=False, output_attentions=False, cls_only=False):
        """cls_only: the last layer computes the [CLS] row alone and x comes out (B, 1, H). A classifier reads
        nothing else from the last layer, and every other row there costs as much as [CLS]: this saves about
        1/L of the encoder's work. (Earlier layers must compute every token: [CLS] attends to all of them.)"""
        hidden_states = [x] if output_hidden_states else None  # the embeddings come first, as in transformers
        attentions = [] if output_attentions else None
        for i, layer in enumerate(self.layers):
            last = i == len(self.layers) - 1
            x, probs = layer(x, mask, need_weights=output_attentions, cls_only=cls_only and last)
            if output_hidden_states:
                hidden_states.append(x)
            if output_attentions:
                attentions.append(probs)
        return x, hidden_states, attentions


class Pooler(nn.Module):
    """Section 3: the final hidden vector of [CLS] (position 0), through dense + tanh, represents the whole input."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(x[:, 0]))  # (B, T, H) -> (B, H)


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype attention scores will have: the autocast dtype when autocast is on, else x's own."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def drop_all_ones_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """An attention mask that pads nothing changes nothing, so drop it: None lets attention take its
    fastest, mask-free kernel. [[1, 1, 1], [1, 1, 1]] -> None; [[1, 1, 1], [1, 1, 0]] -> unchanged."""
    if attention_mask is None or torch.compiler.is_compiling():
        return attention_mask  # under torch.compile a data-dependent branch would break the graph
    pads_nothing = bool((attention_mask != 0).all())  # cost: a host sync (the CPU waits for the GPU)
    return None if pads_nothing else attention_mask


def attention_bias(attention_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """(B, T) with 1 = token, 0 = padding  ->  (B, 1, 1, T) additive bias over the keys.

    The most negative finite number of the compute dtype (not -inf) keeps a row of pure padding finite:
    adding it rounds the scores away, so they are all equal, softmax is uniform, and no NaN appears in
    float32 or bfloat16.
    """
    if attention_mask is None:
        return None
    bias = torch.zeros(attention_mask.shape, dtype=dtype, device=attention_mask.device)
    bias = bias.masked_fill(attention_mask == 0, torch.finfo(dtype).min)
    return bias[:, None, None, :]  # (B, 1, 1, T)


@dataclass
class BertOutput:
    last_hidden_state: torch.Tensor  # (B, T, H); (B, 1, H) with cls_only
    pooler_output: torch.Tensor | None = None  # (B, H)
    hidden_states: tuple[torch.Tensor, ...] | None = None  # L + 1 tensors of (B, T, H), embeddings first
    attentions: tuple[torch.Tensor, ...] | None = None  # L tensors of (B, nh, T, T)


class BertPreTrainedModel(nn.Module):
    """What every minibert model shares: its config, weight initialisation, and checkpoint I/O."""

    config: BertConfig
    hf_architecture: str = "BertModel"  # the transformers class that reads what save_pretrained writes
    heads: tuple[str, ...] = ()  # task heads this class carries (names of groups in checkpoint.HEAD_KEYS)

    def init_weights(self, *modules: nn.Module) -> None:
        """BERT's initialisation of `modules` (default: all): N(0, 0.02) weights, zero biases,
        LayerNorm = identity, [PAD] embedding row zero."""
        std = self.config.initializer_range
        for m in (m for root in modules or (self,) for m in root.modules()):
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=std)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=std)
                if m.padding_idx is not None:
                    m.weight.data[m.padding_idx].zero_()
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @classmethod
    def from_pretrained(cls, name_or_path, *, output_loading_info: bool = False, **kwargs):
        """Load a pretrained checkpoint: a Hub id ("bert-base-uncased") or a local directory in the HF layout.

        Keyword arguments that are BertConfig fields (num_labels=3, attn_implementation="math", ...) override
        config.json; `dtype`, `cache_dir`, `revision`, `local_files_only` and `force_download` are also accepted.
        With output_loading_info=True, returns (model, report) where the report names every key that was
        initialised instead of loaded and every tensor of the file that this class does not use.
        """
        model, report = checkpoint.load_pretrained(cls, name_or_path, **kwargs)
        return (model, report) if output_loading_info else model

    def save_pretrained(self, save_directory, tokenizer=None) -> None:
        """Write config.json + model.safetensors with transformers' key names (and vocab.txt when known)."""
        checkpoint.save_pretrained(self, save_directory, tokenizer=tokenizer)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class BertModel(BertPreTrainedModel):
    """The bare encoder: token ids in, one contextual vector per token (and a pooled [CLS] vector) out."""

    def __init__(self, config: BertConfig | None = None, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config = config or BertConfig()
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.pooler = Pooler(config) if add_pooling_layer else None
        self.init_weights()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        cls_only: bool = False,
    ) -> BertOutput:
        """
        Args:
            input_ids: (B, T) WordPiece ids, normally "[CLS] sentence A [SEP] sentence B [SEP]" then [PAD]s.
            attention_mask: (B, T), 1 for tokens and 0 for padding; None means no padding.
            token_type_ids: (B, T) segment ids, 0 for sentence A and 1 for sentence B; None means all 0.
            output_hidden_states: also return the embeddings and every layer's output.
            output_attentions: also return every layer's attention probabilities (uses the written-out path).
            cls_only: compute the last layer for [CLS] alone (last_hidden_state is then (B, 1, H)): all that a
                sentence classifier reads. Not with output_hidden_states or output_attentions, which show every token.
        """
        if cls_only and (output_hidden_states or output_attentions):
            raise ValueError("cls_only computes the last layer for [CLS] alone; output_hidden_states and output_attentions "
                             "need every token: leave cls_only off to get them")
        self.validate_inputs(input_ids, attention_mask, token_type_ids)
        attention_mask = drop_all_ones_mask(attention_mask)  # nothing padded: the fastest, mask-free kernel
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)  # one sentence: every token is in segment A

        x = self.embeddings(input_ids, token_type_ids)  # (B, T, H)
        mask = attention_bias(attention_mask, compute_dtype(x))  # (B, 1, 1, T) or None
        x, hidden_states, attentions = self.encoder(x, mask, output_hidden_states, output_attentions, cls_only)  # (B, T or 1, H)
        pooled = self.pooler(x) if self.pooler is not None else None  # (B, H)

        return BertOutput(
            last_hidden_state=x,
            pooler_output=pooled,
            hidden_states=tuple(hidden_states) if hidden_states is not None else None,
            attentions=tuple(attentions) if attentions is not None else None,
        )

    def validate_inputs(self, input_ids, attention_mask, token_type_ids) -> None:
        """Raise InputError, with the fix, for inputs that would otherwise fail deep inside an embedding lookup
        (or as a CUDA device-side assert that kills the process)."""
        self.check_shapes(input_ids, attention_mask, token_type_ids)  # free: shapes are known on the CPU
        if not torch.compiler.is_compiling():  # a data-dependent check would break the graph
            self.check_ids(input_ids, token_type_ids)  # reads the values: costs a host sync

    def check_shapes(self, input_ids, attention_mask, token_type_ids) -> None:
        c = self.config
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
            got = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
            raise InputError(f"input_ids must be a (batch, seq_len) tensor of token ids, got {got}")
        if input_ids.dtype not in (torch.int64, torch.int32):
            raise InputError(f"input_ids must be integer token ids, got dtype {input_ids.dtype}")
        B, T = input_ids.shape
        if T == 0:
            raise InputError(
                f"input_ids has shape {(B, T)}: no tokens; encode texts with the tokenizer, e.g. tokenizer(text), "
                f"which adds [CLS] and [SEP]"
            )
        if T > c.max_position_embeddings:
            raise InputError(
                f"sequence length {T} is longer than the position table ({c.max_position_embeddings}); "
                f"truncate the input, e.g. tokenizer(text, truncation=True, max_length={c.max_position_embeddings})"
            )
        for name, t in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
            if t is not None and tuple(t.shape) != (B, T):
                raise InputError(f"{name} has shape {tuple(t.shape)} but input_ids has shape {(B, T)}")

    def check_ids(self, input_ids, token_type_ids) -> None:
        c = self.config
        bad_ids = (input_ids < 0) | (input_ids >= c.vocab_size)  # (B, T)
        bad_types = torch.zeros((), dtype=torch.bool, device=input_ids.device)
        if token_type_ids is not None:
            bad_types = ((token_type_ids < 0) | (token_type_ids >= c.type_vocab_size)).any()
        # Cost: reading the answers is a host sync (the CPU waits for the GPU); one sync pays for both checks.
        any_bad_id, any_bad_type = torch.stack([bad_ids.any(), bad_types]).tolist()
        if any_bad_type:
            raise InputError(f"token_type_ids must be in 0..{c.type_vocab_size - 1} (segment A / B)")
        if any_bad_id:
            bad = input_ids[bad_ids].unique()[:5].tolist()
            raise InputError(
                f"token ids {bad} are outside the vocabulary (0..{c.vocab_size - 1}); the tokenizer's "
                f"vocabulary does not match this model's vocab_size"
            )
