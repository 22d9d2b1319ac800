"""Where a frozen encoder's weights come from (config key `weights`, per encoder or shared):
- "random": the real architecture with a seeded initialisation (no download; the default offline run);
- "pretrained": the public weights through the libraries' own loaders (open_clip 'openai', torchvggish);
- a path: a local checkpoint file (the way to use pretrained weights on a machine without internet).
A failed download raises WeightsUnavailableError saying how to supply a local file; there is no silent fallback.
"""
from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping
from pathlib import Path

import torch

from avqa.errors import UserError

DOWNLOAD_TIMEOUT_S = 15      # a machine without internet must fail quickly, not after long retries
HOW_TO_SUPPLY = (
    "Download the weights elsewhere and point the config at the local files, e.g.\n"
    "  weights: {clip: path/to/RN50.pt, vggish: path/to/vggish-10086976.pth}\n"
    "(RN50.pt: OpenAI's CLIP RN50 checkpoint or an open_clip state_dict; vggish-10086976.pth: torchvggish's "
    "state_dict, with vggish_pca_params-970ea276.pth next to it for the PCA postprocess), or use weights: random."
)


class WeightsUnavailableError(UserError, RuntimeError):
    """Pretrained weights were requested but could not be obtained (e.g. no internet)."""


def resolve_weights(weights, encoder: str) -> str:
    """The weights source of one encoder ('clip' | 'vggish'): 'random', 'pretrained' or a checkpoint path.

    `weights` is the config value: one string for both encoders, or a mapping {clip: ..., vggish: ...}.
    """
    if isinstance(weights, Mapping):
        if encoder not in weights:
            raise ValueError(f"weights mapping {dict(weights)} has no entry for encoder {encoder!r}")
        weights = weights[encoder]
    if not isinstance(weights, (str, os.PathLike)) or not str(weights):
        raise ValueError(f"weights for {encoder!r} must be 'random', 'pretrained' or a file path, got {weights!r}")
    return str(weights)


@contextlib.contextmanager
def download_timeout(seconds: float = DOWNLOAD_TIMEOUT_S):
    """Bound every socket operation (urllib has no timeout of its own) while a loader downloads."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def existing_file(path: str, encoder: str) -> Path:
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"{encoder} weights file {path!r} does not exist (weights must be 'random', 'pretrained' or a path)")
    return file


def frozen(model: torch.nn.Module, device) -> torch.nn.Module:
    """In eval() mode (train-mode BatchNorm would make a frame's features depend on its batch), gradients off."""
    model = model.to(device).eval()
    model.requires_grad_(False)
    return model
