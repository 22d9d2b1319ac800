"""Media decoding: 1 frame per second (the frame on screen at the centre of each second) and 16 kHz mono audio.

MUSIC-AVQA's protocol: second k is represented by the frame shown at t = k + 0.5 s and by the audio samples of
[k, k + 1) s. A video keeps at most T1 seconds ("cut" when longer); a shorter one is "padded" by repeating its
last real second (frames and audio alike). A second counts as real when its centre lies inside the stream, so a
3.0-s clip has 3 real seconds and a 3.6-s clip 4. Time 0 is each stream's own first frame / sample, as in the
public feature extractors (the offsets between streams in such files are a few tens of ms).

Frames come from decord (frame timestamps, so variable frame rate is handled); if decord fails on a file, the
same frames are decoded with ffmpeg (ffprobe frame timestamps + a select filter). Every problem with an input
file raises MediaError naming the file and the problem.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import numpy as np

logger = logging.getLogger(__name__)

EPS = 1e-6  # float timestamps (decord's are float32) must not add or drop a second at exact boundaries


class MediaError(Exception):
    """A video file cannot be used: missing, empty, corrupt, or without the stream that was asked for."""

    def __init__(self, path: str | Path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


@dataclass(frozen=True)
class MediaInfo:
    """What ffprobe says about a file: container duration and the first video / audio stream (or None)."""

    path: str
    duration: float | None
    video: dict | None
    audio: dict | None

    def stream_duration(self, stream: dict) -> float | None:
        value = stream.get("duration", self.duration)
        return float(value) if value is not None else None


@dataclass(frozen=True)
class Seconds:
    """How a stream maps onto the slots of the feature store (T1 * fps; one per second at fps = 1)."""

    duration: float   # seconds of this stream in the file
    available: int    # samples whose centre lies inside the stream
    n_real: int       # samples actually decoded: min(available, slots)
    slots: int

    @property
    def padded(self) -> bool:
        return self.n_real < self.slots

    @property
    def cut(self) -> bool:
        return self.available > self.slots


@dataclass(frozen=True)
class Decoded:
    """Decoded media: frames (n, H, W, 3) uint8 or audio (samples,) float32, and its seconds bookkeeping."""

    data: np.ndarray
    seconds: Seconds


def count_seconds(duration: float, fps: float = 1) -> int:
    """Samples k >= 0 whose centre (k + 0.5) / fps lies inside [0, duration); at least 1 for a non-empty stream."""
    return max(1, math.ceil(duration * fps - 0.5 - EPS))


def make_seconds(duration: float, T1: int, fps: float = 1, decoded: float | None = None) -> Seconds:
    """duration: the stream's length in the file; decoded: the part of it that was decoded (default: all)."""
    slots = int(round(T1 * fps))
    decoded = duration if decoded is None else decoded
    duration = max(duration, decoded)  # a container's metadata may understate a stream
    return Seconds(duration=float(duration), available=count_seconds(duration, fps),
                   n_real=min(count_seconds(decoded, fps), slots), slots=slots)


def repeat_last(data: np.ndarray, n: int) -> np.ndarray:
    """Extend `data` along axis 0 to n entries by repeating its last entry (MUSIC-AVQA's padding)."""
    if len(data) >= n:
        return data[:n]
    return np.concatenate([data, np.repeat(data[-1:], n - len(data), axis=0)])


# --- probing -----------------------------------------------------------------------------------------------
def _ffmpeg_problem(err: ffmpeg.Error) -> str:
    lines = [line.strip() for line in (err.stderr or b"").decode(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "ffmpeg failed without a message"


def check_file(path: str | Path) -> Path:
    """MediaError if the file is missing or empty (cheap checks, no decoder)."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "missing file")
    if path.stat().st_size == 0:
        raise MediaError(path, "zero-byte file")
    return path


def probe(path: str | Path) -> MediaInfo:
    """ffprobe a file; MediaError if it is missing, empty or not a readable media file."""
    path = check_file(path)
    try:
        info = ffmpeg.probe(str(path), v="error")
    except ffmpeg.Error as err:
        raise MediaError(path, f"unreadable or corrupt file ({_ffmpeg_problem(err)})") from err
    streams = info.get("streams", [])
    # Cover art in a music file is a one-picture "video" stream; it is not a video.
    videos = [s for s in streams if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    duration = info.get("format", {}).get("duration")
    return MediaInfo(str(path), float(duration) if duration is not None else None,
                     videos[0] if videos else None, audios[0] if audios else None)


# --- frames ------------------------------------------------------------------------------------------------
def centre_times(n: int, fps: float = 1) -> np.ndarray:
    return (np.arange(n) + 0.5) / fps


def frames_on_screen(frame_starts: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the frame displayed at each time: the last frame that starts at or before it (VFR-safe)."""
    order = np.argsort(frame_starts, kind="stable")
    pos = np.searchsorted(frame_starts[order], times + EPS, side="right") - 1
    return order[np.clip(pos, 0, len(order) - 1)]


def decode_frames(path: str | Path, T1: int, fps: float = 1, pad: bool = True, threads: int = 1) -> Decoded:
    """uint8 RGB frames (n, H, W, 3) at t = (k + 0.5) / fps for k < min(real seconds, T1).

    pad=True repeats the last real frame up to T1 * fps frames; pad=False returns only the real ones.
    ffprobe runs only when decord fails (it costs about as much CPU as decoding the audio): to name the problem
    (corrupt file, no video stream) or, for a file decord cannot read but ffmpeg can, to decode with ffmpeg.
    """
    check_file(path)
    try:
        frames, seconds = _frames_decord(path, T1, fps, threads)
    except Exception as err:  # decord raises RuntimeError / DECORDError
        info = probe(path)
        if info.video is None:
            raise MediaError(path, "no video stream") from err
        logger.warning("%s: decord failed (%s); decoding with ffmpeg instead", path, str(err).splitlines()[0])
        frames, seconds = _frames_ffmpeg(path, info, T1, fps)
    frames = _as_rgb(frames, path)
    return Decoded(repeat_last(frames, seconds.slots) if pad else frames, seconds)


def _as_rgb(frames: np.ndarray, path) -> np.ndarray:
    if frames.ndim == 3:  # (n, H, W) grayscale
        frames = frames[..., None]
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3):
        raise MediaError(path, f"decoder returned frames of unexpected shape {frames.shape}")
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    return np.ascontiguousarray(frames, dtype=np.uint8)


def _frames_decord(path, T1: int, fps: float, threads: int) -> tuple[np.ndarray, Seconds]:
    import decord

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=threads)
    if len(reader) == 0:
        raise RuntimeError("no frames")
    stamps = reader.get_frame_timestamp(range(len(reader)))  # (n, 2) start, end in seconds
    seconds = make_seconds(float(stamps[:, 1].max()), T1, fps)
    index = frames_on_screen(stamps[:, 0], centre_times(seconds.n_real, fps))
    frames = reader.get_batch(index.tolist()).asnumpy()
    if frames.ndim != 4 or frames.shape[-1] != 3:  # decord returns 4 channels on some frame widths
        raise RuntimeError(f"decord returned frames of shape {frames.shape}")
    return frames, seconds


def _frames_ffmpeg(path, info: MediaInfo, T1: int, fps: float) -> tuple[np.ndarray, Seconds]:
    """The fallback: ffprobe lists the frame timestamps of the first T1 seconds, ffmpeg's select filter picks the
    frames by number (frame n of the filter = the n-th frame the decoder outputs, as in ffprobe's listing)."""
    # Seconds read: the centres below T1, plus room for B-frame reordering (ffprobe stops at the first packet
    # past the window in decode order; x264's pyramid reorders ~4 frames, i.e. 4 s at 1 fps).
    window = T1 + 30
    try:
        listing = ffmpeg.probe(str(path), v="error", select_streams="v:0", read_intervals=f"%+{window}",
                               show_entries="frame=best_effort_timestamp_time,pkt_duration_time")
    except ffmpeg.Error as err:
        raise MediaError(path, f"unreadable video stream ({_ffmpeg_problem(err)})") from err
    frames = [f for f in listing.get("frames", []) if "best_effort_timestamp_time" in f]
    if not frames:
        raise MediaError(path, "video stream has no decodable frames")
    starts = np.array([float(f["best_effort_timestamp_time"]) for f in frames])
    starts -= starts.min()
    decoded_end = float(max(starts + [float(f.get("pkt_duration_time") or 0) for f in frames]))
    seconds = make_seconds(info.stream_duration(info.video) or decoded_end, T1, fps, decoded=decoded_end)
    index = frames_on_screen(starts, centre_times(seconds.n_real, fps))
    wanted = np.unique(index)
    select = "+".join(f"eq(n,{i})" for i in wanted)
    try:
        raw, _ = (ffmpeg.input(str(path), t=window)["v:0"].filter("select", select)
                  .output("pipe:", format="rawvideo", pix_fmt="rgb24", vsync="passthrough")
                  .run(capture_stdout=True, capture_stderr=True))
    except ffmpeg.Error as err:
        raise MediaError(path, f"cannot decode video frames ({_ffmpeg_problem(err)})") from err
    height, width = _display_size(info.video)
    if len(raw) != len(wanted) * height * width * 3:
        raise MediaError(path, f"ffmpeg returned {len(raw)} bytes for {len(wanted)} frames of {width}x{height}")
    frames = np.frombuffer(raw, np.uint8).reshape(len(wanted), height, width, 3)
    return frames[np.searchsorted(wanted, index)], seconds


def _display_size(stream: dict) -> tuple[int, int]:
    """(height, width) of the frames ffmpeg outputs: it applies the display rotation (decord does too)."""
    rotation = stream.get("tags", {}).get("rotate", 0)
    for side in stream.get("side_data_list", []):
        rotation = side.get("rotation", rotation)
    height, width = int(stream["height"]), int(stream["width"])
    return (width, height) if int(float(rotation)) % 180 else (height, width)


# --- audio -------------------------------------------------------------------------------------------------
def decode_audio(path: str | Path, sample_rate: int = 16000, T1: int | None = None, pad: bool = True) -> Decoded:
    """float32 mono samples at `sample_rate` (ffmpeg downmixes and resamples) of the first T1 seconds.

    pad=True returns exactly T1 seconds (the last real second repeated); pad=False the real seconds only (the
    last one may be partial). T1=None decodes the whole track.
    """
    info = probe(path)
    if info.audio is None:
        raise MediaError(path, "no audio stream")
    limit = {"t": T1} if T1 is not None else {}
    try:
        raw, _ = (ffmpeg.input(str(path))["a:0"]
                  .output("pipe:", format="f32le", acodec="pcm_f32le", ac=1, ar=sample_rate, **limit)
                  .run(capture_stdout=True, capture_stderr=True))
    except ffmpeg.Error as err:
        raise MediaError(path, f"cannot decode the audio stream ({_ffmpeg_problem(err)})") from err
    wave = np.frombuffer(raw, np.float32)
    if wave.size == 0:
        raise MediaError(path, "audio stream decoded to no samples")
    decoded = len(wave) / sample_rate
    full = info.stream_duration(info.audio) or decoded
    T1 = count_seconds(max(full, decoded)) if T1 is None else T1
    seconds = make_seconds(full, T1, decoded=decoded)
    wave = wave[: seconds.n_real * sample_rate]
    if pad:
        wave = _pad_audio(wave, seconds, sample_rate)
    return Decoded(np.ascontiguousarray(wave), seconds)


def _pad_audio(wave: np.ndarray, seconds: Seconds, sample_rate: int) -> np.ndarray:
    """Exactly T1 seconds: the partial last second zero-filled, then that second repeated."""
    wave = np.pad(wave, (0, seconds.n_real * sample_rate - len(wave)))
    per_second = wave.reshape(seconds.n_real, sample_rate)
    return repeat_last(per_second, seconds.slots).reshape(-1)
