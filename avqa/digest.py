"""Content identity of the pipeline's files: what a resumed or cached result is keyed on.

A stage that writes a Zarr store records `content_digest` in its attrs, a BLAKE2b hash of exactly the arrays it
wrote (as bytes, in a fixed order, with their names, shapes and dtypes); a consumer reads that one value instead
of hashing gigabytes. A store without one (written by hand or by an older version) is hashed in full when asked,
so its identity is still its content. Plain files (the annotation parquets) are hashed byte for byte.
`stable_hash` is the same idea for one string: a process-independent hash (shard cuts, stand-in clips).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os

import numpy as np

from avqa.store import open_read

logger = logging.getLogger(__name__)

ATTR = "content_digest"
_CHUNK_BYTES = 1 << 24


class Digest:
    """An incremental content hash: feed it named arrays (or parts of one, in order) and plain values."""

    def __init__(self) -> None:
        self._hash = hashlib.blake2b(digest_size=16)

    def array(self, name: str, values) -> "Digest":
        values = np.asarray(values)
        strings = values.dtype.kind in "OTUS"                # video ids: object or variable-width string arrays
        header = json.dumps([name, list(values.shape), "str" if strings else values.dtype.str])
        self._hash.update(header.encode())
        if strings:
            self._hash.update("\x00".join(map(str, values.ravel())).encode())
        else:
            self._hash.update(np.ascontiguousarray(values).view(np.uint8).ravel() if values.size else b"")
        return self

    def value(self, name: str, value) -> "Digest":
        self._hash.update(json.dumps([name, value], sort_keys=True, default=str).encode())
        return self

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def stable_hash(text: str) -> int:
    """A 64-bit hash of a string, the same in every process (Python's hash() is salted)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def file_digest(path: str | os.PathLike) -> str:
    """BLAKE2b of a file's bytes."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK_BYTES):
            h.update(block)
    return h.hexdigest()


def compute_store_digest(group) -> str:
    """Hash every array of a Zarr group (sorted by name, read a block of rows at a time)."""
    digest = Digest()
    for name in sorted(group.array_keys()):
        array = group[name]
        rows = max(1, _CHUNK_BYTES // max(1, int(np.prod(array.shape[1:], dtype=np.int64)) * array.dtype.itemsize))
        digest.value(name, [list(array.shape), str(array.dtype)])
        for start in range(0, array.shape[0] if array.ndim else 1, rows):
            digest.array(name, array[start:start + rows] if array.ndim else array[()])
    return digest.hexdigest()


def store_digest(path: str | os.PathLike) -> str:
    """A finished store's content digest: the one its writer recorded, else computed from its arrays."""
    group = open_read(path)
    recorded = group.attrs.get(ATTR)
    if recorded:
        return str(recorded)
    logger.info("%s records no %s: hashing its arrays", path, ATTR)
    return compute_store_digest(group)


def inputs_fingerprint(annotations: dict[str, str], pooled: dict[str, str], questions: str,
                       files: dict[str, str] | None = None, stores: dict[str, str] | None = None) -> dict[str, str]:
    """The content identity of a training run's inputs: {"annotations/train": digest, ..., "questions": digest,
    and one entry per other input file or store (name -> path)}."""
    found = {f"annotations/{split}": file_digest(path) for split, path in sorted(annotations.items())}
    found.update({f"pooled/{split}": store_digest(path) for split, path in sorted(pooled.items())})
    found["questions"] = store_digest(questions)
    found.update({name: file_digest(path) for name, path in sorted((files or {}).items())})
    found.update({name: store_digest(path) for name, path in sorted((stores or {}).items())})
    return found


def changed_keys(old: dict, new: dict) -> list[str]:
    """The keys whose values differ between two flat mappings (added or removed keys included)."""
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def record_digest(group) -> str:
    """Hash a store just written (its arrays as stored) and record the digest in its attrs; returns it."""
    digest = compute_store_digest(group)
    group.attrs[ATTR] = digest
    return digest
