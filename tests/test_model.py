"""Number-for-number parity with transformers (float32, 1e-5), in the style of rasbt/LLMs-from-scratch:
build the transformers model with random weights, copy them into minibert through the checkpoint key table,
and compare every output, every loss and every gradient."""

from __future__ import annotations

import math

import pytest
import torch
import transformers
from hypothesis import given, settings
from hypothesis import strategies as st

import minibert
from minibert import BertConfig
from minibert.checkpoint import load_state_dict, to_hf_state_dict

TOL = dict(atol=1e-5, rtol=1e-5)

SMALL = dict(vocab_size=120, hidden_size=48, num_hidden_layers=3, num_attention_heads=4, intermediate_size=80, max_position_embeddings=40)
BASE = {}  # BertConfig's defaults are bert-base-uncased

# minibert class, transformers class, how to make its labels for a batch of shape (B, T)
CLASSES = {
    "BertModel": (minibert.BertModel, transformers.BertModel, None),
    "BertForPreTraining": (
        minibert.BertForPreTraining,
        transformers.BertForPreTraining,
        lambda g, B, T, cfg: dict(
            labels=_mlm_labels(g, B, T, cfg), next_sentence_label=torch.randint(0, 2, (B,), generator=g)
        ),
    ),
    "BertForMaskedLM": (
        minibert.BertForMaskedLM,
        transformers.BertForMaskedLM,
        lambda g, B, T, cfg: dict(labels=_mlm_labels(g, B, T, cfg)),
    ),
    "BertForNextSentencePrediction": (
        minibert.BertForNextSentencePrediction,
        transformers.BertForNextSentencePrediction,
        lambda g, B, T, cfg: dict(labels=torch.randint(0, 2, (B,), generator=g)),
    ),
    "BertForSequenceClassification": (
        minibert.BertForSequenceClassification,
        transformers.BertForSequenceClassification,
        lambda g, B, T, cfg: dict(labels=torch.randint(0, cfg.num_labels, (B,), generator=g)),
    ),
    "BertForTokenClassification": (
        minibert.BertForTokenClassification,
        transformers.BertForTokenClassification,
        lambda g, B, T, cfg: dict(labels=_mlm_labels(g, B, T, cfg, high=cfg.num_labels)),
    ),
    "BertForQuestionAnswering": (
        minibert.BertForQuestionAnswering,
        transformers.BertForQuestionAnswering,
        lambda g, B, T, cfg: dict(
            # one answer outside the sequence (T + 3) exercises the clamp-and-ignore rule
            start_positions=torch.tensor([1, 4, T + 3][:B]),
            end_positions=torch.tensor([2, 6, T + 3][:B]),
        ),
    ),
}


def _mlm_labels(g, B, T, cfg, high=None):
    labels = torch.randint(0, high or cfg.vocab_size, (B, T), generator=g)
    labels[torch.rand(B, T, generator=g) < 0.6] = -100  # most positions carry no label
    return labels


def padded_batch(cfg: BertConfig, lengths=(17, 9, 13), seed=0):
    """Rows of different lengths padded to the longest, with [CLS] A [SEP] B [SEP]-style segment ids."""
    g = torch.Generator().manual_seed(seed)
    B, T = len(lengths), max(lengths)
    ids = torch.randint(1, cfg.vocab_size, (B, T), generator=g)
    mask = torch.zeros(B, T, dtype=torch.long)
    types = torch.zeros(B, T, dtype=torch.long)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
        ids[i, n:] = cfg.pad_token_id
        types[i, n // 2 : n] = 1  # second half is sentence B
    return g, ids, mask, types


def scramble_like_trained(model: torch.nn.Module, seed: int = 0) -> None:
    """Weights at the scale of a trained network instead of BERT's initial ones, where LayerNorm is the
    identity, every bias is 0 and N(0, 0.02) weights make attention almost uniform and GELU's inputs tiny:
    there, swapping two biases or replacing GELU with its tanh approximation hardly moves an output.

    Here LayerNorm gains are 1 +- 0.1, biases and LayerNorm shifts N(0, 0.2), embeddings N(0, 0.3^2), and each
    Linear weight N(0, 1.5^2 / fan_in), so a projection's outputs have a variance about 2 and attention
    logits a spread of about 2: attention is far from uniform, and GELU works on its curved part."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            z = torch.randn(p.shape, generator=g)
            if name.endswith(("LayerNorm.weight", "norm.weight")):  # transformers' names and minibert's
                p.copy_(1 + 0.1 * z)
            elif p.dim() == 1:
                p.copy_(0.2 * z)
            elif "embeddings" in name:
                p.copy_(0.3 * z)
            else:
                p.copy_(1.5 * z / math.sqrt(p.shape[1]))


def twin(name: str, cfg: BertConfig, attn="eager", scrambled=False):
    """A transformers model with random weights and the minibert model holding the same weights."""
    mb_cls, hf_cls, labels = CLASSES[name]
    torch.manual_seed(0)
    hf = hf_cls(transformers.BertConfig(**cfg.to_dict(), attn_implementation=attn)).eval()
    if scrambled:
        scramble_like_trained(hf)
    mb = mb_cls(cfg).eval()  # eval: dropout off, so both compute the same deterministic function
    report = load_state_dict(mb, hf.state_dict())
    assert not report.initialized and not report.missing
    return hf, mb, labels


def outputs(out) -> dict[str, torch.Tensor]:
    """The tensors of a model output, by the names both libraries use."""
    names = ["loss", "logits", "prediction_logits", "seq_relationship_logits", "start_logits", "end_logits",
             "last_hidden_state", "pooler_output"]
    found = {n: getattr(out, n) for n in names if getattr(out, n, None) is not None}
    found.update({f"hidden_states.{i}": h for i, h in enumerate(out.hidden_states or ())})
    found.update({f"attentions.{i}": a for i, a in enumerate(out.attentions or ())})
    return found


def scalar(out) -> torch.Tensor:
    """The loss when there is one, else a fixed function of every output (so every parameter gets a gradient)."""
    if getattr(out, "loss", None) is not None:
        return out.loss
    return out.last_hidden_state.pow(2).mean() + out.pooler_output.mean()


def check_parity(name, cfg, attn_impl, scrambled=False):
    g, ids, mask, types = padded_batch(cfg)
    cfg.attn_implementation = attn_impl
    hf, mb, make_labels = twin(name, cfg, scrambled=scrambled)
    labels = make_labels(g, *ids.shape, cfg) if make_labels else {}
    kw = dict(attention_mask=mask, token_type_ids=types, output_hidden_states=True)
    # attentions are returned by the written-out path; hidden states are compared for both paths
    want_attn = attn_impl == "math"
    h = hf(ids, **kw, output_attentions=want_attn, **labels)
    m = mb(ids, **kw, output_attentions=want_attn, **labels)
    mo = assert_same_outputs_and_gradients(name, hf, h, mb, m)
    if want_attn:
        assert len(mo) > 2 * cfg.num_hidden_layers


def assert_same_outputs_and_gradients(name, hf, h, mb, m) -> dict[str, torch.Tensor]:
    """Every output of minibert's `m` equals transformers' `h`, and so does every parameter's gradient of
    `scalar` of them. Returns minibert's outputs by name."""
    ho, mo = outputs(h), outputs(m)
    assert set(ho) == set(mo), set(ho) ^ set(mo)
    for key in ho:
        torch.testing.assert_close(mo[key], ho[key], **TOL, msg=lambda s, key=key: f"{name} {key}: {s}")

    scalar(h).backward()
    scalar(m).backward()
    hf_grads = {k: p.grad for k, p in hf.named_parameters()}
    mb_grads = to_hf_state_dict(mb, {k: p.grad for k, p in mb.named_parameters()})
    # every transformers parameter has its minibert counterpart (the tied decoder is not a separate one)
    assert set(mb_grads) == set(hf_grads)
    for key, grad in mb_grads.items():
        assert grad is not None, key
        torch.testing.assert_close(grad, hf_grads[key], **TOL, msg=lambda s, key=key: f"{name} grad {key}: {s}")
    return mo


@pytest.mark.parametrize("name", list(CLASSES))
@pytest.mark.parametrize("attn_impl", ["math", "sdpa"])
def test_parity_small_config(name, attn_impl):
    check_parity(name, BertConfig(**SMALL), attn_impl)


@pytest.mark.parametrize("name", list(CLASSES))
def test_parity_bert_base_shape(name):
    # the exact bert-base-uncased shape, random weights; math path so attentions are compared too
    check_parity(name, BertConfig(**BASE), "math")


def test_parity_bert_base_shape_sdpa():
    check_parity("BertForSequenceClassification", BertConfig(**BASE), "sdpa")


@pytest.mark.parametrize("name", list(CLASSES))
@pytest.mark.parametrize("attn_impl", ["math", "sdpa"])
def test_parity_small_config_scrambled_weights(name, attn_impl):
    check_parity(name, BertConfig(**SMALL), attn_impl, scrambled=True)


def test_parity_bert_base_shape_scrambled_weights():
    check_parity("BertForSequenceClassification", BertConfig(**BASE), "math", scrambled=True)


def test_scrambled_weights_make_attention_far_from_uniform():
    """What makes the scrambled parity tests sharper: no attention row is close to uniform."""
    cfg = BertConfig(**SMALL, attn_implementation="math")
    _, mb, _ = twin("BertModel", cfg, scrambled=True)
    ids = torch.randint(1, cfg.vocab_size, (2, 16), generator=torch.Generator().manual_seed(0))
    probs = torch.stack(mb(ids, output_attentions=True).attentions)  # (L, B, nh, T, T)
    assert probs.max(-1).values.mean() > 3 / 16  # uniform would be 1/16 everywhere


def test_parity_on_real_minilm_weights_with_gradients(minilm_dir, review_texts):
    """The real pretrained weights, real reviews, a padded batch: every hidden state, attention map,
    pooler output and parameter gradient agrees with transformers."""
    tokenizer = minibert.BertTokenizer.from_pretrained(minilm_dir)
    batch = tokenizer(review_texts[:3], max_length=48, truncation=True, padding="longest", return_tensors="pt")
    batch["attention_mask"][1, 20:] = 0  # one row shorter than the others
    batch["input_ids"][1, 20:] = 0
    hf = transformers.BertModel.from_pretrained(minilm_dir, attn_implementation="eager").eval()
    mb = minibert.BertModel.from_pretrained(minilm_dir, attn_implementation="math")
    kw = dict(output_hidden_states=True, output_attentions=True)
    h, m = hf(**batch, **kw), mb(**batch, **kw)
    compared = assert_same_outputs_and_gradients("MiniLM", hf, h, mb, m)
    assert len(compared) == 2 + 7 + 6  # last hidden state, pooler, 7 hidden states, 6 attention maps


def test_parity_with_hf_sdpa_attention():
    """Against transformers' own fused path too, not only its eager one."""
    cfg = BertConfig(**SMALL)
    g, ids, mask, types = padded_batch(cfg, lengths=(12, 12, 5))
    hf, mb, _ = twin("BertModel", cfg, attn="sdpa")
    h = hf(ids, attention_mask=mask, token_type_ids=types)
    m = mb(ids, attention_mask=mask, token_type_ids=types)
    torch.testing.assert_close(m.last_hidden_state, h.last_hidden_state, **TOL)
    torch.testing.assert_close(m.pooler_output, h.pooler_output, **TOL)


def test_no_padding_mask_is_the_same_as_all_ones():
    cfg = BertConfig(**SMALL)
    model = minibert.BertModel(cfg).eval()
    ids = torch.randint(0, cfg.vocab_size, (2, 11))
    a = model(ids).last_hidden_state
    b = model(ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    torch.testing.assert_close(a, b, **TOL)
    assert torch.count_nonzero(a) > 0


def test_an_all_ones_mask_is_dropped_and_a_padding_mask_kept():
    from minibert.model import drop_all_ones_mask

    assert drop_all_ones_mask(None) is None
    assert drop_all_ones_mask(torch.ones(2, 3, dtype=torch.long)) is None
    padded = torch.tensor([[1, 1, 1], [1, 1, 0]])
    assert drop_all_ones_mask(padded) is padded


@settings(max_examples=25, deadline=None)
@given(
    B=st.integers(1, 4),
    T=st.integers(1, 130),
    heads=st.sampled_from([1, 2, 4, 8]),
    head_size=st.integers(4, 64),
    layers=st.integers(1, 3),
    pad=st.lists(st.integers(0, 130), min_size=4, max_size=4),
)
def test_math_and_sdpa_paths_agree_on_any_shape(B, T, heads, head_size, layers, pad):
    cfg = BertConfig(vocab_size=50, hidden_size=head_size * heads, num_hidden_layers=layers,
                     num_attention_heads=heads, intermediate_size=24, max_position_embeddings=130)
    torch.manual_seed(B * 100 + T)
    model = minibert.BertModel(cfg).eval()
    scramble_like_trained(model)  # attention far from uniform, so a difference between the paths shows
    ids = torch.randint(0, 50, (B, T))
    mask = (torch.arange(T)[None, :] < torch.tensor([max(1, T - p) for p in pad[:B]])[:, None]).long()
    fused = model(ids, attention_mask=mask, output_hidden_states=True)
    written = model(ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
    assert fused.last_hidden_state.shape == (B, T, cfg.hidden_size)
    assert fused.pooler_output.shape == (B, cfg.hidden_size)
    assert len(written.attentions) == layers and written.attentions[0].shape == (B, heads, T, T)
    assert len(fused.hidden_states) == layers + 1
    for a, b in zip(fused.hidden_states, written.hidden_states):
        torch.testing.assert_close(a, b, **TOL)
    # attention rows are distributions that put no weight on padding keys
    probs = written.attentions[-1]
    torch.testing.assert_close(probs.sum(-1), torch.ones(B, heads, T), **TOL)
    assert probs.masked_select(mask[:, None, None, :].expand_as(probs) == 0).sum() == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("need_weights", [False, True])
def test_fully_padded_row_gives_no_nan(dtype, need_weights):
    cfg = BertConfig(**SMALL)
    model = minibert.BertForSequenceClassification(cfg).to(dtype).train()
    ids = torch.randint(0, cfg.vocab_size, (3, 10))
    mask = torch.ones_like(ids)
    mask[1] = 0  # nothing to attend to at all
    mask[2, 4:] = 0
    out = model(ids, attention_mask=mask, labels=torch.tensor([0, 1, 0]), output_attentions=need_weights)
    out.loss.backward()
    assert torch.isfinite(out.logits).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_fully_padded_row_under_bf16_autocast():
    cfg = BertConfig(**SMALL)
    model = minibert.BertModel(cfg).eval()
    ids = torch.randint(0, cfg.vocab_size, (2, 8))
    mask = torch.tensor([[0] * 8, [1] * 5 + [0] * 3])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(ids, attention_mask=mask)
    assert torch.isfinite(out.last_hidden_state).all()


def test_dropout_is_active_in_training_only():
    cfg = BertConfig(**SMALL)
    model = minibert.BertModel(cfg)
    ids = torch.randint(0, cfg.vocab_size, (2, 8))
    model.train()
    a, b = model(ids).last_hidden_state, model(ids).last_hidden_state
    assert not torch.allclose(a, b)
    model.eval()
    torch.testing.assert_close(model(ids).last_hidden_state, model(ids).last_hidden_state, atol=0, rtol=0)


def test_mlm_decoder_is_tied_to_word_embeddings():
    cfg = BertConfig(**SMALL)
    model = minibert.BertForPreTraining(cfg)
    names = [n for n, _ in model.named_parameters()]
    assert not any("decoder" in n for n in names)
    with torch.no_grad():
        model.bert.embeddings.tok.weight[7].fill_(0.0)
        model.bert.embeddings.tok.weight[7, 0] = 1000.0  # token 7 now dominates any positive first feature
        model.mlm.norm.weight.zero_()
        model.mlm.norm.bias.zero_()
        model.mlm.norm.bias[0] = 1.0
    logits = model(torch.tensor([[1, 2, 3]])).prediction_logits
    assert (logits.argmax(-1) == 7).all()


def test_heads_have_the_right_output_shapes():
    cfg = BertConfig(**SMALL, num_labels=5)
    ids = torch.randint(0, cfg.vocab_size, (2, 7))
    assert minibert.BertForSequenceClassification(cfg)(ids).logits.shape == (2, 5)
    assert minibert.BertForTokenClassification(cfg)(ids).logits.shape == (2, 7, 5)
    assert minibert.BertForMaskedLM(cfg)(ids).logits.shape == (2, 7, cfg.vocab_size)
    assert minibert.BertForNextSentencePrediction(cfg)(ids).logits.shape == (2, 2)
    qa = minibert.BertForQuestionAnswering(cfg)(ids)
    assert qa.start_logits.shape == qa.end_logits.shape == (2, 7)
    pt = minibert.BertForPreTraining(cfg)(ids)
    assert pt.prediction_logits.shape == (2, 7, cfg.vocab_size) and pt.seq_relationship_logits.shape == (2, 2)


@pytest.mark.parametrize("problem", ["regression", "multi_label_classification"])
def test_sequence_classification_other_losses_match_transformers(problem):
    cfg = BertConfig(**SMALL, num_labels=1 if problem == "regression" else 3)
    g, ids, mask, types = padded_batch(cfg)
    hf, mb, _ = twin("BertForSequenceClassification", cfg)
    labels = torch.rand(3, generator=g) if problem == "regression" else (torch.rand(3, 3, generator=g) > 0.5).float()
    h = hf(ids, attention_mask=mask, labels=labels)
    m = mb(ids, attention_mask=mask, labels=labels)
    torch.testing.assert_close(m.loss, h.loss, **TOL)
    assert hf.config.problem_type == problem


# ---- A classifier computes its last layer for [CLS] alone ---------------------------------------------


def last_layer_rows(mb, *args, **kwargs) -> int:
    """Run mb and return how many rows (tokens) its last encoder layer computed."""
    seen = []
    hook = mb.bert.encoder.layers[-1].register_forward_hook(lambda module, inputs, out: seen.append(out[0].shape[1]))
    try:
        mb(*args, **kwargs)
    finally:
        hook.remove()
    return seen[0]


@pytest.mark.parametrize("attn_impl", ["math", "sdpa"])
@pytest.mark.parametrize("scrambled", [False, True])
def test_classifier_last_layer_computes_cls_alone_and_matches_transformers(attn_impl, scrambled):
    """Logits, loss and every gradient equal transformers' (which computes every row), on a padded batch,
    through the written-out and the fused attention; and the last layer really computed one row."""
    cfg = BertConfig(**SMALL, attn_implementation=attn_impl)
    g, ids, mask, types = padded_batch(cfg, lengths=(17, 9, 13, 1))
    hf, mb, make_labels = twin("BertForSequenceClassification", cfg, scrambled=scrambled)
    labels = make_labels(g, *ids.shape, cfg)
    h = hf(ids, attention_mask=mask, token_type_ids=types, **labels)
    m = mb(ids, attention_mask=mask, token_type_ids=types, **labels)
    assert_same_outputs_and_gradients("classifier, [CLS] alone", hf, h, mb, m)
    assert last_layer_rows(mb, ids, attention_mask=mask, token_type_ids=types) == 1
    # asking for every layer's output, or the attention maps, computes the whole last layer again
    assert last_layer_rows(mb, ids, attention_mask=mask, output_hidden_states=True) == ids.shape[1]
    assert last_layer_rows(mb, ids, attention_mask=mask, output_attentions=True) == ids.shape[1]


def test_classifier_on_real_minilm_weights_matches_transformers_with_cls_alone(minilm_dir, review_texts):
    tokenizer = minibert.BertTokenizer.from_pretrained(minilm_dir)
    batch = tokenizer(review_texts[:4], max_length=64, truncation=True, padding="longest", return_tensors="pt")
    batch["attention_mask"][2, 30:] = 0
    batch["input_ids"][2, 30:] = 0
    torch.manual_seed(0)
    hf = transformers.BertForSequenceClassification.from_pretrained(minilm_dir, num_labels=3, attn_implementation="sdpa").eval()
    mb = minibert.BertForSequenceClassification.from_pretrained(minilm_dir, num_labels=3)
    load_state_dict(mb, hf.state_dict())  # the same (random) classifier too
    labels = torch.tensor([0, 2, 1, 1])
    assert_same_outputs_and_gradients("MiniLM classifier", hf, hf(**batch, labels=labels), mb, mb(**batch, labels=labels))
    assert last_layer_rows(mb, **batch) == 1


def test_bert_model_cls_only_is_the_cls_row_of_the_full_computation():
    cfg = BertConfig(**SMALL)
    _, ids, mask, types = padded_batch(cfg)
    model = minibert.BertModel(cfg).eval()
    scramble_like_trained(model)
    full = model(ids, attention_mask=mask, token_type_ids=types)
    cls = model(ids, attention_mask=mask, token_type_ids=types, cls_only=True)
    assert cls.last_hidden_state.shape == (3, 1, cfg.hidden_size)
    torch.testing.assert_close(cls.last_hidden_state, full.last_hidden_state[:, :1], **TOL)
    torch.testing.assert_close(cls.pooler_output, full.pooler_output, **TOL)
    with pytest.raises(ValueError, match="cls_only"):
        model(ids, cls_only=True, output_hidden_states=True)
