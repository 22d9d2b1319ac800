"""Model registry: build_model(name, **options) -> nn.Module following the model batch contract.

The batch contract (built by avqa.data.dataset.AVQADataset): B questions over their U unique videos —
"visual" (U, T, H, W, C) pooled maps, "audio" (U, T, 128), "video_index" (B,) each question's video row,
"sentence" (B, 1024) and "tokens" (B, L, 512) + "token_mask" / "target_mask" (B, L) CLIP-RN50 text features,
"answer" and "question_id" (B,); plus the EXTRA_INPUTS a model declares ("question_words", "sources_audio",
"sources_visual", ...). model(batch) -> dict with "logits" (B, 42) plus what its losses need;
model.loss(batch, out) -> (total loss tensor, {term: float}). Options are the model class's constructor keywords.
A new model is a module in this package plus one REGISTRY line (and its EXTRA_INPUTS, if any).
"""
from __future__ import annotations

import importlib
import inspect

from torch import nn

# name -> "module:Class"; imported on demand.
REGISTRY = {
    "tass": "avqa.models.tass:TASSNet",
    "qonly": "avqa.models.qonly:QuestionOnly",
    "avst": "avqa.models.avst:AVST",
    "sasr": "avqa.models.sasr:SaSRNet",
    "tspm": "avqa.models.tspm:TSPM",
    "qa_tiger": "avqa.models.qa_tiger:QATiger",
}
# The inputs a model reads beyond the batch contract's, as run-spec keys (avqa.training.spec): "words" (the train
# vocabulary: question_words), "instruments" (per-video source labels: sources_audio / sources_visual), "clip_texts"
# (CLIP ViT text embeddings of the question and its declarative prompt: question_clip / prompt).
EXTRA_INPUTS = {
    "avst": ("words",),
    "sasr": ("instruments",),
    "tspm": ("clip_texts",),
    "qa_tiger": ("clip_texts",),
}
# Models that also read the question's per-token CLIP ViT features from the clip_texts store: the run's datasets
# load question_tokens / question_token_mask only for these (avqa.training.spec.split_dataset).
CLIP_WORD_MODELS = ("qa_tiger",)
# Options every model accepts and ignores: modalities are removed in the data pipeline (zeros), not the model.
IGNORED_OPTIONS = ("modalities",)


def model_class(name: str) -> type[nn.Module]:
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; registered models: {sorted(REGISTRY)}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def valid_options(name: str) -> list[str]:
    """The constructor keywords model `name` accepts."""
    params = inspect.signature(model_class(name).__init__).parameters
    return [p for p in params if p != "self"]


def build_model(name: str, **options) -> nn.Module:
    """The registered model `name` built with `options`; an unknown option is an error naming the valid ones."""
    valid = valid_options(name)
    unknown = sorted(set(options) - set(valid) - set(IGNORED_OPTIONS))
    if unknown:
        raise ValueError(f"model {name!r}: unknown option(s) {unknown}; valid options: {valid}")
    kwargs = {k: v for k, v in options.items() if k not in IGNORED_OPTIONS}
    return model_class(name)(**kwargs)


def count_trainable(module: nn.Module) -> int:
    """Number of trainable (requires_grad) parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def trainable_by_block(model: nn.Module) -> dict[str, int]:
    """Trainable parameters per top-level block (direct children), in definition order."""
    return {name: count_trainable(child) for name, child in model.named_children()}
