"""Micro-averaged accuracy from per-question predictions, without torch (reporting reads predictions too).

predictions.csv columns: question_id, video_id, type_key, group, answer_idx, pred_idx, correct. Every accuracy is
a MICRO average (correct / count over the pooled questions of the cell), each question counted under its own
type_key and that type's group.
"""
from __future__ import annotations

import pandas as pd

from avqa.vocab import GROUPS, QUESTION_TYPES

PREDICTION_COLUMNS = ("question_id", "video_id", "type_key", "group", "answer_idx", "pred_idx", "correct")
GROUP_OF_TYPE = {key: group for group, _, key in QUESTION_TYPES}


def _cell(correct: int, count: int) -> dict:
    return {"correct": int(correct), "count": int(count),
            "accuracy": 100.0 * correct / count if count else None}


def check_predictions(predictions: pd.DataFrame, source: str = "predictions") -> pd.DataFrame:
    """Validate columns, type keys vs. groups and the `correct` column; returns the frame with `correct` bool."""
    absent = [c for c in ("question_id", "type_key", "answer_idx", "pred_idx") if c not in predictions.columns]
    if absent:
        raise ValueError(f"{source}: missing columns {absent}")
    frame = predictions.copy()
    unknown = ~frame["type_key"].isin(GROUP_OF_TYPE)
    if unknown.any():
        row = frame[unknown].iloc[0]
        raise ValueError(f"{source}: question_id {row['question_id']} has unknown type_key {row['type_key']!r}")
    expected_group = frame["type_key"].map(GROUP_OF_TYPE)
    if "group" in frame.columns:
        wrong = frame["group"] != expected_group
        if wrong.any():
            row = frame[wrong].iloc[0]
            raise ValueError(f"{source}: question_id {row['question_id']} has group {row['group']!r} but type_key "
                             f"{row['type_key']!r} belongs to {GROUP_OF_TYPE[row['type_key']]!r}")
    frame["group"] = expected_group
    correct = frame["answer_idx"].to_numpy() == frame["pred_idx"].to_numpy()
    if "correct" in frame.columns and (frame["correct"].astype(bool).to_numpy() != correct).any():
        row = frame[frame["correct"].astype(bool).to_numpy() != correct].iloc[0]
        raise ValueError(f"{source}: question_id {row['question_id']}: 'correct' disagrees with answer_idx/pred_idx")
    frame["correct"] = correct
    return frame


def evaluate_predictions(predictions: pd.DataFrame, source: str = "predictions") -> dict:
    """Micro-averaged accuracy per type (9), per group (3) and overall, with counts."""
    frame = check_predictions(predictions, source)
    by_type = frame.groupby("type_key")["correct"].agg(["sum", "count"])
    by_group = frame.groupby("group")["correct"].agg(["sum", "count"])

    def cell(table: pd.DataFrame, key: str) -> dict:
        return _cell(table.loc[key, "sum"], table.loc[key, "count"]) if key in table.index else _cell(0, 0)

    return {
        "overall": _cell(frame["correct"].sum(), len(frame)),
        "groups": {g: cell(by_group, g) for g in GROUPS},
        "types": {key: cell(by_type, key) for _, _, key in QUESTION_TYPES},
        "n_questions": int(len(frame)),
    }
