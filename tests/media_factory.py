"""Tiny test videos made with the ffmpeg binary from lavfi sources (colour / testsrc pictures, sine tones)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

# Saturated colours that stay far apart after H.264's 4:2:0 round trip.
PALETTE = {"red": (255, 0, 0), "lime": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0),
           "magenta": (255, 0, 255), "cyan": (0, 255, 255), "white": (255, 255, 255), "black": (0, 0, 0)}


def run_ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_video(path: str | Path, seconds: int = 4, size: tuple[int, int] = (64, 48), fps: float = 10,
               colours: list[str] | None = None, audio: bool = True, audio_rate: int = 16000,
               channels: int = 1, tone_from: float | None = None, gray: bool = False, vfr: bool = False,
               video: bool = True, audio_bitrate: str = "64k", pattern: str = "testsrc",
               keyint: int | None = None, bframes: int | None = None) -> Path:
    """An mp4: `colours` (one per second) or a lavfi `pattern` (testsrc; testsrc2 moves, like the benchmark's
    clips); sine audio (or silence then a tone from `tone_from` s).

    vfr drops frames irregularly in the first two seconds and keeps the original timestamps. x264 runs with its
    defaults (keyframes every 250 frames, up to 3 B-frames in a pyramid) unless keyint (frames between
    keyframes) or bframes is given.
    """
    path = Path(path)
    width, height = size
    sources: list[str] = []
    args: list[str] = []
    if video:
        if colours:
            sources = [f"color=c={c}:s={width}x{height}:r={fps}:d=1" for c in colours]
            chain = "".join(f"[{i}]" for i in range(len(sources))) + f"concat=n={len(sources)}:v=1:a=0"
        else:
            sources = [f"{pattern}=s={width}x{height}:r={fps}:d={seconds}"]
            chain = "[0]null"
        if vfr:
            chain += r",select='lt(mod(n\,7)\,2)+gte(t\,2)'"
        chain += ",format=gray" if gray else ""
        args += ["-filter_complex", f"{chain}[v]", "-map", "[v]", "-c:v", "libx264",
                 "-pix_fmt", "gray" if gray else "yuv420p", *(["-vsync", "vfr"] if vfr else []),
                 *(["-g", str(keyint), "-keyint_min", str(keyint)] if keyint else []),
                 *(["-bf", str(bframes)] if bframes is not None else [])]
    if audio:
        duration = len(colours) if colours and video else seconds
        if tone_from is not None:
            tone = f"aevalsrc=if(gte(t\\,{tone_from})\\,0.5*sin(2*PI*440*t)\\,0):s={audio_rate}:d={duration}"
        else:
            tone = f"sine=f=440:r={audio_rate}:d={duration}"
        args += ["-map", f"{len(sources)}:a", "-c:a", "aac", "-b:a", audio_bitrate,
                 "-ac", str(channels), "-ar", str(audio_rate)]
        sources.append(tone)
    inputs = [arg for source in sources for arg in ("-f", "lavfi", "-i", source)]
    run_ffmpeg(*inputs, *args, str(path))
    return path


def corrupt_file(path: str | Path, n_bytes: int = 4000, seed: int = 0) -> Path:
    """Random bytes named .mp4."""
    path = Path(path)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, n_bytes, dtype=np.uint8).tobytes())
    return path


def truncated_copy(source: str | Path, path: str | Path, keep: int = 3000) -> Path:
    """The first `keep` bytes of a real video (its moov index is cut off)."""
    path = Path(path)
    path.write_bytes(Path(source).read_bytes()[:keep])
    return path


def nearest_colour(rgb) -> str:
    """Name of the PALETTE colour closest to an RGB triple (e.g. a decoded frame's mean colour)."""
    rgb = np.asarray(rgb, dtype=float)
    return min(PALETTE, key=lambda name: float(np.sum((rgb - PALETTE[name]) ** 2)))
