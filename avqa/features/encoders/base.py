"""What extraction needs of a frozen encoder: one class per encoder, named by its REGISTRY record
(avqa.features.layout).

Class side, without a model (the decode workers call it while the model loads): `input_size(spec)`, the short
side frames are decoded to under features.decode.to_input_size, and `preprocess(spec)`, decoded frames or audio
-> model inputs. Instance side: the model loaded from the spec (weights.load_frozen), `outputs` (store name ->
per-second shape), `provenance` (store attrs), and `forward(inputs, precision)` -> one numpy array per store.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np
import torch

from avqa.specs.features import ExtractSpec


class FrozenEncoder(ABC):
    """A registered encoder, loaded for one extraction (subclasses: one per encoder module, each implementing the
    abstract methods; a class missing one cannot be instantiated)."""

    @staticmethod
    def input_size(spec: ExtractSpec) -> int | None:
        """The short side decoded frames are resized to before `preprocess` (None: audio)."""
        return None

    @staticmethod
    @abstractmethod
    def preprocess(spec: ExtractSpec) -> Callable:
        """Frames uint8 (n, H, W, 3) -> inputs (n, ...); audio: (wave, n_seconds) -> inputs (n, ...)."""

    def __init__(self, spec: ExtractSpec, device: torch.device):
        self.spec, self.device = spec, device
        self.model = self.load(spec, device)

    @abstractmethod
    def load(self, spec: ExtractSpec, device: torch.device) -> torch.nn.Module:
        """The frozen model on `device`, its weights as the spec says (weights.load_frozen)."""

    @property
    @abstractmethod
    def outputs(self) -> dict[str, tuple[int, ...]]:
        """Store name -> per-second feature shape, in the order `forward` returns them."""

    @property
    def provenance(self) -> dict:
        """What the stores record about the model (their attrs)."""
        return {"weights": self.spec.weights, "weights_seed": self.spec.weights_seed}

    @abstractmethod
    def forward(self, inputs: torch.Tensor, precision: str) -> tuple[np.ndarray, ...]:
        """Model inputs (n, ...) -> one numpy array (n, *shape) per store of `outputs`, under `precision`."""
