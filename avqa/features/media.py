"""Media decoding: 1 frame per second (the frame nearest the centre of each second) and 16 kHz mono audio.

MUSIC-AVQA's protocol: second k is represented by the frame nearest t = k + 0.5 s (of two equally near, the
earlier: the one on screen at the centre) and by the audio samples of [k, k + 1) s. A video keeps at most T1
seconds ("cut" when longer); a shorter stream is "padded" by repeating its last real second (frames and audio
alike). A second counts as real when its centre lies inside the stream, so a 3.0-s clip has 3 real seconds and a
3.6-s clip 4. Time 0 is each stream's own first frame / sample, as in the public feature extractors (the offsets
between streams in such files are a few tens of ms).

One truth per video: Seconds.duration is the file's length (the container's duration, to the 0.01 s ffmpeg's log
prints; a stream's own length only when the container gives none or a shorter one), and `cut` follows from it,
so the frame and the audio stores of a video record the same length and cut flag; n_real and `padded` are each
stream's own (a 9.4-s audio track has 9 real seconds in a 10-s video).

Frames come from decord (frame timestamps, so variable frame rate is handled); if decord fails on a file, the
same frames are decoded with ffmpeg (ffprobe frame timestamps + a select filter; decode_path FFMPEG_FULL).
(avqa.features.decoders has the torchcodec backend, the default, with the same contract.) Every problem with an input
file raises MediaError naming the file and the problem.

Decoding less (decode_frames' short_side and skip; opt-in, docs/decoding.md has their fidelity on moving
footage): short_side scales frames in the decoder (decord's swscale, or ffmpeg's bicubic filter) so their short
side is the encoder's input size. skip decodes only the frames the 1-fps sampling can get cheaply: the keyframes
when every second's centre has one within max_offset_s, else the reference frames (ffmpeg -skip_frame noref: a
frame no other frame references is never needed to decode the rest, so the kept frames decode bit-exactly), and
takes the decoded frame nearest each centre (for reference frames: the first one from a frame interval before
it, see _skip_select). These are not the centre frames: on moving footage one or two frames off moves a 7x7
CLIP map visibly, so the default decodes every frame at full size. A video where the skipped-to frame lies more
than max_offset_s from some centre is decoded again in full. Skipping every B-frame (-skip_frame bidir) is
not used: x264's B-pyramid makes B-frames references, and the frames decoded without them are corrupt.
Seconds records the path taken and each second's offset. deblock=False (opt-in) also skips H.264's loop
filter (deblocking) on that path (-skip_loop_filter all): 5-10% less frame-decoding CPU, but frames are no
longer exact, since the unfiltered reference frames drift until the next keyframe (benchmarks/extract.py: PSNR
41-48 dB against the exact frames on x264 test patterns; lower-bitrate video drifts more).
"""
from __future__ import annotations

import logging
import math
import re
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import ffmpeg
import numpy as np

logger = logging.getLogger(__name__)

EPS = 1e-6  # float timestamps (decord's are float32) must not add or drop a second at exact boundaries
# Two frames this close to equally near a centre are a tie (decord's float32 timestamps near 60 s are only good to
# ~4e-6 s; frames are >= 8 ms apart): the earlier one, on screen at the centre, is taken.
TIE_S = 1e-4
# skip=True: skip only when at least this many pixels (frames x height x width) are to be decoded. Skipping runs
# an ffmpeg process, whose start alone costs ~0.07 CPU-s (Debian's ffmpeg: dynamic linking), and saves 35-50% of
# full H.264 decoding (~1.2e-9 CPU-s per pixel); measured break-even 8.6e7 (45 s of 320x240 at 25 fps) - 9.8e7
# (17 s of 640x360). Below it decoding every frame in-process (decord) is cheaper.
SKIP_MIN_PIXELS = 9e7
# How a video's frames were decoded (Seconds.decode_path): every frame (decord or torchcodec), key / reference
# frames only (the skipping path), or every frame by the ffmpeg binary after decord failed on the file.
FULL, KEYFRAMES, REF_FRAMES, FFMPEG_FULL = "full", "keyframes", "ref_frames", "ffmpeg_full"


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

    duration: float   # the file's length (s), the same for each of its streams (file_length)
    available: int    # samples whose centre lies inside the file's length: cut when more than the slots
    n_real: int       # samples of this stream decoded: its own samples (centre inside the stream), at most slots
    slots: int
    # Frames only: how they were decoded (FULL, KEYFRAMES, REF_FRAMES or FFMPEG_FULL) and, per real second, the start time of
    # the frame used minus the second's centre (s; on the full path the frame on screen, so <= 0).
    decode_path: str = ""
    offsets: tuple[float, ...] = ()

    @property
    def max_offset(self) -> float:
        """Largest |offset| of a real second's frame from its centre (0 for audio)."""
        return max((abs(offset) for offset in self.offsets), default=0.0)

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
    """duration: the file's length (file_length); decoded: the stream's length, or the part of it that was
    decoded when it was cut at T1 (default: the whole duration)."""
    slots = int(round(T1 * fps))
    decoded = duration if decoded is None else decoded
    return Seconds(duration=float(duration), available=count_seconds(duration, fps),
                   n_real=min(count_seconds(decoded, fps), slots), slots=slots)


def centiseconds(seconds: float) -> float:
    """A duration to 0.01 s as ffmpeg's log prints it (av_dump_format: microseconds + 5000, truncated)."""
    return (round(seconds * 1e6) + 5000) // 10000 / 100


def file_length(container: float | None, stream: float) -> float:
    """The video's length, one truth for all its streams: the container's duration (ffprobe's format duration or
    the Duration ffmpeg logs, to 0.01 s, so the frame and audio paths read the same number), or this stream's
    own length when the container gives none or says less (metadata that understates a stream)."""
    if container is None:
        return float(stream)
    container = centiseconds(container)
    return container if stream <= container + 0.01 else float(stream)


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


def nearest_frames(starts: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the frame starting nearest each time; of two equally near (within TIE_S), the earlier, the one
    on screen at that time. starts may be in any order (decode order, variable frame rate)."""
    order = np.argsort(starts, kind="stable")
    ordered = np.asarray(starts, dtype=float)[order]
    after = np.clip(np.searchsorted(ordered, times, side="left"), 0, len(ordered) - 1)
    before = np.clip(after - 1, 0, len(ordered) - 1)
    take_before = np.abs(times - ordered[before]) <= np.abs(ordered[after] - times) + TIE_S
    return order[np.where(take_before, before, after)]


def scaled_size(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    """(height, width) with the short side shrunk to `short_side`, the long one as torchvision's resize computes it
    (int(short_side * long / short)); frames already that small or smaller keep their size (never upscaled here)."""
    short, long = min(height, width), max(height, width)
    if short_side is None or short <= short_side:
        return height, width
    long = int(short_side * long / short)
    return (short_side, long) if height <= width else (long, short_side)


def _scale_filter(short_side: int | None) -> str:
    """ffmpeg scale filter doing scaled_size() on the (rotated) input size; '' for full size."""
    if short_side is None:
        return ""
    s = int(short_side)
    width = f"if(lte(min(iw,ih),{s}),iw,if(lte(iw,ih),{s},trunc({s}*iw/ih)))"
    height = f"if(lte(min(iw,ih),{s}),ih,if(lte(ih,iw),{s},trunc({s}*ih/iw)))"
    return f"scale=w='{width}':h='{height}':flags=bicubic"


def decode_frames(path: str | Path, T1: int, fps: float = 1, pad: bool = True, threads: int = 1,
                  short_side: int | None = None, skip: bool = False, max_offset_s: float | None = None,
                  skip_min_pixels: float = SKIP_MIN_PIXELS, deblock: bool = True) -> Decoded:
    """uint8 RGB frames (n, H, W, 3): for k < min(real seconds, T1), the frame nearest t = (k + 0.5) / fps.

    pad=True repeats the last real frame up to T1 * fps frames; pad=False returns only the real ones.
    Defaults: every frame decoded, full size, the exact frame nearest each centre (module docstring).
    short_side (opt-in): decode to that short side (the encoder's input size, e.g. 224; 336 for
    ViT-L/14@336px), long side as the encoder's resize would make it; smaller videos keep their size.
    skip (opt-in): decode only keyframes or reference frames and take the one nearest each centre, within
    max_offset_s of every centre or the video is decoded in full; only for videos with at least skip_min_pixels
    to decode (smaller ones decode faster in full). deblock=False: no H.264 loop filter on that path (cheaper,
    not bit-exact). The returned Seconds says which path was taken and each second's offset.
    ffprobe runs first (~0.07 CPU-s): the file's length (Seconds.duration, the same in every store), and a
    clear MediaError for an unreadable file or one without a video stream; if decord then fails on the file,
    ffmpeg decodes the same frames (decode_path FFMPEG_FULL); decord not installed is an ImportError, not that.
    """
    if skip and max_offset_s is None:
        raise ValueError("decode_frames: skip=True needs max_offset_s (features.decode.max_offset_s)")
    info = probe(path)
    if info.video is None:
        raise MediaError(path, "no video stream")
    try:
        frames, seconds = _frames_decord(path, info, T1, fps, threads, short_side, skip, max_offset_s,
                                         skip_min_pixels, deblock)
    except ImportError:
        raise   # decord missing: every video would take the fallback; stop (decoders.check_available names it)
    except Exception as err:  # decord raises RuntimeError / DECORDError
        logger.warning("%s: decord failed (%s); decoding with ffmpeg instead", path, str(err).splitlines()[0])
        frames, seconds = _frames_ffmpeg(path, info, T1, fps, short_side)
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


def _frames_decord(path, info: MediaInfo, T1: int, fps: float, threads: int, short_side: int | None = None,
                   skip: bool = False, max_offset_s: float | None = None, skip_min_pixels: float = SKIP_MIN_PIXELS,
                   deblock: bool = True) -> tuple[np.ndarray, Seconds]:
    """decord's packet index (timestamps, keyframes: no decoding) decides; the frames come from the skipping
    decoder (skip) or from decord decoding every frame (the full path)."""
    import decord

    def open_reader(**size):
        return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=threads, **size)

    reader = open_reader()
    if len(reader) == 0:
        raise RuntimeError("no frames")
    stamps = np.asarray(reader.get_frame_timestamp(range(len(reader))), dtype=float)  # (n, 2) start, end (s)
    starts = stamps[:, 0] - stamps[:, 0].min()   # time 0: the stream's first frame
    key_indices = np.asarray(reader.get_key_indices(), dtype=int)
    stream_length = float(stamps[:, 1].max() - stamps[:, 0].min())
    seconds = make_seconds(file_length(info.duration, stream_length), T1, fps, decoded=stream_length)
    centres = centre_times(seconds.n_real, fps)
    # Decoding the first frame tells the size after the display rotation (decord has no cheaper way).
    full_size = reader[0].shape[:2] if skip or short_side is not None else None
    size = scaled_size(*full_size, short_side) if short_side is not None else full_size
    if size != full_size or skip:
        # Once it has decoded a frame, a live reader's decoder thread keeps decoding ahead (~0.8 CPU-s per s
        # for 640x360): close it before another decoder runs.
        del reader
        reader = None
    n_decoded = int(np.sum(starts <= centres[-1] + max_offset_s)) if skip else 0  # up to the last centre's bound
    if skip and n_decoded * full_size[0] * full_size[1] >= skip_min_pixels:
        skipped = _frames_skipping(path, starts, key_indices, centres, fps, threads, short_side, max_offset_s,
                                   deblock)
        if skipped is not None:
            frames, offsets, decode_path = skipped
            return frames, replace(seconds, decode_path=decode_path, offsets=_rounded(offsets))
    if reader is None:
        reader = open_reader(height=size[0], width=size[1]) if size != full_size else open_reader()
    index = nearest_frames(starts, centres)
    frames = reader.get_batch(index.tolist()).asnumpy()
    if frames.ndim != 4 or frames.shape[-1] != 3:  # decord returns 4 channels on some frame widths
        raise RuntimeError(f"decord returned frames of shape {frames.shape}")
    return frames, replace(seconds, decode_path=FULL, offsets=_rounded(starts[index] - centres))


def _rounded(offsets: np.ndarray) -> tuple[float, ...]:
    return tuple(round(float(offset), 4) for offset in offsets)


def _frames_skipping(path, starts: np.ndarray, key_indices: np.ndarray, centres: np.ndarray, fps: float,
                     threads: int, short_side: int | None, max_offset_s: float, deblock: bool = True):
    """(frames, offsets, decode path) from ffmpeg decoding only keyframes (when every centre has one within
    max_offset_s) or only reference frames; None when some centre's nearest decoded frame is farther than that,
    the stream does not start with a keyframe, or ffmpeg failed (the caller then decodes every frame)."""
    starts = starts - starts.min()
    keys = np.sort(starts[key_indices])
    # ffmpeg's times below start at its first decoded frame: the stream's first frame only if that is a keyframe.
    if len(keys) == 0 or keys[0] > EPS:
        return None
    nearest_keys = keys[nearest_frames(keys, centres)]
    if np.abs(nearest_keys - centres).max() <= max_offset_s + EPS:
        decode_path, skip_frame = KEYFRAMES, "nokey"
        select = "+".join(f"between(t,{t - 1e-3:.6f},{t + 1e-3:.6f})" for t in np.unique(nearest_keys))
    else:
        decode_path, skip_frame = REF_FRAMES, "noref"
        frame_interval = float(np.median(np.diff(starts))) if len(starts) > 1 else max_offset_s
        select = _skip_select(fps, lead_s=min(frame_interval, max_offset_s))
    chain = ",".join(filter(None, ["setpts=PTS-STARTPTS", f"select='{select}'", _scale_filter(short_side),
                                   "format=rgb24", "showinfo=checksum=0"]))
    until = float(centres[-1]) + max_offset_s + 1.0  # B-frame reordering past the last centre needs < 1 s
    # file: so no part of a name is read as a protocol; 0:V:0: the first video stream that is not a cover picture.
    command = ["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info", "-threads", str(threads),
               "-filter_threads", str(threads), "-skip_frame", skip_frame,
               *([] if deblock else ["-skip_loop_filter", "all"]), "-t", f"{until:.3f}",
               "-i", f"file:{path}", "-map", "0:V:0", "-an", "-vf", chain, "-vsync", "passthrough",
               "-f", "rawvideo", "pipe:"]
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True)
    if result.returncode != 0:
        problem = (result.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
        logger.warning("%s: decoding %s failed (%s); decoding every frame instead", path, decode_path, problem)
        return None
    times, frames = _showinfo_frames(result.stderr.decode(errors="replace"), result.stdout)
    if frames is None:
        logger.warning("%s: ffmpeg's %s output does not match its frame log; decoding every frame instead",
                       path, decode_path)
        return None
    index = nearest_frames(times, centres)
    offsets = times[index] - centres
    if np.abs(offsets).max() > max_offset_s + EPS:
        logger.info("%s: a decoded %s frame is %.3f s from its second's centre (> %.3f s); decoding every frame",
                    path, decode_path, float(np.abs(offsets).max()), max_offset_s)
        return None
    return frames[index], offsets, decode_path


def _skip_select(fps: float, lead_s: float) -> str:
    """ffmpeg select expression keeping, for each centre c_k = (k + 0.5) / fps, the first decoded frame starting at
    or after c_k - lead_s: one frame per second in one pass (a filter cannot look ahead, and every extra frame
    costs a scale and a copy). With lead_s one frame interval this is the frame nearest the centre when the
    reference frames are every other frame (x264's B-pyramid at 25 fps: 0.08 s apart, offsets in [-0.04, 0.04)),
    the frame on screen when every frame is one; its offset is checked against max_offset_s either way."""
    x = f"floor((t+{lead_s:.6f})*{fps}-0.5+{EPS})"  # the last centre (index) at or before t + lead_s
    previous = f"floor((prev_pts*TB+{lead_s:.6f})*{fps}-0.5+{EPS})"
    return f"if(isnan(prev_pts),gte({x},0),gt({x},{previous}))"


_SHOWINFO = re.compile(r"\bn:\s*\d+\s+pts:\s*(-?\d+)\s+pts_time:\S+.*?\ss:(\d+)x(\d+)")
_TIME_BASE = re.compile(r"Parsed_showinfo.*?config in time_base:\s*(\d+)/(\d+)")


def _showinfo_frames(log: str, raw: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    """Frame times (s) from showinfo's log and the rgb24 frames they describe; frames None if the bytes don't
    match the log (different sizes, missing frames)."""
    base = _TIME_BASE.search(log)
    entries = _SHOWINFO.findall(log)
    if base is None or not entries:
        return np.zeros(0), None
    sizes = {(int(h), int(w)) for _, w, h in entries}
    if len(sizes) != 1:
        return np.zeros(0), None
    (height, width), = sizes
    if len(raw) != len(entries) * height * width * 3:
        return np.zeros(0), None
    times = np.array([int(pts) for pts, _, _ in entries], dtype=float) * int(base.group(1)) / int(base.group(2))
    return times, np.frombuffer(raw, np.uint8).reshape(len(entries), height, width, 3)


def _frames_ffmpeg(path, info: MediaInfo, T1: int, fps: float, short_side: int | None = None
                   ) -> tuple[np.ndarray, Seconds]:
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
    stream_length = max(info.stream_duration(info.video) or 0.0, decoded_end)  # the listing stops at the window
    seconds = make_seconds(file_length(info.duration, stream_length), T1, fps, decoded=decoded_end)
    centres = centre_times(seconds.n_real, fps)
    index = nearest_frames(starts, centres)
    wanted = np.unique(index)
    select = "+".join(f"eq(n,{i})" for i in wanted)
    height, width = scaled_size(*_display_size(info.video), short_side)
    stream = ffmpeg.input(str(path), t=window)["v:0"].filter("select", select)
    if (height, width) != _display_size(info.video):
        stream = stream.filter("scale", width, height, flags="bicubic")
    try:
        raw, _ = (stream.output("pipe:", format="rawvideo", pix_fmt="rgb24", vsync="passthrough")
                  .run(capture_stdout=True, capture_stderr=True))
    except ffmpeg.Error as err:
        raise MediaError(path, f"cannot decode video frames ({_ffmpeg_problem(err)})") from err
    if len(raw) != len(wanted) * height * width * 3:
        raise MediaError(path, f"ffmpeg returned {len(raw)} bytes for {len(wanted)} frames of {width}x{height}")
    frames = np.frombuffer(raw, np.uint8).reshape(len(wanted), height, width, 3)
    offsets = starts[index] - centres
    return frames[np.searchsorted(wanted, index)], replace(seconds, decode_path=FFMPEG_FULL,
                                                           offsets=_rounded(offsets))


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
    One ffmpeg process per video: ffprobe runs only when ffmpeg fails, to name the problem (a start-up of
    either costs ~0.07 CPU-s, a third of a 60-s track's decoding). Seconds.duration is the file's length, the
    container's duration from ffmpeg's log (file_length: the number the frame path reads with ffprobe); the
    track's own real seconds (n_real) come from the samples decoded.
    """
    check_file(path)
    limit = {"t": T1} if T1 is not None else {}
    try:
        # No -v: ffmpeg's default log level prints the input's duration, read below.
        raw, log = (ffmpeg.input(f"file:{path}")["a:0"]
                    .output("pipe:", format="f32le", acodec="pcm_f32le", ac=1, ar=sample_rate, **limit)
                    .global_args("-nostdin", "-nostats")
                    .run(capture_stdout=True, capture_stderr=True))
    except ffmpeg.Error as err:
        info = probe(path)  # MediaError for an unreadable file
        if info.audio is None:
            raise MediaError(path, "no audio stream") from err
        raise MediaError(path, f"cannot decode the audio stream ({_ffmpeg_problem(err)})") from err
    return audio_decoded(path, np.frombuffer(raw, np.float32), _log_duration(log), sample_rate, T1, pad)


def audio_decoded(path, wave: np.ndarray, container: float | None, sample_rate: int, T1: int | None,
                  pad: bool) -> Decoded:
    """A decoded mono track (the whole track, or its first T1 seconds, + a few ms, when longer) as decode_audio
    returns it, whichever decoder produced it: cut to its real seconds (n_real from the samples, the file's length
    from the container's duration), padded to T1 with pad."""
    if wave.size == 0:
        raise MediaError(path, "audio stream decoded to no samples")
    decoded = len(wave) / sample_rate
    T1 = count_seconds(decoded) if T1 is None else T1
    seconds = make_seconds(file_length(container, decoded), T1, decoded=decoded)
    wave = wave[: seconds.n_real * sample_rate]
    if pad:
        wave = _pad_audio(wave, seconds, sample_rate)
    return Decoded(np.ascontiguousarray(wave, dtype=np.float32), seconds)


_DURATION = re.compile(r"^\s*Duration:\s*(\d+):(\d{2}):(\d{2}(?:\.\d+)?)", re.MULTILINE)


def _log_duration(log: bytes) -> float | None:
    """The first input's duration (s) from ffmpeg's log, None when it says N/A."""
    match = _DURATION.search(log.decode(errors="replace"))
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _pad_audio(wave: np.ndarray, seconds: Seconds, sample_rate: int) -> np.ndarray:
    """Exactly T1 seconds: the partial last second zero-filled, then that second repeated."""
    wave = np.pad(wave, (0, seconds.n_real * sample_rate - len(wave)))
    per_second = wave.reshape(seconds.n_real, sample_rate)
    return repeat_last(per_second, seconds.slots).reshape(-1)
