"""BertConfig: every size and rate of the model in one dataclass (defaults = bert-base-uncased)."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")
PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")
ATTENTION = ("sdpa", "math")


class ConfigError(ValueError):
    """A configuration that cannot describe a BERT model."""


@dataclass
class BertConfig:
    vocab_size: int = 30522  # WordPiece vocabulary size
    hidden_size: int = 768  # H: width of every token vector
    num_hidden_layers: int = 12  # L: encoder layers
    num_attention_heads: int = 12  # A: heads per layer; head size = H / A
    intermediate_size: int = 3072  # feed-forward inner width (4H in the paper)
    hidden_act: str = "gelu"  # feed-forward non-linearity; "gelu" is the exact erf form
    hidden_dropout_prob: float = 0.1  # dropout on embeddings and on each residual branch
    attention_probs_dropout_prob: float = 0.1  # dropout on the attention probabilities
    max_position_embeddings: int = 512  # longest sequence the position table covers
    type_vocab_size: int = 2  # segment ids: sentence A = 0, sentence B = 1
    layer_norm_eps: float = 1e-12  # LayerNorm epsilon (as in the TF original)
    initializer_range: float = 0.02  # std of the normal init for weights
    pad_token_id: int = 0  # id of [PAD]; its embedding row starts at zero
    num_labels: int = 2  # outputs of the classification heads
    classifier_dropout: float | None = None  # dropout before classifiers; None = hidden_dropout_prob
    problem_type: str | None = None  # sequence classification loss; None = from num_labels and label dtype
    id2label: dict[int, str] | None = None  # label names, kept for HF round trips
    attn_implementation: str = "sdpa"  # "sdpa" (fused kernel) or "math" (written out); not saved
    extra: dict = field(default_factory=dict, repr=False)  # unknown HF keys, written back unchanged

    def __post_init__(self):
        self.validate()

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def validate(self) -> None:
        """Raise ConfigError naming the field and the fix for anything that cannot build a model."""
        for name in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
            "num_labels",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads}): each head gets hidden_size / num_attention_heads dimensions"
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
            value = getattr(self, name)
            if value is None and name == "classifier_dropout":
                continue
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be a probability in [0, 1), got {value!r}")
        if not isinstance(self.layer_norm_eps, (int, float)) or not self.layer_norm_eps > 0:
            raise ConfigError(f"layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")
        if self.hidden_act not in ACTIVATIONS:
            raise ConfigError(f"hidden_act {self.hidden_act!r} is not supported; use one of {ACTIVATIONS}")
        if self.problem_type is not None and self.problem_type not in PROBLEM_TYPES:
            raise ConfigError(f"problem_type {self.problem_type!r} is not one of {PROBLEM_TYPES}")
        if self.attn_implementation not in ATTENTION:
            raise ConfigError(f"attn_implementation {self.attn_implementation!r} is not one of {ATTENTION}")
        if not isinstance(self.pad_token_id, int) or not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigError(f"pad_token_id {self.pad_token_id!r} is outside the vocabulary (0..{self.vocab_size - 1})")
        if self.id2label is not None and len(self.id2label) != self.num_labels:
            raise ConfigError(
                f"id2label names {len(self.id2label)} labels but num_labels is {self.num_labels}; "
                f"make them agree, or drop id2label"
            )

    # ---- Hugging Face config.json ----------------------------------------------------------------

    @classmethod
    def from_dict(cls, d: dict) -> "BertConfig":
        """Build from the keys of an HF BERT config.json; keys minibert does not use are kept in `extra`."""
        if not isinstance(d, dict):
            raise ConfigError(f"a config must be a JSON object, got {type(d).__name__}")
        if d.get("model_type", "bert") != "bert":
            raise ConfigError(f"model_type is {d['model_type']!r}; minibert only builds BERT (model_type 'bert')")
        if d.get("position_embedding_type", "absolute") != "absolute":
            raise ConfigError("only absolute position embeddings are supported (position_embedding_type 'absolute')")
        if d.get("is_decoder") or d.get("add_cross_attention"):
            raise ConfigError("decoder / cross-attention BERT configs are not supported; minibert is an encoder")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra", "attn_implementation"}
        kwargs = {k: v for k, v in d.items() if k in names}
        if "id2label" in d and d["id2label"] is not None:
            try:
                kwargs["id2label"] = {int(k): v for k, v in d["id2label"].items()}
            except (AttributeError, TypeError, ValueError):
                raise ConfigError(f"id2label must map label ids to names, like {{\"0\": \"neg\"}}; got {d['id2label']!r}") from None
            kwargs.setdefault("num_labels", len(kwargs["id2label"]))
        extra = {k: v for k, v in d.items() if k not in names and k not in ("label2id",)}
        try:
            return cls(**kwargs, extra=extra)
        except TypeError as e:
            raise ConfigError(f"malformed config: {e}") from e

    def to_dict(self) -> dict:
        """The HF config.json keys (transformers.BertConfig reads them back unchanged)."""
        d = dict(self.extra)
        d.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("extra", "attn_implementation")})
        d["model_type"] = "bert"
        d["position_embedding_type"] = "absolute"
        if self.id2label is None:
            d.pop("id2label")
        else:
            d["id2label"] = {str(k): v for k, v in self.id2label.items()}
            d["label2id"] = {v: k for k, v in self.id2label.items()}
        if d.get("problem_type") is None:
            d.pop("problem_type")
        return d

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> "BertConfig":
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path} is not valid JSON ({e}); re-download it or fix the file") from e
        try:
            return cls.from_dict(d)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

    def to_json_file(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
