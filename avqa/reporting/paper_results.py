"""Published MUSIC-AVQA test accuracies, shown as rows marked "paper (reported)" beside this pipeline's runs.

The numbers are data, in published_results.yaml beside this module: every cell of the TASS-Net paper's Tables
1-7 (both encoder blocks of Table 1), the SaSR-Net paper's Table 1 and TSPM's headline row, each row with its
source file and table number. A number is there only if it was read in the cited source (the plain-text copies
in shared/papers/); cells the PDF extraction garbled or that contradict their own row are left out and listed
under `untrusted` with the raw text and the reason, never guessed. See the YAML's header for the checks made.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml

DATA = "published_results.yaml"


@lru_cache(maxsize=1)
def published() -> dict:
    """The whole data file: {sources, tables, untrusted}."""
    return yaml.safe_load(resources.files("avqa.reporting").joinpath(DATA).read_text())


def source_label(row: dict) -> str:
    """Where a published row comes from: 'shared/papers/001_....txt, Table 5'."""
    return f"{published()['sources'][row['source']]['file']}, {row['source_table']}"


def paper_rows(table: str) -> list[dict]:
    """The published rows of `table` (a fresh copy each call; empty if the table has none)."""
    return [dict(row, values=dict(row["values"])) for row in published()["tables"].get(table, [])]


def paper_full_row(table: str, block: str | None = None) -> dict | None:
    """The paper's full model of an ablation table (of `block` where the table has one per encoder block)."""
    fulls = [r for r in paper_rows(table) if r.get("full") and (block is None or r.get("block", block) == block)]
    return fulls[0] if fulls else None


def paper_diff(table: str, row: dict, column: str = "All_Avg") -> float | None:
    """The paper's difference of a published row to its table's full model (same block), None if not given."""
    full = paper_full_row(table, row.get("block"))
    if full is None or column not in row["values"] or column not in full["values"]:
        return None
    return round(row["values"][column] - full["values"][column], 2)
