"""Draw a scene's picture and encode it with its soundtrack as an H.264 + AAC mp4 (through the ffmpeg binary).

Layout: CLIP keeps the centre square of a frame (shorter side resized to 224, centre crop), so the three
positions are the thirds of that square; an object fills most of its third. The picture is the same in every
frame: a sounding object must not look different from a silent one, or audio questions would be answerable from
the pixels. Backgrounds: indoor = a brown room (wall over floor), outdoor = blue sky over green grass.
"""
from __future__ import annotations

import logging
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import numpy as np

from avqa.data.synthetic.audio import soundtrack
from avqa.data.synthetic.catalog import BY_NAME
from avqa.data.synthetic.scene import POSITIONS

logger = logging.getLogger(__name__)

BACKGROUND_COLOURS = {  # (upper, lower, horizon as a share of the centre square's height)
    "indoor": ((140, 90, 55), (90, 55, 30), 0.66),
    "outdoor": ((110, 170, 235), (40, 150, 45), 0.60),
}
OBJECT_CENTRE_Y = 0.58   # share of the centre square's height: objects stand in front of the horizon


@dataclass(frozen=True)
class RenderSettings:
    width: int
    height: int
    video_fps: int
    audio_rate: int


# Shape masks on box coordinates u, v in [-1, 1] (u to the right, v downwards).
SHAPES = {
    "ellipse": lambda u, v: u ** 2 + v ** 2 <= 1,
    "circle": lambda u, v: u ** 2 + v ** 2 <= 1,
    "table": lambda u, v: (v <= 0.2) | (np.abs(u) >= 0.75),   # a body on two legs
    "hbar": lambda u, v: np.ones_like(u, dtype=bool),
    "vbar": lambda u, v: np.ones_like(u, dtype=bool),
    "figure8": lambda u, v: ((u / 0.75) ** 2 + ((v + 0.5) / 0.5) ** 2 <= 1) | (u ** 2 + ((v - 0.35) / 0.65) ** 2 <= 1),
    "triangle": lambda u, v: np.abs(u) <= (v + 1) / 2,
    "hourglass": lambda u, v: np.abs(u) <= np.maximum(np.abs(v), 0.3),
    "ring": lambda u, v: (u ** 2 + v ** 2 <= 1) & (u ** 2 + v ** 2 >= 0.4),
    "plus": lambda u, v: (np.abs(u) <= 0.35) | (np.abs(v) <= 0.35),
    "diamond": lambda u, v: np.abs(u) + np.abs(v) <= 1,
    "trapezoid": lambda u, v: np.abs(u) <= 0.55 + 0.45 * (v + 1) / 2,
    "semicircle": lambda u, v: u ** 2 + ((v - 1) / 2) ** 2 <= 1,
}


def centre_square(width: int, height: int) -> tuple[float, float, float]:
    """(x0, y0, side) of the square CLIP's centre crop keeps, in frame pixels."""
    side = min(width, height)
    return (width - side) / 2, (height - side) / 2, side


def object_box(obj: dict, width: int, height: int) -> tuple[float, float, float, float]:
    """(centre x, centre y, box width, box height) of a drawn object, in frame pixels."""
    x0, y0, side = centre_square(width, height)
    slot = side / len(POSITIONS)
    look = BY_NAME[obj["instrument"]].look
    cx = x0 + slot * (POSITIONS.index(obj["position"]) + 0.5 + obj["dx"])
    cy = y0 + side * (OBJECT_CENTRE_Y + obj["dy"])
    return cx, cy, look.width * slot * obj["scale"], look.height * side * obj["scale"]


def draw_frame(scene: dict, width: int, height: int) -> np.ndarray:
    """(height, width, 3) uint8 picture of the scene."""
    upper, lower, horizon = BACKGROUND_COLOURS[scene["background"]]
    tint = np.asarray(scene["tint"])
    frame = np.empty((height, width, 3), dtype=np.int16)
    _, y0, side = centre_square(width, height)
    split_row = int(round(y0 + horizon * side))
    frame[:split_row] = np.asarray(upper) + tint
    frame[split_row:] = np.asarray(lower) + tint
    for obj in scene["objects"]:
        frame[object_mask(obj, width, height)] = BY_NAME[obj["instrument"]].look.colour
    return np.clip(frame, 0, 255).astype(np.uint8)


def object_mask(obj: dict, width: int, height: int) -> np.ndarray:
    """(height, width) bool: the pixels an object covers."""
    cx, cy, w, h = object_box(obj, width, height)
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    u, v = (xs - cx) / (w / 2), (ys - cy) / (h / 2)
    return (np.abs(u) <= 1) & (np.abs(v) <= 1) & SHAPES[BY_NAME[obj["instrument"]].look.shape](u, v)


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def encode_mp4(path: Path, frame: np.ndarray, seconds: int, fps: int, wav: Path) -> None:
    """H.264 (yuv420p, a keyframe every second) from frames piped as raw RGB, AAC from the WAV."""
    height, width = frame.shape[:2]
    video = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", framerate=fps)
    audio = ffmpeg.input(str(wav))
    process = (
        ffmpeg.output(video, audio, str(path), vcodec="libx264", pix_fmt="yuv420p", preset="ultrafast", crf=18,
                      g=fps, acodec="aac", aac_coder="fast", audio_bitrate="128k", t=seconds, threads=1, f="mp4",
                      movflags="+faststart")
        .global_args("-hide_banner", "-loglevel", "error", "-nostdin")
        .overwrite_output()
        .run_async(pipe_stdin=True, pipe_stderr=True)
    )
    data = frame.tobytes()
    try:
        for _ in range(seconds * fps):
            process.stdin.write(data)
        process.stdin.close()
    except BrokenPipeError:
        pass  # ffmpeg died; its stderr says why
    stderr = process.stderr.read().decode(errors="replace")
    if process.wait() != 0:
        raise RuntimeError(f"ffmpeg failed writing {path}: {stderr.strip()}")


def render_video(scene: dict, path: Path, settings: RenderSettings) -> None:
    """Write one scene's mp4 to `path`."""
    frame = draw_frame(scene, settings.width, settings.height)
    samples = soundtrack(scene, settings.audio_rate)
    with tempfile.TemporaryDirectory(dir=Path(path).parent) as tmp:
        wav = Path(tmp) / "audio.wav"
        write_wav(wav, samples, settings.audio_rate)
        encode_mp4(Path(path), frame, scene["seconds"], settings.video_fps, wav)
