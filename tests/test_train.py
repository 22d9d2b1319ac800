"""Training: a step lowers the loss, a run writes its outputs, a killed run resumes to the same result."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from avqa.models import REGISTRY
from avqa.cli import main
from avqa.training.dataset import AVQADataset
from avqa.training.evaluate import PREDICTION_COLUMNS
from avqa.training.spec import check_run_config
from avqa.training.train import train_run
from training_fixtures import TinyModel, make_dataset, run_config, tiny_factory


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("train_data"), missing_in_store={"test": ["lost"]})


def _fixed_batch(paths):
    ds = AVQADataset(paths["annotations"]["train"], paths["pooled"]["train"], paths["questions"])
    return ds.batch(list(range(12)))


def _steps_lower_the_loss(model, batch, steps=15, lr=5e-3):
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def loss():
        model.eval()
        with torch.no_grad():
            return float(model.loss(batch, model(batch))[0])

    before = loss()
    for _ in range(steps):
        model.train()
        total, terms = model.loss(batch, model(batch))
        assert isinstance(terms, dict) and all(isinstance(v, float) for v in terms.values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    return before, loss()


def test_training_steps_reduce_the_loss_on_a_fixed_batch(paths):
    torch.manual_seed(0)
    before, after = _steps_lower_the_loss(TinyModel(), _fixed_batch(paths))
    assert after < 0.5 * before


def _read_log(run):
    return pd.read_csv(run / "train_log.csv").drop(columns="seconds")


def test_a_run_writes_its_outputs(paths, tmp_path):
    run = tmp_path / "run"
    metrics = train_run(run_config(paths), run, model_factory=tiny_factory)
    for name in ("run_config.json", "checkpoints/last.pt", "checkpoints/best.pt", "model_best.pt",
                 "train_log.csv", "predictions.csv", "metrics.json"):
        assert (run / name).exists(), name
    log = pd.read_csv(run / "train_log.csv")
    assert list(log.columns) == ["epoch", "lr", "loss", "loss_qa", "loss_reg", "train_accuracy", "val_accuracy",
                                 "seconds"]
    assert log["epoch"].tolist() == [1, 2, 3] and log["lr"].tolist() == pytest.approx([5e-3, 2.5e-3, 1.25e-3])
    assert log["loss"].iloc[-1] < log["loss"].iloc[0]
    assert json.loads((run / "metrics.json").read_text()) == metrics
    predictions = pd.read_csv(run / "predictions.csv")
    assert list(predictions.columns) == list(PREDICTION_COLUMNS)
    assert metrics["n_questions"] == len(predictions) == 12 and metrics["n_skipped_missing_video"] == 4
    assert metrics["variant"] == "tiny" and metrics["seed"] == 0 and metrics["experiment"] == "unit"
    assert metrics["best_epoch"] == int(log["val_accuracy"].idxmax()) + 1
    assert metrics["overall"]["correct"] == int(predictions["correct"].sum())
    best = torch.load(run / "model_best.pt", weights_only=False)
    assert best["epoch"] == metrics["best_epoch"] and best["run_config"]["variant"] == "tiny"
    # the model's cost at the run's own input shapes (T = 2 segments of 7x7x2048 maps): TinyModel's four linear
    # layers, 2 FLOPs per multiply-add, one question on one video
    d = 16
    assert metrics["cost"] == {"params": (2048 + 128 + 1024 + 3) * d + d * 42 + 42,
                               "gflops": pytest.approx(2 * ((2048 + 128 + 1024) * d + d * 42) / 1e9),
                               "shapes": {"T": 2, "map": [7, 7, 2048], "tokens": None}}


class Killed(Exception):
    pass


def test_a_killed_run_resumes_to_the_same_final_metrics(paths, tmp_path):
    spec = run_config(paths, epochs=3, seed=5, lr_step=2)  # lr_step 2: the scheduler has state to restore
    whole = tmp_path / "whole"
    expected = train_run(spec, whole, model_factory=tiny_factory)

    resumed = tmp_path / "resumed"

    def kill_after_first_epoch(epoch, row):
        if epoch == 0:
            raise Killed

    with pytest.raises(Killed):
        train_run(spec, resumed, model_factory=tiny_factory, on_epoch_end=kill_after_first_epoch)
    assert (resumed / "checkpoints/last.pt").exists() and not (resumed / "metrics.json").exists()
    assert len(pd.read_csv(resumed / "train_log.csv")) == 1
    epochs_run = []
    got = train_run(spec, resumed, model_factory=tiny_factory, on_epoch_end=lambda e, r: epochs_run.append(e))
    assert epochs_run == [1, 2]                                # continued, not restarted
    assert got == expected
    pd.testing.assert_frame_equal(_read_log(resumed), _read_log(whole))
    pd.testing.assert_frame_equal(pd.read_csv(resumed / "predictions.csv"), pd.read_csv(whole / "predictions.csv"))
    a = torch.load(whole / "model_best.pt", weights_only=False)["model"]
    b = torch.load(resumed / "model_best.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_run_other_seed_other_run(paths, tmp_path):
    spec = run_config(paths, epochs=1)
    first = train_run(spec, tmp_path / "a", model_factory=tiny_factory)
    second = train_run(spec, tmp_path / "b", model_factory=tiny_factory)
    assert first == second
    pd.testing.assert_frame_equal(_read_log(tmp_path / "a"), _read_log(tmp_path / "b"))
    train_run(run_config(paths, epochs=1, seed=1), tmp_path / "c", model_factory=tiny_factory)
    assert not _read_log(tmp_path / "c").equals(_read_log(tmp_path / "a"))


def test_a_checkpoint_of_another_config_is_not_resumed(paths, tmp_path):
    run = tmp_path / "run"
    train_run(run_config(paths, epochs=1), run, model_factory=tiny_factory)
    seen = []
    train_run(run_config(paths, epochs=1, lr=1e-3), run, model_factory=tiny_factory,
              on_epoch_end=lambda e, r: seen.append(r["lr"]))
    assert seen == [1e-3]                                     # trained again from epoch 1 with the new lr


@pytest.mark.parametrize(("edit", "message"), [
    (lambda s: s.pop("epochs"), r"\(top level\): 'epochs' is a required property"),
    (lambda s: s.update(lr=-1), r"lr: -1 is less than or equal to the minimum of 0"),
    (lambda s: s.update(modalities=["smell"]), r"modalities/0: 'smell' is not one of"),
    (lambda s: s["precision"].update(cpu="fp8"), r"precision/cpu: 'fp8' is not one of"),
])
def test_bad_run_config_is_named(paths, edit, message):
    spec = run_config(paths)
    edit(spec)
    with pytest.raises(ValueError, match=message):
        check_run_config(spec, "RUN.json")


def test_cli_trains_and_evaluate_cli_reproduces_the_metrics(paths, tmp_path, monkeypatch, capsys):
    # Registered like any model: train and evaluate both build it from the run spec's name.
    monkeypatch.setitem(REGISTRY, "tiny", "training_fixtures:TinyModel")
    spec = run_config(paths, epochs=1)
    run = tmp_path / "run"
    assert main(["train", "--run-config-json", json.dumps(spec), "--out", str(run)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").unlink()
    assert main(["evaluate", "--run", str(run)]) == 0
    assert json.loads((run / "metrics.json").read_text()) == {
        k: v for k, v in metrics.items() if k not in ("best_epoch", "best_val_accuracy", "epochs")}
    config_file = tmp_path / "RUN.json"
    config_file.write_text(json.dumps(spec))
    assert main(["train", "--run-config", str(config_file), "--out", str(tmp_path / "run2")]) == 0
    assert json.loads((tmp_path / "run2/metrics.json").read_text()) == metrics


def test_the_workflows_run_config_validates():
    import yaml

    from avqa import workflow

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
    for variant in config["variants"]:
        spec = check_run_config(workflow.run_config(config, variant, 0), variant)
        assert set(spec["modalities"]) <= {"audio", "visual"} and spec["annotations"]["test"].endswith(".parquet")


def test_a_run_killed_during_test_evaluation_only_evaluates_again(paths, tmp_path):
    run = tmp_path / "run"
    expected = train_run(run_config(paths, epochs=2), run, model_factory=tiny_factory)
    (run / "metrics.json").unlink()
    (run / "model_best.pt").unlink()
    epochs_run = []
    got = train_run(run_config(paths, epochs=2), run, model_factory=tiny_factory,
                    on_epoch_end=lambda e, r: epochs_run.append(e))
    assert epochs_run == [] and got == expected and (run / "model_best.pt").exists()


# --- the real models of the registry (avqa.models) ----------------------------------------------------------
REGISTRY_MODELS = [("qonly", {}), ("tass", {"d_model": 32})]


def _registry():
    from avqa.models import build_model

    return build_model


@pytest.mark.parametrize(("name", "options"), REGISTRY_MODELS)
def test_registry_models_learn_a_fixed_batch(paths, name, options):
    build_model = _registry()
    torch.manual_seed(0)
    model = build_model(name, **options)
    batch = _fixed_batch(paths)
    out = model(batch)
    assert out["logits"].shape == (12, 42)
    before, after = _steps_lower_the_loss(model, batch, steps=20, lr=2e-3)
    assert after < before


@pytest.mark.parametrize(("name", "options"), REGISTRY_MODELS)
def test_registry_models_train_through_the_cli(paths, tmp_path, name, options):
    _registry()
    spec = run_config(paths, model=name, model_options=options, variant=name, epochs=1)
    assert main(["train", "--run-config-json", json.dumps(spec), "--out", str(tmp_path / name)]) == 0
    metrics = json.loads((tmp_path / name / "metrics.json").read_text())
    assert metrics["n_questions"] == 12 and metrics["variant"] == name


def test_a_finished_run_whose_inputs_changed_retrains_and_its_metrics_change(tmp_path, caplog):
    """The stale-resume case: same run spec, new input contents (another data seed) -> train again, new metrics."""
    data = tmp_path / "data"
    paths = make_dataset(data)
    spec = run_config(paths, epochs=2)
    run = tmp_path / "run"
    first = train_run(spec, run, model_factory=tiny_factory)
    same = []
    again = train_run(dict(spec, label="Renamed row", threads=1), run, model_factory=tiny_factory,
                      on_epoch_end=lambda e, r: same.append(e))
    assert same == [] and again == dict(first, label="Renamed row")  # a new label or thread count is the same run

    for split in ("train", "val", "test"):                             # regenerate the features with another seed
        shutil.rmtree(paths["pooled"][split])
    remade = make_dataset(data, feature_seed=7)
    assert remade == paths
    epochs = []
    with caplog.at_level("WARNING", logger="avqa.training.train"):
        second = train_run(spec, run, model_factory=tiny_factory, on_epoch_end=lambda e, r: epochs.append(e))
    assert epochs == [0, 1]                                            # retrained from scratch
    assert "its inputs have changed since (content of pooled/test, pooled/train, pooled/val)" in caplog.text
    assert second["inputs"] != first["inputs"] and second["inputs"]["questions"] == first["inputs"]["questions"]
    assert (second["overall"], second["types"]) != (first["overall"], first["types"])
