"""Evaluation arithmetic: micro averages per type, group and overall, with counts; checks and the CLI."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from avqa.cli import main
from avqa.training.evaluate import PREDICTION_COLUMNS, evaluate_predictions
from avqa.vocab import QUESTION_TYPES

# (type_key, group, answer_idx, pred_idx) — hand-made so that micro and macro averages differ.
ROWS = (
    [("A-Count", "Audio", 3, 3)] * 3 + [("A-Count", "Audio", 3, 4)]          # A-Count 3/4
    + [("A-Comp", "Audio", 0, 1)]                                              # A-Comp 0/1
    + [("V-Loc", "Visual", 5, 5)] * 2                                          # V-Loc 2/2
    + [("AV-Temp", "Audio-Visual", 7, 7)] + [("AV-Temp", "Audio-Visual", 7, 8)] * 3   # AV-Temp 1/4
    + [("AV-Ext", "Audio-Visual", 1, 1)]                                       # AV-Ext 1/1
)


def _predictions() -> pd.DataFrame:
    frame = pd.DataFrame(ROWS, columns=["type_key", "group", "answer_idx", "pred_idx"])
    frame.insert(0, "question_id", range(len(frame)))
    frame.insert(1, "video_id", [f"v{i % 3}" for i in range(len(frame))])
    frame["correct"] = frame["answer_idx"] == frame["pred_idx"]
    return frame[list(PREDICTION_COLUMNS)]


def test_micro_averages_per_type_group_and_overall():
    metrics = evaluate_predictions(_predictions())
    assert metrics["types"]["A-Count"] == {"correct": 3, "count": 4, "accuracy": 75.0}
    assert metrics["types"]["A-Comp"] == {"correct": 0, "count": 1, "accuracy": 0.0}
    # Audio: micro 3/5 = 60 (the macro mean of 75 and 0 would be 37.5)
    assert metrics["groups"]["Audio"] == {"correct": 3, "count": 5, "accuracy": 60.0}
    assert metrics["groups"]["Visual"] == {"correct": 2, "count": 2, "accuracy": 100.0}
    # Audio-Visual: micro 2/5 = 40 (macro of 25 and 100 would be 62.5)
    assert metrics["groups"]["Audio-Visual"] == {"correct": 2, "count": 5, "accuracy": 40.0}
    # overall: 7/12 (macro over groups would be 66.67, over types 60)
    assert metrics["overall"]["correct"] == 7 and metrics["overall"]["count"] == 12
    assert metrics["overall"]["accuracy"] == pytest.approx(100 * 7 / 12)
    assert metrics["n_questions"] == 12


def test_all_nine_types_reported_empty_ones_with_count_zero():
    metrics = evaluate_predictions(_predictions())
    assert list(metrics["types"]) == [key for _, _, key in QUESTION_TYPES]
    assert metrics["types"]["V-Count"] == {"correct": 0, "count": 0, "accuracy": None}
    assert sum(c["count"] for c in metrics["types"].values()) == 12
    assert sum(c["count"] for c in metrics["groups"].values()) == 12


def test_each_sample_counts_under_its_own_type_key():
    frame = _predictions()
    frame.loc[0, ["type_key", "group"]] = ["V-Count", "Visual"]   # one correct A-Count relabelled
    metrics = evaluate_predictions(frame)
    assert metrics["types"]["A-Count"]["count"] == 3 and metrics["types"]["V-Count"] == {
        "correct": 1, "count": 1, "accuracy": 100.0}
    assert metrics["groups"]["Visual"]["count"] == 3


@pytest.mark.parametrize(("edit", "message"), [
    (lambda f: f.loc.__setitem__((2, "type_key"), "A-Loc"), r"question_id 2 has unknown type_key 'A-Loc'"),
    (lambda f: f.loc.__setitem__((5, "group"), "Audio"), r"question_id 5 has group 'Audio' but type_key 'V-Loc'"),
    (lambda f: f.loc.__setitem__((4, "correct"), True), r"question_id 4: 'correct' disagrees"),
    (lambda f: f.pop("pred_idx"), r"missing columns \['pred_idx'\]"),
])
def test_bad_predictions_are_named(edit, message):
    frame = _predictions()
    edit(frame)
    with pytest.raises(ValueError, match=message):
        evaluate_predictions(frame, "preds.csv")


def test_cli_prints_the_metrics_of_a_predictions_file(tmp_path, capsys):
    path = tmp_path / "predictions.csv"
    _predictions().to_csv(path, index=False)
    assert main(["evaluate", "--predictions", str(path)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["groups"]["Audio"]["accuracy"] == 60.0 and metrics["overall"]["count"] == 12
