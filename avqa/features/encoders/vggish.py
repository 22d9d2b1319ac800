"""The VGGish family: one 128-d embedding per second of 16 kHz audio (torchvggish), log-mel examples per second."""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import torch

from avqa.features.encoders.base import FrozenEncoder
from avqa.features.encoders.weights import load_frozen
from avqa.features.layout import LAYOUT, SAMPLE_RATE
from avqa.runtime import autocast

logger = logging.getLogger(__name__)


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

    model = load_frozen(weights, seed, device, "VGGish", random=lambda: tv.VGG(tv.make_layers(), postprocess=False),
                        pretrained=lambda: tv.vggish(postprocess=True), from_file=_vggish_from_file,
                        source=tv.VGGISH_WEIGHTS)
    if model.postprocess:  # the PCA tensors are plain attributes, not buffers: move them by hand
        model.pproc._pca_matrix = model.pproc._pca_matrix.to(device)
        model.pproc._pca_means = model.pproc._pca_means.to(device)
    return model


def _vggish_from_file(file: Path) -> torch.nn.Module:
    from torchvggish import torchvggish as tv

    state = torch.load(file, map_location="cpu", weights_only=True)
    pca = {k: state.pop(k) for k in ("pca_eigen_vectors", "pca_means") if k in state}
    pca_file = file.with_name(Path(tv.PCA_PARAMS).name)
    if not pca and pca_file.is_file():
        pca = torch.load(pca_file, map_location="cpu", weights_only=False)  # numpy arrays inside
    model = tv.VGG(tv.make_layers(), postprocess=False)
    model.load_state_dict(state)
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
    # One BLAS thread: numpy's OpenBLAS threads spin after the mel matmul, ~0.1 CPU-s per track taken from the
    # model and the decoders (benchmarks/extract.py); the limit costs ~3 ms per call.
    with _blas_controller().limit(limits=1, user_api="blas"):
        log_mel = mel_features.log_mel_spectrogram(
            wave, audio_sample_rate=SAMPLE_RATE, log_offset=vp.LOG_OFFSET,
            window_length_secs=vp.STFT_WINDOW_LENGTH_SECONDS, hop_length_secs=vp.STFT_HOP_LENGTH_SECONDS,
            num_mel_bins=vp.NUM_MEL_BINS, lower_edge_hertz=vp.MEL_MIN_HZ, upper_edge_hertz=vp.MEL_MAX_HZ)
    hop = round(SAMPLE_RATE * vp.STFT_HOP_LENGTH_SECONDS)                         # 160 samples
    frames_per_second = SAMPLE_RATE // hop                                         # 100
    frames = round(vp.EXAMPLE_WINDOW_SECONDS / vp.STFT_HOP_LENGTH_SECONDS)        # 96
    index = frames_per_second * np.arange(n_seconds)[:, None] + np.arange(frames)
    return log_mel[index][:, None].astype(np.float32)


@functools.cache
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def vggish_emb(model, examples: np.ndarray | torch.Tensor, precision: str = "fp32") -> np.ndarray:
    """(n, 1, 96, 64) log-mel examples -> (n, 128) float32 embeddings (PCA-quantised if the model has PCA).

    precision: autocast of the VGG trunk and embedding layers (fp32 | bf16 | fp16 on cuda); the PCA and 8-bit
    quantisation of the pretrained postprocess always run in float32, so the rounding of the autocast cannot
    move a value across a quantisation step more than the embedding's own error does.
    """
    device = next(model.parameters()).device
    x = torch.as_tensor(examples).to(device, torch.float32)
    with torch.inference_mode():
        with autocast(device, precision):
            features = model.features(x)
            # torchvggish's VGG.forward: (n, C, H, W) -> (n, H, W, C) before flattening, as TF's VGGish
            emb = model.embeddings(features.permute(0, 2, 3, 1).reshape(len(x), -1))
        emb = emb.float()
        if model.postprocess:
            emb = model.pproc.postprocess(emb)
    return emb.reshape(len(x), -1).float().cpu().numpy()


class VGGish(FrozenEncoder):
    """Extraction's VGGish: one embedding per second of audio (LAYOUT["vggish"]), from that second's log-mel
    example."""

    @staticmethod
    def preprocess(spec):
        return vggish_examples

    def load(self, spec, device):
        return load_vggish(spec.weights, spec.weights_seed, device)

    @property
    def outputs(self) -> dict[str, tuple[int, ...]]:
        return {"vggish": LAYOUT["vggish"].shape}

    def forward(self, inputs, precision):
        return (vggish_emb(self.model, inputs, precision),)
