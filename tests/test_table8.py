"""Table 8: each peer on its paper's temporal input vs. average pooling. No published rows; each pooled row is
compared with its own peer's row (--compare), not with TASS-Net; the CLI writes it and its accuracy chart."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from run_fixtures import make_run, table_spec_args

from avqa.cli import main
from avqa.reporting.tables import PAPER, TABLES, THIS_RUN, build_table, group_runs, to_markdown


@pytest.fixture()
def runs(tmp_path):
    # every type right 3, 2 (avst: 62.5%), 4, 3 (avst_avg: 87.5%), 2, 2 (sasr: 50%), 1, 1 (sasr_avg: 25%) of 4
    return [make_run(tmp_path, "avst", 0, 3, label="AVST", pooling="stride"),
            make_run(tmp_path, "avst", 1, 2, label="AVST", pooling="stride"),
            make_run(tmp_path, "avst_avg", 0, 4, label="AVST w/ average pooling", pooling="avg"),
            make_run(tmp_path, "avst_avg", 1, 3, label="AVST w/ average pooling", pooling="avg"),
            make_run(tmp_path, "sasr", 0, 2, label="SaSR-Net", pooling="stride"),
            make_run(tmp_path, "sasr", 1, 2, label="SaSR-Net", pooling="stride"),
            make_run(tmp_path, "sasr_avg", 0, 1, label="SaSR-Net w/ average pooling", pooling="avg"),
            make_run(tmp_path, "sasr_avg", 1, 1, label="SaSR-Net w/ average pooling", pooling="avg")]


def test_each_pooled_row_is_compared_with_its_own_peer(runs):
    table = build_table(TABLES["table8"], group_runs([str(r) for r in runs]), full=["tass"],
                        pairs={"avst_avg": "avst", "sasr_avg": "sasr"})
    assert (table["source"] == THIS_RUN).all() and not (table["source"] == PAPER).any()    # nothing published
    rows = table.set_index("variant")
    assert rows.loc["avst", "All_Avg"] == 62.5 and rows.loc["avst_avg", "All_Avg"] == 87.5
    assert rows.loc["avst_avg", "All_diff"] == 25.0 and rows.loc["sasr_avg", "All_diff"] == -25.0
    assert rows.loc["avst", "versus"] == rows.loc["sasr", "versus"] == "reference"
    assert rows.loc["avst_avg", "versus"] == "avst" and rows.loc["sasr_avg", "versus"] == "sasr"
    # question by question: avst_avg is ahead on 18 questions, never behind; sasr_avg behind on 9, never ahead
    assert rows.loc["avst_avg", "p_holm"] < 0.001 and rows.loc["sasr_avg", "p_holm"] < 0.01
    assert math.isnan(rows.loc["avst", "All_diff"])
    md = to_markdown(TABLES["table8"], table)
    assert "Δ All vs its paper's input" in md and "| AVST w/ average pooling | this run | clip |" in md
    assert "Published rows" not in md


def test_compare_naming_a_variant_without_runs_is_an_error(runs):
    with pytest.raises(ValueError, match=r"compare names variants without runs: \['tspm'\]"):
        build_table(TABLES["table8"], group_runs([str(r) for r in runs]), pairs={"tspm": "avst"})


def test_table8_cli_writes_the_table_and_its_chart(runs, tmp_path):
    out = tmp_path / "table8.csv"
    spec = table_spec_args(runs, labels={"avst": "AVST, its paper's input"}, full=("tass",),
                           compare={"avst_avg": "avst", "sasr_avg": "sasr"})
    assert main(["table", "--table", "table8", *spec, "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert table["method"].tolist()[0] == "AVST, its paper's input" and len(table) == 4
    assert table["All_diff"].tolist()[1] == 25.0
    chart = tmp_path / "table8_accuracy.png"
    main(["plot-table", "--table", "table8", "--csv", str(out), "--out", str(chart)])
    assert chart.stat().st_size > 1000
