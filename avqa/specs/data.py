"""The data stages' specs: the synthetic dataset, stand-in clips, the annotation tables.

`words` (the train split's question-word vocabulary) and `instruments` (per-video labels from the synthetic scenes
or the annotation parquet) have no settings: their commands take only their input and output paths.
"""
from __future__ import annotations

from typing import ClassVar

from avqa.specs import Spec, spec


@spec
class SplitVideos:
    """Videos per split of the synthetic dataset."""

    train: int
    val: int
    test: int


@spec
class SynthesizeSpec(Spec):
    """`python -m avqa synthesize`: how many videos and questions, clip length, picture and sound, the seed."""

    stage: ClassVar[str] = "synthesize"
    videos: SplitVideos
    seconds: int
    questions_per_video: int
    instruments: int            # instrument types drawn from (2-22)
    width: int
    height: int
    video_fps: int
    audio_rate: int
    seed: int


@spec
class StandinsSpec(Spec):
    """`python -m avqa standins`: the stand-in clips' length, size and rate, and how many distinct base clips."""

    stage: ClassVar[str] = "standins"
    seconds: int
    width: int
    height: int
    video_fps: int
    bases: int


@spec
class AnnotationsSpec(Spec):
    """`python -m avqa annotations`: the MUSIC-AVQA release the JSON follows, and whether question_ids repeated
    with different answers are dropped."""

    stage: ClassVar[str] = "annotations"
    release: str
    drop_conflicting_duplicates: bool
