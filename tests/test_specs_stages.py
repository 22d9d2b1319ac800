"""The stages' specs beyond shards (avqa.specs.data, avqa.specs.reporting): each builds from the default config
and every overlay, round-trips through JSON, and a command given `--config` computes what `--spec` computes; one
list of poolings; the train keys agree between the config, its schema and the run spec."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from run_fixtures import make_run
from snakemake.utils import validate

from avqa import workflow as W
from avqa.specs import SpecError
from avqa.specs.data import AnnotationsSpec, StandinsSpec, SynthesizeSpec
from avqa.specs.reporting import POOLINGS, AttentionSpec, CurvesSpec, PoolSpec, ResultsTableSpec

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "workflow/configs"
# Each overlay as it is used: the v2.0 ones after music_avqa.yaml (their header says so).
OVERLAYS = [(p,) if not p.stem.startswith("music_avqa_v2") else (CONFIGS / "music_avqa.yaml", p)
            for p in sorted(CONFIGS.glob("*.yaml"))] + [(ROOT / "tests/data/tiny.yaml",)]


def _merged(base: dict, overlay: dict) -> dict:
    """`overlay` over `base` key by key, as Snakemake merges --configfile."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _config(*overlays: Path) -> dict:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for overlay in overlays:
        config = _merged(config, yaml.safe_load(overlay.read_text()))
    validate(config, str(W.SCHEMA))            # fills the schema's defaults, as the Snakefile does
    W.check_config(config)
    return config


def stage_specs(config: dict) -> list:
    """Every stage spec the workflow builds from `config` (standins only when the config makes stand-ins)."""
    specs = [W.synthesize_spec(config), W.annotations_spec(config), W.attention_spec(config)]
    specs += [W.standins_spec(config)] if W.standins(config) else []
    keys = {W.variant_pooling(config, v) for t in config["tables"] for v in W.table_variants(config, t)}
    specs += [W.pool_spec(config, key) for key in sorted(keys)]
    specs += [build(config, table) for table in config["tables"] for build in (W.table_spec, W.curves_spec)]
    return specs


@pytest.mark.parametrize("overlays", [(), *OVERLAYS], ids=lambda ps: "+".join(p.stem for p in ps) or "config")
def test_every_stage_spec_builds_from_the_config_and_round_trips_json(overlays):
    specs = stage_specs(_config(*overlays))
    kinds = {type(s) for s in specs}
    assert {SynthesizeSpec, AnnotationsSpec, AttentionSpec, PoolSpec, ResultsTableSpec, CurvesSpec} <= kinds
    for spec in specs:
        assert type(spec).from_json(spec.to_json()) == spec
        assert json.loads(spec.to_json()) == spec.to_dict()


def test_the_specs_carry_the_configs_values():
    config = _config()
    syn = W.synthesize_spec(config)
    assert (syn.videos.train, syn.seconds, syn.instruments) == (120, 20, 8)        # instruments: schema default
    assert W.annotations_spec(config) == AnnotationsSpec(release="v1", drop_conflicting_duplicates=False)
    assert W.attention_spec(config) == AttentionSpec(questions=config["attention_questions"],
                                                     frame_backend=config["features"]["decode"]["backend"])
    assert W.pool_spec(config, "none-clip_vit") == PoolSpec(method="none", visual_encoder="clip_vit",
                                                            T=config["features"]["T1"])
    assert W.pool_spec(config, "stride") == PoolSpec(method="stride", visual_encoder="clip_rn50",
                                                     T=config["preprocess"]["T"])
    table1 = W.table_spec(config, "table1")
    assert [r.variant for r in table1.rows] == W.table_variants(config, "table1") and table1.baseline == "qonly"
    assert table1.rows[0].runs == (W.run_dir(config, "tass", 0),) and table1.rows[0].label is None
    table2 = W.table_spec(config, "table2")
    assert table2.baseline is None and table2.compare == () and len(table2.rows[0].runs) == 2
    assert dict((r.variant, r.label) for r in table2.rows)["tass"] == "TASS-Net (full)"
    assert W.curves_spec(config, "table2").rows == table2.rows
    v2 = _config(CONFIGS / "music_avqa.yaml", CONFIGS / "music_avqa_v2.yaml")
    assert W.annotations_spec(v2).release == "v2"
    scale = _config(CONFIGS / "scale.yaml")
    assert W.standins_spec(scale) == StandinsSpec(seconds=2, width=96, height=72, video_fps=5, bases=8)
    with pytest.raises(W.ConfigError, match="no music_avqa.standins"):
        W.standins_spec(config)


@pytest.mark.parametrize("path, value", [(("synthetic", "instruments"), 8), (("music_avqa", "release"), "v1"),
                                         (("attention_questions",), 3)])
def test_a_setting_an_overlay_omits_takes_the_schemas_default(path, value):
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    node = raw
    for key in path[:-1]:
        node = node[key]
    node.pop(path[-1], None)
    validate(raw, str(W.SCHEMA))
    node = raw
    for key in path:
        node = node[key]
    assert node == value


def test_one_list_of_poolings_and_the_schema_agrees():
    schema = yaml.safe_load(W.SCHEMA.read_text())
    variant = schema["properties"]["variants"]["additionalProperties"]["properties"]
    assert tuple(variant["pooling"]["enum"]) == POOLINGS
    from avqa.features import pooling

    assert pooling.POOLINGS is POOLINGS and W.POOLINGS is POOLINGS
    assert W.pooled_key_pattern().startswith(f"({'|'.join(POOLINGS)})")
    with pytest.raises(SpecError, match="method: Input should be 'avg', 'stride' or 'none'"):
        PoolSpec.from_dict({"method": "max", "visual_encoder": "clip_rn50", "T": 10})


def test_the_train_keys_agree_between_config_schema_and_run_spec():
    """The train section is written in config.yaml, the schema and the run spec's schema: a key added to one and
    not the others fails here."""
    from avqa.training.spec import RUN_CONFIG_SCHEMA

    config = _config()
    properties = yaml.safe_load(W.SCHEMA.read_text())["properties"]
    train = properties["train"]
    assert set(train["required"]) <= set(config["train"]) <= set(train["properties"])
    assert set(train["properties"]) <= set(RUN_CONFIG_SCHEMA["properties"]), "a train key the run spec refuses"
    override = properties["variants"]["additionalProperties"]["properties"]["train"]["properties"]
    assert set(override) <= set(train["properties"]), "a variant's train override the train section lacks"
    run_spec = W.run_config(config, "tass", 0)
    assert {k: run_spec.get(k) for k in config["train"]} == config["train"]    # every key carried, unchanged
    with_betas = copy.deepcopy(config)
    with_betas["train"]["betas"] = [0.9, 0.98]
    assert W.run_config(with_betas, "tass", 0)["betas"] == [0.9, 0.98]


def _avqa(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avqa", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def _tiny_config_file(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    edit(raw)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_synthesize_by_config_file_equals_by_spec(tmp_path):
    def tiny(raw):
        raw["synthetic"].update(videos={"train": 2, "val": 1, "test": 1}, seconds=2, questions_per_video=4,
                                width=64, height=64, video_fps=2, audio_rate=16000, instruments=3)
        raw["preprocess"]["T"] = 2
        raw["features"]["T1"] = 2

    config_file = _tiny_config_file(tmp_path, tiny)
    spec = W.synthesize_spec(W.load_config(config_file))
    assert spec.instruments == 3 and spec.videos.train == 2
    for how, value in (("--spec", spec.to_json()), ("--config", str(config_file))):
        proc = _avqa("synthesize", "--out-dir", str(tmp_path / how), how, value)
        assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("avqa-train.json", "avqa-val.json", "avqa-test.json", "scenes.json"):
        assert (tmp_path / "--spec" / name).read_bytes() == (tmp_path / "--config" / name).read_bytes(), name
    bad = _avqa("synthesize", "--out-dir", str(tmp_path / "bad"), "--spec", '{"seconds": 2}')
    assert bad.returncode == 2 and "synthesize --spec: " in bad.stderr and "Field required" in bad.stderr


def test_table_by_config_file_equals_by_spec(tmp_path):
    """`table --config` builds the rows, labels and comparisons from the config, as the rule's --spec does."""
    results = tmp_path / "results"
    config_file = _tiny_config_file(tmp_path, lambda raw: raw.update(results_dir=str(results)))
    config = W.load_config(config_file)
    for variant in W.table_variants(config, "table4"):
        for seed in W.table_seeds(config, "table4"):
            run_dir = Path(W.run_dir(config, variant, seed))
            make_run(run_dir.parents[1], variant, seed, 1 + (seed + len(variant)) % 3, label=variant)
    spec = W.table_spec(config, "table4")
    outs = {}
    for how, value in (("--spec", spec.to_json()), ("--config", str(config_file))):
        out = tmp_path / how / "table4.csv"
        proc = _avqa("table", "--table", "table4", how, value, "--out", str(out))
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs[how] = out.read_bytes()
    assert outs["--spec"] == outs["--config"]
    assert b"add (ours)" in outs["--spec"]                                     # the table's label for tass


def test_pool_by_config_needs_the_pooled_key(tmp_path):
    proc = _avqa("pool", "--visual", "v.zarr", "--vggish", "a.zarr", "--annotations", "a.parquet", "--split",
                 "test", "--config", str(ROOT / "config.yaml"), "--out", str(tmp_path / "p.zarr"))
    assert proc.returncode == 2 and "--pooled-key" in proc.stderr and proc.stderr.count("\n") == 1
