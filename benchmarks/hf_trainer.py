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


def trainer_run(args: FinetuneArgs, data: Data, seed: int) -> dict:
    """Fine-tune with transformers.Trainer; returns the test accuracy after the last epoch and the wall time."""
    import transformers

    started = time.perf_counter()
    # float32 master weights like minibert: transformers 5 would otherwise keep a float16 file in float16
    kwargs = dict(num_labels=2, attn_implementation="sdpa", dtype=torch.float32)
    if args.classifier_dropout is not None:
        kwargs["classifier_dropout"] = args.classifier_dropout
    model = transformers.BertForSequenceClassification.from_pretrained(args.model, **kwargs)
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
    epochs = []
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision = "bf16" if torch.cuda.is_available() else "fp32"

    class EvaluateEachEpoch(transformers.TrainerCallback):
        # The same per-review scoring as minibert (windows averaged), independent of the Trainer's eval sampler
        def on_epoch_end(self, train_args, state, control, model=None, **kwargs):
            epochs.append(evaluate(model, data.test, data.n_test_docs, args, device, precision)["accuracy"])

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
