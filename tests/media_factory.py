"""Test videos made with the ffmpeg binary from lavfi sources: tiny colour / testsrc clips, and real-world encodes
of moving pictures (x264 High profile with B-frames, keyframes seconds apart, 25 / 29.97 / 30 fps, AAC 44.1 kHz
stereo or mono, the audio track a little longer or shorter than the video) like crawled YouTube clips."""
from __future__ import annotations

import re
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


# --- real-world encodes of moving pictures ------------------------------------------------------------------
MOVING_KINDS = ("pan", "zoom", "life", "noise")


def moving_source(kind: str, size: tuple[int, int], fps: str, seconds: float) -> str:
    """A lavfi source whose every frame differs from the next, as in real footage (one or two frames of camera
    motion move a 7x7 CLIP map visibly): testsrc2 panned across twice its width (`pan`), a Mandelbrot zoom
    (`zoom`), the game of life (`life`), testsrc2 under temporal noise like a sensor's (`noise`). Seeded."""
    width, height = size
    if kind == "pan":
        return (f"testsrc2=s={2 * width}x{height}:r={fps}:d={seconds},"
                f"crop={width}:{height}:x='(iw-ow)*t/{seconds}':y=0")
    if kind == "zoom":
        return f"mandelbrot=s={width}x{height}:r={fps}:maxiter=256:end_scale=0.05,trim=duration={seconds}"
    if kind == "life":
        return (f"life=s={width}x{height}:r={fps}:mold=10:ratio=0.4:seed=1:death_color=#203040:"
                f"life_color=#ffd070,trim=duration={seconds}")
    if kind == "noise":
        return f"testsrc2=s={width}x{height}:r={fps}:d={seconds},noise=alls=25:allf=t+u:all_seed=1"
    raise ValueError(f"unknown moving source {kind!r}: expected one of {MOVING_KINDS}")


def stepped_tone(second: int) -> float:
    """Amplitude of make_real_encode's tone in second k: it steps each second, so a second shifted or lost in
    decoding shows in its level."""
    return 0.1 * (1 + second % 4)


def make_real_encode(path: str | Path, kind: str = "pan", size: tuple[int, int] = (480, 360), fps: str = "25",
                     seconds: float = 10, audio_seconds: float | None = None, channels: int = 2,
                     audio_rate: int = 44100, keyint: int = 250, bframes: int = 3) -> Path:
    """An mp4 like a crawled YouTube clip: `kind` of moving_source at `size` and `fps` ("25", "30", "30000/1001")
    for `seconds`, x264 High profile with up to `bframes` B-frames (pyramid) and a keyframe every `keyint`
    frames (preset veryfast: the same stream structure, encoded fast enough for tests); AAC at `audio_rate`
    with `channels` channels, a 440 Hz tone whose level steps each second (stepped_tone), `audio_seconds` long
    (default: as long as the video)."""
    path = Path(path)
    audio_seconds = seconds if audio_seconds is None else audio_seconds
    tone = f"aevalsrc='0.1*(1+mod(floor(t)\\,4))*sin(2*PI*440*t)':s={audio_rate}:d={audio_seconds}"
    run_ffmpeg("-f", "lavfi", "-i", moving_source(kind, size, fps, seconds), "-f", "lavfi", "-i", tone,
               "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high",
               "-pix_fmt", "yuv420p", "-bf", str(bframes), "-g", str(keyint), "-c:a", "aac", "-b:a", "128k",
               "-ac", str(channels), "-ar", str(audio_rate), str(path))
    return path


_PTS_TIME = re.compile(r"\bn:\s*\d+\s+pts:\s*-?\d+\s+pts_time:(-?[\d.]+)")


def frames_near(path: str | Path, times, window: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """An oracle independent of avqa's decoders: (start times, rgb24 frames) of every frame ffmpeg decodes
    starting within `window` s of one of `times`, time 0 being the stream's first frame."""
    near = "+".join(f"between(t,{t - window:.6f},{t + window:.6f})" for t in times)
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height", "-of", "csv=p=0", str(path)],
                           capture_output=True, text=True, check=True)
    width, height = map(int, probe.stdout.strip().split(",")[:2])
    result = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0", "-vf",
                             f"setpts=PTS-STARTPTS,select='{near}',showinfo", "-vsync", "passthrough",
                             "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"], capture_output=True, check=True)
    starts = np.array([float(t) for t in _PTS_TIME.findall(result.stderr.decode(errors="replace"))])
    frames = np.frombuffer(result.stdout, np.uint8).reshape(-1, height, width, 3)
    assert len(frames) == len(starts), f"{path}: {len(frames)} frames, {len(starts)} timestamps"
    return starts, frames
