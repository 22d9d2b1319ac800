"""Question text features: CLIP-RN50 sentence/tokens, masks, target-word spans, the `questions` CLI."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from avqa import cli
from avqa import store
from avqa.features import encoders
from avqa.features import questions as T
from avqa.specs.features import QuestionsSpec
from conftest import MUSIC_AVQA_DIR

MUSIC_AVQA = MUSIC_AVQA_DIR
QUESTIONS = [
    "Is the acoustic_guitar louder than the piano?",
    "How many musical instruments were heard throughout the video?",
    "What is the instrument on the left of the cello？",
    "Is the violin playing longer than the violin?",
    "Are there ukulele and pipa sound? ",
]
TARGETS = ["acoustic_guitar", None, "cello", "violin", "ukulele"]


@pytest.fixture(scope="module")
def clip():
    return encoders.load_clip("random", seed=0, device="cpu")


@pytest.fixture(scope="module")
def tokenizer():
    import open_clip

    return open_clip.get_tokenizer(encoders.CLIP_ARCH)


@pytest.fixture(scope="module")
def encoded(clip, tokenizer):
    return T.encode_questions(clip, tokenizer, QUESTIONS, TARGETS, batch=2, device="cpu")


def test_first_object_follows_placeholder_order():
    assert T.first_object("What is the instrument on the <LR> of <Object>?", '["left", "electric_bass"]') \
        == "electric_bass"
    assert T.first_object("Is the <Object> louder than the <Object>?", '["guzheng", "piano"]') == "guzheng"
    assert T.first_object("How many musical instruments were heard throughout the video?", "[]") is None
    with pytest.raises(ValueError, match="q.parquet: question_id 7: template .* 2 placeholders"):
        T.first_object("Is the <Object> louder than the <Object>?", '["piano"]', "q.parquet: question_id 7")


def test_shapes_dtypes_and_token_mask(encoded, tokenizer):
    lengths = [len(tokenizer.encode(q)) + 2 for q in QUESTIONS]  # + SOT and EOT
    n, n_ctx = len(QUESTIONS), max(lengths)
    assert encoded["sentence"].shape == (n, 1024) and encoded["sentence"].dtype == np.float32
    assert encoded["tokens"].shape == (n, n_ctx, 512) and encoded["tokens"].dtype == np.float16
    assert encoded["token_mask"].dtype == bool and encoded["target_mask"].dtype == bool
    assert encoded["token_mask"].sum(axis=1).tolist() == lengths
    assert np.all(encoded["tokens"][~encoded["token_mask"]] == 0)
    assert np.all(np.abs(encoded["tokens"][encoded["token_mask"]]).sum(axis=-1) > 0)


def test_target_mask_marks_the_target_word_tokens(encoded, tokenizer):
    ids = T.tokenize(tokenizer, QUESTIONS)
    word = tokenizer.encode("acoustic_guitar")
    assert len(word) == 3  # acoustic _ guitar
    assert np.flatnonzero(encoded["target_mask"][0]).tolist() == [3, 4, 5]  # after SOT, "is", "the"
    assert ids[0, 3:6].tolist() == word
    assert not encoded["target_mask"][1].any()  # no <Object> in the question
    assert ids[2][encoded["target_mask"][2]].tolist() == tokenizer.encode("cello")
    # a word named twice: only its first occurrence
    assert np.flatnonzero(encoded["target_mask"][3]).tolist() == [3]
    assert not (encoded["target_mask"] & ~encoded["token_mask"]).any()


def test_cut_context_equals_full_77(clip, tokenizer, encoded):
    full = T.encode_questions(clip, tokenizer, QUESTIONS, TARGETS, batch=8, device="cpu", context_length=77)
    n_ctx = encoded["tokens"].shape[1]
    assert full["tokens"].shape[1] == 77 and n_ctx < 77
    np.testing.assert_allclose(encoded["tokens"], full["tokens"][:, :n_ctx], rtol=1e-2, atol=1e-3)
    np.testing.assert_allclose(encoded["sentence"], full["sentence"], rtol=1e-4, atol=1e-5)
    assert np.array_equal(encoded["target_mask"], full["target_mask"][:, :n_ctx])
    with torch.inference_mode():  # and CLIP's own encode_text on the full context
        reference = clip.encode_text(tokenizer(QUESTIONS)).numpy()
    np.testing.assert_allclose(encoded["sentence"], reference, rtol=1e-4, atol=1e-5)


def test_deterministic_and_batch_independent(clip, tokenizer, encoded):
    again = T.encode_questions(clip, tokenizer, QUESTIONS, TARGETS, batch=2, device="cpu")
    for name, value in encoded.items():
        assert np.array_equal(again[name], value), name
    one_batch = T.encode_questions(clip, tokenizer, QUESTIONS, TARGETS, batch=5, device="cpu")
    np.testing.assert_allclose(one_batch["sentence"], encoded["sentence"], rtol=1e-4, atol=1e-5)


def test_bad_inputs(clip, tokenizer):
    with pytest.raises(ValueError, match="2 questions and 1 target words"):
        T.encode_questions(clip, tokenizer, QUESTIONS[:2], TARGETS[:1], 2, "cpu")


def write_annotations(path: Path, rows: list[tuple[int, str, str]]) -> None:
    """Minimal annotation parquet: question_id, template, templ_values (question filled from them)."""
    records = []
    for qid, template, values in rows:
        fill = iter(json.loads(values))
        question = re.sub(r"<[A-Za-z]+>", lambda _: next(fill), template)
        records.append({"question_id": qid, "video_id": "v", "question": question,
                        "template": template, "templ_values": values})
    pd.DataFrame(records).to_parquet(path)


def spec_json(batch: int) -> str:
    return QuestionsSpec(weights="random", weights_seed=0, device="cpu", batch=batch).to_json()


def test_cli_writes_sorted_store(tmp_path, capsys):
    write_annotations(tmp_path / "train.parquet", [
        (30, "What is the instrument on the <LR> of <Object>?", '["left", "acoustic_guitar"]'),
        (10, "How many musical instruments were heard throughout the video?", "[]"),
    ])
    write_annotations(tmp_path / "test.parquet", [(20, "Is there a <Object> sound?", '["flute"]')])
    out = tmp_path / "features" / "questions.zarr"
    assert cli.main(["questions", "--annotations", str(tmp_path / "train.parquet"), str(tmp_path / "test.parquet"),
                     "--out", str(out), "--spec", spec_json(batch=2)]) == 0
    group = store.open_read(out)
    assert group["question_id"][:].tolist() == [10, 20, 30]
    n_ctx = group.attrs["context_length"]
    assert group["tokens"].shape == (3, n_ctx, 512) and group["tokens"].dtype == np.float16
    assert group["sentence"].shape == (3, 1024)
    assert group["target_mask"][:].any(axis=1).tolist() == [False, True, True]
    assert group.attrs["weights"] == "random" and group.attrs["n_with_target"] == 2
    assert "3 questions" in capsys.readouterr().out
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_repeated_questions_are_encoded_once_and_get_the_same_features(tmp_path, clip, tokenizer, caplog):
    rows = [(1, "Is there a <Object> sound?", '["flute"]'), (2, "Is there a <Object> sound?", '["drum"]'),
            (3, "Is there a <Object> sound?", '["flute"]'), (4, "How many musical instruments were heard "
                                                               "throughout the video?", "[]"),
            (5, "Is there a <Object> sound?", '["flute"]')]
    write_annotations(tmp_path / "train.parquet", rows)
    out = tmp_path / "questions.zarr"
    with caplog.at_level("INFO", logger="avqa.features.questions"):
        assert cli.main(["questions", "--annotations", str(tmp_path / "train.parquet"), "--out", str(out),
                         "--spec", spec_json(batch=2)]) == 0
    assert "5 questions, 3 distinct" in caplog.text
    group = store.open_read(out)
    sentence, tokens = group["sentence"][:], group["tokens"][:]
    for a, b in [(0, 2), (0, 4)]:                       # the same question: identical rows
        assert np.array_equal(sentence[a], sentence[b]) and np.array_equal(tokens[a], tokens[b])
    assert not np.allclose(sentence[0], sentence[1])
    alone = T.encode_questions(clip, tokenizer, ["Is there a drum sound?"], ["drum"], batch=1, device="cpu",
                               context_length=group.attrs["context_length"])
    np.testing.assert_allclose(sentence[1], alone["sentence"][0], rtol=1e-4, atol=1e-5)  # batch-size rounding
    assert group["target_mask"][:].any(axis=1).tolist() == [True, True, True, False, True]


def test_missing_column_names_the_file(tmp_path):
    pd.DataFrame({"question_id": [1], "question": ["Is it?"]}).to_parquet(tmp_path / "a.parquet")
    with pytest.raises(ValueError, match=r"a.parquet: missing columns \['template', 'templ_values'\]"):
        T.read_questions([str(tmp_path / "a.parquet")])


@pytest.mark.skipif(not (MUSIC_AVQA / "avqa-val.json").exists(), reason="real MUSIC-AVQA annotations absent")
def test_every_real_target_word_is_found(tokenizer):
    records = json.loads((MUSIC_AVQA / "avqa-val.json").read_text())
    questions, targets = [], []
    for r in records:
        fill = iter(json.loads(r["templ_values"]))
        questions.append(re.sub(r"<[A-Za-z]+>", lambda _: next(fill), r["question_content"]))
        targets.append(T.first_object(r["question_content"], r["templ_values"], f"question_id {r['question_id']}"))
    masks = T.target_masks(T.tokenize(tokenizer, questions), tokenizer, targets)
    assert masks.any(axis=1).tolist() == [t is not None for t in targets]
