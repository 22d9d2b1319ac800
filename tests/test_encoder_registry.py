"""The encoder registry (avqa.features.layout.REGISTRY): every record is consistent with the store layout, the
config schema and the Snakefile helpers, and every registered encoder extracts a short clip end to end into the
stores its record names. A new encoder is one module plus one registry line (shown with a toy encoder)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import yaml

from avqa import store
from avqa import workflow as W
from avqa.features import layout
from avqa.features.encoders.base import FrozenEncoder
from avqa.features.extract import ENCODER_OPTIONS, extract_shard, load_encoder, start_decoding
from avqa.features.layout import FRAMES, LAYOUT, REGISTRY, StoreLayout
from avqa.specs.features import ExtractSpec
from media_factory import make_video

T1 = 3
pytestmark = pytest.mark.usefixtures("one_thread")


def test_every_record_names_its_stores_class_weights_key_and_options():
    schema = yaml.safe_load(W.SCHEMA.read_text())
    weight_keys = set(schema["properties"]["weights"]["oneOf"][1]["properties"])
    assert {record.weights_key for record in REGISTRY.values()} == weight_keys
    assert set(LAYOUT) == {s for record in REGISTRY.values() for s in record.stores} == set(layout.ENCODERS)
    for name, record in REGISTRY.items():
        assert record.stores[0] == name and issubclass(layout.encoder_class(name), FrozenEncoder), name
        assert record.decode in (layout.FRAMES, layout.AUDIO)
        assert (record.block is None) == (record.decode == layout.AUDIO), name
        assert set(record.options) <= set(ENCODER_OPTIONS) and ("decode" in record.options) == (record.decode == FRAMES)
    assert layout.VISUAL_ENCODERS == ("clip_rn50", "resnet18", "clip_vit")
    assert layout.BLOCK == {"clip_rn50": "clip", "resnet18": "resnet18", "clip_vit": "clip"}
    with pytest.raises(ValueError, match="unknown encoder 'nope'; registered: "):
        layout.encoder_record("nope")


def test_the_extract_rules_wildcard_matches_the_one_store_encoders():
    """The generic `extract` rule runs every encoder with one store; CLIP ViT (two stores) has its own rule."""
    import re

    pattern = re.compile(f"^({W.encoder_pattern()})$")
    assert [n for n in REGISTRY if pattern.match(n)] == [n for n, r in REGISTRY.items() if len(r.stores) == 1]
    assert not pattern.match("clip_vit") and not pattern.match("clip_vit_tokens")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """One short synthetic clip (3 s, 96x64, a tone from second 1) in a videos folder."""
    videos = tmp_path_factory.mktemp("registry") / "videos"
    videos.mkdir()
    make_video(videos / "clip.mp4", seconds=T1, size=(96, 64), colours=["red", "lime", "blue"], tone_from=1)
    return videos


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_registered_encoder_extracts_a_clip_into_its_layout(name, clip, extract_spec, tmp_path):
    spec = extract_spec(name, T1=T1, workers=0)
    run = load_encoder(spec)
    outs = [tmp_path / f"{store_name}.zarr" for store_name in REGISTRY[name].stores]
    result = extract_shard(run, start_decoding(spec, ["clip"], clip), outs if len(outs) > 1 else outs[0],
                           tmp_path / "failures.tsv")
    assert result == {"stored": 1, "failed": 0}
    assert list(run.outputs) == list(REGISTRY[name].stores)
    for out, (store_name, shape) in zip(outs, run.outputs.items()):
        group, expected = store.open_read(out), LAYOUT[store_name]
        assert expected.shape in (None, shape)                       # None: set by the encoder's options
        data = group[expected.array]
        assert data.shape == (1, T1, *shape) and data.dtype == np.dtype(expected.dtype), store_name
        values = data[0].astype(np.float32)
        assert np.isfinite(values).all() and values.std() > 0, store_name
        attrs = dict(group.attrs)
        assert attrs["encoder"] == store_name and attrs["weights"] == "random" and attrs["T1"] == T1
        assert attrs["fps"] == layout.FPS and attrs["sample_rate"] == layout.SAMPLE_RATE
        assert ("frame_decoding" in attrs) == (REGISTRY[name].decode == FRAMES)
        assert store.read_strings(group, "video_id") == ["clip"]


# --- a new encoder: one module (here, this test module) and one registry line --------------------------------
class MeanColour(FrozenEncoder):
    """A toy frame encoder: each frame's mean RGB, scaled by one seeded random weight."""

    @staticmethod
    def input_size(spec: ExtractSpec) -> int:
        return 32

    @staticmethod
    def preprocess(spec: ExtractSpec):
        return lambda frames: torch.as_tensor(np.asarray(frames)).float().mean(dim=(1, 2))   # (n, 3)

    def load(self, spec, device):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.weights_seed)
            return torch.nn.Linear(3, 3).to(device).eval()

    @property
    def outputs(self):
        return {"mean_colour": (3,)}

    def forward(self, inputs, precision):
        with torch.inference_mode():
            return (self.model(inputs.to(self.device)).numpy(),)


def test_a_new_encoder_is_a_module_and_one_registry_line(clip, tmp_path, monkeypatch):
    monkeypatch.setitem(REGISTRY, "mean_colour", layout.Encoder("mean_colour", FRAMES, ("mean_colour",), "clip",
                                                                ("decode",), f"{__name__}:MeanColour"))
    monkeypatch.setitem(LAYOUT, "mean_colour", StoreLayout("rgb", (3,), "float32"))
    config = W.load_config(W.SCHEMA.parents[2] / "config.yaml")
    spec = dataclasses.replace(W.extract_spec(config, "mean_colour"), device="cpu", T1=T1, workers=0)
    assert spec.decode is not None and spec.clip_vit is None and spec.bn3_gamma is None
    extract_shard(load_encoder(spec), start_decoding(spec, ["clip"], clip), tmp_path / "m.zarr", tmp_path / "f.tsv")
    rgb = store.open_read(tmp_path / "m.zarr")["rgb"][0]
    assert rgb.shape == (T1, 3) and not np.allclose(rgb[0], rgb[1])   # red, then lime
