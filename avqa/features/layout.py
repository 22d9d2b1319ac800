"""What each feature store holds: one definition of the encoders' names, arrays, per-second shapes and dtypes.

Light on purpose (no torch): the Snakefile helpers, pooling and the data loader read it without loading models.
`results/features/{encoder}/{shard}.zarr` holds the array named here, (V, T1, *shape), plus `video_id` (V,).
"""
from __future__ import annotations

from typing import NamedTuple


class StoreLayout(NamedTuple):
    array: str                    # the array name in the encoder's shard stores
    shape: tuple[int, ...]        # per video and second
    dtype: str


LAYOUT: dict[str, StoreLayout] = {
    "clip_rn50": StoreLayout("maps", (7, 7, 2048), "float16"),   # CLIP-RN50 layer4 map per frame
    "vggish": StoreLayout("emb", (128,), "float32"),             # VGGish embedding per second of audio
}
ENCODERS: tuple[str, ...] = tuple(LAYOUT)
MAP_SHAPE = LAYOUT["clip_rn50"].shape
AUDIO_DIM = LAYOUT["vggish"].shape[0]
