"""Model registry: build_model(name, **options) -> nn.Module following the model batch contract.

The batch contract (built by avqa.training.dataset.AVQADataset): B questions over their U unique videos —
"visual" (U, T, H, W, C) pooled maps, "audio" (U, T, 128), "video_index" (B,) each question's video row,
"sentence" (B, 1024) and "tokens" (B, L, 512) + "token_mask" / "target_mask" (B, L) CLIP-RN50 text features,
"answer" and "question_id" (B,); plus the EXTRA_INPUTS a model declares ("question_words", "sources_audio",
"sources_visual", ...). model(batch) -> dict with "logits" (B, 42) plus what its losses need;
model.loss(batch, out) -> (total loss tensor, {term: float}). A model's options are the fields of its options
dataclass (the class attribute `Options`, e.g. avqa.models.tass.TASSOptions: each field's default and meaning, the
one place the defaults live); the model is built from an instance of it.
A new model is a module in this package plus one REGISTRY line (and its EXTRA_INPUTS, if any).
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry's data stays torch-free: the Snakefile helpers read it
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
# The visual features a model reads, hence the options its visual encoder sets (avqa.workflow.visual_options):
# "maps" (pooled H x W x C maps: visual_dim) | "frames" (per-frame embeddings and merged tokens: frame_dim,
# token_dim, n_tokens, text_dim). A model without an entry reads no visual features.
VISUAL_INPUTS = {
    "tass": "maps",
    "avst": "maps",
    "sasr": "maps",
    "tspm": "frames",
    "qa_tiger": "frames",
}
VISUAL_OPTIONS = {"maps": ("visual_dim",), "frames": ("frame_dim", "token_dim", "n_tokens", "text_dim")}
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


def options_class(name: str) -> type:
    """The options dataclass of model `name`."""
    return model_class(name).Options


def valid_options(name: str) -> list[str]:
    """The options model `name` accepts, in the order of its options dataclass."""
    return [f.name for f in dataclasses.fields(options_class(name))]


def default_options(name: str) -> dict:
    """{option: default} of model `name` (required options, which have none, left out)."""
    return {f.name: f.default for f in dataclasses.fields(options_class(name)) if f.default is not dataclasses.MISSING}


def model_options(name: str, **options):
    """`options` validated into model `name`'s options dataclass: an unknown option, or a missing required one,
    is an error naming the model, the option and the valid ones."""
    valid = valid_options(name)
    unknown = sorted(set(options) - set(valid) - set(IGNORED_OPTIONS))
    if unknown:
        raise ValueError(f"model {name!r}: unknown option(s) {unknown}; valid options: {valid}")
    required = sorted(set(valid) - set(default_options(name)) - set(options))
    if required:
        raise TypeError(f"model {name!r}: option(s) {required} required (no default)")
    return options_class(name)(**{k: v for k, v in options.items() if k not in IGNORED_OPTIONS})


def build_model(name: str, **options) -> nn.Module:
    """The registered model `name` built with `options` (model_options validates them)."""
    return model_class(name)(model_options(name, **options))


def count_trainable(module: nn.Module) -> int:
    """Number of trainable (requires_grad) parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def trainable_by_block(model: nn.Module) -> dict[str, int]:
    """Trainable parameters per top-level block (direct children), in definition order."""
    return {name: count_trainable(child) for name, child in model.named_children()}
