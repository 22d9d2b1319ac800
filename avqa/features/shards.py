"""`python -m avqa shards`: split the videos named in the annotations into fixed-size shards for extraction.

Output (results/features/shards.json): {"videos_dir": str, "videos_per_shard": int, "shards": {"shard000":
[video_id, ...], ...}} with the sorted unique video ids of all the given annotation files. Every annotated video
is listed, present or not: a missing file becomes a row of failures.tsv at extraction, not a silent gap.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from avqa.atomic import write_text_atomic

logger = logging.getLogger(__name__)


def annotated_video_ids(annotations: list[str | Path]) -> list[str]:
    """Sorted unique `video_id` values over the annotation parquet files."""
    ids: set[str] = set()
    for path in annotations:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: annotation file does not exist")
        columns = pq.read_schema(path).names
        if "video_id" not in columns:
            raise ValueError(f"{path}: no 'video_id' column (columns: {columns})")
        values = pd.read_parquet(path, columns=["video_id"])["video_id"]
        if values.isna().any():
            raise ValueError(f"{path}: {int(values.isna().sum())} rows have no video_id")
        ids.update(values.astype(str))
    return sorted(ids)


def make_shards(video_ids: list[str], videos_per_shard: int) -> dict[str, list[str]]:
    """Consecutive runs of `videos_per_shard` ids, named shard000, shard001, ... (zero-padded to sort)."""
    if videos_per_shard < 1:
        raise ValueError(f"videos_per_shard must be >= 1, got {videos_per_shard}")
    starts = range(0, len(video_ids), videos_per_shard)
    width = max(3, len(str(len(starts) - 1)))
    return {f"shard{i:0{width}d}": video_ids[s:s + videos_per_shard] for i, s in enumerate(starts)}


def write_shards(annotations: list[str | Path], videos_dir: str, videos_per_shard: int, out: str | Path) -> dict:
    ids = annotated_video_ids(annotations)
    if not ids:
        raise ValueError(f"no video ids in {[str(a) for a in annotations]}: nothing to extract")
    missing = [v for v in ids if not (Path(videos_dir) / f"{v}.mp4").is_file()]
    if missing:
        logger.warning("%d of %d annotated videos are not in %s (e.g. %s); extraction will list them as failures",
                       len(missing), len(ids), videos_dir, ", ".join(missing[:3]))
    manifest = {"videos_dir": str(videos_dir), "videos_per_shard": videos_per_shard,
                "shards": make_shards(ids, videos_per_shard)}
    write_text_atomic(out, json.dumps(manifest, indent=1) + "\n")
    logger.info("%d videos in %d shards -> %s", len(ids), len(manifest["shards"]), out)
    return manifest


def read_shard(shards_json: str | Path, shard: str) -> tuple[Path, list[str]]:
    """(videos_dir, video ids) of one shard of a shards.json."""
    manifest = json.loads(Path(shards_json).read_text())
    if shard not in manifest.get("shards", {}):
        raise KeyError(f"{shards_json}: no shard {shard!r} (has {sorted(manifest.get('shards', {}))[:5]} ...)")
    return Path(manifest["videos_dir"]), list(manifest["shards"][shard])


def register(subparsers) -> None:
    parser = subparsers.add_parser("shards", help="split the annotated videos into extraction shards")
    parser.add_argument("--annotations", nargs="+", required=True, help="annotation parquet files (column video_id)")
    parser.add_argument("--videos-dir", required=True, help="folder of {video_id}.mp4")
    parser.add_argument("--videos-per-shard", type=int, required=True)
    parser.add_argument("--out", required=True, help="shards.json to write")
    parser.set_defaults(func=_run)


def _run(args) -> None:
    write_shards(args.annotations, args.videos_dir, args.videos_per_shard, args.out)
