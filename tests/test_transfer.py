"""Initialising TASS-Net's layers from AVST's grounding run (avqa.models.transfer, the trainer's init_layers):
the copied tensors equal the source's, nothing else changes, a missing or misfitting layer is a clear error
before anything is copied, and a changed source checkpoint changes the run's identity."""
from __future__ import annotations

import logging

import pytest
import torch

from avqa.models import build_model
from avqa.models.transfer import AVST_TO_TASS, LayerTransferError, copy_layers, layer_entries
from avqa.training.spec import RunSpecError, check_run_config
from avqa.training.train import initialise_from, train_run
from training_fixtures import make_dataset, run_config

D = 32
TASS = dict(d_model=D, heads=2, dropout=0.0)
AVST = dict(vocab_size=12, d_model=D, word_dim=8, lstm_hidden=8, heads=2, dropout=0.0)


pytestmark = pytest.mark.usefixtures("one_thread")


def avst_state(seed: int = 1, **options) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return build_model("avst", **{**AVST, **options}).state_dict()


def tass(seed: int = 0, **options):
    torch.manual_seed(seed)
    return build_model("tass", **{**TASS, **options})


def test_the_named_layers_take_the_source_tensors_and_nothing_else_changes():
    model = tass()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    source = avst_state()
    copied = copy_layers(model, source, AVST_TO_TASS)
    after = model.state_dict()
    expected = {}
    for destination, origin in AVST_TO_TASS.items():
        for name, value in layer_entries(source, origin).items():
            expected[f"{destination}.{name}"] = value
            assert f"{destination}.{name} <- {origin}.{name}" in copied
    # TJSTG's list: fc_a1, fc_a2, fc_gl, fc1..fc4, a weight and a bias each
    assert len(expected) == len(copied) == 2 * (2 + 1 + 4)
    assert "tsg.fc.weight" in expected and expected["tsg.fc.weight"].shape == (D, 2 * D)
    for key, value in after.items():
        if key in expected:
            assert torch.equal(value, expected[key]), key
            assert not torch.equal(value, before[key]), key       # really another tensor than the model's own
        else:
            assert torch.equal(value, before[key]), key           # question projection, JTG, the statistics, ...
    assert "audio_proj.standardize.mean" in after and "audio_proj.standardize.mean" not in expected


@pytest.mark.parametrize(
    ("make_model", "source", "layers", "needle"),
    [
        (lambda: tass(), lambda: {k: v for k, v in avst_state().items() if not k.startswith("spatial_grounding.")},
         AVST_TO_TASS, r"has no layer 'spatial_grounding.fc_gl' \(to copy into 'tsg.fc'\)"),
        (lambda: tass(use_tsg=False), avst_state, AVST_TO_TASS,
         r"the TASSNet model has no layer 'tsg.fc' \(to take 'spatial_grounding.fc_gl'"),
        (lambda: tass(), lambda: avst_state(d_model=16), AVST_TO_TASS,
         r"layer 'audio_proj.mlp' does not fit the model's 'audio_proj.mlp' .*0.weight \(16, 128\) vs \(32, 128\)"),
        (lambda: tass(), avst_state, {"audio_proj": "audio_proj.mlp"},
         r"layer 'audio_proj.mlp' holds \['0.bias'.* but the model's 'audio_proj' holds"),
        (lambda: tass(), avst_state, {"audio_proj": "audio_proj", "audio_proj.mlp": "audio_proj.mlp"},
         "destination layers inside one another"),
        (lambda: tass(), avst_state, {}, "no layers named"),
    ],
)
def test_a_layer_that_does_not_fit_is_an_error_and_nothing_is_copied(make_model, source, layers, needle):
    model = make_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(LayerTransferError, match=needle):
        copy_layers(model, source(), layers, source="avst.pt")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_initialise_from_copies_exactly_the_run_spec_layers_and_logs_them(tmp_path, caplog):
    checkpoint = tmp_path / "model_best.pt"
    source = avst_state()
    torch.save({"model": source, "epoch": 4}, checkpoint)
    model = tass()
    own_question = model.state_dict()["question_proj.proj.weight"].clone()
    with caplog.at_level(logging.INFO, logger="avqa.training.train"):
        taken = initialise_from(model, checkpoint, {"match_head.mlp": "match_head.mlp"})
    assert len(taken) == 8 and all(t.startswith("match_head.mlp.") for t in taken)
    assert torch.equal(model.state_dict()["match_head.mlp.6.weight"], source["match_head.mlp.6.weight"])
    assert torch.equal(model.state_dict()["question_proj.proj.weight"], own_question)
    assert f"initialised 8 tensors from {checkpoint}: match_head.mlp.0.bias <- match_head.mlp.0.bias" in caplog.text


def test_init_layers_needs_init_from(tmp_path):
    spec = run_config(make_dataset(tmp_path), model="tass", init_layers={"tsg.fc": "spatial_grounding.fc_gl"})
    with pytest.raises(RunSpecError, match="'init_from' is a dependency of 'init_layers'"):
        check_run_config(spec)


def test_a_changed_source_checkpoint_retrains_the_run(tmp_path, caplog):
    """The source checkpoint's bytes are part of the run's identity (init_from is a hashed input file)."""
    paths = make_dataset(tmp_path / "data", videos_per_split=(4, 2, 2), questions_per_video=3)
    checkpoint = tmp_path / "avst" / "model_best.pt"
    checkpoint.parent.mkdir()
    torch.save({"model": avst_state(seed=1)}, checkpoint)
    spec = run_config(paths, variant="tass", model="tass", model_options=TASS, epochs=1, threads=1,
                      init_from=str(checkpoint), init_layers=AVST_TO_TASS)
    out = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="avqa.training.train"):
        train_run(spec, out)
    assert "initialised 14 tensors from" in caplog.text
    caplog.clear()
    torch.save({"model": avst_state(seed=2)}, checkpoint)              # AVST's grounding run trained again
    with caplog.at_level(logging.INFO, logger="avqa.training.train"):
        train_run(spec, out)
    assert "its inputs have changed since (content of init_from)" in caplog.text
    assert "initialised 14 tensors from" in caplog.text
