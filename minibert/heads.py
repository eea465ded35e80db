"""Task heads on top of BertModel: what pre-training optimised (masked LM, next sentence prediction) and
what fine-tuning adds (a small layer per task, section 4 of the paper). Each computes its loss when labels
are given, exactly as transformers does, so losses and gradients match number for number.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import BertConfig
from .model import BertModel, BertPreTrainedModel, activation

IGNORE_INDEX = -100  # label value that no loss counts (unmasked tokens in MLM, padding in token tagging)


@dataclass
class HeadOutput:
    loss: torch.Tensor | None = None  # scalar, when labels were given
    logits: torch.Tensor | None = None  # (B, num_labels) / (B, T, num_labels) / (B, T, V) / (B, 2)
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class PreTrainingOutput:
    loss: torch.Tensor | None = None  # MLM loss + NSP loss
    prediction_logits: torch.Tensor | None = None  # (B, T, V)
    seq_relationship_logits: torch.Tensor | None = None  # (B, 2)
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class QuestionAnsweringOutput:
    loss: torch.Tensor | None = None
    start_logits: torch.Tensor | None = None  # (B, T)
    end_logits: torch.Tensor | None = None  # (B, T)
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class MaskedLMHead(nn.Module):
    """Predict the original token at every position: dense + GELU + LayerNorm, then scores over the vocabulary.

    The output projection is the input word-embedding matrix itself (weight tying): of the output layer,
    only its bias is a new parameter.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.transform = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = activation(config.hidden_act)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, x: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.act(self.transform(x)))  # (B, T, H)
        return F.linear(x, word_embeddings, self.bias)  # (B, T, V)


class _WithEncoder(BertPreTrainedModel):
    """A BertModel under `self.bert` (the name transformers' checkpoints use) plus task heads."""

    def __init__(self, config: BertConfig | None, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config or BertConfig()
        self.bert = BertModel(self.config, add_pooling_layer=add_pooling_layer)

    def classifier_dropout(self) -> nn.Dropout:
        p = self.config.classifier_dropout
        return nn.Dropout(self.config.hidden_dropout_prob if p is None else p)


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    # Only the ~15% of positions chosen for prediction carry a label; the rest are IGNORE_INDEX.
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX)


class BertForPreTraining(_WithEncoder):
    """Both pre-training objectives (section 3.1): masked LM over all tokens + IsNext/NotNext from [CLS]."""

    hf_architecture = "BertForPreTraining"
    heads = ("mlm", "nsp")

    def __init__(self, config: BertConfig | None = None):
        super().__init__(config)
        self.mlm = MaskedLMHead(self.config)
        self.nsp = nn.Linear(self.config.hidden_size, 2)  # 0 = IsNext, 1 = NotNext
        self.init_weights(self.mlm, self.nsp)

    def forward(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        labels=None,
        next_sentence_label=None,
        output_hidden_states=False,
        output_attentions=False,
    ) -> PreTrainingOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions)
        mlm_logits = self.mlm(out.last_hidden_state, self.bert.embeddings.tok.weight)  # (B, T, V)
        nsp_logits = self.nsp(out.pooler_output)  # (B, 2)
        loss = None
        if labels is not None and next_sentence_label is not None:
            loss = mlm_loss(mlm_logits, labels) + F.cross_entropy(nsp_logits, next_sentence_label.view(-1))
        return PreTrainingOutput(loss, mlm_logits, nsp_logits, out.hidden_states, out.attentions)


class BertForMaskedLM(_WithEncoder):
    """Masked language modelling alone: fill in [MASK] tokens."""

    hf_architecture = "BertForMaskedLM"
    heads = ("mlm",)

    def __init__(self, config: BertConfig | None = None):
        super().__init__(config, add_pooling_layer=False)
        self.mlm = MaskedLMHead(self.config)
        self.init_weights(self.mlm)

    def forward(
        self, input_ids, attention_mask=None, token_type_ids=None, labels=None, output_hidden_states=False, output_attentions=False
    ) -> HeadOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions)
        logits = self.mlm(out.last_hidden_state, self.bert.embeddings.tok.weight)  # (B, T, V)
        loss = mlm_loss(logits, labels) if labels is not None else None
        return HeadOutput(loss, logits, out.hidden_states, out.attentions)


class BertForNextSentencePrediction(_WithEncoder):
    """Does sentence B follow sentence A? A linear layer on the pooled [CLS] vector."""

    hf_architecture = "BertForNextSentencePrediction"
    heads = ("nsp",)

    def __init__(self, config: BertConfig | None = None):
        super().__init__(config)
        self.nsp = nn.Linear(self.config.hidden_size, 2)
        self.init_weights(self.nsp)

    def forward(
        self, input_ids, attention_mask=None, token_type_ids=None, labels=None, output_hidden_states=False, output_attentions=False
    ) -> HeadOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions)
        logits = self.nsp(out.pooler_output)  # (B, 2)
        loss = F.cross_entropy(logits, labels.view(-1)) if labels is not None else None
        return HeadOutput(loss, logits, out.hidden_states, out.attentions)


class BertForSequenceClassification(_WithEncoder):
    """Section 4.1: one linear layer on the pooled [CLS] vector (sentiment, entailment, ...)."""

    hf_architecture = "BertForSequenceClassification"
    heads = ("classifier",)

    def __init__(self, config: BertConfig | None = None):
        super().__init__(config)
        self.dropout = self.classifier_dropout()
        self.classifier = nn.Linear(self.config.hidden_size, self.config.num_labels)
        self.init_weights(self.classifier)

    def forward(
        self, input_ids, attention_mask=None, token_type_ids=None, labels=None, output_hidden_states=False, output_attentions=False
    ) -> HeadOutput:
        # The classifier reads [CLS] alone, so the last layer computes no other row (unless every layer is asked for).
        cls_only = not (output_hidden_states or output_attentions)
        out = self.bert(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions, cls_only)
        logits = self.classifier(self.dropout(out.pooler_output))  # (B, num_labels)
        loss = self.loss(logits, labels) if labels is not None else None
        return HeadOutput(loss, logits, out.hidden_states, out.attentions)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # As transformers decides: one output is regression, integer labels are classes, float labels multi-label.
        problem = self.config.problem_type
        if problem is None:
            if self.config.num_labels == 1:
                problem = "regression"
            elif labels.dtype in (torch.long, torch.int):
                problem = "single_label_classification"
            else:
                problem = "multi_label_classification"
        if problem == "regression":
            if self.config.num_labels == 1:
                return F.mse_loss(logits.squeeze(), labels.squeeze())
            return F.mse_loss(logits, labels)
        if problem == "single_label_classification":
            return F.cross_entropy(logits.view(-1, self.config.num_labels), labels.view(-1))
        return F.binary_cross_entropy_with_logits(logits, labels)


class BertForTokenClassification(_WithEncoder):
    """Section 4.3 (named entities): one linear layer on every token's final vector."""

    hf_architecture = "BertForTokenClassification"
    heads = ("classifier",)

    def __init__(self, config: BertConfig | None = None):
        super().__init__(config, add_pooling_layer=False)
        self.dropout = self.classifier_dropout()
        self.classifier = nn.Linear(self.config.hidden_size, self.config.num_labels)
        self.init_weights(self.classifier)

    def forward(
        self, input_ids, attention_mask=None, token_type_ids=None, labels=None, output_hidden_states=False, output_attentions=False
    ) -> HeadOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions)
        logits = self.classifier(self.dropout(out.last_hidden_state))  # (B, T, num_labels)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, self.config.num_labels), labels.view(-1), ignore_index=IGNORE_INDEX)
        return HeadOutput(loss, logits, out.hidden_states, out.attentions)


class BertForQuestionAnswering(_WithEncoder):
    """Section 4.2 (SQuAD): a start and an end score for every token; the answer is the best span."""

    hf_architecture = "BertForQuestionAnswering"
    heads = ("qa",)

    def __init__(self, config: BertConfig | None = None):
        super().__init__(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(self.config.hidden_size, 2)
        self.init_weights(self.qa_outputs)

    def forward(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        start_positions=None,
        end_positions=None,
        output_hidden_states=False,
        output_attentions=False,
    ) -> QuestionAnsweringOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions)
        start_logits, end_logits = self.qa_outputs(out.last_hidden_state).unbind(-1)  # 2 x (B, T)
        loss = None
        if start_positions is not None and end_positions is not None:
            # Answers outside the (truncated) input point one past the end and are ignored, as in transformers.
            T = start_logits.shape[1]
            start = start_positions.view(-1).clamp(0, T)
            end = end_positions.view(-1).clamp(0, T)
            loss = (
                F.cross_entropy(start_logits, start, ignore_index=T)
                + F.cross_entropy(end_logits, end, ignore_index=T)
            ) / 2
        return QuestionAnsweringOutput(loss, start_logits, end_logits, out.hidden_states, out.attentions)
