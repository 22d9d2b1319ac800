"""The runtime policy every stage shares: which device, which autocast precision, how a batch gets there.

One rule set for the frozen encoders (extraction, question features) and for training and evaluation:
- device: 'auto' -> CUDA when torch sees a GPU, else the CPU; 'cpu'; 'cuda' or 'cuda:i' (an error without a GPU);
- precision: 'fp32' (no autocast), 'bf16' or 'fp16' autocast on the device; fp16 is refused on the CPU (slow
  there and poorly supported; bf16 is the CPU's fast path).
"""
from __future__ import annotations

import contextlib

import torch

from avqa.errors import UserError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class DeviceError(UserError, RuntimeError):
    """A device the config asks for that this machine cannot give (CUDA without a GPU)."""


class RuntimeValueError(UserError, ValueError):
    """An unknown device or precision name."""


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda if available else cpu; 'cpu'; 'cuda[:i]' (error if there is no GPU)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} requested but no CUDA GPU is available; use device: auto or cpu")
        return torch.device(name)
    raise RuntimeValueError(f"unknown device {name!r}: expected auto, cpu or cuda")


def autocast_dtype(name: str) -> torch.dtype | None:
    """'fp32' -> None (no autocast), 'bf16' -> torch.bfloat16, 'fp16' -> torch.float16."""
    if name not in PRECISIONS:
        raise RuntimeValueError(f"unknown precision {name!r}: expected one of {sorted(PRECISIONS)}")
    return PRECISIONS[name]


def autocast(device: torch.device, precision: str):
    """The mixed-precision context of `precision` on `device` (a no-op context for fp32)."""
    dtype = autocast_dtype(precision)
    if dtype is None:
        return contextlib.nullcontext()
    if device.type == "cpu" and dtype == torch.float16:
        raise RuntimeValueError("fp16 autocast is not used on CPU (slow there): set precision bf16 or fp32 for cpu")
    return torch.autocast(device.type, dtype=dtype)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}
