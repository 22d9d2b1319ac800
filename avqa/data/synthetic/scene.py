"""Random scenes: the ground truth every synthetic video is rendered from and every answer is computed from.

A scene is a plain JSON-ready dict (it is stored as is in scenes.json):
    video_id, split, seconds, background ("indoor" | "outdoor"), tint (RGB jitter of the background),
    objects:   visible instruments, left to right: instrument, position (left | middle | right),
               sounding (per second 0/1), loudness_db, rhythm ("rhythmic" | "sustained"), pitch_hz,
               and drawing jitter (scale, dx, dy)
    offscreen: instruments heard but not seen (same sound keys, no position)
    voiceover: bool; voiceover_sounding (per second 0/1); voiceover_db
    audio_seed: seeds the noise of the audio rendering
Sounding switches on/off only at multiples of BLOCK_SECONDS (= T1/T of the default features), so each pooled
2-s segment is either on or off.
"""
from __future__ import annotations

import math

import numpy as np

from avqa.data.synthetic.catalog import BY_NAME

POSITIONS = ("left", "middle", "right")
BACKGROUNDS = ("indoor", "outdoor")
RHYTHMS = ("rhythmic", "sustained")
LOUDNESS_DB = (0.0, -6.0, -12.0)     # 6-dB steps: clearly different, and the quietest still heard in a mix
BLOCK_SECONDS = 2
VOICEOVER_DB = -4.0

N_OBJECTS_P = {1: 0.22, 2: 0.33, 3: 0.45}
P_DUPLICATE = 0.35     # a second object of an already drawn type (for "How many <Object>", "Which <Object> ...")
P_SILENT = 0.35        # visible but never sounding (with offscreen sounds: the picture must not tell what sounds)
P_ALWAYS = 0.3         # sounding from the first to the last second
P_OFFSCREEN = 0.5      # an instrument heard but not seen
P_VOICEOVER = 0.5


def _schedule(rng: np.random.Generator, seconds: int, always: bool) -> list[int]:
    """Per-second 0/1: on for one run of whole blocks (all of them if `always`)."""
    n_blocks = math.ceil(seconds / BLOCK_SECONDS)
    if always or n_blocks == 1:
        start, end = 0, n_blocks
    else:
        while True:
            start = int(rng.integers(0, n_blocks))
            end = int(rng.integers(start + 1, n_blocks + 1))
            if (start, end) != (0, n_blocks):
                break
    return [int(start * BLOCK_SECONDS <= s < end * BLOCK_SECONDS) for s in range(seconds)]


def _sound(rng: np.random.Generator, instrument: str, seconds: int, silent: bool) -> dict:
    if silent:
        sounding = [0] * seconds
    else:
        sounding = _schedule(rng, seconds, always=rng.random() < P_ALWAYS)
    return {
        "instrument": instrument,
        "sounding": sounding,
        "loudness_db": float(rng.choice(LOUDNESS_DB)),
        "rhythm": str(rng.choice(RHYTHMS)),
        "pitch_hz": BY_NAME[instrument].sound.f0,
    }


def _visible_types(rng: np.random.Generator, n: int, instruments: list[str]) -> list[str]:
    if n >= 2 and rng.random() < P_DUPLICATE:
        distinct = list(rng.choice(instruments, size=n - 1, replace=False))
        types = distinct + [distinct[int(rng.integers(len(distinct)))]]
    else:
        types = list(rng.choice(instruments, size=n, replace=False))
    return [str(t) for t in rng.permutation(types)]


def sample_scene(rng: np.random.Generator, video_id: str, split: str, seconds: int,
                 instruments: list[str]) -> dict:
    """One random scene over the given instrument types."""
    n_objects = int(rng.choice(list(N_OBJECTS_P), p=list(N_OBJECTS_P.values())))
    slots = sorted(rng.choice(len(POSITIONS), size=n_objects, replace=False))
    objects = []
    for slot, instrument in zip(slots, _visible_types(rng, n_objects, instruments)):
        obj = {"instrument": instrument, "position": POSITIONS[slot]}
        obj.update(_sound(rng, instrument, seconds, silent=rng.random() < P_SILENT))
        # Small jitter of size and place; objects stay inside their slot (width <= 0.88 slot, see catalog).
        obj.update(scale=round(float(rng.uniform(0.95, 1.03)), 3), dx=round(float(rng.uniform(-0.04, 0.04)), 3),
                   dy=round(float(rng.uniform(-0.04, 0.04)), 3))
        objects.append(obj)
    offscreen = []
    unseen = [t for t in instruments if t not in {o["instrument"] for o in objects}]
    if unseen and rng.random() < P_OFFSCREEN:
        offscreen.append(_sound(rng, str(rng.choice(unseen)), seconds, silent=False))
    voiceover = bool(rng.random() < P_VOICEOVER)
    return {
        "video_id": video_id,
        "split": split,
        "seconds": seconds,
        "background": str(rng.choice(BACKGROUNDS)),
        "tint": [int(v) for v in rng.integers(-12, 13, size=3)],
        "objects": objects,
        "offscreen": offscreen,
        "voiceover": voiceover,
        "voiceover_sounding": _schedule(rng, seconds, always=rng.random() < 0.4) if voiceover else [0] * seconds,
        "voiceover_db": VOICEOVER_DB,
        "audio_seed": int(rng.integers(2**31)),
    }


# --- facts about sources (a source = a visible object or an offscreen instrument) ------------------------------
def sounds(source: dict) -> bool:
    return any(source["sounding"])


def always(source: dict) -> bool:
    return all(source["sounding"])


def onset(source: dict) -> int:
    """The first sounding second (only for sources that sound)."""
    return source["sounding"].index(1)


def duration(source: dict) -> int:
    return sum(source["sounding"])


def instrument_sources(scene: dict) -> list[dict]:
    """Everything that makes an instrument sound or could: visible objects and offscreen instruments."""
    return scene["objects"] + scene["offscreen"]


def sounding_objects(scene: dict) -> list[dict]:
    return [o for o in scene["objects"] if sounds(o)]


def object_at(scene: dict, position: str) -> dict | None:
    return next((o for o in scene["objects"] if o["position"] == position), None)


def side_of(scene: dict, obj: dict, side: str) -> list[dict]:
    """Objects strictly to the `side` ("left" | "right") of `obj`."""
    index = POSITIONS.index(obj["position"])
    if side == "left":
        return [o for o in scene["objects"] if POSITIONS.index(o["position"]) < index]
    return [o for o in scene["objects"] if POSITIONS.index(o["position"]) > index]
