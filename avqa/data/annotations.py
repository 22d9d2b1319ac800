"""MUSIC-AVQA annotation files -> one table row per question (results/annotations/{split}.parquet).

Reads both the original release and `json_update`: a JSON list of records with exactly the keys video_id,
question_id, type, question_content, templ_values, question_deleted, anser (sic). `type` and `templ_values` are
JSON-encoded strings and are parsed as JSON (never eval'd). Placeholders in the template are filled in order
from templ_values; the template quirks (a full-width '？', trailing spaces) are normalised in the filled
question, while `template` keeps the file's string.

question_deleted: every record of json_update's val and test files has 0 (the 9,129 test questions of the
published per-type counts are all of them), so the flag only matters for other releases; a record with flag 1
was withdrawn by the dataset authors and is dropped (unvalidated) with a warning giving the count. Any other
flag value is an error.

Integer fields (question_id, question_deleted), in both releases: a JSON integer, a string of ASCII digits, or
an integral float (47859.0 -> 47859, as v2.0's train / valid splits write them). Anything else is an error
naming the file, the record index and the value: 1.5, negative numbers, NaN / Infinity (Python's JSON reader
accepts them), floats >= 2^53 (not exact: two ids could read as one), booleans, "47859.0", "abc".
A null value of any other key is an error too.

Extra keys (v2.0's splits carry `unmatch_audio`, `audio_instrument`, `video_instrument`, `person`, often
null) are ignored: the table has the same columns for every release, the file's extra keys are logged once.

Duplicates: the original release repeats some question_ids with different answers (55 in its test file). Such an
id cannot be scored, so it is an error unless `drop_conflicting_duplicates` (config
`music_avqa.drop_conflicting_duplicates: true`) drops all its records. Exact repeats keep their first record.

Releases (`release`, config `music_avqa.release`, the annotations spec's `release`):
- "v1" (default): the original release and json_update; every record must carry all 7 keys.
- "v2": MUSIC-AVQA v2.0 (Liu et al., WACV 2024). Its test files leave `question_id`, or both `question_id`
  and `question_deleted`, out of some records (and order the keys freely); its train / valid splits write both
  as floats (47859.0, 0.0) or JSON null. With v2 a null question_id or question_deleted is read as a missing
  one; a missing question_deleted means 0. `video_id` must be a JSON string and is kept exactly as written:
  YouTube ids may start with '-' and carry `_#02`-style suffixes or `_flip` (a mirrored copy), all part of
  the file name.
  A record without question_id gets an assigned id (`assigned_question_id`):
      ASSIGNED_ID_BASE + sha256(key)[:8 bytes, big-endian] mod ASSIGNED_ID_SPAN,
      key = compact JSON of [video_id, question_content as written, templ_values as a list, anser, occurrence]
  where `occurrence` counts the earlier non-deleted records of the same file without question_id (or with a
  null one) and the same first four fields (0 for the first), so identical records stay distinct rows as in
  the published counts. The id depends only on the record's content: the same file always gives the same ids,
  and inserting, removing or reordering other records (or moving it to another split's file) does not change
  it. The range [10^15, 9*10^15) is disjoint from the given ids (MUSIC-AVQA's are below 10^5; with v2 a given
  id >= 10^15 is an error, whether written as an int or a float, so no file can hold one) and below 2^53
  (exact as a float too). Within a file a hash collision moves the later record to the next free id in the
  range; across files two different records share an id with probability about n^2 / 1.6e16 (2.5e-8 for
  n = 20,000 id-less records).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import re
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from avqa.atomic import atomic_path
from avqa.vocab import ANSWER_TO_IDX, PLACEHOLDERS, QUESTION_TYPES, TYPE_KEY
from avqa.errors import UserError
from avqa.specs import add_spec_arguments, spec_from_args
from avqa.specs.data import AnnotationsSpec

logger = logging.getLogger(__name__)

KEYS = ("video_id", "question_id", "type", "question_content", "templ_values", "question_deleted", "anser")
RELEASES = ("v1", "v2")
V2_OPTIONAL_KEYS = ("question_id", "question_deleted")  # v2.0 leaves them out of some records
ASSIGNED_ID_BASE = 10**15  # assigned ids: [BASE, BASE + SPAN), far above any given MUSIC-AVQA id (< 10^5)
ASSIGNED_ID_SPAN = 8 * 10**15  # BASE + SPAN = 9e15 < 2^53
EXACT_FLOAT_INTS = 2**53  # an integral float below this is one integer exactly; above, neighbours share a float
COLUMNS = ("question_id", "video_id", "group", "type", "type_key", "question", "answer", "answer_idx",
           "template", "templ_values")
_PLACEHOLDER = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))


class AnnotationError(UserError, ValueError):
    """An annotation file or record that cannot be read; the message names the file and the record."""


def fill_template(template: str, values: list[str]) -> str:
    """The question text: placeholders replaced in order, '？' -> '?', surrounding whitespace stripped."""
    slots = _PLACEHOLDER.findall(template)
    if len(slots) != len(values):
        raise ValueError(f"template has {len(slots)} placeholders but templ_values has {len(values)} values")
    it = iter(values)
    filled = _PLACEHOLDER.sub(lambda _: str(next(it)), template)
    return filled.replace("？", "?").strip()


def _read_json(path: Path) -> list:
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise AnnotationError(f"{path}: malformed JSON at line {err.lineno} column {err.colno}: {err.msg}") from err
    if not isinstance(records, list):
        raise AnnotationError(f"{path}: expected a JSON list of question records, got {type(records).__name__}")
    return records


def _json_list(raw, what: str) -> list[str]:
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} {raw!r} is not valid JSON ({err.msg} at column {err.colno})") from err
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a JSON-encoded list of strings, got {raw!r}")
    return value


def _non_negative_int(raw, key: str) -> int:
    """An integer field as written: an int, an ASCII digit string, or an integral float (47859.0)."""
    # bool is an int subclass: true would silently read as id 1
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    if isinstance(raw, float) and math.isfinite(raw) and raw.is_integer() and 0 <= raw < EXACT_FLOAT_INTS:
        return int(raw)
    if isinstance(raw, str) and raw.isascii() and raw.isdigit():
        return int(raw)
    raise ValueError(f"{key} {raw!r} is not a non-negative integer (an integer, a digit string, or an integral "
                     f"float below 2^53 such as 47859.0)")


def _check_release(release: str) -> None:
    if release not in RELEASES:
        raise AnnotationError(f"unknown MUSIC-AVQA release {release!r}: expected one of {list(RELEASES)} "
                              f"(config music_avqa.release, the annotations spec's release)")


def _missing_keys(record: dict, release: str) -> list[str]:
    required = KEYS if release == "v1" else tuple(k for k in KEYS if k not in V2_OPTIONAL_KEYS)
    return [k for k in required if k not in record]


def _null_keys(record: dict, release: str) -> list[str]:
    """Keys written as JSON null where a value is needed (with v2 a null optional key counts as missing)."""
    nullable = V2_OPTIONAL_KEYS if release == "v2" else ()
    return [k for k in KEYS if k in record and record[k] is None and k not in nullable]


def _v2_hint(keys: list[str], release: str) -> str:
    if release == "v1" and set(keys) <= set(V2_OPTIONAL_KEYS):
        return (" (MUSIC-AVQA v2.0 files leave question_id / question_deleted out of some records or write them "
                "as null: read them with release v2, i.e. music_avqa.release: v2 or the spec's \"release\": \"v2\")")
    return ""


def _given_id(record: dict, release: str) -> int | None:
    """The record's question_id, None when a v2 record has none (missing or null)."""
    if record.get("question_id") is None:
        return None
    qid = _non_negative_int(record["question_id"], "question_id")
    if release == "v2" and qid >= ASSIGNED_ID_BASE:
        raise ValueError(f"question_id {qid} lies in the range reserved for assigned ids "
                         f"(>= {ASSIGNED_ID_BASE}); given ids must be smaller")
    return qid


def parse_record(record: dict, release: str = "v1") -> dict:
    """One record -> one row (raises ValueError saying what is wrong; the caller adds file and record).

    With release "v2" a record may lack question_id or have it null (the row's question_id is then None, for
    `load_annotations` to assign) and question_deleted, and video_id must be a string. Keys other than the 7
    are ignored.
    """
    _check_release(release)
    if not isinstance(record, dict):
        raise ValueError(f"expected an object, got {type(record).__name__}")
    missing = _missing_keys(record, release)
    if missing:
        raise ValueError(f"missing key(s) {missing}{_v2_hint(missing, release)}")
    null = _null_keys(record, release)
    if null:
        raise ValueError(f"key(s) {null} are null{_v2_hint(null, release)}")
    if release == "v2" and not (isinstance(record["video_id"], str) and record["video_id"]):
        # a JSON number would lose the leading zeros of the file name ("00000093" vs 93)
        raise ValueError(f"video_id {record['video_id']!r} is not a non-empty string")
    group_type = _json_list(record["type"], "type")
    if len(group_type) != 2 or tuple(group_type) not in TYPE_KEY:
        raise ValueError(f"type {record['type']!r} is not one of the 9 (group, type) pairs "
                         f"{[(g, t) for g, t, _ in QUESTION_TYPES]}")
    values = _json_list(record["templ_values"], "templ_values")
    question = fill_template(record["question_content"], values)
    answer = record["anser"]
    if answer not in ANSWER_TO_IDX:
        raise ValueError(f"answer {answer!r} is not in the 42-answer vocabulary")
    group, qtype = group_type
    return {
        "question_id": _given_id(record, release),
        "video_id": str(record["video_id"]),
        "group": group,
        "type": qtype,
        "type_key": TYPE_KEY[(group, qtype)],
        "question": question,
        "answer": answer,
        "answer_idx": ANSWER_TO_IDX[answer],
        "template": record["question_content"],
        "templ_values": record["templ_values"] if isinstance(record["templ_values"], str)
        else json.dumps(values),
    }


def assigned_question_id(video_id: str, template: str, templ_values: list[str], answer: str,
                         occurrence: int = 0) -> int:
    """The v2 id of a record without question_id, before collision probing (rule: module docstring)."""
    key = json.dumps([video_id, template, list(templ_values), answer, occurrence], ensure_ascii=False,
                     separators=(",", ":"))
    digest = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    return ASSIGNED_ID_BASE + digest % ASSIGNED_ID_SPAN


def _assign_question_ids(rows: list[dict], path: Path) -> None:
    """Fill in the question_id of every row that has none, in file order (rule: module docstring)."""
    occurrences: dict[tuple, int] = defaultdict(int)
    taken: set[int] = set()
    assigned = repeats = 0
    for row in rows:
        if row["question_id"] is not None:
            continue
        values = json.loads(row["templ_values"])
        content = (row["video_id"], row["template"], tuple(values), row["answer"])
        occurrence = occurrences[content]
        occurrences[content] += 1
        repeats += occurrence > 0
        qid = assigned_question_id(row["video_id"], row["template"], values, row["answer"], occurrence)
        while qid in taken:  # given ids lie below the range, so only an earlier assigned id can collide
            qid = ASSIGNED_ID_BASE + (qid - ASSIGNED_ID_BASE + 1) % ASSIGNED_ID_SPAN
        taken.add(qid)
        row["question_id"] = qid
        assigned += 1
    if assigned:
        logger.info("%s: %d record(s) without question_id given ids >= %d from their content", path, assigned,
                    ASSIGNED_ID_BASE)
    if repeats:
        logger.warning("%s: %d record(s) without question_id repeat an earlier one (same video, question and "
                       "answer); each is kept as its own question", path, repeats)


def _where(record) -> str:
    """How an error names a record besides its index."""
    if not isinstance(record, dict):
        return "question_id ?"
    if record.get("question_id") is not None:
        return f"question_id {record['question_id']}"
    return f"no question_id, video_id {record.get('video_id', '?')!r}"


def _is_deleted(record) -> bool:
    """question_deleted 1: withdrawn by the dataset authors. Missing or null reads as 0 (with v1
    parse_record then reports the missing or null key)."""
    raw = record.get("question_deleted") if isinstance(record, dict) else None
    if raw is None:
        return False
    flag = _non_negative_int(raw, "question_deleted")
    if flag > 1:
        raise ValueError(f"question_deleted {raw!r} is not 0 or 1")
    return flag == 1


def _resolve_duplicates(rows: list[dict], path: Path, drop_conflicting: bool) -> list[dict]:
    """Keep one row per question_id; ids repeated with different answers raise, or are dropped entirely."""
    answers: dict[int, set[str]] = defaultdict(set)
    for row in rows:
        answers[row["question_id"]].add(row["answer"])
    conflicting = sorted(qid for qid, seen in answers.items() if len(seen) > 1)
    if conflicting and not drop_conflicting:
        raise AnnotationError(
            f"{path}: {len(conflicting)} question_id(s) appear more than once with different answers "
            f"(first: {conflicting[:10]}); set music_avqa.drop_conflicting_duplicates: true in config.yaml "
            f"(the annotations spec's drop_conflicting_duplicates) to drop all their records")
    if conflicting:
        logger.warning("%s: dropping all records of %d question_id(s) that repeat with different answers "
                       "(first: %s)", path, len(conflicting), conflicting[:10])
    dropped = set(conflicting)
    kept: dict[int, dict] = {}
    for row in rows:
        if row["question_id"] not in dropped:
            kept.setdefault(row["question_id"], row)  # first occurrence wins, file order is kept
    exact = sum(1 for row in rows if row["question_id"] not in dropped) - len(kept)
    if exact:
        logger.warning("%s: %d exact duplicate record(s) (same question_id, same answer) kept once", path, exact)
    return list(kept.values())


def load_annotations(path: str | Path, drop_conflicting_duplicates: bool = False,
                     release: str = "v1") -> pd.DataFrame:
    """A MUSIC-AVQA JSON file as a DataFrame with the columns of results/annotations/{split}.parquet.

    release: "v1" (original / json_update, all 7 keys required) or "v2" (MUSIC-AVQA v2.0: missing question_id
    assigned from the record's content, missing question_deleted = 0; see the module docstring).
    Raises AnnotationError naming the file, and the record (index, question_id) where one is at fault.
    """
    _check_release(release)
    path = Path(path)
    rows = []
    deleted = 0
    extra: set[str] = set()
    for index, record in enumerate(_read_json(path)):
        try:
            if _is_deleted(record):
                deleted += 1
                continue
            rows.append(parse_record(record, release))
            extra.update(record.keys() - set(KEYS))
        except (ValueError, TypeError) as err:
            raise AnnotationError(f"{path}: record {index} ({_where(record)}): {err}") from err
    if deleted:
        logger.warning("%s: %d record(s) marked question_deleted dropped", path, deleted)
    if extra:
        logger.info("%s: key(s) %s ignored (not among the 7 MUSIC-AVQA keys)", path, sorted(extra))
    _assign_question_ids(rows, path)
    rows = _resolve_duplicates(rows, path, drop_conflicting_duplicates)
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return table.astype({"question_id": "int64", "answer_idx": "int64"})


def annotated_video_ids(annotations: list[str | Path]) -> list[str]:
    """Sorted unique `video_id` values over the annotation parquet files."""
    ids: set[str] = set()
    for path in annotations:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: annotation file does not exist")
        columns = pq.read_schema(path).names
        if "video_id" not in columns:
            raise ValueError(f"{path}: no 'video_id' column (columns: {columns})")
        values = pd.read_parquet(path, columns=["video_id"])["video_id"]
        if values.isna().any():
            raise ValueError(f"{path}: {int(values.isna().sum())} rows have no video_id")
        ids.update(values.astype(str))
    return sorted(ids)


def _cli(args: argparse.Namespace) -> None:
    from avqa.workflow import annotations_spec

    spec = spec_from_args(args, AnnotationsSpec, annotations_spec)
    table = load_annotations(args.json, drop_conflicting_duplicates=spec.drop_conflicting_duplicates,
                             release=spec.release)
    counts = table["type_key"].value_counts()
    logger.info("%s (%s, release %s): %d questions, %d videos; per type: %s", args.json, args.split,
                spec.release, len(table), table["video_id"].nunique(),
                {k: int(counts.get(k, 0)) for _, _, k in QUESTION_TYPES})
    with atomic_path(args.out) as tmp:
        table.to_parquet(tmp, index=False)


def register(subparsers) -> None:
    parser = subparsers.add_parser("annotations", help="MUSIC-AVQA JSON -> results/annotations/{split}.parquet")
    parser.add_argument("--json", required=True, help="a MUSIC-AVQA annotation file (avqa-{split}.json)")
    parser.add_argument("--split", required=True, help="split name, for the log")
    parser.add_argument("--out", required=True, help="output parquet")
    add_spec_arguments(parser, f"the release ({' | '.join(RELEASES)}), music_avqa.drop_conflicting_duplicates")
    parser.set_defaults(func=_cli)
