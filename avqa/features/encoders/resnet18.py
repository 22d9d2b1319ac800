"""The ResNet-18 family: the layer4 map of each frame, (7, 7, 512), for the paper's other encoder block
(VGGish + ResNet-18, Table 1 of the TASS-Net paper; AVST's and SaSR-Net's visual features).

The standard torchvision network at 224 x 224 (resize the short side to 224, centre crop, ImageNet mean / std),
so its 7 x 7 grid covers the same centre square as CLIP-RN50's and TSG+'s tau ~ 1/49 keeps its meaning. (The
public MUSIC-AVQA extraction runs layer4 with stride 1 for 14 x 14 maps: 4x the storage and the models' spatial
cost for the same receptive fields; the models take any H x W, so that choice stays open.)
"""
from __future__ import annotations

import numpy as np
import torch

from avqa.features.encoders.base import FrozenEncoder
from avqa.features.encoders.weights import HOW_TO_SUPPLY, load_frozen
from avqa.features.layout import LAYOUT
from avqa.runtime import autocast

IMAGE_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HOW_TO_SUPPLY_RESNET = HOW_TO_SUPPLY.replace(
    "weights: {clip: path/to/RN50.pt, vggish: path/to/vggish-10086976.pth}",
    "weights: {..., resnet18: path/to/resnet18-f37072fd.pth}").replace(
    "(RN50.pt: OpenAI's CLIP RN50 checkpoint or an open_clip state_dict; vggish-10086976.pth: torchvggish's "
    "state_dict, with vggish_pca_params-970ea276.pth next to it for the PCA postprocess)",
    "(torchvision's ResNet18_Weights.IMAGENET1K_V1 state_dict)")


def load_resnet18(weights: str, seed: int, device) -> torch.nn.Module:
    """torchvision's ResNet-18, frozen, in eval mode, on `device`.

    random: torchvision's initialisation under torch.manual_seed(seed); pretrained: ImageNet weights through
    torchvision's own loader (ResNet18_Weights.IMAGENET1K_V1); path: a state_dict of that architecture.
    """
    from torchvision.models import ResNet18_Weights, resnet18

    def from_file(file):
        model = resnet18(weights=None)
        model.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
        return model

    return load_frozen(weights, seed, device, "ResNet-18", random=lambda: resnet18(weights=None),
                       pretrained=lambda: resnet18(weights=ResNet18_Weights.IMAGENET1K_V1),
                       from_file=from_file, source="torchvision IMAGENET1K_V1", how_to_supply=HOW_TO_SUPPLY_RESNET)


def resnet18_transform():
    """Decoded frames uint8 (H, W, 3) or (N, H, W, 3) -> float32 (N, 3, 224, 224): short side 224 (bilinear,
    antialiased), centre crop, ImageNet normalisation."""
    from torchvision.transforms.v2 import functional as TF

    def transform(frames) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(frames))
        if x.dtype != torch.uint8 or x.shape[-1] != 3 or x.ndim not in (3, 4):
            raise ValueError(f"expected uint8 frames (H, W, 3) or (N, H, W, 3), got {x.dtype} {tuple(x.shape)}")
        x = x.movedim(-1, -3)
        x = TF.resize(x, [IMAGE_SIZE], antialias=True)
        x = TF.center_crop(x, [IMAGE_SIZE, IMAGE_SIZE])
        x = TF.to_dtype(x, torch.float32, scale=True)
        return TF.normalize(x, mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD))

    return transform


def resnet18_maps(model, images: torch.Tensor, precision: str = "fp32", channels_last: bool = True) -> torch.Tensor:
    """images (N, 3, 224, 224) -> the layer4 maps (N, 7, 7, 512) float16 on CPU (no pooling, no classifier)."""
    device = next(model.parameters()).device
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    if not model.conv1.weight.is_contiguous(memory_format=memory_format):
        model.to(memory_format=memory_format)
    x = images.to(device).contiguous(memory_format=memory_format)
    with torch.inference_mode(), autocast(device, precision):
        x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        x = model.layer4(model.layer3(model.layer2(model.layer1(x))))
    return x.permute(0, 2, 3, 1).to("cpu", torch.float16).contiguous()


class ResNet18(FrozenEncoder):
    """Extraction's ResNet-18: the layer4 map of each frame (LAYOUT["resnet18"])."""

    @staticmethod
    def input_size(spec) -> int:
        return IMAGE_SIZE

    @staticmethod
    def preprocess(spec):
        return resnet18_transform()

    def load(self, spec, device):
        return load_resnet18(spec.weights, spec.weights_seed, device)

    @property
    def outputs(self) -> dict[str, tuple[int, ...]]:
        return {"resnet18": LAYOUT["resnet18"].shape}

    def forward(self, inputs, precision):
        return (resnet18_maps(self.model, inputs, precision, self.spec.channels_last).numpy(),)
