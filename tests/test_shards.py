"""Extraction shards: content-defined and named by their videos, so a changed annotation file re-extracts only
the shards whose videos changed; a wrong videos folder stops before extraction; any container is found."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from avqa.cli import main as cli
from avqa.features.shards import MissingVideosError, cut_points, make_shards, write_shards
from avqa.features.videos import AmbiguousVideoError, find_video, index_videos, resolve
from avqa.paths import Layout
from avqa.specs.features import ShardsSpec

ROOT = Path(__file__).resolve().parents[1]
IDS = [f"{i:08d}" for i in range(400)]


def test_cuts_are_content_defined_so_one_insertion_changes_one_shard():
    runs = cut_points(IDS, 20)
    assert sum(runs, []) == IDS and max(map(len, runs)) <= 40 and 10 <= len(runs) <= 40
    before = make_shards(IDS, 20)
    for extra in ("00000123x", "00000300y", "00000007z"):
        after = make_shards(sorted(IDS + [extra]), 20)
        gone, new = set(before) - set(after), set(after) - set(before)
        # the shard holding the new id changes (split in two if the id is itself a cut; a run cut at its maximum
        # size passes its last id on to the next one), every other shard keeps its name and videos
        assert 1 <= len(gone) <= 2 and 1 <= len(new) <= 3 and len(after) - len(new) >= len(before) - 2
        assert sorted(sum((after[n] for n in new), [])) == sorted(sum((before[g] for g in gone), []) + [extra])
    assert make_shards(IDS, 20) == before                                 # deterministic


def test_a_shard_name_follows_its_files(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for vid in IDS[:6]:
        (videos / f"{vid}.mp4").write_bytes(b"x" * 10)
    first = write_shards(_annotations(tmp_path, IDS[:6]), str(videos), 100, tmp_path / "s.json", 0.05)
    (videos / f"{IDS[2]}.mp4").write_bytes(b"y" * 11)                     # a re-downloaded, different file
    second = write_shards(_annotations(tmp_path, IDS[:6]), str(videos), 100, tmp_path / "s.json", 0.05)
    assert list(first["shards"].values()) == list(second["shards"].values())
    assert list(first["shards"]) != list(second["shards"])


def test_a_wrong_videos_folder_stops_naming_it(tmp_path, capsys):
    ann = _annotations(tmp_path, IDS[:40])
    with pytest.raises(MissingVideosError, match=r"40 of 40 annotated videos \(100.0%\) have no file in "
                                                 r".*nowhere .*e.g. 00000000, 00000001"):
        write_shards(ann, str(tmp_path / "nowhere"), 10, tmp_path / "s.json", 0.05)
    spec = ShardsSpec(videos_dir=str(tmp_path / "nowhere"), videos_per_shard=10, max_missing_fraction=0.05)
    code = cli(["shards", "--annotations", *map(str, ann), "--spec", spec.to_json(), "--out", str(tmp_path / "s.json")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("avqa shards: error: 40 of 40 annotated videos")
    assert "Traceback" not in err and not (tmp_path / "s.json").exists()
    videos = tmp_path / "videos"
    videos.mkdir()
    for vid in IDS[:39]:                                                  # 1 of 40 missing: 2.5% <= 5%
        (videos / f"{vid}.mp4").touch()
    assert write_shards(ann, str(videos), 10, tmp_path / "s.json", 0.05)["missing"] == [IDS[39]]


def test_videos_are_found_by_id_in_any_container_and_duplicates_are_an_error(tmp_path):
    (tmp_path / "a.webm").touch()
    (tmp_path / "b.MKV").touch()
    (tmp_path / "c.mp4").touch()
    (tmp_path / "c.mov").touch()
    (tmp_path / "notes.txt").touch()
    index = index_videos(tmp_path)
    assert index == {"a": ["a.webm"], "b": ["b.MKV"], "c": ["c.mov", "c.mp4"]}
    assert resolve("a", index, tmp_path) == "a.webm" and resolve("zz", index, tmp_path) is None
    assert find_video(tmp_path, "a") == tmp_path / "a.webm"
    with pytest.raises(AmbiguousVideoError, match=r"video 'c' has 2 files \(c.mov, c.mp4\)"):
        find_video(tmp_path, "c")
    with pytest.raises(AmbiguousVideoError, match="'c'"):
        write_shards(_annotations(tmp_path, ["a", "b", "c"]), str(tmp_path), 10, tmp_path / "s.json", 0.05)


def _annotations(root: Path, ids: list[str], name: str = "a.parquet") -> list[Path]:
    path = root / name
    pd.DataFrame({"video_id": ids, "question_id": range(len(ids))}).to_parquet(path)
    return [path]


def _snakemake(workdir: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
                           str(workdir), "--cores", "1", *args], cwd=workdir, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_a_changed_annotation_file_re_extracts_only_the_changed_shard(tmp_path):
    """Real MUSIC-AVQA-format annotations, placeholder video files, finished extraction outputs; then one more
    video in the annotations: the dry run plans extraction of one shard per encoder, not all of them."""
    P = Layout()
    records = [{"video_id": vid, "question_id": i, "type": '["Audio", "Counting"]', "question_deleted": 0,
                "question_content": "How many musical instruments were heard throughout the video?",
                "templ_values": "[]", "anser": "two"} for i, vid in enumerate(IDS[:120])]
    data = tmp_path / "data"
    (data / "videos").mkdir(parents=True)
    for vid in IDS[:121]:
        (data / "videos" / f"{vid}.mp4").write_bytes(b"placeholder")
    for split in ("train", "val", "test"):
        (data / f"{split}.json").write_text(json.dumps(records))
    overlay = tmp_path / "real.yaml"
    overlay.write_text(json.dumps({"dataset": "music_avqa", "features": {"videos_per_shard": 10}, "music_avqa": {
        "videos_dir": str(data / "videos"), "drop_conflicting_duplicates": False,
        "annotations": {s: str(data / f"{s}.json") for s in ("train", "val", "test")}}}))
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    _snakemake(tmp_path, "--configfile", str(overlay), "--", P.shards())
    shards = json.loads((tmp_path / P.shards()).read_text())["shards"]
    assert len(shards) >= 5
    for name in shards:                                                  # pretend every shard was extracted
        for encoder in ("clip_rn50", "vggish"):
            (tmp_path / P.features(encoder, name)).mkdir(parents=True)
            (tmp_path / P.shard_failures(name, encoder)).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / P.shard_failures(name, encoder)).write_text("video_id\tstage\treason\n")
    first_plan = _snakemake(tmp_path, "--configfile", str(overlay), "-n", "--", "features")
    assert not re.search(r"^extract\s+\d+$", first_plan, flags=re.M), first_plan[-2000:]

    (data / "test.json").write_text(json.dumps(records + [dict(records[0], video_id=IDS[120], question_id=999)]))
    _snakemake(tmp_path, "--configfile", str(overlay), "--", P.shards())   # the checkpoint reruns for real
    planned = _snakemake(tmp_path, "--configfile", str(overlay), "-n", "--", "features")
    extract = re.search(r"^extract\s+(\d+)$", planned, flags=re.M)
    assert extract and int(extract.group(1)) == 2, planned[-2000:]       # one new shard x two encoders
    new = set(json.loads((tmp_path / P.shards()).read_text())["shards"]) - set(shards)
    assert len(new) == 1 and IDS[120] in json.loads((tmp_path / P.shards()).read_text())["shards"][new.pop()]
