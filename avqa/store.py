"""Zarr store helpers: atomic directory outputs and small conveniences shared by the stages.

A store is written under a temporary sibling path and renamed into place only when complete, so a job killed
mid-write never leaves something that Snakemake or the next stage would take for a finished store.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

import numpy as np
import zarr


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path to write; on success rename it to `final` (replacing an old one)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if final.exists():
        # Move the old output aside first so there is never a moment with a half-replaced store.
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
        os.replace(tmp, final)
        _remove(old)
    else:
        os.replace(tmp, final)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


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
