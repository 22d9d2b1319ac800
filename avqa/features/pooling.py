"""Parameter-free temporal pooling T1 -> T of the per-second features (the paper's preprocessing, sec. 4.1).

`python -m avqa pool` gathers the videos of one split from the encoders' shard stores and writes one store per
split and method, laid out for fast training reads:

- `visual` (V, T, *map) float16, uncompressed (float16 activations compress ~1.2x with zstd at 3.5x the write time
  and ~3x the warm read time: benchmarks/pooled_store.py), from the visual encoder (CLIP-RN50 (7, 7, 2048) by default; ResNet-18
  (7, 7, 512); CLIP ViT (D,) per frame), one chunk per video: a batch reads its videos in one orthogonal
  selection, one chunk each; `visual_tokens` (V, T, N, D) likewise for an encoder with per-frame tokens (CLIP
  ViT's merged patch tokens);
- `audio` (V, T, 128) float32 (small: held in RAM by the data loader);
- `video_id` (V,) str, sorted; attrs T1, T, method, split, missing {video_id: reason}, arrays {array:
  encoder}, the encoders' attrs, content_digest.

Methods (each output segment t covers seconds [t*w, (t+1)*w) with w = T1 / T):
- avg:    x_t = 1/w * sum_{s=t*w}^{(t+1)*w-1} x_s   (computed in float32; the paper's preprocessing)
- stride: x_t = x_{t*w}                              (the first second of each window, as older methods sample)
- none:   T = T1, every second kept                  (for models that select seconds themselves, e.g. TSPM)

Only videos present in BOTH encoders' stores are pooled; the rest of the split is logged and listed in the
`missing` attribute (the data loader drops their questions and reports how many).
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from avqa.atomic import atomic_path
from avqa.digest import record_digest
from avqa.features.layout import LAYOUT, VISUAL_ENCODERS
from avqa.specs import SpecError, add_spec_arguments, spec_from_args
from avqa.specs.reporting import POOLINGS, PoolSpec
from avqa.store import open_new, open_read, read_strings, write_strings

logger = logging.getLogger(__name__)



def window(T1: int, T: int) -> int:
    """Seconds per pooled segment; T1 must be a multiple of T."""
    if T <= 0 or T1 <= 0:
        raise ValueError(f"T1 ({T1}) and T ({T}) must be positive")
    if T1 % T:
        raise ValueError(f"T1 ({T1}) is not a multiple of T ({T}): pooling needs whole windows of T1/T seconds")
    return T1 // T


def pool_avg(x: np.ndarray, T: int, axis: int = 0) -> np.ndarray:
    """Mean over each T1/T consecutive entries along `axis` (float32 result)."""
    x = np.moveaxis(np.asarray(x), axis, 0)
    w = window(x.shape[0], T)
    pooled = x.astype(np.float32, copy=False).reshape(T, w, *x.shape[1:]).mean(axis=1, dtype=np.float32)
    return np.moveaxis(pooled, 0, axis)


def pool_stride(x: np.ndarray, T: int, axis: int = 0) -> np.ndarray:
    """Every (T1/T)-th entry along `axis`, starting at the first (dtype kept)."""
    x = np.moveaxis(np.asarray(x), axis, 0)
    w = window(x.shape[0], T)
    return np.moveaxis(x[::w], 0, axis)


def pool_none(x: np.ndarray, T: int, axis: int = 0) -> np.ndarray:
    """Every second as it is (T must equal T1)."""
    x = np.asarray(x)
    if x.shape[axis] != T:
        raise ValueError(f"pooling 'none' keeps all {x.shape[axis]} seconds: T must be T1, got T={T}")
    return x


POOLERS = {"avg": pool_avg, "stride": pool_stride, "none": pool_none}


@dataclass(frozen=True)
class Location:
    store: str
    row: int


def index_stores(paths: list[str], array: str, item_shape: tuple[int, ...] | None = None
                 ) -> tuple[dict[str, Location], int, dict, tuple[int, ...]]:
    """video_id -> (store, row) over the shard stores of one encoder; checks the per-second shape (the given one,
    else one shape shared by every store) and a common T1. Returns (index, T1, attrs, item shape)."""
    where: dict[str, Location] = {}
    T1s: set[int] = set()
    attrs: dict = {}
    for path in paths:
        group = open_read(path)
        if array not in group:
            raise ValueError(f"{path}: no array '{array}'")
        data = group[array]
        ids = read_strings(group, "video_id")
        shape = tuple(data.shape[2:]) if item_shape is None else item_shape
        if data.ndim != 2 + len(shape) or tuple(data.shape[2:]) != shape or data.shape[0] != len(ids):
            raise ValueError(f"{path}: '{array}' has shape {data.shape}, expected ({len(ids)}, T1, "
                             f"{', '.join(map(str, shape))})")
        item_shape = shape
        T1 = int(group.attrs.get("T1", data.shape[1]))
        if T1 != data.shape[1]:
            raise ValueError(f"{path}: attrs T1={T1} but '{array}' holds {data.shape[1]} seconds")
        T1s.add(T1)
        for row, vid in enumerate(ids):
            if vid in where:
                raise ValueError(f"video {vid!r} appears in two stores: {where[vid].store} and {path}")
            where[vid] = Location(str(path), row)
        attrs = {k: group.attrs[k] for k in ("encoder", "weights", "fps", "backbone") if k in group.attrs}
    if len(T1s) > 1:
        raise ValueError(f"stores {paths} disagree on T1: {sorted(T1s)}")
    return where, (T1s.pop() if T1s else 0), attrs, item_shape or ()


def split_videos(annotations: str | Path) -> list[str]:
    table = pd.read_parquet(annotations, columns=["video_id"])
    return sorted(table["video_id"].astype(str).unique())


def missing_reasons(videos: list[str], indexes: dict[str, dict]) -> dict[str, str]:
    """video -> why it cannot be pooled (the encoders whose stores lack it), for the videos lacking any."""
    reasons = {}
    for vid in videos:
        lacks = [name for name, index in indexes.items() if vid not in index]
        if lacks:
            reasons[vid] = "no " + " and no ".join(f"{name} features" for name in lacks)
    return reasons


@dataclass(frozen=True)
class Source:
    """One encoder's shard stores, pooled into the array `name` of the split's store."""

    name: str          # array in the pooled store: visual | visual_tokens | audio
    encoder: str       # avqa.features.layout name
    paths: list[str]


def pool_split(sources: list[Source], annotations: str | Path, split: str, T: int, method: str,
               out: str | Path) -> dict:
    """Pool every video of the split present in all sources' stores into `out` (atomic). Returns a summary."""
    if method not in POOLERS:
        raise ValueError(f"unknown pooling method {method!r}; known: {POOLINGS}")
    indexed = {}
    for source in sources:
        layout = LAYOUT[source.encoder]
        indexed[source.encoder] = index_stores(source.paths, layout.array, layout.shape)
    T1s = {enc: found[1] for enc, found in indexed.items() if found[0]}
    if len(set(T1s.values())) > 1:
        raise ValueError(f"the encoders' stores disagree on T1: {T1s}")
    T1 = next(iter(T1s.values()), 0)
    window(T1, T)  # fail before writing anything
    videos = split_videos(annotations)
    missing = missing_reasons(videos, {enc: found[0] for enc, found in indexed.items()})
    present = [v for v in videos if v not in missing]
    if missing:
        logger.warning("%s: %d of %d videos lack features and are left out (e.g. %s)", split, len(missing),
                       len(videos), ", ".join(f"{v}: {r}" for v, r in list(missing.items())[:3]))
    if not present:
        raise ValueError(f"{annotations}: none of the {len(videos)} videos of split {split!r} has features from "
                         f"every encoder ({', '.join(indexed)})")
    pool = POOLERS[method]
    groups = {}
    with atomic_path(out) as tmp:
        store = open_new(tmp)
        for source in sources:
            where, _, _, shape = indexed[source.encoder]
            array = LAYOUT[source.encoder].array
            in_ram = source.name == "audio"  # small: written in one piece; the maps one chunk per video
            target = (np.empty((len(present), T, *shape), dtype=np.float32) if in_ram else
                      store.create_array(source.name, shape=(len(present), T, *shape), dtype="float16",
                                         chunks=(1, T, *shape), compressors=None))
            for i, vid in enumerate(tqdm(present, desc=f"pool {method} {source.encoder} {split}", unit="video",
                                         disable=None)):
                loc = where[vid]
                target[i] = pool(_open(groups, loc.store)[array][loc.row], T).astype(target.dtype)
            if in_ram:
                store.create_array(source.name, shape=target.shape, dtype="float32", chunks=target.shape)[:] = target
        write_strings(store, "video_id", present)
        store.attrs.update({
            "T1": T1, "T": T, "method": method, "split": split, "missing": missing,
            "arrays": {s.name: s.encoder for s in sources}, **{enc: found[2] for enc, found in indexed.items()},
        })
        record_digest(store)  # what a training run's resume identity reads (avqa.digest)
    logger.info("%s: pooled %d videos %d -> %d (%s) into %s", split, len(present), T1, T, method, out)
    return {"videos": len(present), "missing": len(missing), "T1": T1, "T": T}


def _open(cache: dict, path: str):
    if path not in cache:
        cache[path] = open_read(path)
    return cache[path]


def _cli(args: argparse.Namespace) -> None:
    from avqa.workflow import pool_spec

    if (args.config is None) != (args.pooled_key is None):
        raise SpecError("pool: --pooled-key (which pooled store: {pooling}[-{visual encoder}]) goes with --config, "
                        "and only with it")
    spec = spec_from_args(args, PoolSpec, lambda config: pool_spec(config, args.pooled_key))
    if spec.visual_encoder not in VISUAL_ENCODERS:
        raise SpecError(f"pool spec: visual_encoder {spec.visual_encoder!r} is not one of {list(VISUAL_ENCODERS)}")
    sources = [Source("visual", spec.visual_encoder, args.visual), Source("audio", "vggish", args.vggish)]
    if args.tokens:
        sources.insert(1, Source("visual_tokens", f"{spec.visual_encoder}_tokens", args.tokens))
    summary = pool_split(sources, args.annotations, args.split, spec.T, spec.method, args.out)
    print(f"{args.out}: {summary['videos']} videos pooled, {summary['missing']} missing "
          f"(T1={summary['T1']} -> T={summary['T']}, {spec.method})")


def register(subparsers) -> None:
    parser = subparsers.add_parser("pool", help="temporal pooling T1 -> T of one split's features",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visual", nargs="+", required=True, help="the visual encoder's shard stores")
    parser.add_argument("--tokens", nargs="+", help="its per-frame token stores ({encoder}_tokens), if any")
    parser.add_argument("--vggish", nargs="+", required=True, help="vggish shard stores (emb)")
    parser.add_argument("--annotations", required=True, help="the split's annotations parquet")
    parser.add_argument("--split", required=True, help="split name (recorded in the store's attrs)")
    parser.add_argument("--out", required=True, help="output store, e.g. results/pooled/avg/test.zarr")
    add_spec_arguments(parser, "the pooling, visual encoder and T of --pooled-key's store")
    parser.add_argument("--pooled-key", help="with --config: the pooled store's {method} ({pooling}[-{visual "
                                             "encoder}], e.g. avg, none-clip_vit)")
    parser.set_defaults(func=_cli)
