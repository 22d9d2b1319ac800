"""Where a frozen encoder's weights come from (config key `weights`, per encoder or shared):
- "random": the real architecture with a seeded initialisation (no download; the default offline run);
- "pretrained": the public weights through the libraries' own loaders (open_clip 'openai', torchvggish);
- a path: a local checkpoint file (the way to use pretrained weights on a machine without internet).
A failed download raises WeightsUnavailableError saying how to supply a local file; there is no silent fallback.
`load_frozen` is that policy, once: each encoder module gives it three ways to build its network.
"""
from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
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


def load_frozen(weights: str, seed: int, device, name: str, *, random: Callable[[], torch.nn.Module],
                pretrained: Callable[[], torch.nn.Module], from_file: Callable[[Path], torch.nn.Module],
                source: str, how_to_supply: str = HOW_TO_SUPPLY) -> torch.nn.Module:
    """The network `name` from `weights`, frozen (eval mode, no gradients) on `device`.

    random: `random()` under torch.manual_seed(seed), the global RNG left untouched; pretrained: `pretrained()`
    with a download timeout (`source` names where the weights come from in the error); a path: `from_file(path)`
    on an existing file. A failure names the encoder and the file, or says how to supply the weights.
    """
    if weights == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = random()
    elif weights == "pretrained":
        try:
            with download_timeout():
                model = pretrained()
        except Exception as err:
            raise WeightsUnavailableError(
                f"could not load the pretrained {name} weights ({source}): {err}\n" + how_to_supply) from err
    else:
        file = existing_file(weights, name)
        try:
            model = from_file(file)
        except Exception as err:
            raise ValueError(f"{file}: not a loadable {name} checkpoint: {err}") from err
    return frozen(model, device)


def frozen(model: torch.nn.Module, device) -> torch.nn.Module:
    """In eval() mode (train-mode BatchNorm would make a frame's features depend on its batch), gradients off."""
    model = model.to(device).eval()
    model.requires_grad_(False)
    return model
