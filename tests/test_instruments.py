"""Per-video instrument labels (avqa.data.instruments): exact labels from a hand-made scenes.json, the evidence
rules on hand-made annotation records, the derivation on the real MUSIC-AVQA files, the multi-hot order, L_source's
targets and masks (source_targets), the CLI."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from avqa.data import instruments as labels
from avqa.data.instruments import (RULES, InstrumentLabelError, canonical_template, instrument_labels,
                                   instrument_name, labels_from_annotations, labels_from_scenes, multi_hot,
                                   read_labels, register, source_targets)
from avqa.vocab import INSTRUMENTS, TEMPLATES
from conftest import MUSIC_AVQA_DIR

SHARED = MUSIC_AVQA_DIR
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason=f"real MUSIC-AVQA annotations not present at {SHARED}")
TYPE_OF = {t: gt for gt, group in TEMPLATES.items() for t in group}


# --- synthetic: exact labels from scenes.json ------------------------------------------------------------------
def source(instrument, sounding, **extra):
    return {"instrument": instrument, "sounding": sounding, "loudness_db": 0.0, "rhythm": "rhythmic",
            "pitch_hz": 440.0, **extra}


def scenes_document():
    return {"meta": {"seed": 0, "seconds": 4}, "videos": {
        "syn00001": {"video_id": "syn00001", "voiceover": True, "voiceover_sounding": [1, 1, 0, 0],
                     "objects": [source("violin", [0, 0, 0, 0], position="left"),     # seen, never heard
                                 source("piano", [0, 0, 1, 1], position="middle"),
                                 source("piano", [0, 0, 0, 0], position="right")],
                     "offscreen": [source("flute", [1, 1, 0, 0])]},                 # heard, never seen
        "syn00002": {"video_id": "syn00002", "voiceover": False, "voiceover_sounding": [0, 0, 0, 0],
                     "objects": [source("tuba", [1, 1, 1, 1], position="right"),
                                 source("acoustic_guitar", [0, 1, 0, 0], position="left")],
                     "offscreen": []},
        "syn00003": {"video_id": "syn00003", "voiceover": True, "voiceover_sounding": [1, 1, 1, 1],
                     "objects": [source("cello", [0, 0, 0, 0], position="middle")], "offscreen": []},
    }}


def write_json(path: Path, document) -> Path:
    path.write_text(json.dumps(document))
    return path


def test_scene_labels_are_exact(tmp_path):
    table = labels_from_scenes(write_json(tmp_path / "scenes.json", scenes_document()))
    assert list(table.columns) == ["video_id", "audio", "visual", "source"]
    rows = table.set_index("video_id")
    assert rows.loc["syn00001", "visual"] == ["piano", "violin"]          # INSTRUMENTS order, duplicates once
    assert rows.loc["syn00001", "audio"] == ["flute", "piano"]            # offscreen heard; silent violin not
    assert rows.loc["syn00002", "visual"] == ["acoustic_guitar", "tuba"]
    assert rows.loc["syn00002", "audio"] == ["acoustic_guitar", "tuba"]   # one sounding second is enough
    assert rows.loc["syn00003", "audio"] == [] and rows.loc["syn00003", "visual"] == ["cello"]  # voiceover only
    assert set(table["source"]) == {"scenes"}


@pytest.mark.parametrize("breakage,message", [
    (lambda d: d["videos"]["syn00001"]["objects"][0].update(instrument="harp"), "syn00001.*'harp'"),
    (lambda d: d["videos"]["syn00002"].pop("offscreen"), "syn00002.*offscreen"),
    (lambda d: d["videos"]["syn00002"]["objects"][0].update(sounding=[2, 0, 0, 0]), "syn00002.*sounding"),
    (lambda d: d.pop("videos"), "'videos' mapping"),
])
def test_bad_scenes_name_file_and_video(tmp_path, breakage, message):
    document = scenes_document()
    breakage(document)
    path = write_json(tmp_path / "scenes.json", document)
    with pytest.raises(InstrumentLabelError, match=message):
        labels_from_scenes(path)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(InstrumentLabelError, match="broken.json: malformed JSON"):
        labels_from_scenes(tmp_path / "broken.json")


# --- MUSIC-AVQA: the evidence rules -----------------------------------------------------------------------------
def record(video, template, values, answer, qid):
    return {"video_id": video, "question_id": qid, "type": json.dumps(list(TYPE_OF[template])),
            "question_content": template, "templ_values": json.dumps(values), "question_deleted": 0, "anser": answer}


def derive(tmp_path, questions, **options):
    records = [record(v, t, vals, a, i) for i, (v, t, vals, a) in enumerate(questions)]
    path = write_json(tmp_path / "avqa-test.json", records)
    table, derivation = labels_from_annotations([path], **options)
    return table.set_index("video_id"), derivation


def test_positive_evidence_only(tmp_path):
    rows, _ = derive(tmp_path, [
        ("v1", "Is there a <Object> sound?", ["piano"], "yes"),
        ("v1", "Is there a <Object> sound?", ["violin"], "no"),                          # absent: no label
        ("v2", "Are there <Object> and <Object> sound? ", ["flute", "cello"], "no"),     # which one? no label
        ("v3", "How many <Object> are in the entire video?", ["tuba"], "zero"),
        ("v3", "How many <Object> are in the entire video?", ["drum"], "two"),
        ("v4", "How many musical instruments were heard throughout the video?", [], "two"),
    ], split_modalities=True)
    assert rows.loc["v1", "audio"] == ["piano"] and rows.loc["v1", "visual"] == []
    assert rows.loc["v2", "audio"] == [] and rows.loc["v2", "visual"] == []
    assert rows.loc["v3", "visual"] == ["drum"] and rows.loc["v3", "audio"] == []
    assert rows.loc["v4", "audio"] == rows.loc["v4", "visual"] == []                 # every video gets a row


def test_templates_imply_their_modality(tmp_path):
    rows, _ = derive(tmp_path, [
        ("a", "Is the <Object> louder than the <Object>?", ["piano", "cello"], "no"),    # presupposed, any answer
        ("v", "What kind of musical instrument is it?", [], "xylophone"),
        ("v", "What is the instrument on the <LR> of <Object>?", ["left", "violin"], "erhu"),
        ("e", "Is the <Object> in the video always playing?", ["flute"], "no"),          # seen, maybe never heard
        ("e", "Is the <Object> in the video always playing?", ["tuba"], "yes"),          # seen and heard
        ("t", "Which instrument makes sounds <BA> the <Object>?", ["before", "banjo"], "suona"),
        ("c", "Is the <Object> on the <LR> louder than the <Object> on the <LR>?",
         ["violin", "left", "cello", "right"], "yes"),
    ], split_modalities=True)
    assert rows.loc["a", "audio"] == ["cello", "piano"] and rows.loc["a", "visual"] == []
    assert rows.loc["v", "visual"] == ["erhu", "violin", "xylophone"] and rows.loc["v", "audio"] == []
    assert rows.loc["e", "visual"] == ["flute", "tuba"] and rows.loc["e", "audio"] == ["tuba"]
    assert rows.loc["t", "audio"] == ["banjo", "suona"] and rows.loc["t", "visual"] == []
    assert rows.loc["c", "audio"] == rows.loc["c", "visual"] == ["cello", "violin"]


def test_default_gives_both_modalities_the_union(tmp_path):
    questions = [("x", "Is there a <Object> sound?", ["piano"], "yes"),
                 ("x", "Is there a <Object> in the entire video?", ["guzheng"], "yes")]
    rows, _ = derive(tmp_path, questions)
    assert rows.loc["x", "audio"] == rows.loc["x", "visual"] == ["guzheng", "piano"]


def test_explicit_negative_vetoes_a_contradicting_positive(tmp_path):
    rows, derivation = derive(tmp_path, [
        ("x", "Is the <Object> louder than the <Object>?", ["piano", "cello"], "yes"),
        ("x", "Is there a <Object> sound?", ["cello"], "no"),
    ], split_modalities=True)
    assert rows.loc["x", "audio"] == ["piano"]
    assert labels.derivation_report(derivation)["vetoed"] == {"audio": 1, "visual": 0}


def test_unmapped_words_are_counted_and_spelling_variants_mapped(tmp_path, caplog):
    assert instrument_name("Acoustic Guitar") == "acoustic_guitar" == instrument_name("acoustic-guitar")
    assert instrument_name("harp") is None and instrument_name("left") is None
    with caplog.at_level(logging.WARNING, logger="avqa.data.instruments"):
        rows, derivation = derive(tmp_path, [("x", "Is there a <Object> sound?", ["harp"], "yes"),
                                             ("x", "Is there a <Object> sound?", ["Electric Bass"], "yes")])
    assert rows.loc["x", "audio"] == ["electric_bass"]
    assert labels.derivation_report(derivation)["unmapped"] == ["harp"]
    assert "'harp'" in caplog.text


def test_unknown_template_is_an_error_naming_file_and_question(tmp_path):
    bad = record("x", "Is there a <Object> sound?", ["piano"], "yes", 7)
    bad["question_content"] = "Is there a <Object> noise?"
    path = write_json(tmp_path / "avqa-val.json", [bad])
    with pytest.raises(InstrumentLabelError, match=r"avqa-val.json: question_id 7: template"):
        labels_from_annotations([path])


def test_rules_cover_exactly_the_templates_that_name_instruments():
    assert all(canonical_template(t) == t for t in RULES)
    quirk = "How many sounding <Object> in the video？"
    assert canonical_template("How many sounding <Object> in the video?") == quirk
    naming = {t for group in TEMPLATES.values() for t in group if "<Object>" in t or "instrument" in t.lower()}
    # templates naming an instrument (an <Object> slot or an instrument answer) that give no positive evidence
    assert naming - set(RULES) == {
        "How many musical instruments were heard throughout the video?",
        "How many types of musical instruments appeared in the entire video?",
        "Is this sound from the instrument in the video?", "Where is the <LL> instrument?",
        "Is the <FL> sound coming from the <LR> instrument?", "How many instruments are sounding in the video?",
        "How many instruments in the video did not sound from beginning to end?",
        "How many types of musical instruments sound in the video?",
        "Is the instrument on the <LR> louder than the instrument on the <LR>?",
        "Is the instrument on the <LR> more rhythmic than the instrument on the <LR>?",
        "Where is the <FL> sounding instrument?"}


# --- MUSIC-AVQA: the real files ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real():
    if not SHARED.exists():
        pytest.skip(f"real MUSIC-AVQA annotations not present at {SHARED}")
    return {split: labels_from_annotations([SHARED / f"avqa-{split}.json"], split_modalities=True)
            for split in ("val", "test")}


@needs_shared
@pytest.mark.parametrize("split,videos,labelled,with_audio,with_visual", [
    ("val", 3815, 2250, 1491, 1451), ("test", 6399, 4132, 2854, 2770)])
def test_real_coverage(real, split, videos, labelled, with_audio, with_visual):
    table, derivation = real[split]
    numbers = labels.coverage(table)
    print(f"\n{split}: {numbers}")
    assert numbers["videos"] == videos and numbers["with_any"] == labelled
    assert numbers["with_audio"] == with_audio and numbers["with_visual"] == with_visual
    assert 1.3 < numbers["mean_any_labelled"] < 1.7
    assert labels.derivation_report(derivation) == {"unmapped_words": 0, "unmapped": [],
                                                    "vetoed": {"audio": 0, "visual": 0}}
    union = labels_from_annotations([SHARED / f"avqa-{split}.json"])[0]
    assert (union["audio"] == union["visual"]).all()
    assert labels.coverage(union)["with_audio"] == labelled


@needs_shared
def test_real_val_and_test_share_videos_and_one_contradiction():
    table, derivation = labels_from_annotations([SHARED / "avqa-val.json", SHARED / "avqa-test.json"],
                                                split_modalities=True)
    assert len(table) == 3815 + 6399 - 2296 and table["video_id"].is_unique
    assert labels.derivation_report(derivation)["vetoed"] == {"audio": 1, "visual": 0}
    rows = table.set_index("video_id")
    # "Is there a banjo sound?" -> no, against "Is the violin on the right louder than the banjo on the left?"
    assert "banjo" not in rows.loc["00008152", "audio"] and "banjo" in rows.loc["00008152", "visual"]
    # "Is there an erhu sound?" -> no and "Are there erhu and piano instruments in the video?" -> yes
    assert "erhu" in rows.loc["00002054", "visual"] and "erhu" not in rows.loc["00002054", "audio"]


# --- the table, its arrays and the CLI -----------------------------------------------------------------------------
def test_multi_hot_follows_the_instruments_order(tmp_path):
    table = labels_from_scenes(write_json(tmp_path / "scenes.json", scenes_document()))
    audio, visual = multi_hot(table, ["syn00002", "syn00001"])
    assert audio.shape == visual.shape == (2, 22) and audio.dtype == np.float32
    index = {name: i for i, name in enumerate(INSTRUMENTS)}
    assert INSTRUMENTS[:3] == ("accordion", "acoustic_guitar", "bagpipe") and index["violin"] == 20
    assert np.flatnonzero(audio[0]).tolist() == [index["acoustic_guitar"], index["tuba"]]
    assert np.flatnonzero(visual[1]).tolist() == [index["piano"], index["violin"]]
    assert np.flatnonzero(audio[1]).tolist() == [index["flute"], index["piano"]]
    with pytest.raises(KeyError, match="syn00009"):
        multi_hot(table, ["syn00001", "syn00009"])


def test_source_targets_mask_videos_without_a_row_or_without_positive_evidence(tmp_path):
    rows, _ = derive(tmp_path, [
        ("heard", "Is there a <Object> sound?", ["piano"], "yes"),                # audio evidence only
        ("denied", "Is there a <Object> sound?", ["violin"], "no"),               # a named instrument, but "no"
        ("counted", "How many musical instruments were heard throughout the video?", [], "two"),  # none named
    ], split_modalities=True)
    table = rows.reset_index()
    targets = source_targets(table, ["counted", "heard", "unseen", "denied"])
    assert sorted(targets) == ["sources_audio", "sources_mask_audio", "sources_mask_visual", "sources_visual"]
    assert targets["sources_audio"].shape == (4, 22) and targets["sources_mask_audio"].dtype == np.float32
    assert targets["sources_mask_audio"].tolist() == [0, 1, 0, 0]     # "unseen": no row (a val / test video)
    assert targets["sources_mask_visual"].tolist() == [0, 0, 0, 0]    # split modalities: no visual evidence
    assert np.flatnonzero(targets["sources_audio"][1]).tolist() == [INSTRUMENTS.index("piano")]
    assert not targets["sources_audio"][[0, 2, 3]].any() and not targets["sources_visual"].any()
    union = source_targets(derive(tmp_path, [("heard", "Is there a <Object> sound?", ["piano"], "yes")])[0]
                           .reset_index(), ["heard"])
    assert union["sources_mask_audio"].tolist() == union["sources_mask_visual"].tolist() == [1]


def test_source_targets_trust_the_exact_scene_labels(tmp_path):
    table = labels_from_scenes(write_json(tmp_path / "scenes.json", scenes_document()))
    targets = source_targets(table, ["syn00003", "syn00001", "syn00009"])
    # syn00003 sounds no instrument (voiceover only): an exact "none", taught as such
    assert targets["sources_mask_audio"].tolist() == targets["sources_mask_visual"].tolist() == [1, 1, 0]
    assert not targets["sources_audio"][0].any() and targets["sources_visual"][0].sum() == 1
    audio, visual = multi_hot(table, ["syn00003", "syn00001"])
    assert np.array_equal(targets["sources_audio"][:2], audio) and np.array_equal(targets["sources_visual"][:2], visual)


@needs_shared
def test_real_masks_follow_the_evidence(real):
    """Val as the train split: 2,250 of its 3,815 videos have positive evidence (the other 41% are masked); a test
    video has a row only when val shares it, and a mask 1 only when val's questions on it name an instrument."""
    val = labels_from_annotations([SHARED / "avqa-val.json"])[0]
    targets = source_targets(val, val["video_id"])
    assert int(targets["sources_mask_audio"].sum()) == int(targets["sources_mask_visual"].sum()) == 2250
    test_videos = real["test"][0]["video_id"]
    on_test = source_targets(val, test_videos)
    shared = test_videos.isin(set(val["video_id"])).to_numpy()
    assert shared.sum() == 2296 and not on_test["sources_mask_audio"][~shared].any()
    assert 0 < on_test["sources_mask_audio"][shared].sum() < shared.sum()


def run_cli(argv):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_scenes_and_annotations(tmp_path):
    scenes = write_json(tmp_path / "scenes.json", scenes_document())
    out = tmp_path / "results/annotations/instruments.parquet"
    run_cli(["instruments", "--scenes", str(scenes), "--out", str(out)])
    table = read_labels(out)
    assert table["video_id"].tolist() == ["syn00001", "syn00002", "syn00003"]
    assert table.loc[2, "audio"] == [] and table.loc[0, "audio"] == ["flute", "piano"]
    assert not list(out.parent.glob(".*tmp*"))                     # written atomically, nothing left over

    annotations = write_json(tmp_path / "avqa-val.json", [record("00000001", "Is there a <Object> sound?",
                                                                 ["violin"], "yes", 1)])
    run_cli(["instruments", "--annotations", str(annotations), "--out", str(out)])
    table = read_labels(out)
    assert table.to_dict("records") == [{"video_id": "00000001", "audio": ["violin"], "visual": ["violin"],
                                         "source": "annotations"}]           # the union (the paper's single p_C)
    with pytest.raises(SystemExit):
        run_cli(["instruments", "--scenes", str(scenes), "--annotations", str(annotations), "--out", str(out)])


def test_read_labels_rejects_broken_tables(tmp_path):
    path = tmp_path / "instruments.parquet"
    pd.DataFrame({"video_id": ["a", "a"], "audio": [["piano"], []], "visual": [[], []],
                  "source": ["scenes"] * 2}).to_parquet(path)
    with pytest.raises(InstrumentLabelError, match="listed twice"):
        read_labels(path)
    pd.DataFrame({"video_id": ["a"], "audio": [["harp"]], "visual": [[]], "source": ["scenes"]}).to_parquet(path)
    with pytest.raises(InstrumentLabelError, match="video a: audio names \\['harp'\\]"):
        read_labels(path)
    pd.DataFrame({"video_id": ["a"], "audio": [[]]}).to_parquet(path)
    with pytest.raises(InstrumentLabelError, match="lacks column"):
        read_labels(path)


def test_instrument_labels_needs_exactly_one_source(tmp_path):
    scenes = write_json(tmp_path / "scenes.json", scenes_document())
    assert len(instrument_labels(scenes=scenes)) == 3
    with pytest.raises(ValueError, match="exactly one"):
        instrument_labels()
    with pytest.raises(ValueError, match="exactly one"):
        instrument_labels(scenes=scenes, annotations=[scenes])
