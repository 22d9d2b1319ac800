"""Finding a video by its id, whatever its container: `{videos_dir}/{video_id}.{mp4,mkv,webm,mov,avi}`.

MUSIC-AVQA's videos are mp4, but re-downloads and the v2.0 additions come as .mkv or .webm; a file of another
container named by the annotations is the same video, not a missing one. Exactly one match is required: two
files of one id (e.g. 00000001.mp4 and 00000001.webm) is an error naming both, never a silent pick.
"""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from avqa.errors import UserError

CONTAINERS = (".mp4", ".mkv", ".webm", ".mov", ".avi")


class AmbiguousVideoError(UserError, ValueError):
    """More than one file in the videos folder carries the same video id."""


def index_videos(videos_dir: str | os.PathLike) -> dict[str, list[str]]:
    """video id -> the file names of that id in `videos_dir` (one directory listing, not a stat per id)."""
    found: dict[str, list[str]] = defaultdict(list)
    folder = Path(videos_dir)
    if not folder.is_dir():
        return {}
    with os.scandir(folder) as entries:
        for entry in entries:
            stem, ext = os.path.splitext(entry.name)
            if ext.lower() in CONTAINERS and entry.is_file():
                found[stem].append(entry.name)
    return {vid: sorted(names) for vid, names in found.items()}


def resolve(video_id: str, index: dict[str, list[str]], videos_dir: str | os.PathLike) -> str | None:
    """The file name of one video (None if absent); AmbiguousVideoError naming the files if several match."""
    names = index.get(video_id, [])
    if len(names) > 1:
        raise AmbiguousVideoError(f"{videos_dir}: video {video_id!r} has {len(names)} files "
                                  f"({', '.join(names)}); keep one")
    return names[0] if names else None


def find_video(videos_dir: str | os.PathLike, video_id: str) -> Path | None:
    """The path of one video in `videos_dir` by id, any container (None if there is none)."""
    folder = Path(videos_dir)
    names = sorted(p.name for p in (folder / f"{video_id}{ext}" for ext in CONTAINERS) if p.is_file())
    name = resolve(video_id, {video_id: names} if names else {}, videos_dir)
    return None if name is None else folder / name
