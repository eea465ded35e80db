"""The baseline the fine-tuning recipe is measured against: transformers' Trainer, given the same weights,
the same split, the very same tokenized and truncated examples, and the same hyperparameters."""

from __future__ import annotations

import inspect
import statistics
import tempfile
import time

import torch

from minibert.finetune import Data, FinetuneArgs, evaluate


class _Examples(torch.utils.data.Dataset):
    def __init__(self, examples):
        self.examples = examples

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, i):
        e = self.examples[i]
        return {"input_ids": e.input_ids, "labels": e.label}


def _pad(features, pad_id=0):
    T = max(len(f["input_ids"]) for f in features)
    ids = torch.full((len(features), T), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, f in enumerate(features):
        ids[i, : len(f["input_ids"])] = torch.tensor(f["input_ids"])
        mask[i, : len(f["input_ids"])] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([f["labels"] for f in features])}


def load_model(args: FinetuneArgs):
    """transformers' BertForSequenceClassification from args.model, always in float32 like minibert's master
    weights. (transformers 5 keeps a float16 file in float16 by default; trained that way the baseline
    diverged to 50% on the H100: the first of two bugs that cost GPU time.)"""
    import transformers

    kwargs = dict(num_labels=2, attn_implementation="sdpa", dtype=torch.float32)
    if args.classifier_dropout is not None:
        kwargs["classifier_dropout"] = args.classifier_dropout
    return transformers.BertForSequenceClassification.from_pretrained(args.model, **kwargs)


def score(model, examples, n_docs: int, args: FinetuneArgs, device, precision: str) -> dict:
    """The baseline's test metrics: its model's logits computed in minibert's own evaluation code, which keeps
    each example with its review whatever order the batches run in. (The Trainer's own evaluation loop sorts
    examples by length when group_by_length is on, and its predictions were once scored against the wrong
    reviews: the second bug.)"""
    return evaluate(model, examples, n_docs, args, device, precision)


def trainer_run(args: FinetuneArgs, data: Data, seed: int) -> dict:
    """Fine-tune with transformers.Trainer; returns the test accuracy after the last epoch and the wall time."""
    import transformers

    started = time.perf_counter()
    model = load_model(args)
    steps = -(-len(data.train) // args.batch_size) * args.epochs
    accepted = inspect.signature(transformers.TrainingArguments).parameters
    options = dict(
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.eval_batch_size,
        learning_rate=args.lr,
        num_train_epochs=args.epochs,
        warmup_steps=int(args.warmup * steps),
        weight_decay=args.weight_decay,
        max_grad_norm=args.max_grad_norm,
        lr_scheduler_type="linear",
        bf16=torch.cuda.is_available(),
        seed=seed,
        eval_strategy="no",  # evaluated by the callback below, with the very code that scores minibert
        save_strategy="no",
        logging_steps=50,
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
        optim="adamw_torch_fused" if torch.cuda.is_available() else "adamw_torch",
    )
    if args.group_by_length:  # renamed in transformers 5
        if "train_sampling_strategy" in accepted:
            options["train_sampling_strategy"] = "group_by_length"
        else:
            options["group_by_length"] = True
    if not torch.cuda.is_available():
        options["use_cpu"] = True
    if args.device == "cpu":
        options.update(use_cpu=True, bf16=False, optim="adamw_torch")
    epochs = []
    device = torch.device("cuda" if torch.cuda.is_available() and args.device != "cpu" else "cpu")
    precision = "bf16" if device.type == "cuda" else "fp32"

    class EvaluateEachEpoch(transformers.TrainerCallback):
        # The same per-review scoring as minibert (windows averaged), independent of the Trainer's eval sampler
        def on_epoch_end(self, train_args, state, control, model=None, **kwargs):
            epochs.append(score(model, data.test, data.n_test_docs, args, device, precision)["accuracy"])

    with tempfile.TemporaryDirectory() as tmp:
        trainer = transformers.Trainer(
            model=model,
            args=transformers.TrainingArguments(output_dir=tmp, **{k: v for k, v in options.items() if k in accepted}),
            train_dataset=_Examples(data.train),
            data_collator=_pad,
            callbacks=[EvaluateEachEpoch()],
        )
        trainer.train()
    return {"seed": seed, "accuracy": epochs[-1], "per_epoch": epochs, "wall_seconds": time.perf_counter() - started}


def summarize(runs: list[dict]) -> dict:
    acc = [r["accuracy"] for r in runs]
    return {
        "accuracy": acc,
        "accuracy_mean": statistics.mean(acc),
        "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
        "wall_seconds": sum(r["wall_seconds"] for r in runs),
        "runs": runs,
    }
