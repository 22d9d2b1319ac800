"""The answer to each of the 33 MUSIC-AVQA templates, computed from a scene (see scene.py).

`answer(scene, template, values)` returns a word of the 42-answer vocabulary, or None when the question is
ill-posed or ambiguous for that scene (values that do not match the scene, ties, ...): such questions are never
asked. Conventions (following the real annotation files):
- Audio questions are about everything heard: visible objects and offscreen instruments.
- Visual and audio-visual questions are about the visible objects; "sounding" = sounds at some second.
- Order in time is by onset (the first sounding second): "first"/"last" = earliest/latest onset,
  "<TH> instrument that comes in" = the TH-th onset; "before"/"after" X = the nearest onset before/after X's.
- "louder" compares loudness_db; "lowest" = lowest pitch; "more rhythmic" = rhythmic vs sustained;
  "playing longer" needs at least one block (2 s) of difference.
- "did not sound from beginning to end" = visible objects that never sound;
  "Is this sound from the instrument in the video?" = no iff an offscreen instrument sounds;
  "Which <Object> makes the sound <FL>?" (two or more visible <Object>s) answers a position or "simultaneously".
"""
from __future__ import annotations

from collections import Counter
from typing import Callable

from avqa.data.synthetic.scene import (BLOCK_SECONDS, always, duration, instrument_sources, object_at, onset, side_of,
                                  sounding_objects, sounds)
from avqa.vocab import NUMBERS, TEMPLATES

ORDINALS = ("first", "second", "third", "fourth", "fifth")
SIDES = ("left", "right")
Answer = Callable[[dict, list[str]], "str | None"]


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _number(n: int) -> str:
    return NUMBERS[n] if n <= 10 else "more than ten"


def _visible(scene: dict, instrument: str) -> list[dict]:
    return [o for o in scene["objects"] if o["instrument"] == instrument]


def _heard(scene: dict, instrument: str) -> list[dict]:
    return [s for s in instrument_sources(scene) if s["instrument"] == instrument and sounds(s)]


def _one(items: list[dict]) -> dict | None:
    return items[0] if len(items) == 1 else None


def _unique_extreme(items: list[dict], key, largest: bool) -> dict | None:
    """The item with the largest (smallest) key if no other item shares that key."""
    if not items:
        return None
    best = (max if largest else min)(key(i) for i in items)
    return _one([i for i in items if key(i) == best])


def _by_onset(scene: dict, first_or_last: str) -> dict | None:
    playing = sounding_objects(scene)
    if len(playing) < 2 or first_or_last not in ("first", "last"):
        return None
    return _unique_extreme(playing, onset, largest=first_or_last == "last")


def _compare(a: dict | None, b: dict | None, attribute: str) -> str | None:
    """yes/no for "a more <attribute> than b" between two sounding sources; None on a tie."""
    if a is None or b is None or a is b or not (sounds(a) and sounds(b)):
        return None
    if attribute == "louder":
        diff = a["loudness_db"] - b["loudness_db"]
    elif attribute == "rhythmic":
        diff = (a["rhythm"] == "rhythmic") - (b["rhythm"] == "rhythmic")
    else:  # longer: at least one whole block apart
        diff = duration(a) - duration(b)
        diff = 0 if abs(diff) < BLOCK_SECONDS else diff
    return None if diff == 0 else _yes_no(diff > 0)


# --- Audio ------------------------------------------------------------------------------------------------------
def heard_count(scene, values):
    return _number(sum(sounds(s) for s in instrument_sources(scene)))


def is_there_sound(scene, values):
    return _yes_no(bool(_heard(scene, values[0])))


def both_sound(scene, values):
    x, y = values
    return None if x == y else _yes_no(bool(_heard(scene, x)) and bool(_heard(scene, y)))


def audio_compare(attribute: str) -> Answer:
    def answer(scene, values):
        x, y = values
        return None if x == y else _compare(_one(_heard(scene, x)), _one(_heard(scene, y)), attribute)
    return answer


# --- Visual -----------------------------------------------------------------------------------------------------
def is_there_visible(scene, values):
    return _yes_no(bool(_visible(scene, values[0])))


def both_visible(scene, values):
    x, y = values
    return None if x == y else _yes_no(bool(_visible(scene, x)) and bool(_visible(scene, y)))


def count_visible(scene, values):
    return _number(len(_visible(scene, values[0])))


def count_visible_types(scene, values):
    return _number(len({o["instrument"] for o in scene["objects"]}))


def performance_place(scene, values):
    return scene["background"]


def the_only_kind(scene, values):
    kinds = {o["instrument"] for o in scene["objects"]}
    return kinds.pop() if len(kinds) == 1 else None


def extreme_side_kind(scene, values):
    objects = scene["objects"]  # left to right
    if len(objects) < 2 or values[0] not in ("leftest", "rightest"):
        return None
    return objects[0 if values[0] == "leftest" else -1]["instrument"]


def kind_beside(scene, values):
    side, x = values
    anchor = _one(_visible(scene, x))
    if anchor is None or side not in SIDES:
        return None
    neighbour = _one(side_of(scene, anchor, side))
    return None if neighbour is None else neighbour["instrument"]


# --- Audio-Visual: existential, counting ------------------------------------------------------------------------
def voiceover(scene, values):
    return _yes_no(any(scene["voiceover_sounding"]))


def sound_from_visible(scene, values):
    if not any(sounds(s) for s in instrument_sources(scene)):
        return None
    return _yes_no(not any(sounds(s) for s in scene["offscreen"]))


def always_playing(scene, values):
    flags = {always(o) for o in _visible(scene, values[0])}
    return _yes_no(flags.pop()) if len(flags) == 1 else None


def count_sounding(scene, values):
    return _number(len(sounding_objects(scene)))


def count_never_sounding(scene, values):
    return _number(sum(not sounds(o) for o in scene["objects"]))


def count_sounding_types(scene, values):
    return _number(len({o["instrument"] for o in sounding_objects(scene)}))


def count_sounding_of(scene, values):
    visible = _visible(scene, values[0])
    return _number(sum(sounds(o) for o in visible)) if visible else None


# --- Audio-Visual: location, comparative ------------------------------------------------------------------------
def where_extreme(scene, values):
    playing = sounding_objects(scene)
    if len(playing) < 2 or values[0] not in ("loudest", "lowest"):
        return None
    if values[0] == "loudest":
        chosen = _unique_extreme(playing, lambda o: o["loudness_db"], largest=True)
    else:
        chosen = _unique_extreme(playing, lambda o: o["pitch_hz"], largest=False)
    return None if chosen is None else chosen["position"]


def sound_from_position(scene, values):
    first_or_last, position = values
    chosen = _by_onset(scene, first_or_last)
    if chosen is None or object_at(scene, position) is None:
        return None
    return _yes_no(chosen["position"] == position)


def kind_beside_timed(scene, values):
    side, first_or_last = values
    anchor = _by_onset(scene, first_or_last)
    if anchor is None or side not in SIDES:
        return None
    neighbour = _one(side_of(scene, anchor, side))
    return None if neighbour is None else neighbour["instrument"]


def same_time_as(scene, values):
    """The other sounding type that overlaps <Object> most in time, by at least a block more than any other."""
    x = values[0]
    anchor = _one([o for o in sounding_objects(scene) if o["instrument"] == x])
    if anchor is None:
        return None
    overlaps = sorted(((sum(a and b for a, b in zip(anchor["sounding"], o["sounding"])), o["instrument"])
                       for o in sounding_objects(scene) if o["instrument"] != x), reverse=True)
    if not overlaps or overlaps[0][0] == 0:
        return None
    if len(overlaps) > 1 and overlaps[0][0] - overlaps[1][0] < BLOCK_SECONDS:
        return None
    return overlaps[0][1]


def positioned_compare(attribute: str, named: bool) -> Answer:
    """"Is the [<Object> on the] <LR> ... than the [<Object> on the] <LR>?"."""
    def answer(scene, values):
        if named:
            x, p, y, q = values
        else:
            p, q = values
        a, b = object_at(scene, p), object_at(scene, q)
        if a is None or b is None or p == q:
            return None
        if named and (a["instrument"] != x or b["instrument"] != y):
            return None
        return _compare(a, b, attribute)
    return answer


# --- Audio-Visual: temporal -------------------------------------------------------------------------------------
def nth_to_come_in(scene, values):
    if values[0] not in ORDINALS:
        return None
    rank = ORDINALS.index(values[0])
    playing = sorted(sounding_objects(scene), key=onset)
    if rank >= len(playing):
        return None
    onsets = Counter(onset(o) for o in playing)
    if any(onsets[onset(o)] > 1 for o in playing[:rank + 1]):
        return None  # a tie at or before this rank makes the rank ambiguous
    return playing[rank]["instrument"]


def which_of_kind_first(scene, values):
    x, first_or_last = values
    visible = _visible(scene, x)
    playing = [o for o in visible if sounds(o)]
    if len(visible) < 2 or not playing or first_or_last not in ("first", "last"):
        return None
    target = (min if first_or_last == "first" else max)(onset(o) for o in playing)
    chosen = [o for o in playing if onset(o) == target]
    return chosen[0]["position"] if len(chosen) == 1 else "simultaneously"


def before_after(scene, values):
    before_or_after, x = values
    anchor = _one([o for o in sounding_objects(scene) if o["instrument"] == x])
    if anchor is None or before_or_after not in ("before", "after"):
        return None
    if before_or_after == "before":
        others = [o for o in sounding_objects(scene) if onset(o) < onset(anchor)]
    else:
        others = [o for o in sounding_objects(scene) if onset(o) > onset(anchor)]
    chosen = _unique_extreme(others, onset, largest=before_or_after == "before")
    return None if chosen is None else chosen["instrument"]


def where_first_last(scene, values):
    chosen = _by_onset(scene, values[0])
    return None if chosen is None else chosen["position"]


ANSWERERS: dict[str, Answer] = dict(zip(
    [t for group in TEMPLATES.values() for t in group],
    [
        heard_count, is_there_sound, both_sound,
        audio_compare("louder"), audio_compare("rhythmic"), audio_compare("longer"),
        is_there_visible, both_visible, count_visible, count_visible_types,
        performance_place, the_only_kind, extreme_side_kind, kind_beside,
        voiceover, sound_from_visible, always_playing,
        where_extreme, sound_from_position, kind_beside_timed, same_time_as,
        count_sounding, count_never_sounding, count_sounding_types, count_sounding_of,
        positioned_compare("louder", True), positioned_compare("rhythmic", True),
        positioned_compare("louder", False), positioned_compare("rhythmic", False),
        nth_to_come_in, which_of_kind_first, before_after, where_first_last,
    ],
    strict=True,
))


def answer(scene: dict, template: str, values: list[str]) -> str | None:
    """The answer word for a question on a scene, or None if that question is ill-posed or ambiguous there."""
    if template not in ANSWERERS:
        raise ValueError(f"not a MUSIC-AVQA template: {template!r}")
    return ANSWERERS[template](scene, list(values))
