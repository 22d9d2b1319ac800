"""The torchcodec frame decoder (avqa/features/decoders.py, issue 21 item 1): on real-world encodes (x264 High with
B-frames, 25 / 29.97 / 30 fps, 320x240 .. 1280x720, keyframes close and far apart, variable frame rate) it returns
what decord's full decode returns, bit for bit, in both seek modes: the same frames (the one starting nearest
each second's centre, checked against ffmpeg's own frames too), padding, cut, length and offsets; torchcodec's
get_frames_played_at would be one frame early at 29.97 fps; broken files, a missing GPU and a missing torchcodec
are clear errors; benchmarks/decoders.py runs at a tiny size."""
from __future__ import annotations

import json
import os
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from avqa.features import decoders, media
from benchmark_scripts import load_benchmark
from media_factory import corrupt_file, frames_near, make_real_encode, make_video, run_ffmpeg, truncated_copy

pytestmark = pytest.mark.usefixtures("one_thread")

T1 = 5
# name: (moving source, (width, height), fps, seconds, keyframe interval in frames); short clips, fast to make
ENCODES = {
    "pan_320x240_25fps_padded": ("pan", (320, 240), "25", 3.6, 250),
    "noise_640x360_29.97fps_cut": ("noise", (640, 360), "30000/1001", 6, 250),
    "life_480x360_30fps_keyframes_every_second": ("life", (480, 360), "30", 5, 30),
    "pan_1280x720_29.97fps": ("pan", (1280, 720), "30000/1001", 3, 250),
}
SEEK_MODES = decoders.SEEK_MODES


@pytest.fixture(scope="module")
def torchcodec():
    """torchcodec is the `torchcodec` extra: scripts/setup.sh installs it where constraints/ pin it (Python 3.11),
    so under CI (.ci/run sets CI) a missing one is a failure; elsewhere (3.12 without a matching build) a skip."""
    if os.environ.get("CI"):
        import torchcodec
        return torchcodec
    return pytest.importorskip("torchcodec", reason="the torchcodec extra is not installed (docs/install.md)")


@pytest.fixture(scope="module")
def encodes(tmp_path_factory):
    d = tmp_path_factory.mktemp("decoders")
    clips = {name: make_real_encode(d / f"{name}.mp4", kind, size, fps, seconds, keyint=keyint)
             for name, (kind, size, fps, seconds, keyint) in ENCODES.items()}
    clips["vfr_25fps"] = make_video(d / "vfr.mp4", seconds=5, fps=25, pattern="testsrc2", vfr=True, audio=False)
    plain = make_video(d / "plain.mp4", seconds=3, size=(96, 64), fps=25, pattern="testsrc2", audio=False)
    run_ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(d / "rotated.mp4"))
    clips["rotated_90"] = d / "rotated.mp4"   # a phone video: stored 96x64, displayed 64x96
    return clips


@pytest.mark.parametrize("seek_mode", SEEK_MODES)
@pytest.mark.parametrize("name", ENCODES)
def test_frames_are_decords_full_decode_bit_for_bit(torchcodec, encodes, name, seek_mode):
    """Same frames (uint8 RGB, full size), padding, length, cut flag, path and offsets as decord's default path."""
    reference = media.decode_frames(encodes[name], T1)
    decoded = decoders.torchcodec_frames(encodes[name], T1, seek_mode=seek_mode)
    assert isinstance(decoded.data, np.ndarray) and decoded.data.dtype == np.uint8
    assert decoded.data.shape == reference.data.shape == (T1, *ENCODES[name][1][::-1], 3)
    assert np.array_equal(decoded.data, reference.data)
    assert decoded.seconds == reference.seconds and decoded.seconds.decode_path == media.FULL


def test_the_clips_pad_cut_and_move(torchcodec, encodes):
    """The cases above are the ones meant: a padded and a cut clip, and every second a different picture."""
    padded = decoders.torchcodec_frames(encodes["pan_320x240_25fps_padded"], T1).seconds
    cut = decoders.torchcodec_frames(encodes["noise_640x360_29.97fps_cut"], T1)
    assert (padded.n_real, padded.padded, padded.cut) == (4, True, False)
    assert (cut.seconds.n_real, cut.seconds.padded, cut.seconds.cut) == (T1, False, True)
    assert len({frame.tobytes() for frame in cut.data}) == T1


def test_frames_are_ffmpegs_frame_nearest_each_centre(torchcodec, encodes):
    """An oracle independent of both decoders: ffmpeg's frames and timestamps around each centre (at 29.97 fps
    the nearest start is 0.5005 s, one frame after the one on screen at 0.5 s)."""
    path = encodes["noise_640x360_29.97fps_cut"]
    decoded = decoders.torchcodec_frames(path, T1, pad=False)
    centres = media.centre_times(T1)
    starts, frames = frames_near(path, centres)
    index = [nearest_start(starts, c) for c in centres]
    assert all(np.array_equal(decoded.data[k], frames[i]) for k, i in enumerate(index))
    assert np.allclose(decoded.seconds.offsets, starts[index] - centres, atol=1e-4)
    assert all(not np.array_equal(frames[i], frames[i + 1]) for i in index)   # a frame one off would fail


def nearest_start(starts: np.ndarray, centre: float) -> int:
    """The oracle's rule written out plainly: the frame starting nearest the centre; of two equally near (to
    ffmpeg's printed 1e-6 s), the earlier."""
    distance = np.round(np.abs(starts - centre), 4)
    candidates = np.flatnonzero(distance == distance.min())
    return int(candidates[np.argmin(starts[candidates])])


def test_played_at_would_be_one_frame_early_at_29_97_fps(torchcodec, encodes):
    """Why frames are decoded by index: the frame on screen at each centre (get_frames_played_at) is not the
    frame starting nearest it at 29.97 fps."""
    path = encodes["noise_640x360_29.97fps_cut"]
    decoded = decoders.torchcodec_frames(path, T1, pad=False)
    played = torchcodec.decoders.VideoDecoder(str(path), dimension_order="NHWC").get_frames_played_at(
        media.centre_times(T1).tolist())
    early = [k for k in range(T1) if not np.array_equal(played.data[k].numpy(), decoded.data[k])]
    assert early == list(range(T1))
    assert np.allclose(played.pts_seconds.numpy() - media.centre_times(T1), np.array(decoded.seconds.offsets)
                       - 1001 / 30000, atol=1e-4)


def test_pad_false_returns_the_real_seconds(torchcodec, encodes):
    path = encodes["pan_320x240_25fps_padded"]
    padded = decoders.torchcodec_frames(path, T1)
    real = decoders.torchcodec_frames(path, T1, pad=False)
    assert len(real.data) == real.seconds.n_real == 4 and np.array_equal(real.data, padded.data[:4])
    assert np.array_equal(padded.data[4], padded.data[3]) and real.seconds == padded.seconds


def test_variable_frame_rate_exact_mode_is_decords(torchcodec, encodes):
    """Dropped frames: the scan's start times pick the frame nearest each centre, as decord's index does."""
    reference = media.decode_frames(encodes["vfr_25fps"], T1)
    decoded = decoders.torchcodec_frames(encodes["vfr_25fps"], T1)
    assert np.array_equal(decoded.data, reference.data) and decoded.seconds == reference.seconds


@pytest.mark.parametrize("seek_mode", SEEK_MODES)
def test_display_rotation_is_applied_as_decord_does(torchcodec, encodes, seek_mode):
    reference = media.decode_frames(encodes["rotated_90"], T1)
    decoded = decoders.torchcodec_frames(encodes["rotated_90"], T1, seek_mode=seek_mode)
    assert decoded.data.shape == reference.data.shape == (T1, 96, 64, 3)
    assert np.array_equal(decoded.data, reference.data) and decoded.seconds == reference.seconds


def test_approximate_mode_decodes_a_variable_rate_stream_again_exactly(torchcodec, encodes, monkeypatch, caplog):
    """The header's rate misplaces a variable-rate stream's frames; the returned frames' timestamps show it and
    the video is decoded again with seek_mode 'exact'."""
    path = encodes["vfr_25fps"]
    exact = decoders.torchcodec_frames(path, T1, pad=False)
    with caplog.at_level("INFO", logger=decoders.__name__):
        approximate = decoders.torchcodec_frames(path, T1, pad=False, seek_mode="approximate")
    assert np.array_equal(approximate.data, exact.data) and approximate.seconds == exact.seconds
    assert "decoding again with seek_mode 'exact'" in caplog.text
    first_try = {}
    original = decoders._decode

    def record(**run):
        first_try.setdefault(run["seek_mode"], original(**run))
        return first_try[run["seek_mode"]]

    monkeypatch.setattr(decoders, "_decode", record)
    decoders.torchcodec_frames(path, T1, pad=False, seek_mode="approximate")
    header_guess = first_try["approximate"]
    off = [k for k in range(T1) if abs(header_guess.seconds.offsets[k] - exact.seconds.offsets[k]) > 1e-3]
    assert off and header_guess.seconds.max_offset > 0.5   # a second's frame is the wrong one, far off
    assert all(not np.array_equal(header_guess.data[k], exact.data[k]) for k in off)


@pytest.fixture(scope="module")
def broken(tmp_path_factory, encodes):
    d = tmp_path_factory.mktemp("broken")
    (d / "empty.mp4").touch()
    return {"missing file": d / "missing.mp4", "zero-byte file": d / "empty.mp4",
            "unreadable or corrupt file": corrupt_file(d / "corrupt.mp4"),
            "truncated": truncated_copy(encodes["pan_320x240_25fps_padded"], d / "truncated.mp4"),
            "no video stream": make_video(d / "audio_only.mp4", seconds=2, video=False)}


@pytest.mark.parametrize("problem", ["missing file", "zero-byte file", "unreadable or corrupt file", "truncated",
                                     "no video stream"])
def test_broken_files_raise_media_error_naming_file_and_problem(torchcodec, broken, problem):
    with pytest.raises(media.MediaError) as err:
        decoders.torchcodec_frames(broken[problem], T1)
    assert str(broken[problem]) in str(err.value)
    expected = "unreadable or corrupt file" if problem == "truncated" else problem
    assert err.value.problem.startswith(expected)


def test_bad_arguments_are_refused(torchcodec, encodes):
    with pytest.raises(ValueError, match="seek_mode 'nearest'"):
        decoders.torchcodec_frames(encodes["vfr_25fps"], T1, seek_mode="nearest")
    with pytest.raises(ValueError, match="device 'gpu'"):
        decoders.torchcodec_frames(encodes["vfr_25fps"], T1, device="gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_gpu_decoding_without_a_gpu_is_an_error_not_a_cpu_run(encodes):
    with pytest.raises(decoders.DecoderUnavailable, match="device 'cuda'.*no CUDA device"):
        decoders.torchcodec_frames(encodes["vfr_25fps"], T1, device="cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_a_gpu_torchcodec_cannot_open_is_an_error_not_a_cpu_run(torchcodec, encodes, monkeypatch):
    """torch believing in a GPU that torchcodec cannot open (no driver here): still an error naming the GPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(decoders.DecoderUnavailable, match="cannot decode on the GPU.*CUDA build of torchcodec"):
        decoders.torchcodec_frames(encodes["vfr_25fps"], T1, device="cuda")


def test_missing_torchcodec_names_the_setting_and_the_install(encodes, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchcodec", None)   # import torchcodec now raises ImportError
    with pytest.raises(decoders.DecoderUnavailable) as err:
        decoders.torchcodec_frames(encodes["vfr_25fps"], T1)
    assert "features.decode.backend" in str(err.value) and decoders.INSTALL in str(err.value)


def decode_setting(**changes) -> SimpleNamespace:
    """features.decode's fields (DecodeSpec's attributes, with the backend's), config.yaml's values by default."""
    fields = {"backend": "decord", "to_input_size": False, "skip_frames": False, "max_offset_s": 0.25,
              "deblock": True, "seek_mode": "exact", "device": "cpu"}
    return SimpleNamespace(**{**fields, **changes})


def test_the_backend_setting_picks_the_decoder(torchcodec, encodes):
    path = encodes["life_480x360_30fps_keyframes_every_second"]
    via_decord = decoders.decode_frames(path, T1, decode_setting())
    via_torchcodec = decoders.decode_frames(path, T1, decode_setting(backend="torchcodec", seek_mode="approximate"))
    assert np.array_equal(via_decord.data, via_torchcodec.data) and via_decord.seconds == via_torchcodec.seconds
    skipped = decoders.decode_frames(path, T1, decode_setting(skip_frames=True), short_side=224)
    assert skipped.seconds == media.decode_frames(path, T1, skip=True, max_offset_s=0.25, short_side=224).seconds
    with pytest.raises(ValueError, match="to_input_size and skip_frames to false"):
        decoders.decode_frames(path, T1, decode_setting(backend="torchcodec", skip_frames=True))
    with pytest.raises(ValueError, match="to_input_size and skip_frames to false"):
        decoders.decode_frames(path, T1, decode_setting(backend="torchcodec"), short_side=224)
    with pytest.raises(ValueError, match="backend 'pyav'"):
        decoders.decode_frames(path, T1, decode_setting(backend="pyav"))


def test_settings_that_cannot_run_stop_the_job_before_its_first_video(torchcodec, monkeypatch):
    decoders.check_available(decode_setting())
    decoders.check_available(decode_setting(backend="torchcodec"))
    with pytest.raises(ValueError, match="to_input_size and skip_frames to false"):
        decoders.check_available(decode_setting(backend="torchcodec", to_input_size=True))
    with pytest.raises(ValueError, match="seek_mode 'nearest'"):
        decoders.check_available(decode_setting(backend="torchcodec", seek_mode="nearest"))
    with pytest.raises(ValueError, match="backend 'pyav'"):
        decoders.check_available(decode_setting(backend="pyav"))
    if not torch.cuda.is_available():
        with pytest.raises(decoders.DecoderUnavailable, match="no CUDA device"):
            decoders.check_available(decode_setting(backend="torchcodec", device="cuda"))
    monkeypatch.setitem(sys.modules, "torchcodec", None)
    decoders.check_available(decode_setting())   # decord needs no torchcodec
    with pytest.raises(decoders.DecoderUnavailable, match="features.decode.backend"):
        decoders.check_available(decode_setting(backend="torchcodec"))


# --- benchmarks/decoders.py, tiny ---------------------------------------------------------------------------
def test_decoder_benchmark_runs_small(torchcodec, tmp_path, capsys):
    bench = load_benchmark("decoders")
    result = bench.main(["--sizes", "160x120", "--fps", "30000/1001", "--seconds", "3", "--cache",
                         str(tmp_path / "clips")])
    out = capsys.readouterr().out
    (row,) = result["clips"]
    assert set(row["backends"]) == set(bench.BACKENDS)
    exact, tc_exact = row["backends"]["decord_full"], row["backends"]["torchcodec_exact"]
    assert exact["cos_min"] == 1.0 and exact["seconds_off"] == 0 and exact["cpu_s"] > 0
    assert tc_exact["bit_exact_seconds"] == 3 and tc_exact["seconds_off"] == 0
    assert "| 160x120 29.97 fps |" in out and json.loads(out[out.index("{"):]) == result
    assert row["audio"]["identical"] is True and row["audio"]["audio_torchcodec"]["cpu_s"] > 0
    assert list((tmp_path / "clips").glob("*.mp4")) and bench.main(
        ["--sizes", "160x120", "--fps", "30000/1001", "--seconds", "3", "--cache", str(tmp_path / "clips"),
         "--backends", "torchcodec_exact", "--no-cosine"])["clips"][0]["backends"].keys() == {"torchcodec_exact"}


# --- the backend setting, from config to the store ---------------------------------------------------------------
def test_extraction_with_torchcodec_stores_what_decord_stores(torchcodec, encodes, extract_spec, tmp_path):
    """features.decode.backend: torchcodec -> the extract spec -> DecodeDataset: the CLIP-RN50 store holds the
    same maps as with decord (the same frames bit for bit), and records the backend it decoded with."""
    import dataclasses

    from avqa import store
    from avqa.features.extract import extract_shard, load_encoder, start_decoding

    ids = sorted(encodes)[:2]
    videos = tmp_path / "videos"
    videos.mkdir()
    for vid in ids:
        (videos / f"{vid}.mp4").symlink_to(encodes[vid])
    maps = {}
    for backend in ("decord", "torchcodec"):
        spec = extract_spec("clip_rn50", T1=4, workers=0)
        spec = dataclasses.replace(spec, decode=dataclasses.replace(spec.decode, backend=backend))
        out = tmp_path / f"{backend}.zarr"
        extract_shard(load_encoder(spec), start_decoding(spec, ids, videos), out, tmp_path / f"{backend}.tsv")
        group = store.open_read(out)
        maps[backend] = np.asarray(group["maps"][:])
        assert group.attrs["frame_decoding"]["backend"] == backend
        assert set(group.attrs["decode_path"].values()) == {media.FULL}
    assert np.array_equal(maps["decord"], maps["torchcodec"])


def test_torchcodec_with_decord_only_options_is_a_config_error():
    from pathlib import Path

    from avqa import workflow as W

    config = W.load_config(Path(__file__).resolve().parents[1] / "config.yaml")
    config["features"]["decode"].update(backend="torchcodec", skip_frames=True)
    with pytest.raises(W.ConfigError, match="to_input_size and skip_frames need backend: decord"):
        W.check_config(config)


# --- audio: features.audio_backend ----------------------------------------------------------------------------
SR = 16000
# name: make_real_encode's (size, fps, video seconds, audio seconds, channels, audio rate): crawled-clip audio
# (AAC 44.1 / 48 kHz, mono and stereo, longer and shorter than the video, cut at T1 = 5 or not)
AUDIO_ENCODES = {
    "stereo_44k_audio_longer_cut": ((96, 64), "25", 6, 6.4, 2, 44100),
    "mono_44k_audio_shorter": ((96, 64), "30000/1001", 4, 3.7, 1, 44100),
    "stereo_48k_padded": ((96, 64), "30", 2.5, 2.5, 2, 48000),
    "mono_22k_one_second": ((96, 64), "25", 1, 1, 1, 22050),
}


@pytest.fixture(scope="module")
def audio_encodes(tmp_path_factory):
    d = tmp_path_factory.mktemp("audio")
    clips = {name: make_real_encode(d / f"{name}.mp4", "pan", size, fps, seconds, audio_seconds, channels, rate)
             for name, (size, fps, seconds, audio_seconds, channels, rate) in AUDIO_ENCODES.items()}
    clips["audio_only"] = make_video(d / "audio_only.mp4", seconds=3, video=False, audio_rate=44100, channels=2)
    # an audio stream that starts after the video (its first sample at 0.5 s): "the first T1 seconds of the track"
    run_ffmpeg("-i", str(clips["mono_44k_audio_shorter"]), "-itsoffset", "0.5", "-i",
               str(clips["mono_44k_audio_shorter"]), "-map", "0:v", "-map", "1:a", "-c", "copy",
               str(d / "late_audio.mp4"))
    clips["late_audio"] = d / "late_audio.mp4"
    return clips


@pytest.mark.parametrize("kept", [T1, 60, None])
@pytest.mark.parametrize("name", [*AUDIO_ENCODES, "audio_only", "late_audio"])
def test_torchcodec_audio_is_ffmpegs_bit_for_bit(torchcodec, audio_encodes, name, kept):
    """The same samples (both resample with libswresample at its defaults) and the same Seconds: real seconds,
    the file's length, padding and cut, padded or not; `kept` seconds (T1) or the whole track (None)."""
    for pad in (True, False):
        binary = media.decode_audio(audio_encodes[name], SR, kept, pad=pad)
        library = decoders.torchcodec_audio(audio_encodes[name], SR, kept, pad=pad)
        assert library.data.dtype == np.float32 and library.data.shape == binary.data.shape, (name, pad)
        assert np.array_equal(library.data, binary.data) and library.seconds == binary.seconds, (name, pad)
    assert binary.seconds.cut == (kept == T1 and name == "stereo_44k_audio_longer_cut")


@pytest.mark.parametrize("problem", ["missing file", "zero-byte file", "unreadable or corrupt file", "truncated",
                                     "no audio stream"])
def test_broken_audio_raises_media_error_naming_file_and_problem(torchcodec, broken, audio_encodes, problem,
                                                                 tmp_path):
    path = (make_video(tmp_path / "video_only.mp4", seconds=2, audio=False) if problem == "no audio stream"
            else broken[problem])
    with pytest.raises(media.MediaError) as err:
        decoders.torchcodec_audio(path, SR, T1)
    assert str(path) in str(err.value)
    expected = "unreadable or corrupt file" if problem == "truncated" else problem
    assert err.value.problem.startswith(expected)


def test_torchcodec_audio_needs_no_ffmpeg_binary(torchcodec, audio_encodes, monkeypatch):
    """The lent GPU machine has no ffmpeg binary: the torchcodec backends decode there, the ffmpeg backend stops the
    job before its first video, naming the setting to change."""
    expected = decoders.torchcodec_audio(audio_encodes["stereo_48k_padded"], SR, T1)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert np.array_equal(decoders.decode_audio(audio_encodes["stereo_48k_padded"], T1, "torchcodec", SR).data,
                          expected.data)
    decoders.check_audio_available("torchcodec")
    with pytest.raises(decoders.DecoderUnavailable, match="no ffmpeg binary.*features.audio_backend: torchcodec"):
        decoders.check_audio_available("ffmpeg")
    with pytest.raises(ValueError, match="audio_backend 'sox'"):
        decoders.decode_audio(audio_encodes["stereo_48k_padded"], T1, "sox", SR)
    monkeypatch.setitem(sys.modules, "torchcodec", None)
    with pytest.raises(decoders.DecoderUnavailable, match="features.audio_backend: ffmpeg"):
        decoders.check_audio_available("torchcodec")


def test_a_torchcodec_without_demuxer_is_refused_naming_the_version(torchcodec, monkeypatch):
    """torchcodec 0.11 (the build for torch 2.11) decodes but has no Demuxer: a clear error, not a wrong frame."""
    import torchcodec.decoders as library
    monkeypatch.delattr(library, "Demuxer")
    with pytest.raises(decoders.DecoderUnavailable, match="has no Demuxer.*torchcodec==0.17"):
        decoders.check_available(decode_setting(backend="torchcodec"))


def test_extraction_with_either_audio_backend_stores_the_same_vggish(torchcodec, audio_encodes, extract_spec,
                                                                      tmp_path):
    """features.audio_backend -> the extract spec -> DecodeDataset: the same VGGish store, the backend recorded."""
    import dataclasses

    from avqa import store
    from avqa.features.extract import extract_shard, load_encoder, start_decoding

    ids = ["mono_44k_audio_shorter", "stereo_44k_audio_longer_cut"]
    videos = tmp_path / "videos"
    videos.mkdir()
    for vid in ids:
        (videos / f"{vid}.mp4").symlink_to(audio_encodes[vid])
    embeddings = {}
    for backend in decoders.AUDIO_BACKENDS:
        spec = dataclasses.replace(extract_spec("vggish", T1=4, workers=0), audio_backend=backend)
        out = tmp_path / f"{backend}.zarr"
        extract_shard(load_encoder(spec), start_decoding(spec, ids, videos), out, tmp_path / f"{backend}.tsv")
        group = store.open_read(out)
        embeddings[backend] = np.asarray(group["emb"][:])
        assert group.attrs["audio_decoding"] == {"backend": backend}
    assert np.array_equal(embeddings["ffmpeg"], embeddings["torchcodec"])


def test_the_audio_backend_reaches_only_the_audio_encoders_specs():
    """config features.audio_backend -> VGGish's extract spec (so its stores are keyed on it); the frame encoders'
    specs carry none, so changing it reruns no frame extraction."""
    from pathlib import Path

    from avqa import workflow as W

    config = W.load_config(Path(__file__).resolve().parents[1] / "config.yaml")
    assert config["features"]["audio_backend"] == "torchcodec" and config["features"]["decode"]["backend"] == \
        "torchcodec"
    before = {name: W.extract_spec(config, name) for name in ("vggish", "clip_rn50", "resnet18", "clip_vit")}
    config["features"]["audio_backend"] = "ffmpeg"
    after = {name: W.extract_spec(config, name) for name in before}
    assert (before["vggish"].audio_backend, after["vggish"].audio_backend) == ("torchcodec", "ffmpeg")
    assert all(before[name] == after[name] and after[name].audio_backend is None for name in before if name != "vggish")


def test_extract_backends_benchmark_runs_small(torchcodec, audio_encodes, tmp_path):
    """benchmarks/extract_backends.py: one shard per backend through extract_shard, every video stored."""
    bench = load_benchmark("extract_backends")
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("mono_44k_audio_shorter", "stereo_48k_padded"):
        (videos / f"{name}.mp4").symlink_to(audio_encodes[name])
    for encoder, backends in (("clip_rn50", {"decord", "torchcodec"}), ("vggish", {"ffmpeg", "torchcodec"})):
        result = bench.main(["--videos", str(videos), "--n", "2", "--encoder", encoder, "--repeats", "1",
                             "--threads", "1"])
        (round_,) = result["rounds"]
        assert set(round_) == backends and all(r["stored"] == 2 and r["failed"] == 0 for r in round_.values())
        assert result["model_inputs_per_s"] > 0 and result["ratio"] > 0
