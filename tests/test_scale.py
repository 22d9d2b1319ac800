"""The scale check: stand-in clips for every annotated id (avqa/data/standins.py), the overlay
workflow/configs/scale.yaml on the real annotation files, and benchmarks/scale_report.py."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from avqa import workflow as W
from avqa.data.annotations import load_annotations
from avqa.data.standins import base_of, make_standins
from avqa.specs.data import StandinsSpec
from avqa.features.media import decode_audio, decode_frames
from avqa.features.shards import write_shards
from benchmark_scripts import load_benchmark
from conftest import MUSIC_AVQA_DIR

ROOT = Path(__file__).resolve().parents[1]
DATA = MUSIC_AVQA_DIR


def parquet(tmp_path: Path, ids: list[str], name: str = "test") -> Path:
    path = tmp_path / f"{name}.parquet"
    pd.DataFrame({"video_id": ids, "question_id": range(len(ids))}).to_parquet(path)
    return path


def test_every_id_gets_a_decodable_linked_clip(tmp_path):
    ids = ["00000001", "00000002", "va0001", "00000002"]
    out = tmp_path / "standins"
    made = make_standins([parquet(tmp_path, ids)], out, seconds=2, width=64, height=48, fps=5, bases=2)
    assert made == {"videos": 3, "bases": 2}
    videos = sorted(p.name for p in (out / "videos").iterdir())
    assert videos == ["00000001.mp4", "00000002.mp4", "va0001.mp4"]
    for vid in ("00000001", "00000002", "va0001"):
        base = out / "bases" / f"base-{base_of(vid, 2):02d}.mp4"
        assert os.path.samefile(out / "videos" / f"{vid}.mp4", base)  # a link, not a copy
    clip = out / "videos" / "va0001.mp4"
    assert decode_frames(clip, T1=2).data.shape == (2, 48, 64, 3)
    assert decode_audio(clip, 16000, T1=2).data.shape == (2 * 16000,)
    assert not list(tmp_path.glob(".standins.tmp-*"))  # written atomically


def test_the_base_choice_is_stable_and_spread():
    ids = [f"{i:08d}" for i in range(800)]
    counts = pd.Series([base_of(v, 8) for v in ids]).value_counts()
    assert len(counts) == 8 and counts.min() > 60
    assert base_of("00000001", 8) == base_of("00000001", 8)


def test_odd_sizes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="even width and height"):
        make_standins([parquet(tmp_path, ["a"])], tmp_path / "s", seconds=2, width=63, height=48, fps=5, bases=2)


@pytest.mark.skipif(not DATA.exists(), reason=f"real MUSIC-AVQA annotations not present at {DATA} "
                                                 "(AVQA_MUSIC_AVQA_DIR)")
def test_the_overlay_covers_every_real_id(tmp_path):
    overlay = yaml.safe_load((ROOT / "workflow/configs/scale.yaml").read_text())
    assert overlay["music_avqa"]["annotations"] == {"train": "../shared/data/music_avqa/avqa-val.json",
                                                     "val": "../shared/data/music_avqa/avqa-val.json",
                                                     "test": "../shared/data/music_avqa/avqa-test.json"}
    config = {"dataset": "music_avqa", "results_dir": "results_scale", "music_avqa": overlay["music_avqa"]}
    assert W.videos_dir(config) == "results_scale/standins/videos"
    assert W.made_videos(config) == ["results_scale/standins"]
    assert W.made_videos({**config, "music_avqa": {"videos_dir": "v"}}) == []
    assert W.standins_spec(config) == StandinsSpec(seconds=2, width=96, height=72, video_fps=5, bases=8)
    files = []
    for split in ("val", "test"):
        rows = load_annotations(DATA / f"avqa-{split}.json")
        rows.to_parquet(tmp_path / f"{split}.parquet")
        files.append(tmp_path / f"{split}.parquet")
    out = tmp_path / "standins"
    s = overlay["music_avqa"]["standins"]
    made = make_standins(files, out, s["seconds"], s["width"], s["height"], s["video_fps"], s["bases"])
    assert made["videos"] == 7918
    manifest = write_shards(files, str(out / "videos"), 500, tmp_path / "shards.json", 0.05)
    assert manifest["missing"] == []
    assert sum(len(v) for v in manifest["shards"].values()) == 7918


@pytest.fixture(scope="module")
def report():
    return load_benchmark("scale_report")


def bench(path: Path, seconds: float, rss: float, cpu: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                    f"{seconds}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t50\t{cpu}\n")


def test_the_report_sums_stages_and_counts_links_once(report, tmp_path, capsys):
    bench(tmp_path / "benchmarks/extract/clip_rn50/shard-a.tsv", 10.0, 900.0, 18.0)
    bench(tmp_path / "benchmarks/extract/vggish/shard-a.tsv", 4.0, 1200.0, 7.0)
    bench(tmp_path / "benchmarks/shards.tsv", 1.5, 100.0, 1.0)
    bench(tmp_path / "benchmarks/extract/clip_rn50/shard-b.tsv", 6.0, 1000.0, 9.0)
    costs = report.stage_costs(tmp_path).set_index("stage")
    assert costs.loc["extract/clip_rn50"].tolist() == [2, 16.0, 10.0, 27.0, 1000.0]
    assert costs.loc["extract/vggish"].tolist() == [1, 4.0, 4.0, 7.0, 1200.0]
    assert costs.loc["shards", "jobs"] == 1
    clip = tmp_path / "standins/bases/base.mp4"
    clip.parent.mkdir(parents=True)
    clip.write_bytes(b"x" * 100_000)
    (tmp_path / "standins/videos").mkdir()
    for i in range(5):
        os.link(clip, tmp_path / f"standins/videos/{i}.mp4")
    assert report.disk_use(tmp_path)["standins"] == clip.stat().st_blocks * 512
    assert report.main([str(tmp_path)]) == 0
    assert "extract/vggish" in capsys.readouterr().out
