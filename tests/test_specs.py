"""Stage specs (avqa.specs): one frozen, validated dataclass per stage, built from config in one place, and the
defaults in one place (config.yaml + its schema)."""
from __future__ import annotations

import copy
import dataclasses
import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from snakemake.utils import validate

import avqa.specs
from avqa import workflow as W
from avqa.specs import Spec, SpecError
from avqa.specs.features import ShardsSpec

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def config() -> dict:
    return W.load_config(ROOT / "config.yaml")


def spec_classes() -> list[type[Spec]]:
    """Every stage spec in avqa.specs' modules."""
    classes = []
    for info in pkgutil.iter_modules(avqa.specs.__path__):
        module = importlib.import_module(f"avqa.specs.{info.name}")
        classes += [obj for obj in vars(module).values()
                    if isinstance(obj, type) and issubclass(obj, Spec) and obj is not Spec
                    and obj.__module__ == module.__name__]
    return classes


def test_every_spec_is_a_frozen_dataclass_without_defaults_of_its_own():
    """Defaults live in config.yaml and its schema: a field default would be a second place for one value."""
    classes = spec_classes()
    assert ShardsSpec in classes
    for cls in classes:
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, cls
        with_default = [f.name for f in dataclasses.fields(cls)
                        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING]
        assert not with_default, f"{cls.__name__} has defaults {with_default}: put them in config.yaml / the schema"


def _schema_defaults(node: dict, path: tuple = ()) -> dict[tuple, object]:
    found = {}
    for key, sub in (node.get("properties") or {}).items():
        if isinstance(sub, dict):
            if "default" in sub:
                found[path + (key,)] = sub["default"]
            found.update(_schema_defaults(sub, path + (key,)))
    return found


def test_schema_defaults_agree_with_config_yaml():
    """A setting may be stated in config.yaml and defaulted by the schema (for overlays that omit it): the two
    must be the same value, else a run's result would depend on which file a user edited."""
    schema = yaml.safe_load(W.SCHEMA.read_text())
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    defaults = _schema_defaults(schema)
    assert defaults, "the schema states no defaults: this test checks nothing"
    for path, default in defaults.items():
        node = raw
        for key in path:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        if node != {}:
            assert node == default, f"{'.'.join(path)}: config.yaml says {node!r}, the schema's default {default!r}"


def test_schema_default_fills_an_omitted_setting(config):
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    del raw["features"]["max_missing_fraction"]
    validate(raw, str(W.SCHEMA))
    assert W.shards_spec(raw) == W.shards_spec(config)


def test_json_round_trip_and_equal_specs_give_equal_strings(config):
    spec = W.shards_spec(config)
    assert ShardsSpec.from_json(spec.to_json()) == spec
    assert spec.to_json() == W.shards_spec(copy.deepcopy(config)).to_json()
    changed = copy.deepcopy(config)
    changed["features"]["videos_per_shard"] = 7
    assert W.shards_spec(changed).to_json() != spec.to_json()


@pytest.mark.parametrize("edit, needle", [
    (lambda d: d.update(videos_per_shard="80"), "videos_per_shard: Input should be a valid integer"),
    (lambda d: d.update(videos_per_shard=1.5), "videos_per_shard"),
    (lambda d: d.update(surprise=1), "surprise: Unexpected keyword argument"),
    (lambda d: d.pop("max_missing_fraction"), "max_missing_fraction: Field required"),
])
def test_a_bad_spec_names_its_stage_and_field(config, edit, needle):
    data = W.shards_spec(config).to_dict()
    edit(data)
    with pytest.raises(SpecError, match="shards spec: ") as err:
        ShardsSpec.from_dict(data)
    assert needle in str(err.value)
    with pytest.raises(SpecError, match="Invalid JSON"):
        ShardsSpec.from_json("{videos_dir: x}")


def test_a_spec_cannot_be_changed_in_place(config):
    with pytest.raises(dataclasses.FrozenInstanceError):
        W.shards_spec(config).videos_per_shard = 1


def _annotations(tmp_path: Path, ids: list[str]) -> str:
    path = tmp_path / "train.parquet"
    pd.DataFrame({"video_id": ids, "question_id": range(len(ids))}).to_parquet(path)
    return str(path)


def test_shards_command_by_spec_and_by_config_file_agree(tmp_path):
    """The rule passes --spec; by hand, --config builds the same spec from a config file."""
    videos = tmp_path / "videos"
    videos.mkdir()
    for v in ("a", "b", "c"):
        (videos / f"{v}.mp4").write_bytes(v.encode())
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    raw["synthetic"]["out_dir"] = str(tmp_path)
    raw["features"]["videos_per_shard"] = 2
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    annotations = _annotations(tmp_path, ["a", "b", "c"])
    spec = W.shards_spec(W.load_config(tmp_path / "config.yaml"))
    outs = []
    for how, value in (("--spec", spec.to_json()), ("--config", str(tmp_path / "config.yaml"))):
        out = tmp_path / f"shards{how}.json"
        subprocess.run([sys.executable, "-m", "avqa", "shards", "--annotations", annotations, how, value,
                        "--out", str(out)], check=True, cwd=ROOT, capture_output=True)
        outs.append(json.loads(out.read_text()))
    assert outs[0] == outs[1] and outs[0]["videos_per_shard"] == 2 and outs[0]["videos_dir"] == str(videos)
    bad = subprocess.run([sys.executable, "-m", "avqa", "shards", "--annotations", annotations, "--spec",
                          '{"videos_dir": "x"}', "--out", str(tmp_path / "x.json")], cwd=ROOT, capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "shards --spec: " in bad.stderr and "Field required" in bad.stderr
