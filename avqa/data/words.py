"""Question-word vocabulary of the train split, and questions as padded word-id arrays (AVST's question input).

AVST (Li et al., CVPR 2022) encodes the question with word embeddings and an LSTM over a vocabulary built from
the train split. Its dataloader (GeWu-Lab/MUSIC-AVQA, net_grd_avst/dataloader_avst.py) tokenises each record as:
template right-stripped, split on ' ', the last character of the last word dropped (the '?'), every word holding
a placeholder replaced by the next templ_value; the case is kept ("Is" and "is" are two words), and the
vocabulary lists the words in order of first appearance over the train file with '<pad>' at 0.

Here the input is the filled question of results/annotations/{split}.parquet (placeholders already filled, '？'
normalised to '?', stripped; avqa.data.annotations), and `question_words` splits it on whitespace after removing
the final '?'. On every record of the released val and test files this gives exactly the public rule's words
(tests/test_words.py checks it): no templ_value holds a space and every question ends with '?'. Differences:
id 1 is an unknown word ('<unk>', for words never seen in train; the public code would fail on them), and a
question without a final '?' keeps its last character (the public code drops it whatever it is).

Files: the vocabulary is a JSON object word -> id, ids 0..n-1 in order ('<pad>': 0, '<unk>': 1, then the train
words by first appearance), written atomically; the same questions give the same bytes.

CLI: `python -m avqa words --annotations results/annotations/train.parquet --out results/annotations/words.json`
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from avqa.atomic import write_text_atomic

logger = logging.getLogger(__name__)

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1


def question_words(question: str) -> list[str]:
    """The words of a filled question: its final '?' removed, split on whitespace, case kept (AVST's rule)."""
    text = question.strip()
    if text.endswith("?"):
        text = text[:-1]
    return text.split()


def build_vocabulary(questions: Iterable[str]) -> dict[str, int]:
    """{word: id} over `questions`: '<pad>' 0, '<unk>' 1, then every word in order of first appearance."""
    vocab = {PAD: PAD_ID, UNK: UNK_ID}
    for question in questions:
        for word in question_words(question):
            vocab.setdefault(word, len(vocab))
    return vocab


def check_vocabulary(vocab: dict, source: str = "vocabulary") -> dict[str, int]:
    """`vocab` if it is a valid word -> id map (ids 0..n-1, each once, '<pad>' 0 and '<unk>' 1), else ValueError."""
    if not isinstance(vocab, dict) or not vocab:
        raise ValueError(f"{source}: expected a non-empty JSON object word -> id")
    bad = [w for w, i in vocab.items() if not isinstance(w, str) or isinstance(i, bool) or not isinstance(i, int)]
    if bad:
        raise ValueError(f"{source}: ids must be integers, words strings; offending entries: {bad[:5]}")
    if vocab.get(PAD) != PAD_ID or vocab.get(UNK) != UNK_ID:
        raise ValueError(f"{source}: '{PAD}' must have id {PAD_ID} and '{UNK}' id {UNK_ID}, "
                         f"got {vocab.get(PAD)!r} and {vocab.get(UNK)!r}")
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise ValueError(f"{source}: ids must be 0..{len(vocab) - 1}, each exactly once")
    return vocab


def encode_questions(questions: Sequence[str], vocab: dict[str, int], length: int | None = None) -> np.ndarray:
    """(N, length) int64 word ids, padded with 0 at the end; unknown words are 1.

    length None: the longest question's word count. A question longer than `length`, or without any word, is
    a ValueError naming it (no silent truncation).
    """
    encoded = [[vocab.get(w, UNK_ID) for w in question_words(q)] for q in questions]
    for i, ids in enumerate(encoded):
        if not ids:
            raise ValueError(f"question {i} ({questions[i]!r}) has no words")
    longest = max((len(ids) for ids in encoded), default=0)
    length = longest if length is None else int(length)
    if longest > length:
        i = next(i for i, ids in enumerate(encoded) if len(ids) > length)
        raise ValueError(f"question {i} ({questions[i]!r}) has {len(encoded[i])} words, more than length={length}")
    out = np.full((len(encoded), length), PAD_ID, dtype=np.int64)
    for i, ids in enumerate(encoded):
        out[i, :len(ids)] = ids
    return out


def unknown_rate(questions: Iterable[str], vocab: dict[str, int]) -> float:
    """Fraction of the words of `questions` that are not in `vocab` (would be encoded as '<unk>')."""
    words = [w for q in questions for w in question_words(q)]
    return sum(w not in vocab for w in words) / max(len(words), 1)


def vocabulary_json(vocab: dict[str, int]) -> str:
    """The file text: one object in id order (stable bytes for the same vocabulary)."""
    ordered = dict(sorted(check_vocabulary(vocab).items(), key=lambda item: item[1]))
    return json.dumps(ordered, ensure_ascii=False, indent=0) + "\n"


def write_vocabulary(path: str | Path, vocab: dict[str, int]) -> None:
    write_text_atomic(path, vocabulary_json(vocab))


def read_vocabulary(path: str | Path) -> dict[str, int]:
    path = Path(path)
    try:
        vocab = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    return check_vocabulary(vocab, str(path))


def _cli(args: argparse.Namespace) -> None:
    import pandas as pd

    table = pd.read_parquet(args.annotations)
    if "question" not in table.columns:
        raise SystemExit(f"words: {args.annotations} has no 'question' column (columns: {list(table.columns)})")
    questions = table["question"].astype(str).tolist()
    vocab = build_vocabulary(questions)
    longest = max((len(question_words(q)) for q in questions), default=0)
    logger.info("%s: %d questions, %d words + <pad>, <unk>; longest question %d words", args.annotations,
                len(questions), len(vocab) - 2, longest)
    write_vocabulary(args.out, vocab)


def register(subparsers) -> None:
    parser = subparsers.add_parser("words", help="question-word vocabulary of the train split (AVST's LSTM input)")
    parser.add_argument("--annotations", required=True, help="the train split's parquet (column 'question')")
    parser.add_argument("--out", required=True, help="output JSON word -> id (e.g. results/annotations/words.json)")
    parser.set_defaults(func=_cli)
