"""Shard extraction: one shard of healthy and broken videos through CLIP-RN50 (random weights) and VGGish.

Every video ends up either in the store (with its real seconds, padded / cut flags) or in the failures TSV with
a clear reason; features are aligned with the seconds of the video; outputs are atomic; shards.json and the
failures merge follow the store layout of avqa.features.layout.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch

from avqa import store
from avqa.features import encoders, media
from avqa.cli import main as cli
from avqa.features.extract import extract_shard, load_encoder, merge_failures, read_failures, register, start_decoding
from avqa.features.layout import LAYOUT
from avqa.features.extract_parts import Batcher, ShardWriter
from avqa.data.annotations import annotated_video_ids
from avqa.features.shards import make_shards
from avqa.specs.features import ShardsSpec
from media_factory import corrupt_file, make_real_encode, make_video

T1 = 4
COLOURS = ["red", "red", "lime", "blue"]       # the picture changes at seconds 2 and 3; the tone starts at 2
BROKEN = {"corrupt": "unreadable or corrupt file", "empty": "zero-byte file", "missing": "missing file"}


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    """A videos folder, annotations naming every video (one of them absent), and shards.json."""
    root = tmp_path_factory.mktemp("extract")
    d = root / "videos"
    d.mkdir()
    make_video(d / "aligned.mp4", colours=COLOURS, fps=25, tone_from=2)
    make_video(d / "short3.mp4", seconds=3)
    make_video(d / "long300.mp4", seconds=300, fps=1, size=(32, 24), audio_rate=8000, audio_bitrate="16k")
    make_video(d / "vfr.mp4", colours=COLOURS, fps=25, vfr=True)
    make_video(d / "portrait.mp4", seconds=2, size=(90, 160))
    make_video(d / "portrait48.mp4", seconds=2, size=(48, 64))      # decord fails on it: the ffmpeg path
    make_video(d / "gray.mp4", seconds=2, gray=True)
    make_video(d / "stereo44k.mp4", seconds=2, audio_rate=44100, channels=2)
    make_video(d / "stereo48k.mp4", seconds=2, audio_rate=48000, channels=2)
    make_video(d / "video_only.mp4", seconds=2, audio=False)
    make_video(d / "audio_only.mp4", seconds=2, video=False)
    corrupt_file(d / "corrupt.mp4")
    (d / "empty.mp4").touch()
    ids = sorted(p.stem for p in d.glob("*.mp4")) + ["missing"]
    pd.DataFrame({"video_id": ids[::2], "question_id": range(len(ids[::2]))}).to_parquet(root / "a.parquet")
    pd.DataFrame({"video_id": ids[1::2] + ids[:2]}).to_parquet(root / "b.parquet")
    spec = ShardsSpec(videos_dir=str(d), videos_per_shard=100, max_missing_fraction=0.1)
    assert cli(["shards", "--annotations", str(root / "a.parquet"), str(root / "b.parquet"), "--spec",
                spec.to_json(), "--out", str(root / "shards.json")]) == 0
    return root


@pytest.fixture(scope="module")
def clip_run(extract_spec):
    torch.manual_seed(0)
    return load_encoder(extract_spec("clip_rn50", T1=T1))


@pytest.fixture(scope="module")
def clip_out(shard, clip_run, extract_spec):
    videos_dir, _, ids = _shard(shard)
    out, failures = shard / "out/clip_rn50/shard000.zarr", shard / "out/failures/shard000.clip_rn50.tsv"
    extract_shard(clip_run, start_decoding(extract_spec("clip_rn50", T1=T1, workers=1), ids, videos_dir), out,
                  failures)
    return store.open_read(out), read_failures(failures)


@pytest.fixture(scope="module")
def vggish_out(shard, extract_spec):
    out, failures = shard / "out/vggish/shard000.zarr", shard / "out/failures/shard000.vggish.tsv"
    spec = extract_spec("vggish", batch=6, T1=T1, workers=1)
    assert cli(["extract", "--spec", spec.to_json(), "--shards", str(shard / "shards.json"), "--shard",
                _shard(shard)[1], "--out", str(out), "--failures", str(failures), "--threads", "2"]) == 0
    return store.open_read(out), read_failures(failures)


def _shard(root):
    """(videos_dir, name, ids) of the fixture's one shard."""
    manifest = json.loads((root / "shards.json").read_text())
    (name, ids), = manifest["shards"].items()
    return manifest["videos_dir"], name, ids


def _rows(group) -> dict[str, int]:
    return {vid: i for i, vid in enumerate(store.read_strings(group, "video_id"))}


def _step(features: np.ndarray) -> list[float]:
    """Mean absolute change from each second to the next."""
    x = features.astype(np.float32)
    return [float(np.abs(x[k + 1] - x[k]).mean()) for k in range(len(x) - 1)]


# --- shards ------------------------------------------------------------------------------------------------
def test_shards_json_lists_every_annotated_id_sorted_and_unique(shard):
    manifest = json.loads((shard / "shards.json").read_text())
    _, name, ids = _shard(shard)
    assert ids == sorted(set(ids)) and len(ids) == 14 and "missing" in ids and manifest["missing"] == ["missing"]
    assert manifest["videos_dir"].endswith("videos") and name.startswith("shard-")
    assert annotated_video_ids([shard / "a.parquet", shard / "b.parquet"]) == ids
    shards = make_shards(ids, 5)
    assert sorted(sum(shards.values(), [])) == ids and max(map(len, shards.values())) <= 10


def test_shards_reject_bad_annotations(tmp_path):
    pd.DataFrame({"video": ["a"]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="bad.parquet: no 'video_id' column"):
        annotated_video_ids([tmp_path / "bad.parquet"])
    with pytest.raises(FileNotFoundError, match="nope.parquet"):
        annotated_video_ids([tmp_path / "nope.parquet"])


# --- stores: layout, success / failure accounting ----------------------------------------------------------
def test_clip_store_layout(clip_out):
    group, _ = clip_out
    maps = group["maps"]
    assert maps.dtype == np.float16 and maps.shape[1:] == (T1, 7, 7, 2048) and maps.chunks == (1, T1, 7, 7, 2048)
    attrs = dict(group.attrs)
    assert attrs["encoder"] == "clip_rn50" and attrs["T1"] == T1 and attrs["fps"] == 1
    assert attrs["weights"] == "random" and attrs["weights_seed"] == 0 and attrs["precision"] == "fp32"
    ids = store.read_strings(group, "video_id")
    assert len(ids) == maps.shape[0] and all(set(attrs[k]) == set(ids) for k in ("durations", "n_seconds",
                                                                                 "padded", "cut"))
    assert np.isfinite(maps[:].astype(np.float32)).all()


def test_vggish_store_layout(vggish_out):
    group, _ = vggish_out
    emb = group["emb"]
    assert emb.dtype == np.float32 and emb.shape[1:] == (T1, 128)
    assert dict(group.attrs)["encoder"] == "vggish" and dict(group.attrs)["sample_rate"] == 16000


@pytest.mark.parametrize("encoder, absent, stage, reason", [
    ("clip_rn50", "audio_only", "decode_video", "no video stream"),
    ("vggish", "video_only", "decode_audio", "no audio stream"),
])
def test_each_video_is_stored_or_failed_with_a_reason(shard, clip_out, vggish_out, encoder, absent, stage,
                                                      reason):
    group, failures = clip_out if encoder == "clip_rn50" else vggish_out
    _, _, ids = _shard(shard)
    stored = store.read_strings(group, "video_id")
    assert sorted(stored + failures["video_id"].tolist()) == ids  # each exactly once
    why = dict(zip(failures["video_id"], failures["reason"]))
    assert set(why) == {absent, *BROKEN}
    assert (failures["stage"] == stage).all()
    assert why[absent].endswith(f"{absent}.mp4: {reason}")
    for vid, problem in BROKEN.items():
        assert f"{vid}.mp4: {problem}" in why[vid]


def test_padded_and_cut_videos(clip_out, vggish_out):
    for group, array in ((clip_out[0], "maps"), (vggish_out[0], "emb")):
        attrs, rows = dict(group.attrs), _rows(group)
        assert (attrs["n_seconds"]["short3"], attrs["padded"]["short3"], attrs["cut"]["short3"]) == (3, True, False)
        assert (attrs["n_seconds"]["long300"], attrs["padded"]["long300"], attrs["cut"]["long300"]) == (T1, False, True)
        assert attrs["durations"]["long300"] == pytest.approx(300, abs=0.1)
        short = group[array][rows["short3"]]
        assert np.array_equal(short[3], short[2]) and not np.array_equal(short[1], short[2])
        gray = group[array][rows["gray"]]
        assert (attrs["n_seconds"]["gray"], attrs["padded"]["gray"]) == (2, True)
        assert np.array_equal(gray[2], gray[1]) and np.array_equal(gray[3], gray[1])


# --- alignment and equivalence -----------------------------------------------------------------------------
def test_clip_maps_change_at_the_seconds_the_picture_changes(clip_out):
    group, _ = clip_out
    for vid in ("aligned", "vfr"):  # 25 fps and variable frame rate
        steps = _step(group["maps"][_rows(group)[vid]])
        assert steps[0] < 0.05 * min(steps[1:]), (vid, steps)


def test_vggish_changes_at_the_second_the_tone_starts(vggish_out):
    group, _ = vggish_out
    steps = _step(group["emb"][_rows(group)["aligned"]])
    assert steps[1] > 10 * max(steps[0], steps[2], 1e-9), steps


def test_stored_maps_equal_the_encoder_on_the_decoded_frames(shard, clip_out, clip_run):
    """Batching across videos and padding by repeating features change nothing (up to float16 storage)."""
    group, _ = clip_out
    for vid in ("aligned", "portrait48"):
        # decoded as extraction decodes by default: every frame, full size, the frame nearest each centre
        decoded = media.decode_frames(shard / "videos" / f"{vid}.mp4", T1)
        direct = encoders.clip_maps(clip_run.encoder.model, encoders.clip_image_transform()(decoded.data), "fp32")
        stored = torch.from_numpy(group["maps"][_rows(group)[vid]].astype(np.float32))
        assert torch.allclose(stored, direct.float(), rtol=1e-2, atol=1e-5), vid
    attrs = dict(group.attrs)
    assert attrs["frame_decoding"] == {"to_input_size": False, "skip_frames": False, "max_offset_s": 0.25,
                                       "deblock": True, "backend": "torchcodec", "seek_mode": "exact", "device": "cpu"}
    assert attrs["decode_path"]["aligned"] == "full" and attrs["max_offset_s"]["aligned"] <= 0.25


def test_in_process_and_worker_decoding_give_identical_vggish_features(shard, vggish_out, tmp_path, extract_spec):
    ids = ["aligned", "audio_only", "corrupt", "gray", "long300"]  # the shard's first two batches of 6 seconds
    first = vggish_out[0]
    spec = extract_spec("vggish", batch=6, precision=first.attrs["precision"], T1=T1, workers=0)
    extract_shard(load_encoder(spec), start_decoding(spec, ids, shard / "videos"), tmp_path / "v.zarr",
                  tmp_path / "f.tsv")
    again = store.open_read(tmp_path / "v.zarr")
    rows = [_rows(first)[vid] for vid in store.read_strings(again, "video_id")]
    assert store.read_strings(again, "video_id") == ["aligned", "audio_only", "gray", "long300"]
    assert np.array_equal(again["emb"][:], first["emb"][rows])


# --- batching, empty shards, atomicity, failures merge ------------------------------------------------------
def test_batcher_fills_batches_across_videos_and_returns_each_video_in_order():
    sizes = []

    def forward(x):
        sizes.append(len(x))
        return x.numpy() * 10

    batcher = Batcher(forward, batch_size=4)
    done = batcher.add("a", torch.arange(3.0)) + batcher.add("b", torch.arange(3.0, 8.0))
    done += batcher.add("c", torch.arange(8.0, 10.0)) + batcher.flush()
    assert sizes == [4, 4, 2]
    assert [vid for vid, _ in done] == ["a", "b", "c"]
    assert [out.tolist() for _, out in done] == [[0, 10, 20], [30, 40, 50, 60, 70], [80, 90]]


def test_shard_where_every_video_fails_writes_an_empty_store(shard, clip_run, tmp_path, extract_spec):
    out, failures = tmp_path / "s.zarr", tmp_path / "s.tsv"
    decoding = start_decoding(extract_spec("clip_rn50", T1=T1, workers=0), ["corrupt", "empty", "missing"],
                              shard / "videos")
    result = extract_shard(clip_run, decoding, out, failures)
    assert result == {"stored": 0, "failed": 3}
    group = store.open_read(out)
    assert group["maps"].shape == (0, T1, 7, 7, 2048) and store.read_strings(group, "video_id") == []
    assert read_failures(failures)["video_id"].tolist() == ["corrupt", "empty", "missing"]


def test_a_job_killed_mid_write_leaves_no_store_and_no_temporary(shard, tmp_path, monkeypatch, extract_spec):
    spec = extract_spec("vggish", batch=2, T1=T1, workers=0)
    run = load_encoder(spec)
    original, calls = ShardWriter.add, []

    def dying_add(self, *args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        return original(self, *args)

    monkeypatch.setattr(ShardWriter, "add", dying_add)
    out_dir = tmp_path / "features"
    with pytest.raises(KeyboardInterrupt):
        decoding = start_decoding(spec, ["aligned", "gray", "short3", "stereo44k"], shard / "videos")
        extract_shard(run, decoding, out_dir / "s.zarr", out_dir / "s.tsv")
    assert len(calls) == 3 and list(out_dir.iterdir()) == []


def test_failures_merge_is_sorted_with_the_contract_columns(shard, clip_out, vggish_out, tmp_path):
    inputs = sorted(str(p) for p in (shard / "out/failures").glob("*.tsv"))
    assert cli(["failures", *inputs, "--out", str(tmp_path / "failures.tsv")]) == 0
    merged = read_failures(tmp_path / "failures.tsv")
    assert len(merged) == len(clip_out[1]) + len(vggish_out[1])
    assert list(merged.itertuples(index=False)) == sorted(merged.itertuples(index=False), key=lambda r: r[:2])
    assert merge_failures([], tmp_path / "none.tsv") == 0
    assert (tmp_path / "none.tsv").read_text() == "video_id\tstage\treason\n"


def test_layout_matches_the_contract():
    """The stable layouts of the store contract, and the added encoders (CLIP ViT's shapes follow its backbone)."""
    assert LAYOUT["clip_rn50"] == ("maps", (7, 7, 2048), "float16") and LAYOUT["vggish"] == ("emb", (128,), "float32")
    assert LAYOUT["resnet18"] == ("maps", (7, 7, 512), "float16")
    assert LAYOUT["clip_vit"] == ("emb", None, "float16") and LAYOUT["clip_vit_tokens"] == ("tokens", None, "float16")


# --- one truth per video: the same length and cut flag in every store ----------------------------------------
# (video seconds, audio seconds, fps) of real-world encodes (x264 High with B-frames, AAC 44.1 kHz stereo):
# longer than T1; audio longer than the video, tipping the file past T1 (the video alone has T1 seconds);
# a short audio track in a long video.
TRUTH_CLIPS = {"long": (6, 6.3, "30000/1001"), "audio_tips": (3.9, 4.6, "25"), "short_audio": (6, 3.4, "30")}
TRUTH_LENGTHS = {"long": 6.31, "audio_tips": 4.6, "short_audio": 6.0}   # the container's, the longer track
DECODE = {"backend": "decord"}   # the decord backend's paths (the default backend is torchcodec)
DECODE_PATHS = {"default": {}, "decord": DECODE, "to_input_size": {**DECODE, "to_input_size": True},
                "skip_frames": {**DECODE, "skip_frames": True}, "ffmpeg_fallback": DECODE}


@pytest.fixture(scope="module")
def truth_videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("truth")
    for name, (seconds, audio_seconds, fps) in TRUTH_CLIPS.items():
        make_real_encode(d / f"{name}.mp4", "pan", (192, 144), fps, seconds, audio_seconds, channels=2)
    return d


@pytest.fixture(scope="module")
def truth_audio(truth_videos, tmp_path_factory, extract_spec):
    """The VGGish and CLIP ViT (the default config's ViT-B-32) stores' attrs of the clips (default decoding)."""
    out = tmp_path_factory.mktemp("truth_out")
    attrs = {}
    for name in ("vggish", "clip_vit"):
        spec = extract_spec(name, batch=8, T1=T1, workers=0)
        stores = [out / f"{name}.zarr"] + ([out / "tokens.zarr"] if name == "clip_vit" else [])
        extract_shard(load_encoder(spec), start_decoding(spec, list(TRUTH_CLIPS), truth_videos),
                      stores if len(stores) > 1 else stores[0], out / f"{name}.tsv")
        attrs[name] = dict(store.open_read(stores[0]).attrs)
    return attrs


@pytest.mark.parametrize("path", DECODE_PATHS)
def test_every_store_records_one_length_and_cut_flag_per_video(truth_videos, truth_audio, clip_run, path,
                                                               monkeypatch, tmp_path, extract_spec):
    """CLIP-RN50 (each decode path: default, decord's, to the input size, skipping, the ffmpeg fallback), CLIP ViT and
    VGGish stores record the same length (the file's) and cut flag for each video; n_seconds stays per stream."""
    decode_frames = media.decode_frames
    if path == "skip_frames":   # the skipping path taken on these small clips too
        monkeypatch.setattr(media, "decode_frames", lambda *a, **k: decode_frames(*a, **k, skip_min_pixels=0))
    if path == "ffmpeg_fallback":
        def broken(*args, **kwargs):
            raise RuntimeError("simulated decord failure")
        monkeypatch.setattr(media, "_frames_decord", broken)
    spec = extract_spec("clip_rn50", T1=T1, workers=0)
    spec = dataclasses.replace(spec, decode=dataclasses.replace(spec.decode, **DECODE_PATHS[path]))
    decoding = start_decoding(spec, list(TRUTH_CLIPS), truth_videos)
    extract_shard(clip_run, decoding, tmp_path / "clip.zarr", tmp_path / "clip.tsv")
    clip = dict(store.open_read(tmp_path / "clip.zarr").attrs)
    expected_path = {"skip_frames": media.REF_FRAMES, "ffmpeg_fallback": media.FFMPEG_FULL}.get(path, media.FULL)
    assert set(clip["decode_path"].values()) == {expected_path}
    for attrs in (clip, truth_audio["clip_vit"], truth_audio["vggish"]):
        assert attrs["durations"] == pytest.approx(TRUTH_LENGTHS, abs=0.02)
        assert attrs["cut"] == {"long": True, "audio_tips": True, "short_audio": True}
    assert clip["durations"] == truth_audio["vggish"]["durations"] == truth_audio["clip_vit"]["durations"]
    assert clip["n_seconds"] == truth_audio["clip_vit"]["n_seconds"] == {"long": T1, "audio_tips": T1,
                                                                         "short_audio": T1}
    assert truth_audio["vggish"]["n_seconds"] == {"long": T1, "audio_tips": T1, "short_audio": 3}
    assert truth_audio["vggish"]["padded"]["short_audio"] and not clip["padded"]["short_audio"]


@pytest.mark.parametrize("decode", [{}, {"backend": "decord", "to_input_size": True, "skip_frames": True,
                                         "max_offset_s": 0.1, "deblock": False},
                                    {"backend": "decord", "skip_frames": True}, {"seek_mode": "approximate"}])
def test_features_decode_reaches_the_extract_cli(decode, monkeypatch):
    """config features.decode -> the workflow's extract spec -> the rule's --spec JSON -> the decoder's options,
    each switch both ways (an opt-in lost on the way would silently decode the default way)."""
    import argparse
    from pathlib import Path

    from avqa import workflow as W
    from avqa.features import extract

    config = W.load_config(Path(__file__).resolve().parents[1] / "config.yaml")
    config["features"]["decode"] = {**config["features"]["decode"], **decode}
    spec = W.extract_spec(config, "clip_rn50")
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["extract", "--spec", spec.to_json(), "--shards", "s.json", "--shard", "s", "--out",
                              "o.zarr", "--failures", "f.tsv", "--threads", "1"])
    seen = {}
    monkeypatch.setattr(extract, "read_shard", lambda *a: (Path("videos"), []))
    monkeypatch.setattr(extract, "start_decoding", lambda spec, *a: seen.setdefault("spec", spec) and 1 / 0)
    with pytest.raises(ZeroDivisionError):
        args.func(args)
    assert seen["spec"] == spec and seen["spec"].decode.to_dict() == config["features"]["decode"]
    default = W.load_config(Path(__file__).resolve().parents[1] / "config.yaml")["features"]["decode"]
    assert {k: v for k, v in seen["spec"].decode.to_dict().items() if k not in decode} == \
        {k: v for k, v in default.items() if k not in decode}
