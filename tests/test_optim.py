"""The optimiser against the ecosystem's own references, not against minibert's own choices:

* AdamW's decay groups are built from transformers' naming rule (no decay for names holding `bias` or
  `LayerNorm.weight`, the rule of the BERT fine-tuning scripts; transformers' Trainer agrees) and mapped
  onto minibert's parameters through the key table of checkpoint.py; minibert's `param_groups` must give
  the same split, and minibert's AdamW must then move the real MiniLM exactly as `torch.optim.AdamW` moves
  the same tensors under transformers' names.
* The schedule is transformers' `get_linear_schedule_with_warmup`, shifted by one step on purpose (see
  test_schedule_is_transformers_linear_warmup_shifted_by_one_step).
"""

from __future__ import annotations

import pytest
import torch
import transformers
from transformers.optimization import get_linear_schedule_with_warmup

import minibert
from minibert.checkpoint import key_table, load_state_dict, to_hf_state_dict
from minibert.optim import AdamW, LinearWarmupDecay, clip_grad_norm, param_groups


def decays_by_transformers_rule(hf_name: str) -> bool:
    """The BERT fine-tuning scripts' rule (run_glue.py, google-research/bert's optimization.py):
    no weight decay for biases and LayerNorm weights, decay for everything else."""
    return not any(nd in hf_name for nd in ("bias", "LayerNorm.weight"))


def hf_rule_on_minibert(model) -> dict[str, bool]:
    """minibert parameter name -> decays?, from transformers' names mapped through the key table.
    (query, key and value share minibert's `qkv` tensor: they must agree.)"""
    votes: dict[str, set[bool]] = {}
    for hf, mb, _ in key_table(model):
        votes.setdefault(mb, set()).add(decays_by_transformers_rule(hf))
    assert all(len(v) == 1 for v in votes.values()), votes
    return {mb: v.pop() for mb, v in votes.items()}


@pytest.fixture(scope="module")
def minilm_classifier(minilm_dir):
    torch.manual_seed(0)  # the classifier is new: a fixed initialisation
    return minibert.BertForSequenceClassification.from_pretrained(minilm_dir, num_labels=2)


def test_transformers_decay_rule_maps_onto_every_minibert_parameter_and_param_groups_agrees(minilm_classifier):
    model = minilm_classifier
    rule = hf_rule_on_minibert(model)
    names = {n for n, _ in model.named_parameters()}
    assert set(rule) == names  # the key table covers every parameter, so the rule decides each one
    # transformers' Trainer (which also excludes LayerNorm modules by type) splits the same tensors
    with torch.device("meta"):  # names only: no memory, no initialisation
        hf_model = transformers.BertForSequenceClassification(transformers.BertConfig(**model.config.to_dict()))
    trainer_decay = set(transformers.Trainer.get_decay_parameter_names(None, hf_model))
    assert {hf for hf, _, _ in key_table(model) if decays_by_transformers_rule(hf)} == trainer_decay

    decay, no_decay = param_groups(model, 0.01)
    by_id = {id(p): n for n, p in model.named_parameters()}
    assert {by_id[id(p)] for p in decay["params"]} == {n for n, d in rule.items() if d}
    assert {by_id[id(p)] for p in no_decay["params"]} == {n for n, d in rule.items() if not d}
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    # the split is not trivial: 6 layers of 4 matrices, 3 embeddings, pooler and classifier decay
    assert sum(rule.values()) == 6 * 4 + 3 + 2 and len(rule) - sum(rule.values()) > 50


def test_adamw_with_transformers_groups_moves_a_bert_like_torch_adamw(review_texts, vocab_path):
    """30 steps of minibert's AdamW (warmup, decay, clipping, weight decay 0.1) on a small BERT classifier
    (the real 30522-token vocabulary, real reviews), against torch.optim.AdamW stepping transformers'
    BertForSequenceClassification with transformers' decay groups (Trainer.get_decay_parameter_names).
    Both get the same gradients each step (minibert's, mapped to transformers' names through the key table),
    so any difference is the update rule: bias correction, decoupled decay, which tensors decay, eps."""
    cfg = minibert.BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
    torch.manual_seed(0)
    hf = transformers.BertForSequenceClassification(transformers.BertConfig(**cfg.to_dict()))
    model = minibert.BertForSequenceClassification(cfg)
    report = load_state_dict(model, hf.state_dict())
    assert not report.missing and not report.initialized
    start = {k: v.clone() for k, v in hf.state_dict().items()}

    rule = hf_rule_on_minibert(model)
    params = dict(model.named_parameters())
    wd = 0.1  # large, so that decaying the wrong tensors or coupling the decay shows
    ours = AdamW([{"params": [params[n] for n, d in rule.items() if d], "weight_decay": wd},
                  {"params": [params[n] for n, d in rule.items() if not d], "weight_decay": 0.0}],
                 lr=1e-3, betas=(0.9, 0.98), eps=1e-6)
    trainer_decay = set(transformers.Trainer.get_decay_parameter_names(None, hf))
    theirs = torch.optim.AdamW(
        [{"params": [p for k, p in hf.named_parameters() if k in trainer_decay], "weight_decay": wd},
         {"params": [p for k, p in hf.named_parameters() if k not in trainer_decay], "weight_decay": 0.0}],
        lr=1e-3, betas=(0.9, 0.98), eps=1e-6, foreach=True)
    schedule = LinearWarmupDecay(ours, warmup_steps=3, total_steps=30)

    tok = minibert.BertTokenizer(vocab_path)
    model.train()
    hf_params = dict(hf.named_parameters())
    for step in range(30):
        texts = review_texts[4 * step % 64 : 4 * step % 64 + 4]
        batch = tok(texts, truncation=True, max_length=32, padding=True, return_tensors="pt")
        labels = torch.tensor([step % 2, 1, 0, (step // 2) % 2])
        model(**batch, labels=labels).loss.backward()
        clip_grad_norm(model.parameters(), 1.0)
        for k, g in to_hf_state_dict(model, {n: p.grad for n, p in model.named_parameters()}).items():
            hf_params[k].grad = g.clone()
        for group in theirs.param_groups:
            group["lr"] = schedule.lr
        ours.step()
        theirs.step()
        ours.zero_grad()
        theirs.zero_grad()
        schedule.step()
    assert schedule.lr == 0.0  # the whole schedule ran
    moved = to_hf_state_dict(model)
    for k, p in hf_params.items():
        torch.testing.assert_close(moved[k], p.detach(), atol=1e-6, rtol=1e-5, msg=lambda s, k=k: f"{k}: {s}")
        assert not torch.equal(p.detach(), start[k]), f"{k} did not move"
    # rows of the vocabulary that no text uses ([unused49]) got a zero gradient: only the decay moved them
    unused = start["bert.embeddings.word_embeddings.weight"][50]
    torch.testing.assert_close(moved["bert.embeddings.word_embeddings.weight"][50],
                               unused * torch.prod(torch.tensor([1 - 1e-3 * wd * f for f in schedule_factors(3, 30)])))


def schedule_factors(warmup: int, total: int) -> list[float]:
    s = LinearWarmupDecay(AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0), warmup, total)
    return [s.factor(t) for t in range(total)]


# ---- The schedule against transformers ----------------------------------------------------------------


@pytest.mark.parametrize("warmup, total", [(0, 1), (0, 7), (1, 7), (3, 10), (10, 100), (6, 6)])
@pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler.step\(\)` before `optimizer.step\(\)`")
def test_schedule_is_transformers_linear_warmup_shifted_by_one_step(warmup, total):
    """minibert's lr for its optimizer step t (0-based) is peak * (t + 1) / (warmup + 1) while t < warmup,
    then peak * (total - t) / (total - warmup). transformers' LambdaLR gives step t the lr t / warmup, so its
    first step has lr 0 (a wasted step); minibert's first step already learns. What holds exactly, over the
    whole run including the final lr 0:

        minibert LinearWarmupDecay(warmup, total), step t
          == transformers get_linear_schedule_with_warmup(warmup + 1, total + 1), step t + 1
        and, once warmup is over (t >= warmup), == get_linear_schedule_with_warmup(warmup, total), step t.
    """
    peak = 3e-4
    ours = LinearWarmupDecay(AdamW([torch.nn.Parameter(torch.zeros(1))], lr=peak), warmup, total)
    shifted_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    shifted = get_linear_schedule_with_warmup(shifted_opt, warmup + 1, total + 1)
    plain_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    plain = get_linear_schedule_with_warmup(plain_opt, warmup, total)
    assert shifted_opt.param_groups[0]["lr"] == 0.0  # transformers' step 0, which minibert skips
    shifted.step()
    lrs = []
    for t in range(total + 1):
        lrs.append(ours.lr)
        assert ours.lr == shifted_opt.param_groups[0]["lr"], t  # exactly, not approximately
        if t >= warmup:
            assert ours.lr == plain_opt.param_groups[0]["lr"], t
        else:
            assert ours.lr == peak * ((t + 1) / (warmup + 1)) > 0
        ours.step()
        shifted.step()
        plain.step()
    assert lrs[-1] == 0.0
    if warmup < total:
        assert lrs[warmup] == peak == max(lrs)  # the peak is reached on the first step after warmup


# ---- The loops' update step ------------------------------------------------------------------------------


def test_optimizer_step_clips_then_updates_at_this_steps_lr_then_clears_the_gradients():
    """training.optimizer_step, the update both loops make after loss.backward(), is exactly: clip the global
    gradient norm, an AdamW step at the schedule's lr for this step (factor(t), t from 0), the schedule moves
    on, the gradients are cleared (so that they never accumulate across steps). Checked against torch's
    clip_grad_norm_ and AdamW over a whole warmup + decay schedule, with gradients large enough to be clipped."""
    from minibert.training import optimizer_step

    torch.manual_seed(0)
    ours, theirs = torch.nn.Linear(6, 3), torch.nn.Linear(6, 3)
    theirs.load_state_dict(ours.state_dict())
    optimizer = AdamW(param_groups(ours, 0.1), lr=0.05)
    schedule = LinearWarmupDecay(optimizer, warmup_steps=2, total_steps=6)
    reference = torch.optim.AdamW(param_groups(theirs, 0.1), lr=0.05)
    for t in range(6):
        x = torch.randn(16, 6) * 10
        for model in (ours, theirs):
            (model(x) ** 2).sum().backward()
        assert torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0) > 1.0  # the clipping matters
        for group in reference.param_groups:
            group["lr"] = 0.05 * schedule.factor(t)
        reference.step()
        reference.zero_grad()
        optimizer_step(ours, optimizer, schedule, max_grad_norm=1.0)
        assert all(p.grad is None for p in ours.parameters())
        for a, b in zip(ours.parameters(), theirs.parameters()):
            torch.testing.assert_close(a, b, msg=lambda s, t=t: f"after step {t}: {s}")
    assert schedule.lr == 0.0
