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
    assert main(["annotations", "--json", str(bad), "--split", "test", "--out", str(tmp_path / "t.parquet")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"avqa annotations: error: {bad}") and err.count("\n") == 1 and "Traceback" not in err
    with pytest.raises(UserError):                                   # --debug: the exception itself
        main(["--debug", "annotations", "--json", str(bad), "--split", "test", "--out", str(tmp_path / "t.parquet")])


def test_a_bad_config_value_in_a_run_spec_is_one_line_and_status_2(tmp_path, capsys):
    spec = {"experiment": "x", "variant": "v", "label": "V", "seed": 0, "model": "tass", "model_options": {},
            "modalities": ["audio"], "epochs": 0}
    assert main(["train", "--run-config-json", json.dumps(spec), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("avqa train: error: --run-config-json: ") and err.count("\n") == 1


def test_an_unknown_device_is_one_line_and_status_2(tmp_path, capsys):
    pd.DataFrame({"question_id": [1], "question": ["Is there a violin?"], "template": ["Is there a <Object>?"],
                  "templ_values": ['["violin"]']}).to_parquet(tmp_path / "a.parquet")
    assert main(["questions", "--annotations", str(tmp_path / "a.parquet"), "--out", str(tmp_path / "q.zarr"),
                 "--device", "tpu"]) == 2
    assert capsys.readouterr().err == "avqa questions: error: unknown device 'tpu': expected auto, cpu or cuda\n"


def test_weights_that_cannot_be_had_are_one_line_and_status_2(tmp_path):
    pd.DataFrame({"question_id": [1], "question": ["Is there a violin?"], "template": ["Is there a <Object>?"],
                  "templ_values": ['["violin"]']}).to_parquet(tmp_path / "a.parquet")
    # No cache and a dead proxy: the download fails at once.
    env = dict(os.environ, HF_HUB_OFFLINE="1", TORCH_HOME=str(tmp_path / "torch"), HF_HOME=str(tmp_path / "hf"),
               HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "avqa", "questions", "--annotations", str(tmp_path / "a.parquet"),
                           "--out", str(tmp_path / "q.zarr"), "--weights", "pretrained", "--device", "cpu"],
                          env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if "error" in line]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert lines[-1].startswith("avqa questions: error: could not load the pretrained CLIP RN50 weights")
    assert "weights: {clip: path/to/RN50.pt" in lines[-1]


def test_one_line_joins_a_multi_line_message():
    assert one_line(ValueError("first\n  second\n\nthird")) == "first | second | third"
    assert one_line(ValueError("")) == "ValueError"
