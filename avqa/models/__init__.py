"""Model registry: build_model(name, **options) -> nn.Module following the model batch contract.

Contract (notes/contracts.md): model(batch) -> dict with "logits" (B, 42) plus what the losses need;
model.loss(batch, out) -> (total loss tensor, {term: float}). Registry names: "tass" (avqa.models.tass.TASSNet),
"qonly" (avqa.models.qonly.QuestionOnly). Options are the model class's constructor keywords.
"""
from __future__ import annotations

import importlib
import inspect

from torch import nn

# name -> "module:Class"; imported on demand.
REGISTRY = {
    "tass": "avqa.models.tass:TASSNet",
    "qonly": "avqa.models.qonly:QuestionOnly",
}
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
