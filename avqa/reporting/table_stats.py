"""Every table's uncertainty from the runs' per-question predictions (the statistics themselves: avqa.reporting.stats).

The source of truth is each run's predictions.csv (question_id, type_key, answer_idx, pred_idx, correct): it must
hold exactly the test questions its metrics.json counts, and every row of a table must answer the same
questions (else the error names the run and a question that differs), so rows can be compared question by
question.

What a table gets (cells and comparisons are listed in full in the long file `table{N}_stats.csv`):
- every accuracy cell of a trained row: a 95% question-bootstrap interval (`{column}_low`, `{column}_high`);
- every published cell: the sampling interval one run with that accuracy would have on its split's test count
  (`kind` published; Wilson), so a step between papers can be read against single-run noise;
- every comparison (row vs. a reference row of the same encoder block): the paired difference in All and per
  group with its paired-bootstrap interval, the exact sign / McNemar test and its Holm-corrected p-value. Holm
  corrects each column (All, or one group) over all comparisons of the table.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from avqa.reporting import stats

# Table columns -> the statistics' cells (type keys, group names, All)
COLUMN_CELLS = {
    "A_Count": "A-Count", "A_Comp": "A-Comp", "A_Avg": "Audio",
    "V_Count": "V-Count", "V_Loc": "V-Loc", "V_Avg": "Visual",
    "AV_Exist": "AV-Ext", "AV_Loc": "AV-Loc", "AV_Count": "AV-Count", "AV_Comp": "AV-Comp", "AV_Temp": "AV-Temp",
    "AV_Avg": "Audio-Visual", "All_Avg": stats.ALL,
}
COMPARED_COLUMNS = ("All_Avg", "A_Avg", "V_Avg", "AV_Avg")     # the paired comparisons' columns
STATS_COLUMNS = ("kind", "method", "variant", "block", "reference", "column", "estimate", "low", "high",
                 "n_questions", "seeds", "b", "c", "p", "p_holm", "test_file")


@dataclass
class RowPredictions:
    """One table row's per-question correctness: (seeds, questions) over the table's question order."""
    method: str
    variant: str
    block: str
    seeds: list[int]
    question_ids: np.ndarray
    type_keys: np.ndarray
    correct: np.ndarray

    @property
    def scores(self) -> np.ndarray:
        return stats.question_scores(self.correct)


def read_predictions(run_dir: str | Path, metrics: dict) -> pd.DataFrame:
    """A run's checked predictions.csv, sorted by question_id: it must count what metrics.json counts."""
    from avqa.training.metrics import check_predictions

    path = Path(run_dir) / "predictions.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no predictions (every table row needs its runs' per-question "
                                f"predictions)")
    frame = check_predictions(pd.read_csv(path), str(path))
    duplicated = frame["question_id"].duplicated()
    if duplicated.any():
        raise ValueError(f"{path}: question_id {int(frame.loc[duplicated, 'question_id'].iloc[0])} appears twice")
    skipped = set(metrics.get("skipped_question_ids") or []) & set(frame["question_id"])
    if skipped:
        raise ValueError(f"{path}: question_id {min(skipped)} is listed as skipped in metrics.json but predicted")
    overall = metrics["overall"]
    if len(frame) != overall["count"] or int(frame["correct"].sum()) != overall["correct"]:
        raise ValueError(f"{path}: {len(frame)} questions, {int(frame['correct'].sum())} correct, but "
                         f"{Path(run_dir) / 'metrics.json'} counts {overall['count']} with {overall['correct']} "
                         f"correct")
    return frame.sort_values("question_id", kind="stable").reset_index(drop=True)


def row_predictions(method: str, variant: str, block: str, records: list[dict]) -> RowPredictions:
    """Stack the seeds of one row (records: avqa.reporting.tables.load_run) on their common question order."""
    frames = [read_predictions(r["dir"], r["metrics"]) for r in records]
    first = frames[0]
    for record, frame in zip(records[1:], frames[1:]):
        _same_questions(first, frame, f"{records[0]['dir']}", f"{record['dir']}")
    seeds = [int(r["metrics"].get("seed", r["run_config"].get("seed", -1))) for r in records]
    return RowPredictions(method, variant, block, seeds, first["question_id"].to_numpy(),
                          first["type_key"].to_numpy().astype(str),
                          np.stack([f["correct"].to_numpy(dtype=np.float64) for f in frames]))


def _same_questions(a: pd.DataFrame, b: pd.DataFrame, name_a: str, name_b: str) -> None:
    ids_a, ids_b = set(a["question_id"]), set(b["question_id"])
    if ids_a != ids_b:
        only_a, only_b = sorted(ids_a - ids_b), sorted(ids_b - ids_a)
        missing = (f"question_id {only_a[0]} is in {name_a} but not in {name_b}" if only_a
                   else f"question_id {only_b[0]} is in {name_b} but not in {name_a}")
        raise ValueError(f"predictions differ: {missing} ({len(only_a) + len(only_b)} questions differ); rows of "
                         f"one table must answer the same test questions")


def check_same_questions(rows: list[RowPredictions]) -> None:
    for row in rows[1:]:
        if not np.array_equal(row.question_ids, rows[0].question_ids):
            _same_questions(pd.DataFrame({"question_id": rows[0].question_ids}),
                            pd.DataFrame({"question_id": row.question_ids}), rows[0].variant, row.variant)


def compute(rows: list[RowPredictions], columns: list[str], comparisons: list[tuple[str, str]],
            n_resamples: int = stats.B_DEFAULT, seed: int = 0) -> pd.DataFrame:
    """The long statistics frame: one `cell` line per (row, column) and one `difference` line per
    (comparison, compared column). comparisons: (variant, reference variant) pairs."""
    if not rows:
        return pd.DataFrame(columns=STATS_COLUMNS)
    check_same_questions(rows)
    boot = stats.Bootstrap(rows[0].type_keys, n_resamples=n_resamples, seed=seed)
    sums = dict(zip((row.variant for row in rows), boot.type_sums_many(np.stack([row.scores for row in rows]))))
    by_variant = {row.variant: row for row in rows}
    lines = []
    for row in rows:
        for column in columns:
            interval = boot.interval(sums[row.variant], COLUMN_CELLS[column])
            if interval is not None:
                lines.append(_line("cell", row, "", column, interval))
    for variant, reference in comparisons:
        row, ref = by_variant[variant], by_variant[reference]
        for column in (c for c in COMPARED_COLUMNS if c in columns):
            cell = COLUMN_CELLS[column]
            diff = boot.difference(sums[variant], sums[reference], cell)
            if diff is None:
                continue
            members = np.isin(row.type_keys, stats.cell_types(cell))
            b, c, p = stats.sign_test(row.scores[members], ref.scores[members])
            lines.append(_line("difference", row, reference, column, diff, b=b, c=c, p=p))
    frame = pd.DataFrame(lines, columns=STATS_COLUMNS)
    differences = frame["kind"] == "difference"
    for column in frame.loc[differences, "column"].unique():
        family = differences & (frame["column"] == column)
        frame.loc[family, "p_holm"] = stats.holm(frame.loc[family, "p"].tolist())
    return frame


def _line(kind: str, row: RowPredictions, reference: str, column: str, interval: stats.Interval, b=None, c=None,
          p=None) -> dict:
    return {"kind": kind, "method": row.method, "variant": row.variant, "block": row.block, "reference": reference,
            "column": column, "estimate": interval.estimate, "low": interval.low, "high": interval.high,
            "n_questions": interval.n_questions, "seeds": " ".join(map(str, sorted(row.seeds))),
            "b": b, "c": c, "p": p, "p_holm": np.nan, "test_file": ""}


def published_lines(paper_rows: list[dict], columns: list[str], counts: dict[str, int]) -> pd.DataFrame:
    """`published` lines: each published cell with the Wilson interval of one run on `counts` (questions per
    type key of the test split the cell's source used; json_update's where the source does not say: see
    published_results.yaml's test_splits)."""
    lines = []
    for row in paper_rows:
        for column in columns:
            value = row.get(column)
            if value is None or pd.isna(value):
                continue
            n = sum(counts.get(key, 0) for key in stats.cell_types(COLUMN_CELLS[column]))
            low, high = stats.binomial_interval(float(value), n)
            lines.append({"kind": "published", "method": row["method"], "variant": row.get("paper_variant", ""),
                          "block": row["block"], "reference": row.get("reference", ""), "column": column,
                          "estimate": float(value), "low": low, "high": high, "n_questions": n, "seeds": "",
                          "b": None, "c": None, "p": None, "p_holm": np.nan,
                          "test_file": row.get("test_file", "unstated")})
    return pd.DataFrame(lines, columns=STATS_COLUMNS)
