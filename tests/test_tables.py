"""Results tables: Table 1's columns, mean/std over seeds, published rows marked, CSV + Markdown."""
from __future__ import annotations

import ast
import math
from pathlib import Path

import pandas as pd
import pytest

from run_fixtures import make_run, rows_of, table_spec_args

from avqa.cli import main
from avqa.reporting.paper_results import paper_rows, published
from avqa.reporting.tables import (PAPER, TABLE1, TABLES, THIS_RUN, MissingCostError, VariantRuns, build_table,
                                   group_runs, to_markdown)
from avqa.specs.reporting import ResultsTableSpec

TABLE1_COLUMNS = ["A_Count", "A_Comp", "A_Avg", "V_Count", "V_Loc", "V_Avg", "AV_Exist", "AV_Loc", "AV_Count",
                  "AV_Comp", "AV_Temp", "AV_Avg", "All_Avg"]


@pytest.fixture()
def runs(tmp_path):
    return {
        "tass": [make_run(tmp_path, "tass", 0, 3), make_run(tmp_path, "tass", 1, 2)],       # 75% and 50%
        "qonly": [make_run(tmp_path, "qonly", 0, 1, label="Question-only")],             # 25%
    }


def test_table1_columns_rows_and_seed_statistics(runs):
    table = build_table(TABLE1, group_runs([str(d) for d in runs["tass"] + runs["qonly"]]), baseline="qonly")
    assert list(table.columns) == ["method", "variant", "source", "block", *TABLE1_COLUMNS, "Params_M", "GFLOPs",
                                   *(f"{c}_std" for c in TABLE1_COLUMNS), "All_low", "All_high",
                                   "versus_vs_baseline", "All_diff_vs_baseline", "All_diff_vs_baseline_low",
                                   "All_diff_vs_baseline_high", "p_holm_vs_baseline",
                                   "versus_vs_full", "All_diff_vs_full", "All_diff_vs_full_low",
                                   "All_diff_vs_full_high", "p_holm_vs_full", "n_seeds", "seeds",
                                   "n_test_questions", "dataset", "weights", "experiment", "reference"]
    tass = table[table["variant"] == "tass"].iloc[0]
    assert tass["method"] == "TASS-Net" and tass["source"] == THIS_RUN and tass["block"] == "clip"
    assert tass["n_seeds"] == 2 and tass["seeds"] == "0 1" and tass["n_test_questions"] == 36
    for column in TABLE1_COLUMNS:
        assert tass[column] == 62.5                              # mean of 75 and 50
        assert tass[f"{column}_std"] == pytest.approx(17.68)     # sample std of (75, 50), rounded to 2 places
    qonly = table[table["variant"] == "qonly"].iloc[0]
    assert qonly["All_Avg"] == 25.0 and qonly["n_seeds"] == 1 and math.isnan(qonly["All_Avg_std"])
    assert (tass["dataset"], tass["weights"], tass["experiment"]) == ("synthetic", "random", "exp")
    # TASS-Net vs. question-only, question by question: per-question means over its seeds 1, 1, 1/2, 0 against
    # 1, 0, 0, 0 in every type: ahead on 18 questions, behind on none.
    assert tass["versus_vs_baseline"] == "qonly" and tass["All_diff_vs_baseline"] == 37.5
    assert tass["p_holm_vs_baseline"] == pytest.approx(2 / 2 ** 18, rel=1e-3)
    assert qonly["versus_vs_baseline"] == "reference" and qonly["versus_vs_full"] == ""
    assert tass["versus_vs_full"] == "" and math.isnan(tass["All_diff_vs_full"])   # no other row of its block
    assert tass["All_low"] < 62.5 < tass["All_high"]
    reported = table[table["source"] == PAPER]                     # one run's interval on json_update's counts
    # every published row its own: TASS-Net's paper heads a ResNet-18 row (73.63) and a CLIP row (74.98)
    assert len(reported) > 10 and reported["All_Avg"].nunique() > 5
    assert ((reported["All_low"] < reported["All_Avg"]) & (reported["All_Avg"] < reported["All_high"])).all()


def test_published_rows_are_marked_and_hold_only_found_cells(runs):
    table = build_table(TABLE1, [VariantRuns("qonly", None, runs["qonly"])])
    paper = table[table["source"] == PAPER]
    published_rows = paper_rows("table1")
    assert len(paper) == len(published_rows) >= 20                # both blocks of TASS Table 1, SaSR, TSPM
    for entry, (_, row) in zip(published_rows, paper.iterrows()):
        assert row["method"] == entry["method"] and row["block"] == entry["block"]
        source = published_source(entry)
        assert source["file"].startswith("shared/papers/") or source.get("repository") or source.get("url")
        assert row["reference"] == f"{source['file']}, {entry['source_table']}"
        for column in TABLE1_COLUMNS:
            expected = entry["values"].get(column)
            assert (math.isnan(row[column]) if expected is None else row[column] == expected), column
    tass_paper = paper[paper["method"].str.startswith("TASS") & (paper["block"] == "clip")].iloc[0]
    assert tass_paper["All_Avg"] == 74.98 and tass_paper["A_Avg"] == 75.92
    assert set(paper["block"]) == {"clip", "resnet18"}
    sasr = paper[paper["method"] == "SaSR-Net(ours)"].iloc[0]
    assert (sasr["GFLOPs"], sasr["All_Avg"], sasr["A_Avg"]) == (2.11, 74.21, 73.56) and math.isnan(sasr["A_Count"])
    tspm = paper[paper["method"] == "TSPM"].iloc[0]
    assert (tspm["All_Avg"], tspm["Params_M"], tspm["GFLOPs"]) == (76.79, 6.22, 1.42)
    assert "_std" not in "".join(table.columns)                  # one seed only: no std columns
    assert build_table(TABLE1, [VariantRuns("qonly", None, runs["qonly"])], with_paper=False)["source"].eq(
        THIS_RUN).all()


def published_source(row: dict) -> dict:
    return published()["sources"][row["source"]]


GROUPS = {"A": ("A_Count", "A_Comp"), "V": ("V_Count", "V_Loc"),
          "AV": ("AV_Exist", "AV_Loc", "AV_Count", "AV_Comp", "AV_Temp")}
COUNT_KEYS = {"A_Count": "A-Count", "A_Comp": "A-Comp", "V_Count": "V-Count", "V_Loc": "V-Loc", "AV_Exist": "AV-Ext",
              "AV_Loc": "AV-Loc", "AV_Count": "AV-Count", "AV_Comp": "AV-Comp", "AV_Temp": "AV-Temp"}


def test_peers_own_result_files_give_every_cell_and_pass_the_arithmetic_check():
    """TSPM's results file and QA-TIGER's project page: all 13 cells, each group average and All within 0.01 of the
    json_update type counts' weighted average (the header's rule), the AV order Count, Loc confirmed by it."""
    counts = {column: published()["test_splits"]["json_update"]["types"][key] for column, key in COUNT_KEYS.items()}
    rows = {row["source"]: row for row in paper_rows("table1") if row["source"] in ("tspm_results", "qa_tiger")}
    assert set(rows) == {"tspm_results", "qa_tiger"}
    assert rows["tspm_results"]["method"] == "TSPM" and rows["qa_tiger"]["method"] == "QA-TIGER"
    assert published_source(rows["qa_tiger"])["test_file"] == "json_update"
    assert published_source(rows["tspm_results"])["test_file"] == "unstated"
    for row in rows.values():
        values = row["values"]
        assert set(values) == set(TABLE1_COLUMNS) and row["block"] == "clip"

        def weighted(columns, v=values):
            return sum(counts[c] * v[c] for c in columns) / sum(counts[c] for c in columns)

        for group, columns in GROUPS.items():
            assert values[f"{group}_Avg"] == pytest.approx(weighted(columns), abs=0.01), (row["method"], group)
        assert values["All_Avg"] == pytest.approx(weighted(list(counts)), abs=0.01), row["method"]
        swapped = dict(values, AV_Loc=values["AV_Count"], AV_Count=values["AV_Loc"])
        assert abs(values["AV_Avg"] - weighted(GROUPS["AV"], swapped)) > 0.2                 # not swapped
    assert (rows["qa_tiger"]["values"]["All_Avg"], rows["tspm_results"]["values"]["AV_Loc"]) == (77.62, 71.85)
    note = rows["tspm_results"]["note"]                                  # the reproduction reports, with threads
    assert "GeWu-Lab/TSPM issue #3" in note and "issue #6" in note and "71.57" in note


def test_markdown_twin(runs):
    table = build_table(TABLE1, group_runs([str(d) for d in runs["tass"] + runs["qonly"]]))
    md = to_markdown(TABLE1, table)
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| Method"))
    assert header.count("|") == len(TABLE1_COLUMNS) + 15      # + Params, GFLOPs, All CI, 2 x (diff, p)
    assert "A Count" in header and "All Avg" in header and "Block" in header
    assert "| TASS-Net | this run | clip | 62.50 ± 17.68 |" in md
    assert "| Question-only | this run | clip | 25.00 |" in md
    assert "74.98" in md and "shared/papers/001_20b6c203a3c35687.txt, Table 1" in md and "–" in md


def test_cli_writes_csv_and_markdown_with_the_specs_rows_and_labels(runs, tmp_path, capsys):
    out = tmp_path / "results/table1.csv"
    spec = table_spec_args([*runs["tass"], runs["qonly"][0]], labels={"qonly": "Q only"}, baseline="qonly")
    assert main(["table", "--table", "table1", *spec, "--out", str(out)]) == 0
    assert "2 trained variants" in capsys.readouterr().out
    csv = pd.read_csv(out)
    assert csv["method"].tolist()[:2] == ["TASS-Net", "Q only"] and csv.loc[0, "All_Avg"] == 62.5
    assert csv["versus_vs_baseline"].tolist()[:2] == ["qonly", "reference"]
    assert out.with_suffix(".md").read_text().startswith("# Table 1")


def test_errors_name_the_problem(runs, tmp_path):
    with pytest.raises(FileNotFoundError, match="no metrics.json"):
        build_table(TABLE1, [VariantRuns("tass", None, [tmp_path / "nowhere"])])
    with pytest.raises(ValueError, match="run of variant 'qonly' listed under 'tass'"):
        build_table(TABLE1, [VariantRuns("tass", None, [runs["qonly"][0]])])
    with pytest.raises(ValueError, match="seed listed twice"):
        build_table(TABLE1, [VariantRuns("tass", None, [runs["tass"][0], runs["tass"][0]])])
    with pytest.raises(ValueError, match="unknown table 'table9'"):
        main(["table", "--table", "table9", *table_spec_args([runs["qonly"][0]]), "--out", str(tmp_path / "t.csv")])
    with pytest.raises(ValueError, match="a variant is listed twice"):
        rows = rows_of([runs["qonly"][0]])
        main(["table", "--table", "table1", "--spec", ResultsTableSpec(rows=rows * 2, full=("tass",), compare=(),
                                                                      baseline=None).to_json(),
              "--out", str(tmp_path / "t.csv")])


# --- ablation tables (2-7): group columns, seed spread against the full model, parameter counts -------------------
ABLATION_COLUMNS = ["A_Avg", "V_Avg", "AV_Avg", "All_Avg"]


@pytest.fixture()
def ablation_runs(tmp_path):
    """full: 75, 75 (std 0); gap: 50, 50 (-25, beyond a zero spread); noisy: 75, 50 (mean 62.5, std 17.68);
    single: one seed at 25."""
    return [make_run(tmp_path, "tass", 0, 3, label="full"), make_run(tmp_path, "tass", 1, 3, label="full"),
            make_run(tmp_path, "gap", 0, 2, label="gap"), make_run(tmp_path, "gap", 1, 2, label="gap"),
            make_run(tmp_path, "noisy", 0, 3, label="noisy"), make_run(tmp_path, "noisy", 1, 2, label="noisy"),
            make_run(tmp_path, "single", 0, 1, label="single")]


def test_every_paper_table_has_a_spec_with_the_papers_columns():
    assert sorted(TABLES) == [f"table{n}" for n in range(1, 9)]      # 1-7 the paper's, 8 ours (the peers' pooling)
    assert [c.name for c in TABLES["table2"].columns] == TABLE1_COLUMNS and TABLES["table2"].compare
    for name in ("table3", "table4", "table5", "table6"):
        assert [c.name for c in TABLES[name].columns] == ABLATION_COLUMNS and TABLES[name].compare
    for name in TABLES:                                          # every published cell has a column to go in
        names = {c.name for c in TABLES[name].columns}
        assert all(set(row["values"]) <= names for row in paper_rows(name)), name
    assert [c.name for c in TABLES["table7"].columns] == ["Params_M", *ABLATION_COLUMNS]
    assert not TABLE1.compare


def test_ablation_mean_std_and_paired_difference_from_the_full_model(ablation_runs):
    """Each row's questions against the full model's: make_run answers the first k of each type's 4 questions, so
    gap (2 of 4) loses exactly question 3 of every type (b = 0, c = 9: exact p = 2 / 2^9)."""
    table = build_table(TABLES["table2"], group_runs([str(d) for d in ablation_runs]), full="tass")
    rows = table[table["source"] == THIS_RUN].set_index("variant")
    assert list(rows.index) == ["tass", "gap", "noisy", "single"]
    assert rows.loc["tass", "All_Avg"] == 75.0 and rows.loc["tass", "All_Avg_std"] == 0.0
    assert rows.loc["tass", "versus"] == "reference" and math.isnan(rows.loc["tass", "All_diff"])
    assert rows.loc["gap", "versus"] == "tass" and rows.loc["gap", "All_diff"] == -25.0
    assert rows.loc["gap", "All_diff_low"] < -25.0 < rows.loc["gap", "All_diff_high"] < 0     # never better
    assert rows.loc["noisy", "All_Avg"] == 62.5 and rows.loc["noisy", "All_Avg_std"] == pytest.approx(17.68)
    assert rows.loc["noisy", "All_diff"] == -12.5                 # per-question mean over its two seeds
    # Holm over the table's three All comparisons: single 2 / 2^18 x 3; gap and noisy 2 / 2^9 x 2 (ties).
    assert rows.loc["gap", "p_holm"] == rows.loc["noisy", "p_holm"] == pytest.approx(4 / 2 ** 9, rel=1e-3)
    assert rows.loc["single", "p_holm"] == pytest.approx(3 * 2 / 2 ** 18, rel=1e-3)
    assert rows.loc["single", "n_seeds"] == 1
    for column in ("All_low", "All_high"):
        assert (rows[column].notna()).all()
    assert rows.loc["tass", "All_low"] < 75.0 < rows.loc["tass", "All_high"]
    for column in ABLATION_COLUMNS:                              # every group average is the overall one here
        assert rows.loc["noisy", column] == 62.5
    md = to_markdown(TABLES["table2"], table)
    assert "| gap | this run | clip | " + "50.00 ± 0.00 | " * 13 in md
    assert "| -25.00 [" in md and "| 0.008 |" in md and "| reference | – |" in md
    assert "Holm" in md and "bootstrap" in md
    stats = table.attrs["stats"]
    gap_audio = stats[(stats["kind"] == "difference") & (stats["variant"] == "gap") & (stats["column"] == "A_Avg")]
    assert gap_audio[["estimate", "b", "c"]].values.tolist() == [[-25.0, 0, 2]]


def test_ablation_tables_set_the_papers_difference_beside_this_runs(tmp_path):
    """Each trained row gets the published difference of the paper row it reproduces; paper rows their own."""
    runs = [make_run(tmp_path, "tass", 0, 3), make_run(tmp_path, "tass_no_ls", 0, 2, label="w/o L_s"),
            make_run(tmp_path, "tass_tau003", 0, 2, label="tau = 0.03")]
    table2 = build_table(TABLES["table2"], group_runs([str(d) for d in runs[:2]]), full="tass")
    ours = table2[table2["source"] == THIS_RUN].set_index("variant")
    assert ours.loc["tass_no_ls", "All_diff"] == -25.0
    assert ours.loc["tass_no_ls", "paper_All_diff"] == -2.58          # 72.40 - 74.98, the prose's "2.58% decline"
    assert ours.loc["tass", "paper_All_diff"] == 0.0
    paper = table2[table2["source"] == PAPER].set_index("method")
    assert paper.loc["w/o L_s", "All_Avg"] == 72.40 and paper.loc["w/o L_s", "All_diff"] == -2.58
    assert paper.loc["TASS(Ours)", "All_diff"] == 0.0 and paper.loc["w/o T-A", "AV_Temp"] == 69.34
    table5 = build_table(TABLES["table5"], group_runs([str(runs[0]), str(runs[2])]), full="tass")
    ours5 = table5[table5["source"] == THIS_RUN].set_index("variant")
    assert ours5.loc["tass_tau003", "paper_All_diff"] == -0.68          # tau = 0.030 -> 74.30 vs 74.98
    table3 = build_table(TABLES["table3"], group_runs([str(runs[0])]), full="tass")
    paper3 = table3[table3["source"] == PAPER]
    assert paper3.groupby("block")["All_diff"].apply(list).to_dict() == {"clip": [-0.89, 0.0],
                                                                          "resnet18": [-0.58, 0.0]}


def test_comparison_without_a_full_model_row_compares_nothing(ablation_runs):
    table = build_table(TABLES["table3"], group_runs([str(d) for d in ablation_runs[2:4]]), full="tass")
    ours = table[table["source"] == THIS_RUN]
    assert (ours["versus"] == "").all() and ours["All_diff"].isna().all()
    assert "| reference |" not in to_markdown(TABLES["table3"], table)


def test_table7_shows_the_trainable_parameters_each_run_recorded(tmp_path):
    single = {"params": 8_918_700, "gflops": 1.5, "shapes": {}}
    dual = {"params": 10_494_124, "gflops": 2.0, "shapes": {}}
    runs = [make_run(tmp_path, "tass", s, 3, cost=single) for s in (0, 1)] + \
           [make_run(tmp_path, "tass_dual_no_cms", s, 2, cost=dual) for s in (0, 1)]
    table = build_table(TABLES["table7"], group_runs([str(d) for d in runs]), full="tass")
    paper = table[table["source"] == PAPER]
    assert paper["Params_M"].tolist() == [12.5, 12.5, 10.9, 10.9] and paper["All_Avg"].tolist()[-1] == 74.98
    table = table[table["source"] == THIS_RUN].set_index("variant")
    assert table.loc["tass", "Params_M"] == 8.92 and table.loc["tass_dual_no_cms", "Params_M"] == 10.49
    assert "Params_M_std" not in table.columns                   # one count per model, not a seed statistic
    assert "Params (M)" in to_markdown(TABLES["table7"], table.reset_index())


def test_a_parameter_count_that_differs_between_seeds_is_an_error(tmp_path):
    runs = [make_run(tmp_path, "tass", 0, 3, cost={"params": 8_918_700, "gflops": 1.5, "shapes": {}}),
            make_run(tmp_path, "tass", 1, 3, cost={"params": 10_494_124, "gflops": 1.5, "shapes": {}})]
    with pytest.raises(ValueError, match="its runs disagree on Params_M"):
        build_table(TABLES["table7"], group_runs([str(d) for d in runs]))


def test_cli_full_and_labels_for_an_ablation_table(ablation_runs, tmp_path, capsys):
    out = tmp_path / "results/table4.csv"
    args = ["table", "--table", "table4", *table_spec_args(ablation_runs[2:6], labels={"noisy": "add (ours)"},
                                                            full=("noisy",)), "--out", str(out)]
    assert main(args) == 0
    csv = pd.read_csv(out, keep_default_na=False)
    csv = csv[csv["source"] == THIS_RUN]
    assert csv["method"].tolist() == ["gap", "add (ours)"]
    assert csv["versus"].tolist() == ["noisy", "reference"] and float(csv["All_diff"].tolist()[0]) == -12.5
    stats = pd.read_csv(out.with_name("table4_stats.csv"))
    assert set(stats["kind"]) == {"cell", "difference", "published"}
    assert out.with_suffix(".md").read_text().startswith("# Table 4")


def test_table1_reads_each_runs_cost_from_its_metrics_and_builds_no_model(tmp_path):
    cost = {"params": 10_494_124, "gflops": 2.1446, "shapes": {"T": 10, "map": [7, 7, 2048], "tokens": None}}
    runs = [make_run(tmp_path / "runs", "tass", 0, 3, cost=cost)]
    table = build_table(TABLE1, group_runs([str(d) for d in runs]), with_paper=False).set_index("variant")
    assert table.loc["tass", "Params_M"] == 10.49 and table.loc["tass", "GFLOPs"] == 2.14
    old = make_run(tmp_path / "old", "tass", 0, 3, cost=None)       # a metrics.json written before costs were
    with pytest.raises(MissingCostError, match=f"{old}/metrics.json records no cost .* rerun the run's train job"):
        build_table(TABLE1, group_runs([str(old)]), with_paper=False)


def test_the_tables_read_results_only():
    """A table builds no model and opens no feature store: avqa.reporting.tables imports none of them."""
    tree = ast.parse((Path(__file__).resolve().parents[1] / "avqa/reporting/tables.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    heavy = {m for m in imported if m.split(".")[0] == "torch" or m.startswith(("avqa.models", "avqa.training",
                                                                                   "avqa.store", "avqa.features"))}
    assert heavy <= {"avqa.features.layout"}, heavy                  # the encoder blocks: names, no stores
