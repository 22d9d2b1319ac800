"""SaSR-Net's data path on the real MUSIC-AVQA annotation files (../shared/data/music_avqa): avqa-val.json as the
train split, avqa-test.json as val and test. The annotations are parsed and the instrument labels derived from the
train split as the workflow does; the pooled and text features are small random stores for a few dozen real video
ids. One training run of one step through AVQADataset and train_run, then the evaluation on test."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from avqa.data.annotations import load_annotations
from avqa.data.instruments import labels_from_annotations, write_labels
from avqa.training.spec import split_dataset
from avqa.training.train import train_run
from training_fixtures import run_config, write_pooled, write_questions
from conftest import MUSIC_AVQA_DIR

SHARED = MUSIC_AVQA_DIR
pytestmark = pytest.mark.skipif(not SHARED.exists(), reason=f"real MUSIC-AVQA annotations not present at {SHARED}")
N_TRAIN = 12      # train videos with positive evidence, and as many without
N_TEST = 12       # test videos that are not train videos (no label row), plus N_SHARED that are
N_SHARED = 6


def choose_videos(train: pd.DataFrame, test: pd.DataFrame, labels: pd.DataFrame) -> dict[str, list[str]]:
    """Deterministic picks by sorted id: train videos with and without positive evidence; test videos outside
    and inside the train split."""
    evidence = labels.set_index("video_id")["audio"].map(len) > 0
    with_evidence = sorted(evidence.index[evidence])[:N_TRAIN]
    without = sorted(evidence.index[~evidence])[:N_TRAIN]
    test_ids = sorted(test["video_id"].unique())
    train_ids = set(train["video_id"])
    unseen = [v for v in test_ids if v not in train_ids][:N_TEST]
    shared = [v for v in test_ids if v in train_ids][:N_SHARED]
    return {"train": with_evidence + without, "test": unseen + shared, "with_evidence": with_evidence}


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("sasr_real")
    train = load_annotations(SHARED / "avqa-val.json")
    test = load_annotations(SHARED / "avqa-test.json")
    paths = {"annotations": {}, "pooled": {}, "questions": str(root / "questions.zarr")}
    (root / "annotations").mkdir()
    for split, table in (("train", train), ("test", test)):
        table.to_parquet(root / "annotations" / f"{split}.parquet", index=False)
    # the workflow's rule instruments: labels from the train split's parquet only
    labels = labels_from_annotations([root / "annotations" / "train.parquet"])[0]
    write_labels(labels, root / "instruments.parquet")
    videos = choose_videos(train, test, labels)
    write_pooled(root / "pooled" / "train.zarr", videos["train"], seed=1)
    write_pooled(root / "pooled" / "test.zarr", videos["test"], seed=2)
    chosen = [train[train["video_id"].isin(videos["train"])], test[test["video_id"].isin(videos["test"])]]
    write_questions(root / "questions.zarr", chosen, seed=3)
    for split in ("train", "val", "test"):
        paths["annotations"][split] = str(root / "annotations" / f"{'train' if split == 'train' else 'test'}.parquet")
        paths["pooled"][split] = str(root / "pooled" / f"{'train' if split == 'train' else 'test'}.zarr")
    n_train = sum(len(t) for t in chosen[:1])
    spec = run_config(paths, model="sasr", variant="sasr", dataset="music_avqa", epochs=1, batch_size=n_train,
                      questions_per_video=1, threads=1, instruments=str(root / "instruments.parquet"),
                      model_options={"d_model": 16, "dropout": 0.0})
    return {"root": root, "spec": spec, "videos": videos, "labels": labels, "chosen": chosen}


def test_real_labels_mask_the_videos_without_evidence_and_the_test_videos(real_run):
    spec, videos = real_run["spec"], real_run["videos"]
    train = split_dataset(spec, "train")
    batch = train.batch(np.arange(len(train)))
    order = [train.video_ids[r] for r in np.unique(train.video_row)]       # the batch's unique videos, in row order
    expected = np.array([v in set(videos["with_evidence"]) for v in order], dtype=np.float32)
    assert expected.sum() == N_TRAIN and len(order) == 2 * N_TRAIN
    for modality in ("audio", "visual"):
        assert np.array_equal(batch[f"sources_mask_{modality}"].numpy(), expected)
        labelled = batch[f"sources_{modality}"].numpy().sum(1) > 0
        assert np.array_equal(labelled, expected.astype(bool))           # mask 1 exactly where a label is positive
    test = split_dataset(spec, "test")
    test_batch = test.batch(np.arange(len(test)))
    rows = np.unique(test.video_row)
    unseen = np.array([test.video_ids[r] not in set(real_run["labels"]["video_id"]) for r in rows])
    assert unseen.sum() == N_TEST
    assert not test_batch["sources_mask_audio"].numpy()[unseen].any()
    assert not test_batch["sources_audio"].numpy()[unseen].any()


def test_sasr_trains_one_step_and_evaluates_on_the_real_annotations(real_run):
    spec, root = real_run["spec"], real_run["root"]
    torch.manual_seed(0)
    metrics = train_run(spec, root / "run")
    log = pd.read_csv(root / "run" / "train_log.csv")
    assert len(log) == 1
    for term in ("loss", "loss_qa", "loss_source", "loss_reg", "loss_match"):
        assert np.isfinite(log.loc[0, term]), term
    assert log.loc[0, "loss_source"] > 0                                  # half the train videos are labelled
    n_test = len(real_run["chosen"][1])
    assert metrics["overall"]["count"] == n_test
    predictions = pd.read_csv(root / "run" / "predictions.csv", dtype={"video_id": str})
    assert len(predictions) == n_test and set(predictions["video_id"]) == set(real_run["videos"]["test"])
    saved = json.loads((root / "run" / "metrics.json").read_text())
    assert saved["overall"]["count"] == n_test
