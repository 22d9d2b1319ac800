"""The report's figures from hand-made run directories: accuracy charts, training curves, attention pictures."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.container import BarContainer
from matplotlib.image import imread
from media_factory import make_video
from run_fixtures import make_run, rows_of
from training_fixtures import make_dataset, run_config

from avqa.reporting.attention import centre_square, pick_questions, run_attention, segment_seconds, video_frames
from avqa.cli import main
from avqa.models import build_model
from avqa.reporting.plots import accuracy_chart, read_table
from avqa.reporting.tables import TABLES, build_table, group_runs, write_table
from avqa.specs.reporting import CurvesSpec

PNG = b"\x89PNG\r\n\x1a\n"


def _png(path) -> np.ndarray:
    assert path.read_bytes()[:8] == PNG
    image = imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 100
    return image


@pytest.fixture()
def ablation_runs(tmp_path):
    runs = [make_run(tmp_path / "runs", "tass", s, c, label="TASS-Net", epochs=3) for s, c in ((0, 3), (1, 2))]
    runs += [make_run(tmp_path / "runs", "tass_no_cms", s, 1, label="w/o L_cms", epochs=3) for s in (0, 1)]
    return runs


def test_accuracy_chart_of_an_ablation_table_and_of_table1(ablation_runs, tmp_path, capsys):
    for name in ("table2", "table1"):
        csv = tmp_path / f"{name}.csv"
        write_table(TABLES[name], build_table(TABLES[name], group_runs([str(d) for d in ablation_runs])), csv)
        out = tmp_path / "plots" / f"{name}_accuracy.png"
        assert main(["plot-table", "--table", name, "--csv", str(csv), "--out", str(out)]) == 0
        _png(out)
    svg = tmp_path / "plots/table2_accuracy.svg"
    assert main(["plot-table", "--table", "table2", "--csv", str(tmp_path / "table2.csv"), "--out", str(svg)]) == 0
    assert "<svg" in svg.read_text()[:500]
    assert not list((tmp_path / "plots").glob(".*tmp*"))        # atomic: no temporary left behind


def test_accuracy_chart_is_a_grid_of_one_panel_per_question_type_group(tmp_path):
    """Table 1's 13 columns x 9 rows: four panels (Audio, Visual, Audio-Visual, All) on a shared y axis, each with
    its group's columns as tick labels and error bars from the statistics, a PNG narrower than 2000 px."""
    runs = [make_run(tmp_path / "runs", f"model{k}", s, (k + s) % 5, label=f"Model {k}") for k in range(9)
            for s in (0, 1)]
    csv = tmp_path / "table1.csv"
    write_table(TABLES["table1"], build_table(TABLES["table1"], group_runs([str(d) for d in runs]), full="model0",
                                              n_resamples=200), csv)
    table, stats = read_table(csv, TABLES["table1"]), pd.read_csv(tmp_path / "table1_stats.csv")
    fig = accuracy_chart(TABLES["table1"], table, stats)
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["Audio", "Visual", "Audio-Visual", "All"]
    assert [[t.get_text() for t in ax.get_xticklabels()] for ax in axes] == [
        ["A Count", "A Comp", "A Avg"], ["V Count", "V Loc", "V Avg"],
        ["AV Exist", "AV Loc", "AV Count", "AV Comp", "AV Temp", "AV Avg"], ["All Avg"]]
    assert all(ax.get_ylim() == (0, 100) for ax in axes)                       # one shared y axis
    assert [len(ax.patches) for ax in axes] == [9 * 3, 9 * 3, 9 * 6, 9 * 1]    # a bar per row and column
    bars = [[c for c in ax.containers if isinstance(c, BarContainer)] for ax in axes]
    assert all(len(b) == 9 and all(c.errorbar is not None for c in b) for b in bars)   # error bars kept
    assert sum(len(c.get_offsets()) for c in axes[0].collections if c.get_offsets().size) > 0  # published stars
    out = tmp_path / "table1_accuracy.png"
    assert main(["plot-table", "--table", "table1", "--csv", str(csv), "--stats", str(tmp_path / "table1_stats.csv"),
                 "--out", str(out)]) == 0
    height, width = _png(out).shape[:2]
    assert 800 <= width <= 2000 and height <= 1200, (width, height)
    table4 = build_table(TABLES["table4"], group_runs([str(d) for d in runs[:4]]), full="model0", n_resamples=200)
    axes = accuracy_chart(TABLES["table4"], table4).get_axes()               # the group averages: one each
    assert [[t.get_text() for t in ax.get_xticklabels()] for ax in axes] == [[c.header] for c in
                                                                              TABLES["table4"].columns]


def test_accuracy_chart_rejects_another_tables_csv(ablation_runs, tmp_path):
    csv = tmp_path / "table3.csv"
    write_table(TABLES["table3"], build_table(TABLES["table3"], group_runs([str(d) for d in ablation_runs])), csv)
    with pytest.raises(ValueError, match=r"table3.csv: not a table1 CSV \(missing columns \['A_Count'"):
        main(["plot-table", "--table", "table1", "--csv", str(csv), "--out", str(tmp_path / "t.png")])
    with pytest.raises(ValueError, match="not 'pdf'"):
        main(["plot-table", "--table", "table3", "--csv", str(csv), "--out", str(tmp_path / "t.pdf")])


def test_training_curves_from_train_logs(ablation_runs, tmp_path, capsys):
    out = tmp_path / "curves.png"
    spec = CurvesSpec(rows=rows_of(ablation_runs, {"tass": "TASS-Net (full)"})).to_json()
    assert main(["plot-curves", "--table", "table2", "--spec", spec, "--out", str(out)]) == 0
    assert "training curves of 4 runs" in capsys.readouterr().out
    _png(out)
    (ablation_runs[0] / "train_log.csv").unlink()
    with pytest.raises(FileNotFoundError, match="train_log.csv: no training log"):
        main(["plot-curves", "--table", "table2", "--spec", spec, "--out", str(out)])


def test_question_pick_segments_and_crop():
    predictions = pd.DataFrame({"question_id": [5, 3, 9, 4, 7, 8], "correct": [1, 0, 1, 1, 1, 0],
                                "group": ["Audio", "Audio", "Visual", "Audio-Visual", "Audio-Visual", "Visual"]})
    assert pick_questions(predictions, 4) == [4, 5, 9, 7]        # AV, A, V round robin, correct ones first
    assert pick_questions(predictions, 10) == [4, 5, 9, 7, 3, 8]
    assert segment_seconds(60, 10, "avg") == [3, 9, 15, 21, 27, 33, 39, 45, 51, 57]
    assert segment_seconds(60, 10, "stride")[:3] == [0, 6, 12]
    assert centre_square(np.zeros((240, 320, 3))).shape == (240, 240, 3)


def test_attention_picture_of_a_hand_made_tass_run(tmp_path, capsys):
    """A small TASS-Net (d_model 32) saved as a run's model_best.pt over hand-made test features and videos."""
    paths = make_dataset(tmp_path / "data", videos_per_split=(2, 2, 3), questions_per_video=3)
    options = {"d_model": 32, "heads": 2}
    spec = run_config(paths, model="tass", model_options=options, variant="tass", label="TASS-Net")
    run = tmp_path / "runs/tass/seed0"
    run.mkdir(parents=True)
    (run / "run_config.json").write_text(json.dumps(spec))
    torch.manual_seed(0)
    torch.save({"model": build_model("tass", **options).state_dict()}, run / "model_best.pt")
    test = pd.read_parquet(paths["annotations"]["test"])
    test.assign(correct=test.index % 2 == 0)[["question_id", "group", "correct"]].to_csv(
        run / "predictions.csv", index=False)
    videos = tmp_path / "videos"
    videos.mkdir()
    for video_id in test["video_id"].unique():
        make_video(videos / f"{video_id}.mp4", seconds=4, size=(96, 64))
    out = tmp_path / "plots/attention/tass_seed0.png"
    assert main(["plot-attention", "--run", str(run), "--videos-dir", str(videos), "--spec",
                 '{"questions": 2, "frame_backend": "torchcodec"}',
                 "--out", str(out)]) == 0
    assert "attention of 2 test questions" in capsys.readouterr().out
    _png(out)
    items, attrs = run_attention(run, 3)
    assert (attrs["T1"], attrs["T"]) == (4, 2) and len(items) == 3
    for item in items:
        assert item.spatial.shape == (2, 49) and np.allclose(item.spatial.sum(-1), 1, atol=1e-5)
        assert np.isclose(item.visual.sum(), 1) and np.isclose(item.audio.sum(), 1)
        assert np.isclose(item.joint.sum(), 1, atol=1e-5)       # one distribution over the 2T joint tokens
        assert item.question == f"q{item.question_id}" and item.answer.startswith("a")
    shown = {backend: video_frames(videos, test["video_id"].iloc[0], [0, 3], 4, backend)
             for backend in ("torchcodec", "decord")}               # the configured decoder: the same frames
    assert all(np.array_equal(a, b) for a, b in zip(shown["torchcodec"], shown["decord"]))
    assert shown["decord"][0].shape == (64, 64, 3)
    (videos / f"{test['video_id'].iloc[0]}.mp4").unlink()
    with pytest.raises(Exception, match="missing file"):
        main(["plot-attention", "--run", str(run), "--videos-dir", str(videos), "--spec",
              '{"questions": 3, "frame_backend": "decord"}',
              "--out", str(out)])
