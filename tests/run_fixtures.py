"""Hand-made finished run directories (metrics.json, predictions.csv, run_config.json, train_log.csv) for the table and plot tests.

Each of the 9 question types gets n test questions, `correct_per_type` of them answered right, so every type,
group and overall accuracy of a run is exactly 100 * correct_per_type / n.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from avqa.training.metrics import evaluate_predictions
from avqa.data.vocab import QUESTION_TYPES


def make_run(root: Path, variant: str, seed: int, correct_per_type: int, label: str = "TASS-Net", n: int = 4,
             epochs: int = 0, **run_config) -> Path:
    """root/variant/seed{seed}/ with metrics.json, predictions.csv and run_config.json (+ train_log.csv of `epochs`
    rows)."""
    rows = []
    for group, _, key in QUESTION_TYPES:
        for i in range(n):
            rows.append({"question_id": len(rows), "video_id": "v", "type_key": key, "group": group,
                         "answer_idx": 1, "pred_idx": 1 if i < correct_per_type else 2})
    metrics = evaluate_predictions(pd.DataFrame(rows))
    metrics.update({"variant": variant, "label": label, "seed": seed, "experiment": "exp",
                    "n_skipped_missing_video": 0})
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
