"""The CLIP-RN50 family: the visual trunk's 7x7x2048 layer4 maps per frame and the text tower (avqa.features.questions).

open_clip's RN50 with QuickGELU, as OpenAI's checkpoint; frames are preprocessed as open_clip's val transform.
"""
from __future__ import annotations

import numpy as np
import torch

from avqa.features.encoders.base import FrozenEncoder
from avqa.features.encoders.weights import load_frozen
from avqa.features.layout import LAYOUT
from avqa.runtime import autocast

CLIP_ARCH = "RN50"
CLIP_IMAGE_SIZE = 224


def load_clip(weights: str, seed: int, device, bn3_gamma: float | None = None):
    """open_clip CLIP-RN50 (QuickGELU text tower, as OpenAI's RN50), frozen, in eval mode, on `device`.

    random: built under torch.manual_seed(seed). open_clip's init zeroes every bottleneck's last BatchNorm gamma
    (bn3), so each residual branch starts silent; `bn3_gamma` (config `weights_bn3_gamma`; None or 0 keeps
    open_clip's init; the text tower does not read it) makes the random maps carry a bit more of the picture.
    pretrained: the 'openai' tag. path: an open_clip state_dict or OpenAI's RN50.pt. QuickGELU is used for all
    three so a saved random model reloads identically.
    """
    import open_clip

    def random():
        model = open_clip.create_model(CLIP_ARCH, pretrained=None, force_quick_gelu=True)
        if bn3_gamma is not None:
            _set_bn3_gamma(model.visual, bn3_gamma)
        return model

    return load_frozen(
        weights, seed, device, f"CLIP {CLIP_ARCH}", random=random, source="open_clip tag 'openai'",
        pretrained=lambda: open_clip.create_model(CLIP_ARCH, pretrained="openai", force_quick_gelu=True),
        from_file=lambda file: open_clip.create_model(CLIP_ARCH, pretrained=str(file), force_quick_gelu=True))


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
    with torch.inference_mode(), autocast(device, precision):
        out = visual.forward_intermediates(x, indices=1, intermediates_only=True)
    layer4 = out["image_intermediates"][-1]                      # (N, 2048, 7, 7)
    return layer4.permute(0, 2, 3, 1).to("cpu", torch.float16).contiguous()


class ClipRN50(FrozenEncoder):
    """Extraction's CLIP-RN50: the layer4 map of each frame (LAYOUT["clip_rn50"])."""

    @staticmethod
    def input_size(spec) -> int:
        return CLIP_IMAGE_SIZE

    @staticmethod
    def preprocess(spec):
        return clip_image_transform()

    def load(self, spec, device):
        return load_clip(spec.weights, spec.weights_seed, device, spec.bn3_gamma)

    @property
    def outputs(self) -> dict[str, tuple[int, ...]]:
        return {"clip_rn50": LAYOUT["clip_rn50"].shape}

    @property
    def provenance(self) -> dict:
        return {**super().provenance, "bn3_gamma": self.spec.bn3_gamma}

    def forward(self, inputs, precision):
        return (clip_maps(self.model, inputs, precision, self.spec.channels_last).numpy(),)
