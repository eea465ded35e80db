#!/usr/bin/env python
"""Fine-tune BERT on the NLTK movie_reviews sentiment corpus (fixed split: cv000-cv799 train, cv800-cv999 test).

    python scripts/finetune.py                                   # bert-base-uncased from the Hub, defaults
    python scripts/finetune.py --model path/to/bert --seeds 0 1 2 3 4
    python scripts/finetune.py --val-size 200 --no-test          # compare recipes without looking at the test split
    python scripts/finetune.py --cv 10                           # Pang & Lee's 10-fold cross-validation
    python scripts/finetune.py --data my_texts/ --output-dir runs/mine   # your own folder (or .csv/.tsv/.jsonl)
    torchrun --nproc_per_node=2 scripts/finetune.py ...          # DistributedDataParallel

A folder that holds an earlier run is never overwritten silently: continue it with --resume, or replace it
with --overwrite (which deletes only the files that run wrote). A folder another run is writing into is refused. Ctrl-C or SIGTERM finishes the current step, saves a checkpoint and exits (130 after
Ctrl-C, 143 after SIGTERM); the same command plus --resume continues exactly. Errors in the input are one
line on stderr and exit code 2.
"""

import sys

from minibert.data import STRATEGIES
from minibert.finetune import PRESETS, FinetuneArgs, run
from minibert.cli import main_for, parse_with_presets, parser_for
from minibert.training import keep_freed_memory

HELP = {
    "model": "Hub id or local directory (HF layout: config.json, model.safetensors, vocab.txt)",
    "output_dir": "where model/, checkpoint.pt, metrics.json, summary.json and the PNG plots are written",
    "truncation": "how reviews longer than max-length are cut: head, tail, head+tail, or chunks (all windows, logits averaged)",
    "head": "head+tail: tokens kept from the start of the review; the rest of max-length comes from its end",
    "max_length": "tokens per example including [CLS] and [SEP] (at most the model's 512 positions)",
    "stride": "chunks: tokens shared by consecutive windows (None: max-length // 4)",
    "epochs": "passes over the training reviews",
    "batch_size": "examples per optimizer step (the global batch under torchrun)",
    "lr": "peak learning rate of AdamW",
    "warmup": "fraction of the steps spent warming up: the lr rises linearly to its peak, from peak/(w+1) at the first of the w warmup steps, then decays linearly, to peak/(N-w) at the last of the N steps",
    "weight_decay": "AdamW decoupled weight decay (not on biases and LayerNorm)",
    "max_grad_norm": "clip the global gradient norm to this (0: no clipping)",
    "layer_decay": "layer-wise learning-rate decay: layer i of L learns at lr x layer-decay^(L-i), the embeddings at "
                   "lr x layer-decay^L, the head at lr (Sun et al. 2019); 1 turns it off",
    "average_last": "keep the mean of the weights at the end of the last N epochs instead of one epoch's (0: off)",
    "classifier_dropout": "dropout before the classifier (default: the checkpoint's hidden dropout)",
    "seed": "random seed (initialisation of the classifier, data order, dropout)",
    "seeds": "run once per seed and report the mean +- std of the test accuracy",
    "val_size": "training reviews held out (half per class: the highest-numbered training files) to choose the best "
                "epoch, and to compare recipes; 0 keeps the last epoch",
    "test": "evaluate on the test reviews; --no-test (with --val-size) chooses a recipe without ever scoring the test split",
    "cv": "10: Pang & Lee's 10-fold cross-validation (cv000-cv099 = fold 1, ..., cv900-cv999 = fold 10), each fold "
          "tested once by a model trained on the other nine, reported as mean +- std over folds; 0: the fixed split",
    "folds": "with --cv 10: run only these folds (the rest can follow later with --resume)",
    "eval_batch_size": "examples per batch at evaluation",
    "group_by_length": "batch reviews of similar length together (less padding)",
    "device": "auto (cuda when available), cuda, cuda:N or cpu",
    "precision": "auto (bf16 autocast on a GPU or a CPU with native bf16 units, else fp32; the run says which), bf16 or fp32",
    "compile": "torch.compile the model and the AdamW update (faster steps after a one-time compilation)",
    "resume": "continue the run saved in output-dir/checkpoint.pt (after Ctrl-C or a crash)",
    "overwrite": "replace the earlier run in output-dir (deletes only the files it recorded writing, listed in output-dir/.minibert-files)",
    "stop_after_steps": "stop like Ctrl-C after this many optimizer steps (save a checkpoint; continue with --resume)",
    "limit_train": "use only this many training reviews, half per class (quick checks)",
    "limit_test": "use only this many test reviews, half per class (quick checks)",
    "log_every": "steps between progress-bar updates",
    "plots": "write curves.png and confusion.png",
    "save_model": "save the selected epoch's model in HF layout to output-dir/model",
    "progress": "show the progress bar",
    "data": "your own labelled texts instead of movie_reviews: a folder with one subfolder of .txt files per class, or a .csv / .tsv / .jsonl file",
    "test_data": "the test set for --data, in the same layout (default: hold out --test-fraction of --data)",
    "test_fraction": "share of each class of --data held out as the test set when there is no --test-data",
    "split_seed": "seed of the held-out test (and --val-size) examples of --data; the same for all --seeds",
    "text_column": "--data table: the column holding the text",
    "pair_column": "--data table: the column holding the second text of sentence pairs (default: text_pair when present)",
    "label_column": "--data table: the column holding the label (any names; they are kept in the saved model)",
}


def parser():
    return parser_for(FinetuneArgs, HELP, __doc__, {"truncation": STRATEGIES, "precision": ("auto", "bf16", "fp32")})


def main(argv=None) -> int:
    options = vars(parse_with_presets(parser(), PRESETS, argv))
    options.pop("preset")
    keep_freed_memory()  # CPU steps free and re-allocate their activations: no page faults each time (about 5%)
    return main_for(run, FinetuneArgs(**options))


if __name__ == "__main__":
    sys.exit(main())
