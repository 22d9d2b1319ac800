"""MUSIC-AVQA annotation files -> one table row per question (results/annotations/{split}.parquet).

Reads both the original release and `json_update`: a JSON list of records with exactly the keys video_id,
question_id, type, question_content, templ_values, question_deleted, anser (sic). `type` and `templ_values` are
JSON-encoded strings and are parsed as JSON (never eval'd). Placeholders in the template are filled in order
from templ_values; the template quirks (a full-width '？', trailing spaces) are normalised in the filled
question, while `template` keeps the file's string.

question_deleted: every record of json_update's val and test files has 0 (the 9,129 test questions of the
published per-type counts are all of them), so the flag only matters for other releases; a record with a
non-zero flag was withdrawn by the dataset authors and is dropped with a warning giving the count.

Duplicates: the original release repeats some question_ids with different answers (55 in its test file). Such an
id cannot be scored, so it is an error unless `drop_conflicting_duplicates` (config
`music_avqa.drop_conflicting_duplicates: true`) drops all its records. Exact repeats keep their first record.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
from collections import defaultdict
from pathlib import Path

import pandas as pd

from avqa.atomic import atomic_path
from avqa.data.vocab import ANSWER_TO_IDX, PLACEHOLDERS, QUESTION_TYPES, TYPE_KEY
from avqa.errors import UserError

logger = logging.getLogger(__name__)

KEYS = ("video_id", "question_id", "type", "question_content", "templ_values", "question_deleted", "anser")
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


def _question_id(raw) -> int:
    # ints in every release; a digit string is accepted, a float or bool would silently collide with another id
    if isinstance(raw, bool) or not isinstance(raw, (int, str)) or not str(raw).isdigit():
        raise ValueError(f"question_id {raw!r} is not a non-negative integer")
    return int(raw)


def parse_record(record: dict) -> dict:
    """One record -> one row (raises ValueError saying what is wrong; the caller adds file and record)."""
    if not isinstance(record, dict):
        raise ValueError(f"expected an object, got {type(record).__name__}")
    missing = [k for k in KEYS if k not in record]
    if missing:
        raise ValueError(f"missing key(s) {missing}")
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
        "question_id": _question_id(record["question_id"]),
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
            f"(or pass --drop-conflicting-duplicates) to drop all their records")
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


def load_annotations(path: str | Path, drop_conflicting_duplicates: bool = False) -> pd.DataFrame:
    """A MUSIC-AVQA JSON file as a DataFrame with the columns of results/annotations/{split}.parquet.

    Raises AnnotationError naming the file, and the record (index, question_id) where one is at fault.
    """
    path = Path(path)
    rows = []
    deleted = 0
    for index, record in enumerate(_read_json(path)):
        qid = record.get("question_id", "?") if isinstance(record, dict) else "?"
        try:
            if isinstance(record, dict) and record.get("question_deleted", 0) not in (0, "0"):
                deleted += 1
                continue
            rows.append(parse_record(record))
        except (ValueError, TypeError) as err:
            raise AnnotationError(f"{path}: record {index} (question_id {qid}): {err}") from err
    if deleted:
        logger.warning("%s: %d record(s) marked question_deleted dropped", path, deleted)
    rows = _resolve_duplicates(rows, path, drop_conflicting_duplicates)
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return table.astype({"question_id": "int64", "answer_idx": "int64"})


def _cli(args: argparse.Namespace) -> None:
    table = load_annotations(args.json, drop_conflicting_duplicates=args.drop_conflicting_duplicates)
    counts = table["type_key"].value_counts()
    logger.info("%s (%s): %d questions, %d videos; per type: %s", args.json, args.split, len(table),
                table["video_id"].nunique(), {k: int(counts.get(k, 0)) for _, _, k in QUESTION_TYPES})
    with atomic_path(args.out) as tmp:
        table.to_parquet(tmp, index=False)


def register(subparsers) -> None:
    parser = subparsers.add_parser("annotations", help="MUSIC-AVQA JSON -> results/annotations/{split}.parquet")
    parser.add_argument("--json", required=True, help="a MUSIC-AVQA annotation file (avqa-{split}.json)")
    parser.add_argument("--split", required=True, help="split name, for the log")
    parser.add_argument("--out", required=True, help="output parquet")
    parser.add_argument("--drop-conflicting-duplicates", action="store_true",
                        help="drop question_ids that appear more than once with different answers")
    parser.set_defaults(func=_cli)
