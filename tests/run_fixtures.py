"""Hand-made finished run directories (metrics.json, predictions.csv, run_config.json, train_log.csv) for the table and plot tests.

Each of the 9 question types gets n test questions, `correct_per_type` of them answered right, so every type,
group and overall accuracy of a run is exactly 100 * correct_per_type / n.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from avqa.reporting.tables import group_runs
from avqa.specs.reporting import ResultsTableSpec, TableRow
from avqa.training.metrics import evaluate_predictions
from avqa.vocab import QUESTION_TYPES


# What a finished run records of its model (avqa.training.evaluate.run_cost); a made-up model's numbers.
COST = {"params": 2_500_000, "gflops": 0.75, "shapes": {"T": 10, "map": [7, 7, 2048], "tokens": None}}


def make_run(root: Path, variant: str, seed: int, correct_per_type: int, label: str = "TASS-Net", n: int = 4,
             epochs: int = 0, cost: dict | None = COST, **run_config) -> Path:
    """root/variant/seed{seed}/ with metrics.json (its `cost`, left out when None), predictions.csv and
    run_config.json (+ train_log.csv of `epochs` rows)."""
    rows = []
    for group, _, key in QUESTION_TYPES:
        for i in range(n):
            rows.append({"question_id": len(rows), "video_id": "v", "type_key": key, "group": group,
                         "answer_idx": 1, "pred_idx": 1 if i < correct_per_type else 2})
    metrics = evaluate_predictions(pd.DataFrame(rows))
    metrics.update({"variant": variant, "label": label, "seed": seed, "experiment": "exp",
                    "n_skipped_missing_video": 0, **({"cost": cost} if cost is not None else {})})
    run = root / variant / f"seed{seed}"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps(metrics))
    predictions = pd.DataFrame(rows)
    predictions["correct"] = predictions["answer_idx"] == predictions["pred_idx"]
    predictions.to_csv(run / "predictions.csv", index=False)
    (run / "run_config.json").write_text(json.dumps({
        "variant": variant, "label": label, "seed": seed, "experiment": "exp", "dataset": "synthetic",
        "weights": "random", **run_config}))
    if epochs:
        pd.DataFrame([{"epoch": e, "lr": 2e-4, "loss": 3.0 / e + seed, "loss_qa": 2.5 / e, "loss_cms": 0.1 / e,
                       "loss_match": 0.4 / e, "train_accuracy": 20.0 + 5 * e, "val_accuracy": 15.0 + 4 * e,
                       "seconds": 1.0} for e in range(1, epochs + 1)]).to_csv(run / "train_log.csv", index=False)
    return run


def rows_of(run_dirs, labels: dict[str, str] | None = None) -> tuple[TableRow, ...]:
    """Table rows of run directories, grouped by the variant each records, with the given labels (else None)."""
    labels = labels or {}
    return tuple(TableRow(variant=g.variant, label=labels.get(g.variant), runs=tuple(map(str, g.runs)))
                 for g in group_runs([str(d) for d in run_dirs]))


def table_spec_args(run_dirs, labels: dict[str, str] | None = None, full: tuple[str, ...] = ("tass",),
                    compare: dict[str, str] | None = None, baseline: str | None = None) -> list[str]:
    """`--spec JSON` of the `table` command for these runs (as avqa.workflow.table_spec builds it from config)."""
    spec = ResultsTableSpec(rows=rows_of(run_dirs, labels), full=tuple(full),
                            compare=tuple((compare or {}).items()), baseline=baseline)
    return ["--spec", spec.to_json()]
