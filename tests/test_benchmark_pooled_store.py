"""Smoke test of benchmarks/pooled_store.py at a tiny scale (a few videos), so the benchmark cannot rot."""
from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("pooled_store")


def test_tiny_run_reports_every_part(bench, tmp_path, capsys):
    out = tmp_path / "report.json"
    report = bench.main(["--scale", "0.0006", "--frames", "2", "--bank-videos", "3", "--reads", "2",
                         "--batches", "2", "--batch-rounds", "1", "--model-steps", "1", "--workers", "0",
                         "--codec-videos", "3", "--codec-rounds", "1", "--baseline", str(tmp_path / "absent.zarr"),
                         "--workdir", str(tmp_path), "--out", str(out)])
    assert report["videos"] == 6
    assert json.loads(out.read_text()) == report
    assert json.loads(capsys.readouterr().out) == report  # stdout is the JSON alone (the table goes to stderr)
    assert {"maps", "write", "random_read_ms", "batch_read_ms", "loader", "model", "loader_over_model",
            "gpu_need", "codecs"} <= set(report)
    assert report["write"]["videos"] == 6 and report["write"]["gb_per_s_buffered"] > 0
    assert report["maps"]["zstd0_is_zstd3"] is True
    for temp in ("cold", "warm"):
        assert report["random_read_ms"][temp]["median"] > 0
    assert set(report["loader"]) == {"orthogonal", "per_video"}
    for variant in report["loader"].values():
        assert set(variant) == {"k1_w0", "k16_w0"}
        assert all(rates["questions_per_s_cold"] > 0 and rates["questions_per_s_warm"] > 0
                   for rates in variant.values())
    assert set(report["model"]) == {"k1", "k16"}
    assert set(report["codecs"]) == {"clip_random_rn50", "clip_random_rn50_half_zeros"}  # no baseline store
    for codecs in report["codecs"].values():
        assert set(codecs) == set(bench.CODECS)
        assert codecs["none"]["ratio"] == pytest.approx(1.0, abs=0.01)  # no compressor: the raw bytes
    assert list(tmp_path.iterdir()) == [out]  # the stores are deleted


def test_per_video_reads_equal_the_orthogonal_selection(bench, tmp_path):
    bank = np.random.default_rng(0).random((3, bench.T, *bench.MAP), dtype=np.float32).astype(np.float16)
    bench.write_store(tmp_path / "p.zarr", bank, 5, "none")
    visual = bench.open_read(tmp_path / "p.zarr")["visual"]
    rows = np.array([0, 3, 4])
    np.testing.assert_array_equal(bench.read_per_video(visual, rows), visual.get_orthogonal_selection((rows,)))
    np.testing.assert_array_equal(bench.read_per_video(visual, rows)[1], bank[0])  # video 3 = bank[3 % 3]


def test_sparser_zeroes_the_smallest_values(bench):
    maps = np.arange(1, 101, dtype=np.float16).reshape(1, 100)
    half = bench.sparser(maps, 0.5)
    assert (half == 0).mean() == pytest.approx(0.5, abs=0.01)
    assert (half[half > 0] >= 50).all()
