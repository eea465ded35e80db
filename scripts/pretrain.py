#!/usr/bin/env python
"""Pre-train BERT with masked LM + next sentence prediction: from scratch, or continued on in-domain text.

    python scripts/pretrain.py --preset tiny                               # BERT-Tiny from scratch on the training reviews, CPU
    python scripts/pretrain.py --from-scratch --steps 2000                 # a small BERT (H=128, 2 layers) on movie_reviews
    python scripts/pretrain.py --model bert-base-uncased --steps 1000      # continue pre-training on the training reviews
    python scripts/pretrain.py --from-scratch --corpus my_texts/ --vocab vocab.txt
    python scripts/finetune.py --model runs/pretrain/model                 # then fine-tune what it saved

Text files: documents separated by blank lines, one sentence per line. By default only the training reviews
(cv000-cv799) are read, so that the fine-tuning test reviews stay unseen. Ctrl-C or SIGTERM saves a checkpoint
and exits (130 after Ctrl-C, 143 after SIGTERM); the same command plus --resume continues it. A folder that holds
an earlier run is refused unless --resume or --overwrite is given. Writes output-dir/{model/, snapshots/, checkpoint.pt,
metrics.json, curves.png}. Errors in the input are one line on stderr and exit code 2.
"""

import sys

from minibert.pretrain import PRESETS, PretrainArgs, run
from minibert.cli import main_for, parse_with_presets, parser_for
from minibert.training import keep_freed_memory

HELP = {
    "model": "pretrained checkpoint to continue from: Hub id or local directory (HF layout); "
             "MLM/NSP heads it lacks are initialised (default: bert-base-uncased, unless --from-scratch)",
    "from_scratch": "build a new, randomly initialised BERT of the size below instead of loading one",
    "hidden_size": "--from-scratch: hidden size H",
    "layers": "--from-scratch: number of encoder layers",
    "heads": "--from-scratch: attention heads per layer (must divide the hidden size)",
    "intermediate_size": "--from-scratch: feed-forward inner size (default: 4 x hidden-size)",
    "vocab": "--from-scratch: WordPiece vocabulary (vocab.txt file, folder or Hub id), e.g. "
             "vocab/movie-reviews-wordpiece.txt, or the shipped movie-reviews-wordpiece (default: bert-base-uncased)",
    "corpus": "'movie_reviews' and/or text files or folders of *.txt (blank line between documents, one sentence per line)",
    "exclude_test_reviews": "movie_reviews: read only the training split cv000-cv799, never the fine-tuning test reviews",
    "limit_documents": "use only the first N documents, for quick checks (default: all)",
    "max_length": "tokens per [CLS] A [SEP] B [SEP] example, special tokens included",
    "steps": "optimizer steps",
    "batch_size": "examples per optimizer step",
    "lr": "peak learning rate of AdamW (default: 1e-4 continuing a checkpoint, 5e-4 from scratch)",
    "warmup": "fraction of the steps spent warming up: the lr rises linearly to its peak, from peak/(w+1) at the first of the w warmup steps, then decays linearly, to peak/(N-w) at the last of the N steps",
    "weight_decay": "AdamW decoupled weight decay (not on biases and LayerNorm)",
    "max_grad_norm": "clip the global gradient norm to this (0: no clipping)",
    "mlm_prob": "fraction of the tokens chosen for prediction (of those: 80%% [MASK], 10%% random, 10%% unchanged)",
    "max_predictions": "at most this many predicted tokens per example (default: ceil(mlm-prob x max-length))",
    "short_seq_prob": "fraction of examples that aim at a random length shorter than max-length",
    "whole_word_masking": "choose whole words (all their ## pieces together) rather than single pieces",
    "masking": "dynamic: new sentence pairs and masks every epoch (RoBERTa); static: the same every epoch (BERT)",
    "seed": "random seed (initialisation, pairs, masks, batch order, dropout)",
    "val_size": "movie_reviews: hold out the N highest-numbered training reviews (half per class, the ones finetune.py "
                "--val-size N holds out) and report the masked-LM accuracy on them against a unigram baseline; "
                "other corpora: the last N documents",
    "snapshot_steps": "also save the model after these steps to output-dir/snapshots/step-N (0: the initialisation), "
                      "each scored on the --val-size reviews; steps beyond --steps are left out (default: none)",
    "output_dir": "where model/, checkpoint.pt, metrics.json and curves.png are written",
    "device": "auto (cuda when available), cuda, cuda:N or cpu",
    "precision": "auto (bf16 autocast on a GPU or a CPU with native bf16 units, else fp32; the run says which), bf16 or fp32",
    "compile": "torch.compile the training step (faster steps after a one-time compilation)",
    "resume": "continue the run saved in output-dir/checkpoint.pt (after Ctrl-C or a crash)",
    "overwrite": "replace the earlier run in output-dir (deletes only the files it recorded writing, listed in output-dir/.minibert-files)",
    "save_every": "steps between training checkpoints (0: only at the end and on Ctrl-C)",
    "log_every": "steps between progress-bar updates",
    "plots": "write curves.png (MLM and NSP loss per step)",
    "save_model": "save the final model with its heads and vocabulary in HF layout to output-dir/model",
    "progress": "show the progress bar",
}


def parser():
    return parser_for(PretrainArgs, HELP, __doc__, {"masking": ("dynamic", "static"), "precision": ("auto", "bf16", "fp32")})


def main(argv=None) -> int:
    options = vars(parse_with_presets(parser(), PRESETS, argv))
    options.pop("preset")
    keep_freed_memory()  # CPU steps free and re-allocate their activations: no page faults each time (about 5%)
    return main_for(run, PretrainArgs(**options))


if __name__ == "__main__":
    sys.exit(main())
