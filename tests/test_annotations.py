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

from avqa.data import annotations
from avqa.data.annotations import (ASSIGNED_ID_BASE, ASSIGNED_ID_SPAN, COLUMNS, AnnotationError,
                                   assigned_question_id, fill_template, load_annotations, register)
from avqa.specs.data import AnnotationsSpec
from avqa.vocab import ANSWER_TO_IDX, ANSWERS
from conftest import MUSIC_AVQA_DIR

SHARED = MUSIC_AVQA_DIR
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


def spec_args(release: str = "v1", drop: bool = False) -> list[str]:
    return ["--spec", AnnotationsSpec(release=release, drop_conflicting_duplicates=drop).to_json()]


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
            run_cli(argv + spec_args())
        assert not out.parent.exists() or not any(out.parent.iterdir())  # nothing written on failure
        return
    with caplog.at_level(logging.INFO, logger="avqa.data.annotations"):
        run_cli(argv + spec_args(drop=True))
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


# --- MUSIC-AVQA v2.0 (release v2) -------------------------------------------------------------------------------
TEMPLATE = "Is the <Object> louder than the <Object>?"


def v2_record(video_id: str, without=("question_id",), **overrides) -> dict:
    """A v2.0-style record: question_id (and optionally question_deleted) left out, keys in another order."""
    base = record(video_id=video_id, **overrides)
    shuffled = {k: base[k] for k in ("video_id", "question_content", "templ_values", "anser", "type",
                                     "question_deleted", "question_id")}
    return {k: v for k, v in shuffled.items() if k not in without}


def assigned(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["question_id"] >= ASSIGNED_ID_BASE]


def ids_by_video(frame: pd.DataFrame) -> dict[str, int]:
    return dict(zip(frame["video_id"], frame["question_id"]))


def test_v2_ids_follow_the_content_rule_and_never_collide_with_given_ids(tmp_path):
    # A naive counter would give the id-less records 2 and 3 (max so far + 1) or 0 and 1: all are given ids here.
    records = [record(question_id=1), v2_record("-8aY3Z_#02"), record(question_id=2),
               v2_record("xyz_flip", without=("question_id", "question_deleted"), anser="no"),
               record(question_id=3), record(question_id=0)]
    table = load_annotations(write(tmp_path, records), release="v2")
    assert table["question_id"].is_unique and len(table) == 6
    assert table["question_id"].tolist()[0::2] == [1, 2, 3]
    assert table["question_id"].iloc[5] == 0
    new = assigned(table)
    assert new["video_id"].tolist() == ["-8aY3Z_#02", "xyz_flip"]
    assert new["question_id"].between(ASSIGNED_ID_BASE, ASSIGNED_ID_BASE + ASSIGNED_ID_SPAN - 1).all()
    assert new["question_id"].tolist() == [
        assigned_question_id("-8aY3Z_#02", TEMPLATE, ["piano", "cello"], "yes", 0),
        assigned_question_id("xyz_flip", TEMPLATE, ["piano", "cello"], "no", 0)]
    # the rule is part of the data contract (ids land in predictions.csv): pin one value
    assert new["question_id"].iloc[0] == 2847249588979435


def test_v2_ids_depend_on_the_record_content_only(tmp_path):
    flip, suffixed = v2_record("xyz_flip"), v2_record("-8aY3Z_#02", anser="no")
    first = load_annotations(write(tmp_path, [record(question_id=1), flip, suffixed], "a.json"), release="v2")
    again = load_annotations(write(tmp_path, [record(question_id=1), flip, suffixed], "b.json"), release="v2")
    pd.testing.assert_frame_equal(first, again)
    # other records inserted and the order changed (or the records moved to another split's file): same ids
    other = load_annotations(write(tmp_path, [suffixed, record(question_id=7), v2_record("00000093", anser="no"),
                                              flip], "avqa-train.json"), release="v2")
    before, after = ids_by_video(assigned(first)), ids_by_video(assigned(other))
    assert after["xyz_flip"] == before["xyz_flip"] and after["-8aY3Z_#02"] == before["-8aY3Z_#02"]
    assert after["00000093"] not in set(first["question_id"])


def test_v2_identical_records_stay_distinct_rows(tmp_path, caplog):
    same = v2_record("abc_#02")
    with caplog.at_level(logging.WARNING, logger="avqa.data.annotations"):
        table = load_annotations(write(tmp_path, [same, record(question_id=4), same, same]), release="v2")
    assert len(table) == 4 and table["question_id"].is_unique
    assert assigned(table)["question_id"].tolist() == [
        assigned_question_id("abc_#02", TEMPLATE, ["piano", "cello"], "yes", n) for n in range(3)]
    assert "2 record(s) without question_id repeat an earlier one" in caplog.text


def test_v2_hash_collisions_within_a_file_take_the_next_free_id(tmp_path, monkeypatch):
    monkeypatch.setattr(annotations, "assigned_question_id", lambda *_: ASSIGNED_ID_BASE + ASSIGNED_ID_SPAN - 2)
    records = [v2_record("a"), v2_record("b"), record(question_id=5), v2_record("c")]
    table = load_annotations(write(tmp_path, records), release="v2")
    top = ASSIGNED_ID_BASE + ASSIGNED_ID_SPAN
    assert table["question_id"].tolist() == [top - 2, top - 1, 5, ASSIGNED_ID_BASE]  # wraps within the range


def test_v2_rejects_a_given_id_in_the_assigned_range(tmp_path):
    clash = assigned_question_id("xyz_flip", TEMPLATE, ["piano", "cello"], "yes", 0)
    path = write(tmp_path, [v2_record("xyz_flip"), record(question_id=clash, video_id="00000001")])
    with pytest.raises(AnnotationError, match=rf"record 1 \(question_id {clash}\): .*reserved for assigned ids"):
        load_annotations(path, release="v2")
    assert load_annotations(write(tmp_path, [record(question_id=clash)], "v1.json"))["question_id"].tolist() == [clash]


def test_v2_question_deleted_defaults_to_0_and_deleted_records_are_dropped(tmp_path, caplog):
    records = [v2_record("kept_flip", without=("question_id", "question_deleted")),
               v2_record("gone_#02", question_deleted=1),
               record(question_id=8, question_deleted=1),
               {k: v for k, v in record(question_id=9).items() if k != "question_deleted"}]
    with caplog.at_level(logging.WARNING, logger="avqa.data.annotations"):
        table = load_annotations(write(tmp_path, records), release="v2")
    assert table["video_id"].tolist() == ["kept_flip", "00000093"]
    assert table["question_id"].iloc[1] == 9
    assert "2 record(s) marked question_deleted dropped" in caplog.text


def test_v2_keeps_video_ids_exactly_as_written(tmp_path):
    names = ["-8aY3Z_#02", "xyz_flip", "-hNci03mKAE_#02_flip", "00000093", "esa00000446"]
    table = load_annotations(write(tmp_path, [v2_record(n) for n in names]), release="v2")
    assert table["video_id"].tolist() == names
    path = write(tmp_path, [v2_record(93)])
    with pytest.raises(AnnotationError, match=r"record 0 \(no question_id, video_id 93\): video_id 93 is not a "
                                              r"non-empty string"):
        load_annotations(path, release="v2")


@pytest.mark.parametrize(("without", "missing"), [(("question_id",), "['question_id']"),
                                                  (("question_id", "question_deleted"),
                                                   "['question_id', 'question_deleted']")])
def test_v1_rejects_records_without_question_id(tmp_path, without, missing):
    path = write(tmp_path, [record(question_id=1), v2_record("xyz_flip", without=without)])
    with pytest.raises(AnnotationError) as err:
        load_annotations(path)
    message = str(err.value)
    assert message.startswith(f"{path}: record 1 (no question_id, video_id 'xyz_flip'): missing key(s) {missing}")
    assert '"release": "v2"' in message and "music_avqa.release: v2" in message


def test_unknown_release_is_a_user_error(tmp_path):
    with pytest.raises(AnnotationError, match=r"unknown MUSIC-AVQA release 'v3'.*\['v1', 'v2'\]"):
        load_annotations(write(tmp_path, [record()]), release="v3")
    with pytest.raises(AnnotationError, match="unknown MUSIC-AVQA release 'v3'"):
        run_cli(["annotations", "--json", str(write(tmp_path, [record()])), "--split", "test", "--out",
                 str(tmp_path / "x.parquet"), *spec_args(release="v3")])


@needs_shared
def test_v2_reads_json_update_unchanged(real_test):
    pd.testing.assert_frame_equal(load_annotations(SHARED / "avqa-test.json", release="v2"), real_test)


def test_cli_release_v2(tmp_path, caplog):
    records = [record(question_id=1), v2_record("-8aY3Z_#02", anser="no"),
               v2_record("xyz_flip", without=("question_id", "question_deleted"))]
    path, out = write(tmp_path, records), tmp_path / "out/test.parquet"
    argv = ["annotations", "--json", str(path), "--split", "test", "--out", str(out)]
    with pytest.raises(AnnotationError, match='record 1 .*"release": "v2"'):
        run_cli(argv + spec_args())
    assert not out.exists()
    with caplog.at_level(logging.INFO, logger="avqa.data.annotations"):
        run_cli(argv + spec_args(release="v2"))
    table = pd.read_parquet(out)
    assert table["video_id"].tolist() == ["00000093", "-8aY3Z_#02", "xyz_flip"]
    assert table["question_id"].tolist() == [1, assigned_question_id("-8aY3Z_#02", TEMPLATE, ["piano", "cello"], "no"),
                                             assigned_question_id("xyz_flip", TEMPLATE, ["piano", "cello"], "yes")]
    assert pq.read_schema(out).field("question_id").type == pa.int64()
    assert "release v2" in caplog.text and "2 record(s) without question_id given ids" in caplog.text
