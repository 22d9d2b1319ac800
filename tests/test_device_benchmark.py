"""benchmarks/device.py: the one-command device benchmark runs at tiny size on this CPU and its table is consistent."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def device_bench():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("device", ROOT / "benchmarks" / "device.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["device"] = module   # the host-decode pool's children import it by this name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_report(device_bench, tmp_path_factory):
    out = tmp_path_factory.mktemp("device") / "report.json"
    return device_bench.main(["--size", "tiny", "--device", "cpu", "--threads", "1", "--workers", "1",
                              "--clips", str(out.parent / "none"), "--out", str(out)]), out


def by_setting(report: dict) -> dict:
    return {(r["part"], r["setting"]): r for r in report["rows"]}


def test_tiny_run_has_every_row_and_skips_only_the_gpu_decoder(tiny_report):
    report, out = tiny_report
    rows = by_setting(report)
    expected = {("model", "clip_rn50"), ("model", "vggish"), ("host decode", "decord direct, 1 processes"),
                ("extraction", "clip_rn50, decord"), ("extraction", "clip_rn50, torchcodec cpu"),
                ("extraction", "clip_rn50, torchcodec cuda"), ("extraction", "vggish, torchcodec audio"),
                ("extraction", "vggish, ffmpeg audio"),
                ("train", "loader, 0 workers"), ("train", "TASS-Net step, bf16"),
                ("train", "epoch (45,867 questions)")}
    assert set(rows) == expected
    assert rows[("extraction", "clip_rn50, torchcodec cuda")]["status"] == "skipped"
    assert rows[("extraction", "clip_rn50, torchcodec cuda")]["note"] == "no CUDA device"
    assert all(r["status"] == "ok" for key, r in rows.items() if key[1] != "clip_rn50, torchcodec cuda"), rows
    assert report["setup"]["device"] == "cpu" and report["T1"] == 4
    assert out.is_file()


def test_numbers_are_positive_and_projections_follow_from_the_rates(device_bench, tiny_report):
    report, _ = tiny_report
    ok = [r for r in report["rows"] if r["status"] == "ok"]
    for r in ok:
        assert r["rate"] > 0, r
    for r in ok:
        if r["part"] in ("model", "host decode", "extraction"):
            assert r["projection_h"] * 3600 * r["rate"] == pytest.approx(device_bench.MUSIC_AVQA_VIDEOS), r
        if r["part"] in ("host decode", "extraction"):
            assert r["decode_cpu_per_clip"] > 0 and r["host_cores"] > 0, r
        if r["part"] == "extraction":
            assert 0 < r["busy"] <= 1 and r["decode_only_rate"] > 0 and r["videos"] == 2, r
    rows = by_setting(report)
    loader = rows[("train", "loader, 0 workers")]["rate"]
    step = rows[("train", "TASS-Net step, bf16")]
    epoch = rows[("train", "epoch (45,867 questions)")]
    assert step["questions"] == 64 and step["rate"] * step["step_s"] == pytest.approx(64)  # one batch a step
    # no loader workers: the batches are built between steps, so their times add
    assert epoch["rate"] == pytest.approx(1 / (1 / loader + 1 / step["rate"]))
    assert epoch["loader_over_step"] == pytest.approx(loader / step["rate"])
    assert epoch["projection_h"] * 3600 * epoch["rate"] == pytest.approx(device_bench.MUSIC_AVQA_QUESTIONS)
    clip = min(r["projection_h"] for r in ok if r["part"] == "extraction" and r["setting"].startswith("clip"))
    vggish = min(rows[("extraction", f"vggish, {name} audio")]["projection_h"] for name in ("ffmpeg", "torchcodec"))
    assert report["extraction_total_h"] == pytest.approx(clip + vggish)


def test_markdown_table_has_one_line_per_row(device_bench, tiny_report):
    report, _ = tiny_report
    text = device_bench.markdown(report)
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(lines) == 1 + len(report["rows"])       # header + rows
    assert all(line.count("|") == len(device_bench.COLUMNS) + 1 for line in lines)
    assert "no CUDA device" in text and "projection (h)" in text


def test_missing_pieces_are_skipped_rows_naming_why(device_bench):
    modules = {name: "ok 1" for name in device_bench.MODULES}
    setup = {"modules": {**modules, "torchcodec": "missing (ImportError: libavutil.so.58)", "decord": "missing"},
             "ffmpeg": None, "ffprobe": None}
    cpu = device_bench.torch.device("cpu")
    assert device_bench.have(setup, "open_clip") is None
    assert device_bench.have(setup, "decord", "zarr") == "decord missing"
    assert "libavutil" in device_bench.backend_unavailable("torchcodec cpu", device_bench.BACKENDS["torchcodec cpu"],
                                                          setup, cpu)
    setup["modules"]["decord"] = "ok 0.6.0"
    assert "ffprobe" in device_bench.backend_unavailable("decord", device_bench.BACKENDS["decord"], setup, cpu)
    rows = device_bench.extraction_rows({}, device_bench.SIZES["tiny"], cpu, setup, Path("."), [], 0, Path("."))
    assert [r["status"] for r in rows] == ["skipped"] * 5
    assert "no ffmpeg binary" in rows[-1]["note"] and "libavutil" in rows[-2]["note"]   # ffmpeg / torchcodec audio
    assert device_bench.extraction_total(rows) == (None, "")
    # no pipeline row (the GPU box): the bound from the model rows and the host's decoding
    parts = rows + [device_bench.row("model", "clip_rn50", status="ok", rate=2.0, projection_h=9288 / 2 / 3600),
                    device_bench.row("model", "vggish", status="ok", rate=8.0, projection_h=9288 / 8 / 3600),
                    device_bench.row("host decode", "decord direct, 15 processes", status="ok", rate=1.0)]
    hours, what = device_bench.extraction_total(parts)
    assert hours == pytest.approx((9288 / 1.0 + 9288 / 8.0) / 3600) and what.startswith("bound")


@pytest.mark.parametrize("encoder", ["torchcodec", "opencv"])
def test_clips_without_ffmpeg_are_made_with_what_travels_and_move(device_bench, tmp_path, encoder):
    import decord

    if encoder == "opencv":
        # OpenCV is the GPU box's last way to make clips (its image has opencv-python-headless); avqa does not
        # depend on it, so here the case runs only where someone installed it
        pytest.importorskip("cv2", reason="OpenCV is not a dependency; the GPU box has it")
    else:
        pytest.importorskip("torchcodec.encoders", reason="the torchcodec extra is not installed")
    setup = {"ffmpeg": None, "modules": {"torchcodec": "ok" if encoder == "torchcodec" else "missing"}}
    size = device_bench.SIZES["tiny"]
    clips, how = device_bench.make_clips(tmp_path, size, setup)
    assert how.lower().startswith(encoder) and len(clips) == 1
    reader = decord.VideoReader(str(clips[0]))
    assert len(reader) == size.clip_seconds * 25
    assert reader[0].shape == (size.clip_size[1], size.clip_size[0], 3)
    frames = reader.get_batch([0, 1, 50]).asnumpy().astype(float)
    assert np.abs(frames[1] - frames[0]).mean() > 1 and np.abs(frames[2] - frames[0]).mean() > 1


def test_config_is_read_without_snakemake_as_with_it(monkeypatch, tmp_path):
    """The GPU box has no snakemake: avqa.workflow.load_config validates with jsonschema and fills the schema's
    defaults exactly as the Snakefile's snakemake.utils.validate does."""
    import copy
    import sys

    import yaml
    from snakemake.utils import validate

    from avqa import workflow as W

    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    del raw["features"]["decode"]["deblock"], raw["features"]["max_missing_fraction"], raw["weights_bn3_gamma"]
    (tmp_path / "omits.yaml").write_text(yaml.safe_dump(raw))
    by_snakemake = copy.deepcopy(raw)
    validate(by_snakemake, str(W.SCHEMA))
    monkeypatch.setitem(sys.modules, "snakemake", None)            # import snakemake now fails, as on the GPU box
    monkeypatch.setitem(sys.modules, "snakemake.utils", None)
    assert W.load_config(tmp_path / "omits.yaml") == by_snakemake
    assert by_snakemake["features"]["decode"]["deblock"] is True and by_snakemake["weights_bn3_gamma"] == 0.3
    broken = tmp_path / "config.yaml"
    broken.write_text(yaml.safe_dump({**raw, "features": {**raw["features"], "T1": "sixty"}}))
    with pytest.raises(W.ConfigError, match="sixty"):
        W.load_config(broken)
