"""What keeps the Snakefile helpers torch-free agrees with the torch side: the models' visual inputs, the CLIP ViT
sizes, the CUDA device check (the floor order itself: tests/test_imports.py)."""
from __future__ import annotations

import ctypes

import pytest

from avqa import workflow as W
from avqa.features.clip_vit_config import clip_vit_sizes
from avqa.models import REGISTRY, VISUAL_INPUTS, VISUAL_OPTIONS, valid_options

FRAME_OPTIONS, MAP_OPTIONS = set(VISUAL_OPTIONS["frames"]), set(VISUAL_OPTIONS["maps"])


@pytest.mark.parametrize("model", sorted(REGISTRY))
def test_each_models_visual_input_matches_its_options(model):
    """A model on maps takes visual_dim, one on frames the four frame sizes, a model without visual input
    neither, so the visual encoder sets exactly the options the model has."""
    options = set(valid_options(model))
    kind = VISUAL_INPUTS.get(model)
    assert kind in (None, *VISUAL_OPTIONS)
    assert set(VISUAL_OPTIONS.get(kind, ())) <= options
    assert not (MAP_OPTIONS | {"frame_dim"}) & options - set(VISUAL_OPTIONS.get(kind, ()))


def test_visual_options_follow_the_encoder():
    config = W.load_config(W.SCHEMA.parents[2] / "config.yaml")
    vit = config["features"]["clip_vit"]["backbone"]
    assert W.visual_options(config, "tass", "resnet18") == {"visual_dim": 512}
    assert W.visual_options(config, "qonly", "resnet18") == {}
    assert W.visual_options(config, "tspm", "clip_vit") == {
        "frame_dim": clip_vit_sizes(vit)["embedding"], "token_dim": clip_vit_sizes(vit)["token_width"],
        "n_tokens": config["features"]["clip_vit"]["n_tokens"], "text_dim": clip_vit_sizes(vit)["embedding"]}


@pytest.mark.parametrize("backbone", ["ViT-B-32", "ViT-B-16", "ViT-L-14-336"])
def test_clip_vit_sizes_read_without_open_clip_equal_open_clips(backbone):
    from avqa.features.encoders.clip_vit import clip_vit_dims

    dims = clip_vit_dims(backbone, 14)
    assert clip_vit_sizes(backbone) == {"embedding": dims["embedding"][0], "token_width": dims["tokens"][1]}


def test_a_name_that_is_not_a_clip_vit_backbone_is_named():
    with pytest.raises(ValueError, match="'RN50' is not an open_clip CLIP ViT config"):
        clip_vit_sizes("RN50")


class FakeDriver:
    def __init__(self, init: int, count: int):
        self.init, self.count = init, count

    def cuInit(self, flags):
        return self.init

    def cuDeviceGetCount(self, pointer):
        ctypes.cast(pointer, ctypes.POINTER(ctypes.c_int)).contents.value = self.count
        return 0


def test_the_cuda_device_count_asks_the_driver(monkeypatch):
    def no_driver(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", no_driver)
    assert W.cuda_device_count() == 0 and W.gpu_jobs({"device": "auto"}) == 0
    monkeypatch.setattr(ctypes, "CDLL", lambda name: FakeDriver(init=0, count=2))
    assert W.cuda_device_count() == 2 and W.gpu_jobs({"device": "auto"}) == 1
    monkeypatch.setattr(ctypes, "CDLL", lambda name: FakeDriver(init=100, count=2))   # CUDA_ERROR_NO_DEVICE
    assert W.cuda_device_count() == 0
