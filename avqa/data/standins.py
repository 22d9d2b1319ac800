"""Stand-in clips for every annotated video id: the data path at MUSIC-AVQA's size without its videos.

`python -m avqa standins` reads the annotation parquets, renders a few short base clips (a moving test pattern,
a hue per base, a sine tone per base: H.264 + AAC through ffmpeg's lavfi sources) and gives every video id a
hard link `{out}/videos/{video_id}.mp4` to one of them (chosen by a hash of the id, so stable across runs). 7,918
ids cost a few base clips and 7,918 directory entries, while every later stage (shards, decoding, encoders,
pooling, training) does its full per-video work. The output folder is written atomically.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
from pathlib import Path

import ffmpeg

from avqa.atomic import atomic_path
from avqa.data.annotations import annotated_video_ids
from avqa.digest import stable_hash
from avqa.specs import add_spec_arguments, spec_from_args
from avqa.specs.data import StandinsSpec

logger = logging.getLogger(__name__)


def base_of(video_id: str, bases: int) -> int:
    """Which base clip a video id links to (stable across runs)."""
    return stable_hash(video_id) % bases


def render_base(path: Path, index: int, bases: int, seconds: int, width: int, height: int, fps: int) -> None:
    """One base clip: testsrc2 with hue index/bases of a turn, a sine of 220 * (1 + index) Hz, 16 kHz mono."""
    video = ffmpeg.input(f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}", f="lavfi")
    video = video.filter("hue", h=360.0 * index / bases)
    audio = ffmpeg.input(f"sine=frequency={220 * (1 + index)}:sample_rate=16000:duration={seconds}", f="lavfi")
    try:
        (ffmpeg.output(video, audio, str(path), vcodec="libx264", pix_fmt="yuv420p", preset="ultrafast", g=fps,
                       acodec="aac", t=seconds, threads=1, f="mp4")
         .global_args("-hide_banner", "-nostdin").overwrite_output().run(quiet=True))
    except ffmpeg.Error as err:
        raise RuntimeError(f"ffmpeg failed writing {path}: {err.stderr.decode(errors='replace').strip()}") from err


def link(source: Path, target: Path) -> None:
    """A hard link (a copy where the filesystem has none)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def make_standins(annotations: list[str | Path], out: str | Path, seconds: int, width: int, height: int, fps: int,
                  bases: int) -> dict[str, int]:
    """Write `{out}/bases/base-NN.mp4` and `{out}/videos/{video_id}.mp4` for every id; returns {'videos', 'bases'}."""
    if seconds < 1 or fps < 1 or bases < 1:
        raise ValueError(f"standins: seconds, fps and bases must be >= 1 (got {seconds}, {fps}, {bases})")
    if width % 2 or height % 2:
        raise ValueError(f"standins: H.264 (yuv420p) needs an even width and height, got {width}x{height}")
    ids = annotated_video_ids(annotations)
    with atomic_path(out) as tmp:
        (tmp / "bases").mkdir(parents=True)
        (tmp / "videos").mkdir()
        base_paths = [tmp / "bases" / f"base-{k:02d}.mp4" for k in range(bases)]
        for k, path in enumerate(base_paths):
            render_base(path, k, bases, seconds, width, height, fps)
        for video_id in ids:
            link(base_paths[base_of(video_id, bases)], tmp / "videos" / f"{video_id}.mp4")
    logger.info("%d stand-in videos (%d base clips of %d s, %dx%d) -> %s", len(ids), bases, seconds, width,
                height, out)
    return {"videos": len(ids), "bases": bases}


def _cli(args: argparse.Namespace) -> None:
    from avqa.workflow import standins_spec

    spec = spec_from_args(args, StandinsSpec, standins_spec)
    made = make_standins(args.annotations, args.out, spec.seconds, spec.width, spec.height, spec.video_fps,
                         spec.bases)
    print(f"standins: {made['videos']} videos linked to {made['bases']} base clips in {args.out}/videos")


def register(subparsers) -> None:
    parser = subparsers.add_parser("standins", help="short stand-in clips for every annotated video id (scale check)")
    parser.add_argument("--annotations", nargs="+", required=True, help="annotation parquets (column video_id)")
    parser.add_argument("--out", required=True, help="output folder: bases/ and videos/{video_id}.mp4")
    add_spec_arguments(parser, "music_avqa.standins: clip length, size, rate, distinct base clips")
    parser.set_defaults(func=_cli)
