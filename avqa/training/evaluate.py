"""Evaluation: predictions of a trained model on the test split -> accuracy per type, per group and overall.

Every accuracy is a MICRO average, as MUSIC-AVQA reports: correct / count over the pooled questions of the
cell. A group's accuracy is therefore not the mean of its types' accuracies (types have different sizes). Each
question is counted under its own type_key (and the group of that type), never under a template's guess.

predictions.csv columns: question_id, video_id, type_key, group, answer_idx, pred_idx, correct.
metrics.json: {"overall": {"correct", "count", "accuracy"}, "groups": {group: ...},
"types": {type_key: ...}, "n_questions", "n_skipped_missing_video", "skipped_question_ids" (the test questions
left out because their video could not be processed), "variant", "seed", "experiment", ..., "cost": {"params",
"gflops", "shapes"} (the model's trainable parameters and forward GFLOPs per question at the run's input shapes,
avqa.models.cost)}; accuracy is in percent (unrounded float), None for an empty cell.

`python -m avqa evaluate --run DIR` (re)evaluates DIR/model_best.pt on the test split named in DIR/run_config.json
when metrics.json is missing or older than the model (or with --force); `--predictions FILE` prints the metrics of
a predictions file.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from avqa.atomic import atomic_path, write_text_atomic
from avqa.training.dataset import eval_batches, iterate_batches
from avqa.training.metrics import PREDICTION_COLUMNS, check_predictions, evaluate_predictions  # noqa: F401
from avqa.runtime import autocast, resolve_device, to_device
from avqa.training.spec import build, load_run_config, split_dataset

logger = logging.getLogger(__name__)


# --- model predictions --------------------------------------------------------------------------------------
@torch.no_grad()
def predict(model: torch.nn.Module, dataset, batch_size: int, device: torch.device, precision: str = "fp32",
            num_workers: int = 0, desc: str = "predict") -> pd.DataFrame:
    """Argmax answers of `model` for every question of `dataset` (an avqa.training.dataset.AVQADataset)."""
    model.eval()
    batches = eval_batches(dataset.video_row, batch_size)
    preds = np.empty(len(dataset), dtype=np.int64)
    for rows, batch in zip(batches, tqdm(iterate_batches(dataset, batches, num_workers), total=len(batches),
                                         desc=desc, unit="batch", disable=None, leave=False)):
        with autocast(device, precision):
            logits = model(to_device(batch, device))["logits"]
        preds[rows] = logits.argmax(dim=-1).cpu().numpy()
    table = dataset.table
    return pd.DataFrame({
        "question_id": table["question_id"].to_numpy(np.int64),
        "video_id": table["video_id"].to_numpy(),
        "type_key": table["type_key"].to_numpy(),
        "group": table["group"].to_numpy(),
        "answer_idx": table["answer_idx"].to_numpy(np.int64),
        "pred_idx": preds,
        "correct": table["answer_idx"].to_numpy(np.int64) == preds,
    })


def write_outputs(run_dir: str | Path, predictions: pd.DataFrame, metrics: dict) -> None:
    """predictions.csv then metrics.json, each atomic: metrics.json's presence means the run is done."""
    run_dir = Path(run_dir)
    with atomic_path(run_dir / "predictions.csv") as tmp:
        predictions[list(PREDICTION_COLUMNS)].to_csv(tmp, index=False)
    write_text_atomic(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")


def load_weights(model: torch.nn.Module, checkpoint: str | Path) -> dict:
    """Load a checkpoint's "model" state (best.pt, model_best.pt) into `model`; returns the checkpoint's other
    entries (epoch, run_config, inputs, ...)."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model.load_state_dict(saved.pop("model"))
    return saved


def load_best_model(run_dir: str | Path, device: torch.device | None = None) -> tuple[torch.nn.Module, dict]:
    """The run's best-on-val model (DIR/model_best.pt, built from DIR/run_config.json) and its run spec, with
    the input fingerprint the model was trained on as "inputs"."""
    run_dir = Path(run_dir)
    best = run_dir / "model_best.pt"
    if not best.exists():
        raise FileNotFoundError(f"{run_dir}: no model_best.pt (train the run first)")
    spec = load_run_config(run_dir / "run_config.json")
    device = resolve_device(spec["device"]) if device is None else device
    model = build(spec)
    saved = load_weights(model, best)
    return model.to(device), dict(spec, inputs=saved.get("inputs"))


def evaluate_on_test(model: torch.nn.Module, spec: dict, device: torch.device, precision: str
                 ) -> tuple[pd.DataFrame, dict]:
    """Predictions and metrics of `model` on the run's test split (spec: the run spec, avqa.training.spec)."""
    test = split_dataset(spec, "test")
    predictions = predict(model, test, spec.get("eval_batch_size", spec["batch_size"]), device, precision,
                          spec.get("num_workers", 0), desc="test")
    metrics = evaluate_predictions(predictions, spec["annotations"]["test"])
    metrics.update({
        "n_skipped_missing_video": test.n_skipped_missing_video,
        "skipped_question_ids": test.skipped_question_ids,    # not in predictions.csv: their video failed
        "variant": spec["variant"], "label": spec.get("label", spec["variant"]), "seed": int(spec["seed"]),
        "experiment": spec["experiment"], "model": spec["model"], "dataset": spec.get("dataset"),
        "weights": spec.get("weights"), "pooling": spec.get("pooling"),
    })
    return predictions, metrics


def run_cost(spec: dict, model_factory: Callable[[dict], torch.nn.Module] = build) -> dict:
    """The run's model cost at its input shapes (avqa.models.cost), recorded in metrics.json: measured on a model
    freshly built from the spec on the CPU (the count does not depend on the weights; the global RNG is left as
    it was)."""
    from avqa.models.cost import input_shapes, measured_cost

    with torch.random.fork_rng(devices=[]):
        model = model_factory(spec)
    return measured_cost(model, input_shapes(spec["pooled"]["test"], spec.get("clip_texts")))


def evaluate_run(run_dir: str | Path, force: bool = False) -> dict:
    """Evaluate DIR/model_best.pt on the test split (unless metrics.json is newer) and write the outputs."""
    run_dir = Path(run_dir)
    best, metrics_path = run_dir / "model_best.pt", run_dir / "metrics.json"
    if not best.exists():
        raise FileNotFoundError(f"{run_dir}: no model_best.pt (train the run first)")
    if metrics_path.exists() and metrics_path.stat().st_mtime >= best.stat().st_mtime and not force:
        logger.info("%s is up to date", metrics_path)
        return json.loads(metrics_path.read_text())
    model, spec = load_best_model(run_dir)
    device = next(model.parameters()).device
    predictions, metrics = evaluate_on_test(model, spec, device, spec["precision"][device.type])
    metrics.update(inputs=spec["inputs"], cost=run_cost(spec))
    write_outputs(run_dir, predictions, metrics)
    return metrics


def _summary(metrics: dict) -> str:
    o = metrics["overall"]
    groups = ", ".join(f"{g} {c['accuracy']:.2f}" for g, c in metrics["groups"].items() if c["count"])
    return f"overall {o['accuracy']:.2f}% ({o['correct']}/{o['count']}); {groups}"


def _cli(args: argparse.Namespace) -> None:
    if args.predictions:
        metrics = evaluate_predictions(pd.read_csv(args.predictions), args.predictions)
        print(json.dumps(metrics, indent=2))
        return
    if not args.run:
        raise SystemExit("evaluate: give --run DIR or --predictions FILE")
    metrics = evaluate_run(args.run, force=args.force)
    print(f"{args.run}: {_summary(metrics)}")


def register(subparsers) -> None:
    parser = subparsers.add_parser("evaluate", help="test-set accuracy of a trained run (micro averages)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="run directory (run_config.json, model_best.pt)")
    parser.add_argument("--force", action="store_true", help="re-evaluate even if metrics.json is up to date")
    parser.add_argument("--predictions", help="print the metrics of this predictions.csv instead")
    parser.set_defaults(func=_cli)
