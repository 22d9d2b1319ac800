"""Decoding: the frame nearest the centre of each second (CFR, VFR, portrait, grayscale, decord and ffmpeg
paths), decoding less (opt-in: to the encoder's size, keyframes / reference frames only, the offset bound and its
fallback), 16 kHz mono audio, padding / cutting to T1, one length per file, and clear errors for broken files.
Real-world encodes of moving pictures: test_real_encodes.py."""
from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest
import torch

from avqa.features import encoders, media
from media_factory import corrupt_file, make_video, nearest_colour, truncated_copy

COLOURS = ["red", "red", "lime", "blue", "yellow"]   # one per second; changes at seconds 2, 3 and 4
SR = 16000


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    return {
        "cfr25": make_video(d / "cfr25.mp4", colours=COLOURS, fps=25),
        "cfr10": make_video(d / "cfr10.mp4", colours=COLOURS, fps=10),
        "vfr": make_video(d / "vfr.mp4", colours=COLOURS, fps=25, vfr=True, audio=False),
        "short": make_video(d / "short.mp4", colours=["red", "lime", "blue"], fps=10),
        "long": make_video(d / "long.mp4", seconds=300, fps=1, size=(32, 24), audio_rate=8000,
                           audio_bitrate="16k"),
        "portrait": make_video(d / "portrait.mp4", colours=COLOURS, size=(90, 160)),
        "portrait_48": make_video(d / "portrait_48.mp4", colours=COLOURS, size=(48, 64)),
        "gray": make_video(d / "gray.mp4", seconds=3, gray=True),
        "tone": make_video(d / "tone.mp4", seconds=5, tone_from=2, audio_rate=44100, channels=2),
        "stereo48": make_video(d / "stereo48.mp4", seconds=3, audio_rate=48000, channels=2),
        "audio_only": make_video(d / "audio_only.mp4", seconds=3, video=False),
        "video_only": make_video(d / "video_only.mp4", seconds=3, audio=False),
        "corrupt": corrupt_file(d / "corrupt.mp4"),
        "truncated": truncated_copy(d / "cfr10.mp4", d / "truncated.mp4"),
        "empty": _touch(d / "empty.mp4"),
        "missing": d / "missing.mp4",
    }


def _touch(path):
    path.touch()
    return path


def colours_of(frames: np.ndarray) -> list[str]:
    return [nearest_colour(frame.reshape(-1, 3).mean(0)) for frame in frames]


def second_rms(wave: np.ndarray) -> np.ndarray:
    return np.sqrt((wave.reshape(-1, SR) ** 2).mean(1))


# --- seconds bookkeeping -----------------------------------------------------------------------------------
@pytest.mark.parametrize("duration, expected", [(3.0, 3), (3.4, 3), (3.6, 4), (0.2, 1), (2.9999999, 3), (60.0, 60)])
def test_a_second_counts_when_its_centre_is_inside(duration, expected):
    assert media.count_seconds(duration) == expected


def test_nearest_frames_picks_the_frame_starting_nearest_each_time():
    starts = np.array([0.0, 0.2, 0.45, 1.2, 1.28, 2.6])   # gaps, like variable frame rate
    assert media.nearest_frames(starts, np.array([0.5, 1.5, 2.5, 3.5])).tolist() == [2, 4, 5, 5]


def test_nearest_frames_takes_the_earlier_of_two_equally_near_despite_float32_timestamps():
    """25 fps: frames at k + 0.48 and k + 0.52 are equally near the centre; decord's float32 timestamps near 60 s
    are off by up to ~4e-6 s, which must not flip the choice to the later frame."""
    starts = (np.arange(1500) / 25).astype(np.float32)
    index = media.nearest_frames(starts.astype(float), media.centre_times(60))
    assert index.tolist() == [25 * k + 12 for k in range(60)]   # the frame at k + 0.48, on screen at the centre


def test_file_length_is_the_containers_to_the_hundredth_as_ffmpeg_logs_it():
    assert media.centiseconds(15.014999) == 15.01 and media.centiseconds(15.015) == 15.02   # half up, like ffmpeg
    assert media.file_length(15.3, 15.015) == 15.3            # the container: the longer (audio) track
    assert media.file_length(10.01, 10.010000228) == 10.01    # a stream's float32 end within the rounding
    assert media.file_length(None, 9.7) == 9.7                # no container duration: the stream's own
    assert media.file_length(8.0, 9.5) == 9.5                 # metadata that understates a stream


def test_padded_and_cut_flags():
    short, long = media.make_seconds(3.0, T1=5), media.make_seconds(300.0, T1=5)
    assert (short.n_real, short.padded, short.cut) == (3, True, False)
    assert (long.n_real, long.padded, long.cut, long.available) == (5, False, True, 300)


# --- frames ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cfr25", "cfr10", "vfr", "portrait", "portrait_48"])
def test_frames_are_the_centre_of_each_second(videos, name):
    decoded = media.decode_frames(videos[name], T1=5)
    assert decoded.data.dtype == np.uint8 and decoded.data.shape[0] == 5 and decoded.data.shape[-1] == 3
    assert colours_of(decoded.data) == COLOURS
    assert decoded.seconds.n_real == 5 and not decoded.seconds.padded and not decoded.seconds.cut


def test_portrait_frames_keep_their_orientation(videos):
    assert media.decode_frames(videos["portrait"], T1=2).data.shape == (2, 160, 90, 3)
    assert media.decode_frames(videos["portrait_48"], T1=2).data.shape == (2, 64, 48, 3)


def test_short_video_repeats_its_last_second(videos):
    decoded = media.decode_frames(videos["short"], T1=6)
    assert colours_of(decoded.data) == ["red", "lime", "blue", "blue", "blue", "blue"]
    assert np.array_equal(decoded.data[3], decoded.data[2]) and np.array_equal(decoded.data[5], decoded.data[2])
    assert (decoded.seconds.n_real, decoded.seconds.padded, decoded.seconds.cut) == (3, True, False)
    real = media.decode_frames(videos["short"], T1=6, pad=False)
    assert len(real.data) == 3 and np.array_equal(real.data, decoded.data[:3])


def test_long_video_is_cut_at_T1(videos):
    decoded = media.decode_frames(videos["long"], T1=6)
    assert decoded.data.shape == (6, 24, 32, 3)
    assert (decoded.seconds.n_real, decoded.seconds.available, decoded.seconds.cut) == (6, 300, True)
    assert not decoded.seconds.padded
    assert len({frame.tobytes() for frame in decoded.data}) == 6  # testsrc changes every second


def test_grayscale_video_gives_three_equal_channels(videos):
    frames = media.decode_frames(videos["gray"], T1=3).data.astype(int)
    assert frames.shape == (3, 48, 64, 3)
    assert np.abs(frames[..., 0] - frames[..., 1]).max() <= 2 and np.abs(frames[..., 1] - frames[..., 2]).max() <= 2
    assert frames.std() > 20  # a picture, not a blank


@pytest.mark.parametrize("name", ["cfr25", "vfr", "short"])
def test_ffmpeg_fallback_decodes_the_same_frames_as_decord(videos, name):
    path = videos[name]
    via_decord, seconds = media._frames_decord(path, media.probe(path), T1=6, fps=1, threads=1)
    via_ffmpeg, seconds_ffmpeg = media._frames_ffmpeg(path, media.probe(path), T1=6, fps=1)
    assert np.array_equal(via_decord, via_ffmpeg)
    assert seconds.n_real == seconds_ffmpeg.n_real and seconds.cut == seconds_ffmpeg.cut


def test_decord_failure_falls_back_to_ffmpeg(videos, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("simulated decord failure")

    monkeypatch.setattr(media, "_frames_decord", broken)
    with caplog.at_level(logging.WARNING, logger="avqa.features.media"):
        decoded = media.decode_frames(videos["cfr25"], T1=5)
    assert colours_of(decoded.data) == COLOURS and decoded.seconds.decode_path == media.FFMPEG_FULL
    assert "decord failed (simulated decord failure)" in caplog.text


def test_decord_not_installed_is_an_error_not_a_fallback_for_every_video(videos, monkeypatch):
    """A missing decord would send every video down the per-file ffmpeg fallback: it raises instead, and the
    extraction job stops before its first video naming the setting (decoders.check_available)."""
    from types import SimpleNamespace

    from avqa.features import decoders

    monkeypatch.setitem(sys.modules, "decord", None)
    with pytest.raises(ImportError):
        media.decode_frames(videos["cfr25"], T1=5)
    with pytest.raises(decoders.DecoderUnavailable, match="decord cannot be imported.*backend: torchcodec"):
        decoders.check_available(SimpleNamespace(backend="decord", to_input_size=False, skip_frames=False))


def test_ffmpeg_fallback_handles_cut_videos(videos):
    frames, seconds = media._frames_ffmpeg(videos["long"], media.probe(videos["long"]), T1=4, fps=1)
    assert frames.shape == (4, 24, 32, 3) and seconds.cut and seconds.available == 300


# --- decoding less: to the encoder's size, only the frames the 1-fps sampling can get cheaply ---------------
MOVING = {"pattern": "testsrc2", "fps": 25, "audio": False}   # moving pictures: a wrong frame changes the pixels
MAX_OFFSET_S = 0.25   # the decoded frame's farthest distance from a centre on the skipping path (config.yaml's)
# the test clips are far too small for skipping to pay by default
SKIP = {"skip": True, "skip_min_pixels": 0, "max_offset_s": MAX_OFFSET_S}


@pytest.fixture(scope="module")
def x264(tmp_path_factory):
    d = tmp_path_factory.mktemp("x264")
    return {
        # x264's defaults: keyframes 10 s apart, B-frames in a pyramid (reference frames every 0.04-0.08 s)
        "bframes": make_video(d / "bframes.mp4", seconds=6, size=(320, 240), **MOVING),
        "dense_keys": make_video(d / "dense_keys.mp4", seconds=6, keyint=12, **MOVING),  # a keyframe every 0.48 s
        # 2 fps with B-frames: reference frames 1 s apart, so the nearest can be 0.5 s from a centre
        "sparse_refs": make_video(d / "sparse_refs.mp4", seconds=6, pattern="testsrc2", fps=2, audio=False),
        "long25": make_video(d / "long25.mp4", seconds=40, size=(32, 24), fps=25, audio=False),
    }


def full_frames_at(path, times: np.ndarray) -> np.ndarray:
    """Full-size frames that start at `times` (s), decoded by decord from every frame."""
    import decord

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
    starts = reader.get_frame_timestamp(range(len(reader)))[:, 0]
    index = [int(np.argmin(np.abs(starts - t))) for t in times]
    assert np.abs(starts[index] - times).max() < 1e-3, "a skipped-path frame starts where no frame starts"
    return reader.get_batch(index).asnumpy()


@pytest.mark.parametrize("height, width", [(240, 320), (360, 640), (160, 90), (337, 600), (48, 64), (224, 500)])
@pytest.mark.parametrize("short_side", [224, 32])
def test_scaled_size_is_the_encoders_resize_and_never_upscales(height, width, short_side):
    from torchvision.transforms.v2 import functional as TF

    size = media.scaled_size(height, width, short_side)
    if min(height, width) <= short_side:
        assert size == (height, width)
    else:
        assert size == tuple(TF.resize(torch.zeros(3, height, width, dtype=torch.uint8), [short_side]).shape[1:])
    assert media.scaled_size(height, width, None) == (height, width)


@pytest.mark.parametrize("skip", [{}, SKIP])
def test_frames_decode_straight_to_the_short_side(videos, skip):
    landscape = media.decode_frames(videos["cfr25"], T1=5, short_side=32, **skip)
    assert landscape.data.shape == (5, 32, 42, 3) and colours_of(landscape.data) == COLOURS
    portrait = media.decode_frames(videos["portrait"], T1=5, short_side=32, **skip)
    assert portrait.data.shape == (5, 56, 32, 3) and colours_of(portrait.data) == COLOURS
    small = media.decode_frames(videos["cfr25"], T1=5, short_side=224, **skip)   # never upscaled
    assert small.data.shape == (5, 48, 64, 3)
    assert landscape.seconds.decode_path == (media.REF_FRAMES if skip else media.FULL)


def test_ffmpeg_fallback_decodes_to_the_short_side(videos):
    path = videos["cfr25"]
    frames, seconds = media._frames_ffmpeg(path, media.probe(path), T1=5, fps=1, short_side=32)
    assert frames.shape == (5, 32, 42, 3) and colours_of(frames) == COLOURS
    assert seconds.decode_path == media.FFMPEG_FULL and seconds.max_offset < 0.1


def test_full_decoding_is_the_default_and_records_the_nearest_frame(videos):
    decoded = media.decode_frames(videos["cfr25"], T1=5)
    assert decoded.seconds.decode_path == media.FULL and len(decoded.seconds.offsets) == 5
    assert decoded.seconds.offsets == (-0.02,) * 5   # 0.48 and 0.52 equally near: the earlier, on screen
    audio = media.decode_audio(videos["cfr25"], SR, T1=5)
    assert audio.seconds.decode_path == "" and audio.seconds.max_offset == 0


def test_reference_frames_are_decoded_bit_exactly_near_each_centre(x264):
    """x264 clips with B-frames and keyframes 10 s apart: only reference frames are decoded; each second's frame
    is the full decode's frame at the same time, at most one frame interval from the centre."""
    path = x264["bframes"]
    decoded = media.decode_frames(path, T1=6, pad=False, **SKIP)
    assert decoded.seconds.decode_path == media.REF_FRAMES and decoded.seconds.n_real == 6
    assert decoded.seconds.max_offset <= 0.04 + 1e-3
    times = media.centre_times(6) + np.array(decoded.seconds.offsets)
    assert np.array_equal(decoded.data, full_frames_at(path, times))


def test_dense_keyframes_are_decoded_alone_and_bit_exactly(x264):
    path = x264["dense_keys"]
    decoded = media.decode_frames(path, T1=6, pad=False, **SKIP)
    assert decoded.seconds.decode_path == media.KEYFRAMES
    assert 0.2 < decoded.seconds.max_offset <= MAX_OFFSET_S  # keyframes 0.48 s apart drift from 1-s centres
    times = media.centre_times(6) + np.array(decoded.seconds.offsets)
    assert np.array_equal(decoded.data, full_frames_at(path, times))


def test_skipping_only_pays_from_skip_min_pixels_on(x264, videos):
    """bframes: 144 frames of 320x240 up to the last centre's bound (5.75 s) = 1.106e7 pixels to decode."""
    path = x264["bframes"]
    skip = {"skip": True, "max_offset_s": MAX_OFFSET_S}
    assert media.decode_frames(path, T1=6, skip_min_pixels=1.09e7, **skip).seconds.decode_path == media.REF_FRAMES
    assert media.decode_frames(path, T1=6, skip_min_pixels=1.12e7, **skip).seconds.decode_path == media.FULL
    assert media.decode_frames(videos["cfr25"], T1=5, **skip).seconds.decode_path == media.FULL   # default
    with pytest.raises(ValueError, match="skip=True needs max_offset_s"):
        media.decode_frames(path, T1=6, skip=True)


def test_skipping_that_would_drift_past_the_bound_decodes_every_frame(x264):
    sparse = media.decode_frames(x264["sparse_refs"], T1=6, pad=False, **SKIP)
    full = media.decode_frames(x264["sparse_refs"], T1=6, pad=False)
    assert sparse.seconds.decode_path == media.FULL and np.array_equal(sparse.data, full.data)
    assert sparse.seconds.offsets == full.seconds.offsets
    strict = media.decode_frames(x264["bframes"], T1=6, pad=False, **{**SKIP, "max_offset_s": 0.01})
    assert strict.seconds.decode_path == media.FULL
    assert np.array_equal(strict.data, media.decode_frames(x264["bframes"], T1=6, pad=False).data)


@pytest.mark.parametrize("failure, message", [("exit", "simulated ffmpeg failure"),
                                              ("short_output", "output does not match its frame log")])
def test_a_failing_skipping_decoder_falls_back_to_every_frame(x264, monkeypatch, caplog, failure, message):
    run = media.subprocess.run

    def failing(command, **kwargs):
        if failure == "exit":
            return media.subprocess.CompletedProcess(command, 1, b"", b"simulated ffmpeg failure")
        result = run(command, **kwargs)
        return media.subprocess.CompletedProcess(command, 0, result.stdout[:-1], result.stderr)

    monkeypatch.setattr(media.subprocess, "run", failing)
    with caplog.at_level(logging.WARNING, logger="avqa.features.media"):
        decoded = media.decode_frames(x264["bframes"], T1=3, **SKIP)
    assert decoded.seconds.decode_path == media.FULL and message in caplog.text
    assert np.array_equal(decoded.data, media.decode_frames(x264["bframes"], T1=3).data)


def test_nearest_frames_prefers_the_earlier_frame_on_a_tie():
    starts = np.array([0.0, 0.25, 0.75, 2.0, 1.0])   # unsorted, like decode order
    assert media.nearest_frames(starts, np.array([0.5, 0.8, -1.0, 1.4, 5.0])).tolist() == [1, 2, 0, 4, 3]


@pytest.mark.parametrize("name", ["cfr25", "cfr10", "vfr", "portrait"])
def test_skipping_keeps_each_seconds_picture_within_the_bound(videos, name):
    decoded = media.decode_frames(videos[name], T1=5, **SKIP)
    assert colours_of(decoded.data) == COLOURS
    assert decoded.seconds.decode_path != media.FULL and decoded.seconds.max_offset <= MAX_OFFSET_S


def test_skipping_pads_short_and_cuts_long_videos(videos, x264):
    short = media.decode_frames(videos["short"], T1=6, **SKIP)
    assert colours_of(short.data) == ["red", "lime", "blue", "blue", "blue", "blue"]
    assert (short.seconds.n_real, short.seconds.padded, len(short.seconds.offsets)) == (3, True, 3)
    long = media.decode_frames(x264["long25"], T1=6, **SKIP)
    assert long.data.shape == (6, 24, 32, 3) and long.seconds.decode_path == media.REF_FRAMES
    assert (long.seconds.n_real, long.seconds.available, long.seconds.cut) == (6, 40, True)
    assert len({frame.tobytes() for frame in long.data}) == 6  # testsrc changes every second
    one_fps = media.decode_frames(videos["long"], T1=6, **SKIP)   # reference frames 2 s apart: full decoding
    assert one_fps.seconds.decode_path == media.FULL and one_fps.seconds.cut


def test_skipping_the_loop_filter_is_close_but_not_exact(x264, monkeypatch):
    """deblock=False: the same frames (times, path, size), no longer bit-exact (the reference frames drift without
    deblocking) but close: PSNR >= 35 dB against the exact path; the full path ignores the option."""
    path = x264["bframes"]
    commands = []
    run = media.subprocess.run
    monkeypatch.setattr(media.subprocess, "run", lambda command, **kw: commands.append(command) or run(command, **kw))
    exact = media.decode_frames(path, T1=6, pad=False, short_side=224, **SKIP)
    rough = media.decode_frames(path, T1=6, pad=False, short_side=224, **SKIP, deblock=False)
    assert "-skip_loop_filter" not in commands[0] and commands[1][commands[1].index("-skip_loop_filter") + 1] == "all"
    assert rough.seconds == exact.seconds and rough.data.shape == exact.data.shape
    assert not np.array_equal(rough.data, exact.data)
    mse = ((rough.data.astype(float) - exact.data.astype(float)) ** 2).reshape(6, -1).mean(axis=1)
    assert np.all(10 * np.log10(255 ** 2 / mse.clip(1e-10)) >= 35)
    full = media.decode_frames(path, T1=6, pad=False, deblock=False)
    assert full.seconds.decode_path == media.FULL and len(commands) == 2
    assert np.array_equal(full.data, media.decode_frames(path, T1=6, pad=False).data)


# --- audio -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tone", "stereo48", "cfr25"])
def test_audio_is_16k_mono_float32_padded_to_T1(videos, name):
    decoded = media.decode_audio(videos[name], SR, T1=6)
    assert decoded.data.dtype == np.float32 and decoded.data.shape == (6 * SR,)
    assert decoded.seconds.padded and decoded.seconds.n_real == (5 if name != "stereo48" else 3)


def test_audio_of_44k_and_48k_stereo_keeps_its_level(videos):
    assert np.allclose(second_rms(media.decode_audio(videos["stereo48"], SR, T1=3).data), 0.125 / np.sqrt(2),
                       atol=0.01)  # lavfi's sine: amplitude 1/8
    rms = second_rms(media.decode_audio(videos["tone"], SR, T1=5).data)
    assert rms[:2].max() < 0.01 and np.allclose(rms[2:], 0.5 / np.sqrt(2), atol=0.02)


def test_tone_onset_at_second_2_changes_the_vggish_inputs_at_second_2(videos):
    decoded = media.decode_audio(videos["tone"], SR, T1=5, pad=False)
    examples = encoders.vggish_examples(decoded.data, decoded.seconds.n_real)
    steps = [float(np.abs(examples[k + 1] - examples[k]).mean()) for k in range(4)]
    assert steps[1] > 20 * max(steps[0], 1e-3) and steps[1] > 20 * max(steps[2], steps[3])


def test_short_audio_repeats_its_last_second(videos):
    wave = media.decode_audio(videos["stereo48"], SR, T1=5).data.reshape(5, SR)
    assert np.array_equal(wave[3], wave[2]) and np.array_equal(wave[4], wave[2])


def test_long_audio_is_cut_at_T1(videos):
    decoded = media.decode_audio(videos["long"], SR, T1=6)
    assert decoded.data.shape == (6 * SR,) and decoded.seconds.cut and not decoded.seconds.padded
    assert decoded.seconds.available == 300 and decoded.seconds.duration == pytest.approx(300, abs=0.1)


def test_audio_runs_one_ffmpeg_and_no_ffprobe(videos, monkeypatch):
    def no_probe(path):
        raise AssertionError("ffprobe ran for a readable file")

    monkeypatch.setattr(media, "probe", no_probe)
    decoded = media.decode_audio(videos["tone"], SR, T1=3)
    assert decoded.data.shape == (3 * SR,) and decoded.seconds.cut and decoded.seconds.available == 5


def test_a_track_shorter_than_its_video_counts_its_own_seconds(tmp_path):
    """8 s of video, 3 s of audio: the track's 3 real seconds (decoded length), padded to T1; the file's length
    (8 s, so cut at T1 = 6) is the container's, as the frame path records it."""
    path = tmp_path / "short_track.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=s=64x48:r=10:d=8", "-f", "lavfi",
                    "-i", "sine=frequency=440:sample_rate=16000:duration=3", "-c:v", "libx264", "-c:a", "aac",
                    str(path)], check=True)
    decoded = media.decode_audio(path, SR, T1=6)
    assert (decoded.seconds.n_real, decoded.seconds.available) == (3, 8)
    assert decoded.seconds.padded and decoded.seconds.cut and decoded.seconds.duration == pytest.approx(8, abs=0.03)
    frames = media.decode_frames(path, T1=6).seconds
    assert (frames.duration, frames.cut, frames.n_real) == (decoded.seconds.duration, True, 6)


# --- broken inputs -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, problem", [
    ("missing", "missing file"),
    ("empty", "zero-byte file"),
    ("corrupt", "unreadable or corrupt file"),
    ("truncated", "unreadable or corrupt file"),
])
@pytest.mark.parametrize("decode", [media.decode_frames, media.decode_audio])
def test_broken_files_raise_media_error_naming_file_and_problem(videos, name, problem, decode):
    with pytest.raises(media.MediaError, match=problem) as err:
        decode(videos[name], T1=3) if decode is media.decode_frames else decode(videos[name], SR, 3)
    assert str(videos[name]) in str(err.value) and err.value.problem.startswith(problem)


def test_missing_streams_raise_media_error(videos):
    with pytest.raises(media.MediaError, match="no video stream"):
        media.decode_frames(videos["audio_only"], T1=3)
    with pytest.raises(media.MediaError, match="no audio stream"):
        media.decode_audio(videos["video_only"], SR, T1=3)
    assert media.decode_audio(videos["audio_only"], SR, T1=3).data.shape == (3 * SR,)
    assert media.decode_frames(videos["video_only"], T1=3).data.shape == (3, 48, 64, 3)
