"""The encoder registry: one record per frozen encoder, and what each feature store holds.

Light on purpose (no torch): the Snakefile helpers, the specs, pooling and the data loader read it without
loading models. A record names the encoder's entry in the config's `weights`, what is decoded for it (frames or
audio), the stores one extraction job writes, its encoder block (visual encoders), the extraction settings it
reads beyond the common ones, and the class that loads and runs it ("module:Class", imported on demand). That
class (avqa.features.encoders.base.FrozenEncoder) carries the encoder's input size, preprocessing, loader and
forward. A new encoder is a module in avqa/features/encoders/ plus one REGISTRY line and its LAYOUT rows.

`results/features/{store}/{shard}.zarr` holds the array LAYOUT names, (V, T1, *shape), plus `video_id` (V,).
"""
from __future__ import annotations

import importlib
from typing import NamedTuple

# The stores hold one frame per second (the frame nearest each second's centre) and audio decoded at VGGish's
# input rate: fixed by the store layout (V, T1, ...) and the audio encoder, so they are constants, not settings.
FPS = 1
SAMPLE_RATE = 16000

FRAMES, AUDIO = "frames", "audio"


class StoreLayout(NamedTuple):
    array: str                    # the array name in the encoder's shard stores
    shape: tuple[int, ...] | None  # per video and second (None: set by the encoder's options, e.g. the backbone)
    dtype: str


class Encoder(NamedTuple):
    weights_key: str               # its entry in the config's `weights` mapping
    decode: str                    # FRAMES | AUDIO: what is decoded for it
    stores: tuple[str, ...]        # the stores one extraction writes (LAYOUT keys), from one forward pass
    block: str | None              # a visual encoder's block (Table 1 groups its rows by it); None: audio
    options: tuple[str, ...]       # the ExtractSpec fields it reads beyond the common ones
    factory: str                   # "module:Class" (a FrozenEncoder), imported on demand


REGISTRY: dict[str, Encoder] = {
    "clip_rn50": Encoder("clip", FRAMES, ("clip_rn50",), "clip", ("decode", "channels_last", "bn3_gamma"),
                         "avqa.features.encoders.clip_rn50:ClipRN50"),
    "resnet18": Encoder("resnet18", FRAMES, ("resnet18",), "resnet18", ("decode", "channels_last"),
                        "avqa.features.encoders.resnet18:ResNet18"),
    "clip_vit": Encoder("clip_vit", FRAMES, ("clip_vit", "clip_vit_tokens"), "clip", ("decode", "clip_vit"),
                        "avqa.features.encoders.clip_vit:ClipViT"),
    "vggish": Encoder("vggish", AUDIO, ("vggish",), None, ("audio_backend",), "avqa.features.encoders.vggish:VGGish"),
}
LAYOUT: dict[str, StoreLayout] = {
    "clip_rn50": StoreLayout("maps", (7, 7, 2048), "float16"),   # CLIP-RN50 layer4 map per frame
    "vggish": StoreLayout("emb", (128,), "float32"),             # VGGish embedding per second of audio
    "resnet18": StoreLayout("maps", (7, 7, 512), "float16"),     # ResNet-18 layer4 map per frame
    "clip_vit": StoreLayout("emb", None, "float16"),             # CLIP ViT image embedding per frame (D,)
    "clip_vit_tokens": StoreLayout("tokens", None, "float16"),   # its patch tokens, ToMe-merged: (n_tokens, width)
}
# Every store an extraction writes ({encoder} of the feature paths), and the encoders one job runs.
ENCODERS: tuple[str, ...] = tuple(LAYOUT)
EXTRACTED: tuple[str, ...] = tuple(REGISTRY)
MAP_SHAPE = LAYOUT["clip_rn50"].shape
AUDIO_DIM = LAYOUT["vggish"].shape[0]
# The visual encoders a model can train on; `{name}_tokens`, where it exists, holds the same frames' tokens and is
# pooled with it.
VISUAL_ENCODERS: tuple[str, ...] = tuple(name for name, record in REGISTRY.items() if record.block)
# The encoder block of each visual encoder.
BLOCK: dict[str, str] = {name: record.block for name, record in REGISTRY.items() if record.block}


def encoder_record(name: str) -> Encoder:
    if name not in REGISTRY:
        raise ValueError(f"unknown encoder {name!r}; registered: {sorted(REGISTRY)}")
    return REGISTRY[name]


def encoder_class(name: str):
    """The FrozenEncoder class of a registered encoder (imports its module, hence torch)."""
    module, cls = encoder_record(name).factory.split(":")
    return getattr(importlib.import_module(module), cls)


def encoder_pattern(encoders: tuple[str, ...] = ()) -> str:
    """A Snakemake wildcard constraint matching exactly these encoders (default: the one-store encoders, which the
    generic `extract` rule runs; an encoder writing several stores has a rule naming them)."""
    names = encoders or tuple(name for name, record in REGISTRY.items() if len(record.stores) == 1)
    return "|".join(names)
