"""The run spec: one training run (variant x seed) as a JSON object, its schema, loading and checking.

The Snakefile writes it from config.yaml (avqa.workflow.run_config); `python -m avqa train` validates it here;
evaluation and the report rebuild a run's model and data from the run_config.json saved beside its checkpoints.
Paths in it are relative to the working directory. Keys (RUN_CONFIG_SCHEMA):
  experiment (str), variant (str), label (str, the table's row name), seed (int),
  model (str, avqa.models registry name), model_options (object, keyword arguments of build_model),
  modalities ([audio, visual] subset; a removed one is fed as zeros), pooling (avg | stride, informational),
  epochs, batch_size, lr, lr_step, lr_gamma (the paper: 30, 64, 2e-4, 12, 0.1), optional betas (Adam's; absent:
  torch's (0.9, 0.999)),
  questions_per_video (k >= 1, see avqa.training.dataset.QuestionBatchSampler), num_workers, threads,
  precision {cpu: fp32|bf16|fp16, cuda: ...} (autocast dtype per device, avqa.runtime), device (auto | cpu | cuda),
  dataset, weights (provenance, copied into metrics.json),
  annotations {train, val, test}: parquet paths, pooled {train, val, test}: pooled store paths,
  questions: questions.zarr path.
  Optional inputs some models read: words (the train vocabulary JSON, avqa.data.words: AVQADataset adds
  question_words, and build() sets the model's vocab_size), instruments (avqa.data.instruments' parquet: the
  sources_audio / sources_visual labels), clip_texts (the questions-vit store: question_clip / prompt), visual_encoder (clip_rn50 | resnet18 | ...: the visual features in
  the pooled stores, which decides the run's encoder block in the tables), init_from (a checkpoint whose
  matching weights initialise the model, e.g. AVST's grounding pre-training: by the model's own rule
  (load_pretrained) or every entry of matching name and shape), init_layers ({layer of this model: layer of
  init_from's model}, needs init_from: exactly these layers are copied, avqa.models.transfer; TASS-Net from
  AVST's grounding run), best_on (val_accuracy, default:
  the best epoch on validation accuracy | last_epoch: the final weights, for runs whose objective is not QA).
  Optional: in_memory (auto | true | false, default auto), memory_budget_gb (default 4: 'auto' holds a split's
  visual maps in RAM when they fit), eval_batch_size (default batch_size), norm_videos (default 1000: the
  train videos whose maps give the per-channel input statistics the model standardises with).
"""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import torch

from avqa.training.dataset import AVQADataset
from avqa.errors import UserError


class RunSpecError(UserError, ValueError):
    """A run spec that breaks the schema or is not valid JSON."""

_SPLIT_PATHS = {"type": "object", "required": ["train", "val", "test"],
                "properties": {s: {"type": "string", "minLength": 1} for s in ("train", "val", "test")}}
_PRECISION = {"type": "string", "enum": ["fp32", "bf16", "fp16"]}
RUN_CONFIG_SCHEMA = {
    "type": "object",
    "required": ["experiment", "variant", "label", "seed", "model", "model_options", "modalities", "epochs",
                 "batch_size", "lr", "lr_step", "lr_gamma", "questions_per_video", "num_workers", "precision",
                 "threads", "device", "annotations", "pooled", "questions"],
    "properties": {
        "experiment": {"type": "string", "minLength": 1},
        "variant": {"type": "string", "minLength": 1},
        "label": {"type": "string"},
        "seed": {"type": "integer"},
        "model": {"type": "string", "minLength": 1},
        "model_options": {"type": "object"},
        "modalities": {"type": "array", "items": {"enum": ["audio", "visual"]}, "uniqueItems": True},
        "pooling": {"enum": ["avg", "stride", "none"]},
        "epochs": {"type": "integer", "minimum": 1},
        "batch_size": {"type": "integer", "minimum": 1},
        "eval_batch_size": {"type": "integer", "minimum": 1},
        "lr": {"type": "number", "exclusiveMinimum": 0},
        "lr_step": {"type": "integer", "minimum": 1},
        "lr_gamma": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "betas": {"type": "array", "items": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
                  "minItems": 2, "maxItems": 2},
        "questions_per_video": {"type": "integer", "minimum": 1},
        "num_workers": {"type": "integer", "minimum": 0},
        "precision": {"type": "object", "required": ["cpu", "cuda"],
                      "properties": {"cpu": _PRECISION, "cuda": _PRECISION}},
        "threads": {"type": "integer", "minimum": 1},
        "device": {"enum": ["auto", "cpu", "cuda"]},
        "in_memory": {"enum": ["auto", True, False]},
        "memory_budget_gb": {"type": "number", "minimum": 0},
        "norm_videos": {"type": "integer", "minimum": 1},
        "annotations": _SPLIT_PATHS,
        "pooled": _SPLIT_PATHS,
        "questions": {"type": "string", "minLength": 1},
        "words": {"type": "string", "minLength": 1},
        "instruments": {"type": "string", "minLength": 1},
        "clip_texts": {"type": "string", "minLength": 1},
        "visual_encoder": {"type": "string", "minLength": 1},
        "init_from": {"type": "string", "minLength": 1},
        "init_layers": {"type": "object", "minProperties": 1,
                        "additionalProperties": {"type": "string", "minLength": 1}},
        "best_on": {"enum": ["val_accuracy", "last_epoch"]},
    },
    "dependentRequired": {"init_layers": ["init_from"]},
}
# Inputs a run may read besides annotations, pooled and questions, hashed into its identity: plain files and
# Zarr stores (their recorded content digests).
OPTIONAL_FILE_INPUTS = ("words", "instruments", "init_from")
OPTIONAL_STORE_INPUTS = ("clip_texts",)
# Keys that may change between a killed run and its resumption without changing the result.
# Keys that do not change what a run computes: a checkpoint written under other values of these is the same run
# (renaming a table row, moving to another device or thread count, loading from RAM or disk must not retrain).
IDENTITY_IGNORES = ("label", "device", "num_workers", "threads", "in_memory", "memory_budget_gb")


def check_run_config(spec: dict, source: str = "run config") -> dict:
    try:
        jsonschema.validate(spec, RUN_CONFIG_SCHEMA)
    except jsonschema.ValidationError as err:
        where = "/".join(map(str, err.absolute_path)) or "(top level)"
        raise RunSpecError(f"{source}: {where}: {err.message}") from None
    return spec


def load_run_config(path: str | Path) -> dict:
    path = Path(path)
    try:
        spec = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise RunSpecError(f"{path}: not valid JSON ({err})") from None
    return check_run_config(spec, str(path))


def build(spec: dict) -> torch.nn.Module:
    """The run's model from the avqa.models registry."""
    from avqa.models import build_model, valid_options  # the registry imports each model's module on demand

    options = dict(spec["model_options"])
    if "words" in spec and "vocab_size" in valid_options(spec["model"]):
        from avqa.data.words import read_vocabulary

        options.setdefault("vocab_size", len(read_vocabulary(spec["words"])))
    return build_model(spec["model"], **options)


def run_identity(spec: dict) -> dict:
    """What makes two run specs the same run: every key but IDENTITY_IGNORES."""
    return {k: v for k, v in spec.items() if k not in IDENTITY_IGNORES}


def split_dataset(spec: dict, split: str, in_memory: str | bool | None = None) -> AVQADataset:
    """The run's `split` (train | val | test) as an AVQADataset (in_memory: default the run spec's setting)."""
    from avqa.models import CLIP_WORD_MODELS
    return AVQADataset(spec["annotations"][split], spec["pooled"][split], spec["questions"],
                       modalities=spec["modalities"],
                       in_memory=spec.get("in_memory", "auto") if in_memory is None else in_memory,
                       memory_budget_gb=spec.get("memory_budget_gb", 4.0), words=spec.get("words"),
                       instruments=spec.get("instruments"), clip_texts=spec.get("clip_texts"),
                       clip_words=spec["model"] in CLIP_WORD_MODELS)
