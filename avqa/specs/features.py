"""The feature stages' specs: shards, extraction (one per encoder) and the question text features."""
from __future__ import annotations

from typing import ClassVar, Literal

from avqa.specs import Spec, spec


@spec
class ShardsSpec(Spec):
    """`python -m avqa shards`: which videos folder, how many videos per extraction job, how many may be missing."""

    stage: ClassVar[str] = "shards"
    videos_dir: str
    videos_per_shard: int
    max_missing_fraction: float


Precision = Literal["fp32", "bf16", "fp16"]
Device = Literal["auto", "cpu", "cuda"]


@spec
class DecodeSpec(Spec):
    """features.decode: how frames are decoded (avqa.features.media.decode_frames); docs/decoding.md."""

    stage: ClassVar[str] = "extract"
    to_input_size: bool      # decode straight to the encoder's input size (not the exact pixels)
    skip_frames: bool        # decode only key / reference frames near each second's centre
    max_offset_s: float      # farthest such a frame may be from its centre, else the video is decoded in full
    deblock: bool            # False: no H.264 loop filter on the skipping path
    backend: Literal["decord", "torchcodec"]   # the frame decoder (avqa.features.decoders)
    seek_mode: Literal["exact", "approximate"]  # torchcodec: frame start times from a packet scan, or the header
    device: Literal["cpu", "cuda"]              # torchcodec: where frames are decoded


@spec
class ClipVitSpec(Spec):
    """features.clip_vit: the open_clip ViT, the ToMe-merged tokens kept per frame, and whether the frame
    embedding is CLIP's own (a second, unmerged pass) or the merging pass's."""

    stage: ClassVar[str] = "extract"
    backbone: str
    n_tokens: int
    exact_embedding: bool


@spec
class BatchFramesSpec(Spec):
    """features.batch_frames: seconds per model batch, per device."""

    stage: ClassVar[str] = "extract"
    cpu: int
    cuda: int


@spec
class PrecisionSpec(Spec):
    """features.precision: the frozen encoders' autocast, per device."""

    stage: ClassVar[str] = "extract"
    cpu: Precision
    cuda: Precision


@spec
class ExtractSpec(Spec):
    """`python -m avqa extract`: one registered encoder (avqa.features.layout.REGISTRY) on one shard.

    The settings an encoder does not read are null (`decode`, `channels_last` for VGGish, `bn3_gamma` beside
    CLIP-RN50, `clip_vit` beside CLIP ViT), so changing one encoder's setting changes only its jobs' specs.
    """

    stage: ClassVar[str] = "extract"
    encoder: str
    T1: int                          # seconds kept per video
    weights: str                     # random | pretrained | a checkpoint path
    weights_seed: int
    device: Device
    workers: int                     # decoder processes beside the model (0: in-process)
    batch_frames: BatchFramesSpec
    precision: PrecisionSpec
    channels_last: bool | None       # frame CNNs: run the trunk in channels-last format
    decode: DecodeSpec | None        # frame encoders
    audio_backend: Literal["ffmpeg", "torchcodec"] | None   # audio encoders: the audio decoder
    bn3_gamma: float | None          # CLIP-RN50, random weights: its bottlenecks' bn3 gamma
    clip_vit: ClipVitSpec | None     # CLIP ViT


@spec
class QuestionsSpec(Spec):
    """`python -m avqa questions`: the CLIP-RN50 text tower on every question."""

    stage: ClassVar[str] = "questions"
    weights: str
    weights_seed: int
    device: Device
    batch: int                       # texts per forward pass


@spec
class QuestionsVitSpec(Spec):
    """`python -m avqa questions-vit`: the CLIP ViT text tower of the frame features on questions and prompts."""

    stage: ClassVar[str] = "questions-vit"
    backbone: str
    weights: str
    weights_seed: int
    device: Device
    batch: int
