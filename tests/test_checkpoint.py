"""Checkpoints (issue #2): real pretrained weights load completely and match transformers; what minibert saves
transformers loads and the reverse; every legacy layout loads; every bad file, config, path or input fails
with a message that names the culprit and the remedy; BertConfig round-trips through transformers.

Small configs everywhere except where the real all-MiniLM-L6-v2 weights are the point.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from pathlib import Path

import huggingface_hub
import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

import minibert
from minibert import (
    BertConfig,
    BertForPreTraining,
    BertForSequenceClassification,
    BertModel,
    BertTokenizer,
    CheckpointError,
    ConfigError,
    HubError,
    InputError,
)
from minibert.checkpoint import load_state_dict, to_hf_state_dict

TOL = dict(atol=1e-5, rtol=1e-5)
SMALL = dict(vocab_size=120, hidden_size=48, num_hidden_layers=3, num_attention_heads=4, intermediate_size=80,
             max_position_embeddings=40)
SHARED = Path(__file__).resolve().parents[2] / "shared"
MINILM_FP16 = SHARED / "models" / "minilm-l6-h384-uncased-fp16"


# ---- helpers -----------------------------------------------------------------------------------------


def shared_model(path: Path) -> Path:
    """A model directory from ../shared (beside the checkout in CI); a missing one fails the test, never skips it."""
    if not (path / "model.safetensors").is_file():
        pytest.fail(f"{path} is missing: CI must provide ../shared/models beside the checkout (see DESIGN.md)")
    return path


def cached_bert_base() -> list:
    """bert-base-uncased from the local Hugging Face cache, when a snapshot is there (never in CI)."""
    for repo in ("bert-base-uncased", "google-bert/bert-base-uncased"):
        config = huggingface_hub.try_to_load_from_cache(repo, "config.json")
        weights = huggingface_hub.try_to_load_from_cache(repo, "model.safetensors")
        if isinstance(config, str) and isinstance(weights, str) and Path(config).parent == Path(weights).parent:
            return [pytest.param(Path(config).parent, id=repo)]
    return []


# Computed at collection time: in CI (empty cache) the real-weight tests run on MiniLM only, and nothing skips.
PRETRAINED = [pytest.param("minilm", id="all-MiniLM-L6-v2"), *cached_bert_base()]


@pytest.fixture
def pretrained_dir(request, minilm_dir) -> Path:
    return minilm_dir if request.param == "minilm" else request.param


def scramble(model: torch.nn.Module, seed: int = 0, only=lambda name: True) -> None:
    """Random values in every (selected) parameter, LayerNorm gains around 1: a tensor loaded into the wrong
    place, or not loaded at all, changes the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if only(name):
                noise = torch.randn(p.shape, generator=g) * 0.1
                p.copy_(1 + noise if ("LayerNorm.weight" in name or "norm.weight" in name) else noise)


def random_batch(vocab_size: int, lengths=(11, 5, 8), seed=0) -> dict[str, torch.Tensor]:
    """Rows of different lengths padded to the longest, with a second segment in each row."""
    g = torch.Generator().manual_seed(seed)
    B, T = len(lengths), max(lengths)
    ids = torch.randint(1, vocab_size, (B, T), generator=g)
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()
    types = (torch.arange(T)[None, :] >= torch.tensor(lengths)[:, None] // 2).long() * mask
    return dict(input_ids=ids * mask, attention_mask=mask, token_type_ids=types)


def review_batch(texts: list[str], max_length=128) -> dict[str, torch.Tensor]:
    """4 real reviews cut to different lengths, tokenized by minibert: two rows are padded, two fill max_length."""
    tok = BertTokenizer.from_pretrained("bert-base-uncased")  # the vocabulary shipped with minibert; MiniLM's is identical
    texts = [texts[0][:250], texts[1], texts[2][:80], texts[3]]
    batch = tok(texts, max_length=max_length, truncation=True, padding=True, return_tensors="pt")
    lengths = batch["attention_mask"].sum(1).tolist()
    assert len(set(lengths)) >= 3 and min(lengths) < max_length == max(lengths), lengths
    return batch


def run(model, batch) -> dict[str, torch.Tensor]:
    """Every output tensor a model returns for `batch`, by the names both libraries use."""
    with torch.no_grad():
        out = model(**batch)
    names = ("last_hidden_state", "pooler_output", "logits", "prediction_logits", "seq_relationship_logits")
    return {n: getattr(out, n) for n in names if getattr(out, n, None) is not None}


def assert_same_outputs(got: dict, want: dict, **tol) -> None:
    assert set(got) == set(want) and got, (set(got), set(want))
    for name in want:
        torch.testing.assert_close(got[name], want[name], **(tol or TOL), msg=lambda s, n=name: f"{n}: {s}")


def write_checkpoint(directory: Path, state: dict, config: BertConfig | dict, fmt: str = "safetensors") -> Path:
    """A checkpoint directory as some other tool would have left it: config.json plus the weights file."""
    directory.mkdir(parents=True, exist_ok=True)
    config = config.to_dict() if isinstance(config, BertConfig) else config
    (directory / "config.json").write_text(json.dumps(config))
    state = {k: v.detach().clone().contiguous() for k, v in state.items()}
    if fmt == "safetensors":
        save_file(state, directory / "model.safetensors")
    else:
        torch.save(state, directory / "pytorch_model.bin")
    return directory


def with_minilm_weights(directory: Path, minilm_dir: Path, **config_changes) -> Path:
    """A directory holding MiniLM's weights (linked, not copied) under an edited config.json."""
    directory.mkdir()
    config = json.loads((minilm_dir / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, **config_changes}))
    (directory / "model.safetensors").symlink_to(minilm_dir / "model.safetensors")
    return directory


def leftovers(directory: Path) -> list[str]:
    """Temporary files an interrupted or sloppy save would leave behind."""
    return [p.name for p in directory.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]


@pytest.fixture(scope="module")
def hf_pretraining():
    """A small transformers BertForPreTraining with random values in every tensor: the source of legacy files."""
    torch.manual_seed(0)
    cfg = BertConfig(**SMALL)
    hf = transformers.BertForPreTraining(transformers.BertConfig(**cfg.to_dict())).eval()
    scramble(hf, seed=1)
    return cfg, hf


# ---- real pretrained weights ---------------------------------------------------------------------------


@pytest.mark.parametrize("pretrained_dir", PRETRAINED, indirect=True)
def test_pretrained_weights_load_completely_and_match_transformers(pretrained_dir, minilm_dir, review_texts):
    model, report = BertModel.from_pretrained(pretrained_dir, output_loading_info=True)
    assert report.missing == report.unexpected == report.mismatched == []
    assert report.initialized == []
    if pretrained_dir == minilm_dir:  # MiniLM: a bare BertModel file with the legacy position_ids buffer
        assert report.ignored == ["embeddings.position_ids"]
    else:  # bert-base-uncased: a BertForPreTraining file; its heads are not part of a BertModel
        assert all(k == "embeddings.position_ids" or k.startswith("cls.") for k in report.ignored), report.ignored
    assert len(report.loaded) == len(to_hf_state_dict(model))

    reference = transformers.BertModel.from_pretrained(pretrained_dir, dtype=torch.float32).eval()
    batch = review_batch(review_texts)
    assert_same_outputs(run(model, batch), run(reference, batch))


@pytest.mark.parametrize("pretrained_dir", PRETRAINED, indirect=True)
def test_classifier_on_pretrained_backbone_initializes_exactly_the_classifier(pretrained_dir):
    clf, report = BertForSequenceClassification.from_pretrained(pretrained_dir, num_labels=3, output_loading_info=True)
    assert report.initialized == ["classifier.weight", "classifier.bias"]
    assert report.missing == report.unexpected == report.mismatched == []
    bare = BertModel.from_pretrained(pretrained_dir)
    for name, p in bare.named_parameters():
        assert torch.equal(clf.bert.get_parameter(name), p), name
    assert clf.classifier.weight.shape == (3, clf.config.hidden_size)


def test_float16_copy_loads_into_float32_and_agrees_within_float16_rounding(minilm_dir, review_texts):
    fp16_dir = shared_model(MINILM_FP16)
    assert {t.dtype for t in load_file(fp16_dir / "model.safetensors").values() if t.is_floating_point()} == {torch.float16}
    half, report = BertModel.from_pretrained(fp16_dir, output_loading_info=True)
    assert report.missing == report.unexpected == report.mismatched == report.initialized == []
    assert {p.dtype for p in half.parameters()} == {torch.float32}
    full = BertModel.from_pretrained(minilm_dir)
    for name, p in full.named_parameters():  # every weight is the float32 one rounded to float16, exactly
        assert torch.equal(half.get_parameter(name), p.half().float()), name
    batch = review_batch(review_texts)
    got, want = run(half, batch), run(full, batch)
    assert_same_outputs(got, want, atol=2e-2, rtol=1e-2)  # 11-bit mantissas through 6 layers
    assert not torch.equal(got["last_hidden_state"], want["last_hidden_state"])  # it really is a different file


def test_dtype_argument_casts_after_loading(minilm_dir):
    model = BertModel.from_pretrained(minilm_dir, dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert not model.training  # ready for inference, like transformers


# ---- round trips with transformers -------------------------------------------------------------------

ROUND_TRIP = {
    "BertForSequenceClassification": (BertForSequenceClassification, transformers.BertForSequenceClassification),
    "BertForPreTraining": (BertForPreTraining, transformers.BertForPreTraining),
}
LABELS = {0: "negative", 1: "neutral", 2: "positive"}


def minibert_model(name: str, backbone: str, minilm_dir: Path):
    mb_cls, _ = ROUND_TRIP[name]
    if backbone == "small":
        torch.manual_seed(0)
        model = mb_cls(BertConfig(**SMALL, num_labels=3, id2label=LABELS)).eval()
        scramble(model, seed=2)
    else:  # the real MiniLM encoder; the heads are new, so give them values too
        model = mb_cls.from_pretrained(minilm_dir, num_labels=3, id2label=LABELS)
        scramble(model, seed=2, only=lambda n: not n.startswith("bert."))
    return model


def transformers_model(name: str, backbone: str, minilm_dir: Path):
    _, hf_cls = ROUND_TRIP[name]
    if backbone == "small":
        torch.manual_seed(0)
        model = hf_cls(transformers.BertConfig(**SMALL, num_labels=3, id2label=LABELS)).eval()
        scramble(model, seed=3)
    else:
        model = hf_cls.from_pretrained(minilm_dir, dtype=torch.float32, num_labels=3, id2label=LABELS).eval()
        scramble(model, seed=3, only=lambda n: not n.startswith("bert."))
    return model


@pytest.mark.parametrize("backbone", ["small", "minilm"])
@pytest.mark.parametrize("name", list(ROUND_TRIP))
def test_minibert_save_then_transformers_load_gives_identical_logits(name, backbone, minilm_dir, tmp_path):
    mb = minibert_model(name, backbone, minilm_dir)
    mb.save_pretrained(tmp_path)
    hf, info = ROUND_TRIP[name][1].from_pretrained(tmp_path, dtype=torch.float32, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    assert hf.config.id2label == LABELS
    batch = random_batch(mb.config.vocab_size)
    assert_same_outputs(run(mb, batch), run(hf.eval(), batch))  # both logits of pre-training


@pytest.mark.parametrize("backbone", ["small", "minilm"])
@pytest.mark.parametrize("name", list(ROUND_TRIP))
def test_transformers_save_then_minibert_load_gives_identical_logits(name, backbone, minilm_dir, tmp_path):
    hf = transformers_model(name, backbone, minilm_dir)
    hf.save_pretrained(tmp_path)
    mb, report = ROUND_TRIP[name][0].from_pretrained(tmp_path, output_loading_info=True)
    assert report.missing == report.unexpected == report.mismatched == report.initialized == []
    assert mb.config.id2label == LABELS
    batch = random_batch(mb.config.vocab_size)
    assert_same_outputs(run(mb, batch), run(hf, batch))


def test_saved_directory_has_config_hf_keys_and_vocab(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(115)]) + "\n")
    tokenizer = BertTokenizer.from_pretrained(vocab)
    model = BertForPreTraining(BertConfig(**SMALL))
    model.save_pretrained(tmp_path / "mb", tokenizer=tokenizer)
    transformers.BertForPreTraining(transformers.BertConfig(**SMALL)).save_pretrained(tmp_path / "hf")

    saved = tmp_path / "mb"
    config = json.loads((saved / "config.json").read_text())
    assert config["architectures"] == ["BertForPreTraining"] and config["model_type"] == "bert"
    assert config["num_hidden_layers"] == 3 and config["hidden_size"] == 48
    keys = set(load_file(saved / "model.safetensors"))
    assert keys == set(load_file(tmp_path / "hf" / "model.safetensors"))  # exactly the names transformers writes
    assert not any("decoder" in k for k in keys)  # the tied decoder is the word embeddings, stored once
    assert (saved / "vocab.txt").read_text() == vocab.read_text()
    assert BertTokenizer.from_pretrained(saved).vocab == tokenizer.vocab
    assert leftovers(saved) == []


def test_saved_directory_carries_the_vocab_of_the_directory_it_was_loaded_from(minilm_dir, tmp_path):
    BertModel.from_pretrained(minilm_dir).save_pretrained(tmp_path / "minilm")
    assert (tmp_path / "minilm" / "vocab.txt").read_bytes() == (minilm_dir / "vocab.txt").read_bytes()
    BertModel(BertConfig(**SMALL)).save_pretrained(tmp_path / "random")
    assert sorted(p.name for p in (tmp_path / "random").iterdir()) == ["config.json", "model.safetensors"]


def test_saving_over_an_existing_directory_replaces_every_file(tmp_path):
    big = BertForSequenceClassification(BertConfig(**SMALL))
    small = BertForSequenceClassification(BertConfig(**{**SMALL, "num_hidden_layers": 2, "hidden_size": 32}))
    scramble(small, seed=4)
    big.save_pretrained(tmp_path)
    small.save_pretrained(tmp_path)

    assert set(load_file(tmp_path / "model.safetensors")) == set(to_hf_state_dict(small))  # no layer 2 left over
    assert json.loads((tmp_path / "config.json").read_text())["hidden_size"] == 32
    assert leftovers(tmp_path) == []
    batch = random_batch(SMALL["vocab_size"])
    assert_same_outputs(run(BertForSequenceClassification.from_pretrained(tmp_path), batch), run(small.eval(), batch))
    assert_same_outputs(run(transformers.BertForSequenceClassification.from_pretrained(tmp_path), batch), run(small, batch))


def test_saved_config_names_the_dtype_for_transformers(tmp_path):
    model = BertModel(BertConfig(**SMALL, extra={"dtype": "float32"})).to(torch.bfloat16)  # a stale dtype from the source
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["dtype"] == config["torch_dtype"] == "bfloat16"
    assert transformers.BertModel.from_pretrained(tmp_path, dtype="auto").dtype == torch.bfloat16


# ---- legacy layouts ----------------------------------------------------------------------------------


def test_layernorm_gamma_beta_names_load(hf_pretraining, tmp_path):
    cfg, hf = hf_pretraining
    state = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
             for k, v in hf.state_dict().items()}
    assert sum("gamma" in k for k in state) == 2 * cfg.num_hidden_layers + 2  # every LayerNorm, heads included
    mb, report = BertForPreTraining.from_pretrained(write_checkpoint(tmp_path, state, cfg), output_loading_info=True)
    assert report.missing == report.unexpected == report.initialized == []
    batch = random_batch(cfg.vocab_size)
    assert_same_outputs(run(mb, batch), run(hf, batch))


def test_file_without_bert_prefix_loads_under_a_model_with_heads(hf_pretraining, tmp_path):
    cfg, hf = hf_pretraining
    state = hf.bert.state_dict()  # a bare BertModel's file: "embeddings.*", "encoder.*", "pooler.*"
    assert not any(k.startswith("bert.") for k in state)
    clf, report = BertForSequenceClassification.from_pretrained(write_checkpoint(tmp_path, state, cfg), output_loading_info=True)
    assert report.initialized == ["classifier.weight", "classifier.bias"]
    assert report.missing == report.unexpected == []
    batch = random_batch(cfg.vocab_size)
    assert_same_outputs(run(clf.bert, batch), run(hf.bert, batch))


def test_file_with_bert_prefix_loads_under_a_bare_model(hf_pretraining, tmp_path):
    cfg, hf = hf_pretraining
    model, report = BertModel.from_pretrained(write_checkpoint(tmp_path, hf.state_dict(), cfg), output_loading_info=True)
    assert report.missing == report.unexpected == report.initialized == []
    assert report.ignored and all(k.startswith("cls.") for k in report.ignored)  # the heads, not used by BertModel
    batch = random_batch(cfg.vocab_size)
    assert_same_outputs(run(model, batch), run(hf.bert, batch))


@pytest.mark.parametrize("prefix", ["", "bert."], ids=["bare-file", "prefixed-file"])
def test_position_ids_buffer_is_ignored(hf_pretraining, tmp_path, prefix):
    cfg, hf = hf_pretraining
    state = hf.bert.state_dict() if not prefix else hf.state_dict()
    state[f"{prefix}embeddings.position_ids"] = torch.arange(cfg.max_position_embeddings)[None]
    model, report = BertModel.from_pretrained(write_checkpoint(tmp_path, state, cfg), output_loading_info=True)
    assert "embeddings.position_ids" in report.ignored
    batch = random_batch(cfg.vocab_size)
    assert_same_outputs(run(model, batch), run(hf.bert, batch))


@pytest.mark.parametrize("decoder", ["present", "absent"])
def test_tied_mlm_decoder_may_be_present_or_absent(hf_pretraining, tmp_path, decoder):
    cfg, hf = hf_pretraining
    state = hf.state_dict()
    assert {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"} <= set(state)
    if decoder == "absent":
        state = {k: v for k, v in state.items() if ".decoder." not in k}
    mb, report = BertForPreTraining.from_pretrained(write_checkpoint(tmp_path, state, cfg), output_loading_info=True)
    assert report.missing == report.unexpected == report.initialized == []
    assert ("cls.predictions.decoder.weight" in report.ignored) == (decoder == "present")
    batch = random_batch(cfg.vocab_size)
    assert_same_outputs(run(mb, batch), run(hf, batch))


def test_pytorch_model_bin_loads_with_weights_only(hf_pretraining, tmp_path):
    cfg, hf = hf_pretraining
    directory = write_checkpoint(tmp_path, hf.state_dict(), cfg, fmt="bin")
    assert not (directory / "model.safetensors").exists()
    mb, report = BertForPreTraining.from_pretrained(directory, output_loading_info=True)
    assert report.missing == report.unexpected == report.initialized == []
    batch = random_batch(cfg.vocab_size)
    assert_same_outputs(run(mb, batch), run(hf, batch))


def test_sharded_safetensors_load_through_their_index(hf_pretraining, tmp_path):
    cfg, hf = hf_pretraining
    state = {k: v.detach().clone().contiguous() for k, v in hf.state_dict().items() if "decoder" not in k}
    names = sorted(state)
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2], "model-00002-of-00002.safetensors": names[len(names) // 2 :]}
    tmp_path.joinpath("config.json").write_text(json.dumps(cfg.to_dict()))
    for shard, keys in shards.items():
        save_file({k: state[k] for k in keys}, tmp_path / shard)
    index = {"metadata": {}, "weight_map": {k: shard for shard, keys in shards.items() for k in keys}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    model, report = minibert.BertForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
    assert report.missing == report.unexpected == report.initialized == []
    batch = random_batch(cfg.vocab_size)
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).prediction_logits, hf(**batch).prediction_logits, atol=1e-5, rtol=1e-5)
    (tmp_path / "model.safetensors.index.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not a valid shard index"):
        minibert.BertForPreTraining.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"x": "model-00003-of-00002.safetensors"}}))
    with pytest.raises(CheckpointError, match="model-00003-of-00002.safetensors.*cannot be found"):
        minibert.BertForPreTraining.from_pretrained(tmp_path)



def test_a_folder_with_sharded_safetensors_and_a_pytorch_model_bin_loads_the_shards(hf_pretraining, tmp_path):
    """Both layouts side by side (as some Hub repositories have them): the safetensors shards win, never the pickle."""
    cfg, hf = hf_pretraining
    state = {k: v.detach().clone().contiguous() for k, v in hf.state_dict().items() if "decoder" not in k}
    names = sorted(state)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for shard, keys in shards.items():
        save_file({k: state[k] for k in keys}, tmp_path / shard)
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {k: s for s, keys in shards.items() for k in keys}}))
    write_checkpoint(tmp_path, {k: v + 0.5 for k, v in state.items()}, cfg, fmt="bin")  # other weights, same shapes
    model, report = minibert.BertForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
    assert report.missing == report.unexpected == report.initialized == []
    batch = random_batch(cfg.vocab_size)
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).prediction_logits, hf(**batch).prediction_logits, atol=1e-5, rtol=1e-5)


class _Payload:
    """Unpickling this runs code: it writes the file `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


def test_pickled_code_in_pytorch_model_bin_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    directory = write_checkpoint(tmp_path / "model", {}, BertConfig(**SMALL), fmt="bin")
    torch.save({"embeddings.word_embeddings.weight": _Payload(marker)}, directory / "pytorch_model.bin")

    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin cannot be read as plain tensors") as e:
        BertModel.from_pretrained(directory)
    assert "weights_only=True" in str(e.value) and "model.safetensors" in str(e.value)  # why, and the remedy
    assert not marker.exists()  # refused before anything ran
    torch.load(directory / "pytorch_model.bin", weights_only=False)  # the unsafe way does run it: the file is live
    assert marker.read_text() == "pwned"


@pytest.mark.parametrize("content", [[torch.zeros(3)], {"embeddings.word_embeddings.weight": 3}], ids=["list", "int"])
def test_pytorch_model_bin_that_is_not_a_state_dict_is_refused(tmp_path, content):
    directory = write_checkpoint(tmp_path, {}, BertConfig(**SMALL), fmt="bin")
    torch.save(content, directory / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin holds .*not a state dict.*torch\.save\(model\.state_dict\(\)"):
        BertModel.from_pretrained(directory)


# ---- bad checkpoints ---------------------------------------------------------------------------------


def test_missing_tensor_is_named(hf_pretraining, tmp_path):
    cfg, hf = hf_pretraining
    state = hf.bert.state_dict()
    del state["encoder.layer.1.output.dense.weight"]
    with pytest.raises(CheckpointError) as e:
        BertModel.from_pretrained(write_checkpoint(tmp_path, state, cfg))
    message = str(e.value)
    assert "missing tensors (1): encoder.layer.1.output.dense.weight" in message
    assert str(tmp_path / "model.safetensors") in message and "Re-download the checkpoint" in message


@pytest.mark.parametrize("extra_key", ["encoder.layer.3.output.dense.weight", "lm_head.weight"], ids=["extra-layer", "foreign"])
def test_unexpected_tensor_is_named(hf_pretraining, tmp_path, extra_key):
    cfg, hf = hf_pretraining  # 3 layers: encoder.layer.3 is one too many
    state = {**hf.bert.state_dict(), extra_key: torch.zeros(cfg.hidden_size, cfg.intermediate_size)}
    with pytest.raises(CheckpointError, match=rf"unexpected tensors \(1\): {extra_key}") as e:
        BertModel.from_pretrained(write_checkpoint(tmp_path, state, cfg))
    assert "num_hidden_layers" in str(e.value)  # the remedy: the config may not describe the file


def test_extra_layers_in_the_real_checkpoint_are_unexpected_for_a_shallower_config(minilm_dir, tmp_path):
    directory = with_minilm_weights(tmp_path / "m", minilm_dir, num_hidden_layers=5)
    with pytest.raises(CheckpointError, match=r"unexpected tensors \(16\): encoder\.layer\.5\.") as e:
        BertModel.from_pretrained(directory)
    assert str(e.value).count("encoder.layer.5.") == 16  # all of layer 5, and nothing else


def test_wrong_shape_is_named_with_both_shapes(hf_pretraining, tmp_path):
    cfg, hf = hf_pretraining
    state = {**hf.bert.state_dict(), "pooler.dense.bias": torch.zeros(7)}
    with pytest.raises(CheckpointError, match=r"wrong shapes \(1\): pooler\.dense\.bias: file \(7,\) vs model \(48,\)"):
        BertModel.from_pretrained(write_checkpoint(tmp_path, state, cfg))


def test_config_that_does_not_fit_the_weights_is_refused(minilm_dir, tmp_path):
    directory = with_minilm_weights(tmp_path / "m", minilm_dir, hidden_size=768)  # the file is 384 wide
    with pytest.raises(CheckpointError) as e:
        BertModel.from_pretrained(directory)
    message = str(e.value)
    assert "embeddings.word_embeddings.weight: file (30522, 384) vs model (30522, 768)" in message
    assert "config.json" in message and "hidden_size" in message


def test_non_finite_weights_are_refused_naming_the_tensors(hf_pretraining, tmp_path):
    cfg, hf = hf_pretraining
    state = {k: v.clone() for k, v in hf.bert.state_dict().items()}
    state["encoder.layer.1.output.dense.weight"][3, 5] = float("nan")
    state["pooler.dense.bias"][0] = float("inf")
    directory = write_checkpoint(tmp_path, state, cfg)
    with pytest.raises(CheckpointError) as e:
        BertModel.from_pretrained(directory)
    message = str(e.value)
    assert "holds NaN or infinite values in 2 tensors: encoder.layer.1.output.dense.weight, pooler.dense.bias" in message
    assert str(directory / "model.safetensors") in message and "load an earlier checkpoint" in message
    model = BertModel(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        load_state_dict(model, state)
    assert all(torch.equal(p, before[k]) for k, p in model.state_dict().items())  # nothing half-loaded


def test_failed_load_leaves_the_model_untouched(hf_pretraining):
    cfg, hf = hf_pretraining
    model = BertModel(cfg)
    before = {k: p.clone() for k, p in model.state_dict().items()}
    state = {**hf.bert.state_dict(), "pooler.dense.weight": torch.zeros(3, 3)}  # every other tensor fits
    with pytest.raises(CheckpointError, match="pooler.dense.weight"):
        load_state_dict(model, state)
    for k, p in model.state_dict().items():
        assert torch.equal(p, before[k]), f"{k} was overwritten by a load that failed"


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_safetensors_file_is_named_with_the_remedy(hf_pretraining, tmp_path, damage):
    cfg, hf = hf_pretraining
    directory = write_checkpoint(tmp_path, hf.bert.state_dict(), cfg)
    weights = directory / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x13\x00\x00\x00" + data[4:200])
    with pytest.raises(CheckpointError, match=r"model\.safetensors is truncated or corrupted .*download or save it again") as e:
        BertModel.from_pretrained(directory)
    assert str(weights) in str(e.value)


def test_directory_without_weights_says_what_is_missing(tmp_path):
    BertConfig(**SMALL).to_json_file(tmp_path / "config.json")
    with pytest.raises(CheckpointError, match=r"no model\.safetensors \(or pytorch_model\.bin\) found"):
        BertModel.from_pretrained(tmp_path)


def test_directory_without_config_says_what_is_missing(hf_pretraining, tmp_path):
    save_file(hf_pretraining[1].bert.state_dict(), tmp_path / "model.safetensors")
    with pytest.raises(HubError, match=r"has no config\.json; a checkpoint directory needs config\.json"):
        BertModel.from_pretrained(tmp_path)


# ---- bad configs -------------------------------------------------------------------------------------

INVALID_CONFIGS = [  # (change to a valid config.json, what the error must say)
    pytest.param({"hidden_size": 50, "num_attention_heads": 12},
                 r"hidden_size \(50\) must be divisible by num_attention_heads \(12\)", id="heads-do-not-divide"),
    pytest.param({"num_hidden_layers": -1}, r"num_hidden_layers must be a positive integer, got -1", id="negative-layers"),
    pytest.param({"vocab_size": 0}, r"vocab_size must be a positive integer, got 0", id="zero-vocab"),
    pytest.param({"hidden_size": "384"}, r"hidden_size must be a positive integer, got '384'", id="string-size"),
    pytest.param({"hidden_dropout_prob": 1.5}, r"hidden_dropout_prob must be a probability in \[0, 1\)", id="dropout"),
    pytest.param({"layer_norm_eps": 0}, r"layer_norm_eps must be > 0", id="eps"),
    pytest.param({"hidden_act": "swish"}, r"hidden_act 'swish' is not supported", id="activation"),
    pytest.param({"pad_token_id": 30522}, r"pad_token_id 30522 is outside the vocabulary \(0..30521\)", id="pad-id"),
    pytest.param({"model_type": "roberta"}, r"minibert only builds BERT", id="model-type"),
    pytest.param({"position_embedding_type": "relative_key"}, r"only absolute position embeddings", id="positions"),
    pytest.param({"is_decoder": True}, r"cross-attention BERT configs are not supported", id="decoder"),
    pytest.param({"id2label": {"a": "neg"}}, r"id2label must map label ids to names", id="label-ids"),
    pytest.param({"num_labels": 3, "id2label": {"0": "neg", "1": "pos"}}, r"id2label names 2 labels but num_labels is 3",
                 id="label-count"),
]


@pytest.mark.parametrize("change, message", INVALID_CONFIGS)
def test_invalid_config_is_refused_naming_the_field(change, message):
    with pytest.raises(ConfigError, match=message):
        BertConfig.from_dict({**BertConfig().to_dict(), **change})


@pytest.mark.parametrize("change, message", INVALID_CONFIGS[:3])
def test_invalid_config_json_in_a_checkpoint_names_the_file(minilm_dir, tmp_path, change, message):
    directory = with_minilm_weights(tmp_path / "m", minilm_dir, **change)
    with pytest.raises(ConfigError, match=message) as e:
        BertModel.from_pretrained(directory)
    assert str(directory / "config.json") in str(e.value)


def test_malformed_config_json_names_the_file(minilm_dir, tmp_path):
    directory = with_minilm_weights(tmp_path / "m", minilm_dir)
    (directory / "config.json").write_text('{"hidden_size": 384,')
    with pytest.raises(ConfigError, match=r"config\.json is not valid JSON .*re-download it or fix the file"):
        BertModel.from_pretrained(directory)
    (directory / "config.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match=r"a config must be a JSON object, got list"):
        BertModel.from_pretrained(directory)


def test_invalid_override_is_refused(minilm_dir):
    with pytest.raises(ConfigError, match=r"num_attention_heads \(5\)"):
        BertModel.from_pretrained(minilm_dir, num_attention_heads=5)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'num_layers'"):
        BertModel.from_pretrained(minilm_dir, num_layers=2)


# ---- paths and the Hub -------------------------------------------------------------------------------


@pytest.mark.parametrize("local_files_only", [False, True])
def test_hub_id_offline_without_cache_says_how_to_pass_a_directory(monkeypatch, tmp_path, local_files_only):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # huggingface_hub reads it per call
    connections = []  # a tripwire: offline mode must not even try the network, so nothing can hang

    def refuse(sock, address):
        connections.append(address)
        raise OSError(f"test_checkpoint: no network allowed (tried {address})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    with pytest.raises(HubError) as e:
        BertModel.from_pretrained("bert-base-uncased", cache_dir=tmp_path, local_files_only=local_files_only)
    message = str(e.value)
    assert "cannot fetch 'config.json' of 'bert-base-uncased'" in message
    assert "HF_HUB_OFFLINE=1" in message and "no cached copy exists" in message
    assert "pass a local directory" in message and "from_pretrained('/path/to/bert-base-uncased')" in message
    assert connections == []
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # nothing half-downloaded into the cache


def test_directory_that_does_not_exist_is_named(tmp_path):
    missing = tmp_path / "no-such-model"
    for name in (missing, str(missing)):
        with pytest.raises(HubError, match=r"no such directory: .*no-such-model.*pass a directory that holds config\.json"):
            BertModel.from_pretrained(name)
    assert not missing.exists()


def test_file_instead_of_directory_is_refused(minilm_dir):
    with pytest.raises(HubError, match=r"model\.safetensors' is a file; pass the directory"):
        BertModel.from_pretrained(minilm_dir / "model.safetensors")


# ---- bad inputs to a loaded model ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_model():
    return BertModel(BertConfig(**SMALL)).eval()


@pytest.mark.parametrize(
    "ids, message",
    [
        (torch.tensor([[2, -1, 5]]), r"token ids \[-1\] are outside the vocabulary \(0..119\)"),
        (torch.tensor([[2, 120, 5, 500]]), r"token ids \[120, 500\] are outside the vocabulary \(0..119\)"),
        (torch.tensor([1, 2, 3]), r"input_ids must be a \(batch, seq_len\) tensor of token ids, got \(3,\)"),
        (torch.ones(1, 2, 3, dtype=torch.long), r"must be a \(batch, seq_len\) tensor .*got \(1, 2, 3\)"),
        ([[1, 2, 3]], r"must be a \(batch, seq_len\) tensor of token ids, got list"),
        (torch.tensor([[1.0, 2.0]]), r"input_ids must be integer token ids, got dtype torch.float32"),
        (torch.ones(1, 41, dtype=torch.long), r"sequence length 41 is longer than the position table \(40\); truncate"),
    ],
    ids=["negative-id", "id-beyond-vocab", "rank-1", "rank-3", "list", "float", "too-long"],
)
def test_bad_input_ids_are_refused_with_the_remedy(small_model, ids, message):
    with pytest.raises(InputError, match=message):
        small_model(ids)


def test_vocab_mismatch_message_points_at_the_tokenizer(small_model):
    with pytest.raises(InputError, match=r"the tokenizer's vocabulary does not match this model's vocab_size"):
        small_model(torch.tensor([[101, 2023, 102]]))  # bert-base-uncased ids into a 120-token model


@pytest.mark.parametrize("types", [torch.tensor([[0, 2, 0]]), torch.tensor([[0, -1, 0]])], ids=["2", "-1"])
def test_token_type_ids_out_of_range_are_refused(small_model, types):
    with pytest.raises(InputError, match=r"token_type_ids must be in 0..1"):
        small_model(torch.tensor([[1, 2, 3]]), token_type_ids=types)


def test_mask_of_the_wrong_shape_is_refused(small_model):
    with pytest.raises(InputError, match=r"attention_mask has shape \(1, 2\) but input_ids has shape \(1, 3\)"):
        small_model(torch.tensor([[1, 2, 3]]), attention_mask=torch.ones(1, 2, dtype=torch.long))


@pytest.mark.parametrize("B", [1, 3])
def test_empty_sequences_are_refused_with_the_remedy(small_model, B):
    with pytest.raises(InputError, match=rf"input_ids has shape \({B}, 0\): no tokens.*tokenizer\(text\)"):
        small_model(torch.zeros(B, 0, dtype=torch.long))


# ---- BertConfig <-> config.json ----------------------------------------------------------------------

FIELDS = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
          "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size",
          "layer_norm_eps", "initializer_range", "pad_token_id", "num_labels", "classifier_dropout", "problem_type",
          "id2label"]


def test_every_config_field_is_compared():
    assert set(FIELDS) == {f.name for f in dataclasses.fields(BertConfig)} - {"extra", "attn_implementation"}


def test_config_round_trips_through_transformers():
    cfg = BertConfig(**SMALL, hidden_act="gelu_new", hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.05,
                     type_vocab_size=3, layer_norm_eps=1e-7, initializer_range=0.05, pad_token_id=1, num_labels=3,
                     classifier_dropout=0.3, problem_type="multi_label_classification", id2label=LABELS,
                     extra={"use_cache": False, "my_note": {"trained_on": "movie_reviews"}})
    hf = transformers.BertConfig.from_dict(cfg.to_dict())
    for name in FIELDS:
        assert getattr(hf, name) == getattr(cfg, name), name
    assert hf.label2id == {"negative": 0, "neutral": 1, "positive": 2}
    assert hf.my_note == {"trained_on": "movie_reviews"} and hf.use_cache is False

    back = BertConfig.from_dict(hf.to_dict())
    for name in FIELDS:
        assert getattr(back, name) == getattr(cfg, name), name
    assert back.extra["my_note"] == {"trained_on": "movie_reviews"} and back.extra["use_cache"] is False


def test_real_config_json_reads_as_transformers_reads_it(minilm_dir, tmp_path):
    cfg = BertConfig.from_json_file(minilm_dir / "config.json")
    hf = transformers.BertConfig.from_pretrained(minilm_dir)
    for name in FIELDS:
        if name != "id2label":  # transformers invents LABEL_0, LABEL_1; minibert keeps "none given"
            assert getattr(cfg, name) == getattr(hf, name), name
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size) == (384, 6, 1536)
    # keys minibert does not use are kept and written back unchanged
    assert cfg.extra["gradient_checkpointing"] is False and cfg.extra["transformers_version"] == "4.8.2"
    cfg.to_json_file(tmp_path / "config.json")
    again = BertConfig.from_json_file(tmp_path / "config.json")
    assert again == cfg and again.extra == cfg.extra


def test_num_labels_override_drops_label_names_of_another_task(minilm_dir, tmp_path):
    directory = with_minilm_weights(tmp_path / "m", minilm_dir, id2label={"0": "LABEL_0", "1": "LABEL_1"})
    assert BertForSequenceClassification.from_pretrained(directory).config.id2label == {0: "LABEL_0", 1: "LABEL_1"}
    clf = BertForSequenceClassification.from_pretrained(directory, num_labels=5)
    assert clf.config.num_labels == 5 and clf.config.id2label is None
    assert clf.classifier.out_features == 5
    assert minibert.BertModel.from_pretrained(directory).config.id2label == {0: "LABEL_0", 1: "LABEL_1"}
