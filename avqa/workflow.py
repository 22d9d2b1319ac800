"""Helpers the Snakefile calls: cross-field config checks and the values rules pass to `python -m avqa`.

The schema (workflow/schemas/config.schema.yaml) checks each key alone; `check_config` checks what a schema
cannot say (a table naming an unknown variant, T1 not a multiple of T). Everything a rule needs is derived from
the config here, so the rules stay thin and the derivations are unit-tested.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPLITS = ("train", "val", "test")
ENCODERS = ("clip_rn50", "vggish")


class ConfigError(ValueError):
    """A config value that passes the schema but cannot work."""


def check_config(config: dict) -> None:
    T1, T = config["features"]["T1"], config["preprocess"]["T"]
    if T1 % T:
        raise ConfigError(f"config: features.T1 ({T1}) must be a multiple of preprocess.T ({T})")
    for table, variants in config["tables"].items():
        unknown = [v for v in variants if v not in config["variants"]]
        if unknown:
            raise ConfigError(f"config: tables.{table} names unknown variants {unknown}; "
                              f"known: {sorted(config['variants'])}")
    if config["dataset"] == "synthetic" and config["synthetic"]["seconds"] < T:
        raise ConfigError(f"config: synthetic.seconds ({config['synthetic']['seconds']}) is shorter than "
                          f"preprocess.T ({T})")


def synthesize_args(config: dict) -> str:
    syn = config["synthetic"]
    args = [
        f"--out-dir {syn['out_dir']}",
        *(f"--videos-{split} {syn['videos'][split]}" for split in SPLITS),
        f"--seconds {syn['seconds']}",
        f"--questions-per-video {syn['questions_per_video']}",
        f"--width {syn['width']} --height {syn['height']}",
        f"--video-fps {syn['video_fps']} --audio-rate {syn['audio_rate']}",
        f"--seed {syn['seed']}",
    ]
    if "instruments" in syn:
        args.append(f"--instruments {syn['instruments']}")
    return " ".join(args)


def annotation_json(config: dict, split: str) -> str:
    if config["dataset"] == "synthetic":
        return f"{config['synthetic']['out_dir']}/avqa-{split}.json"
    return config["music_avqa"]["annotations"][split]


def videos_dir(config: dict) -> str:
    if config["dataset"] == "synthetic":
        return f"{config['synthetic']['out_dir']}/videos"
    return config["music_avqa"]["videos_dir"]


def encoder_weights(config: dict, encoder: str) -> str:
    """random | pretrained | a checkpoint path, for one encoder ('clip_rn50' reads the `clip` entry)."""
    weights = config["weights"]
    if isinstance(weights, dict):
        return weights["clip" if encoder == "clip_rn50" else "vggish"]
    return weights


def extract_args(config: dict, encoder: str) -> str:
    feats = config["features"]
    args = [
        f"--T1 {feats['T1']} --fps {feats['fps']} --sample-rate {feats['sample_rate']}",
        f"--weights {encoder_weights(config, encoder)} --weights-seed {config['weights_seed']}",
        f"--device {config['device']} --workers {feats['decode_workers']}",
        f"--batch-frames-cpu {feats['batch_frames']['cpu']} --batch-frames-cuda {feats['batch_frames']['cuda']}",
        f"--precision-cpu {feats['precision']['cpu']} --precision-cuda {feats['precision']['cuda']}",
    ]
    if "weights_bn3_gamma" in config:
        args.append(f"--bn3-gamma {config['weights_bn3_gamma']}")
    if feats["channels_last"]:
        args.append("--channels-last")
    return " ".join(args)


def questions_args(config: dict) -> str:
    return (f"--weights {encoder_weights(config, 'clip_rn50')} --weights-seed {config['weights_seed']} "
            f"--device {config['device']} --batch {config['features']['text_batch']}")


def shard_names(shards_json: str | Path) -> list[str]:
    return sorted(json.loads(Path(shards_json).read_text())["shards"])


def variant_pooling(config: dict, variant: str) -> str:
    return config["variants"][variant].get("pooling", "avg")


def run_dir(config: dict, variant: str, seed: int | str) -> str:
    return f"results/runs/{config['experiment']}/{variant}/seed{seed}"


def run_config(config: dict, variant: str, seed: int) -> dict[str, Any]:
    """Everything one training run needs: the variant's model and options, the training setup, the inputs."""
    spec = dict(config["variants"][variant])
    pooling = spec.pop("pooling", "avg")
    label = spec.pop("label")
    model = spec.pop("model")
    modalities = spec.pop("modalities", ["audio", "visual"])
    train = config["train"]
    return {
        "experiment": config["experiment"],
        "variant": variant,
        "label": label,
        "seed": int(seed),
        "model": model,
        "model_options": spec,
        "modalities": list(modalities),
        "pooling": pooling,
        "epochs": train["epochs"],
        "batch_size": train["batch_size"],
        "lr": train["lr"],
        "lr_step": train["lr_step"],
        "lr_gamma": train["lr_gamma"],
        "questions_per_video": train["questions_per_video"],
        "num_workers": train["num_workers"],
        "precision": train["precision"],
        "threads": train["threads"],
        "device": config["device"],
        "dataset": config["dataset"],
        "weights": config["weights"],
        "annotations": {s: f"results/annotations/{s}.parquet" for s in SPLITS},
        "pooled": {s: f"results/pooled/{pooling}/{s}.zarr" for s in SPLITS},
        "questions": "results/features/questions.zarr",
    }


def table_variants(config: dict, table: str) -> list[str]:
    return list(config["tables"][table])


def table_runs(config: dict, table: str) -> list[str]:
    """The run directories behind one table: every variant x every seed."""
    return [run_dir(config, v, s) for v in table_variants(config, table) for s in config["seeds"]]


def table_args(config: dict, table: str) -> str:
    """The `python -m avqa table` arguments: every run directory of the table (grouped there by variant)."""
    return "--runs " + " ".join(table_runs(config, table))
