"""Helpers the Snakefile calls: cross-field config checks and the values rules pass to `python -m avqa`.

The schema (workflow/schemas/config.schema.yaml) checks each key alone; `check_config` checks what a schema
cannot say (a table naming an unknown variant, T1 not a multiple of T). Everything a rule needs is derived from
the config here, so the rules stay thin and the derivations are unit-tested.

Experiments are data: `variants` (name -> model + options), `tables` (name -> variants, as a list trained with
the top-level `seeds`, or {variants, seeds, labels}); a run is a (variant, seed) and its directory depends on
nothing else, so a run listed by several tables (the full model) is one Snakemake job.
"""
from __future__ import annotations

import ctypes
import json
import re
import shlex
from pathlib import Path
from typing import Any

from avqa.errors import UserError
from avqa.features.layout import BLOCK, ENCODERS, LAYOUT, VISUAL_ENCODERS, encoder_pattern, encoder_record
from avqa.features.clip_vit_config import clip_vit_sizes
from avqa.models import EXTRA_INPUTS, VISUAL_INPUTS, VISUAL_OPTIONS
from avqa.paths import Layout
from avqa.specs.data import AnnotationsSpec, SplitVideos, StandinsSpec, SynthesizeSpec
from avqa.specs.features import (BatchFramesSpec, ClipVitSpec, DecodeSpec, ExtractSpec, PrecisionSpec, QuestionsSpec,
                                 QuestionsVitSpec, ShardsSpec)
from avqa.specs.reporting import POOLINGS, AttentionSpec, CurvesSpec, PoolSpec, ResultsTableSpec, TableRow

__all__ = ["ENCODERS", "SPLITS", "Layout", "encoder_pattern"]  # the Snakefile's wildcards and paths come from here too

SPLITS = ("train", "val", "test")
# Models whose forward returns the TSG+ / JTG attention maps drawn for the report.
ATTENTION_MODELS = ("tass",)


class ConfigError(UserError, ValueError):
    """A config value that passes the schema but cannot work."""


SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def load_config(path: str | Path) -> dict:
    """A config file as the Snakefile sees it: schema-validated, its defaults filled in as snakemake's `validate`
    fills them (tests/test_device_benchmark.py compares the two), and cross-checked. Needs no snakemake, so the
    benchmarks read the config on a machine without it (the GPU box)."""
    import yaml

    config = yaml.safe_load(Path(path).read_text())
    schema = yaml.safe_load(SCHEMA.read_text())
    try:
        _defaults_filling_validator()(schema).validate(config)
    except Exception as err:  # jsonschema.ValidationError: one line naming the key, as the Snakefile's check does
        raise ConfigError(f"{path}: {getattr(err, 'message', err)} (at "
                          f"{'.'.join(map(str, getattr(err, 'absolute_path', []))) or 'the top level'})") from None
    check_config(config)
    return config


def _defaults_filling_validator():
    """jsonschema's Draft 2020-12 validator that also sets each property's `default` where the instance lacks it
    (jsonschema's FAQ recipe, which snakemake.utils.validate follows)."""
    from jsonschema import Draft202012Validator, validators

    check_properties = Draft202012Validator.VALIDATORS["properties"]

    def fill_then_check(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if isinstance(subschema, dict) and "default" in subschema:
                    instance.setdefault(name, subschema["default"])
        yield from check_properties(validator, properties, instance, schema)

    return validators.extend(Draft202012Validator, {"properties": fill_then_check})


def check_config(config: dict) -> None:
    T1, T = config["features"]["T1"], config["preprocess"]["T"]
    if T1 % T:
        raise ConfigError(f"config: features.T1 ({T1}) must be a multiple of preprocess.T ({T})")
    unknown_blocks = sorted(set(config.get("blocks", DEFAULT_BLOCKS)) - set(BLOCK.values()))
    if unknown_blocks:
        raise ConfigError(f"config: blocks names unknown encoder blocks {unknown_blocks}; known: {sorted(set(BLOCK.values()))}")
    for table in config["tables"]:
        variants = _table(config, table)["listed"]
        unknown = [v for v in variants if v not in config["variants"]]
        if unknown:
            raise ConfigError(f"config: tables.{table} names unknown variants {unknown}; "
                              f"known: {sorted(config['variants'])}")
        stray = sorted(set(table_labels(config, table)) - set(variants))
        if stray:
            raise ConfigError(f"config: tables.{table}.labels names variants {stray} that the table does not list")
    if full_model(config) not in config["variants"]:
        raise ConfigError(f"config: full_model {full_model(config)!r} is not a variant; "
                          f"known: {sorted(config['variants'])}")
    if baseline_model(config) and baseline_model(config) not in config["variants"]:
        raise ConfigError(f"config: baseline_model {baseline_model(config)!r} is not a variant; "
                          f"known: {sorted(config['variants'])}")
    decode = config["features"].get("decode") or {}
    if decode.get("backend") == "torchcodec" and (decode.get("to_input_size") or decode.get("skip_frames")):
        raise ConfigError("config: features.decode.backend torchcodec decodes every frame at full size; "
                          "to_input_size and skip_frames need backend: decord")
    check_inits(config)
    for table in config["tables"]:
        check_comparisons(config, table)
    if config["dataset"] == "synthetic" and config["synthetic"]["seconds"] < T:
        raise ConfigError(f"config: synthetic.seconds ({config['synthetic']['seconds']}) is shorter than "
                          f"preprocess.T ({T})")


def check_inits(config: dict) -> None:
    """Every `init` names a variant with a pre-training run, and a variant has at most one start."""
    for variant, entry in config["variants"].items():
        init = entry.get("init")
        if not init:
            continue
        if entry.get("pretrain"):
            raise ConfigError(f"config: variant {variant!r} has both pretrain and init; give one start")
        source = config["variants"].get(init["variant"])
        if source is None:
            raise ConfigError(f"config: variants.{variant}.init.variant {init['variant']!r} is not a variant; "
                              f"known: {sorted(config['variants'])}")
        if not source.get("pretrain"):
            raise ConfigError(f"config: variants.{variant}.init.variant {init['variant']!r} has no pretrain "
                              f"entry, so there is no pre-training run to initialise from")


def check_comparisons(config: dict, table: str) -> None:
    """A table's `compare` pairs (row -> the row it is compared with) name variants the table lists."""
    listed = set(_table(config, table)["listed"])
    pairs = table_comparisons(config, table, shown_only=False)
    stray = sorted({v for pair in pairs.items() for v in pair} - listed)
    if stray:
        raise ConfigError(f"config: tables.{table}.compare names variants {stray} that the table does not list")


def gpu_jobs(config: dict) -> int:
    """The `gpu` resource of the GPU rules: 1 when they will run on CUDA, 0 when on the CPU.

    device cuda -> 1, cpu -> 0, auto -> whether the CUDA driver reports a device here. With a GPU, the default profile's
    pool of one GPU keeps two GPU jobs from sharing it; on a CPU-only machine the same rules are plain CPU jobs
    that share the cores through --cores and their `threads` (two 1-thread training runs in parallel are faster
    than one 2-thread run: small matrix products scale badly across threads). A cluster profile sets its own
    per-rule gpu in set-resources, which overrides this value.
    """
    device = config["device"]
    if device != "auto":
        return int(device == "cuda")
    return int(cuda_device_count() > 0)


def cuda_device_count() -> int:
    """The CUDA devices the driver reports (libcuda's cuDeviceGetCount, as torch.cuda asks it; CUDA_VISIBLE_DEVICES
    applies), 0 without a driver: the Snakefile parses without importing torch."""
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def q(value) -> str:
    """A config value as one shell word: paths and labels may hold spaces, quotes or brackets."""
    return shlex.quote(str(value))


def synthetic_dir(config: dict) -> str:
    """The generated dataset's folder: synthetic.out_dir, by default {results_dir}/synthetic."""
    return Layout.of(config).synthetic()


def synthesize_spec(config: dict) -> SynthesizeSpec:
    syn = config["synthetic"]
    return SynthesizeSpec(videos=SplitVideos(**syn["videos"]), seconds=syn["seconds"],
                          questions_per_video=syn["questions_per_video"], instruments=syn["instruments"],
                          width=syn["width"], height=syn["height"], video_fps=syn["video_fps"],
                          audio_rate=syn["audio_rate"], seed=syn["seed"])


def annotations_spec(config: dict) -> AnnotationsSpec:
    """The release the annotation JSON follows (the synthetic dataset writes v1) and the duplicate handling."""
    avqa = config["music_avqa"]
    release = avqa["release"] if config["dataset"] == "music_avqa" else "v1"
    return AnnotationsSpec(release=release, drop_conflicting_duplicates=avqa["drop_conflicting_duplicates"])


def annotation_json(config: dict, split: str) -> str:
    if config["dataset"] == "synthetic":
        return Layout.of(config).synthetic_annotations(split)
    return config["music_avqa"]["annotations"][split]


def instrument_source(config: dict) -> str:
    """What the per-video instrument labels come from: the synthetic scenes, or MUSIC-AVQA's train annotations
    (the annotation stage's parquet: its release and duplicate handling apply)."""
    if config["dataset"] == "synthetic":
        return Layout.of(config).synthetic_scenes()
    return Layout.of(config).annotations("train")


def videos_dir(config: dict) -> str:
    if config["dataset"] == "synthetic":
        return Layout.of(config).synthetic_videos()
    if standins(config):
        return Layout.of(config).standin_videos()
    return config["music_avqa"]["videos_dir"]


def standins(config: dict) -> dict | None:
    """music_avqa.standins (stand-in clips for every annotated id, the scale check) or None."""
    return (config.get("music_avqa") or {}).get("standins") if config["dataset"] == "music_avqa" else None


def made_videos(config: dict) -> list[str]:
    """The rule output holding the videos (synthetic dataset or stand-ins); [] for real videos, read as they are."""
    if config["dataset"] == "synthetic":
        return [videos_dir(config)]
    return [Layout.of(config).standins()] if standins(config) else []


def shards_spec(config: dict) -> ShardsSpec:
    feats = config["features"]
    return ShardsSpec(videos_dir=videos_dir(config), videos_per_shard=feats["videos_per_shard"],
                      max_missing_fraction=feats["max_missing_fraction"])


def standins_spec(config: dict) -> StandinsSpec:
    s = standins(config)
    if s is None:
        raise ConfigError("config: no music_avqa.standins entry (with dataset: music_avqa) to make stand-ins from")
    return StandinsSpec(seconds=s["seconds"], width=s["width"], height=s["height"], video_fps=s["video_fps"],
                        bases=s["bases"])


def encoder_weights(config: dict, encoder: str) -> str:
    """random | pretrained | a checkpoint path, for one registered encoder (its REGISTRY weights key: `clip`
    serves clip_rn50 and its text tower, `clip_vit` the ViT and its text tower). A mapping without the encoder's
    entry is an error naming it."""
    weights = config["weights"]
    if isinstance(weights, dict):
        key = encoder_record(encoder).weights_key
        if key not in weights:
            raise ConfigError(f"config: weights has no entry {key!r} for the {encoder} features; give one "
                              f"(random | pretrained | a checkpoint path)")
        return weights[key]
    return weights


def clip_vit_spec(config: dict) -> ClipVitSpec:
    """features.clip_vit: the ViT backbone, the merged tokens per frame, whether the frame embedding is CLIP's own."""
    return ClipVitSpec(**config["features"]["clip_vit"])


def extract_spec(config: dict, encoder: str) -> ExtractSpec:
    """What one extraction job of `encoder` computes; the settings the encoder does not read are None."""
    feats, reads = config["features"], encoder_record(encoder).options
    return ExtractSpec(
        encoder=encoder, T1=feats["T1"], weights=encoder_weights(config, encoder),
        weights_seed=config["weights_seed"], device=config["device"], workers=feats["decode_workers"],
        batch_frames=BatchFramesSpec(**feats["batch_frames"]), precision=PrecisionSpec(**feats["precision"]),
        channels_last=feats["channels_last"] if "channels_last" in reads else None,
        decode=DecodeSpec(**feats["decode"]) if "decode" in reads else None,
        audio_backend=feats["audio_backend"] if "audio_backend" in reads else None,
        bn3_gamma=config["weights_bn3_gamma"] if "bn3_gamma" in reads else None,
        clip_vit=clip_vit_spec(config) if "clip_vit" in reads else None)


def questions_spec(config: dict) -> QuestionsSpec:
    return QuestionsSpec(weights=encoder_weights(config, "clip_rn50"), weights_seed=config["weights_seed"],
                         device=config["device"], batch=config["features"]["text_batch"])


def questions_vit_spec(config: dict) -> QuestionsVitSpec:
    """The CLIP ViT of the frame features, on questions and prompts."""
    return QuestionsVitSpec(backbone=clip_vit_spec(config).backbone, weights=encoder_weights(config, "clip_vit"),
                            weights_seed=config["weights_seed"], device=config["device"],
                            batch=config["features"]["text_batch"])


def shard_names(shards_json: str | Path) -> list[str]:
    return sorted(json.loads(Path(shards_json).read_text())["shards"])


# --- pooled features: a pooling method and a visual encoder ------------------------------------------------------
DEFAULT_BLOCKS = ("clip",)
DEFAULT_VISUAL = "clip_rn50"


def pooled_key(pooling: str, visual: str = DEFAULT_VISUAL) -> str:
    """The {method} of results/pooled/{method}/{split}.zarr: the pooling, suffixed by a visual encoder other than
    CLIP-RN50 (`avg`, `stride` keep their paths; `avg-resnet18`, `none-clip_vit`)."""
    return pooling if visual == DEFAULT_VISUAL else f"{pooling}-{visual}"


def parse_pooled_key(key: str) -> tuple[str, str]:
    """(pooling, visual encoder) of a pooled store's {method}."""
    pooling, _, visual = key.partition("-")
    return pooling, visual or DEFAULT_VISUAL


def pooled_key_pattern() -> str:
    """The {method} wildcard: a pooling, optionally -{visual encoder}."""
    others = "|".join(v for v in VISUAL_ENCODERS if v != DEFAULT_VISUAL)
    return f"({'|'.join(POOLINGS)})(-({others}))?"


def pool_spec(config: dict, key: str) -> PoolSpec:
    """The pooled store `key` ({method} of results/pooled/{method}/{split}.zarr): its pooling, encoder, T."""
    pooling, visual = parse_pooled_key(key)
    return PoolSpec(method=pooling, visual_encoder=visual, T=pooled_T(config, key))


def pooled_T(config: dict, key: str) -> int:
    """Segments after pooling: preprocess.T, or every second (features.T1) for pooling `none`."""
    return config["features"]["T1"] if parse_pooled_key(key)[0] == "none" else config["preprocess"]["T"]


def visual_stores(key: str) -> tuple[str, str | None]:
    """The encoder stores a pooled store reads for its visual arrays: (visual, tokens or None)."""
    visual = parse_pooled_key(key)[1]
    tokens = f"{visual}_tokens"
    return visual, (tokens if tokens in ENCODERS else None)


def variant_pooling(config: dict, variant: str) -> str:
    """The pooled store's {method} of a variant: its pooling and its visual encoder."""
    entry = config["variants"][variant]
    return pooled_key(entry.get("pooling", "avg"), entry.get("visual", DEFAULT_VISUAL))


def run_dir(config: dict, variant: str, seed: int | str) -> str:
    return Layout.of(config).run(config["experiment"], variant, seed)


def experiment_pattern(config: dict) -> str:
    """The `experiment` wildcard matches this config's experiment only: a run is trained by its own config."""
    return re.escape(config["experiment"])


def run_config(config: dict, variant: str, seed: int) -> dict[str, Any]:
    """Everything one training run needs: the variant's model and options, the training setup, the inputs."""
    paths = Layout.of(config)
    spec = dict(config["variants"][variant])
    pretrain = spec.pop("pretrain", None)
    init = spec.pop("init", None)
    pooling = spec.pop("pooling", "avg")
    visual = spec.pop("visual", DEFAULT_VISUAL)
    label = spec.pop("label")
    model = spec.pop("model")
    modalities = spec.pop("modalities", ["audio", "visual"])
    train = {**config["train"], **spec.pop("train", {})}      # a variant may override the training recipe
    options = {**visual_options(config, model, visual), **spec}
    return {
        "experiment": config["experiment"],
        "variant": variant,
        "label": label,
        "seed": int(seed),
        "model": model,
        "model_options": options,
        "modalities": list(modalities),
        "pooling": pooling,
        "visual_encoder": visual,
        "epochs": train["epochs"],
        "batch_size": train["batch_size"],
        "lr": train["lr"],
        "lr_step": train["lr_step"],
        "lr_gamma": train["lr_gamma"],
        **({"betas": list(train["betas"])} if "betas" in train else {}),   # absent: torch's Adam default
        "questions_per_video": train["questions_per_video"],
        "num_workers": train["num_workers"],
        "precision": train["precision"],
        "threads": train["threads"],
        "device": config["device"],
        "dataset": config["dataset"],
        "weights": config["weights"],
        "annotations": {s: paths.annotations(s) for s in SPLITS},
        "pooled": {s: paths.pooled(pooled_key(pooling, visual), s) for s in SPLITS},
        "questions": paths.questions(),
        **extra_inputs(config, model),
        **({"init_from": pretrain_model(config, variant, seed)} if pretrain else {}),
        **({"init_from": pretrain_model(config, init["variant"], seed), "init_layers": dict(init["layers"])}
           if init else {}),
    }


# --- pre-training (AVST's audio-visual grounding before QA) -------------------------------------------------------
def train_priority(config: dict, variant: str, pretrain: bool = False) -> int:
    """A training job's scheduling priority: the epochs still ahead of its variant (a pre-training run: its own and
    its QA run's), so on few cores the longest recipes start first and the last job to finish is a short one."""
    epochs = run_config(config, variant, 0)["epochs"]
    return epochs + (pretrain_config(config, variant, 0)["epochs"] if pretrain else 0)


def pretrain_dir(config: dict, variant: str, seed: int | str) -> str:
    return Layout.of(config).pretrain(config["experiment"], variant, seed)


def pretrain_model(config: dict, variant: str, seed: int | str) -> str:
    """The pre-trained weights a variant's QA run starts from (its init_from)."""
    return Layout.of(config).pretrain_file("model_best.pt", config["experiment"], variant, seed)


def pretrain_config(config: dict, variant: str, seed: int) -> dict[str, Any]:
    """The run spec of a variant's pre-training: the same model and inputs with the pre-training objective
    (`pretrain: {objective, epochs, lr}` of the variant), kept at its last epoch (its val QA accuracy means
    nothing), no init_from of its own."""
    entry = config["variants"][variant].get("pretrain")
    if not entry:
        raise ConfigError(f"config: variant {variant!r} has no pretrain entry")
    spec = run_config(config, variant, seed)
    spec.pop("init_from")
    spec["variant"] = f"{variant}/pretrain"
    spec["model_options"] = {**spec["model_options"], "objective": entry.get("objective", "grounding")}
    spec.update({k: entry[k] for k in ("epochs", "lr") if k in entry}, best_on="last_epoch")
    return spec


def needs_pretrain(config: dict, variant: str) -> bool:
    return bool(config["variants"][variant].get("pretrain"))


def init_checkpoints(config: dict, variant: str, seed: int | str) -> list[str]:
    """The checkpoint a variant's run starts from, as the train rule's input (so the DAG runs it first): its own
    pre-training (`pretrain:`), or another variant's (`init: {variant, layers}`: TASS-Net takes the named layers
    of AVST's grounding run of the same seed, avqa.models.transfer); [] for a run from scratch."""
    entry = config["variants"][variant]
    if entry.get("pretrain"):
        return [pretrain_model(config, variant, seed)]
    if entry.get("init"):
        return [pretrain_model(config, entry["init"]["variant"], seed)]
    return []

def visual_options(config: dict, model: str, visual: str) -> dict[str, Any]:
    """The model options that follow from the visual encoder (its channels), for the options the model has."""
    if visual == DEFAULT_VISUAL:
        return {}
    if visual == "clip_vit":
        vit = clip_vit_spec(config)
        sizes = clip_vit_sizes(vit.backbone)
        options = {"frame_dim": sizes["embedding"], "token_dim": sizes["token_width"], "n_tokens": vit.n_tokens,
                   "text_dim": sizes["embedding"]}
    else:
        options = {"visual_dim": LAYOUT[visual].shape[-1]}
    takes = VISUAL_OPTIONS.get(VISUAL_INPUTS.get(model), ())   # what the model reads: maps, frames or nothing
    return {k: v for k, v in options.items() if k in takes}


def extra_inputs(config: dict, model: str) -> dict[str, str]:
    """The run-spec paths of the inputs `model` reads beyond the batch contract (avqa.models.EXTRA_INPUTS)."""
    paths = Layout.of(config)
    where = {"words": paths.words(), "instruments": paths.instruments(), "clip_texts": paths.questions_vit()}
    return {name: where[name] for name in EXTRA_INPUTS.get(model, ())}


# --- experiments: tables, their runs, the report ---------------------------------------------------------------
def full_model(config: dict) -> str:
    """The variant every ablation row is compared with (and whose attention the report draws)."""
    return config.get("full_model", "tass")


def baseline_model(config: dict) -> str | None:
    """The question-only variant Table 1 compares every row with (None: no such comparison)."""
    return config.get("baseline_model")


def _table(config: dict, table: str) -> dict:
    """A table's entry as {variants, seeds, labels}: the list form means the top-level seeds and no labels."""
    if table not in config["tables"]:
        raise ConfigError(f"config: no table {table!r}; configured: {sorted(config['tables'])}")
    entry = config["tables"][table]
    if isinstance(entry, list):
        entry = {"variants": entry}
    listed = list(entry["variants"])
    shown = [v for v in listed if v not in config["variants"] or variant_block(config, v) in
             config.get("blocks", DEFAULT_BLOCKS)]
    labels = dict(entry.get("labels") or {})
    return {"variants": shown, "listed": listed, "seeds": list(entry.get("seeds", config["seeds"])),
            "labels": {v: text for v, text in labels.items() if v in shown or v not in listed}}


def table_variants(config: dict, table: str) -> list[str]:
    """The variants a table reports: those it lists whose encoder block is one of the config's `blocks`."""
    return _table(config, table)["variants"]


def variant_block(config: dict, variant: str) -> str:
    """A variant's encoder block (clip | resnet18), from its visual encoder."""
    return BLOCK[config["variants"][variant].get("visual", DEFAULT_VISUAL)]


def full_models(config: dict, table: str) -> list[str]:
    """The full model of each block a table shows: `full_model`, and the variants of the table that differ from
    it only in their visual encoder (and label): an ablation row is compared with its own block's full model."""
    full = full_model(config)
    base = _block_free(config["variants"][full])
    twins = [v for v in table_variants(config, table) if v != full and _block_free(config["variants"][v]) == base]
    return [full, *twins]


def _block_free(entry: dict) -> dict:
    """A variant's entry without what differs between encoder blocks: its label, visual encoder and the
    variant its init comes from (each block's TASS-Net starts from its own block's AVST)."""
    out = {k: v for k, v in entry.items() if k not in ("label", "visual")}
    if "init" in out:
        out["init"] = {k: v for k, v in out["init"].items() if k != "variant"}
    return out


def table_seeds(config: dict, table: str) -> list[int]:
    return _table(config, table)["seeds"]


def table_labels(config: dict, table: str) -> dict[str, str]:
    """Row labels this table gives its variants (the shared full model is 'add (ours)' in one, 'IL(V;A)' in another)."""
    return _table(config, table)["labels"]


def table_runs(config: dict, table: str) -> list[str]:
    """The run directories behind one table: every variant x every seed of the table."""
    seeds = table_seeds(config, table)
    return [run_dir(config, v, s) for v in table_variants(config, table) for s in seeds]


def table_run_files(config: dict, table: str, *names: str) -> list[str]:
    """The files `names` (avqa.paths.RUN_FILES) of every run behind one table, run by run."""
    paths, seeds = Layout.of(config), table_seeds(config, table)
    return [paths.run_file(name, config["experiment"], v, s) for v in table_variants(config, table) for s in seeds
            for name in names]


def table_rows(config: dict, table: str) -> tuple[TableRow, ...]:
    """A table's trained rows: each variant it shows, the label the table gives it (or None), its seeds' runs."""
    labels = table_labels(config, table)
    return tuple(TableRow(variant=v, label=labels.get(v), runs=tuple(run_dir(config, v, s)
                                                                     for s in table_seeds(config, table)))
                 for v in table_variants(config, table))


def table_spec(config: dict, table: str) -> ResultsTableSpec:
    """The `python -m avqa table` spec: the table's rows, each block's full model, the comparison pairs, the
    question-only baseline (when the table lists it)."""
    baseline = baseline_model(config)
    return ResultsTableSpec(rows=table_rows(config, table), full=tuple(full_models(config, table)),
                            compare=tuple(table_comparisons(config, table).items()),
                            baseline=baseline if baseline in table_variants(config, table) else None)


def table_comparisons(config: dict, table: str, shown_only: bool = True) -> dict[str, str]:
    """A table's `compare` pairs {row variant: the variant it is compared with instead of the full model}
    (table 8: each peer on average pooling vs. the same peer on its paper's input), for the rows it shows."""
    entry = config["tables"][table]
    pairs = dict(entry.get("compare") or {}) if isinstance(entry, dict) else {}
    if not shown_only:
        return pairs
    shown = set(table_variants(config, table))
    return {v: ref for v, ref in pairs.items() if v in shown and ref in shown}


def curves_spec(config: dict, table: str) -> CurvesSpec:
    """The `python -m avqa plot-curves` spec of a table: its rows (labels and runs)."""
    return CurvesSpec(rows=table_rows(config, table))


def attention_spec(config: dict) -> AttentionSpec:
    return AttentionSpec(questions=config["attention_questions"],
                         frame_backend=config["features"]["decode"]["backend"])


def attention_inputs(config: dict, variant: str, seed: int | str) -> list[str]:
    """What the attention figure of one run reads: the finished run, its test annotations and pooled features."""
    paths = Layout.of(config)
    return [*(paths.run_file(name, config["experiment"], variant, seed)
              for name in ("metrics.json", "model_best.pt", "predictions.csv", "run_config.json")),
            paths.annotations("test"), paths.pooled(variant_pooling(config, variant), "test")]


def attention_run(config: dict) -> str | None:
    """The full model's run drawn in the attention figure: its first seed in the first table listing it.

    None when no table trains the full model or its model has no attention to draw (e.g. qonly).
    """
    variant = full_model(config)
    if config["variants"][variant]["model"] not in ATTENTION_MODELS:
        return None
    for table in config["tables"]:
        if variant in table_variants(config, table):
            return run_dir(config, variant, table_seeds(config, table)[0])
    return None


def plot_targets(config: dict) -> list[str]:
    """The report's figures: per table a per-type / per-group accuracy chart and the training curves, plus the
    full model's attention figure."""
    paths = Layout.of(config)
    targets = [paths.plot(table, kind) for table in config["tables"] for kind in ("accuracy", "curves")]
    run = attention_run(config)
    if run is not None:
        variant, seed = Path(run).parts[-2], Path(run).name.removeprefix("seed")
        targets.append(paths.attention_plot(variant, seed))
    return targets


def all_targets(config: dict) -> list[str]:
    """What `rule all` builds: every configured table (CSV + Markdown) and the report's figures."""
    return [Layout.of(config).table(table) for table in config["tables"]] + plot_targets(config)
