"""Frozen encoders: CLIP-RN50 maps, preprocessing, VGGish per-second examples, weights sources, devices."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from avqa.features import encoders as E
from avqa.features.layout import SAMPLE_RATE

REPO = Path(__file__).resolve().parents[1]
BN3_GAMMA = 0.3     # the bottlenecks' bn3 gamma of the random CLIP (config weights_bn3_gamma)


@pytest.fixture(scope="module")
def clip():
    return E.load_clip("random", seed=0, device="cpu", bn3_gamma=BN3_GAMMA)


@pytest.fixture(scope="module")
def frames():
    """Three 240x320 frames: smooth colour gradients plus noise, like decoded video."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:240, 0:320]
    base = np.stack([xx / 320, yy / 240, (xx + yy) / 560], axis=-1) * 255
    return np.stack([np.clip(base * rng.uniform(0.3, 1, 3) + rng.normal(0, 20, base.shape), 0, 255)
                     for _ in range(3)]).astype(np.uint8)


@pytest.fixture(scope="module")
def images(frames):
    return E.clip_image_transform()(frames)


@pytest.fixture(scope="module")
def maps(clip, images):
    return E.clip_maps(clip, images, precision="fp32", channels_last=True)


@pytest.fixture(scope="module")
def vggish():
    return E.load_vggish("random", seed=0, device="cpu")


def wave(seconds: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(seconds * SAMPLE_RATE) / SAMPLE_RATE
    return 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))


# --- CLIP --------------------------------------------------------------------------------------------------
def test_clip_model_is_frozen_eval_with_bn3_gamma(clip):
    assert not clip.training and not any(p.requires_grad for p in clip.parameters())
    bn3 = {n: p for n, p in clip.visual.named_parameters() if n.endswith("bn3.weight")}
    assert all(torch.all(p == BN3_GAMMA) for n, p in bn3.items() if n.startswith("layer"))
    assert len(bn3) == 1 + 16 and torch.all(bn3["bn3.weight"] == 1)  # 16 bottlenecks; the stem's bn3 untouched
    untouched = E.load_clip("random", seed=0, device="cpu")          # None: open_clip's zero init (text features)
    assert all(torch.all(p == 0) for n, p in untouched.visual.named_parameters()
               if n.endswith("bn3.weight") and n.startswith("layer"))
    assert torch.equal(untouched.visual.conv1.weight, clip.visual.conv1.weight)


def test_clip_maps_shape_dtype(maps):
    assert maps.shape == (3, 7, 7, 2048) and maps.dtype == torch.float16 and maps.device.type == "cpu"
    assert torch.isfinite(maps).all()
    assert not torch.equal(maps[0], maps[1])  # different frames, different maps


def test_same_seed_same_weights_other_seed_differs(clip, images, maps):
    again = E.load_clip("random", seed=0, device="cpu", bn3_gamma=BN3_GAMMA)
    for (name, a), b in zip(clip.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name
    assert torch.equal(E.clip_maps(again, images), maps)
    other = E.load_clip("random", seed=1, device="cpu", bn3_gamma=BN3_GAMMA)
    assert not torch.equal(other.visual.conv1.weight, clip.visual.conv1.weight)
    assert not torch.equal(E.clip_maps(other, images), maps)


def test_seeding_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    E.load_vggish("random", seed=5, device="cpu")
    assert torch.equal(torch.rand(3), expected)


def test_eval_features_do_not_depend_on_the_batch(clip, images, maps):
    alone = E.clip_maps(clip, images[:1]).float()
    assert torch.allclose(alone, maps[:1].float(), rtol=1e-2, atol=1e-6)
    reordered = E.clip_maps(clip, images.flip(0)).float()
    assert torch.allclose(reordered.flip(0), maps.float(), rtol=1e-2, atol=1e-6)


def test_channels_last_equals_nchw(clip, images, maps):
    nchw = E.clip_maps(clip, images, channels_last=False).float()
    assert torch.allclose(nchw, maps.float(), rtol=1e-2, atol=1e-6)
    assert clip.visual.conv1.weight.is_contiguous()  # the model follows the requested format
    E.clip_maps(clip, images[:1], channels_last=True)
    assert clip.visual.conv1.weight.is_contiguous(memory_format=torch.channels_last)


def test_bf16_close_to_fp32(clip, images, maps):
    bf16 = E.clip_maps(clip, images, precision="bf16").float()
    ref = maps.float()
    rel = ((bf16 - ref).norm() / ref.norm()).item()
    centred = ref - ref.mean(dim=0)  # the part that tells frames apart (random features share a big offset)
    rel_centred = ((bf16 - ref - (bf16 - ref).mean(dim=0)).norm() / centred.norm()).item()
    print(f"bf16 vs fp32 relative error: {rel:.4f} (of the frame-to-frame differences: {rel_centred:.3f})")
    assert rel < 0.03, rel
    assert rel_centred < 0.5, rel_centred


def test_image_transform_matches_open_clip_preprocess(clip, frames):
    from open_clip.transform import PreprocessCfg, image_transform_v2

    # exactly what create_model_and_transforms returns as its val transform
    reference = image_transform_v2(PreprocessCfg(**clip.visual.preprocess_cfg), is_train=False)
    ours = E.clip_image_transform()
    for frame in frames:
        expected = reference(Image.fromarray(frame))
        got = ours(frame)
        assert got.shape == expected.shape == (3, 224, 224)
        # one uint8 level of resampling difference is 1/255/std ~ 0.015-0.017 after normalisation
        assert (got - expected).abs().mean() < 0.01
        assert (got - expected).abs().max() < 0.1
    batch = ours(frames)
    assert torch.equal(batch[1], ours(frames[1]))


def test_image_transform_rejects_float_frames():
    with pytest.raises(ValueError, match="uint8"):
        E.clip_image_transform()(np.zeros((240, 320, 3), np.float32))


# --- VGGish ------------------------------------------------------------------------------------------------
def test_vggish_examples_one_per_second():
    from torchvggish.vggish_input import waveform_to_examples

    audio = wave(5)
    examples = E.vggish_examples(audio, 5)
    assert examples.shape == (5, 1, 96, 64) and examples.dtype == np.float32
    second2 = waveform_to_examples(audio[2 * 16000:3 * 16000], 16000, return_tensor=False)
    np.testing.assert_allclose(examples[2, 0], second2[0], rtol=1e-6)


def test_vggish_example_k_depends_only_on_second_k():
    audio = wave(5)
    changed = audio.copy()
    changed[3 * 16000:4 * 16000] = wave(1, seed=9)
    a, b = E.vggish_examples(audio, 5), E.vggish_examples(changed, 5)
    differs = [not np.array_equal(a[k], b[k]) for k in range(5)]
    assert differs == [False, False, False, True, False]


def test_the_log_mel_runs_on_one_blas_thread(monkeypatch):
    """numpy's idle OpenBLAS threads spin after a call: the log-mel's matmul runs on one, the limit is undone."""
    from threadpoolctl import threadpool_info
    from torchvggish import mel_features

    def blas():
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before, inside = blas(), []
    log_mel = mel_features.log_mel_spectrogram
    monkeypatch.setattr(mel_features, "log_mel_spectrogram", lambda *a, **k: inside.extend(blas()) or log_mel(*a, **k))
    E.vggish_examples(wave(2), 2)
    assert inside and set(inside) == {1} and blas() == before


def test_vggish_examples_length_checks():
    assert E.vggish_examples(wave(3)[:-200], 3).shape == (3, 1, 96, 64)  # a few samples short: padded
    with pytest.raises(ValueError, match="too short for 3 s"):
        E.vggish_examples(wave(2), 3)


def test_vggish_emb_shape_and_determinism(vggish):
    examples = E.vggish_examples(wave(4), 4)
    emb = E.vggish_emb(vggish, examples)
    assert emb.shape == (4, 128) and emb.dtype == np.float32 and np.isfinite(emb).all()
    assert (emb > 0).any() and not vggish.postprocess
    assert np.array_equal(E.vggish_emb(E.load_vggish("random", 0, "cpu"), examples), emb)
    assert E.vggish_emb(vggish, examples[:1]).shape == (1, 128)


# --- weights sources -----------------------------------------------------------------------------------------
def test_clip_checkpoint_path_round_trip(clip, images, maps, tmp_path):
    path = tmp_path / "rn50.pt"
    torch.save(clip.state_dict(), path)
    loaded = E.load_clip(str(path), seed=99, device="cpu")
    assert torch.equal(E.clip_maps(loaded, images), maps)


def test_vggish_checkpoint_path_round_trip_and_pca(vggish, tmp_path):
    examples = E.vggish_examples(wave(3), 3)
    path = tmp_path / "vggish.pth"
    torch.save(vggish.state_dict(), path)
    loaded = E.load_vggish(str(path), seed=99, device="cpu")
    raw = E.vggish_emb(vggish, examples)
    assert np.array_equal(E.vggish_emb(loaded, examples), raw)
    # PCA parameters next to the checkpoint -> torchvggish's postprocess (PCA, clip to +-2, 8-bit quantise)
    torch.save({"pca_eigen_vectors": np.eye(128), "pca_means": np.full(128, 0.001)},
               tmp_path / "vggish_pca_params-970ea276.pth")
    with_pca = E.vggish_emb(E.load_vggish(str(path), 0, "cpu"), examples)
    np.testing.assert_array_equal(with_pca, np.round((np.clip(raw - 0.001, -2, 2) + 2) * 255 / 4))


def test_missing_checkpoint_names_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "RN50.pt"
    with pytest.raises(FileNotFoundError, match="nowhere/RN50.pt"):
        E.load_clip(str(missing), 0, "cpu")
    with pytest.raises(FileNotFoundError, match="vggish.pth"):
        E.load_vggish(str(tmp_path / "vggish.pth"), 0, "cpu")


def test_wrong_checkpoint_names_the_path(vggish, tmp_path):
    state = vggish.state_dict()
    state["embeddings.4.weight"] = state["embeddings.4.weight"][:64]  # 64-d instead of 128-d
    path = tmp_path / "bad_vggish.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match="bad_vggish.pth: not a loadable VGGish"):
        E.load_vggish(str(path), 0, "cpu")
    garbage = tmp_path / "bad_clip.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad_clip.pt: not a loadable CLIP"):
        E.load_clip(str(garbage), 0, "cpu")


def test_pretrained_offline_raises_clear_error(tmp_path):
    script = textwrap.dedent("""
        from avqa.features import encoders as E
        for load in (E.load_clip, E.load_vggish):
            try:
                load("pretrained", 0, "cpu")
            except E.WeightsUnavailableError as err:
                print("UNAVAILABLE", str(err).replace("\\n", " "))
    """)
    # No cache and a dead proxy: the loaders must fail at once, wherever the test runs.
    env = dict(os.environ, HF_HUB_OFFLINE="1", TORCH_HOME=str(tmp_path / "torch"), HF_HOME=str(tmp_path / "hf"),
               HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in done.stdout.splitlines() if line.startswith("UNAVAILABLE")]
    assert len(lines) == 2, done.stdout + done.stderr
    assert "CLIP RN50" in lines[0] and "VGGish" in lines[1]
    assert all("weights: {clip: path/to/RN50.pt, vggish:" in line for line in lines)


# --- devices, precision, config values ---------------------------------------------------------------------
def test_fp16_autocast_refused_on_cpu(clip, images):
    with pytest.raises(ValueError, match="fp16 autocast is not used on CPU"):
        E.clip_maps(clip, images[:1], precision="fp16")


def test_vggish_examples_equal_a_per_second_log_mel():
    from torchvggish.vggish_input import waveform_to_examples

    audio = wave(4)
    per_second = np.stack([waveform_to_examples(audio[k * 16000:(k + 1) * 16000], 16000, return_tensor=False)[0]
                           for k in range(4)])
    np.testing.assert_allclose(E.vggish_examples(audio, 4)[:, 0], per_second, rtol=1e-6, atol=1e-6)


def test_vggish_bf16_autocast_is_close_to_fp32_and_fp32_is_torchvggish_forward():
    model = E.load_vggish("random", seed=0, device="cpu")
    examples = E.vggish_examples(wave(3), 3)
    fp32, bf16 = E.vggish_emb(model, examples, "fp32"), E.vggish_emb(model, examples, "bf16")
    assert bf16.dtype == np.float32 and bf16.shape == (3, 128)
    assert not np.array_equal(fp32, bf16)                                  # the autocast is really applied
    np.testing.assert_allclose(bf16, fp32, rtol=0.1, atol=0.05 * np.abs(fp32).max())
    direct = model(torch.as_tensor(examples)).detach().numpy()             # torchvggish's own forward
    np.testing.assert_allclose(fp32, direct, rtol=1e-5, atol=1e-7)
