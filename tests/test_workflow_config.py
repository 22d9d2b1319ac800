"""The workflow's config: schema validation, cross-field checks, and what the rules derive from it."""
from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from snakemake.utils import validate

from avqa import workflow as W
from avqa.paths import Layout
from conftest import MUSIC_AVQA_DIR

P = Layout()
ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")
SHARED = MUSIC_AVQA_DIR


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
    # The paper's grid: every table with 3 seeds, each keeping the variants and labels of config.yaml.
    assert all(W.table_seeds(merged, table) == [0, 1, 2] for table in merged["tables"])
    assert W.table_variants(merged, "table2") == W.table_variants(config, "table2")
    assert W.table_labels(merged, "table4") == {"tass": "add (ours)"}


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
        (lambda c: c["variants"]["tass_mul"].update(combine="sum"), "'sum' is not one of"),
        (lambda c: c["variants"]["tass_tau0"].update(tau="small"), "'small' is not of type 'number'"),
        (lambda c: c["tables"]["table2"].update(seedz=[0]), "table2"),
        (lambda c: c["tables"]["table3"].update(seeds=[]), "table3"),
        (lambda c: c.update(full_model="tass net"), "does not match"),
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


def test_cross_field_checks_of_the_experiment_grid(config):
    bad = copy.deepcopy(config)
    bad["tables"]["table4"]["variants"].append("tass_tau9")
    with pytest.raises(W.ConfigError, match=r"tables.table4 names unknown variants \['tass_tau9'\]"):
        W.check_config(bad)
    bad = copy.deepcopy(config)
    bad["tables"]["table3"]["labels"]["qonly"] = "Q"
    with pytest.raises(W.ConfigError, match=r"tables.table3.labels names variants \['qonly'\] that the table"):
        W.check_config(bad)
    bad = copy.deepcopy(config)
    bad["full_model"] = "tass_full"
    with pytest.raises(W.ConfigError, match="full_model 'tass_full' is not a variant"):
        W.check_config(bad)


def test_tables_as_lists_or_objects_with_their_own_seeds_and_labels(config):
    config["seeds"] = [0, 1, 2]
    clip_block = [v for v in config["tables"]["table1"] if not v.endswith("_resnet18")]
    assert W.table_variants(config, "table1") == clip_block                   # blocks: [clip] by default
    assert W.table_seeds(config, "table1") == [0, 1, 2] and W.table_labels(config, "table1") == {}
    assert W.table_seeds(config, "table2") == config["tables"]["table2"]["seeds"]
    assert W.table_labels(config, "table4") == {"tass": "add (ours)"}
    config["tables"]["table5"].pop("seeds")
    assert W.table_seeds(config, "table5") == [0, 1, 2]           # no seeds of its own: the top-level ones
    spec = W.table_spec(config, "table7")
    assert [(r.variant, r.label) for r in spec.rows][-1] == ("tass", "single-stream (ours)") and spec.full == ("tass",)
    with pytest.raises(W.ConfigError, match="no table 'table9'"):
        W.table_runs(config, "table9")


def test_encoder_blocks_switch_the_resnet18_rows_and_each_block_has_its_full_model(config):
    config["blocks"] = ["clip", "resnet18"]
    assert W.table_variants(config, "table1") == config["tables"]["table1"]
    assert W.table_variants(config, "table3") == ["tass_stride", "tass", "tass_stride_resnet18", "tass_resnet18"]
    assert W.full_models(config, "table3") == ["tass", "tass_resnet18"]
    assert W.table_spec(config, "table3").full == ("tass", "tass_resnet18")
    spec = W.run_config(config, "tass_stride_resnet18", 0)
    assert spec["visual_encoder"] == "resnet18" and spec["model_options"]["visual_dim"] == 512
    assert spec["pooled"]["train"] == P.pooled("stride-resnet18", "train")
    assert W.parse_pooled_key("stride-resnet18") == ("stride", "resnet18") and W.pooled_key("avg") == "avg"
    config["blocks"] = ["clip", "vgg"]
    with pytest.raises(W.ConfigError, match=r"unknown encoder blocks \['vgg'\]"):
        W.check_config(config)


def test_the_peers_run_specs_name_their_extra_inputs(config):
    avst = W.run_config(config, "avst", 0)
    assert avst["words"] == P.words() and avst["init_from"] == W.pretrain_model(config, "avst", 0)
    pretrain = W.pretrain_config(config, "avst", 0)
    assert pretrain["model_options"]["objective"] == "grounding" and "init_from" not in pretrain
    assert pretrain["best_on"] == "last_epoch" and pretrain["epochs"] == config["variants"]["avst"]["pretrain"]["epochs"]
    assert W.run_config(config, "sasr", 0)["instruments"] == P.instruments()
    tspm = W.run_config(config, "tspm", 0)
    assert tspm["clip_texts"] == P.questions_vit() and tspm["pooled"]["test"] == P.pooled("none-clip_vit", "test")
    assert tspm["model_options"] == {"frame_dim": 512, "token_dim": 768, "n_tokens": 14, "text_dim": 512}
    assert W.pooled_T(config, "none-clip_vit") == config["features"]["T1"]
    assert "words" not in W.run_config(config, "tass", 0)
    config["variants"]["sasr"]["train"] = {"lr": 1e-4, "epochs": 80}     # a variant's own recipe
    sasr = W.run_config(config, "sasr", 0)
    assert (sasr["lr"], sasr["epochs"], sasr["batch_size"]) == (1e-4, 80, config["train"]["batch_size"])


def test_every_ablation_of_the_paper_is_a_variant_and_the_full_model_is_shared(config):
    expected = {
        "table2": ["tass_no_target", "tass_no_ls", "tass_no_cms", "tass_no_tsg", "tass_no_jtg", "tass_no_audio",
                   "tass_no_visual", "tass"],
        "table3": ["tass_stride", "tass"], "table4": ["tass_mul", "tass_max", "tass"],
        "table5": ["tass_tau0", "tass_tau0005", "tass_tau002", "tass", "tass_tau003"],
        "table6": ["tass_cat_av", "tass_cat_va", "tass_il_av", "tass"],
        "table7": ["tass_dual_no_cms", "tass_dual", "tass_no_cms", "tass"],
    }
    assert {t: W.table_variants(config, t) for t in expected} == expected
    options = {v: W.run_config(config, v, 0)["model_options"] for vs in expected.values() for v in vs}
    assert options["tass"] == {}
    assert options["tass_mul"] == {"combine": "mul", "tau": 0.02} and options["tass_max"] == {"combine": "max"}
    assert [options[v]["tau"] for v in ("tass_tau0", "tass_tau0005", "tass_tau002", "tass_tau003")] == \
        [0, 0.005, 0.02, 0.03]
    assert [options[v]["order"] for v in ("tass_cat_av", "tass_cat_va", "tass_il_av")] == \
        ["Cat(A;V)", "Cat(V;A)", "IL(A;V)"]
    assert options["tass_dual_no_cms"] == {"stream": "dual", "use_cms": False}
    assert W.run_config(config, "tass_stride", 0)["pooled"]["test"] == P.pooled("stride", "test")
    from avqa.models import build_model

    for variant, opts in options.items():                         # every option is one the model accepts
        build_model("tass", **opts)


def test_report_targets(config):
    targets = W.all_targets(config)
    assert targets[:len(config["tables"])] == [P.table(t) for t in config["tables"]]
    assert P.plot("table5", "accuracy") in targets and P.plot("table2", "curves") in targets
    assert targets[-1] == P.attention_plot("tass", 0)
    assert W.attention_inputs(config, "tass_stride", 1)[-1] == P.pooled("stride", "test")
    config["full_model"] = "qonly"                                # nothing to draw for the question-only model
    assert not any("attention" in t for t in W.all_targets(config))


def test_paths_follow_the_dataset(config):
    assert W.annotation_json(config, "val") == f"{P.synthetic()}/avqa-val.json"
    assert W.videos_dir(config) == f"{P.synthetic()}/videos"
    config["dataset"] = "music_avqa"
    assert W.annotation_json(config, "test") == config["music_avqa"]["annotations"]["test"]
    assert W.videos_dir(config) == config["music_avqa"]["videos_dir"]


def test_weights_per_encoder(config):
    assert W.encoder_weights(config, "clip_rn50") == "random"
    config["weights"] = {"clip": "ckpt/RN50.pt", "vggish": "pretrained"}
    assert W.encoder_weights(config, "clip_rn50") == "ckpt/RN50.pt"
    assert W.encoder_weights(config, "vggish") == "pretrained"
    assert W.extract_spec(config, "clip_rn50").weights == "ckpt/RN50.pt"


def test_run_config_and_table_runs(config):
    config["seeds"] = [0, 1]
    spec = W.run_config(config, "tass_no_audio", 1)
    assert spec["model"] == "tass" and spec["modalities"] == ["visual"] and spec["seed"] == 1
    assert spec["pooled"]["train"] == P.pooled("avg", "train")
    assert spec["epochs"] == config["train"]["epochs"] and spec["label"] == "TASS-Net w/o audio input"
    runs = W.table_runs(config, "table1")
    assert len(runs) == len(W.table_variants(config, "table1")) * 2 == len(set(runs))
    assert P.run("synthetic", "tass", 1) in runs


def _dry_run(workdir: Path, *args: str) -> str:
    """`snakemake -n` of the default config in an empty working directory (the repository's own results/ and
    a concurrent run there must not change what is planned)."""
    shutil.copy(ROOT / "config.yaml", workdir / "config.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), "-n",
         "--cores", "1", *args],
        cwd=workdir, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _train_jobs(workdir: Path, *targets: str) -> int:
    """How many `train` jobs a dry run plans for `targets` (from the job stats table)."""
    found = re.search(r"^train\s+(\d+)$", _dry_run(workdir, "--", *targets), flags=re.M)
    return int(found.group(1)) if found else 0


def test_dry_run_expands_the_ablation_grid_and_shares_runs(tmp_path, config):
    n_seeds = len(W.table_seeds(config, "table2"))
    assert _train_jobs(tmp_path, P.table("table2")) == 8 * n_seeds
    # table2 and table7 share the full model and the w/o L_cms single stream: 8 + 2 new variants, not 8 + 4.
    assert _train_jobs(tmp_path, P.table("table2"), P.table("table7")) == 10 * n_seeds
    # table1 (seed 0 only) and table3 share tass seed 0.
    n_table1 = len(W.table_variants(config, "table1"))
    assert _train_jobs(tmp_path, P.table("table1"), P.table("table3")) == n_table1 + 2 * n_seeds - 1
    unique = {run for table in config["tables"] for run in W.table_runs(config, table)}
    assert _train_jobs(tmp_path, "all") == len(unique)


def test_dry_run_annotations_synthetic_default(tmp_path):
    out = _dry_run(tmp_path, P.annotations("test"))
    assert "rule synthesize" in out and "rule annotations" in out


@pytest.mark.skipif(not SHARED.exists(), reason="shared MUSIC-AVQA annotations not present")
def test_dry_run_annotations_music_avqa(tmp_path):
    overlay = tmp_path / "real.yaml"
    overlay.write_text(yaml.safe_dump({"music_avqa": {
        "videos_dir": str(tmp_path / "videos"), "drop_conflicting_duplicates": False,
        "annotations": {"train": str(SHARED / "avqa-val.json"), "val": str(SHARED / "avqa-val.json"),
                        "test": str(SHARED / "avqa-test.json")}}}))
    out = _dry_run(tmp_path, P.annotations("test"), "--configfile", str(overlay),
                   "--config", "dataset=music_avqa")
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


def test_gpu_resource_follows_the_device():
    import torch

    from avqa.workflow import gpu_jobs

    assert gpu_jobs({"device": "cpu"}) == 0
    assert gpu_jobs({"device": "cuda"}) == 1
    assert gpu_jobs({"device": "auto"}) == int(torch.cuda.is_available())


def test_results_dir_moves_every_output_and_values_are_shell_quoted(config):
    config["results_dir"] = "my results"
    config["weights"] = {"clip": "ckpt dir/RN50.pt", "vggish": "random"}
    paths = Layout.of(config)
    assert all(t.startswith("my results/") for t in W.all_targets(config))
    assert W.synthetic_dir(config) == "my results/synthetic" and W.videos_dir(config) == "my results/synthetic/videos"
    spec = W.run_config(config, "tass", 0)
    assert spec["questions"] == paths.questions() == "my results/features/questions.zarr"
    assert all(v.startswith("my results/") for v in (*spec["annotations"].values(), *spec["pooled"].values()))
    assert W.extract_spec(config, "clip_rn50").weights == W.questions_spec(config).weights == "ckpt dir/RN50.pt"
    assert W.table_spec(config, "table1").rows[0].runs == ("my results/runs/synthetic/tass/seed0",)
    config["synthetic"]["out_dir"] = "elsewhere/syn"             # an explicit out_dir wins
    assert W.annotation_json(config, "test") == "elsewhere/syn/avqa-test.json"


def test_train_rule_trains_only_its_own_experiment(tmp_path):
    """The {experiment} wildcard is this config's experiment: another experiment's run path matches no rule."""
    out = _dry_run(tmp_path, P.run_file("metrics.json", "synthetic", "qonly", 0))
    assert "rule train" in out and "experiment=synthetic" in out
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path), "-n",
         "--cores", "1", P.run_file("metrics.json", "other", "qonly", 0)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "MissingRuleException" in proc.stdout + proc.stderr


def test_conda_environment_file_matches_the_set_up():
    """envs/avqa.yaml is the conda twin of scripts/setup.sh (README): Python 3.11, ffmpeg, this package."""
    env = yaml.safe_load((ROOT / "envs/avqa.yaml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps and "ffmpeg" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert pip == ["-e .."] and (ROOT / "envs/../pyproject.toml").is_file()
    assert not any("conda:" in p.read_text() for p in (ROOT / "workflow/rules").glob("*.smk"))


# --- each peer's temporal input; TASS-Net from AVST's grounding run (issue 18) ----------------------------------
PAPER_POOLING = {"tass": "avg", "avst": "stride", "sasr": "stride", "tspm": "none"}


def _overlay(config: dict) -> dict:
    return _merged(config, yaml.safe_load((ROOT / "workflow/configs/music_avqa.yaml").read_text()))


@pytest.mark.parametrize("overlay", [False, True], ids=["synthetic", "music_avqa"])
def test_each_model_trains_on_its_papers_temporal_input_by_default(config, overlay):
    """AVST and SaSR-Net sample every 6th second ([::6]: pooling stride), TSPM every second, TASS-Net averages."""
    config = _overlay(config) if overlay else config
    for variant in config["tables"]["table1"]:
        model = config["variants"][variant]["model"]
        if model in PAPER_POOLING:
            assert W.run_config(config, variant, 0)["pooling"] == PAPER_POOLING[model], variant
    assert W.run_config(config, "avst", 0)["pooled"]["train"] == P.pooled("stride", "train")
    assert W.pretrain_config(config, "avst", 0)["pooled"]["train"] == P.pooled("stride", "train")
    assert W.run_config(config, "sasr_resnet18", 0)["pooled"]["test"] == P.pooled("stride-resnet18", "test")


def test_table8_pairs_each_peer_with_its_average_pooled_twin(config):
    entry = config["tables"]["table8"]
    for row, reference in entry["compare"].items():
        a, b = config["variants"][row], config["variants"][reference]
        assert W.run_config(config, row, 0)["pooling"] == "avg" != W.run_config(config, reference, 0)["pooling"]
        assert {k: v for k, v in a.items() if k not in ("label", "pooling")} == \
            {k: v for k, v in b.items() if k not in ("label", "pooling")}          # nothing else differs
    assert not set(entry["compare"]) & {v for t in ("table1", "table2", "table3") for v in W.table_variants(config, t)}
    assert W.table_spec(config, "table8").compare == (("avst_avg", "avst"), ("sasr_avg", "sasr"))
    config["blocks"] = ["clip", "resnet18"]
    assert ("avst_avg_resnet18", "avst_resnet18") in W.table_spec(config, "table8").compare


def test_dry_run_table8_trains_the_peers_both_ways_and_table1_none_of_its_new_rows(tmp_path, config):
    seeds = W.table_seeds(config, "table8")
    out = _dry_run(tmp_path, "--", P.table("table8"))
    for variant in ("avst", "avst_avg", "sasr", "sasr_avg"):
        for seed in seeds:
            assert f"experiment=synthetic, variant={variant}, seed={seed}" in out
    assert re.search(r"^train\s+(\d+)$", out, flags=re.M).group(1) == str(4 * len(seeds))
    assert re.search(r"^pretrain\s+(\d+)$", out, flags=re.M).group(1) == str(2 * len(seeds))  # avst, avst_avg
    table1 = _dry_run(tmp_path, "--", P.table("table1"))
    assert "variant=avst_avg" not in table1 and "variant=sasr_avg" not in table1


def test_overlay_initialises_every_tass_net_run_from_its_blocks_avst_grounding_run(config):
    """Every TASS-Net row of the overlay's tables starts from AVST's grounding run (sec. 4.1), with layers its
    model has (an ablation without TSG+ or L_s has no tsg / match head) and that AVST's model has, same shapes."""
    from avqa.models import build_model
    from avqa.models.transfer import mapped_state

    merged = _overlay(config)
    listed = {v for t in merged["tables"] for v in W.table_variants(merged, t)}
    tass_rows = sorted(v for v in listed if merged["variants"][v]["model"] == "tass")
    assert "tass" in tass_rows and "tass_resnet18" in tass_rows
    sources = {}
    for variant in tass_rows:
        spec = W.run_config(merged, variant, 1)
        source = merged["variants"][variant]["init"]["variant"]
        assert W.variant_block(merged, source) == W.variant_block(merged, variant), variant
        assert spec["init_from"] == W.pretrain_model(merged, source, 1) == W.init_checkpoints(merged, variant, 1)[0]
        if source not in sources:
            avst = W.run_config(merged, source, 1)
            with torch.device("meta"):
                sources[source] = build_model("avst", vocab_size=100, **avst["model_options"]).state_dict()
        with torch.device("meta"):
            model = build_model("tass", **spec["model_options"])
        mapped_state(model, sources[source], spec["init_layers"], source)     # raises on a missing / misfit layer
    assert W.run_config(merged, "tass", 0)["init_layers"] == {
        "audio_proj.mlp": "audio_proj.mlp", "tsg.fc": "spatial_grounding.fc_gl", "match_head.mlp": "match_head.mlp"}
    assert W.full_models(merged, "table3") == ["tass", "tass_resnet18"]      # each block's init aside
    assert "init_from" not in W.run_config(config, "tass", 0)                 # off in the synthetic default


@pytest.mark.skipif(not SHARED.exists(), reason="shared MUSIC-AVQA annotations not present")
def test_overlay_dag_runs_avsts_grounding_pretraining_before_tass_net(tmp_path):
    paths = tmp_path / "real.yaml"
    paths.write_text(yaml.safe_dump({"music_avqa": {
        "videos_dir": str(tmp_path / "videos"),
        "annotations": {"train": str(SHARED / "avqa-val.json"), "val": str(SHARED / "avqa-val.json"),
                        "test": str(SHARED / "avqa-test.json")}}}))
    (tmp_path / "videos").mkdir()
    source = P.run_file("pretrain/model_best.pt", "music_avqa", "avst", 0)
    out = _dry_run(tmp_path, "--configfile", str(ROOT / "workflow/configs/music_avqa.yaml"), str(paths), "--",
                   P.run_file("metrics.json", "music_avqa", "tass", 0))
    train = next(job for job in out.split("\n\n") if "rule train:" in job and "variant=tass, seed=0" in job)
    assert source in train and re.search(rf"Input files updated by another job:.*{re.escape(source)}", train)
    assert re.search(r"rule pretrain:.*?wildcards: experiment=music_avqa, variant=avst, seed=0", out, flags=re.S)


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda c: c["variants"]["tass"].update(init={"variant": "avsst", "layers": {"a": "b"}}),
         r"variants.tass.init.variant 'avsst' is not a variant"),
        (lambda c: c["variants"]["tass"].update(init={"variant": "sasr", "layers": {"a": "b"}}),
         r"variants.tass.init.variant 'sasr' has no pretrain entry"),
        (lambda c: c["variants"]["avst_avg"].update(init={"variant": "avst", "layers": {"a": "b"}}),
         r"variant 'avst_avg' has both pretrain and init"),
        (lambda c: c["tables"]["table8"]["compare"].update(tass="avst"),
         r"tables.table8.compare names variants \['tass'\] that the table does not list"),
    ],
)
def test_init_and_compare_cross_field_checks(config, edit, needle):
    edit(config)
    validate(copy.deepcopy(config), SCHEMA)
    with pytest.raises(W.ConfigError, match=needle):
        W.check_config(config)


def test_schema_checks_the_init_entry(config):
    config["variants"]["tass"]["init"] = {"variant": "avst"}
    with pytest.raises(Exception, match="'layers' is a required property"):
        validate(copy.deepcopy(config), SCHEMA)
    config["variants"]["tass"]["init"] = {"variant": "avst", "layers": {"tsg fc": "x"}}
    with pytest.raises(Exception, match="does not match"):
        validate(copy.deepcopy(config), SCHEMA)



def _rules(workdir: Path) -> dict:
    """The workflow's rules as Snakemake loads them from the default config: name -> (priority, cores)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    shutil.copy(ROOT / "config.yaml", workdir / "config.yaml")
    with SnakemakeApi(OutputSettings()) as api:
        workflow = api.workflow(resource_settings=ResourceSettings(cores=2), snakefile=ROOT / "Snakefile",
                                config_settings=ConfigSettings(configfiles=[workdir / "config.yaml"]),
                                workdir=workdir)
        return {rule.name: (rule.priority, rule.resources["_cores"].value) for rule in workflow._workflow.rules}


def test_wide_feature_jobs_outrank_any_set_of_narrow_jobs_sharing_their_cores(tmp_path, config):
    """Snakemake starts the ready jobs with the largest summed priority (its MILP scheduler): a 2-thread feature
    job must outrank as many 1-thread jobs as it needs cores (pooling, training), else on 2 cores it waits behind
    them (measured: a CLIP ViT shard behind two pooling jobs, then training, +100 s on the default run); and every
    feature job outranks every training job."""
    rules = _rules(tmp_path)
    variants = {v for table in config["tables"] for v in W.table_variants(config, table)}
    training = max(W.train_priority(config, v, pretrain=bool(config["variants"][v].get("pretrain")))
                   for v in variants)
    features = {name: rules[name] for name in ("extract", "extract_vit", "questions", "questions_vit", "pool")}
    narrow = max([priority for priority, cores in features.values() if cores == 1] + [training])
    for name, (priority, cores) in features.items():
        assert priority > training, name
        if cores > 1:
            assert priority > cores * narrow, (name, priority, cores, narrow)
