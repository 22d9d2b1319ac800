"""The feature stages' specs (ExtractSpec per encoder, QuestionsSpec, QuestionsVitSpec): built from config in one
place (avqa.workflow), their defaults in config.yaml + the schema only, and the commands reading exactly them."""
from __future__ import annotations

import argparse
import copy
import dataclasses
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from avqa import workflow as W
from avqa.cli import main as cli
from avqa.features import extract, questions
from avqa.features.extract import ENCODER_OPTIONS, check_options
from avqa.features.layout import REGISTRY
from avqa.specs import SpecError, spec_from_args
from avqa.specs.features import ExtractSpec, QuestionsSpec, QuestionsVitSpec

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def config() -> dict:
    return W.load_config(ROOT / "config.yaml")


def raw_config() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


@pytest.mark.parametrize("encoder", list(REGISTRY))
def test_each_encoders_spec_sets_exactly_the_settings_it_reads(config, encoder):
    spec = W.extract_spec(config, encoder)
    assert ExtractSpec.from_json(spec.to_json()) == spec and spec.encoder == encoder
    assert {o for o in ENCODER_OPTIONS if getattr(spec, o) is not None} == set(REGISTRY[encoder].options)
    check_options(spec)
    assert spec.T1 == config["features"]["T1"] and spec.workers == config["features"]["decode_workers"]


def test_a_setting_of_one_encoder_changes_only_its_own_jobs_spec(config):
    """The rule params are the spec's JSON: a changed ViT backbone reruns CLIP ViT jobs, not the others."""
    before = {e: W.extract_spec(config, e).to_json() for e in REGISTRY}
    changed = copy.deepcopy(config)
    changed["features"]["clip_vit"]["backbone"] = "ViT-B-16"
    changed["weights_bn3_gamma"] = 0.5
    after = {e: W.extract_spec(changed, e).to_json() for e in REGISTRY}
    assert [e for e in REGISTRY if before[e] != after[e]] == ["clip_rn50", "clip_vit"]
    assert W.questions_vit_spec(changed).backbone == "ViT-B-16" != W.questions_vit_spec(config).backbone
    assert W.questions_spec(changed) == W.questions_spec(config)            # the text tower reads no bn3 gamma


def test_schema_defaults_fill_omitted_feature_settings(config):
    """An overlay may omit a decode / clip_vit key or weights_bn3_gamma: the schema's default (= config.yaml's)."""
    raw = raw_config()
    del raw["features"]["decode"]["deblock"], raw["features"]["clip_vit"]["n_tokens"], raw["weights_bn3_gamma"]
    validate(raw, str(W.SCHEMA))
    for encoder in REGISTRY:
        assert W.extract_spec(raw, encoder) == W.extract_spec(config, encoder), encoder


@pytest.mark.parametrize("key", ["fps", "sample_rate"])
def test_one_valued_settings_are_constants_not_config(key):
    """One frame per second and VGGish's 16 kHz are fixed by the store layout: a config naming them is refused."""
    from avqa.features import layout

    raw = raw_config()
    raw["features"][key] = {"fps": 1, "sample_rate": 16000}[key]
    with pytest.raises(Exception, match=key):
        validate(raw, str(W.SCHEMA))
    assert (layout.FPS, layout.SAMPLE_RATE) == (1, 16000)


def test_weights_per_encoder_come_from_the_registry_key(config):
    config["weights"] = {"clip": "ckpt/RN50.pt", "vggish": "pretrained", "clip_vit": "vit.pt"}
    assert W.extract_spec(config, "clip_rn50").weights == W.questions_spec(config).weights == "ckpt/RN50.pt"
    assert W.extract_spec(config, "clip_vit").weights == W.questions_vit_spec(config).weights == "vit.pt"
    assert W.extract_spec(config, "vggish").weights == "pretrained"
    with pytest.raises(W.ConfigError, match="weights has no entry 'resnet18' for the resnet18 features"):
        W.extract_spec(config, "resnet18")


def test_a_spec_with_a_missing_or_stray_encoder_setting_is_refused(config):
    clip = W.extract_spec(config, "clip_rn50")
    with pytest.raises(SpecError, match="encoder clip_rn50: bn3_gamma required; clip_vit must be null"):
        check_options(dataclasses.replace(clip, bn3_gamma=None, clip_vit=W.clip_vit_spec(config)))
    data = clip.to_dict()
    data["precision"]["cpu"] = "fp8"
    with pytest.raises(SpecError, match="extract spec: precision.cpu: Input should be 'fp32', 'bf16' or 'fp16'"):
        ExtractSpec.from_dict(data)


def _parse(register, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(argv)


@pytest.mark.parametrize("command, cls, build", [
    ("questions", QuestionsSpec, W.questions_spec), ("questions-vit", QuestionsVitSpec, W.questions_vit_spec)])
def test_question_commands_read_the_same_spec_by_json_and_by_config(command, cls, build, config):
    expected = build(config)
    paths = ["--annotations", "a.parquet", "--out", "q.zarr"]
    by_json = _parse(questions.register, [command, *paths, "--spec", expected.to_json()])
    by_config = _parse(questions.register, [command, *paths, "--config", str(ROOT / "config.yaml")])
    assert spec_from_args(by_json, cls, build) == spec_from_args(by_config, cls, build) == expected


def test_extract_reads_the_same_spec_by_json_and_by_config(config, monkeypatch, tmp_path):
    """The rule passes --spec; by hand --config --encoder builds the same spec; the command's only other
    arguments are the rule's paths and threads."""
    seen = []

    def stop(spec, *args):
        seen.append(spec)
        raise SystemExit(0)

    monkeypatch.setattr(extract, "read_shard", lambda *a: (tmp_path, []))
    monkeypatch.setattr(extract, "start_decoding", stop)
    paths = ["--shards", "s.json", "--shard", "s", "--out", "o.zarr", "--failures", "f.tsv", "--threads", "1"]
    for how in (["--spec", W.extract_spec(config, "resnet18").to_json()],
                ["--config", str(ROOT / "config.yaml"), "--encoder", "resnet18"]):
        with pytest.raises(SystemExit):
            cli(["extract", *how, *paths])
    assert seen[0] == seen[1] == W.extract_spec(config, "resnet18")
    flags = set(vars(_parse(extract.register, ["extract", "--spec", "{}", *paths])))
    assert flags == {"spec", "config", "encoder", "shards", "shard", "out", "tokens_out", "failures", "threads",
                     "func"}


def test_extract_by_config_without_an_encoder_is_one_line(capsys):
    assert cli(["extract", "--config", str(ROOT / "config.yaml"), "--shards", "s.json", "--shard", "s", "--out",
                "o.zarr", "--failures", "f.tsv", "--threads", "1"]) == 2
    assert capsys.readouterr().err == ("avqa extract: error: extract: --config needs --encoder (the encoder whose "
                                       "spec to build)\n")
