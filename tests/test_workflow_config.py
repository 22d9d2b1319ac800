"""The workflow's config: schema validation, cross-field checks, and what the rules derive from it."""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from avqa import workflow as W

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")
SHARED = ROOT.parent / "shared/data/music_avqa"


@pytest.fixture()
def config() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def _merged(base: dict, overlay: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def test_default_config_and_music_avqa_overlay_are_valid(config):
    validate(copy.deepcopy(config), SCHEMA)
    W.check_config(config)
    overlay = yaml.safe_load((ROOT / "workflow/configs/music_avqa.yaml").read_text())
    merged = _merged(config, overlay)
    validate(merged, SCHEMA)
    W.check_config(merged)
    assert merged["features"]["T1"] == 60 and merged["train"]["epochs"] == 30


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda c: c.update(featurez=1), "'featurez' was unexpected"),
        (lambda c: c.update(dataset="kinetics"), "'kinetics' is not one of"),
        (lambda c: c["features"].update(T1="sixty"), "'sixty' is not of type 'integer'"),
        (lambda c: c["train"].update(lr=0), "lr"),
        (lambda c: c.update(device="tpu"), "'tpu' is not one of"),
        (lambda c: c["variants"]["tass"].update(model="bert"), "'bert' is not one of"),
        (lambda c: c.update(weights={"clip": "random"}), "weights"),
    ],
)
def test_schema_rejects_wrong_keys_and_values_naming_them(config, edit, needle):
    edit(config)
    with pytest.raises(Exception, match="Error validating config") as err:
        validate(config, SCHEMA)
    assert needle in str(err.value)


def test_cross_field_checks(config):
    bad = copy.deepcopy(config)
    bad["features"]["T1"] = 25
    with pytest.raises(W.ConfigError, match=r"T1 \(25\) must be a multiple of preprocess.T \(10\)"):
        W.check_config(bad)
    bad = copy.deepcopy(config)
    bad["tables"]["table1"].append("nope")
    with pytest.raises(W.ConfigError, match=r"tables.table1 names unknown variants \['nope'\]"):
        W.check_config(bad)


def test_paths_follow_the_dataset(config):
    assert W.annotation_json(config, "val") == "results/synthetic/avqa-val.json"
    assert W.videos_dir(config) == "results/synthetic/videos"
    config["dataset"] = "music_avqa"
    assert W.annotation_json(config, "test") == config["music_avqa"]["annotations"]["test"]
    assert W.videos_dir(config) == config["music_avqa"]["videos_dir"]


def test_weights_per_encoder(config):
    assert W.encoder_weights(config, "clip_rn50") == "random"
    config["weights"] = {"clip": "ckpt/RN50.pt", "vggish": "pretrained"}
    assert W.encoder_weights(config, "clip_rn50") == "ckpt/RN50.pt"
    assert W.encoder_weights(config, "vggish") == "pretrained"
    assert "--weights ckpt/RN50.pt" in W.extract_args(config, "clip_rn50")


def test_run_config_and_table_runs(config):
    config["seeds"] = [0, 1]
    spec = W.run_config(config, "tass_no_audio", 1)
    assert spec["model"] == "tass" and spec["modalities"] == ["visual"] and spec["seed"] == 1
    assert spec["pooled"]["train"] == "results/pooled/avg/train.zarr"
    assert spec["epochs"] == config["train"]["epochs"] and spec["label"] == "TASS-Net w/o audio input"
    runs = W.table_runs(config, "table1")
    assert len(runs) == len(config["tables"]["table1"]) * 2 == len(set(runs))
    assert "results/runs/synthetic/tass/seed1" in runs


def _dry_run(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_dry_run_annotations_synthetic_default():
    out = _dry_run("results/annotations/test.parquet")
    assert "rule synthesize" in out and "rule annotations" in out


@pytest.mark.skipif(not SHARED.exists(), reason="shared MUSIC-AVQA annotations not present")
def test_dry_run_annotations_music_avqa(tmp_path):
    overlay = tmp_path / "real.yaml"
    overlay.write_text(yaml.safe_dump({"music_avqa": {
        "videos_dir": str(tmp_path / "videos"), "drop_conflicting_duplicates": False,
        "annotations": {"train": str(SHARED / "avqa-val.json"), "val": str(SHARED / "avqa-val.json"),
                        "test": str(SHARED / "avqa-test.json")}}}))
    out = _dry_run("results/annotations/test.parquet", "--configfile", str(overlay), "--config", "dataset=music_avqa")
    assert "rule annotations" in out and "rule synthesize" not in out


def test_bad_config_stops_snakemake_naming_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("featurez: 1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(bad)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    assert "'featurez' was unexpected" in proc.stdout + proc.stderr
