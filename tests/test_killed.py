"""Killed for real: SIGKILL (no cleanup code runs) a real subprocess mid-extraction and mid-training, then rerun.

Nothing half-written may pass for finished, the leftovers are removed by the next write, training resumes from
its last epoch and ends with the metrics of an uninterrupted run.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from avqa import store
from avqa.specs.features import ShardsSpec
from media_factory import make_video
from training_fixtures import make_dataset, run_config

TESTS = Path(__file__).resolve().parent
# `python -m avqa` with the tests' tiny model registered (as a user registers a model: one REGISTRY line).
CLI = ("import sys; sys.path.insert(0, {tests!r}); from avqa.models import REGISTRY; "
       "REGISTRY['tiny'] = 'training_fixtures:TinyModel'; from avqa.cli import main; "
       "raise SystemExit(main(sys.argv[1:]))")


def avqa(*args: str) -> list[str]:
    return [sys.executable, "-c", CLI.format(tests=str(TESTS)), *args]


def kill_when(proc: subprocess.Popen, ready, timeout: float = 240) -> None:
    """SIGKILL `proc` as soon as ready() is true (fail if it ends or times out first)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the process ended before it could be killed: {proc.communicate()}"
        assert time.monotonic() < deadline, "timed out waiting for the moment to kill"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def leftovers(final: Path) -> list[Path]:
    return sorted(final.parent.glob(f".{final.name}.*"))


@pytest.fixture(scope="module")
def shard(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("killed_extract")
    videos = root / "videos"
    videos.mkdir()
    for i in range(5):
        make_video(videos / f"v{i}.mp4", seconds=6, colours=["red", "lime", "blue"] * 2, fps=5)
    pd.DataFrame({"video_id": [f"v{i}" for i in range(5)]}).to_parquet(root / "a.parquet")
    spec = ShardsSpec(videos_dir=str(videos), videos_per_shard=100, max_missing_fraction=0.0)
    assert subprocess.run(avqa("shards", "--annotations", str(root / "a.parquet"), "--spec", spec.to_json(),
                               "--out", str(root / "shards.json")), capture_output=True).returncode == 0
    return root


def extract_cmd(root: Path, out: Path, spec) -> list[str]:
    (name,) = json.loads((root / "shards.json").read_text())["shards"]
    return avqa("extract", "--spec", spec.to_json(), "--shards", str(root / "shards.json"), "--shard", name,
                "--out", str(out), "--failures", str(out.with_suffix(".tsv")), "--threads", "1")


def test_extraction_killed_mid_write_leaves_nothing_finished_and_reruns_clean(shard, extract_spec):
    spec = extract_spec("clip_rn50", batch=2, T1=6, workers=0)
    out = shard / "killed" / "shard.zarr"
    proc = subprocess.Popen(extract_cmd(shard, out, spec), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # The temporary store exists and holds its first video: the job is mid-write.
    kill_when(proc, lambda: any((p / "maps" / "c").exists() for p in leftovers(out) if ".tmp-" in p.name))
    assert not out.exists() and not out.with_suffix(".tsv").exists()
    with pytest.raises(FileNotFoundError, match="not a finished zarr store"):
        store.open_read(out)
    assert leftovers(out)                                    # SIGKILL ran no cleanup: the temporary is still there

    done = subprocess.run(extract_cmd(shard, out, spec), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert leftovers(out) == []                              # the rerun removed the dead writer's temporary
    clean = shard / "clean" / "shard.zarr"
    assert subprocess.run(extract_cmd(shard, clean, spec), capture_output=True).returncode == 0
    rerun, reference = store.open_read(out), store.open_read(clean)
    assert store.read_strings(rerun, "video_id") == store.read_strings(reference, "video_id") == \
        [f"v{i}" for i in range(5)]
    assert np.array_equal(rerun["maps"][:], reference["maps"][:])


def test_training_killed_mid_run_resumes_to_the_metrics_of_an_uninterrupted_run(tmp_path):
    paths = make_dataset(tmp_path / "data", videos_per_split=(24, 6, 6), questions_per_video=8)
    spec = tmp_path / "run.json"
    spec.write_text(json.dumps(run_config(paths, epochs=6, lr_step=2, threads=1)))
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert subprocess.run(avqa("train", "--run-config", str(spec), "--out", str(whole)),
                          capture_output=True).returncode == 0

    proc = subprocess.Popen(avqa("train", "--run-config", str(spec), "--out", str(killed)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = killed / "checkpoints" / "last.pt"
    kill_when(proc, last.exists)                             # after an epoch's checkpoint, before the end
    assert not (killed / "metrics.json").exists()
    epochs_done = torch.load(last, weights_only=False)["epoch"]   # the checkpoint is whole, whenever the kill came
    assert 1 <= epochs_done < 6

    resumed = subprocess.run(avqa("-v", "train", "--run-config", str(spec), "--out", str(killed)),
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming {killed} after epoch {epochs_done}" in resumed.stderr
    assert leftovers(last) == []
    assert json.loads((killed / "metrics.json").read_text()) == json.loads((whole / "metrics.json").read_text())
    log = pd.read_csv(killed / "train_log.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(log, pd.read_csv(whole / "train_log.csv").drop(columns="seconds"))
