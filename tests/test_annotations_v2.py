"""MUSIC-AVQA v2.0's files as the community distributes them (release v2): hand-made files of their exact shape.

The split files (balance_train / balance_valid / bias_train / bias_valid) write question_id and
question_deleted as floats (47859.0, 0.0) or null and carry extra keys; the test files (test_balance 10,819
records, test_bias 9,119) leave question_id, or it and question_deleted, out of some records instead.
"""
from __future__ import annotations

import copy
from collections import Counter
import json
import logging
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from snakemake.utils import validate

from avqa.data.annotations import (ASSIGNED_ID_BASE, COLUMNS, KEYS, AnnotationError, assigned_question_id,
                                   load_annotations)
from avqa.vocab import ANSWERS, INSTRUMENTS, PLACEHOLDERS, QUESTION_TYPES, TEMPLATES, TYPE_KEY
from avqa.paths import Layout

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")
OVERLAYS = ("music_avqa_v2.yaml", "music_avqa_v2_bias.yaml")
EXTRA_KEYS = ("unmatch_audio", "audio_instrument", "video_instrument", "person")
SLOT = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))
SLOT_VALUES = {"<Object>": INSTRUMENTS, "<LR>": ("left", "right", "middle"), "<FL>": ("first", "last"),
               "<LL>": ("loudest", "quietest"), "<TH>": ("first", "second", "third"),
               "<BA>": ("before", "after"), "<LRer>": ("leftest", "rightest")}
# v2.0's video ids: MUSIC-AVQA's 8 digits, its synthetic prefixes, the added YouTube ids and their variants
VIDEO_IDS = ("00005754", "sa00007079", "eva00000720", "esa00000446", "tOcOiTFQYp4", "-8aY3Z_#02",
             "eGmXU1Tpc-M_flip", "_WPwXJDSoV8")
TEMPLATE = "Is the <Object> louder than the <Object>?"


def question(rng: random.Random) -> dict:
    """The 5 content keys of a real-looking record: a real template, values for its slots, a real answer."""
    group, qtype, _ = rng.choice(QUESTION_TYPES)
    template = rng.choice(TEMPLATES[(group, qtype)])
    values = [rng.choice(SLOT_VALUES[slot]) for slot in SLOT.findall(template)]
    return {"video_id": rng.choice(VIDEO_IDS), "type": json.dumps([group, qtype]),
            "question_content": template, "templ_values": json.dumps(values), "anser": rng.choice(ANSWERS)}


def v2_split_file_records(n: int, null_ids: int, null_flags: int, seed: int = 0) -> list[dict]:
    """A v2.0 split file: all 7 keys, ids and flags as floats or null, the 4 extra keys (mostly null)."""
    rng = random.Random(seed)
    ids = rng.sample(range(1, 60_000), n)
    no_id, no_flag = set(rng.sample(range(n), null_ids)), set(rng.sample(range(n), null_flags))
    records = []
    for i in range(n):
        content = question(rng)
        record = {"video_id": content["video_id"], "question_id": None if i in no_id else float(ids[i]),
                  "type": content["type"], "question_content": content["question_content"],
                  "templ_values": content["templ_values"], "question_deleted": None if i in no_flag else 0.0,
                  "anser": content["anser"]}
        for key in EXTRA_KEYS:
            record[key] = None if rng.random() < 0.7 else rng.choice([0.0, "piano", ["violin", "cello"]])
        records.append(record)
    return records


def v2_test_file_records(n: int, seed: int = 0) -> list[dict]:
    """A v2.0 test file: most records with all 7 keys (int id, flag 0); the added questions without
    question_id, or without it and question_deleted, their keys in another order."""
    rng = random.Random(seed)
    ids = rng.sample(range(1, 60_000), n)
    records = []
    for i in range(n):
        content = question(rng)
        kind = rng.random()
        if kind < 0.1:  # no id, no flag
            records.append({k: content[k] for k in ("video_id", "question_content", "templ_values", "anser",
                                                    "type")})
        elif kind < 0.2:  # no id
            records.append({"video_id": content["video_id"], "type": content["type"],
                            "question_content": content["question_content"],
                            "templ_values": content["templ_values"], "question_deleted": 0,
                            "anser": content["anser"]})
        else:
            records.append({"video_id": content["video_id"], "question_id": ids[i], "type": content["type"],
                            "question_content": content["question_content"],
                            "templ_values": content["templ_values"], "question_deleted": 0,
                            "anser": content["anser"]})
    return records


def write(path: Path, records) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=2))
    return path


def record(**overrides) -> dict:
    base = {"video_id": "sa00007079", "question_id": 47859.0, "type": '["Audio", "Comparative"]',
            "question_content": TEMPLATE, "templ_values": '["piano", "cello"]', "question_deleted": 0.0,
            "anser": "yes", "unmatch_audio": None, "audio_instrument": None, "video_instrument": None,
            "person": None}
    base.update(overrides)
    return base


def given_ids(records: list[dict]) -> set[int]:
    return {int(r["question_id"]) for r in records if r.get("question_id") is not None}


def assert_parsed_in_full(table: pd.DataFrame, records: list[dict]) -> None:
    """Every record a row; the given ids kept as integers; the rest assigned, disjoint from them, unique."""
    assert len(table) == len(records)
    assert list(table.columns) == list(COLUMNS) and table["question_id"].dtype == "int64"
    assert table["question_id"].is_unique
    assigned = table["question_id"] >= ASSIGNED_ID_BASE
    assert set(table.loc[~assigned, "question_id"]) == given_ids(records)
    assert assigned.sum() == sum(r.get("question_id") is None for r in records)
    written = Counter(TYPE_KEY[tuple(json.loads(r["type"]))] for r in records)
    assert table["type_key"].value_counts().to_dict() == dict(written)


# --- the files' counts ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "n"), [("test_balance.json", 10_819), ("test_bias.json", 9_119)])
def test_v2_test_files_parse_to_their_counts(tmp_path, name, n):
    records = v2_test_file_records(n)
    assert {frozenset(r) for r in records} == {frozenset(KEYS), frozenset(KEYS) - {"question_id"},
                                                frozenset(KEYS) - {"question_id", "question_deleted"}}
    table = load_annotations(write(tmp_path / name, records), release="v2")
    assert_parsed_in_full(table, records)


@pytest.mark.parametrize(("name", "n", "null_ids", "null_flags"),
                         [("balance_valid.json", 5_346, 826, 254), ("bias_valid.json", 4_499, 700, 200)])
def test_v2_split_files_parse_to_their_counts(tmp_path, caplog, name, n, null_ids, null_flags):
    records = v2_split_file_records(n, null_ids, null_flags)
    assert sum(r["question_id"] is None for r in records) == null_ids
    assert all(isinstance(r["question_id"], float) for r in records if r["question_id"] is not None)
    with caplog.at_level(logging.INFO, logger="avqa.data.annotations"):
        table = load_annotations(write(tmp_path / name, records), release="v2")
    assert_parsed_in_full(table, records)
    assert f"{null_ids} record(s) without question_id given ids" in caplog.text
    assert f"key(s) {sorted(EXTRA_KEYS)} ignored" in caplog.text


# --- integer fields ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("release", ["v1", "v2"])
def test_integral_floats_and_digit_strings_are_read_as_integers(tmp_path, release):
    records = [record(question_id=47859.0), record(question_id=0.0, anser="no"), record(question_id=12),
               record(question_id="31", question_deleted="0"), record(question_id=7.0, question_deleted=0)]
    table = load_annotations(write(tmp_path / "a.json", records), release=release)
    assert table["question_id"].tolist() == [47859, 0, 12, 31, 7]
    assert table["question_id"].dtype == "int64"


@pytest.mark.parametrize("release", ["v1", "v2"])
@pytest.mark.parametrize(("raw", "shown"), [
    (1.5, "1.5"), (-3, "-3"), (-3.0, "-3.0"), (float("nan"), "nan"), (float("inf"), "inf"), (True, "True"),
    ("47859.0", "'47859.0'"), ("abc", "'abc'"), ("-4", "'-4'"), ("\u0663", "'\u0663'"), (2.0**53, "9007199254740992.0"),
    ([1], r"\[1\]"),
])
def test_bad_question_ids_name_the_file_record_and_value(tmp_path, release, raw, shown):
    path = write(tmp_path / "balance_valid.json", [record(question_id=5.0), record(question_id=raw)])
    with pytest.raises(AnnotationError, match=rf"record 1 \(question_id .*\): question_id {shown} is not a "
                                              rf"non-negative integer") as err:
        load_annotations(path, release=release)
    assert str(err.value).startswith(f"{path}: ")


@pytest.mark.parametrize(("raw", "needle"), [
    (2, "question_deleted 2 is not 0 or 1"), (2.0, "question_deleted 2.0 is not 0 or 1"),
    (0.5, "question_deleted 0.5 is not a non-negative integer"), (True, "question_deleted True is not a non-neg"),
    ("yes", "question_deleted 'yes' is not a non-negative integer"), (float("nan"), "question_deleted nan is not"),
])
def test_bad_deleted_flags_name_the_file_record_and_value(tmp_path, raw, needle):
    records = [record(question_id=5.0), record(question_id=6.0, question_deleted=raw)]
    path = write(tmp_path / "bias_valid.json", records)
    with pytest.raises(AnnotationError, match=rf"^{re.escape(str(path))}: record 1 \(question_id 6.0\): {needle}"):
        load_annotations(path, release="v2")


def test_deleted_flags_1_and_1_0_drop_the_record_null_keeps_it(tmp_path, caplog):
    records = [record(question_id=1.0, question_deleted=1.0), record(question_id=2.0, question_deleted=None),
               record(question_id=None, question_deleted=1), record(question_id=3.0, question_deleted="1"),
               record(question_id=4.0), record(question_id=None, question_deleted=None, video_id="kept_flip")]
    with caplog.at_level(logging.WARNING, logger="avqa.data.annotations"):
        table = load_annotations(write(tmp_path / "a.json", records), release="v2")
    assert table["question_id"].tolist()[:2] == [2, 4]
    assert table["video_id"].tolist()[2] == "kept_flip" and table["question_id"].iloc[2] >= ASSIGNED_ID_BASE
    assert "3 record(s) marked question_deleted dropped" in caplog.text


# --- null -------------------------------------------------------------------------------------------------------
def test_v2_null_reads_as_a_missing_key(tmp_path):
    as_null = record(question_id=None, question_deleted=None, video_id="xyz_flip")
    as_missing = {k: v for k, v in as_null.items() if k not in ("question_id", "question_deleted")}
    null_table = load_annotations(write(tmp_path / "null.json", [record(), as_null]), release="v2")
    missing_table = load_annotations(write(tmp_path / "missing.json", [record(), as_missing]), release="v2")
    pd.testing.assert_frame_equal(null_table, missing_table)
    assert null_table["question_id"].tolist() == [
        47859, assigned_question_id("xyz_flip", TEMPLATE, ["piano", "cello"], "yes", 0)]


@pytest.mark.parametrize(("nulls", "where", "shown"), [
    ({"question_id": None}, "no question_id, video_id 'xyz_flip'", "['question_id']"),
    ({"question_deleted": None}, "question_id 47859.0", "['question_deleted']"),
])
def test_v1_rejects_null_ids_and_flags_pointing_at_release_v2(tmp_path, nulls, where, shown):
    path = write(tmp_path / "a.json", [record(question_id=1), record(video_id="xyz_flip", **nulls)])
    with pytest.raises(AnnotationError) as err:
        load_annotations(path)
    message = str(err.value)
    assert message.startswith(f"{path}: record 1 ({where}): key(s) {shown} are null")
    assert '"release": "v2"' in message and "music_avqa.release: v2" in message


@pytest.mark.parametrize("release", ["v1", "v2"])
@pytest.mark.parametrize("key", ["video_id", "type", "question_content", "templ_values", "anser"])
def test_null_content_keys_are_errors(tmp_path, release, key):
    path = write(tmp_path / "a.json", [record(question_id=9.0, **{key: None})])
    with pytest.raises(AnnotationError, match=rf"record 0 \(question_id 9.0\): key\(s\) \['{key}'\] are null$"):
        load_annotations(path, release=release)


# --- extra keys -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("release", ["v1", "v2"])
def test_extra_keys_are_ignored(tmp_path, caplog, release):
    plain = [{k: r[k] for k in KEYS} for r in (record(), record(question_id=12.0, anser="no"))]
    extra = [dict(plain[0], unmatch_audio="00000093", audio_instrument=["piano"], video_instrument=None,
                  person=1.0), dict(plain[1], unmatch_audio=None, audio_instrument=None, video_instrument=None,
                                    person=None)]
    with caplog.at_level(logging.INFO, logger="avqa.data.annotations"):
        table = load_annotations(write(tmp_path / "extra.json", extra), release=release)
    pd.testing.assert_frame_equal(table, load_annotations(write(tmp_path / "plain.json", plain), release=release))
    assert list(table.columns) == list(COLUMNS)
    assert f"key(s) {sorted(EXTRA_KEYS)} ignored" in caplog.text


def test_extra_keys_do_not_change_assigned_ids(tmp_path):
    bare = {k: v for k, v in record(video_id="abc_#02").items() if k in KEYS and k != "question_id"}
    with_extra = dict(record(video_id="abc_#02", question_id=None), person="a singer")
    ids = [load_annotations(write(tmp_path / f"{i}.json", [r]), release="v2")["question_id"].iloc[0]
           for i, r in enumerate((bare, with_extra))]
    assert ids[0] == ids[1] == assigned_question_id("abc_#02", TEMPLATE, ["piano", "cello"], "yes", 0)


# --- ids: given as floats or ints, assigned for null or missing -------------------------------------------------
def test_float_and_int_ids_and_assigned_ids_never_collide(tmp_path):
    same = {k: v for k, v in record(video_id="dup_flip", question_id=None).items() if k != "question_id"}
    records = [record(question_id=47859.0), record(question_id=47859),  # the same record, its id an int
               record(question_id=None, video_id="dup_flip"), same, record(question_id=3.0),
               record(question_id=None, question_deleted=None, video_id="x_#02", anser="no"), record(question_id=4)]
    table = load_annotations(write(tmp_path / "balance_train.json", records), release="v2")
    assert table["question_id"].is_unique and len(table) == 6  # the two 47859 are one exact duplicate
    is_assigned = table["question_id"] >= ASSIGNED_ID_BASE
    given, assigned = table[~is_assigned], table[is_assigned]
    assert given["question_id"].tolist() == [47859, 3, 4] and given["video_id"].iloc[0] == "sa00007079"
    # a null id and a missing one with the same content are identical records: occurrences 0 and 1
    assert assigned["question_id"].tolist() == [
        assigned_question_id("dup_flip", TEMPLATE, ["piano", "cello"], "yes", 0),
        assigned_question_id("dup_flip", TEMPLATE, ["piano", "cello"], "yes", 1),
        assigned_question_id("x_#02", TEMPLATE, ["piano", "cello"], "no", 0)]


def test_float_and_int_copies_of_one_id_with_different_answers_conflict(tmp_path):
    path = write(tmp_path / "a.json", [record(question_id=47859.0), record(question_id=47859, anser="no")])
    with pytest.raises(AnnotationError, match=r"1 question_id\(s\) appear more than once .*\[47859\]"):
        load_annotations(path, release="v2")


def test_v2_rejects_a_float_id_in_the_assigned_range(tmp_path):
    path = write(tmp_path / "a.json", [record(question_id=float(ASSIGNED_ID_BASE))])
    with pytest.raises(AnnotationError,
                       match=r"record 0 \(question_id 1000000000000000\.0\): .*reserved for assigned ids"):
        load_annotations(path, release="v2")


# --- the overlays -----------------------------------------------------------------------------------------------
def merged(base: dict, overlay: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def overlay_config(name: str) -> dict:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for path in (ROOT / "workflow/configs/music_avqa.yaml", ROOT / "workflow/configs" / name):
        config = merged(config, yaml.safe_load(path.read_text()))
    return config


@pytest.mark.parametrize(("name", "files"), [
    ("music_avqa_v2.yaml", ("balance_train.json", "balance_valid.json", "test_balance.json")),
    ("music_avqa_v2_bias.yaml", ("bias_train.json", "bias_valid.json", "test_bias.json")),
])
def test_v2_overlays_validate_and_name_the_v2_files(name, files):
    config = overlay_config(name)
    validate(copy.deepcopy(config), SCHEMA)
    assert config["music_avqa"]["release"] == "v2" and config["dataset"] == "music_avqa"
    assert tuple(Path(config["music_avqa"]["annotations"][s]).name for s in ("train", "val", "test")) == files


@pytest.mark.parametrize("name", OVERLAYS)
def test_v2_overlay_runs_the_annotation_stage_on_v2_shaped_files(tmp_path, name):
    """The overlay as written (its relative paths under a working directory), run for real up to the
    annotation tables: the split files' floats, nulls and extra keys and the test file's missing keys parse."""
    config = overlay_config(name)
    shaped = {"train": v2_split_file_records(12, 3, 2, seed=1), "val": v2_split_file_records(6, 2, 1, seed=2),
              "test": v2_test_file_records(10, seed=3)}
    for split, records in shaped.items():
        write(tmp_path / config["music_avqa"]["annotations"][split], records)
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    layout = Layout()
    targets = [layout.annotations(split) for split in shaped]
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
         "--cores", "1", *targets, "--configfile", str(ROOT / "workflow/configs/music_avqa.yaml"),
         str(ROOT / "workflow/configs" / name)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert re.search(r"^annotations\s+3$", out, flags=re.M), out[-3000:]
    for split, records in shaped.items():
        assert_parsed_in_full(pd.read_parquet(tmp_path / layout.annotations(split)), records)
