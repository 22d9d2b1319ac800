"""The paper's results tables from many runs: one row per variant (mean over seeds) + the published rows.

`python -m avqa table --table table1 --spec JSON --out results/table1.csv` (or `--config config.yaml` instead of
`--spec`): the spec (avqa.specs.reporting.ResultsTableSpec) lists the rows, each a variant, its label (null: the
run config's `label`) and its seeds' run directories, and names each block's full model the ablation rows are
compared with, the `compare` pairs and Table 1's question-only baseline. A Markdown twin is written beside the
CSV (results/table1.md).

A table is a TableSpec: a name, a title and columns; a Column maps one run's record (metrics.json +
run_config.json) to a number. Table 1 (MUSIC-AVQA test accuracy, %, micro averages): A_Count, A_Comp, A_Avg,
V_Count, V_Loc, V_Avg, AV_Exist, AV_Loc, AV_Count, AV_Comp, AV_Temp, AV_Avg, All_Avg. Tables 2-7 (the paper's
ablations, sec. 4.3) have the paper's columns: table 2 every type, tables 3-7 the group averages A_Avg, V_Avg,
AV_Avg and All_Avg; table 7 adds Params_M, the
trainable parameters in millions of the run's model (frozen encoders not counted). Params_M and Table 1's GFLOPs
are what each run recorded in its metrics.json (`cost`, measured when it finished): the tables build no model.

Rows: source "this run" for trained variants — mean over seeds, with `{column}_std` twins (sample std, ddof=1)
when any variant has more than one seed — and "paper (reported)" for the published numbers kept as data in
avqa/reporting/published_results.yaml (cells not published are empty; `reference` names the source file and
its table). `block` is the encoder block (clip: VGGish + CLIP; resnet18: VGGish + ResNet-18), as the paper's
Table 1 groups its rows. Provenance columns: variant, n_seeds, seeds, n_test_questions, dataset, weights,
experiment, reference.

Uncertainty (avqa.reporting.stats, avqa.reporting.table_stats), from every run's predictions.csv: `All_low` /
`All_high`, the 95% question-bootstrap interval of All (of one run with that accuracy, Wilson, on a published row);
comparisons question by question, with the paired-bootstrap interval of the difference in All and the exact sign
(McNemar) test, Holm-corrected within the table: ablation tables (and table 8) compare every row with its block's
full model (the spec's `full`) or with the row its `compare` pair names (`All_diff`, `All_diff_low`,
`All_diff_high`, `p_holm`); Table 1 compares every row with the question-only model (`baseline`; columns
`..._vs_baseline`) and with its block's full model (`..._vs_full`). Every cell's interval and every comparison per
group is in the long file `{table}_stats.csv` beside the table. The seeds' sample standard deviation stays beside
each mean (`{column}_std`). Beside the ablation comparisons, `paper_All_diff`: the paper's difference to its full
model for the published row this variant reproduces (the row's `variant` in the data file); on the published
rows themselves All_diff is the paper's.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from avqa.features.layout import BLOCK
from avqa.reporting.paper_results import paper_diff, paper_rows, source_label
from avqa.atomic import write_text_atomic
from avqa.specs import add_spec_arguments, spec_from_args
from avqa.specs.reporting import ResultsTableSpec
from avqa.errors import UserError

logger = logging.getLogger(__name__)

THIS_RUN = "this run"
PAPER = "paper (reported)"
PROVENANCE = ("n_seeds", "seeds", "n_test_questions", "dataset", "weights", "experiment", "reference")
COMPARED = "All_Avg"                                  # the column the wide table's comparisons show
INTERVAL_COLUMNS = ("All_low", "All_high")
ABLATION_ROLES = ("",)                                # ablation tables: every row vs. its reference (full model)
TABLE1_ROLES = ("_vs_baseline", "_vs_full")           # Table 1: every row vs. question-only and vs. the full model

N_RESAMPLES = 10_000                                  # bootstrap resamples (avqa.reporting.stats)


@dataclass(frozen=True)
class Column:
    name: str                                     # CSV column, e.g. "A_Count"
    header: str                                   # Markdown header, e.g. "A Count"
    get: Callable[[dict], float | None]           # run record {"metrics", "run_config", "dir"} -> value
    per_seed: bool = True                         # False: one value for all seeds (a parameter count), no std


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    columns: tuple[Column, ...]
    decimals: int = 2
    compare: bool = False                         # an ablation table: every row vs. its full model
    versus: str = "full"                          # what the rows are compared with, for the Markdown header


def _accuracy(cell: dict | None) -> float | None:
    return None if cell is None or cell.get("accuracy") is None else float(cell["accuracy"])


def type_accuracy(type_key: str) -> Callable[[dict], float | None]:
    return lambda record: _accuracy(record["metrics"]["types"].get(type_key))


def group_accuracy(group: str) -> Callable[[dict], float | None]:
    return lambda record: _accuracy(record["metrics"]["groups"].get(group))


def overall_accuracy(record: dict) -> float | None:
    return _accuracy(record["metrics"]["overall"])


class MissingCostError(UserError, ValueError):
    """A run's metrics.json without the model's cost: written before training recorded it."""


def _cost(record: dict) -> dict:
    """The model cost the run recorded in its metrics.json when it finished (avqa.training.evaluate.run_cost)."""
    cost = record["metrics"].get("cost")
    if cost is None:
        raise MissingCostError(f"{record['dir']}/metrics.json records no cost (params, gflops): it was written by "
                               f"an older avqa; rerun the run's train job (it resumes from its last checkpoint, "
                               f"re-evaluates and records the cost) or `python -m avqa evaluate --run "
                               f"{record['dir']} --force`")
    return cost


def trainable_millions(record: dict) -> float:
    """Trainable parameters (M) of the run's model, as its metrics.json records them."""
    return _cost(record)["params"] / 1e6


def gflops(record: dict) -> float:
    """Forward GFLOPs per question of the run's model at its input shapes, as its metrics.json records them."""
    return _cost(record)["gflops"]


PARAMS = Column("Params_M", "Params (M)", trainable_millions, per_seed=False)
GFLOPS = Column("GFLOPs", "GFLOPs", gflops, per_seed=False)
TYPE_COLUMNS = (
    Column("A_Count", "A Count", type_accuracy("A-Count")),
    Column("A_Comp", "A Comp", type_accuracy("A-Comp")),
    Column("A_Avg", "A Avg", group_accuracy("Audio")),
    Column("V_Count", "V Count", type_accuracy("V-Count")),
    Column("V_Loc", "V Loc", type_accuracy("V-Loc")),
    Column("V_Avg", "V Avg", group_accuracy("Visual")),
    Column("AV_Exist", "AV Exist", type_accuracy("AV-Ext")),
    Column("AV_Loc", "AV Loc", type_accuracy("AV-Loc")),
    Column("AV_Count", "AV Count", type_accuracy("AV-Count")),
    Column("AV_Comp", "AV Comp", type_accuracy("AV-Comp")),
    Column("AV_Temp", "AV Temp", type_accuracy("AV-Temp")),
    Column("AV_Avg", "AV Avg", group_accuracy("Audio-Visual")),
    Column("All_Avg", "All Avg", overall_accuracy),
)
TABLE1 = TableSpec(
    name="table1",
    title="Table 1: MUSIC-AVQA-format test accuracy (%) per question type (micro averages), and each model's cost",
    columns=TYPE_COLUMNS + (PARAMS, GFLOPS),
)


GROUP_COLUMNS = (
    Column("A_Avg", "A Avg", group_accuracy("Audio")),
    Column("V_Avg", "V Avg", group_accuracy("Visual")),
    Column("AV_Avg", "AV Avg", group_accuracy("Audio-Visual")),
    Column("All_Avg", "All", overall_accuracy),
)
def block_of(run_config: dict) -> str:
    """The encoder block a run belongs to (its visual features; CLIP-RN50 maps unless the spec names others)."""
    return BLOCK[run_config.get("visual_encoder", "clip_rn50")]


def ablation(name: str, title: str, extra: tuple[Column, ...] = (),
             columns: tuple[Column, ...] = GROUP_COLUMNS) -> TableSpec:
    """An ablation table (paper sec. 4.3): its columns (the group averages and All, or as the paper prints it
    every type), each row compared with the full model."""
    return TableSpec(name, f"{title} (test accuracy %, micro averages)", extra + columns, compare=True)


TABLES: dict[str, TableSpec] = {spec.name: spec for spec in (
    TABLE1,
    ablation("table2", "Table 2: ablation of TASS-Net's modules and losses", columns=TYPE_COLUMNS),
    ablation("table3", "Table 3: the preprocessing (strided T1 -> T sampling vs. average pooling)"),
    ablation("table4", "Table 4: how TSG+ combines the audio and target attention"),
    ablation("table5", "Table 5: the TSG+ threshold tau"),
    ablation("table6", "Table 6: the order of the audio and visual tokens in the single stream"),
    ablation("table7", "Table 7: single-stream vs. dual-stream JTG, with and without L_cms", extra=(PARAMS,)),
    # Ours, in Table 3's form: what TASS-Net's preprocessing does for the peers (no published rows).
    TableSpec("table8", "Table 8: each peer on its paper's temporal input vs. average pooling (test accuracy %, "
              "micro averages)", GROUP_COLUMNS, compare=True, versus="its paper's input"),
)}


# --- runs ---------------------------------------------------------------------------------------------------
@dataclass
class VariantRuns:
    variant: str
    label: str | None
    runs: list[Path]


def load_run(run_dir: str | Path) -> dict:
    """A finished run's record: metrics.json (required) and run_config.json (if present)."""
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.exists():
        raise FileNotFoundError(f"{run_dir}: no metrics.json (the run has not finished)")
    metrics = json.loads(metrics_path.read_text())
    for key in ("overall", "groups", "types"):
        if key not in metrics:
            raise ValueError(f"{metrics_path}: no '{key}' entry")
    config_path = run_dir / "run_config.json"
    run_config = json.loads(config_path.read_text()) if config_path.exists() else {}
    return {"metrics": metrics, "run_config": run_config, "dir": run_dir}


def _variant_of(record: dict) -> str:
    variant = record["run_config"].get("variant", record["metrics"].get("variant"))
    if not variant:
        raise ValueError(f"{record['dir']}: neither run_config.json nor metrics.json names the variant")
    return variant


def group_runs(run_dirs: list[str]) -> list[VariantRuns]:
    """Run directories grouped by their recorded variant, in order of first appearance."""
    groups: dict[str, VariantRuns] = {}
    for run_dir in run_dirs:
        variant = _variant_of(load_run(run_dir))
        groups.setdefault(variant, VariantRuns(variant, None, [])).runs.append(Path(run_dir))
    return list(groups.values())


def _format_weights(weights) -> str:
    if isinstance(weights, dict):
        return ";".join(f"{k}={v}" for k, v in sorted(weights.items()))
    return "" if weights is None else str(weights)


def _one(values: list, what: str, variant: str):
    distinct = sorted({json.dumps(v, sort_keys=True) for v in values})
    if len(distinct) > 1:
        raise ValueError(f"variant {variant!r}: its runs disagree on {what}: {distinct}")
    return values[0] if values else None


def variant_row(spec: TableSpec, group: VariantRuns) -> dict:
    """Mean (and sample std) over the variant's seeds of every column, plus provenance."""
    records = [load_run(d) for d in group.runs]
    for record in records:
        if _variant_of(record) != group.variant:
            raise ValueError(f"{record['dir']}: run of variant {_variant_of(record)!r} listed under "
                             f"{group.variant!r}")
    seeds = [int(r["metrics"].get("seed", r["run_config"].get("seed", -1))) for r in records]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"variant {group.variant!r}: seed listed twice in {[str(d) for d in group.runs]}")
    config = records[0]["run_config"]
    label = group.label or config.get("label") or records[0]["metrics"].get("label") or group.variant
    row = {"method": label, "variant": group.variant, "source": THIS_RUN,
           "block": _one([block_of(r["run_config"]) for r in records], "block", group.variant)}
    for column in spec.columns:
        values = [column.get(r) for r in records]
        if not column.per_seed:
            value = _one(values, column.name, group.variant)
            row[column.name], row[f"{column.name}_std"] = (math.nan if value is None else value), math.nan
            continue
        values = np.array([np.nan if v is None else v for v in values], dtype=float)
        row[column.name] = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
        row[f"{column.name}_std"] = float(np.nanstd(values, ddof=1)) if np.isfinite(values).sum() > 1 else math.nan
    row.update({
        "n_seeds": len(records),
        "seeds": " ".join(map(str, sorted(seeds))),
        "n_test_questions": _one([r["metrics"].get("n_questions") for r in records], "n_test_questions",
                                 group.variant),
        "dataset": _one([r["run_config"].get("dataset", r["metrics"].get("dataset")) for r in records],
                        "dataset", group.variant),
        "weights": _format_weights(_one([r["run_config"].get("weights", r["metrics"].get("weights"))
                                         for r in records], "weights", group.variant)),
        "experiment": _one([r["run_config"].get("experiment", r["metrics"].get("experiment")) for r in records],
                           "experiment", group.variant),
        "reference": "",
    })
    return row


def paper_row(spec: TableSpec, published: dict) -> dict:
    names = {c.name for c in spec.columns}
    unknown = set(published["values"]) - names
    if unknown:
        raise ValueError(f"paper row {published['method']!r} of {spec.name} names unknown columns {sorted(unknown)}")
    row = {"method": published["method"], "variant": "", "source": PAPER, "block": published.get("block", "clip"),
           "paper_variant": published.get("variant", "")}
    values = dict(published["values"])
    values.update({column: published[key] for key, column in (("params_M", "Params_M"), ("gflops", "GFLOPs"))
                   if key in published})
    for column in spec.columns:
        row[column.name] = float(values.get(column.name, math.nan))
        row[f"{column.name}_std"] = math.nan
    row.update({"n_seeds": math.nan, "seeds": "", "n_test_questions": math.nan, "dataset": "MUSIC-AVQA",
                "weights": "pretrained", "experiment": "", "reference": source_label(published),
                })
    if spec.compare:
        diff = paper_diff(spec.name, published)
        row["All_diff"] = math.nan if diff is None else diff
    return row


def comparison_pairs(rows: list[dict], spec: TableSpec, full: str | list[str] | None,
                     pairs: dict[str, str] | None = None, baseline: str | None = None) -> list[tuple[str, str, str]]:
    """(variant, reference variant, column suffix) of every comparison the table shows.

    Ablation tables: each trained row vs. the row `pairs` names for it, else its block's full model (`full`: one
    variant, or one per encoder block); a reference row is not compared. Table 1: each row vs. `baseline` (the
    question-only model) and vs. its block's full model."""
    fulls = [full] if isinstance(full, str) or full is None else list(full)
    pairs = dict(pairs or {})
    trained = {r["variant"]: r for r in rows if r["source"] == THIS_RUN}
    unknown = sorted({v for pair in pairs.items() for v in pair} - set(trained))
    if unknown:
        raise ValueError(f"compare names variants without runs: {unknown}")
    block_full = {r["block"]: r["variant"] for r in trained.values() if r["variant"] in fulls}
    references = set(pairs.values()) | set(block_full.values())
    found = []
    for row in trained.values():
        variant = row["variant"]
        if spec.compare:
            reference = pairs.get(variant) or (None if variant in references else block_full.get(row["block"]))
            if reference:
                found.append((variant, reference, ABLATION_ROLES[0]))
            continue
        if baseline in trained and variant != baseline:
            found.append((variant, baseline, "_vs_baseline"))
        reference = block_full.get(row["block"])
        if reference and variant not in (reference, baseline):
            found.append((variant, reference, "_vs_full"))
    return found


def row_records(groups: list[VariantRuns]) -> dict[str, list[dict]]:
    return {g.variant: [load_run(d) for d in g.runs] for g in groups}


def statistics(spec: TableSpec, rows: list[dict], groups: list[VariantRuns], comparisons: list[tuple[str, str, str]],
               n_resamples: int = N_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """The long statistics frame of a table (avqa.reporting.table_stats): every cell's interval, every
    comparison, and each published cell's single-run interval."""
    from avqa.reporting import table_stats
    from avqa.reporting.paper_results import published

    columns = [c.name for c in spec.columns if c.name in table_stats.COLUMN_CELLS]
    by_variant = {r["variant"]: r for r in rows if r["source"] == THIS_RUN}
    records = row_records(groups)
    predictions = [table_stats.row_predictions(by_variant[g.variant]["method"], g.variant,
                                               by_variant[g.variant]["block"], records[g.variant]) for g in groups]
    frame = table_stats.compute(predictions, columns, [(v, r) for v, r, _ in comparisons], n_resamples, seed)
    data = published()
    paper = [dict(r, **{"test_file": data["sources"].get(_source_key(r["reference"]), {}).get("test_file", "unstated")})
             for r in rows if r["source"] == PAPER]
    counts = data["test_splits"]["json_update"]["types"]
    return pd.concat([frame, table_stats.published_lines(paper, columns, counts)], ignore_index=True)


def _source_key(reference: str) -> str | None:
    """'shared/papers/001_....txt, Table 5' -> the data file's source key ('tass')."""
    from avqa.reporting.paper_results import published

    for key, source in published()["sources"].items():
        if reference.startswith(source.get("file", "\0")):
            return key
    return None


def add_statistics(table_rows: list[dict], stats: pd.DataFrame, comparisons: list[tuple[str, str, str]]) -> None:
    """The wide table's share of the statistics: All's interval on every row, and each comparison in All."""
    cells = stats[(stats["column"] == COMPARED) & stats["kind"].isin(["cell", "published"])]
    # a published row is known by its source too: one method name may head rows of two blocks or two papers
    intervals = {(k, m, v, b, r if k == "published" else ""): (lo, hi) for k, m, v, b, r, lo, hi in
                 cells[["kind", "method", "variant", "block", "reference", "low", "high"]].itertuples(index=False)}
    diffs = stats[(stats["kind"] == "difference") & (stats["column"] == COMPARED)].set_index(["variant", "reference"])
    suffix_of = {(v, r): s for v, r, s in comparisons}
    references = {(r, s) for _, r, s in comparisons}
    for row in table_rows:
        for suffix in {s for _, _, s in comparisons}:
            row[f"versus{suffix}"] = ("reference" if (row["variant"], suffix) in references and
                                      row["source"] == THIS_RUN else "")
        kind = "cell" if row["source"] == THIS_RUN else "published"
        low, high = intervals.get((kind, row["method"], row["variant"] if kind == "cell" else
                                   row.get("paper_variant", ""), row["block"],
                                   row.get("reference", "") if kind == "published" else ""), (math.nan, math.nan))
        row["All_low"], row["All_high"] = low, high
        for (variant, reference), suffix in suffix_of.items():
            if row["source"] != THIS_RUN or variant != row["variant"]:
                continue
            line = diffs.loc[(variant, reference)]
            row[f"versus{suffix}"] = reference
            row[f"All_diff{suffix}"] = line["estimate"]
            row[f"All_diff{suffix}_low"], row[f"All_diff{suffix}_high"] = line["low"], line["high"]
            row[f"p_holm{suffix}"] = line["p_holm"]


def comparison_columns(roles: tuple[str, ...]) -> list[str]:
    """Per comparison role: the reference variant (`versus`: "reference" on the reference row itself), the
    difference in All with its interval, the Holm-corrected p-value."""
    return [c for s in roles for c in (f"versus{s}", f"All_diff{s}", f"All_diff{s}_low", f"All_diff{s}_high",
                                       f"p_holm{s}")]


def paper_differences(rows: list[dict]) -> None:
    """Ablation tables: `paper_All_diff` on each trained row, the published difference of the paper row it
    reproduces (same variant and block); a published row's All_diff is the paper's own."""
    published = {(r["paper_variant"], r["block"]): r.get("All_diff", math.nan) for r in rows if r["source"] == PAPER}
    for row in rows:
        row["paper_All_diff"] = (published.get((row["variant"], row["block"]), math.nan)
                                 if row["source"] == THIS_RUN else math.nan)
        if row["source"] == THIS_RUN:
            row.setdefault("All_diff", math.nan)


def build_table(spec: TableSpec, groups: list[VariantRuns], with_paper: bool = True,
                full: str | list[str] | None = "tass", pairs: dict[str, str] | None = None,
                baseline: str | None = None, n_resamples: int = N_RESAMPLES) -> pd.DataFrame:
    """The wide table; its long statistics frame is `table.attrs["stats"]`."""
    rows = [variant_row(spec, g) for g in groups]
    if with_paper:
        rows += [paper_row(spec, p) for p in paper_rows(spec.name)]
    comparisons = comparison_pairs(rows, spec, full, pairs, baseline)
    stats = statistics(spec, rows, groups, comparisons, n_resamples)
    add_statistics(rows, stats, comparisons)
    roles = ABLATION_ROLES if spec.compare else TABLE1_ROLES
    if spec.compare:
        paper_differences(rows)
    table = pd.DataFrame(rows)
    compared = comparison_columns(roles) + (["paper_All_diff"] if spec.compare else [])
    for column in compared:
        if column not in table.columns:
            table[column] = "" if column.startswith("versus") else math.nan
        elif column.startswith("versus"):
            table[column] = table[column].fillna("")
    values = [c.name for c in spec.columns]
    multi_seed = bool((table.loc[table["source"] == THIS_RUN, "n_seeds"] > 1).any())
    stds = [f"{c.name}_std" for c in spec.columns if c.per_seed] if multi_seed else []
    table = table[["method", "variant", "source", "block", *values, *stds, *INTERVAL_COLUMNS, *compared,
                   *PROVENANCE]]
    numeric = values + stds + list(INTERVAL_COLUMNS) + [c for c in compared if c.startswith(("All", "paper"))]
    table[numeric] = table[numeric].astype(float).round(spec.decimals)
    for column in (c for c in compared if c.startswith("p_holm")):
        table[column] = table[column].astype(float).map(lambda p: float(f"{p:.4g}") if pd.notna(p) else p)
    table["n_seeds"] = table["n_seeds"].astype("Int64")
    table["n_test_questions"] = table["n_test_questions"].astype("Int64")
    table.attrs["stats"] = stats
    return table


# --- output -------------------------------------------------------------------------------------------------
def _cell(mean, std, decimals: int) -> str:
    if mean is None or pd.isna(mean):
        return "–"
    text = f"{mean:.{decimals}f}"
    return text + (f" ± {std:.{decimals}f}" if std is not None and not pd.isna(std) else "")


def _signed(value, decimals: int) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:+.{decimals}f}"


def _interval(low, high, decimals: int, signed: bool = False) -> str:
    if low is None or pd.isna(low):
        return "–"
    form = f"{{:{'+' if signed else ''}.{decimals}f}}"
    return f"[{form.format(low)}, {form.format(high)}]"


def _p(value) -> str:
    return "–" if value is None or pd.isna(value) else ("< 0.001" if value < 0.001 else f"{value:.3f}")


ROLE_HEADERS = {"": None, "_vs_baseline": "question-only", "_vs_full": "the full model"}


def _roles(spec: TableSpec, table: pd.DataFrame) -> list[str]:
    return [s for s in (ABLATION_ROLES if spec.compare else TABLE1_ROLES) if f"All_diff{s}" in table.columns]


def to_markdown(spec: TableSpec, table: pd.DataFrame) -> str:
    roles = _roles(spec, table)
    compared = []
    for suffix in roles:
        versus = ROLE_HEADERS[suffix] or spec.versus
        compared += [f"Δ All vs {versus} [95% CI]", "p (Holm)"]
    if spec.compare:
        compared.append("Δ All (paper)")
    headers = ["Method", "Source", "Block", *(c.header for c in spec.columns), "All 95% CI", *compared, "Seeds",
               "Test questions", "Dataset", "Weights"]
    lines = [f"# {spec.title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    d = spec.decimals
    for _, row in table.iterrows():
        source = str(row["source"]) if row["source"] != PAPER else f"{PAPER}: {_short(row['reference'])}"
        cells = [str(row["method"]), source, str(row["block"])]
        cells += [_cell(row[c.name], row.get(f"{c.name}_std"), d) for c in spec.columns]
        cells.append(_interval(row["All_low"], row["All_high"], d))
        for suffix in roles:
            diff = row[f"All_diff{suffix}"]
            if row["source"] == THIS_RUN and pd.isna(row[f"All_diff{suffix}_low"]):
                cells += ["reference" if row[f"versus{suffix}"] == "reference" else "–", "–"]
            else:
                cells += [f"{_signed(diff, d)} {_interval(row[f'All_diff{suffix}_low'], row[f'All_diff{suffix}_high'], d, True)}"
                          .replace(" –", ""), _p(row[f"p_holm{suffix}"])]
        if spec.compare:
            cells.append(_signed(row["paper_All_diff"], d))
        cells += ["–" if pd.isna(row["n_seeds"]) else f"{row['n_seeds']} ({row['seeds']})",
                  "–" if pd.isna(row["n_test_questions"]) else str(row["n_test_questions"]),
                  str(row["dataset"]), str(row["weights"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Values are accuracies in percent, micro averages (correct / count) over the test questions."]
    if any(str(name).endswith("_std") for name in table.columns):
        lines.append("`mean ± std` over seeds (sample standard deviation); every cell of a row averages the same "
                     "seeds (Seeds column: their number and the seeds).")
    lines.append(f"All 95% CI: the question bootstrap ({N_RESAMPLES:,} resamples of the test questions, stratified "
                 "by type; with several seeds, of each question's mean correctness over the seeds); on a published "
                 "row, the interval one run with that accuracy would have on the split's test questions (Wilson). "
                 "Every cell's interval is in the table's `_stats.csv`.")
    if roles:
        lines.append("Δ All: the row's All minus the reference row's, on the same test questions, with its "
                     "paired-bootstrap 95% interval; p (Holm): the exact two-sided sign test on the questions the "
                     "two rows answer differently (McNemar's exact test with one seed), Holm-corrected over the "
                     "table's comparisons (per column; the group averages' tests are in the `_stats.csv`).")
    if spec.compare:
        lines.append("Δ All (paper): the published difference to the paper's full model of the row this variant "
                     "reproduces; on a paper row, Δ All is the paper's own.")
    if any(c.name == "Params_M" for c in spec.columns):
        lines.append("Params (M): trainable parameters in millions of the run's model (frozen CLIP / VGGish "
                     "encoders not counted).")
    if any(c.name == "GFLOPs" for c in spec.columns):
        lines.append("GFLOPs: one forward pass per question of the run's model at its input shapes "
                     "(torch.utils.flop_counter.FlopCounterMode, 2 FLOPs per multiply-add, LSTMs added; frozen "
                     "encoders not counted). Published GFLOPs are as the papers report them; their counting "
                     "rules are not stated.")
    references = table.loc[table["source"] == PAPER, ["method", "reference"]]
    if len(references):
        lines += ["", "Published rows (only cells read in the cited source; – = not published or not trusted, "
                  "see avqa/reporting/published_results.yaml):"]
        lines += [f"- {m}: {r}" for m, r in references.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _short(reference: str) -> str:
    """'shared/papers/001_....txt, Table 5' -> 'TASS-Net paper, Table 5' (the data file's short source names)."""
    from avqa.reporting.paper_results import published

    for source in published()["sources"].values():
        if reference.startswith(source["file"]):
            return source["short"] + reference[len(source["file"]):]
    return reference


def stats_path(out_csv: str | Path) -> Path:
    """results/table1.csv -> results/table1_stats.csv"""
    out_csv = Path(out_csv)
    return out_csv.with_name(f"{out_csv.stem}_stats.csv")


def write_table(spec: TableSpec, table: pd.DataFrame, out_csv: str | Path) -> Path:
    """CSV at `out_csv`, its Markdown twin (.md) and its long statistics (`_stats.csv`), each atomic. Returns the
    Markdown path."""
    out_csv = Path(out_csv)
    write_text_atomic(out_csv, table.to_csv(index=False))
    if "stats" in table.attrs:
        write_text_atomic(stats_path(out_csv), table.attrs["stats"].to_csv(index=False, float_format="%.6g"))
    md = out_csv.with_suffix(".md")
    write_text_atomic(md, to_markdown(spec, table))
    return md


# --- CLI ----------------------------------------------------------------------------------------------------
def groups_from_rows(rows) -> list[VariantRuns]:
    """A spec's rows (avqa.specs.reporting.TableRow) as VariantRuns (variant_row checks what each run records)."""
    seen = [row.variant for row in rows]
    if not seen:
        raise ValueError("table spec: no rows")
    if len(set(seen)) != len(seen):
        raise ValueError(f"table spec: a variant is listed twice: {seen}")
    return [VariantRuns(row.variant, row.label, [Path(d) for d in row.runs]) for row in rows]


def _cli(args: argparse.Namespace) -> None:
    from avqa.workflow import table_spec

    if args.table not in TABLES:
        raise ValueError(f"unknown table {args.table!r}; known: {sorted(TABLES)}")
    spec = TABLES[args.table]
    settings = spec_from_args(args, ResultsTableSpec, lambda config: table_spec(config, args.table))
    table = build_table(spec, groups_from_rows(settings.rows), full=list(settings.full),
                        pairs=dict(settings.compare), baseline=settings.baseline)
    md = write_table(spec, table, args.out)
    print(f"{args.out} (+ {md}): {int((table['source'] == THIS_RUN).sum())} trained variants, "
          f"{int((table['source'] == PAPER).sum())} published rows")


def register(subparsers) -> None:
    parser = subparsers.add_parser("table", help="a results table (CSV + Markdown) from finished runs",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", required=True, help=f"which table: {', '.join(TABLES)}")
    add_spec_arguments(parser, "the table's rows (variants, labels, runs of its seeds), full models, comparisons")
    parser.add_argument("--out", required=True, help="CSV path; the Markdown twin gets the .md suffix and the long "
                                                     "statistics the _stats.csv one")
    parser.set_defaults(func=_cli)
