"""End to end: the whole Snakemake DAG on a tiny synthetic dataset, from nothing to the results table 1.

One real `snakemake --cores 2 .../table1.csv` run (tests/data/tiny.yaml: 14 six-second videos, T1 = 6, T = 3,
two epochs) in a temporary working directory, with a results_dir holding a space (every path a rule passes to a
command must be quoted); the assertions then read what every stage wrote, at the paths of avqa.paths. Then one
ablation table on top of it (table3, preprocessing off vs on, with its configured seeds: the full model's seed 0
is table1's run, reused), its figures and `snakemake --report`.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from avqa.vocab import QUESTION_TYPES
from avqa import store
from avqa.paths import Layout

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests/data/tiny.yaml"
P = Layout("results dir")


def _snakemake(workdir: Path, *targets: str, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
         "--cores", "2", "--configfile", str(TINY), "--config", f"results_dir={P.root}", *extra, "--", *targets],
        cwd=workdir, capture_output=True, text=True, timeout=1500,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("e2e")
    shutil.copy(ROOT / "config.yaml", workdir / "config.yaml")
    proc = _snakemake(workdir, P.table("table1"), P.failures())
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-8000:]
    return workdir


@pytest.fixture(scope="module")
def config(run) -> dict:
    """config.yaml with the tiny overlay merged in key by key, as Snakemake merges --configfile."""
    def merged(base: dict, overlay: dict) -> dict:
        out = dict(base)
        for key, value in overlay.items():
            out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        return out

    return merged(yaml.safe_load((run / "config.yaml").read_text()), yaml.safe_load(TINY.read_text()))


def test_table1_has_every_model_of_both_blocks_with_costs_and_the_published_rows(run, config):
    table = pd.read_csv(run / P.table("table1"))
    ours = table[table["source"] == "this run"]
    assert ours["variant"].tolist() == config["tables"]["table1"]          # tiny: both encoder blocks
    assert set(ours["block"]) == {"clip", "resnet18"}
    assert ours["All_Avg"].between(0, 100).all() and (ours["Params_M"] > 0).all() and (ours["GFLOPs"] >= 0).all()
    by_variant = ours.set_index("variant")
    assert by_variant.loc["tass_resnet18", "GFLOPs"] < by_variant.loc["tass", "GFLOPs"]   # 512 vs 2048 channels
    paper = table[table["source"] == "paper (reported)"]
    assert {"TASS (Ours)", "SaSR-Net(ours)", "TSPM", "AVST"} <= set(paper["method"])
    assert (run / P.table("table1", "md")).read_text().count("|") > 20


def test_the_peers_inputs_were_built_for_them(run, config):
    """AVST's vocabulary and grounding pre-training, SaSR-Net's instrument labels, TSPM's CLIP ViT features."""
    assert json.loads((run / P.words()).read_text())["<pad>"] == 0
    labels = pd.read_parquet(run / P.instruments())
    assert len(labels) == sum(config["synthetic"]["videos"].values()) and labels["visual"].map(len).sum() > 0
    pretrain = json.loads((run / P.run_file("pretrain/run_config.json", "tiny", "avst", 0)).read_text())
    assert pretrain["model_options"]["objective"] == "grounding" and pretrain["best_on"] == "last_epoch"
    avst = json.loads((run / P.run_file("run_config.json", "tiny", "avst", 0)).read_text())
    assert avst["init_from"] == P.run_file("pretrain/model_best.pt", "tiny", "avst", 0)
    tspm = store.open_read(run / P.pooled("none-clip_vit", "test"))
    assert tspm["visual"].shape[1:] == (config["features"]["T1"], 512)                    # ViT-B-32 per second
    assert tspm["visual_tokens"].shape[1:] == (config["features"]["T1"], 14, 768)        # 14 merged tokens
    texts = store.open_read(run / P.questions_vit())
    assert texts["question_clip"].shape == texts["prompt"].shape and texts["prompt"].shape[1] == 512


def test_metrics_count_every_test_question_once(run, config):
    test = pd.read_parquet(run / P.annotations("test"))
    for variant in config["tables"]["table1"]:
        metrics = json.loads((run / P.run_file("metrics.json", "tiny", variant, 0)).read_text())
        assert metrics["overall"]["count"] + metrics["n_skipped_missing_video"] == len(test)
        assert sum(metrics["types"][key]["count"] for _, _, key in QUESTION_TYPES) == metrics["overall"]["count"]
        predictions = pd.read_csv(run / P.run_file("predictions.csv", "tiny", variant, 0))
        assert len(predictions) == metrics["overall"]["count"]
        assert predictions["correct"].sum() == metrics["overall"]["correct"]


def test_feature_stores_have_the_documented_shapes(run, config):
    T1 = config["features"]["T1"]
    shards = json.loads((run / P.shards()).read_text())["shards"]
    n_videos = sum(len(v) for v in shards.values())
    assert n_videos == sum(config["synthetic"]["videos"].values())
    stored = 0
    for shard in shards:
        clip = store.open_read(run / P.features("clip_rn50", shard))
        vggish = store.open_read(run / P.features("vggish", shard))
        assert clip["maps"].shape[1:] == (T1, 7, 7, 2048) and clip["maps"].dtype == "float16"
        assert vggish["emb"].shape[1:] == (T1, 128)
        assert store.read_strings(clip, "video_id") == store.read_strings(vggish, "video_id")
        stored += clip["maps"].shape[0]
    failures = pd.read_csv(run / P.failures(), sep="\t")
    assert list(failures.columns) == ["video_id", "stage", "reason"]
    assert stored + failures["video_id"].nunique() == n_videos
    pooled = store.open_read(run / P.pooled("avg", "test"))
    assert pooled["visual"].shape[1:] == (config["preprocess"]["T"], 7, 7, 2048)
    questions = store.open_read(run / P.questions())
    assert questions["sentence"].shape[1] == 1024 and questions["tokens"].shape[2] == 512


ABLATION_TARGETS = (P.table("table3"), P.plot("table3", "accuracy"), P.plot("table3", "curves"),
                    P.attention_plot("tass", 0))


@pytest.fixture(scope="module")
def ablation(run) -> subprocess.CompletedProcess:
    proc = _snakemake(run, *ABLATION_TARGETS)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-8000:]
    report = _snakemake(run, *ABLATION_TARGETS, extra=("--report", "report.html"))
    assert report.returncode == 0, report.stdout[-4000:] + report.stderr[-4000:]
    return proc


def test_ablation_table_trains_its_grid_once_and_compares_with_the_full_model(run, config, ablation):
    table = pd.read_csv(run / P.table("table3"))
    paper = table[table["source"] == "paper (reported)"]
    assert len(paper) == 4 and set(paper["block"]) == {"clip", "resnet18"}                # both blocks published
    table = table[table["source"] == "this run"].reset_index(drop=True)
    entry = config["tables"]["table3"]
    assert table["variant"].tolist() == entry["variants"]
    assert table["method"].tolist()[:2] == [config["variants"]["tass_stride"]["label"], entry["labels"]["tass"]]
    assert (table["n_seeds"] == len(entry["seeds"])).all() and table["All_Avg"].between(0, 100).all()
    assert table["versus"].tolist() == ["tass", "reference", "tass_resnet18", "reference"]        # per block
    assert 0 <= table["p_holm"].iloc[0] <= 1 and table["All_diff_low"].iloc[0] <= table["All_diff"].iloc[0]
    assert (run / P.table_stats("table3")).exists()
    assert table["All_diff"].iloc[0] == pytest.approx(table["All_Avg"].iloc[0] - table["All_Avg"].iloc[1], abs=0.02)
    assert table["paper_All_diff"].tolist()[:2] == [-0.89, 0.0] and table["paper_All_diff"].tolist()[2] == -0.58
    stride = json.loads((run / P.run_file("run_config.json", "tiny", "tass_stride", 1)).read_text())
    assert stride["pooled"]["test"] == P.pooled("stride", "test")
    log = ablation.stdout + ablation.stderr
    trained = "wildcards: experiment=tiny, variant={}, seed={}"
    assert trained.format("tass_stride", 1) in log and trained.format("tass", 1) in log
    assert trained.format("tass", 0) not in log                 # table1's run of the full model is reused


def test_report_builds_with_the_tables_and_figures(run, ablation):
    for target in ABLATION_TARGETS[1:]:
        assert (run / target).read_bytes()[:4] == b"\x89PNG"
    html = (run / "report.html").read_text()
    for needle in ("table3.csv", "table3_accuracy.png", "table3_curves.png", "tass_seed0.png", "Figures",
                   "Tables"):
        assert needle in html, needle


def test_a_second_run_has_nothing_to_do(run):
    proc = _snakemake(run, P.table("table1"), extra=("-n",))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Nothing to be done" in proc.stdout + proc.stderr
