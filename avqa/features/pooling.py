"""Parameter-free temporal pooling T1 -> T of the per-second features (the paper's preprocessing, sec. 4.1).

`python -m avqa pool` gathers the videos of one split from the encoders' shard stores and writes one store per
split and method, laid out for fast training reads:

- `visual` (V, T, 7, 7, 2048) float16, one chunk per video (1, T, 7, 7, 2048): a batch reads its videos in one
  orthogonal selection, one chunk each;
- `audio` (V, T, 128) float32 (small: held in RAM by the data loader);
- `video_id` (V,) str, sorted; attrs T1, T, method, split, missing {video_id: reason}, encoders' attrs.

Methods (each output segment t covers seconds [t*w, (t+1)*w) with w = T1 / T):
- avg:    x_t = 1/w * sum_{s=t*w}^{(t+1)*w-1} x_s   (computed in float32; the paper's preprocessing)
- stride: x_t = x_{t*w}                              (the first second of each window, as older methods sample)

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
from avqa.features.layout import AUDIO_DIM, LAYOUT, MAP_SHAPE
from avqa.features.store import open_new, open_read, read_strings, write_strings

logger = logging.getLogger(__name__)

METHODS = ("avg", "stride")


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


POOLERS = {"avg": pool_avg, "stride": pool_stride}


@dataclass(frozen=True)
class Location:
    store: str
    row: int


def index_stores(paths: list[str], array: str, item_shape: tuple[int, ...]) -> tuple[dict[str, Location], int, dict]:
    """video_id -> (store, row) over the shard stores of one encoder; checks shapes and a common T1."""
    where: dict[str, Location] = {}
    T1s: set[int] = set()
    attrs: dict = {}
    for path in paths:
        group = open_read(path)
        if array not in group:
            raise ValueError(f"{path}: no array '{array}'")
        data = group[array]
        ids = read_strings(group, "video_id")
        if data.ndim != 2 + len(item_shape) or tuple(data.shape[2:]) != item_shape or data.shape[0] != len(ids):
            raise ValueError(f"{path}: '{array}' has shape {data.shape}, expected ({len(ids)}, T1, "
                             f"{', '.join(map(str, item_shape))})")
        T1 = int(group.attrs.get("T1", data.shape[1]))
        if T1 != data.shape[1]:
            raise ValueError(f"{path}: attrs T1={T1} but '{array}' holds {data.shape[1]} seconds")
        T1s.add(T1)
        for row, vid in enumerate(ids):
            if vid in where:
                raise ValueError(f"video {vid!r} appears in two stores: {where[vid].store} and {path}")
            where[vid] = Location(str(path), row)
        attrs = {k: group.attrs[k] for k in ("encoder", "weights", "fps") if k in group.attrs}
    if len(T1s) > 1:
        raise ValueError(f"stores {paths} disagree on T1: {sorted(T1s)}")
    return where, (T1s.pop() if T1s else 0), attrs


def split_videos(annotations: str | Path) -> list[str]:
    table = pd.read_parquet(annotations, columns=["video_id"])
    return sorted(table["video_id"].astype(str).unique())


def missing_reasons(videos: list[str], clip: dict, vggish: dict) -> dict[str, str]:
    reasons = {}
    for vid in videos:
        lacks = [name for name, index in (("clip_rn50", clip), ("vggish", vggish)) if vid not in index]
        if lacks:
            reasons[vid] = "no " + " and no ".join(f"{name} features" for name in lacks)
    return reasons


def pool_split(clip_paths: list[str], vggish_paths: list[str], annotations: str | Path, split: str, T: int,
               method: str, out: str | Path) -> dict:
    """Pool every video of the split present in both encoders' stores into `out` (atomic). Returns a summary."""
    if method not in POOLERS:
        raise ValueError(f"unknown pooling method {method!r}; known: {METHODS}")
    clip, T1_clip, clip_attrs = index_stores(clip_paths, LAYOUT["clip_rn50"].array, MAP_SHAPE)
    vggish, T1_audio, vggish_attrs = index_stores(vggish_paths, LAYOUT["vggish"].array, (AUDIO_DIM,))
    if clip and vggish and T1_clip != T1_audio:
        raise ValueError(f"clip_rn50 stores have T1={T1_clip} but vggish stores have T1={T1_audio}")
    T1 = T1_clip or T1_audio
    window(T1, T)  # fail before writing anything
    videos = split_videos(annotations)
    missing = missing_reasons(videos, clip, vggish)
    present = [v for v in videos if v not in missing]
    if missing:
        logger.warning("%s: %d of %d videos lack features and are left out (e.g. %s)", split, len(missing),
                       len(videos), ", ".join(f"{v}: {r}" for v, r in list(missing.items())[:3]))
    if not present:
        raise ValueError(f"{annotations}: none of the {len(videos)} videos of split {split!r} has features from "
                         f"both encoders")
    pool = POOLERS[method]
    groups = {}
    with atomic_path(out) as tmp:
        store = open_new(tmp)
        visual = store.create_array("visual", shape=(len(present), T, *MAP_SHAPE), dtype="float16",
                                    chunks=(1, T, *MAP_SHAPE))
        audio = np.empty((len(present), T, AUDIO_DIM), dtype=np.float32)
        for i, vid in enumerate(tqdm(present, desc=f"pool {method} {split}", unit="video", disable=None)):
            loc = clip[vid]
            maps = _open(groups, loc.store)[LAYOUT["clip_rn50"].array][loc.row]
            visual[i] = pool(maps, T).astype(np.float16)
            loc = vggish[vid]
            audio[i] = pool(_open(groups, loc.store)[LAYOUT["vggish"].array][loc.row], T).astype(np.float32)
        store.create_array("audio", shape=audio.shape, dtype="float32", chunks=audio.shape)[:] = audio
        write_strings(store, "video_id", present)
        store.attrs.update({
            "T1": T1, "T": T, "method": method, "split": split, "missing": missing,
            "clip_rn50": clip_attrs, "vggish": vggish_attrs,
        })
        record_digest(store)  # what a training run's resume identity reads (avqa.digest)
    logger.info("%s: pooled %d videos %d -> %d (%s) into %s", split, len(present), T1, T, method, out)
    return {"videos": len(present), "missing": len(missing), "T1": T1, "T": T}


def _open(cache: dict, path: str):
    if path not in cache:
        cache[path] = open_read(path)
    return cache[path]


def _cli(args: argparse.Namespace) -> None:
    summary = pool_split(args.clip, args.vggish, args.annotations, args.split, args.T, args.method, args.out)
    print(f"{args.out}: {summary['videos']} videos pooled, {summary['missing']} missing "
          f"(T1={summary['T1']} -> T={summary['T']}, {args.method})")


def register(subparsers) -> None:
    parser = subparsers.add_parser("pool", help="temporal pooling T1 -> T of one split's features",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", nargs="+", required=True, help="clip_rn50 shard stores (maps)")
    parser.add_argument("--vggish", nargs="+", required=True, help="vggish shard stores (emb)")
    parser.add_argument("--annotations", required=True, help="the split's annotations parquet")
    parser.add_argument("--split", required=True, help="split name (recorded in the store's attrs)")
    parser.add_argument("--T", type=int, required=True, help="segments after pooling (T1 must be a multiple)")
    parser.add_argument("--method", choices=METHODS, default="avg")
    parser.add_argument("--out", required=True, help="output store, e.g. results/pooled/avg/test.zarr")
    parser.set_defaults(func=_cli)
