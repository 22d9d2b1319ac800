"""Figures for the report: a per-type / per-group accuracy chart per table and the training curves of its runs.

`python -m avqa plot-table --table table2 --csv results/table2.csv [--stats results/table2_stats.csv]
 --out results/plots/table2_accuracy.png`
  one panel per question-type group (Audio, Visual, Audio-Visual, All; a grid with a shared y axis), in each a
  group of bars per accuracy column of the table (Table 1: the types and the group's average; tables 3-8: the
  average), one bar per trained row (mean over seeds; error bar: the cell's 95% interval from the statistics,
  else the sample std over seeds), the published cells as star markers. Drawn from the table's CSV, so the chart
  always shows what the table says.
`python -m avqa plot-curves --table table2 --spec JSON --out FILE.png` (or `--config config.yaml`)
  the runs' train_log.csv (epoch, lr, loss, loss_qa, loss_cms, loss_match, train_accuracy, val_accuracy,
  seconds): total loss, the loss terms, train and validation accuracy per epoch; one colour per variant, one
  line per seed. Columns a model does not log (the question-only model has no L_cms) are left out.

matplotlib with the Agg backend (no display needed on cluster nodes); PNG or SVG by the output's suffix; every
figure is written atomically.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from avqa.atomic import atomic_path  # noqa: E402
from avqa.reporting.tables import (PAPER, TABLES, THIS_RUN, TableSpec, VariantRuns,  # noqa: E402
                                   groups_from_rows, load_run)
from avqa.specs import add_spec_arguments, spec_from_args  # noqa: E402
from avqa.specs.reporting import CurvesSpec  # noqa: E402

logger = logging.getLogger(__name__)

FORMATS = ("png", "svg")
DPI = 120                                             # pixels per inch of a saved PNG
LOSS_TERMS = (("loss_qa", "-", "L_qa"), ("loss_cms", "--", "L_cms"), ("loss_match", ":", "L_s"))


def save_figure(fig: Figure, path: str | Path, dpi: int = DPI) -> Path:
    """Write `fig` atomically as PNG or SVG (chosen by the suffix of `path`)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(f"{path}: figures are written as {' or '.join(FORMATS)}, not {fmt!r}")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
    return path


def colours(n: int) -> list:
    """n distinguishable colours (tab10, then tab20 for larger tables)."""
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# --- accuracy chart -------------------------------------------------------------------------------------------
def read_table(path: str | Path, spec: TableSpec) -> pd.DataFrame:
    """A table CSV written by avqa.reporting.tables, checked against `spec` (a clear error if it is another table's)."""
    table = pd.read_csv(path)
    missing = [c.name for c in spec.columns if c.name not in table.columns] + \
              [c for c in ("method", "source") if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: not a {spec.name} CSV (missing columns {missing})")
    return table


def cell_intervals(stats: pd.DataFrame | None) -> dict[tuple[str, str], tuple[float, float]]:
    """{(variant, column): (low, high)} of the trained rows' cells in a table's long statistics (_stats.csv)."""
    if stats is None:
        return {}
    cells = stats[stats["kind"] == "cell"]
    return {(v, c): (lo, hi) for v, c, lo, hi in cells[["variant", "column", "low", "high"]].itertuples(index=False)}


# The chart's panels: one per question-type group, named by the prefix of the table's column names.
PANELS = (("A", "Audio"), ("V", "Visual"), ("AV", "Audio-Visual"), ("All", "All"))
PANELS_PER_ROW = 2


def panel_columns(spec: TableSpec) -> list[tuple[str, list]]:
    """[(group name, its accuracy columns)] in the order Audio, Visual, Audio-Visual, All; empty groups left out
    (the parameter and GFLOP columns are not accuracies)."""
    accuracies = [c for c in spec.columns if c.per_seed]
    panels = [(name, [c for c in accuracies if c.name.split("_")[0] == prefix]) for prefix, name in PANELS]
    stray = [c.name for c in accuracies if c.name.split("_")[0] not in dict(PANELS)]
    if stray:
        raise ValueError(f"{spec.name}: columns {stray} belong to no question-type group")
    return [(name, columns) for name, columns in panels if columns]


def accuracy_chart(spec: TableSpec, table: pd.DataFrame, stats: pd.DataFrame | None = None) -> Figure:
    """Grouped bars, one panel per question-type group (a grid with a shared y axis, PANELS_PER_ROW panels a row,
    each as wide as its columns need): accuracy columns x trained rows, published cells as stars. Error bars:
    each cell's 95% question-bootstrap interval when the table's statistics are given, else the seeds' std."""
    intervals = cell_intervals(stats)
    ours = table[table["source"] == THIS_RUN]
    panels = panel_columns(spec)
    rows = [panels[i:i + PANELS_PER_ROW] for i in range(0, len(panels), PANELS_PER_ROW)]
    widest = max(sum(len(columns) for _, columns in row) for row in rows)
    fig = Figure(figsize=(min(15.0, max(7.0, 0.16 * widest * max(len(ours), 1) + 2.5)), 3.0 * len(rows) + 0.8))
    outer = fig.add_gridspec(len(rows), 1, hspace=0.45)
    axes = []
    for r, row in enumerate(rows):
        inner = outer[r].subgridspec(1, len(row), width_ratios=[len(columns) for _, columns in row], wspace=0.12)
        for k, (name, columns) in enumerate(row):
            ax = fig.add_subplot(inner[k], sharey=axes[0] if axes else None)
            _draw_panel(ax, columns, ours, table[table["source"] == PAPER], intervals)
            ax.set_title(name, fontsize=9)
            if k:
                ax.tick_params(labelleft=False)
            else:
                ax.set_ylabel("test accuracy (%)")
            axes.append(ax)
    axes[0].set_ylim(0, 100)
    fig.suptitle(spec.title, fontsize=10)
    entries = {}                                  # one legend for all panels: each row once, the published stars
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    handles, labels = list(entries.values()), list(entries)
    note = "bars: mean over seeds; error bars: " + ("95% question-bootstrap interval" if intervals
                                                    else "sample std over seeds")
    fig.legend(handles, labels, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 0.04), frameon=False,
               ncol=min(4, max(len(labels), 1)), title=note, title_fontsize=7)
    return fig


def _draw_panel(ax, columns: list, ours: pd.DataFrame, published: pd.DataFrame,
                intervals: dict[tuple[str, str], tuple[float, float]]) -> None:
    """One group's bars (one per trained row and column) with their error bars, and the published cells."""
    x = np.arange(len(columns))
    width = 0.8 / max(len(ours), 1)
    for i, ((_, row), colour) in enumerate(zip(ours.iterrows(), colours(len(ours)))):
        means = np.array([row[c.name] for c in columns], dtype=float)
        if intervals:
            ends = np.array([intervals.get((row["variant"], c.name), (np.nan, np.nan)) for c in columns], dtype=float)
            errors = np.nan_to_num(np.abs(ends - means[:, None]).T)       # (2, columns): below, above
        else:
            stds = np.array([row.get(f"{c.name}_std", np.nan) for c in columns], dtype=float)
            errors = np.where(np.isfinite(stds), stds, 0)
        ax.bar(x - 0.4 + width * (i + 0.5), np.nan_to_num(means), width, color=colour, yerr=errors, capsize=2,
               label=_row_label(row))
    labelled = False                                             # one legend entry for all published cells
    for _, row in published.iterrows():
        values = np.array([row[c.name] for c in columns], dtype=float)
        shown = np.isfinite(values)
        if shown.any():
            ax.scatter(x[shown], values[shown], marker="*", s=40, color="black", alpha=0.5, zorder=3,
                       label=None if labelled else "published rows (paper)")
            labelled = True
    ax.set_xticks(x, [c.header for c in columns], fontsize=8)
    ax.set_xlim(-0.5, len(columns) - 0.5)
    ax.grid(axis="y", alpha=0.3)


def _row_label(row: pd.Series) -> str:
    n = row.get("n_seeds")
    return f"{row['method']} (n={int(n)})" if n is not None and not pd.isna(n) else str(row["method"])


# --- training curves ------------------------------------------------------------------------------------------
def read_log(run_dir: str | Path) -> pd.DataFrame:
    path = Path(run_dir) / "train_log.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no training log (the run has not trained)")
    log = pd.read_csv(path)
    missing = [c for c in ("epoch", "loss", "train_accuracy", "val_accuracy") if c not in log.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    return log


def run_label(group: VariantRuns, run_dir: Path) -> str:
    """The row label of a variant's runs: --label, else the label its metrics.json records, else the variant."""
    if group.label:
        return group.label
    record = load_run(run_dir)
    return record["run_config"].get("label") or record["metrics"].get("label") or group.variant


def curves_figure(groups: list[VariantRuns], title: str) -> Figure:
    """2 x 2 panels per epoch: total loss, loss terms, train accuracy, validation accuracy."""
    fig = Figure(figsize=(11, 7))
    axes = fig.subplots(2, 2, sharex=True)
    (loss_ax, terms_ax), (train_ax, val_ax) = axes
    for group, colour in zip(groups, colours(len(groups))):
        label = run_label(group, group.runs[0])
        for k, run in enumerate(group.runs):
            log = read_log(run)
            alpha = 1.0 if k == 0 else 0.55
            name = label if k == 0 else None
            loss_ax.plot(log["epoch"], log["loss"], color=colour, alpha=alpha, label=name)
            for column, style, _ in LOSS_TERMS:
                if column in log.columns:
                    terms_ax.plot(log["epoch"], log[column], style, color=colour, alpha=alpha)
            train_ax.plot(log["epoch"], log["train_accuracy"], color=colour, alpha=alpha)
            val_ax.plot(log["epoch"], log["val_accuracy"], color=colour, alpha=alpha)
    for column, style, name in LOSS_TERMS:
        terms_ax.plot([], [], style, color="grey", label=name)
    for ax, what in ((loss_ax, "loss (total)"), (terms_ax, "loss terms"), (train_ax, "train accuracy (%)"),
                     (val_ax, "validation accuracy (%)")):
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
    for ax in (train_ax, val_ax):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    loss_ax.legend(fontsize=7, frameon=False)
    terms_ax.legend(fontsize=7, frameon=False)
    fig.suptitle(f"{title} (one line per seed; the first seed drawn solid)", fontsize=10)
    return fig


# --- CLI ------------------------------------------------------------------------------------------------------
def _spec(name: str) -> TableSpec:
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; known: {sorted(TABLES)}")
    return TABLES[name]


def _cli_table(args: argparse.Namespace) -> None:
    spec = _spec(args.table)
    stats = pd.read_csv(args.stats) if args.stats else None
    out = save_figure(accuracy_chart(spec, read_table(args.csv, spec), stats), args.out)
    print(f"{out}: accuracy chart of {args.csv}")


def _cli_curves(args: argparse.Namespace) -> None:
    from avqa.workflow import curves_spec

    spec = spec_from_args(args, CurvesSpec, lambda config: curves_spec(config, args.table))
    groups = groups_from_rows(spec.rows)
    out = save_figure(curves_figure(groups, f"Training curves of the {args.table} runs"), args.out)
    print(f"{out}: training curves of {sum(len(g.runs) for g in groups)} runs")


def register(subparsers) -> None:
    table = subparsers.add_parser("plot-table", help="accuracy bar chart of a results table (PNG/SVG)",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    table.add_argument("--table", required=True, help=f"which table: {', '.join(TABLES)}")
    table.add_argument("--csv", required=True, help="the table's CSV (results/tableN.csv)")
    table.add_argument("--stats", help="the table's long statistics (results/tableN_stats.csv): interval error bars")
    table.add_argument("--out", required=True, help="figure path (.png or .svg)")
    table.set_defaults(func=_cli_table)
    curves = subparsers.add_parser("plot-curves", help="training curves of runs from their train_log.csv",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    curves.add_argument("--table", required=True, help="the table whose runs are drawn (the figure's title)")
    add_spec_arguments(curves, "the table's rows: variants, labels, the runs of its seeds")
    curves.add_argument("--out", required=True, help="figure path (.png or .svg)")
    curves.set_defaults(func=_cli_curves)
