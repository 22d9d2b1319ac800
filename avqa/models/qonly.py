"""Question-only baseline: TASS-Net's question projection and answer head, no audio or visual input at all.

It measures how much of a test set can be answered from the question alone (answer priors per template).
The audio-visual feature f_av^q of TASS-Net is replaced by a question-only context g(f_q) = MLP(f_q), so the
answer head keeps its form: logits = FC(tanh(g(f_q) * f_q)). Only batch["sentence"] is read; every other batch
key (visual, audio, tokens, ...) is ignored. Loss: L_qa alone.
"""
from __future__ import annotations

import torch
from torch import nn

from avqa.models import losses
from avqa.models.blocks import AnswerHead, QuestionProjection
from avqa.data.vocab import ANSWERS


class QuestionOnly(nn.Module):
    """model(batch) -> {"logits": (B, 42)} from batch["sentence"] (B, sentence_dim) only."""

    def __init__(self, d_model: int = 512, dropout: float = 0.1, sentence_dim: int = 1024,
                 n_answers: int = len(ANSWERS)):
        super().__init__()
        self.sentence_dim = sentence_dim
        self.question_proj = QuestionProjection(sentence_dim, d_model)
        self.context = nn.Sequential(nn.Linear(d_model, d_model), nn.ReLU(), nn.Dropout(dropout),
                                     nn.Linear(d_model, d_model))
        self.answer_head = AnswerHead(d_model, n_answers)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if "sentence" not in batch:
            raise KeyError("batch lacks 'sentence', the only input of the question-only model")
        sentence = batch["sentence"]
        if sentence.dim() != 2 or sentence.shape[-1] != self.sentence_dim:
            raise ValueError(f"batch['sentence'] has shape {tuple(sentence.shape)}, expected (B, {self.sentence_dim})")
        f_q = self.question_proj(sentence)
        return {"logits": self.answer_head(self.context(f_q), f_q)}

    def loss(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]
             ) -> tuple[torch.Tensor, dict[str, float]]:
        """L = L_qa; returns (total, {"qa", "total"})."""
        return losses.total_loss({"qa": losses.qa_loss(out["logits"], batch["answer"])}, {"qa": 1.0})
