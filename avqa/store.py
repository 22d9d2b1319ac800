"""Zarr store helpers every floor uses: a fresh group, a finished group, string arrays (video ids).

Stores are written inside avqa.atomic.atomic_path, so a store without its zarr.json is never finished.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import zarr


def open_new(path: str | os.PathLike) -> zarr.Group:
    """A fresh zarr v3 group at `path` (use inside `atomic_path`)."""
    return zarr.open_group(str(path), mode="w", zarr_format=3)


def open_read(path: str | os.PathLike) -> zarr.Group:
    path = Path(path)
    if not (path / "zarr.json").exists():
        raise FileNotFoundError(f"{path}: not a finished zarr store (no zarr.json)")
    return zarr.open_group(str(path), mode="r")


def write_strings(group: zarr.Group, name: str, values) -> None:
    """A 1-D array of strings (video ids), stored with zarr's variable-length UTF-8 type."""
    values = list(values)
    arr = group.create_array(name, shape=(len(values),), dtype=str)
    if values:
        arr[:] = np.asarray(values, dtype=object)


def read_strings(group: zarr.Group, name: str) -> list[str]:
    return [str(v) for v in group[name][:]]
