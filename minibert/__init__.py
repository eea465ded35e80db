"""minibert: BERT written from scratch in plain PyTorch.

    from minibert import BertTokenizer, BertForSequenceClassification
    tok = BertTokenizer.from_pretrained("bert-base-uncased")
    model = BertForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
"""

from .checkpoint import CheckpointError, LoadReport
from .config import BertConfig, ConfigError
from .heads import (
    BertForMaskedLM,
    BertForNextSentencePrediction,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
)
from .hub import HubError
from .model import BertModel, BertOutput, InputError
from .tokenizer import BertTokenizer

__version__ = "0.1.0"

__all__ = [
    "BertConfig",
    "BertModel",
    "BertOutput",
    "BertForPreTraining",
    "BertForMaskedLM",
    "BertForNextSentencePrediction",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertForQuestionAnswering",
    "BertTokenizer",
    "CheckpointError",
    "ConfigError",
    "HubError",
    "InputError",
    "LoadReport",
]
