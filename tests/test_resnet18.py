"""The ResNet-18 encoder block: layer4 maps (7, 7, 512) per frame, the weights policy, one shard extracted."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from avqa import store
from avqa.features.encoders.resnet18 import load_resnet18, resnet18_maps, resnet18_transform
from avqa.features.extract import extract_shard, load_encoder, start_decoding
from media_factory import make_video

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model():
    return load_resnet18("random", 0, "cpu")


def frames(n: int = 3, h: int = 120, w: int = 160) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (n, h, w, 3), dtype=np.uint8)


def test_maps_shape_dtype_and_determinism(model):
    x = resnet18_transform()(frames())
    assert x.shape == (3, 3, 224, 224) and x.dtype == torch.float32
    maps = resnet18_maps(model, x)
    assert maps.shape == (3, 7, 7, 512) and maps.dtype == torch.float16
    again = resnet18_maps(load_resnet18("random", 0, "cpu"), x)
    assert torch.equal(maps, again) and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    other_seed = resnet18_maps(load_resnet18("random", 1, "cpu"), x)
    assert not torch.equal(maps, other_seed)


def test_maps_are_the_networks_layer4(model):
    x = resnet18_transform()(frames(2))
    with torch.no_grad():
        trunk = torch.nn.Sequential(*list(model.children())[:-2])       # all but avgpool and fc
        expected = trunk(x).permute(0, 2, 3, 1)
    assert torch.allclose(resnet18_maps(model, x, channels_last=False).float(), expected, atol=2e-2, rtol=1e-2)


def test_a_local_checkpoint_loads_and_a_bad_one_is_named(model, tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(model.state_dict(), path)
    x = resnet18_transform()(frames(1))
    assert torch.equal(resnet18_maps(load_resnet18(str(path), 0, "cpu"), x), resnet18_maps(model, x))
    (tmp_path / "bad.pth").write_bytes(b"nope")
    with pytest.raises(ValueError, match="bad.pth: not a loadable ResNet-18"):
        load_resnet18(str(tmp_path / "bad.pth"), 0, "cpu")


def test_pretrained_offline_raises_a_clear_error(tmp_path):
    script = textwrap.dedent("""
        from avqa.features.encoders.resnet18 import load_resnet18
        from avqa.features.encoders.weights import WeightsUnavailableError
        try:
            load_resnet18("pretrained", 0, "cpu")
        except WeightsUnavailableError as err:
            print("UNAVAILABLE", str(err).replace("\\n", " "))
    """)
    env = dict(os.environ, TORCH_HOME=str(tmp_path / "torch"), HTTPS_PROXY="http://127.0.0.1:9",
               HTTP_PROXY="http://127.0.0.1:9", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert "UNAVAILABLE could not load the pretrained ResNet-18 weights" in done.stdout, done.stderr[-2000:]
    assert "resnet18: path/to/resnet18-f37072fd.pth" in done.stdout


def test_a_shard_extracts_into_the_resnet18_layout(tmp_path, extract_spec):
    videos = tmp_path / "videos"
    videos.mkdir()
    make_video(videos / "a.mp4", seconds=3, colours=["red", "lime", "blue"])
    make_video(videos / "b.mp4", seconds=2)
    spec = extract_spec("resnet18", T1=3, workers=0)
    out = tmp_path / "resnet18/shard.zarr"
    result = extract_shard(load_encoder(spec), start_decoding(spec, ["a", "b", "missing"], videos), out,
                           tmp_path / "f.tsv")
    assert result == {"stored": 2, "failed": 1}
    group = store.open_read(out)
    assert group["maps"].shape == (2, 3, 7, 7, 512) and group["maps"].dtype == np.float16
    assert group.attrs["encoder"] == "resnet18" and group.attrs["padded"]["b"]   # 2-s video padded to T1 = 3
