"""The feature stages' specs: shards (and, beside it, extraction and question text)."""
from __future__ import annotations

from typing import ClassVar

from avqa.specs import Spec, spec


@spec
class ShardsSpec(Spec):
    """`python -m avqa shards`: which videos folder, how many videos per extraction job, how many may be missing."""

    stage: ClassVar[str] = "shards"
    videos_dir: str
    videos_per_shard: int
    max_missing_fraction: float
