"""The frozen encoders: CLIP-RN50 (visual 7x7x2048 maps + text tower) and VGGish (128-d per second of audio).

Weights come from one of three sources (config key `weights`, per encoder or shared):
- "random": the real architecture with a seeded initialisation (no download; the default offline run);
- "pretrained": the public weights through the libraries' own loaders (open_clip 'openai', torchvggish);
- a path: a local checkpoint file (the way to use pretrained weights on a machine without internet).
A failed download raises WeightsUnavailableError saying how to supply a local file; there is no silent fallback.
All models are returned in eval() mode (train-mode BatchNorm would make a frame's features depend on the rest
of its batch) with gradients off.
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger(__name__)

CLIP_ARCH = "RN50"
CLIP_IMAGE_SIZE = 224
SAMPLE_RATE = 16000          # VGGish's input rate
DOWNLOAD_TIMEOUT_S = 15      # a machine without internet must fail quickly, not after long retries
DEFAULT_BN3_GAMMA = 0.3
_PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_HOW_TO_SUPPLY = (
    "Download the weights elsewhere and point the config at the local files, e.g.\n"
    "  weights: {clip: path/to/RN50.pt, vggish: path/to/vggish-10086976.pth}\n"
    "(RN50.pt: OpenAI's CLIP RN50 checkpoint or an open_clip state_dict; vggish-10086976.pth: torchvggish's "
    "state_dict, with vggish_pca_params-970ea276.pth next to it for the PCA postprocess), or use weights: random."
)


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights were requested but could not be obtained (e.g. no internet)."""


# --- device and precision ----------------------------------------------------------------------------------
def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda if available else cpu; 'cpu'; 'cuda[:i]' (error if there is no GPU)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {name!r} requested but no CUDA GPU is available; use device: auto or cpu")
        return torch.device(name)
    raise ValueError(f"unknown device {name!r}: expected auto, cpu or cuda")


def autocast_dtype(name: str) -> torch.dtype | None:
    """'fp32' -> None (no autocast), 'bf16' -> torch.bfloat16, 'fp16' -> torch.float16."""
    if name not in _PRECISIONS:
        raise ValueError(f"unknown precision {name!r}: expected one of {sorted(_PRECISIONS)}")
    return _PRECISIONS[name]


def _autocast(device: torch.device, precision: str):
    dtype = autocast_dtype(precision)
    if dtype is None:
        return contextlib.nullcontext()
    if device.type == "cpu" and dtype == torch.float16:
        raise ValueError("fp16 autocast is not used on CPU (slow there): set precision bf16 or fp32 for cpu")
    return torch.autocast(device.type, dtype=dtype)


# --- weights -----------------------------------------------------------------------------------------------
def resolve_weights(weights, encoder: str) -> str:
    """The weights source of one encoder ('clip' | 'vggish'): 'random', 'pretrained' or a checkpoint path.

    `weights` is the config value: one string for both encoders, or a mapping {clip: ..., vggish: ...}.
    """
    if isinstance(weights, Mapping):
        if encoder not in weights:
            raise ValueError(f"weights mapping {dict(weights)} has no entry for encoder {encoder!r}")
        weights = weights[encoder]
    if not isinstance(weights, (str, os.PathLike)) or not str(weights):
        raise ValueError(f"weights for {encoder!r} must be 'random', 'pretrained' or a file path, got {weights!r}")
    return str(weights)


@contextlib.contextmanager
def _download_timeout(seconds: float = DOWNLOAD_TIMEOUT_S):
    """Bound every socket operation (urllib has no timeout of its own) while a loader downloads."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _existing_file(path: str, encoder: str) -> Path:
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"{encoder} weights file {path!r} does not exist (weights must be 'random', 'pretrained' or a path)")
    return file


def _frozen(model: torch.nn.Module, device) -> torch.nn.Module:
    model = model.to(device).eval()
    model.requires_grad_(False)
    return model


# --- CLIP RN50 ---------------------------------------------------------------------------------------------
def load_clip(weights: str, seed: int, device, bn3_gamma: float = DEFAULT_BN3_GAMMA):
    """open_clip CLIP-RN50 (QuickGELU text tower, as OpenAI's RN50), frozen, in eval mode, on `device`.

    random: built under torch.manual_seed(seed) (the global RNG is left untouched). open_clip's init zeroes
    every bottleneck's last BatchNorm gamma (bn3), so each residual branch starts silent; we set those gammas to
    `bn3_gamma` (config `weights_bn3_gamma`; 0 keeps open_clip's init), which makes the random maps carry a bit
    more of the picture. pretrained: the 'openai' tag. path: an open_clip state_dict or OpenAI's RN50.pt.
    QuickGELU is used for all three so a saved random model reloads identically.
    """
    import open_clip

    if weights == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = open_clip.create_model(CLIP_ARCH, pretrained=None, force_quick_gelu=True)
        _set_bn3_gamma(model.visual, bn3_gamma)
    elif weights == "pretrained":
        try:
            with _download_timeout():
                model = open_clip.create_model(CLIP_ARCH, pretrained="openai", force_quick_gelu=True)
        except Exception as err:
            raise WeightsUnavailableError(
                f"could not load the pretrained CLIP {CLIP_ARCH} weights (open_clip tag 'openai'): {err}\n"
                + _HOW_TO_SUPPLY) from err
    else:
        file = _existing_file(weights, "CLIP")
        try:
            model = open_clip.create_model(CLIP_ARCH, pretrained=str(file), force_quick_gelu=True)
        except Exception as err:
            raise ValueError(f"{file}: not a loadable CLIP {CLIP_ARCH} checkpoint: {err}") from err
    return _frozen(model, device)


def _set_bn3_gamma(visual: torch.nn.Module, gamma: float) -> None:
    for name, param in visual.named_parameters():
        if name.endswith("bn3.weight") and name.startswith("layer"):  # bottleneck bn3, not the stem's bn3
            torch.nn.init.constant_(param, gamma)


def clip_image_transform():
    """CLIP's RN50 preprocessing for decoded frames, batched on tensors.

    Returns f(frames) with frames uint8 (H, W, 3) or (N, H, W, 3) (numpy or torch) -> float32 (3, 224, 224) or
    (N, 3, 224, 224): resize the shortest side to 224 (bicubic, antialiased, uint8 like PIL), centre crop 224,
    scale to [0, 1], normalise with OpenAI's mean/std: open_clip's val transform, without the PIL round trip.
    """
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    from torchvision.transforms.v2 import functional as TF
    from torchvision.transforms.v2 import InterpolationMode

    def transform(frames) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(frames))
        if x.dtype != torch.uint8 or x.shape[-1] != 3 or x.ndim not in (3, 4):
            raise ValueError(f"expected uint8 frames (H, W, 3) or (N, H, W, 3), got {x.dtype} {tuple(x.shape)}")
        x = x.movedim(-1, -3)
        x = TF.resize(x, [CLIP_IMAGE_SIZE], interpolation=InterpolationMode.BICUBIC, antialias=True)
        x = TF.center_crop(x, [CLIP_IMAGE_SIZE, CLIP_IMAGE_SIZE])
        x = TF.to_dtype(x, torch.float32, scale=True)
        return TF.normalize(x, mean=list(OPENAI_DATASET_MEAN), std=list(OPENAI_DATASET_STD))

    return transform


def clip_maps(model, images: torch.Tensor, precision: str = "fp32", channels_last: bool = True) -> torch.Tensor:
    """The layer4 map before attention pooling: images (N, 3, 224, 224) -> (N, 7, 7, 2048) float16 on CPU.

    precision: fp32 | bf16 | fp16 autocast (fp16 on cuda only). channels_last: run the trunk in channels-last
    memory format (faster on CPU); the model's weights are switched in place when the format changes.
    """
    visual = model.visual
    device = next(visual.parameters()).device
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    if not visual.conv1.weight.is_contiguous(memory_format=memory_format):
        visual.to(memory_format=memory_format)
    x = images.to(device).contiguous(memory_format=memory_format)
    with torch.inference_mode(), _autocast(device, precision):
        out = visual.forward_intermediates(x, indices=1, intermediates_only=True)
    layer4 = out["image_intermediates"][-1]                      # (N, 2048, 7, 7)
    return layer4.permute(0, 2, 3, 1).to("cpu", torch.float16).contiguous()


# --- VGGish ------------------------------------------------------------------------------------------------
def load_vggish(weights: str, seed: int, device) -> torch.nn.Module:
    """torchvggish's VGGish, frozen, in eval mode, on `device`.

    random: the architecture (torchvggish VGG(make_layers())) built under torch.manual_seed(seed); raw 128-d
    ReLU embeddings, no PCA postprocess (the PCA parameters belong to the trained weights).
    pretrained: torchvggish's own vggish() loader: official weights + PCA/whitening + 8-bit quantisation
    postprocess (values 0..255), as in the public MUSIC-AVQA VGGish features.
    path: a state_dict .pth of that architecture; the PCA postprocess is applied if
    vggish_pca_params-970ea276.pth lies next to it (or the file itself holds pca_eigen_vectors/pca_means).
    """
    from torchvggish import torchvggish as tv

    if weights == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = tv.VGG(tv.make_layers(), postprocess=False)
    elif weights == "pretrained":
        try:
            with _download_timeout():
                model = tv.vggish(postprocess=True)
        except Exception as err:
            raise WeightsUnavailableError(
                f"could not load the pretrained VGGish weights ({tv.VGGISH_WEIGHTS}): {err}\n" + _HOW_TO_SUPPLY
            ) from err
    else:
        model = _vggish_from_file(_existing_file(weights, "VGGish"))
    model = _frozen(model, device)
    if model.postprocess:  # the PCA tensors are plain attributes, not buffers: move them by hand
        model.pproc._pca_matrix = model.pproc._pca_matrix.to(device)
        model.pproc._pca_means = model.pproc._pca_means.to(device)
    return model


def _vggish_from_file(file: Path) -> torch.nn.Module:
    from torchvggish import torchvggish as tv

    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
        pca = {k: state.pop(k) for k in ("pca_eigen_vectors", "pca_means") if k in state}
        pca_file = file.with_name(Path(tv.PCA_PARAMS).name)
        if not pca and pca_file.is_file():
            pca = torch.load(pca_file, map_location="cpu", weights_only=False)  # numpy arrays inside
        model = tv.VGG(tv.make_layers(), postprocess=False)
        model.load_state_dict(state)
    except Exception as err:
        raise ValueError(f"{file}: not a loadable VGGish state_dict: {err}") from err
    if pca:
        # Postprocessor() would download the PCA file; build it around the local parameters instead.
        model.pproc = tv.Postprocessor.__new__(tv.Postprocessor)
        model.pproc._pca_matrix = torch.as_tensor(pca["pca_eigen_vectors"]).float()
        model.pproc._pca_means = torch.as_tensor(pca["pca_means"]).reshape(-1, 1).float()
        model.postprocess = True
    else:
        logger.warning("%s: no PCA parameters found: raw VGGish embeddings (no PCA postprocess)", file)
    return model


def vggish_examples(wave_16k: np.ndarray, n_seconds: int) -> np.ndarray:
    """(n_seconds, 1, 96, 64) float32 log-mel examples, example k cut from second k's own 16,000 samples.

    Running waveform_to_examples on the whole track would hop by 0.96 s and drift off the second boundaries
    (example 7 would cover 6.72-7.68 s). Here example k is the 96 log-mel frames that start in second k:
    frames hop by 10 ms (160 samples), so frame 100k + j starts at sample 16000k + 160j, and the last one
    (j = 95) ends at 16000k + 15600, inside the second. One log-mel pass over the whole track therefore gives
    exactly the examples of a per-second pass, in one call. A partial last second (decoders often return a
    few samples short) is zero-padded; more missing audio is an error.
    """
    from torchvggish import mel_features
    from torchvggish import vggish_params as vp

    wave = np.asarray(wave_16k, dtype=np.float64)
    if wave.ndim != 1:
        raise ValueError(f"expected a mono waveform, got shape {wave.shape}")
    if n_seconds < 1:
        raise ValueError(f"n_seconds must be >= 1, got {n_seconds}")
    needed = n_seconds * SAMPLE_RATE
    if len(wave) <= needed - SAMPLE_RATE:
        raise ValueError(f"waveform has {len(wave)} samples, too short for {n_seconds} s at {SAMPLE_RATE} Hz")
    wave = np.pad(wave[:needed], (0, max(0, needed - len(wave))))
    log_mel = mel_features.log_mel_spectrogram(
        wave, audio_sample_rate=SAMPLE_RATE, log_offset=vp.LOG_OFFSET,
        window_length_secs=vp.STFT_WINDOW_LENGTH_SECONDS, hop_length_secs=vp.STFT_HOP_LENGTH_SECONDS,
        num_mel_bins=vp.NUM_MEL_BINS, lower_edge_hertz=vp.MEL_MIN_HZ, upper_edge_hertz=vp.MEL_MAX_HZ)
    hop = round(SAMPLE_RATE * vp.STFT_HOP_LENGTH_SECONDS)                         # 160 samples
    frames_per_second = SAMPLE_RATE // hop                                         # 100
    frames = round(vp.EXAMPLE_WINDOW_SECONDS / vp.STFT_HOP_LENGTH_SECONDS)        # 96
    index = frames_per_second * np.arange(n_seconds)[:, None] + np.arange(frames)
    return log_mel[index][:, None].astype(np.float32)


def vggish_emb(model, examples: np.ndarray | torch.Tensor, precision: str = "fp32") -> np.ndarray:
    """(n, 1, 96, 64) log-mel examples -> (n, 128) float32 embeddings (PCA-quantised if the model has PCA).

    precision: autocast of the VGG trunk and embedding layers (fp32 | bf16 | fp16 on cuda); the PCA and 8-bit
    quantisation of the pretrained postprocess always run in float32, so the rounding of the autocast cannot
    move a value across a quantisation step more than the embedding's own error does.
    """
    device = next(model.parameters()).device
    x = torch.as_tensor(examples).to(device, torch.float32)
    with torch.inference_mode():
        with _autocast(device, precision):
            features = model.features(x)
            # torchvggish's VGG.forward: (n, C, H, W) -> (n, H, W, C) before flattening, as TF's VGGish
            emb = model.embeddings(features.permute(0, 2, 3, 1).reshape(len(x), -1))
        emb = emb.float()
        if model.postprocess:
            emb = model.pproc.postprocess(emb)
    return emb.reshape(len(x), -1).float().cpu().numpy()
