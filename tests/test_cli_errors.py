"""Expected user errors print one clear line on stderr and exit with status 2; --debug shows the traceback."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from avqa.cli import main
from avqa.errors import UserError, one_line

REPO = Path(__file__).resolve().parents[1]


def test_a_bad_annotation_file_is_one_line_and_status_2(tmp_path, capsys):
    bad = tmp_path / "avqa-test.json"
    bad.write_text('[{"video_id": "1", "question_id": 1,')
    spec = ["--spec", '{"release": "v1", "drop_conflicting_duplicates": false}']
    out = str(tmp_path / "t.parquet")
    assert main(["annotations", "--json", str(bad), "--split", "test", "--out", out, *spec]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"avqa annotations: error: {bad}") and err.count("\n") == 1 and "Traceback" not in err
    with pytest.raises(UserError):                                   # --debug: the exception itself
        main(["--debug", "annotations", "--json", str(bad), "--split", "test", "--out", out, *spec])


def test_a_bad_config_value_in_a_run_spec_is_one_line_and_status_2(tmp_path, capsys):
    spec = {"experiment": "x", "variant": "v", "label": "V", "seed": 0, "model": "tass", "model_options": {},
            "modalities": ["audio"], "epochs": 0}
    assert main(["train", "--run-config-json", json.dumps(spec), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("avqa train: error: --run-config-json: ") and err.count("\n") == 1


def test_an_unknown_device_is_one_line_and_status_2(tmp_path, capsys):
    pd.DataFrame({"question_id": [1], "question": ["Is there a violin?"], "template": ["Is there a <Object>?"],
                  "templ_values": ['["violin"]']}).to_parquet(tmp_path / "a.parquet")
    spec = {"weights": "random", "weights_seed": 0, "device": "tpu", "batch": 8}
    assert main(["questions", "--annotations", str(tmp_path / "a.parquet"), "--out", str(tmp_path / "q.zarr"),
                 "--spec", json.dumps(spec)]) == 2
    assert capsys.readouterr().err == ("avqa questions: error: questions --spec: device: Input should be 'auto', "
                                       "'cpu' or 'cuda'\n")


def test_weights_that_cannot_be_had_are_one_line_and_status_2(tmp_path):
    pd.DataFrame({"question_id": [1], "question": ["Is there a violin?"], "template": ["Is there a <Object>?"],
                  "templ_values": ['["violin"]']}).to_parquet(tmp_path / "a.parquet")
    # No cache and a dead proxy: the download fails at once.
    env = dict(os.environ, HF_HUB_OFFLINE="1", TORCH_HOME=str(tmp_path / "torch"), HF_HOME=str(tmp_path / "hf"),
               HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "avqa", "questions", "--annotations", str(tmp_path / "a.parquet"),
                           "--out", str(tmp_path / "q.zarr"), "--spec", json.dumps(
                               {"weights": "pretrained", "weights_seed": 0, "device": "cpu", "batch": 8})],
                          env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if "error" in line]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert lines[-1].startswith("avqa questions: error: could not load the pretrained CLIP RN50 weights")
    assert "weights: {clip: path/to/RN50.pt" in lines[-1]


def test_one_line_joins_a_multi_line_message():
    assert one_line(ValueError("first\n  second\n\nthird")) == "first | second | third"
    assert one_line(ValueError("")) == "ValueError"


def test_a_failing_jobs_one_line_error_reaches_the_snakemake_console(tmp_path):
    """A wrong videos folder: the shards job exits 2 with its one-line error in its log, and the console shows
    that line, not only "check log file(s)" (the default profile's show-failed-logs, found through profiles/)."""
    import shutil

    import yaml

    from avqa.paths import Layout

    record = {"video_id": "00000093", "question_id": 1, "type": '["Audio", "Comparative"]',
              "question_content": "Is the <Object> louder than the <Object>?", "templ_values": '["piano", "cello"]',
              "question_deleted": 0, "anser": "yes"}
    (tmp_path / "avqa-test.json").write_text(json.dumps([record]))
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    overlay = {"dataset": "music_avqa", "results_dir": "results",
               "music_avqa": {"videos_dir": str(tmp_path / "no videos here"), "drop_conflicting_duplicates": False,
                              "annotations": {s: str(tmp_path / "avqa-test.json") for s in ("train", "val", "test")}}}
    (tmp_path / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
                           str(tmp_path), "--cores", "1", "--configfile", str(tmp_path / "overlay.yaml"), "--",
                           Layout("results").shards()], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    console = proc.stdout + proc.stderr
    assert proc.returncode != 0, console[-3000:]
    assert "workflow specific profile" in console                     # the default profile was read
    line = next((x for x in console.splitlines() if "avqa shards: error:" in x), None)
    assert line is not None, console[-3000:]
    assert "no videos here" in line and "Traceback" not in console
