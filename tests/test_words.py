"""avqa.data.words: AVST's question-word vocabulary on the real annotation files (val standing in for train),
the public tokenisation rule, padding, determinism, file checks and the CLI."""
from __future__ import annotations

import argparse
import ast
import json
import logging

import numpy as np
import pandas as pd
import pytest

from avqa.data.annotations import load_annotations
from avqa.data.words import (PAD_ID, UNK_ID, build_vocabulary, encode_questions, question_words, read_vocabulary,
                             register, unknown_rate, vocabulary_json, write_vocabulary)
from conftest import MUSIC_AVQA_DIR

SHARED = MUSIC_AVQA_DIR


@pytest.fixture(scope="module")
def real():
    """Questions of the released val ("train" here: the train file is not shipped) and test splits."""
    if not (SHARED / "avqa-val.json").exists() or not (SHARED / "avqa-test.json").exists():
        pytest.skip(f"real MUSIC-AVQA annotations absent from {SHARED}")
    return {split: load_annotations(SHARED / f"avqa-{split}.json")["question"].tolist() for split in ("val", "test")}


def public_rule_words(record: dict) -> list[str]:
    """The tokenisation of GeWu-Lab/MUSIC-AVQA net_grd_avst/dataloader_avst.py, written out for the comparison."""
    words = record["question_content"].rstrip().split(" ")
    words[-1] = words[-1][:-1]
    values = iter(ast.literal_eval(record["templ_values"]))
    return [next(values) if "<" in w else w for w in words]


# --- the real files -----------------------------------------------------------------------------------------
def test_real_vocabulary_size_and_unknown_rate(real):
    vocab = build_vocabulary(real["val"])
    # 90 distinct words in val (the public code's train vocabulary has 92 words + '<pad>' = 93 entries).
    assert len(vocab) == 92
    assert list(vocab)[:4] == ["<pad>", "<unk>", "Is", "the"]
    assert "Is" in vocab and "is" in vocab  # case kept, as the public code
    # Test words never seen in val: 'fourth' and 'fifth' (5 occurrences among 78,415 words).
    assert sorted(w for q in real["test"] for w in question_words(q) if w not in vocab) == \
        ["fifth", "fifth", "fourth", "fourth", "fourth"]
    assert unknown_rate(real["test"], vocab) == pytest.approx(5 / 78415)


def test_real_tokenisation_equals_the_public_rule():
    if not (SHARED / "avqa-test.json").exists():
        pytest.skip(f"real MUSIC-AVQA annotations absent from {SHARED}")
    for split in ("val", "test"):
        records = json.loads((SHARED / f"avqa-{split}.json").read_text())
        table = load_annotations(SHARED / f"avqa-{split}.json").set_index("question_id")
        for record in records:
            assert question_words(table.loc[record["question_id"], "question"]) == public_rule_words(record), record


def test_real_encoding_pads_to_the_longest_question(real):
    vocab = build_vocabulary(real["val"])
    ids = encode_questions(real["test"], vocab)
    assert ids.dtype == np.int64 and ids.shape == (len(real["test"]), 14)
    lengths = np.array([len(question_words(q)) for q in real["test"]])
    assert ((ids != PAD_ID).sum(1) == lengths).all()
    assert (ids[np.arange(ids.shape[1])[None] >= lengths[:, None]] == PAD_ID).all()  # padding only at the end
    assert int((ids == UNK_ID).sum()) == 5


def test_same_questions_give_the_same_bytes(real, tmp_path):
    write_vocabulary(tmp_path / "a.json", build_vocabulary(real["val"]))
    write_vocabulary(tmp_path / "b.json", build_vocabulary(list(real["val"])))
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert read_vocabulary(tmp_path / "a.json") == build_vocabulary(real["val"])


# --- rules ------------------------------------------------------------------------------------------------------
def test_words_first_appearance_order_and_question_mark():
    assert question_words("Is the piano louder than the cello?") == ["Is", "the", "piano", "louder", "than", "the",
                                                                    "cello"]
    assert question_words("no mark at the end") == ["no", "mark", "at", "the", "end"]
    vocab = build_vocabulary(["Is the cello here?", "Where is the cello?"])
    assert vocab == {"<pad>": 0, "<unk>": 1, "Is": 2, "the": 3, "cello": 4, "here": 5, "Where": 6, "is": 7}


def test_encode_pads_with_zero_and_marks_unknown_words():
    vocab = build_vocabulary(["a b c?", "a?"])
    ids = encode_questions(["a b?", "c d a?"], vocab)
    assert ids.tolist() == [[2, 3, 0], [4, UNK_ID, 2]]
    assert encode_questions(["a?"], vocab, length=4).tolist() == [[2, 0, 0, 0]]
    with pytest.raises(ValueError, match=r"question 1 .* 3 words, more than length=2"):
        encode_questions(["a?", "a b c?"], vocab, length=2)
    with pytest.raises(ValueError, match="has no words"):
        encode_questions(["a?", " ?"], vocab)


def test_vocabulary_file_errors(tmp_path):
    path = tmp_path / "words.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=f"{path}: not valid JSON"):
        read_vocabulary(path)
    path.write_text(json.dumps({"<unk>": 0, "<pad>": 1, "a": 2}))
    with pytest.raises(ValueError, match="'<pad>' must have id 0"):
        read_vocabulary(path)
    path.write_text(json.dumps({"<pad>": 0, "<unk>": 1, "a": 3}))
    with pytest.raises(ValueError, match="ids must be 0..2"):
        read_vocabulary(path)
    with pytest.raises(ValueError, match="ids must be 0..3"):
        vocabulary_json({"<pad>": 0, "<unk>": 1, "a": 2, "b": 2})


def test_cli_writes_the_train_vocabulary(tmp_path, caplog):
    annotations = tmp_path / "train.parquet"
    pd.DataFrame({"question": ["Is the cello here?", "Where is the flute?"]}).to_parquet(annotations)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    out = tmp_path / "annotations" / "words.json"
    args = parser.parse_args(["words", "--annotations", str(annotations), "--out", str(out)])
    with caplog.at_level(logging.INFO):
        args.func(args)
    assert read_vocabulary(out) == build_vocabulary(["Is the cello here?", "Where is the flute?"])
    assert "7 words" in caplog.text and "longest question 4 words" in caplog.text
    pd.DataFrame({"text": ["x?"]}).to_parquet(annotations)
    with pytest.raises(SystemExit, match="no 'question' column"):
        args.func(args)
