"""What each feature store holds: one definition of the encoders' names, arrays, per-second shapes and dtypes.

Light on purpose (no torch): the Snakefile helpers, pooling and the data loader read it without loading models.
`results/features/{encoder}/{shard}.zarr` holds the array named here, (V, T1, *shape), plus `video_id` (V,).
"""
from __future__ import annotations

from typing import NamedTuple


class StoreLayout(NamedTuple):
    array: str                    # the array name in the encoder's shard stores
    shape: tuple[int, ...] | None  # per video and second (None: set by the encoder's options, e.g. the backbone)
    dtype: str


LAYOUT: dict[str, StoreLayout] = {
    "clip_rn50": StoreLayout("maps", (7, 7, 2048), "float16"),   # CLIP-RN50 layer4 map per frame
    "vggish": StoreLayout("emb", (128,), "float32"),             # VGGish embedding per second of audio
    "resnet18": StoreLayout("maps", (7, 7, 512), "float16"),     # ResNet-18 layer4 map per frame
    "clip_vit": StoreLayout("emb", None, "float16"),             # CLIP ViT image embedding per frame (D,)
    "clip_vit_tokens": StoreLayout("tokens", None, "float16"),   # its patch tokens, ToMe-merged: (n_tokens, width)
}
ENCODERS: tuple[str, ...] = tuple(LAYOUT)
MAP_SHAPE = LAYOUT["clip_rn50"].shape
AUDIO_DIM = LAYOUT["vggish"].shape[0]
# The visual encoders a model can train on (an encoder block); `{name}_tokens`, where it exists, holds the same
# frames' tokens and is pooled with it.
VISUAL_ENCODERS: tuple[str, ...] = tuple(e for e in ("clip_rn50", "resnet18", "clip_vit") if e in LAYOUT)
# The encoder block (the paper's Table 1 groups its rows by it) of each visual encoder.
BLOCK: dict[str, str] = {"clip_rn50": "clip", "clip_vit": "clip", "resnet18": "resnet18"}

# How frames are decoded unless features.decode says otherwise (media.decode_frames; each store records it in its
# frame_decoding attr): every frame at full size, the exact frame nearest each second's centre, resized by the
# encoder's own preprocessing. Opt-in (docs/decoding.md has their fidelity on moving footage): to_input_size
# decodes straight to the encoder's input size; skip_frames decodes (for long, large videos) only the keyframes
# or reference frames nearest each centre, within max_offset_s (else the whole video), 1-2 frames off the
# centre frame; deblock=False also skips H.264's loop filter there (cheaper, frames no longer exact).
DECODE_DEFAULTS = {"to_input_size": False, "skip_frames": False, "max_offset_s": 0.25, "deblock": True}
