"""Checkpoints: the one table between transformers' (and the TF original's) tensor names and minibert's,
loading with a shape check on every tensor, and saving in a layout transformers reads back.

Files are read with safetensors; a `pytorch_model.bin` only with `torch.load(weights_only=True)`, which
refuses to run pickled code. Nothing else is ever unpickled.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .config import BertConfig, ConfigError
from .hub import HubError, atomic_write, is_hub_id, resolve, resolve_first

log = logging.getLogger("minibert")

WEIGHTS = "model.safetensors"
SHARDED_INDEX = "model.safetensors.index.json"
LEGACY_WEIGHTS = "pytorch_model.bin"
CONFIG = "config.json"


class CheckpointError(ValueError):
    """Weights that do not fit the model: every missing, unexpected and mis-shaped tensor is named."""


class DamagedFileError(CheckpointError):
    """A weights file that cannot be parsed: truncated, or overwritten with something else."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path} is truncated or corrupted ({reason}); delete it and download or save it again")
        self.path, self.reason = path, reason


# ---- The key table ---------------------------------------------------------------------------------
# (transformers name, minibert name, part). BERT's query, key and value are three matrices in the
# checkpoint; minibert stacks them into one `qkv` projection, and `part` says which third a tensor fills.

EMBEDDING_KEYS = [
    ("embeddings.word_embeddings.weight", "embeddings.tok.weight", None),
    ("embeddings.token_type_embeddings.weight", "embeddings.seg.weight", None),
    ("embeddings.position_embeddings.weight", "embeddings.pos.weight", None),
    ("embeddings.LayerNorm.weight", "embeddings.norm.weight", None),
    ("embeddings.LayerNorm.bias", "embeddings.norm.bias", None),
]

LAYER_KEYS = [  # under "encoder.layer.{i}." and "encoder.layers.{i}."
    ("attention.self.query.weight", "attn.qkv.weight", 0),
    ("attention.self.query.bias", "attn.qkv.bias", 0),
    ("attention.self.key.weight", "attn.qkv.weight", 1),
    ("attention.self.key.bias", "attn.qkv.bias", 1),
    ("attention.self.value.weight", "attn.qkv.weight", 2),
    ("attention.self.value.bias", "attn.qkv.bias", 2),
    ("attention.output.dense.weight", "attn.out.weight", None),
    ("attention.output.dense.bias", "attn.out.bias", None),
    ("attention.output.LayerNorm.weight", "attn_norm.weight", None),
    ("attention.output.LayerNorm.bias", "attn_norm.bias", None),
    ("intermediate.dense.weight", "ffn.up.weight", None),
    ("intermediate.dense.bias", "ffn.up.bias", None),
    ("output.dense.weight", "ffn.down.weight", None),
    ("output.dense.bias", "ffn.down.bias", None),
    ("output.LayerNorm.weight", "ffn_norm.weight", None),
    ("output.LayerNorm.bias", "ffn_norm.bias", None),
]

POOLER_KEYS = [
    ("pooler.dense.weight", "pooler.dense.weight", None),
    ("pooler.dense.bias", "pooler.dense.bias", None),
]

HEAD_KEYS = {  # task heads sit beside `bert.` in both namings
    "mlm": [
        ("cls.predictions.transform.dense.weight", "mlm.transform.weight", None),
        ("cls.predictions.transform.dense.bias", "mlm.transform.bias", None),
        ("cls.predictions.transform.LayerNorm.weight", "mlm.norm.weight", None),
        ("cls.predictions.transform.LayerNorm.bias", "mlm.norm.bias", None),
        ("cls.predictions.bias", "mlm.bias", None),
        # cls.predictions.decoder.{weight,bias} are the word embeddings and cls.predictions.bias (tied).
    ],
    "nsp": [
        ("cls.seq_relationship.weight", "nsp.weight", None),
        ("cls.seq_relationship.bias", "nsp.bias", None),
    ],
    "classifier": [
        ("classifier.weight", "classifier.weight", None),
        ("classifier.bias", "classifier.bias", None),
    ],
    "qa": [
        ("qa_outputs.weight", "qa_outputs.weight", None),
        ("qa_outputs.bias", "qa_outputs.bias", None),
    ],
}

# Present in many files, never needed: a constant buffer, and the tied MLM decoder.
ALWAYS_IGNORED = ("embeddings.position_ids", "cls.predictions.decoder.weight", "cls.predictions.decoder.bias")


def key_table(model) -> list[tuple[str, str, int | None]]:
    """Every (HF name, minibert name, part) of `model`, with the `bert.` prefixes of a model with heads."""
    config = model.config
    backbone = list(EMBEDDING_KEYS)
    for i in range(config.num_hidden_layers):
        backbone += [(f"encoder.layer.{i}.{hf}", f"encoder.layers.{i}.{mb}", part) for hf, mb, part in LAYER_KEYS]
    encoder = getattr(model, "bert", model)
    if encoder.pooler is not None:
        backbone += POOLER_KEYS
    if encoder is model:  # a bare BertModel
        return backbone
    table = [(f"bert.{hf}", f"bert.{mb}", part) for hf, mb, part in backbone]
    for head in model.heads:
        table += HEAD_KEYS[head]
    return table


def known_hf_key(key: str) -> bool:
    """Is `key` a tensor of some BERT model (any head), as opposed to something foreign?"""
    key = key.removeprefix("bert.")
    if key.startswith(("embeddings.", "encoder.layer.", "pooler.")):
        return True
    return any(key == hf for keys in HEAD_KEYS.values() for hf, _, _ in keys)


# ---- Loading -----------------------------------------------------------------------------------------


@dataclass
class LoadReport:
    """What happened to every tensor: loaded, initialised because absent, or present but unused."""

    loaded: list[str] = field(default_factory=list)  # HF names copied into the model
    initialized: list[str] = field(default_factory=list)  # head tensors absent from the file: freshly initialised
    ignored: list[str] = field(default_factory=list)  # tensors of other heads, tied or constant buffers
    missing: list[str] = field(default_factory=list)  # encoder tensors absent from the file (an error)
    unexpected: list[str] = field(default_factory=list)  # tensors no BERT model of this config has (an error)
    mismatched: list[str] = field(default_factory=list)  # "name: file (a, b) vs model (c, d)" (an error)

    def raise_on_errors(self, source) -> None:
        problems = []
        if self.missing:
            problems.append(f"missing tensors ({len(self.missing)}): {', '.join(self.missing)}")
        if self.unexpected:
            problems.append(f"unexpected tensors ({len(self.unexpected)}): {', '.join(self.unexpected)}")
        if self.mismatched:
            problems.append(f"wrong shapes ({len(self.mismatched)}): {'; '.join(self.mismatched)}")
        if self.mismatched and not self.missing and not self.unexpected and all(m.startswith("classifier.") for m in self.mismatched):
            bias = next((m for m in self.mismatched if m.startswith("classifier.bias")), self.mismatched[0])
            raise CheckpointError(f"the classifier in {source} was fine-tuned for another number of classes ({bias}); "
                                  f"start from the pretrained model it was fine-tuned from, or use it with as many classes")
        if problems:
            raise CheckpointError(
                f"the weights in {source} do not fit the model built from its config:\n  "
                + "\n  ".join(problems)
                + "\nThe file is incomplete or belongs to another model, or config.json (num_hidden_layers, "
                "hidden_size, vocab_size, ...) does not describe it. Re-download the checkpoint, or pass the "
                "config that matches the weights."
            )


def normalize_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Old TF-converted files call LayerNorm's parameters gamma and beta."""
    out = {}
    for key, tensor in state.items():
        if key.endswith("LayerNorm.gamma"):
            key = key[: -len("gamma")] + "weight"
        elif key.endswith("LayerNorm.beta"):
            key = key[: -len("beta")] + "bias"
        out[key] = tensor
    return out


def load_state_dict(model, state: dict[str, torch.Tensor], source="the state dict") -> LoadReport:
    """Copy an HF-named state dict into `model` through the key table; raise CheckpointError on any misfit."""
    state = normalize_keys(state)
    with_heads = hasattr(model, "bert")
    has_prefix = any(k.startswith("bert.") for k in state)
    if with_heads and not has_prefix:  # a bare BertModel's file under a model with heads
        state = {(f"bert.{k}" if k.startswith(("embeddings.", "encoder.", "pooler.")) else k): v for k, v in state.items()}
    if not with_heads and has_prefix:  # a file with heads under a bare BertModel: keep the encoder
        state = {k.removeprefix("bert."): v for k, v in state.items()}

    report = LoadReport()
    params = dict(model.named_parameters())
    head_keys = {hf for head in model.heads for hf, _, _ in HEAD_KEYS[head]}
    used = set()
    copies = []  # (model tensor, file tensor): applied only once every tensor is known to fit
    for hf, mb, part in key_table(model):
        target = params[mb]
        if part is not None:  # one third of the stacked qkv projection
            target = target.chunk(3, dim=0)[part]
        if hf not in state:
            (report.initialized if hf in head_keys else report.missing).append(hf)
            continue
        used.add(hf)
        tensor = state[hf]
        if tensor.shape != target.shape:
            report.mismatched.append(f"{hf}: file {tuple(tensor.shape)} vs model {tuple(target.shape)}")
            continue
        copies.append((target, tensor))
        report.loaded.append(hf)
    for key in sorted(set(state) - used):
        base = key.removeprefix("bert.")
        if base in ALWAYS_IGNORED or (known_hf_key(key) and not _is_encoder_key(base, model)):
            report.ignored.append(key)
        else:
            report.unexpected.append(key)
    report.raise_on_errors(source)  # before any copy: a checkpoint that does not fit leaves the model untouched
    check_finite({hf: state[hf] for hf in report.loaded}, source)
    with torch.no_grad():
        for target, tensor in copies:
            target.copy_(tensor)
    return report


def check_finite(state: dict[str, torch.Tensor], source) -> None:
    """Refuse weights holding NaN or infinity: such a model only ever computes NaN, and a user would
    otherwise meet it as a NaN loss or a meaningless prediction far from its cause."""
    bad = [k for k, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        shown = ", ".join(bad[:8]) + (f", ... ({len(bad) - 8} more)" if len(bad) > 8 else "")
        raise CheckpointError(
            f"{source} holds NaN or infinite values in {len(bad)} tensor{'s' * (len(bad) > 1)}: {shown}; the "
            f"checkpoint is damaged (a training run that diverged saves such weights): load an earlier checkpoint"
        )


def _is_encoder_key(key: str, model) -> bool:
    """A key of the encoder itself (not a head) that this config should have used: its absence from the
    table means the file has more layers, or a pooler where the model has none."""
    if key.startswith("pooler."):
        return getattr(model, "bert", model).pooler is not None
    return key.startswith(("embeddings.", "encoder.layer."))


def shard_names(index_path: Path) -> list[str]:
    """The files a model.safetensors.index.json spreads the weights over."""
    try:
        return sorted(set(json.loads(Path(index_path).read_text())["weight_map"].values()))
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{index_path} is not a valid shard index ({type(e).__name__}: {e}); download it again") from e


def read_weights(files: dict[str, Path]) -> tuple[dict[str, torch.Tensor], Path]:
    """Read the tensors of a checkpoint directory: model.safetensors, its shards, or pytorch_model.bin."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if WEIGHTS in files:
        paths = [files[WEIGHTS]]
    elif SHARDED_INDEX in files:
        paths = [files[name] for name in shard_names(files[SHARDED_INDEX])]
    elif LEGACY_WEIGHTS in files:
        path = files[LEGACY_WEIGHTS]
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise CheckpointError(
                f"{path} cannot be read as plain tensors ({type(e).__name__}: {e}). minibert only loads "
                f".bin files that torch.load(weights_only=True) accepts; convert it to model.safetensors"
            ) from e
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]  # a training checkpoint that wraps the weights
        bad = [repr(k) for k, v in state.items() if not isinstance(v, torch.Tensor)] if isinstance(state, dict) else []
        if not isinstance(state, dict) or bad:
            what = f"non-tensor entries {', '.join(bad[:5])}" if bad else f"a {type(state).__name__}"
            raise CheckpointError(
                f"{path} holds {what}, not a state dict of name -> tensor; save the weights with "
                f"torch.save(model.state_dict(), path), or as {WEIGHTS}"
            )
        return dict(state), path
    else:
        raise CheckpointError(f"no {WEIGHTS} (or {LEGACY_WEIGHTS}) found among {sorted(map(str, files.values()))}")
    state = {}
    for path in paths:
        try:
            state.update(load_file(path))
        except (SafetensorError, OSError) as e:
            raise DamagedFileError(path, str(e)) from e
    return state, paths[0]


def with_overrides(config: BertConfig, overrides: dict, source) -> BertConfig:
    """A copy of `config` with from_pretrained's keyword arguments applied and validated."""
    fields = {f.name for f in dataclasses.fields(BertConfig)} - {"extra"}
    for key in overrides:
        if key not in fields:
            raise TypeError(f"from_pretrained() got an unexpected keyword argument {key!r} (not a BertConfig field)")
    if "num_labels" in overrides and "id2label" not in overrides and config.id2label is not None \
            and len(config.id2label) != overrides["num_labels"]:
        overrides = {**overrides, "id2label": None}  # the file's label names belong to another task
    try:
        return dataclasses.replace(config, **overrides)  # a validated copy
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def load_pretrained(cls, name_or_path, *, dtype=None, cache_dir=None, revision=None, local_files_only=False,
                    force_download=False, config=None, **overrides):
    """The body of `from_pretrained`: find the files, build the config, build the model, load the weights."""
    where = {"cache_dir": cache_dir, "revision": revision, "local_files_only": local_files_only, "force_download": force_download}
    files = resolve(name_or_path, [CONFIG, "vocab.txt"], **where)
    if config is None and CONFIG not in files:  # said before any weights are downloaded
        raise HubError(f"{name_or_path} has no {CONFIG}; a checkpoint directory needs config.json and {WEIGHTS}")
    # Only the first weights file that exists is downloaded: the real bert-base-uncased has two of 440 MB.
    files |= resolve_first(name_or_path, [WEIGHTS, SHARDED_INDEX, LEGACY_WEIGHTS], **where)
    if SHARDED_INDEX in files:  # fetch the shards the index names
        shards = shard_names(files[SHARDED_INDEX])
        found = resolve(name_or_path, shards, **where)
        missing = [n for n in shards if n not in found]
        if missing:
            raise CheckpointError(f"{name_or_path}: the shard index names {', '.join(missing)}, which cannot be found")
        files |= found
    if config is None:
        config = BertConfig.from_json_file(files[CONFIG])
    config = with_overrides(config, overrides, source=name_or_path)

    try:
        state, source = read_weights(files)
    except DamagedFileError as e:
        if is_hub_id(name_or_path):
            raise damaged_download(name_or_path, e, force_download) from e
        raise
    model = cls(config)
    report = load_state_dict(model, state, source)
    if report.initialized:
        log.warning(
            "%s: %d tensors of %s are not in %s and were initialised randomly (train them before use): %s",
            cls.__name__, len(report.initialized), cls.__name__, source, ", ".join(report.initialized),
        )
    if dtype is not None:
        model.to(dtype)
    model.name_or_path = str(name_or_path)
    model.vocab_file = files.get("vocab.txt")
    return model.eval(), report  # like transformers: ready for inference; call .train() to fine-tune


def damaged_download(repo_id: str, error: DamagedFileError, force_download: bool) -> HubError:
    """The advice for a damaged file in the Hub cache. Deleting the file the error names does not help: it is
    a link into the cache, and the next load links the same damaged blob again."""
    name = Path(error.path).name
    if force_download:  # it was just downloaded afresh: the copy on the Hub itself is damaged
        return HubError(
            f"{name} of {repo_id!r}, downloaded afresh from the Hub, is truncated or corrupted ({error.reason})",
            "the repository's file is damaged: tell its authors, or pass a local directory that holds a good copy",
            "the repository's file is damaged: tell its authors, or pass a local directory with {flag} DIR",
        )
    return HubError(
        f"the cached download of {name} of {repo_id!r} ({error.path}) is truncated or corrupted ({error.reason})",
        f"download it again with from_pretrained({repo_id!r}, force_download=True)",
        f"remove the cached copy with `hf cache rm model/{repo_id}` and run again",
    )


# ---- Saving ------------------------------------------------------------------------------------------


def to_hf_state_dict(model, tensors: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """minibert's parameters (or any dict keyed like them, e.g. gradients) under transformers' names."""
    if tensors is None:
        tensors = {k: p.detach() for k, p in model.named_parameters()}
    out = {}
    for hf, mb, part in key_table(model):
        t = tensors[mb]
        out[hf] = (t.chunk(3, dim=0)[part] if part is not None else t).contiguous()
    return out


def save_pretrained(model, save_directory, tokenizer=None) -> None:
    """Write an HF-compatible directory: config.json, model.safetensors (HF names), vocab.txt.

    Each file is written to a temporary name and renamed, so an interruption never leaves a half-written file.
    """
    from safetensors.torch import save_file

    out = Path(save_directory)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.cpu().clone() for k, v in to_hf_state_dict(model).items()}  # own storage: safetensors refuses views
    with atomic_write(out / WEIGHTS) as tmp:
        save_file(state, tmp, metadata={"format": "pt"})
    config = model.config.to_dict()
    config["architectures"] = [model.hf_architecture]
    # transformers 5 reads `dtype` (and prefers it to a stale one kept in `extra`), older versions `torch_dtype`
    config["dtype"] = config["torch_dtype"] = str(next(model.parameters()).dtype).removeprefix("torch.")
    with atomic_write(out / CONFIG) as tmp:
        Path(tmp).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    elif getattr(model, "vocab_file", None) and Path(model.vocab_file).resolve() != (out / "vocab.txt").resolve():
        with atomic_write(out / "vocab.txt") as tmp:
            Path(tmp).write_bytes(Path(model.vocab_file).read_bytes())
