"""Temporal pooling T1 -> T: the arithmetic of avg / stride and the `pool` CLI on tiny shard stores."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from avqa.cli import main
from avqa.features.pooling import pool_avg, pool_stride, window
from avqa.specs.reporting import PoolSpec
from avqa.store import open_new, open_read, read_strings, write_strings


def test_pool_avg_means_consecutive_windows():
    x = np.arange(12, dtype=np.float16).reshape(6, 2)       # 6 seconds, 2 features
    pooled = pool_avg(x, 3)                                   # windows of 2 seconds
    assert pooled.dtype == np.float32
    np.testing.assert_array_equal(pooled, [[1, 2], [5, 6], [9, 10]])  # mean of rows (0,1), (2,3), (4,5)
    assert pool_avg(np.arange(60.0), 10)[0] == pytest.approx(2.5)      # seconds 0..5
    assert pool_avg(np.arange(60.0), 60).tolist() == list(np.arange(60.0))  # T = T1 is the identity


def test_pool_avg_is_computed_in_float32():
    # float16 inputs (2049 rounds to 2048); the mean 1024.5 is not representable in float16 (spacing 1 there)
    # and a float16 running sum would drop the ones (4096 + 1 == 4096): float32 keeps both.
    x = np.array([2049, 2049, 1, 1], dtype=np.float16).reshape(4, 1)
    assert pool_avg(x, 1)[0, 0] == 1024.5


def test_pool_stride_takes_the_first_second_of_each_window():
    x = np.arange(24).reshape(12, 2)
    pooled = pool_stride(x, 4)                                # windows of 3 seconds
    np.testing.assert_array_equal(pooled, x[[0, 3, 6, 9]])
    assert pooled.dtype == x.dtype


def test_pooling_along_another_axis():
    x = np.arange(2 * 6).reshape(2, 6)                        # (videos, seconds)
    np.testing.assert_array_equal(pool_avg(x, 2, axis=1), [[1, 4], [7, 10]])
    np.testing.assert_array_equal(pool_stride(x, 2, axis=1), [[0, 3], [6, 9]])


@pytest.mark.parametrize("fn", [pool_avg, pool_stride])
def test_T1_must_be_a_multiple_of_T(fn):
    with pytest.raises(ValueError, match=r"T1 \(25\) is not a multiple of T \(10\)"):
        fn(np.zeros((25, 3)), 10)
    assert window(60, 10) == 6


# --- the CLI on hand-made shard stores ----------------------------------------------------------------------
T1, T = 6, 3


def _shard(path, array, videos, data):
    g = open_new(path)
    g.create_array(array, shape=data.shape, dtype=data.dtype, chunks=(1, *data.shape[1:]))[:] = data
    write_strings(g, "video_id", videos)
    g.attrs.update({"T1": T1, "encoder": array, "weights": "random"})


@pytest.fixture()
def shards(tmp_path):
    rng = np.random.default_rng(0)
    maps = {f"shard00{i}": rng.standard_normal((2, T1, 7, 7, 2048)).astype(np.float16) for i in range(2)}
    emb = {f"shard00{i}": rng.standard_normal((2, T1, 128)).astype(np.float32) for i in range(2)}
    clip_ids = {"shard000": ["v1", "v0"], "shard001": ["v2", "v3"]}
    vggish_ids = {"shard000": ["v0", "v1"], "shard001": ["v3", "v9"]}   # v2 failed in vggish
    for shard in maps:
        _shard(tmp_path / f"clip/{shard}.zarr", "maps", clip_ids[shard], maps[shard])
        _shard(tmp_path / f"vggish/{shard}.zarr", "emb", vggish_ids[shard], emb[shard])
    ann = tmp_path / "test.parquet"
    pd.DataFrame({"video_id": ["v3", "v0", "v0", "v1", "v2", "v7"], "question_id": range(6)}).to_parquet(ann)
    return tmp_path, maps, emb, ann


def _pool_cli(root, ann, method, out, T_=T):
    return main(["pool", "--visual", str(root / "clip/shard000.zarr"), str(root / "clip/shard001.zarr"),
                 "--vggish", str(root / "vggish/shard000.zarr"), str(root / "vggish/shard001.zarr"),
                 "--annotations", str(ann), "--split", "test",
                 "--spec", PoolSpec(method=method, visual_encoder="clip_rn50", T=T_).to_json(), "--out", str(out)])


def test_pool_cli_avg_layout_values_and_missing(shards):
    root, maps, emb, ann = shards
    out = root / "pooled/avg/test.zarr"
    assert _pool_cli(root, ann, "avg", out) == 0
    g = open_read(out)
    assert read_strings(g, "video_id") == ["v0", "v1", "v3"]          # in both encoders, sorted
    visual, audio = g["visual"], g["audio"][:]
    assert visual.shape == (3, T, 7, 7, 2048) and visual.dtype == np.float16
    assert visual.chunks == (1, T, 7, 7, 2048)
    assert audio.shape == (3, T, 128) and audio.dtype == np.float32
    # v0 is row 1 of clip shard000, row 0 of vggish shard000; v3 is row 1 / row 0 of shard001
    expected_v0 = maps["shard000"][1].astype(np.float32).reshape(T, 2, 7, 7, 2048).mean(1).astype(np.float16)
    np.testing.assert_array_equal(visual[0], expected_v0)
    np.testing.assert_allclose(audio[2], emb["shard001"][0].reshape(T, 2, 128).mean(1), rtol=1e-6)
    attrs = dict(g.attrs)
    assert attrs["T1"] == T1 and attrs["T"] == T and attrs["method"] == "avg" and attrs["split"] == "test"
    assert attrs["missing"] == {"v2": "no vggish features", "v7": "no clip_rn50 features and no vggish features"}


def test_pool_cli_stride(shards):
    root, maps, emb, ann = shards
    out = root / "pooled/stride/test.zarr"
    _pool_cli(root, ann, "stride", out)
    g = open_read(out)
    np.testing.assert_array_equal(g["visual"][1], maps["shard000"][0][[0, 2, 4]])   # v1, seconds 0, 2, 4
    np.testing.assert_array_equal(g["audio"][1], emb["shard000"][1][[0, 2, 4]])


def test_pool_cli_rejects_T_not_dividing_T1_and_writes_nothing(shards):
    root, _, _, ann = shards
    out = root / "pooled/avg/bad.zarr"
    with pytest.raises(ValueError, match=r"T1 \(6\) is not a multiple of T \(4\)"):
        _pool_cli(root, ann, "avg", out, T_=4)
    assert not out.exists()


def test_pool_cli_names_a_store_with_the_wrong_shape(shards):
    root, _, _, ann = shards
    g = open_new(root / "clip/shard001.zarr")
    g.create_array("maps", shape=(1, T1, 7, 7, 512), dtype="float16")
    write_strings(g, "video_id", ["v2"])
    with pytest.raises(ValueError, match=r"shard001.zarr: 'maps' has shape \(1, 6, 7, 7, 512\)"):
        _pool_cli(root, ann, "avg", root / "out.zarr")
