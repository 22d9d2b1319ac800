"""Decoding with torchcodec (PyTorch's own video decoder, maintained; decord's last release is from 2021), the
default: frames on the CPU or on an NVIDIA GPU's hardware decoder (`features.decode.backend: torchcodec`), and the
audio track in-process (`features.audio_backend: torchcodec`; decode_audio / torchcodec_audio, end of module).

The contract is media.decode_frames' default (decord decoding every frame at full size, docs/decoding.md): for
k < min(real seconds, T1) the uint8 RGB frame (H, W, 3) that starts nearest t = (k + 0.5) / fps (of two equally
near, the earlier), time 0 being the stream's first frame; the last real frame repeated up to T1 * fps frames
(pad); Seconds with the file's length, the path taken and each second's offset from its centre. Frame indices
come from media.nearest_frames over the stream's frame start times and are decoded by index (get_frames_at):
torchcodec's get_frames_played_at(t) gives the frame on screen at t, one frame earlier at 29.97 fps.

seek_mode picks where the start times come from:
- "exact": a scan of the stream's packets (torchcodec's Demuxer: no decoding; the decoder scans once more to map
  indices to frames). The frames are decord's, bit for bit (tests/test_decoders.py).
- "approximate": no scan; the header alone: frame i starts at i / its average frame rate (torchcodec's own
  approximate index). Right on constant-frame-rate streams. The frames returned carry their timestamps, so the
  offsets are checked: when one lies more than half a frame interval from its centre (a variable-rate stream,
  whose frames the header's rate misplaces, by up to a second on the test clip), the video is decoded again
  with "exact" (logged), so both modes return the nearest frames.
Seconds.decode_path is media.FULL for both: every frame up to the last centre is decoded, as on decord's path.

device "cuda" decodes on the GPU (NVDEC; a CUDA build of torchcodec and a CUDA device are needed) and returns the
frames as a uint8 CUDA tensor of the same shape, so they need not cross to the host; a missing GPU or build, or a
video the GPU cannot decode (torchcodec would fall back to its CPU decoder), is an error, never a silent CPU run.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from avqa.features import media

logger = logging.getLogger(__name__)

BACKENDS = ("decord", "torchcodec")
AUDIO_BACKENDS = ("ffmpeg", "torchcodec")
SEEK_MODES = ("exact", "approximate")
DEVICES = ("cpu", "cuda")
INSTALL = "pip install torchcodec==0.17.0"
_FULL_SIZE_ONLY = ("features.decode.backend 'torchcodec' decodes every frame at full size: set "
                   "features.decode.to_input_size and skip_frames to false (decord-path options)")


class DecoderUnavailable(RuntimeError):
    """The decoder asked for cannot run here (torchcodec missing, no CUDA device, torchcodec built without CUDA)."""


def _torchcodec(setting: str = "features.decode.backend"):
    """torchcodec.decoders, or DecoderUnavailable naming the setting that asked for it and how to install it."""
    other = "ffmpeg" if setting == "features.audio_backend" else "decord"
    try:
        from torchcodec import decoders
    except (ImportError, OSError, RuntimeError) as err:  # not installed, or its FFmpeg libraries do not load
        raise DecoderUnavailable(
            f"{setting} is 'torchcodec', but torchcodec cannot be imported ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no message'}): {INSTALL} (it loads FFmpeg's shared "
            f"libraries, libavcodec etc., from the system), or set {setting}: {other}") from err
    if not hasattr(decoders, "Demuxer"):  # torchcodec < 0.17 (e.g. 0.11, the build for torch 2.11)
        raise DecoderUnavailable(
            f"{setting} is 'torchcodec', but this torchcodec ({_version()}) has no Demuxer (the packet scan "
            f"that finds each second's frame and the container's length): {INSTALL} (built for torch 2.14), "
            f"or set {setting}: {other}")
    return decoders


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("torchcodec")
    except PackageNotFoundError:
        return "version unknown"


def _check_device(device: str) -> None:
    if device not in DEVICES:
        raise ValueError(f"device {device!r}: expected one of {DEVICES}")
    if device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise DecoderUnavailable(
                "torchcodec GPU decoding (device 'cuda') asked for, but torch sees no CUDA device "
                f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}); decode on the CPU "
                "(device 'cpu') instead")


def check_audio_available(backend: str) -> None:
    """Before a shard's first video: the audio decoder can run here (else stop the job, not fail every video)."""
    if backend not in AUDIO_BACKENDS:
        raise ValueError(f"features.audio_backend {backend!r}: expected one of {AUDIO_BACKENDS}")
    if backend == "torchcodec":
        _torchcodec("features.audio_backend")
    elif shutil.which("ffmpeg") is None:
        raise DecoderUnavailable("features.audio_backend is 'ffmpeg', but no ffmpeg binary is on PATH: install "
                                 "ffmpeg (apt-get install -y ffmpeg) or set features.audio_backend: torchcodec")


def check_available(decode) -> None:
    """Before a shard's first video: ValueError for settings the backend cannot honour, DecoderUnavailable when
    it cannot run here (torchcodec missing, no GPU), so the job stops instead of failing every video."""
    if decode.backend not in BACKENDS:
        raise ValueError(f"features.decode.backend {decode.backend!r}: expected one of {BACKENDS}")
    if decode.backend == "decord":
        try:
            import decord  # noqa: F401
        except ImportError as err:
            raise DecoderUnavailable(
                f"features.decode.backend is 'decord', but decord cannot be imported ({_first_line(err)}): pip "
                "install decord==0.6.0 (Linux x86_64 wheels only), or set features.decode.backend: torchcodec "
                "(the default)") from err
    if decode.backend == "torchcodec":
        if decode.to_input_size or decode.skip_frames:
            raise ValueError(_FULL_SIZE_ONLY)
        if decode.seek_mode not in SEEK_MODES:
            raise ValueError(f"features.decode.seek_mode {decode.seek_mode!r}: expected one of {SEEK_MODES}")
        _check_device(decode.device)
        _torchcodec()


def decode_frames(path: str | Path, T1: int, decode, fps: float = 1, pad: bool = True, threads: int = 1,
                  short_side: int | None = None) -> media.Decoded:
    """Frames as features.decode says (decode: its DecodeSpec, or anything with the same attributes): backend
    "decord" is media.decode_frames (short_side from to_input_size, skip_frames, max_offset_s, deblock);
    "torchcodec" is torchcodec_frames (seek_mode, device), which decodes every frame at full size, so
    to_input_size and skip_frames, decord-path options, must be off. The store records the settings
    (frame_decoding) and, per video, the path taken and the offsets (Seconds)."""
    if decode.backend == "decord":
        return media.decode_frames(path, T1, fps, pad=pad, threads=threads, short_side=short_side,
                                   skip=decode.skip_frames, max_offset_s=decode.max_offset_s, deblock=decode.deblock)
    if decode.backend == "torchcodec":
        if short_side is not None or decode.skip_frames:
            raise ValueError(_FULL_SIZE_ONLY)
        return torchcodec_frames(path, T1, fps, pad=pad, threads=threads, seek_mode=decode.seek_mode,
                                 device=decode.device)
    raise ValueError(f"features.decode.backend {decode.backend!r}: expected one of {BACKENDS}")


def torchcodec_frames(path: str | Path, T1: int, fps: float = 1, pad: bool = True, threads: int = 1,
                      seek_mode: str = "exact", device: str = "cpu") -> media.Decoded:
    """Decoded frames (n, H, W, 3) uint8 RGB and their Seconds, as media.decode_frames' default returns them
    (module docstring); a numpy array on the CPU, a CUDA tensor with device "cuda". threads: FFmpeg's decoding
    threads (CPU only). MediaError for a missing, empty, unreadable file or one without a video stream."""
    if seek_mode not in SEEK_MODES:
        raise ValueError(f"seek_mode {seek_mode!r}: expected one of {SEEK_MODES}")
    _check_device(device)
    library = _torchcodec()
    path = media.check_file(path)
    container, stream = _open_stream(library, path)
    run = dict(library=library, path=path, container=container, stream=stream, T1=T1, fps=fps, pad=pad,
               threads=threads, device=device)
    if seek_mode == "approximate":
        decoded = _decode(**run, seek_mode="approximate")
        # On a constant-rate stream every second's frame starts within half a frame interval of its centre.
        bound = 0.5 / stream.metadata.average_fps_from_header + 1e-3
        if decoded.seconds.max_offset <= bound:
            return decoded
        logger.info("%s: with the header's frame rate a frame lies %.3f s from its second's centre (> %.3f s: "
                    "variable frame rate?); decoding again with seek_mode 'exact'", path,
                    decoded.seconds.max_offset, bound)
    return _decode(**run, seek_mode="exact")


def _decode(library, path: Path, container, stream, T1: int, fps: float, pad: bool, threads: int, device: str,
            seek_mode: str) -> media.Decoded:
    starts, first, stream_length = (_scanned_starts(stream, path) if seek_mode == "exact"
                                    else _header_starts(stream, path))
    seconds = media.make_seconds(media.file_length(container.duration_seconds_from_header, stream_length),
                                 T1, fps, decoded=stream_length)
    centres = media.centre_times(seconds.n_real, fps)
    index = media.nearest_frames(starts, first + centres)
    wanted, position = np.unique(index, return_inverse=True)
    decoder = _video_decoder(library, path, stream.index, seek_mode, device, threads)
    try:
        batch = decoder.get_frames_at(wanted.tolist())
    except (RuntimeError, IndexError) as err:
        raise media.MediaError(path, f"torchcodec cannot decode the video frames ({_first_line(err)})") from err
    if device == "cuda" and decoder.cpu_fallback:
        raise DecoderUnavailable(f"{path}: torchcodec decoded on the CPU instead of the GPU ({decoder.cpu_fallback})")
    returned = batch.pts_seconds.double().cpu().numpy()
    if seek_mode == "exact" and np.abs(returned - starts[wanted]).max(initial=0) > media.EPS:
        raise media.MediaError(path, "torchcodec returned frames other than the scanned ones "
                                     f"(timestamps {returned[:3]} for {starts[wanted][:3]})")
    # the offsets of the frames returned (approximate mode: not necessarily the ones asked for)
    offsets = tuple(round(float(offset), 4) for offset in returned[position] - first - centres)
    # second k's frame, the last real one repeated up to T1 * fps (pad)
    take = position[np.minimum(np.arange(seconds.slots if pad else seconds.n_real), seconds.n_real - 1)]
    if device == "cuda":
        import torch
        frames = batch.data[torch.from_numpy(take).to(batch.data.device)]
    else:
        frames = _as_rgb(batch.data.numpy(), path)[take]
    return media.Decoded(frames, replace(seconds, decode_path=media.FULL, offsets=offsets))


def decode_audio(path: str | Path, T1: int | None, backend: str, sample_rate: int = 16000,
                 pad: bool = True) -> media.Decoded:
    """The first T1 seconds of the audio track, float32 mono at sample_rate, as features.audio_backend says:
    "ffmpeg" runs the ffmpeg binary (media.decode_audio), "torchcodec" decodes in-process (torchcodec_audio). Both
    resample with FFmpeg's libswresample at its defaults: the same samples bit for bit (tests/test_decoders.py)."""
    if backend == "ffmpeg":
        return media.decode_audio(path, sample_rate, T1, pad=pad)
    if backend == "torchcodec":
        return torchcodec_audio(path, sample_rate, T1, pad=pad)
    raise ValueError(f"features.audio_backend {backend!r}: expected one of {AUDIO_BACKENDS}")


def torchcodec_audio(path: str | Path, sample_rate: int = 16000, T1: int | None = None,
                     pad: bool = True) -> media.Decoded:
    """media.decode_audio's contract without an ffmpeg binary (one process start-up, ~0.07 CPU-s, saved per video;
    a machine without ffmpeg, e.g. the lent GPU box, can extract): torchcodec's AudioDecoder downmixes and
    resamples; the track's first T1 seconds from its first sample; the file's length from the container header."""
    library = _torchcodec("features.audio_backend")
    path = media.check_file(path)
    container, stream = _open_stream(library, path, "audio")
    begin = float(stream.metadata.begin_stream_seconds_from_header or 0.0)
    try:
        decoder = library.AudioDecoder(str(path), stream_index=stream.index, sample_rate=sample_rate,
                                       num_channels=1)
        samples = decoder.get_samples_played_in_range(begin, None if T1 is None else begin + T1)
    except (RuntimeError, ValueError) as err:
        raise media.MediaError(path, f"cannot decode the audio stream ({_first_line(err)})") from err
    return media.audio_decoded(path, samples.data.numpy()[0], container.duration_seconds_from_header,
                               sample_rate, T1, pad)


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _open_stream(library, path: Path, kind: str = "video"):
    """(container metadata, the best `kind` stream) from the file's header; MediaError when it has none."""
    try:
        demuxer = library.Demuxer(str(path), streams=kind)
    except ValueError as err:  # no such stream
        raise media.MediaError(path, f"no {kind} stream") from err
    except RuntimeError as err:
        raise media.MediaError(path, f"unreadable or corrupt file ({_first_line(err)})") from err
    return demuxer.metadata, demuxer.streams[0]


def _scanned_starts(stream, path: Path) -> tuple[np.ndarray, float, float]:
    """(frame start times in presentation order, the first one, the stream's length) from a scan of its packets."""
    try:
        scan = stream.scan()
    except RuntimeError as err:
        raise media.MediaError(path, f"unreadable video stream ({_first_line(err)})") from err
    if len(scan) == 0:
        raise media.MediaError(path, "video stream has no frames")
    starts = scan.pts_seconds.numpy()
    first = float(starts.min())
    return starts, first, scan.end_stream_seconds_from_content - first


def _header_starts(stream, path: Path) -> tuple[np.ndarray, float, float]:
    """The same from the header alone, as torchcodec's approximate mode indexes frames: frame i starts at
    i / the average frame rate (absolute time: approximate mode counts from 0, not from the stream's start)."""
    header = stream.metadata
    rate, length = header.average_fps_from_header, header.duration_seconds_from_header
    if not rate or not length:
        raise media.MediaError(path, "the video header gives no frame rate or duration (seek_mode 'approximate' "
                                     "needs both; use 'exact')")
    first = float(header.begin_stream_seconds_from_header or 0.0)
    # torchcodec refuses indices past the header's frame count, which on a variable-rate stream ends before
    # length * rate frames: its last frames are out of reach (the offsets then show how far)
    n_frames = header.num_frames_from_header or max(1, int(round((first + length) * rate)))
    return np.arange(n_frames) / rate, first, float(length)


def _video_decoder(library, path: Path, stream_index: int, seek_mode: str, device: str, threads: int):
    try:
        return library.VideoDecoder(str(path), stream_index=stream_index, dimension_order="NHWC",
                                     seek_mode=seek_mode, device=device, num_ffmpeg_threads=threads)
    # NotImplementedError is torch's own for an operator without a kernel on that device (a CPU-only build
    # asked for CUDA); RuntimeError / ValueError are torchcodec's for a stream it cannot open
    except (RuntimeError, ValueError, NotImplementedError) as err:
        if device == "cuda":
            raise DecoderUnavailable(
                f"{path}: torchcodec cannot decode on the GPU ({_first_line(err)}); it needs a CUDA build of "
                "torchcodec for torch's CUDA version (the PyPI wheel 0.17.0 is built for CUDA 13), a CUDA device "
                "and an NVIDIA driver with NVDEC") from err
        raise media.MediaError(path, f"unreadable video stream ({_first_line(err)})") from err


def _as_rgb(frames: np.ndarray, path) -> np.ndarray:
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise media.MediaError(path, f"torchcodec returned frames of unexpected shape {frames.shape}")
    return np.ascontiguousarray(frames, dtype=np.uint8)
