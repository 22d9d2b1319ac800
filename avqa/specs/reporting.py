"""The pooling and reporting stages' specs: pooled stores, results tables, training curves, attention figures.

`plot-table` has no settings: its command takes the table's name and its CSV / statistics / figure paths.
"""
from __future__ import annotations

from typing import ClassVar, Literal

from avqa.specs import Spec, spec

# The temporal poolings of a pooled store (avqa.features.pooling): the one list, which the pooling command, the
# workflow's {method} wildcard and the schema's enum (tests/test_specs_stages.py) agree with.
POOLINGS = ("avg", "stride", "none")
Pooling = Literal[POOLINGS]  # subscripting with the tuple: Literal["avg", "stride", "none"]


@spec
class PoolSpec(Spec):
    """`python -m avqa pool`: the pooling method, the visual encoder whose stores are pooled, segments after it."""

    stage: ClassVar[str] = "pool"
    method: Pooling
    visual_encoder: str
    T: int


@spec
class TableRow:
    """One trained row of a table: its variant, its label (None: the label its runs record), its run folders."""

    variant: str
    label: str | None
    runs: tuple[str, ...]


@spec
class ResultsTableSpec(Spec):
    """`python -m avqa table`: the rows and what they are compared with: each block's full model (`full`), a
    row's own reference (`compare`: [row, reference] pairs) and Table 1's question-only baseline (or None)."""

    stage: ClassVar[str] = "table"
    rows: tuple[TableRow, ...]
    full: tuple[str, ...]
    compare: tuple[tuple[str, str], ...]
    baseline: str | None


@spec
class CurvesSpec(Spec):
    """`python -m avqa plot-curves`: the table's rows whose training logs are drawn."""

    stage: ClassVar[str] = "plot-curves"
    rows: tuple[TableRow, ...]


@spec
class AttentionSpec(Spec):
    """`python -m avqa plot-attention`: how many test questions of the run are drawn, and the frame decoder
    (features.decode.backend) that shows their frames: each second's exact centre frame, as extraction saw it."""

    stage: ClassVar[str] = "plot-attention"
    questions: int
    frame_backend: Literal["torchcodec", "decord"]
