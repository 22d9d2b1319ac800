"""Question-only baseline: TASS-Net's question projection and answer head, no audio or visual input at all.

It measures how much of a test set can be answered from the question alone (answer priors per template).
The audio-visual feature f_av^q of TASS-Net is replaced by a question-only context g(f_q) = MLP(f_q), so the
answer head keeps its form: logits = FC(tanh(g(f_q) * f_q)). Only batch["sentence"] is read; every other batch
key (visual, audio, tokens, ...) is ignored. Loss: L_qa alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from avqa.models import losses
from avqa.models.blocks import AnswerHead, AnswerOptions, QuestionProjection, SentenceOptions, check_batch, option


@dataclass(frozen=True, kw_only=True)
class QuestionOnlyOptions(SentenceOptions, AnswerOptions):
    """The question-only baseline's options (build_model("qonly", **options)); TASS-Net's sizes."""

    d_model: int = option(512, "width d of the projection, the context MLP and the answer head")
    dropout: float = option(0.1, "dropout inside the context MLP g")


class QuestionOnly(nn.Module):
    """model(batch) -> {"logits": (B, 42)} from batch["sentence"] (B, sentence_dim) only."""

    Options = QuestionOnlyOptions

    def __init__(self, options: QuestionOnlyOptions):
        super().__init__()
        d_model = options.d_model
        self.options = options
        self.batch_shapes = {"sentence": (None, options.sentence_dim)}
        self.question_proj = QuestionProjection(options.sentence_dim, d_model)
        self.context = nn.Sequential(nn.Linear(d_model, d_model), nn.ReLU(), nn.Dropout(options.dropout),
                                     nn.Linear(d_model, d_model))
        self.answer_head = AnswerHead(d_model, options.n_answers)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_batch(batch, self.batch_shapes, "the question-only model")
        f_q = self.question_proj(batch["sentence"])
        return {"logits": self.answer_head(self.context(f_q), f_q)}

    def loss(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]
             ) -> tuple[torch.Tensor, dict[str, float]]:
        """L = L_qa; returns (total, {"qa", "total"})."""
        return losses.total_loss({"qa": losses.qa_loss(out["logits"], batch["answer"])}, {"qa": 1.0})
