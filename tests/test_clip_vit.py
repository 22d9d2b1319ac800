"""CLIP ViT encoder (TSPM's frame features): frame embeddings + ToMe-merged tokens, preprocessing, the text tower,
and the weights policy (random seeded, pretrained with a clear offline error, a local checkpoint)."""
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

from avqa.features.encoders import clip_vit as V

REPO = Path(__file__).resolve().parents[1]
BACKBONE = "ViT-B-32"
N_TOKENS = 14       # TSPM's merged tokens per frame


def vit_frames(model, images, precision="fp32", n_tokens=N_TOKENS, exact_embedding=True, **options):
    return V.clip_vit_frames(model, images, precision, n_tokens, exact_embedding, **options)


@pytest.fixture(scope="module")
def model():
    return V.load_clip_vit("random", seed=0, device="cpu", backbone=BACKBONE)


@pytest.fixture(scope="module")
def frames():
    """Two 240x320 frames: colour gradients plus noise, like decoded video."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:240, 0:320]
    base = np.stack([xx / 320, yy / 240, (xx + yy) / 560], axis=-1) * 255
    return np.stack([np.clip(base * rng.uniform(0.3, 1, 3) + rng.normal(0, 20, base.shape), 0, 255)
                     for _ in range(2)]).astype(np.uint8)


@pytest.fixture(scope="module")
def images(frames):
    return V.clip_vit_transform(BACKBONE)(frames)


@pytest.fixture(scope="module")
def features(model, images):
    return vit_frames(model, images, precision="fp32")


def test_shapes_and_dtypes_vit_b32(model, images, features):
    embedding, tokens = features
    assert embedding.shape == (2, 512) and tokens.shape == (2, 14, 768)
    assert embedding.dtype == tokens.dtype == torch.float16 and embedding.device.type == "cpu"
    assert torch.isfinite(embedding).all() and torch.isfinite(tokens).all()
    assert not torch.equal(tokens[0], tokens[1])
    dims = V.clip_vit_dims(BACKBONE, N_TOKENS)
    assert (dims["embedding"], dims["tokens"]) == ((512,), (14, 768))
    projected = vit_frames(model, images[:1], n_tokens=7, project_tokens=True)[1]
    assert projected.shape == (1, 7, 512) == (1, *V.clip_vit_dims(BACKBONE, 7, project_tokens=True)["tokens"])


def test_frame_embedding_is_clips_encode_image(model, images, features):
    with torch.no_grad():
        reference = model.encode_image(images)
    assert torch.allclose(features[0].float(), reference, rtol=1e-2, atol=2e-3)
    merged_cls = vit_frames(model, images, exact_embedding=False)[0]
    assert not torch.allclose(merged_cls.float(), reference, atol=1e-2)    # the merged pass's CLS differs


def test_model_is_frozen_eval_and_patched_with_open_clip_keys(model):
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert all(b.tome_state is model.visual.tome_state for b in model.visual.transformer.resblocks)
    assert "visual.transformer.resblocks.0.attn.in_proj_weight" in model.state_dict()


def test_same_seed_same_features_other_seed_differs(model, features, images):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    again = V.load_clip_vit("random", seed=0, device="cpu", backbone=BACKBONE)
    assert torch.equal(torch.rand(3), expected)                            # the global RNG is left alone
    for a, b in zip(vit_frames(again, images), features):     # the same batch: CPU kernels vary with its size
        assert torch.equal(a, b)
    other = V.load_clip_vit("random", seed=1, device="cpu", backbone=BACKBONE)
    assert not torch.equal(other.visual.conv1.weight, model.visual.conv1.weight)
    assert not torch.equal(other.visual.transformer.resblocks[5].attn.in_proj_weight,
                           model.visual.transformer.resblocks[5].attn.in_proj_weight)


def test_features_do_not_depend_on_the_batch(model, images, features):
    embedding, tokens = vit_frames(model, images[1:2])
    assert torch.allclose(embedding.float(), features[0][1:2].float(), rtol=1e-2, atol=1e-3)
    assert torch.allclose(tokens.float(), features[1][1:2].float(), rtol=1e-2, atol=1e-2)


def test_bf16_embedding_close_to_fp32_and_fp16_refused_on_cpu(model, images, features):
    embedding, tokens = vit_frames(model, images, precision="bf16")
    reference = features[0].float()
    assert ((embedding.float() - reference).norm() / reference.norm()).item() < 0.05
    assert tokens.shape == (2, 14, 768) and torch.isfinite(tokens).all()
    with pytest.raises(ValueError, match="fp16 autocast is not used on CPU"):
        vit_frames(model, images[:1], precision="fp16")


def test_transform_matches_open_clip_preprocess(model, frames):
    from open_clip.transform import PreprocessCfg, image_transform_v2

    reference = image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg), is_train=False)
    ours = V.clip_vit_transform(BACKBONE)
    for frame in frames:
        expected, got = reference(Image.fromarray(frame)), ours(frame)
        assert got.shape == expected.shape == (3, 224, 224)
        assert (got - expected).abs().mean() < 0.01 and (got - expected).abs().max() < 0.1
    large = V.clip_vit_transform("ViT-L-14-336")(frames)
    big_reference = image_transform_v2(PreprocessCfg(**{**model.visual.preprocess_cfg, "size": 336}), False)
    assert large.shape == (2, 3, 336, 336)
    assert (large[0] - big_reference(Image.fromarray(frames[0]))).abs().mean() < 0.01
    with pytest.raises(ValueError, match="uint8"):
        ours(frames.astype(np.float32))


def test_bad_inputs_are_named(model, images):
    with pytest.raises(ValueError, match="expected images \\(N, 3, 224, 224\\)"):
        vit_frames(model, images[:, :, :200, :200])
    with pytest.raises(ValueError, match="'RN50' is not an open_clip CLIP ViT"):
        V.load_clip_vit("random", 0, "cpu", backbone="RN50")


def test_text_tower_matches_encode_text_with_the_cut_context(model):
    tokenizer = V.clip_vit_tokenizer(BACKBONE)
    texts = ["The violin is always playing in this video.", "A voiceover is heard in the video.", "Yes"]
    out = V.clip_vit_text(model, tokenizer, texts, batch=2)
    longest = int((tokenizer(texts) != 0).sum(dim=1).max())
    assert out["sentence"].shape == (3, 512) and out["sentence"].dtype == np.float32
    assert out["tokens"].shape == (3, longest, 512) and out["tokens"].dtype == np.float16
    assert out["token_mask"].sum(axis=1).tolist() == [int(n) for n in (tokenizer(texts) != 0).sum(dim=1)]
    assert not out["tokens"][~out["token_mask"]].any()
    with torch.no_grad():
        full = model.encode_text(tokenizer(texts))                         # the full 77-token context
    np.testing.assert_allclose(out["sentence"], full.numpy(), rtol=1e-4, atol=1e-4)


# --- weights sources -----------------------------------------------------------------------------------------
def test_local_checkpoint_round_trip(model, images, features, tmp_path):
    path = tmp_path / "vit_b32.pt"
    torch.save(model.state_dict(), path)
    loaded = V.load_clip_vit(str(path), seed=99, device="cpu", backbone=BACKBONE)
    for a, b in zip(vit_frames(loaded, images), features):
        assert torch.equal(a, b)


def test_missing_or_wrong_checkpoint_names_the_path(model, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere/ViT-B-32.pt"):
        V.load_clip_vit(str(tmp_path / "nowhere" / "ViT-B-32.pt"), 0, "cpu", BACKBONE)
    garbage = tmp_path / "bad_vit.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad_vit.pt: not a loadable CLIP ViT-B-32"):
        V.load_clip_vit(str(garbage), 0, "cpu", BACKBONE)


def test_pretrained_offline_raises_clear_error(tmp_path):
    script = textwrap.dedent("""
        from avqa.features import encoders as E
        try:
            E.load_clip_vit("pretrained", 0, "cpu", backbone="ViT-B-32")
        except E.WeightsUnavailableError as err:
            print("UNAVAILABLE", str(err).replace("\\n", " "))
    """)
    # No cache and a dead proxy: the loader must fail at once, wherever the test runs.
    env = dict(os.environ, HF_HUB_OFFLINE="1", TORCH_HOME=str(tmp_path / "torch"), HF_HOME=str(tmp_path / "hf"),
               HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in done.stdout.splitlines() if line.startswith("UNAVAILABLE")]
    assert len(lines) == 1, done.stdout + done.stderr
    assert "CLIP ViT-B-32" in lines[0] and "'openai'" in lines[0]
    assert "weights: {clip_vit: path/to/ViT-L-14-336px.pt" in lines[0] and "weights: random" in lines[0]
