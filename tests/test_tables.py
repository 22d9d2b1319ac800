"""Results tables: Table 1's columns, mean/std over seeds, published rows marked, CSV + Markdown."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from avqa.cli import main
from avqa.evaluate import evaluate_predictions
from avqa.paper_results import PAPER_RESULTS
from avqa.tables import PAPER, TABLE1, THIS_RUN, VariantRuns, build_table, group_runs, to_markdown
from avqa.vocab import QUESTION_TYPES

TABLE1_COLUMNS = ["A_Count", "A_Comp", "A_Avg", "V_Count", "V_Loc", "V_Avg", "AV_Exist", "AV_Loc", "AV_Count",
                  "AV_Comp", "AV_Temp", "AV_Avg", "All_Avg"]


def _run(root, variant, seed, correct_per_type: int, label="TASS-Net", n=4):
    """A finished run: each of the 9 types has n questions, `correct_per_type` of them right."""
    rows = []
    for group, _, key in QUESTION_TYPES:
        for i in range(n):
            rows.append({"question_id": len(rows), "video_id": "v", "type_key": key, "group": group,
                         "answer_idx": 1, "pred_idx": 1 if i < correct_per_type else 2})
    metrics = evaluate_predictions(pd.DataFrame(rows))
    metrics.update({"variant": variant, "seed": seed, "experiment": "exp", "n_skipped_missing_video": 0})
    run = root / variant / f"seed{seed}"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "run_config.json").write_text(json.dumps({
        "variant": variant, "label": label, "seed": seed, "experiment": "exp", "dataset": "synthetic",
        "weights": "random"}))
    return run


@pytest.fixture()
def runs(tmp_path):
    return {
        "tass": [_run(tmp_path, "tass", 0, 3), _run(tmp_path, "tass", 1, 2)],       # 75% and 50%
        "qonly": [_run(tmp_path, "qonly", 0, 1, label="Question-only")],             # 25%
    }


def test_table1_columns_rows_and_seed_statistics(runs):
    table = build_table(TABLE1, group_runs([str(d) for d in runs["tass"] + runs["qonly"]]))
    assert list(table.columns) == ["method", "variant", "source", *TABLE1_COLUMNS,
                                   *(f"{c}_std" for c in TABLE1_COLUMNS), "n_seeds", "seeds",
                                   "n_test_questions", "dataset", "weights", "experiment", "reference"]
    tass = table[table["variant"] == "tass"].iloc[0]
    assert tass["method"] == "TASS-Net" and tass["source"] == THIS_RUN
    assert tass["n_seeds"] == 2 and tass["seeds"] == "0 1" and tass["n_test_questions"] == 36
    for column in TABLE1_COLUMNS:
        assert tass[column] == 62.5                              # mean of 75 and 50
        assert tass[f"{column}_std"] == pytest.approx(17.68)     # sample std of (75, 50), rounded to 2 places
    qonly = table[table["variant"] == "qonly"].iloc[0]
    assert qonly["All_Avg"] == 25.0 and qonly["n_seeds"] == 1 and math.isnan(qonly["All_Avg_std"])
    assert (tass["dataset"], tass["weights"], tass["experiment"]) == ("synthetic", "random", "exp")


def test_published_rows_are_marked_and_hold_only_found_cells(runs):
    table = build_table(TABLE1, [VariantRuns("qonly", None, runs["qonly"])])
    paper = table[table["source"] == PAPER]
    assert len(paper) == len(PAPER_RESULTS["table1"]) >= 1
    for published, (_, row) in zip(PAPER_RESULTS["table1"], paper.iterrows()):
        assert row["method"] == published["method"] and row["reference"].startswith("https://")
        for column in TABLE1_COLUMNS:
            expected = published["values"].get(column)
            assert (math.isnan(row[column]) if expected is None else row[column] == expected), column
    tass_paper = paper[paper["method"].str.startswith("TASS-Net")].iloc[0]
    assert tass_paper["All_Avg"] == 74.98
    assert "_std" not in "".join(table.columns)                  # one seed only: no std columns
    assert build_table(TABLE1, [VariantRuns("qonly", None, runs["qonly"])], with_paper=False)["source"].eq(
        THIS_RUN).all()


def test_markdown_twin(runs):
    table = build_table(TABLE1, group_runs([str(d) for d in runs["tass"] + runs["qonly"]]))
    md = to_markdown(TABLE1, table)
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| Method"))
    assert header.count("|") == len(TABLE1_COLUMNS) + 7
    assert "A Count" in header and "All Avg" in header
    assert "| TASS-Net | this run | 62.50 ± 17.68 |" in md
    assert "| Question-only | this run | 25.00 |" in md
    assert "74.98" in md and "sciencestack.ai/paper/2405.07451" in md and "–" in md


def test_cli_writes_csv_and_markdown_with_labels_and_explicit_groups(runs, tmp_path, capsys):
    out = tmp_path / "results/table1.csv"
    tass_dirs = ",".join(str(d) for d in runs["tass"])
    assert main(["table", "--table", "table1", "--run", f"tass={tass_dirs}", "--runs", str(runs["qonly"][0]),
                 "--label", "qonly=Q only", "--out", str(out)]) == 0
    assert "2 trained variants" in capsys.readouterr().out
    csv = pd.read_csv(out)
    assert csv["method"].tolist()[:2] == ["TASS-Net", "Q only"] and csv.loc[0, "All_Avg"] == 62.5
    assert out.with_suffix(".md").read_text().startswith("# Table 1")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps([{"variant": "qonly", "label": "Q", "runs": [str(runs["qonly"][0])]}]))
    assert main(["table", "--table", "table1", "--spec", str(spec), "--no-paper", "--out", str(out)]) == 0
    assert pd.read_csv(out)["method"].tolist() == ["Q"]


def test_errors_name_the_problem(runs, tmp_path):
    with pytest.raises(FileNotFoundError, match="no metrics.json"):
        build_table(TABLE1, [VariantRuns("tass", None, [tmp_path / "nowhere"])])
    with pytest.raises(ValueError, match="run of variant 'qonly' listed under 'tass'"):
        build_table(TABLE1, [VariantRuns("tass", None, [runs["qonly"][0]])])
    with pytest.raises(ValueError, match="seed listed twice"):
        build_table(TABLE1, [VariantRuns("tass", None, [runs["tass"][0], runs["tass"][0]])])
    with pytest.raises(ValueError, match="unknown table 'table9'"):
        main(["table", "--table", "table9", "--runs", str(runs["qonly"][0]), "--out", str(tmp_path / "t.csv")])
