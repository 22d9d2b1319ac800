"""`python -m avqa shards`: split the videos named in the annotations into extraction shards named by content.

Output (results/features/shards.json): {"videos_dir", "videos_per_shard", "shards": {name: [video_id, ...]},
"missing": [video_id, ...]} over the sorted unique video ids of all the given annotation files. Every annotated
video is listed, present or not: a missing file becomes a row of failures.tsv at extraction, not a silent gap,
unless more than `max_missing_fraction` of them are missing — then the videos folder is wrong and the stage stops
before any extraction job starts, naming the folder, the count and examples.

A shard's name is a digest of what it holds: its video ids and, per video, the file found for it (name, size,
modification time). Extraction jobs read this file as `ancient` input, so rewriting it never reruns them; only a
shard whose videos changed gets a new name, hence new extraction jobs. Shard boundaries are content-defined
(a cut after every video whose id hashes to 0 modulo videos_per_shard, at most 2 x videos_per_shard per shard),
so adding or removing one video changes one shard, not every shard after it as fixed-size runs would.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from avqa.atomic import write_text_atomic
from avqa.data.annotations import annotated_video_ids
from avqa.digest import stable_hash
from avqa.errors import UserError
from avqa.features.videos import CONTAINERS, index_videos, resolve
from avqa.specs import add_spec_arguments, spec_from_args
from avqa.specs.features import ShardsSpec

logger = logging.getLogger(__name__)

NAME_DIGEST_CHARS = 10


class MissingVideosError(UserError):
    """Too many annotated videos have no file: the videos folder is wrong (or still downloading)."""


def cut_points(video_ids: list[str], videos_per_shard: int) -> list[list[str]]:
    """Content-defined runs of the sorted ids: a cut after each id hashing to 0 mod videos_per_shard (so about
    videos_per_shard per run), and a forced cut at 2 x videos_per_shard."""
    if videos_per_shard < 1:
        raise ValueError(f"videos_per_shard must be >= 1, got {videos_per_shard}")
    runs, current = [], []
    for video_id in video_ids:
        current.append(video_id)
        if stable_hash(video_id) % videos_per_shard == 0 or len(current) >= 2 * videos_per_shard:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def file_identity(videos_dir: str | Path, name: str | None) -> list:
    """What a shard's name depends on per video: the file name, size and modification time (None if absent)."""
    if name is None:
        return [None]
    stat = os.stat(Path(videos_dir) / name)
    return [name, stat.st_size, stat.st_mtime_ns]


def shard_name(video_ids: list[str], identities: list[list]) -> str:
    payload = json.dumps([[v, *ident] for v, ident in zip(video_ids, identities)])
    return "shard-" + hashlib.blake2b(payload.encode(), digest_size=8).hexdigest()[:NAME_DIGEST_CHARS]


def make_shards(video_ids: list[str], videos_per_shard: int,
                files: dict[str, list] | None = None) -> dict[str, list[str]]:
    """{name: ids} for the content-defined runs of `video_ids`; `files` gives each id's file identity."""
    files = files or {}
    shards = {}
    for run in cut_points(video_ids, videos_per_shard):
        shards[shard_name(run, [files.get(v, [None]) for v in run])] = run
    return dict(sorted(shards.items()))


def check_missing(missing: list[str], total: int, videos_dir: str, max_fraction: float) -> None:
    """Stop (MissingVideosError) when more than max_fraction of the annotated videos have no file."""
    if total and len(missing) / total > max_fraction:
        examples = ", ".join(missing[:5])
        raise MissingVideosError(
            f"{len(missing)} of {total} annotated videos ({100 * len(missing) / total:.1f}%) have no file in "
            f"{videos_dir} (looked for {{video_id}}{{{','.join(CONTAINERS)}}}; e.g. {examples}): is "
            f"music_avqa.videos_dir right? Above features.max_missing_fraction = {max_fraction} the run stops "
            f"before extraction")
    if missing:
        logger.warning("%d of %d annotated videos are not in %s (e.g. %s); extraction will list them as failures",
                       len(missing), total, videos_dir, ", ".join(missing[:3]))


def write_shards(annotations: list[str | Path], videos_dir: str, videos_per_shard: int, out: str | Path,
                 max_missing_fraction: float) -> dict:
    ids = annotated_video_ids(annotations)
    if not ids:
        raise ValueError(f"no video ids in {[str(a) for a in annotations]}: nothing to extract")
    index = index_videos(videos_dir)
    names = {v: resolve(v, index, videos_dir) for v in ids}
    missing = [v for v in ids if names[v] is None]
    check_missing(missing, len(ids), str(videos_dir), max_missing_fraction)
    files = {v: file_identity(videos_dir, names[v]) for v in ids}
    manifest = {"videos_dir": str(videos_dir), "videos_per_shard": videos_per_shard,
                "shards": make_shards(ids, videos_per_shard, files), "missing": missing}
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
    add_spec_arguments(parser, "its videos folder and features.videos_per_shard, max_missing_fraction")
    parser.add_argument("--out", required=True, help="shards.json to write")
    parser.set_defaults(func=_run)


def _run(args) -> None:
    from avqa.workflow import shards_spec

    settings = spec_from_args(args, ShardsSpec, shards_spec)
    manifest = write_shards(args.annotations, settings.videos_dir, settings.videos_per_shard, args.out,
                            settings.max_missing_fraction)
    n = sum(len(v) for v in manifest["shards"].values())
    print(f"{args.out}: {n} videos in {len(manifest['shards'])} shards, {len(manifest['missing'])} missing")
