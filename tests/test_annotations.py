"""MUSIC-AVQA annotation parsing: the real files' counts and quirks, and a clear error for every fault."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from avqa.data.annotations import COLUMNS, AnnotationError, fill_template, load_annotations, register
from avqa.data.vocab import ANSWER_TO_IDX, ANSWERS

SHARED = Path(__file__).resolve().parents[1].parent / "shared/data/music_avqa"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="shared MUSIC-AVQA annotations not present")

TEST_COUNTS = {"A-Count": 1017, "A-Comp": 594, "V-Count": 1197, "V-Loc": 1225, "AV-Ext": 988, "AV-Loc": 920,
               "AV-Count": 1265, "AV-Comp": 1101, "AV-Temp": 822}


def record(**overrides) -> dict:
    base = {"video_id": "00000093", "question_id": 1, "type": '["Audio", "Comparative"]',
            "question_content": "Is the <Object> louder than the <Object>?", "templ_values": '["piano", "cello"]',
            "question_deleted": 0, "anser": "yes"}
    base.update(overrides)
    return base


def write(tmp_path: Path, records, name="avqa-test.json") -> Path:
    path = tmp_path / name
    path.write_text(records if isinstance(records, str) else json.dumps(records))
    return path


@pytest.fixture(scope="module")
def real_test() -> pd.DataFrame:
    if not SHARED.exists():
        pytest.skip("shared MUSIC-AVQA annotations not present")
    return load_annotations(SHARED / "avqa-test.json")


@needs_shared
def test_real_test_split_has_the_published_per_type_counts(real_test):
    assert real_test["type_key"].value_counts().to_dict() == TEST_COUNTS
    assert len(real_test) == 9129


@needs_shared
def test_real_val_split_count():
    assert len(load_annotations(SHARED / "avqa-val.json")) == 4568


@needs_shared
def test_real_questions_are_filled_and_normalised(real_test):
    assert list(real_test.columns) == list(COLUMNS)
    assert not real_test["question"].str.contains("<").any()
    assert not real_test["question"].str.contains("？").any()
    assert (real_test["question"] == real_test["question"].str.strip()).all()
    assert real_test["question"].str.endswith("?").all()
    assert real_test["template"].str.contains("？").any()  # the template keeps the file's quirks
    assert real_test["template"].str.endswith(" ").any()
    assert real_test["answer"].isin(ANSWERS).all()
    assert (real_test["answer"].map(ANSWER_TO_IDX) == real_test["answer_idx"]).all()
    assert real_test["question_id"].is_unique
    assert real_test["question_id"].dtype == "int64"


def test_fill_template_in_order_with_quirks():
    assert fill_template("Is the <Object> on the <LR> louder than the <Object> on the <LR>?",
                         ["piano", "left", "cello", "right"]) == "Is the piano on the left louder than the cello on the right?"
    assert fill_template("How many sounding <Object> in the video？", ["violin"]) == "How many sounding violin in the video?"
    assert fill_template("Are there <Object> and <Object> sound? ", ["a", "b"]) == "Are there a and b sound?"
    with pytest.raises(ValueError, match="2 placeholders but templ_values has 1"):
        fill_template("<Object> <Object>", ["a"])


@pytest.mark.parametrize(
    ("records", "needle"),
    [
        ('[{"video_id": "1",', "malformed JSON at line 1"),
        ('{"a": 1}', "expected a JSON list"),
        ([record(question_id=7, anser="banana")], r"record 0 \(question_id 7\): answer 'banana' is not in the 42"),
        ([record(), {k: v for k, v in record(question_id=9).items() if k != "anser"}],
         r"record 1 \(question_id 9\): missing key\(s\) \['anser'\]"),
        ([record(question_id=3, type='["Audio", "Location"]')], "question_id 3.*not one of the 9"),
        ([record(question_id=4, type="[Audio, Counting]")], "question_id 4"),
        ([record(question_id=5, templ_values='["piano"]')], "question_id 5.*2 placeholders but templ_values has 1"),
        ([record(question_id=6, templ_values="__import__('os')")], "question_id 6.*templ_values .* not valid JSON"),
        ([record(question_id=8, type='["Audio"]')], "question_id 8.*not one of the 9"),
        ([record(question_id=10, templ_values='[1, 2]')], "question_id 10.*list of strings"),
        ([record(question_id=1.5)], r"record 0 \(question_id 1.5\): question_id 1.5 is not a non-negative integer"),
        ([record(), ["not", "a", "record"]], r"record 1 \(question_id \?\): expected an object"),
    ],
    ids=["malformed", "not-a-list", "answer", "missing-key", "unknown-type", "type-not-json", "templ-count",
         "templ-eval", "type-1-list", "templ-not-strings", "float-id", "record-not-object"],
)
def test_faults_name_the_file_and_the_record(tmp_path, records, needle):
    path = write(tmp_path, records)
    with pytest.raises(AnnotationError, match=needle) as err:
        load_annotations(path)
    assert str(path) in str(err.value)


def test_conflicting_duplicates_are_reported_and_can_be_dropped(tmp_path, caplog):
    records = [record(question_id=1, anser="yes"), record(question_id=1, anser="no"),
               record(question_id=2, anser="yes"), record(question_id=3), record(question_id=3, anser="no"),
               record(question_id=3)]
    path = write(tmp_path, records)
    with pytest.raises(AnnotationError,
                       match=r"2 question_id\(s\) appear more than once .*\[1, 3\].*drop_conflicting_duplicates: true"):
        load_annotations(path)
    with caplog.at_level(logging.WARNING, logger="avqa.data.annotations"):
        kept = load_annotations(path, drop_conflicting_duplicates=True)
    assert kept["question_id"].tolist() == [2]
    assert "dropping all records of 2 question_id(s)" in caplog.text


def test_exact_duplicates_are_kept_once(tmp_path, caplog):
    path = write(tmp_path, [record(question_id=1), record(question_id=2), record(question_id=1)])
    with caplog.at_level(logging.WARNING, logger="avqa.data.annotations"):
        table = load_annotations(path)
    assert table["question_id"].tolist() == [1, 2]
    assert "1 exact duplicate record(s)" in caplog.text


def test_deleted_questions_are_dropped(tmp_path, caplog):
    path = write(tmp_path, [record(question_id=1, question_deleted=1), record(question_id=2)])
    with caplog.at_level(logging.WARNING, logger="avqa.data.annotations"):
        assert load_annotations(path)["question_id"].tolist() == [2]
    assert "1 record(s) marked question_deleted dropped" in caplog.text


def run_cli(argv: list[str]) -> None:
    # The subcommand as avqa.cli registers it, in-process: a subprocess would pay for every stage's torch import.
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    args.func(args)


@pytest.mark.parametrize("drop", [False, True])
def test_cli_writes_the_parquet(tmp_path, caplog, drop):
    records = [record(question_id=1), record(question_id=2, anser="no"),
               record(question_id=5, type='["Visual", "Location"]', question_content="Where is the performance?",
                      templ_values="[]", anser="indoor"),
               record(question_id=9, anser="yes"), record(question_id=9, anser="no")]
    path = write(tmp_path, records)
    out = tmp_path / "out/test.parquet"
    argv = ["annotations", "--json", str(path), "--split", "test", "--out", str(out)]
    if not drop:
        with pytest.raises(AnnotationError, match="question_id 9|\\[9\\]"):
            run_cli(argv)
        assert not out.parent.exists() or not any(out.parent.iterdir())  # nothing written on failure
        return
    with caplog.at_level(logging.INFO, logger="avqa.data.annotations"):
        run_cli(argv + ["--drop-conflicting-duplicates"])
    table = pd.read_parquet(out)
    assert list(table.columns) == list(COLUMNS)
    schema = pq.read_schema(out)
    for name in COLUMNS:  # pandas 3 writes text as large_string, older pandas as string
        kind = schema.field(name).type
        expected = (pa.int64(),) if name in ("question_id", "answer_idx") else (pa.string(), pa.large_string())
        assert kind in expected, (name, kind)
    assert table["question_id"].tolist() == [1, 2, 5]
    assert table["answer_idx"].tolist() == [ANSWER_TO_IDX["yes"], ANSWER_TO_IDX["no"], ANSWER_TO_IDX["indoor"]]
    assert table["type_key"].tolist() == ["A-Comp", "A-Comp", "V-Loc"]
    assert table.loc[0, "question"] == "Is the piano louder than the cello?"
    assert table.loc[0, "templ_values"] == '["piano", "cello"]'
    assert "'A-Comp': 2" in caplog.text and "'V-Loc': 1" in caplog.text
    assert sorted(p.name for p in out.parent.iterdir()) == ["test.parquet"]  # no temporary left behind
