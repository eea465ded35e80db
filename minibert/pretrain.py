"""Pre-training BERT with its two objectives (section 3.1 of the paper), the loop behind scripts/pretrain.py.
It trains a small BERT from scratch, or continues pre-training a pretrained one on in-domain text before
fine-tuning (Gururangan et al. 2020, "Don't Stop Pretraining"). The examples (sentence pairs, 15% masking)
come from minibert/pretraining_data.py.

    once:         read the corpus, tokenize it                               load_corpus, tokenize_documents
    every epoch:  new sentence pairs and masks, drawn from (seed, epoch)     epoch_batches
    every step:   loss = MLM cross-entropy (at the chosen positions)         PretrainingLoss
                       + NSP cross-entropy (from [CLS])
                  backward, clip the gradient norm, AdamW step, next learning rate

The MLM logits are computed only at the ~15% chosen positions (as the original TF code did with
`masked_lm_positions`): the loss is the same number as `BertForPreTraining(...).loss`, but the (B, T, V)
logits tensor, the largest in the model (2 GB for B=64, T=256 in float32), is never built.

The loop runs in one process on one device (no torchrun): a small BERT, or a few hundred steps of
continued pre-training, fit one GPU comfortably.
"""

from __future__ import annotations

import dataclasses
import math
import random
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .config import BertConfig
from .data import batch_order, load_movie_reviews
from .heads import IGNORE_INDEX, BertForPreTraining
from .optim import AdamW, LinearWarmupDecay, param_groups
from .inspection import fill_mask
from .pretraining_data import (MOVIE_REVIEWS, Masker, build_examples, held_out_documents, load_corpus, pretraining_batch,
                               tokenize_documents)
from .tokenizer import BertTokenizer
from .training import (
    LossLog,
    StopFlag,
    autocast,
    check_options,
    choose_precision,
    optimizer_step,
    pick_device,
    plot_curves,
    model_files,
    prepare_output_dir,
    release_output_dir,
    resume_from,
    save_checkpoint,
    saving,
    seed_everything,
    warn_cpu_training,
    write_json,
    written,
)

# ---- The loss ---------------------------------------------------------------------------------------


class PretrainingLoss(nn.Module):
    """BertForPreTraining's two losses, with the MLM head applied only at the chosen positions.

    A module (rather than a function) so that torch.compile sees the whole step as one graph.
    """

    def __init__(self, model: BertForPreTraining):
        super().__init__()
        self.model = model

    def forward(self, input_ids, token_type_ids, attention_mask, mlm_positions, mlm_labels, next_sentence_label):
        """Returns (mlm loss, nsp loss), two scalars."""
        m = self.model
        out = m.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        h = out.last_hidden_state  # (B, T, H)
        index = mlm_positions[..., None].expand(-1, -1, h.shape[-1])  # (B, P, H)
        mlm_logits = m.mlm(h.gather(1, index), m.bert.embeddings.tok.weight)  # (B, P, V)
        mlm = F.cross_entropy(mlm_logits.flatten(0, 1).float(), mlm_labels.flatten(), ignore_index=IGNORE_INDEX)
        nsp_logits = m.nsp(out.pooler_output)  # (B, 2)
        nsp = F.cross_entropy(nsp_logits.float(), next_sentence_label)
        return mlm, nsp


LOSS_INPUTS = ("input_ids", "token_type_ids", "attention_mask", "mlm_positions", "mlm_labels", "next_sentence_label")


# ---- The training run --------------------------------------------------------------------------------

# Arguments that must be the same for --resume to continue a run (the rest, e.g. the device, may change).
RESUME_KEYS = ("model", "from_scratch", "hidden_size", "layers", "heads", "intermediate_size", "vocab", "corpus",
               "exclude_test_reviews", "limit_documents", "max_length", "steps", "batch_size", "lr", "warmup",
               "weight_decay", "max_grad_norm", "mlm_prob", "max_predictions", "short_seq_prob", "whole_word_masking",
               "masking", "seed", "val_size", "snapshot_steps")

DEFAULT_MODEL = "bert-base-uncased"

# Named settings for scripts/pretrain.py --preset NAME (options given on the command line still apply on top).
# tiny: BERT-Tiny's shape (Turc et al. 2019: 2 layers, H=128, 2 heads) from scratch on the training reviews with
# the movie-review vocabulary, 3000 steps of 32 x 128 chosen to finish within 15 minutes on a 2-core CPU (issue 16
# measured this step shape at about 20,000 tokens/s there, so about 10 minutes of steps); 200 validation reviews are held
# out to score the masked LM, and snapshots along the way give the accuracy-against-budget curve
# (scripts/bench.py --sections pretraining-value fine-tunes each of them). lr 2e-3: of 5e-4 (the from-scratch
# default), 1e-3 and 2e-3, the best masked-LM accuracy on those validation reviews after 600 steps.
PRESETS = {
    "tiny": {"from_scratch": True, "vocab": "movie-reviews-wordpiece", "hidden_size": 128, "layers": 2, "heads": 2,
             "max_length": 128, "batch_size": 32, "steps": 3000, "lr": 2e-3, "val_size": 200,
             "snapshot_steps": [0, 100, 300, 1000, 3000], "output_dir": "runs/pretrain-tiny"},
}
DEFAULT_LR = {"continue": 1e-4, "scratch": 5e-4}


@dataclass
class PretrainArgs:
    model: str | None = None  # checkpoint to continue pre-training (Hub id or local directory); None: bert-base-uncased
    from_scratch: bool = False  # build a new randomly initialised BERT instead of loading one
    hidden_size: int = 128  # from scratch: H
    layers: int = 2  # from scratch: number of encoder layers
    heads: int = 2  # from scratch: attention heads per layer
    intermediate_size: int | None = None  # from scratch: feed-forward width; None: 4 H
    vocab: str | None = None  # from scratch: vocabulary (file, folder or Hub id); None: bert-base-uncased
    corpus: list[str] = field(default_factory=lambda: [MOVIE_REVIEWS])  # "movie_reviews" and/or text files/folders
    exclude_test_reviews: bool = True  # movie_reviews: only the training split cv000-cv799
    limit_documents: int | None = None  # use only the first N documents (quick checks)
    max_length: int = 128  # tokens per pair, [CLS] and [SEP]s included
    steps: int = 1000  # optimizer steps
    batch_size: int = 32
    lr: float | None = None  # peak learning rate; None: 1e-4 continuing, 5e-4 from scratch
    warmup: float = 0.1  # fraction of the steps spent warming up
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0  # 0 disables clipping
    mlm_prob: float = 0.15  # fraction of tokens chosen for prediction
    max_predictions: int | None = None  # per sequence; None: ceil(mlm_prob * max_length)
    short_seq_prob: float = 0.1  # fraction of pairs aiming at a random shorter length
    whole_word_masking: bool = False  # choose whole words rather than single word pieces
    masking: str = "dynamic"  # dynamic: new pairs and masks every epoch | static: the same every epoch
    seed: int = 0
    val_size: int = 0  # reviews held out of pre-training (half per class) to score the masked LM on unseen text
    snapshot_steps: list[int] | None = None  # also save the model after these steps (0: the initialisation)
    output_dir: str = "runs/pretrain"  # model/, checkpoint.pt, metrics.json and curves.png go here
    device: str = "auto"  # auto | cuda | cpu | cuda:1 ...
    precision: str = "auto"  # auto (bf16 on a GPU or a CPU with native bf16 units, else fp32) | bf16 | fp32
    compile: bool = False  # torch.compile the training step
    resume: bool = False  # continue from output_dir/checkpoint.pt
    overwrite: bool = False  # replace the earlier run in output_dir (its files only)
    save_every: int = 500  # steps between training checkpoints (0: only at the end and on Ctrl-C)
    log_every: int = 10  # steps between progress-bar updates (each reads the losses: a device sync)
    plots: bool = True
    save_model: bool = True
    progress: bool = True

    def validate(self) -> None:
        check_options(self, positive=("steps", "batch_size", "hidden_size", "layers", "heads", "log_every"),
                      limits=("limit_documents", "max_predictions"))
        if self.max_length < 5:
            raise ValueError(f"--max-length must be >= 5 ([CLS] A [SEP] B [SEP]), got {self.max_length}")
        if self.from_scratch and self.model is not None:
            raise ValueError("--model and --from-scratch exclude each other: continue a checkpoint, or build a new model")
        if not self.from_scratch and self.vocab is not None:
            raise ValueError("--vocab is only for --from-scratch: a pretrained model must keep its own vocabulary")
        if not 0 < self.mlm_prob < 1:
            raise ValueError(f"--mlm-prob must be in (0, 1), got {self.mlm_prob}")
        if not 0 <= self.short_seq_prob <= 1:
            raise ValueError(f"--short-seq-prob must be in [0, 1], got {self.short_seq_prob}")
        if self.masking not in ("dynamic", "static"):
            raise ValueError(f"--masking must be dynamic or static, got {self.masking!r}")
        if self.val_size < 0 or self.val_size % 2 or self.val_size >= 1600:
            raise ValueError(f"--val-size must be an even number from 0 to 1598 (half per class of the training reviews), got {self.val_size}")
        if any(s < 0 for s in self.snapshot_steps or ()):
            raise ValueError(f"--snapshot-steps must be >= 0 (0: the initialisation), got {self.snapshot_steps}")
        if self.save_every < 0:
            raise ValueError(f"--save-every must be >= 0, got {self.save_every}")

    @property
    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR["scratch" if self.from_scratch else "continue"]

    @property
    def predictions_per_seq(self) -> int:
        return self.max_predictions or math.ceil(self.mlm_prob * self.max_length)


def build_model(args: PretrainArgs) -> tuple[BertForPreTraining, BertTokenizer]:
    """A new BERT (--from-scratch) or a pretrained one with its tokenizer; MLM/NSP heads that the
    checkpoint lacks are initialised (and reported)."""
    if args.from_scratch:
        tokenizer = BertTokenizer.from_pretrained(args.vocab or DEFAULT_MODEL)
        config = BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=args.hidden_size,
            num_hidden_layers=args.layers,
            num_attention_heads=args.heads,
            intermediate_size=args.intermediate_size or 4 * args.hidden_size,
            max_position_embeddings=max(512, args.max_length),
            pad_token_id=tokenizer.pad_token_id,
        )
        return BertForPreTraining(config), tokenizer
    name = args.model or DEFAULT_MODEL
    model, report = BertForPreTraining.from_pretrained(name, output_loading_info=True)
    tokenizer = BertTokenizer.from_pretrained(name)
    if report.initialized:  # e.g. a sentence-embedding BERT such as all-MiniLM-L6-v2 ships without its heads
        heads = sorted({"MLM" if k.startswith("cls.predictions") else "NSP" for k in report.initialized})
        tqdm.write(f"{name} has no {' and '.join(heads)} head weights: they start from a fresh initialisation, so the "
                   f"first steps' losses are those of an untrained head")
    if tokenizer.vocab_size > model.config.vocab_size:
        raise ValueError(f"the tokenizer of {name} has {tokenizer.vocab_size} tokens but the model only {model.config.vocab_size}")
    if args.max_length > model.config.max_position_embeddings:
        raise ValueError(f"--max-length {args.max_length} exceeds the {model.config.max_position_embeddings} positions of {name}")
    return model, tokenizer


def start_or_resume(args: PretrainArgs, ckpt_path: Path, model, optimizer: AdamW, schedule: LinearWarmupDecay) -> tuple:
    """(step, epoch, batch, seconds so far, loss history, report): zeros for a new run, the checkpoint's with --resume."""
    if args.resume and ckpt_path.exists():
        state = resume_from(ckpt_path, args, RESUME_KEYS, model, optimizer, schedule)
        tqdm.write(f"resuming {ckpt_path.parent} at step {state['step']} (epoch {state['epoch'] + 1}, batch {state['batch']})")
        return state["step"], state["epoch"], state["batch"], state["elapsed"], state["history"], state["report"]
    if args.resume:
        tqdm.write(f"--resume: no checkpoint in {ckpt_path.parent} yet, starting from the beginning")
    return 0, 0, 0, 0.0, {"step": [], "mlm": [], "nsp": [], "lr": []}, {"snapshots": []}


def epoch_batches(documents, masker: Masker, tokenizer: BertTokenizer, args: PretrainArgs, epoch: int):
    """The examples of one epoch and their batches. Depends only on (seed, epoch), so a resumed run
    sees exactly what an uninterrupted one would have."""
    draw = epoch if args.masking == "dynamic" else 0  # static: the same pairs and masks every epoch
    rng = random.Random(f"minibert-pretrain/{args.seed}/{draw}")
    examples = build_examples(documents, masker, tokenizer.cls_token_id, tokenizer.sep_token_id, args.max_length, rng, args.short_seq_prob)
    order = batch_order(examples, args.batch_size, shuffle=True, seed=args.seed, epoch=epoch, group_by_length=False)
    batches = [b for b in order if len(b) == args.batch_size]  # drop the last partial batch: same shapes every step
    if not batches:
        raise ValueError(f"the corpus gives only {len(examples)} examples per epoch, fewer than --batch-size {args.batch_size}")
    return examples, batches


def run(args: PretrainArgs, documents: list[list[str]] | None = None, callback: Callable[[int, dict], None] | None = None) -> dict:
    """Pre-train (or continue pre-training) a BERT; write output_dir/{model/, snapshots/, checkpoint.pt, metrics.json, curves.png}.

    Args:
        args: the settings (see PretrainArgs and scripts/pretrain.py --help).
        documents: the corpus as documents of sentences; None reads args.corpus with load_corpus.
        callback: called as callback(step, losses) after every optimizer step, where losses holds the
            step's "mlm" and "nsp" loss tensors (reading them syncs the device).
    Returns:
        the metrics also written to metrics.json ("status" is "completed" or "interrupted").
    """
    args.validate()
    device = pick_device(args.device, training=False)
    out = Path(args.output_dir)
    prepare_output_dir(out, resume=args.resume, overwrite=args.overwrite)
    ckpt_path = out / "checkpoint.pt"
    started = time.perf_counter()

    texts, held_out_texts = read_texts(args, documents)  # before the model: a missing corpus is found at once
    seed_everything(args.seed)  # the initialisation of a new model or of missing heads, and dropout
    model, tokenizer = build_model(args)
    model.to(device).train()
    precision = choose_precision(device, args.precision)  # said once the model loaded: a bad input is the only line
    warn_cpu_training(device, model)
    docs = tokenize_documents(texts, tokenizer)
    masker = Masker.from_tokenizer(tokenizer, args.mlm_prob, args.predictions_per_seq, args.whole_word_masking)
    held_out = HeldOut(tokenize_documents(held_out_texts, tokenizer), masker, tokenizer, args) if held_out_texts else None

    optimizer = AdamW(param_groups(model, args.weight_decay), lr=args.peak_lr)
    schedule = LinearWarmupDecay(optimizer, warmup_steps=int(args.warmup * args.steps), total_steps=args.steps)
    step, epoch, next_batch, elapsed_before, history, report = start_or_resume(args, ckpt_path, model, optimizer, schedule)

    def save() -> None:
        save_checkpoint(ckpt_path, model, optimizer, schedule, args, elapsed_before + time.perf_counter() - started,
                        step=step, epoch=epoch, batch=next_batch, history=history, report=report)

    def milestones() -> None:  # before the first step and after each: fill-mask "before", snapshots
        if step == 0 and "fill_mask_before" not in report:
            report["fill_mask_before"] = fill_mask_examples(model, tokenizer)
        if step in (args.snapshot_steps or ()) and step not in [s["step"] for s in report["snapshots"]]:  # (a resumed run)
            seconds = elapsed_before + time.perf_counter() - started
            report["snapshots"].append(snapshot(model, tokenizer, out / "snapshots" / f"step-{step}", step, seconds, held_out, device, precision))

    loss_fn = PretrainingLoss(model)
    forward = torch.compile(loss_fn) if args.compile else loss_fn
    log = LossLog(history, ("mlm", "nsp"), args.log_every, ckpt_path)
    bar = tqdm(total=args.steps, initial=step, desc="pre-training", disable=not args.progress, dynamic_ncols=True)
    examples, batches = None, []
    with StopFlag() as stop:
        tqdm.write(f"pre-training: {args.steps - step} steps to go; Ctrl-C or SIGTERM saves a checkpoint and stops", file=sys.stderr)
        milestones()
        while step < args.steps and not stop.set:
            examples, batches = epoch_batches(docs, masker, tokenizer, args, epoch)
            while next_batch < len(batches) and step < args.steps and not stop.set:
                batch = pretraining_batch([examples[i] for i in batches[next_batch]], args.max_length,
                                          args.predictions_per_seq, tokenizer.pad_token_id)
                with autocast(device, precision):
                    mlm, nsp = forward(**{k: batch[k].to(device, non_blocking=True) for k in LOSS_INPUTS})
                (mlm + nsp).backward()
                optimizer_step(model, optimizer, schedule, args.max_grad_norm)
                step, next_batch = step + 1, next_batch + 1
                log.add(step, [mlm, nsp], schedule.lr, args.batch_size)
                bar.update(1)
                if callback is not None:
                    callback(step, {"mlm": mlm.detach(), "nsp": nsp.detach()})
                if log.due() or step == args.steps or stop.set:
                    bar.set_postfix(**log.flush(), epoch=epoch + 1)
                milestones()
                if args.save_every and step % args.save_every == 0 and step < args.steps:
                    save()
            if next_batch >= len(batches):
                epoch, next_batch = epoch + 1, 0
        bar.close()
        status = "interrupted" if stop.set and step < args.steps else "completed"
        save()
        if status == "interrupted":
            tqdm.write(f"saved {ckpt_path} at step {step}; continue with the same command plus --resume")

    metrics = summary(args, model, docs, examples, batches, history, status, stop.reason, device, precision,
                      elapsed_before + time.perf_counter() - started, step, epoch, next_batch)
    metrics |= final_report(model, tokenizer, docs, held_out, report, device, precision, status)
    write_outputs(args, out, model, tokenizer, metrics)
    release_output_dir(out)
    return metrics


def summary(args: PretrainArgs, model, docs, examples, batches, history: dict, status: str, reason: str | None, device,
            precision: str, seconds: float, step: int, epoch: int, next_batch: int) -> dict:
    """The run's metrics: its settings, corpus, progress, time and losses."""
    return {
        "status": status,
        "stopped_by": reason if status == "interrupted" else None,  # SIGINT, SIGTERM or None
        "args": dataclasses.asdict(args),
        "lr": args.peak_lr,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": precision,
        "parameters": model.num_parameters(),
        "corpus": {"documents": len(docs), "sentences": sum(map(len, docs)), "tokens": sum(len(s) for d in docs for s in d)},
        "examples_per_epoch": len(examples) if examples is not None else None,
        "epochs": epoch + (next_batch / len(batches) if batches else 0.0),  # passes over the corpus
        "steps": step,
        "wall_seconds": seconds,
        "loss_start": _window_mean(history, slice(0, 10)),
        "loss_end": _window_mean(history, slice(-10, None)),
        "history": history,
    }


# ---- What the model learned: held-out masked tokens, a unigram baseline, fill-mask before and after -----

# Sentences to fill in before and after pre-training (words that the movie-review vocabulary holds whole).
FILL_MASK_PROMPTS = (
    "this is one of the best [MASK] of the year .",
    "the special [MASK] are impressive .",
    "i [MASK] this movie .",
    "the film is directed by steven [MASK] .",
)


class HeldOut:
    """Masked tokens of reviews that pre-training never reads, drawn once (fixed seed), so that every snapshot
    is scored on the very same positions. Accuracy = how often the top prediction is the original token."""

    def __init__(self, documents, masker: Masker, tokenizer: BertTokenizer, args: PretrainArgs):
        rng = random.Random(f"minibert-pretrain-held-out/{args.seed}")
        examples = build_examples(documents, masker, tokenizer.cls_token_id, tokenizer.sep_token_id, args.max_length, rng, 0.0)
        self.batches = [pretraining_batch(examples[i : i + args.batch_size], args.max_length, args.predictions_per_seq,
                                          tokenizer.pad_token_id) for i in range(0, len(examples), args.batch_size)]
        self.documents = len(documents)

    def labels(self) -> torch.Tensor:
        """The original ids of all held-out masked tokens, (N,)."""
        targets = torch.cat([b["mlm_labels"].flatten() for b in self.batches])
        return targets[targets != IGNORE_INDEX]

    @torch.no_grad()
    def score(self, model: BertForPreTraining, device, precision: str) -> dict:
        was_training = model.training
        model.eval()  # no dropout
        correct, loss_sum = 0, 0.0
        for b in self.batches:
            b = {k: v.to(device) for k, v in b.items()}
            with autocast(device, precision):
                h = model.bert(b["input_ids"], attention_mask=b["attention_mask"], token_type_ids=b["token_type_ids"]).last_hidden_state
                index = b["mlm_positions"][..., None].expand(-1, -1, h.shape[-1])  # (B, P, H)
                logits = model.mlm(h.gather(1, index), model.bert.embeddings.tok.weight).float()  # (B, P, V)
            chosen = b["mlm_labels"] != IGNORE_INDEX  # (B, P)
            correct += (logits.argmax(-1) == b["mlm_labels"])[chosen].sum().item()
            loss_sum += F.cross_entropy(logits[chosen], b["mlm_labels"][chosen], reduction="sum").item()
        model.train(was_training)
        n = len(self.labels())
        return {"masked_tokens": n, "accuracy": correct / n, "loss": loss_sum / n}

    def unigram_baseline(self, documents, vocab_size: int) -> dict:
        """What word frequencies alone achieve, learned from the pre-training documents: always answering the most
        frequent token (accuracy), and the unigram distribution's cross-entropy (add-one smoothed, the loss)."""
        counts = torch.zeros(vocab_size)
        for d in documents:
            for s in d:
                counts += torch.bincount(torch.tensor(s), minlength=vocab_size)
        p = (counts + 1) / (counts.sum() + vocab_size)  # (V,)
        labels = self.labels()
        top = int(counts.argmax())
        return {"token_id": top, "accuracy": (labels == top).float().mean().item(), "loss": -p[labels].log().mean().item()}


    def neighbour_baseline(self, documents) -> dict:
        """What a lookup table of neighbours achieves, read from the pre-training documents: for each held-out masked
        token, the token seen most often between the same left and right neighbours; if that pair was never seen, the
        one seen most often after the same left neighbour; else the most frequent token. It reads the same corrupted
        input as the model (a neighbour that is itself masked is "[MASK]", which the table has never seen). A model
        that beats this has learned more from its context than which words stand next to which."""
        after, between = defaultdict(Counter), defaultdict(Counter)
        for d in documents:
            s = [t for sentence in d for t in sentence]
            for i in range(1, len(s)):
                after[s[i - 1]][s[i]] += 1
                if i + 1 < len(s):
                    between[s[i - 1], s[i + 1]][s[i]] += 1
        top = Counter(t for d in documents for sentence in d for t in sentence).most_common(1)[0][0]
        correct = 0
        for b in self.batches:
            for ids, positions, targets in zip(b["input_ids"].tolist(), b["mlm_positions"].tolist(), b["mlm_labels"].tolist()):
                for p, target in zip(positions, targets):
                    if target == IGNORE_INDEX:
                        continue
                    left, right = ids[p - 1], ids[p + 1] if p + 1 < len(ids) else None
                    table = between.get((left, right)) or after.get(left)
                    correct += (table.most_common(1)[0][0] if table else top) == target
        return {"accuracy": correct / len(self.labels())}


def fill_mask_examples(model: BertForPreTraining, tokenizer: BertTokenizer, top_k: int = 5) -> dict[str, list[str]]:
    """{prompt: the top_k tokens for its [MASK]}."""
    return {text: [t for t, _ in fill_mask(model, tokenizer, text, top_k=top_k)[0]] for text in FILL_MASK_PROMPTS}


def snapshot(model: BertForPreTraining, tokenizer: BertTokenizer, folder: Path, step: int, seconds: float,
             held_out: HeldOut | None, device, precision: str) -> dict:
    """Save the model as it is after `step` steps and `seconds` of the run (HF layout, heads and vocabulary), and
    score it on the held-out text."""
    with saving(*model_files(folder)):
        model.save_pretrained(folder, tokenizer=tokenizer)
    return {"step": step, "seconds": seconds, "model": str(folder)} | ({"held_out": held_out.score(model, device, precision)} if held_out else {})


def final_report(model, tokenizer, docs, held_out: HeldOut | None, report: dict, device, precision: str, status: str) -> dict:
    """The metrics' "learned" part, printed too: held-out accuracy against the unigram and neighbour baselines,
    fill-mask before/after."""
    if status != "completed":
        return {"snapshots": report["snapshots"]}
    learned = {"snapshots": report["snapshots"], "fill_mask": {"before": report["fill_mask_before"],
                                                               "after": fill_mask_examples(model, tokenizer)}}
    if held_out is not None:
        learned["held_out"] = held_out.score(model, device, precision) | {"documents": held_out.documents}
        learned["unigram_baseline"] = held_out.unigram_baseline(docs, tokenizer.vocab_size)
        learned["neighbour_baseline"] = held_out.neighbour_baseline(docs)
        m, u = learned["held_out"], learned["unigram_baseline"]
        top = tokenizer.convert_ids_to_tokens([u["token_id"]])[0]
        print(f"held-out masked tokens ({m['masked_tokens']} in {held_out.documents} reviews never pre-trained on): "
              f"accuracy {100 * m['accuracy']:.1f}%, loss {m['loss']:.2f}; unigram baseline (always {top!r}): "
              f"{100 * u['accuracy']:.1f}%, loss {u['loss']:.2f}; a table of each token's neighbours: "
              f"{100 * learned['neighbour_baseline']['accuracy']:.1f}%")
    for text, before in learned["fill_mask"]["before"].items():
        print(f"{text}\n    before: {' '.join(before)}\n    after:  {' '.join(learned['fill_mask']['after'][text])}")
    return learned


def read_texts(args: PretrainArgs, documents: list[list[str]] | None) -> tuple[list[list[str]], list[list[str]]]:
    """(pre-training documents, held-out documents): the documents given, or those of args.corpus, cut to
    --limit-documents. --val-size N holds out movie_reviews' validation reviews (pretraining_data.validation_reviews),
    or the last N documents of other corpora."""
    if documents is None and args.corpus == [MOVIE_REVIEWS] and args.exclude_test_reviews:
        reviews = load_movie_reviews()  # read once (2000 files from a zip: seconds)
        texts = load_corpus(args.corpus, held_out=args.val_size, reviews=reviews)
        held = held_out_documents(args.val_size, reviews)
    else:
        texts = documents if documents is not None else load_corpus(args.corpus, args.exclude_test_reviews)
        texts, held = (texts[: -args.val_size], texts[-args.val_size :]) if args.val_size else (texts, [])
    return (texts[: args.limit_documents] if args.limit_documents else texts), held


def write_outputs(args: PretrainArgs, out: Path, model: BertForPreTraining, tokenizer: BertTokenizer, metrics: dict) -> None:
    if metrics["status"] == "completed" and args.save_model:
        # HF layout with the MLM and NSP heads and the vocabulary: scripts/finetune.py --model out/model,
        # scripts/fill_mask.py --model out/model and transformers' from_pretrained all read it.
        with saving(*model_files(out / "model")):
            model.save_pretrained(out / "model", tokenizer=tokenizer)
    write_json(out / "metrics.json", metrics)
    if args.plots and metrics["history"]["step"]:
        title = f"pre-training {'from scratch' if args.from_scratch else args.model or DEFAULT_MODEL}"
        with saving(out / "curves.png"):
            plot_curves(metrics["history"], out / "curves.png", title, losses={"mlm": "masked LM loss", "nsp": "next sentence loss"})
    print(f"outputs in {out}/: {', '.join(written(out))}")


def _window_mean(history: dict, window: slice) -> dict | None:
    if not history["step"]:
        return None
    return {k: sum(history[k][window]) / len(history[k][window]) for k in ("mlm", "nsp")}
