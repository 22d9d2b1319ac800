"""Training one run (variant x seed): Adam + StepLR, best-on-val checkpoint, resumable, then test evaluation.

`python -m avqa train (--run-config RUN.json | --run-config-json '{...}') --out results/runs/{exp}/{variant}/seed{s}`

The run spec (avqa.training.spec) says what to train on what; avqa.runtime says on which device and precision.

Outputs in --out: run_config.json; checkpoints/last.pt after every epoch (model, optimizer, scheduler, grad
scaler, RNG states, epoch, best, log) and checkpoints/best.pt; train_log.csv (epoch, lr, loss and each loss
term, train_accuracy, val_accuracy, seconds); at the end model_best.pt, predictions.csv and metrics.json on the
test split (avqa.training.evaluate), each written atomically, metrics.json last: its presence means the run is done.
metrics.json also records the model's cost, `cost: {params, gflops, shapes}` (trainable parameters and forward
GFLOPs per question at the run's own input shapes, avqa.models.cost), which the tables read.

Resume: checkpoints/last.pt is resumed only if it is the same run: the same run spec (avqa.training.spec.
run_identity: labels, device, threads and the like aside) AND the same input contents (avqa.digest: the
annotation files' bytes, the pooled and question stores' content digests, recorded in every checkpoint and in
metrics.json). Otherwise the log says why and training starts from scratch, so a changed input (another
synthetic seed, T, the annotations) is never answered with the old model. A resumed run continues after its
epoch with the saved RNG states; batches depend only on (seed, epoch), so a killed and resumed run ends with the
same weights and metrics as an uninterrupted one.
Determinism: random, numpy and torch are seeded from `seed`; torch.use_deterministic_algorithms(warn_only=True).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from avqa.atomic import atomic_path, write_text_atomic
from avqa.training.dataset import AVQADataset, QuestionBatchSampler, iterate_batches
from avqa.runtime import autocast, resolve_device, to_device
from avqa.training.evaluate import evaluate_on_test, load_weights, predict, run_cost, write_outputs
from avqa.digest import changed_keys, inputs_fingerprint
from avqa.training.spec import (OPTIONAL_FILE_INPUTS, OPTIONAL_STORE_INPUTS, RunSpecError, build, check_run_config, load_run_config,
                                run_identity, split_dataset)

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def rng_state() -> dict:
    return {"random": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict) -> None:
    random.setstate(state["random"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def stale_reason(ckpt: dict, spec: dict, inputs: dict[str, str]) -> str | None:
    """Why a checkpoint is not this run (None: it is): another run spec or other input contents."""
    spec_changes = changed_keys(run_identity(ckpt.get("run_config", {})), run_identity(spec))
    if spec_changes:
        return f"it was written for another run spec (changed: {', '.join(spec_changes)})"
    if "inputs" not in ckpt:
        return "it records no fingerprint of its inputs"
    input_changes = changed_keys(ckpt["inputs"], inputs)
    if input_changes:
        return f"its inputs have changed since (content of {', '.join(input_changes)})"
    return None


def save_atomic(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


# --- one epoch ----------------------------------------------------------------------------------------------
def train_epoch(model, dataset: AVQADataset, batches: list[np.ndarray], optimizer, scaler, device: torch.device,
                precision: str, num_workers: int, desc: str) -> dict[str, float]:
    """One pass over `batches`; returns sample-weighted mean loss terms and the train accuracy (percent)."""
    model.train()
    sums: dict[str, float] = {}
    seen = correct = 0
    for step, batch in enumerate(tqdm(iterate_batches(dataset, batches, num_workers), total=len(batches),
                                      desc=desc, unit="batch", disable=None, leave=False)):
        batch = to_device(batch, device)
        with autocast(device, precision):
            out = model(batch)
            total, terms = model.loss(batch, out)
        if not torch.isfinite(total):
            raise FloatingPointError(f"{desc}: non-finite loss {total.item()} at batch {step} (terms {terms})")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()
        size = int(batch["answer"].shape[0])
        seen += size
        correct += int((out["logits"].argmax(dim=-1) == batch["answer"]).sum())
        sums["loss"] = sums.get("loss", 0.0) + float(total.detach()) * size
        for name, value in terms.items():
            if name in ("total", "loss"):
                continue
            sums[f"loss_{name}"] = sums.get(f"loss_{name}", 0.0) + float(value) * size
    row = {name: value / seen for name, value in sums.items()}
    row["train_accuracy"] = 100.0 * correct / seen
    return row


def accuracy(predictions: pd.DataFrame) -> float:
    return 100.0 * float(predictions["correct"].mean())


# --- the run ------------------------------------------------------------------------------------------------
def train_run(spec: dict, out_dir: str | Path, model_factory: Callable[[dict], torch.nn.Module] | None = None,
              on_epoch_end: Callable[[int, dict], None] | None = None) -> dict:
    """Train (or resume) the run described by `spec` into `out_dir`, evaluate its best model on test.

    model_factory(spec) -> nn.Module defaults to `build` (the avqa.models registry). on_epoch_end(epoch, log_row)
    is called after each epoch's checkpoint is written (progress hooks, tests). Returns the test metrics.
    """
    spec = check_run_config(spec)
    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "run_config.json", json.dumps(spec, indent=2, sort_keys=True) + "\n")

    threads_before, deterministic_before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(spec["threads"])
    try:
        return _train(spec, out, ckpt_dir, model_factory or build, on_epoch_end)
    finally:
        torch.set_num_threads(threads_before)
        torch.use_deterministic_algorithms(deterministic_before)


def _train(spec, out: Path, ckpt_dir: Path, model_factory, on_epoch_end) -> dict:
    device = resolve_device(spec["device"])
    precision = spec["precision"][device.type]
    seed_everything(spec["seed"])
    model = model_factory(spec).to(device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=spec["lr"],
                                 betas=tuple(spec.get("betas", (0.9, 0.999))))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=spec["lr_step"], gamma=spec["lr_gamma"])
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16" and device.type == "cuda")
    state = {"epoch": 0, "best_val": -math.inf, "best_epoch": None, "log": []}

    last, best_path = ckpt_dir / "last.pt", ckpt_dir / "best.pt"
    inputs = inputs_fingerprint(spec["annotations"], spec["pooled"], spec["questions"],
                                {k: spec[k] for k in OPTIONAL_FILE_INPUTS if k in spec},
                                {k: spec[k] for k in OPTIONAL_STORE_INPUTS if k in spec})
    if last.exists():
        # On CPU first: the RNG states must stay CPU tensors; load_state_dict moves the rest to the device.
        ckpt = torch.load(last, map_location="cpu", weights_only=False)
        reason = stale_reason(ckpt, spec, inputs) or (None if best_path.exists() else f"no {best_path.name}")
        if reason:
            logger.warning("not resuming from %s: %s; training from scratch", last, reason)
            for stale in (last, best_path):
                stale.unlink(missing_ok=True)
        else:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            scaler.load_state_dict(ckpt["scaler"])
            state = {k: ckpt[k] for k in state}
            set_rng_state(ckpt["rng"])
            logger.info("resuming %s after epoch %d (best val %.2f at epoch %s)", out, state["epoch"],
                        state["best_val"], state["best_epoch"])

    data: dict[str, AVQADataset] = {}
    if state["epoch"] < spec["epochs"]:
        data = {split: split_dataset(spec, split) for split in ("train", "val")}
        sampler = QuestionBatchSampler(data["train"].video_row, spec["batch_size"], spec["questions_per_video"],
                                       seed=spec["seed"])
        logger.info("%s: %d train / %d val questions, %d batches per epoch, device %s (%s)", spec["variant"],
                    len(data["train"]), len(data["val"]), len(sampler), device, precision)
        if state["epoch"] == 0:  # a resumed model has its fitted statistics (and initial weights) in the checkpoint
            fit_inputs(model, data["train"], spec.get("norm_videos", 1000))
            if "init_from" in spec:
                initialise_from(model, spec["init_from"], spec.get("init_layers"))
    for epoch in range(state["epoch"], spec["epochs"]):
        started = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        desc = f"{spec['variant']} seed{spec['seed']} epoch {epoch + 1}/{spec['epochs']}"
        row = {"epoch": epoch + 1, "lr": lr}
        row.update(train_epoch(model, data["train"], sampler.batches(epoch), optimizer, scaler, device,
                               precision, spec["num_workers"], desc))
        val_acc = accuracy(predict(model, data["val"], spec.get("eval_batch_size", spec["batch_size"]), device,
                                   precision, spec["num_workers"], desc="val"))
        row["val_accuracy"] = val_acc
        row["seconds"] = round(time.perf_counter() - started, 3)
        state["log"].append(row)
        if val_acc > state["best_val"] or spec.get("best_on") == "last_epoch":
            state["best_val"], state["best_epoch"] = val_acc, epoch + 1
            save_atomic({"model": model.state_dict(), "epoch": epoch + 1, "val_accuracy": val_acc,
                         "run_config": spec, "inputs": inputs}, best_path)
        scheduler.step()
        state["epoch"] = epoch + 1
        save_atomic({**state, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "rng": rng_state(),
                     "run_config": spec, "inputs": inputs}, last)
        write_log(out / "train_log.csv", state["log"])
        logger.info("epoch %d: loss %.4f train %.2f%% val %.2f%% (%.1f s)", epoch + 1, row["loss"],
                    row["train_accuracy"], val_acc, row["seconds"])
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
    data.clear()  # release the train/val features (possibly held in RAM) before the test split is loaded
    return finish(spec, out, model, best_path, state, device, precision, inputs, model_factory)


def fit_inputs(model: torch.nn.Module, train: AVQADataset, max_videos: int) -> None:
    """Fit the model's per-channel input standardisation (avqa.models.blocks.Standardize) on the train split."""
    from avqa.models.blocks import fit_input_stats, input_sources

    sources = input_sources(model)
    if sources:
        fitted = fit_input_stats(model, train.input_stats(sorted(sources), max_videos))
        logger.info("input statistics fitted on the train split: %s", ", ".join(sorted(set(fitted))))


def initialise_from(model: torch.nn.Module, checkpoint: str | Path, layers: dict[str, str] | None = None
                    ) -> list[str]:
    """Initialise `model` from another run's checkpoint: exactly `layers` ({layer of model: layer of the
    checkpoint's model}, avqa.models.transfer: TASS-Net from AVST's grounding run) when given; else the model's
    own rule when it has one (`load_pretrained(state_dict)`: AVST's QA run from its grounding run), else every
    entry whose name and shape match. Logs and returns what was taken."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["model"]
    if layers:
        from avqa.models.transfer import copy_layers

        taken = copy_layers(model, state, layers, source=str(checkpoint))
    elif hasattr(model, "load_pretrained"):
        taken = model.load_pretrained(state)
    else:
        own = model.state_dict()
        matching = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(matching, strict=False)
        taken = sorted(matching)
    logger.info("initialised %d tensors from %s: %s", len(taken), checkpoint, ", ".join(taken))
    return taken


def write_log(path: Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)


def finish(spec, out: Path, model, best_path: Path, state: dict, device, precision, inputs: dict,
           model_factory: Callable[[dict], torch.nn.Module]) -> dict:
    """model_best.pt, train_log.csv, then predictions.csv and metrics.json (with the model's cost) of the best
    model on test."""
    with atomic_path(out / "model_best.pt") as tmp:
        shutil.copyfile(best_path, tmp)
    write_log(out / "train_log.csv", state["log"])
    load_weights(model, best_path)
    predictions, metrics = evaluate_on_test(model, spec, device, precision)
    metrics.update({"best_epoch": state["best_epoch"], "best_val_accuracy": state["best_val"],
                    "epochs": spec["epochs"], "inputs": inputs, "cost": run_cost(spec, model_factory)})
    write_outputs(out, predictions, metrics)
    o = metrics["overall"]
    logger.info("%s seed %d: test accuracy %.2f%% (%d/%d), best epoch %s", spec["variant"], spec["seed"],
                o["accuracy"], o["correct"], o["count"], state["best_epoch"])
    return metrics


def _cli(args: argparse.Namespace) -> None:
    if args.run_config:
        spec = load_run_config(args.run_config)
    else:
        try:
            spec = check_run_config(json.loads(args.run_config_json), "--run-config-json")
        except json.JSONDecodeError as err:
            raise RunSpecError(f"--run-config-json: not valid JSON ({err})") from None
    metrics = train_run(spec, args.out)
    o = metrics["overall"]
    print(f"{args.out}: test accuracy {o['accuracy']:.2f}% ({o['correct']}/{o['count']})")


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train one (variant, seed) run and evaluate it on test",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run-config", help="run config JSON file (schema in this module's docstring)")
    source.add_argument("--run-config-json", help="the run config as a JSON string")
    parser.add_argument("--out", required=True, help="run directory, e.g. results/runs/EXP/VARIANT/seed0")
    parser.set_defaults(func=_cli)
