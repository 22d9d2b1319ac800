"""The training data pipeline: batch contract, one visual read per batch, sampler, modalities, missing videos."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from avqa.training.dataset import AVQADataset, QuestionBatchSampler, eval_batches, iterate_batches
from avqa.store import open_read
from training_fixtures import L, T, make_dataset


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), missing_in_store={"train": ["ghost"]})


def _dataset(paths, split="train", **kwargs):
    return AVQADataset(paths["annotations"][split], paths["pooled"][split], paths["questions"], **kwargs)


def test_batch_follows_the_contract(paths):
    ds = _dataset(paths)
    rows = [0, 1, 5, 9, 10]                                   # videos 0, 0, 1, 2, 2
    batch = ds.batch(rows)
    U, B = 3, len(rows)
    expected = {
        "visual": ((U, T, 7, 7, 2048), torch.float32), "audio": ((U, T, 128), torch.float32),
        "video_index": ((B,), torch.int64), "sentence": ((B, 1024), torch.float32),
        "tokens": ((B, L, 512), torch.float32), "token_mask": ((B, L), torch.bool),
        "target_mask": ((B, L), torch.bool), "answer": ((B,), torch.int64), "question_id": ((B,), torch.int64),
    }
    assert set(batch) == set(expected)
    for key, (shape, dtype) in expected.items():
        assert tuple(batch[key].shape) == shape and batch[key].dtype == dtype, key
    assert batch["video_index"].tolist() == [0, 0, 1, 2, 2]
    # each question's row of the unique videos is its own video's features
    store = open_read(paths["pooled"]["train"])
    vids = ds.table["video_id"].iloc[rows].tolist()
    for b, vid in enumerate(vids):
        row = ds.video_ids.index(vid)
        u = int(batch["video_index"][b])
        np.testing.assert_array_equal(batch["visual"][u].numpy(), store["visual"][row].astype(np.float32))
        np.testing.assert_array_equal(batch["audio"][u].numpy(), store["audio"][row])
    assert batch["question_id"].tolist() == ds.table["question_id"].iloc[rows].tolist()
    assert batch["answer"].tolist() == ds.table["answer_idx"].iloc[rows].tolist()


def test_text_features_are_the_questions_own_and_trimmed_to_used_tokens(paths):
    ds = _dataset(paths)
    q = open_read(paths["questions"])
    ids = list(q["question_id"][:])
    batch = ds.batch([3, 7])
    for b, qid in enumerate(batch["question_id"].tolist()):
        row = ids.index(qid)
        np.testing.assert_array_equal(batch["sentence"][b].numpy(), q["sentence"][row])
        np.testing.assert_array_equal(batch["tokens"][b].numpy(), q["tokens"][row][:L].astype(np.float32))
        np.testing.assert_array_equal(batch["token_mask"][b].numpy(), q["token_mask"][row][:L])
    assert q["tokens"].shape[1] > L                           # the unused padding positions were dropped


class CountingArray:
    """Forwards to a zarr array, counting the reads."""

    def __init__(self, array):
        self.array, self.reads, self.rows = array, 0, []
        self.shape, self.dtype = array.shape, array.dtype

    def get_orthogonal_selection(self, selection):
        self.reads += 1
        rows = selection[0]
        assert np.all(np.diff(rows) > 0), "rows must be sorted and unique"
        return self.array.get_orthogonal_selection(selection)

    def __getitem__(self, item):
        self.reads += 1
        self.rows.append(item)
        return self.array[item]


def test_one_chunk_read_per_unique_video_when_not_in_memory(paths):
    ds = _dataset(paths, in_memory=False)
    assert not ds.in_memory
    expected = ds.batch([9, 0, 5, 1, 10, 4])["visual"]
    ds._visual_array = counter = CountingArray(ds._visual_array)
    batch = ds.batch([9, 0, 5, 1, 10, 4])                    # 3 videos, unsorted, repeated
    assert counter.reads == 3 and counter.rows == sorted(set(counter.rows))   # each video once, in row order
    assert batch["visual"].shape[0] == 3 and torch.equal(batch["visual"], expected)


def test_in_memory_auto_follows_the_budget(paths):
    assert _dataset(paths, in_memory="auto", memory_budget_gb=1.0).in_memory
    assert not _dataset(paths, in_memory="auto", memory_budget_gb=0.001).in_memory
    ram, disk = _dataset(paths, in_memory=True), _dataset(paths, in_memory=False)
    for key in ("visual", "audio", "sentence", "tokens"):
        assert torch.equal(ram.batch([2, 6, 11])[key], disk.batch([2, 6, 11])[key])
    with pytest.raises(ValueError, match="in_memory must be"):
        _dataset(paths, in_memory="sometimes")


def test_questions_of_videos_missing_from_the_store_are_dropped_and_counted(paths):
    ds = _dataset(paths)
    table = pd.read_parquet(paths["annotations"]["train"])
    assert ds.n_skipped_missing_video == int((table["video_id"] == "ghost").sum()) == 4
    assert len(ds) == len(table) - 4 and "ghost" not in set(ds.table["video_id"])
    assert _dataset(paths, split="val").n_skipped_missing_video == 0


@pytest.mark.parametrize(("modalities", "zeroed"), [(["visual"], "audio"), (["audio"], "visual")])
def test_a_removed_modality_is_zeros_of_the_right_shape(paths, modalities, zeroed):
    full, partial = _dataset(paths).batch([0, 4, 8]), _dataset(paths, modalities=modalities).batch([0, 4, 8])
    kept = "visual" if zeroed == "audio" else "audio"
    assert partial[zeroed].shape == full[zeroed].shape and partial[zeroed].dtype == torch.float32
    assert not partial[zeroed].any() and full[zeroed].any()
    assert torch.equal(partial[kept], full[kept]) and torch.equal(partial["sentence"], full["sentence"])


def test_unknown_modality_and_questions_without_text_features_are_errors(paths, tmp_path):
    with pytest.raises(ValueError, match="unknown modalities"):
        _dataset(paths, modalities=["smell"])
    table = pd.read_parquet(paths["annotations"]["val"])
    table.loc[0, "question_id"] = 424242
    bad = tmp_path / "val.parquet"
    table.to_parquet(bad)
    with pytest.raises(ValueError, match=r"questions.zarr: no text features for 1 questions, e.g. question_id \[424242\]"):
        AVQADataset(bad, paths["pooled"]["val"], paths["questions"])


# --- sampler --------------------------------------------------------------------------------------------------
VIDEO_ROW = np.repeat(np.arange(10), [7, 3, 5, 1, 8, 2, 6, 4, 9, 5])   # 50 questions of 10 videos


def test_plain_random_batches_with_k1():
    sampler = QuestionBatchSampler(VIDEO_ROW, batch_size=16, questions_per_video=1, seed=3)
    batches = sampler.batches(0)
    assert [len(b) for b in batches] == [16, 16, 16, 2] and len(sampler) == 4
    assert sorted(np.concatenate(batches).tolist()) == list(range(50))


def test_grouped_batches_are_deterministic_and_grouped():
    sampler = QuestionBatchSampler(VIDEO_ROW, batch_size=8, questions_per_video=3, seed=7)
    groups = sampler.groups(0)
    assert all(1 <= len(g) <= 3 and len(set(VIDEO_ROW[g])) == 1 for g in groups)
    # a video with n questions gives ceil(n / 3) groups
    assert len(groups) == sum(-(-n // 3) for n in np.bincount(VIDEO_ROW))
    batches = sampler.batches(0)
    assert np.array_equal(np.concatenate(batches), np.concatenate(groups))   # groups packed in order
    assert [len(b) for b in batches[:-1]] == [8] * (len(batches) - 1)
    assert sorted(np.concatenate(batches).tolist()) == list(range(50))
    again = QuestionBatchSampler(VIDEO_ROW, batch_size=8, questions_per_video=3, seed=7).batches(0)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    other_epoch = sampler.batches(1)
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other_epoch))
    other_seed = QuestionBatchSampler(VIDEO_ROW, batch_size=8, questions_per_video=3, seed=8).batches(0)
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other_seed))


def test_grouping_reduces_unique_videos_per_batch():
    rows = np.repeat(np.arange(40), 8)                        # 40 videos x 8 questions
    def mean_unique(k):
        batches = QuestionBatchSampler(rows, batch_size=32, questions_per_video=k, seed=0).batches(0)
        return np.mean([len(set(rows[b])) for b in batches])
    assert mean_unique(4) <= 32 / 4 + 1 < mean_unique(1)


def test_eval_batches_follow_video_order_and_iterate(paths):
    ds = _dataset(paths, split="val")
    batches = eval_batches(ds.video_row, 5)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(ds))) and np.all(np.diff(ds.video_row[flat]) >= 0)
    got = list(iterate_batches(ds, batches))
    assert len(got) == len(batches) and got[0]["question_id"].tolist() == ds.table["question_id"].iloc[batches[0]].tolist()


def test_worker_processes_build_the_same_batches(paths):
    ds = _dataset(paths, in_memory=False)
    batches = QuestionBatchSampler(ds.video_row, batch_size=6, questions_per_video=2, seed=1).batches(0)
    here, workers = list(iterate_batches(ds, batches)), list(iterate_batches(ds, batches, num_workers=1))
    assert len(here) == len(workers) == len(batches)
    assert all(torch.equal(a[k], b[k]) for a, b in zip(here, workers) for k in a)


def test_input_stats_are_the_per_channel_mean_and_std_of_the_split(paths):
    ds = _dataset(paths, in_memory=True)
    stats = ds.input_stats(max_videos=1000, chunk=2)       # chunks smaller than the split: sums across reads
    visual = ds.read_visual(np.arange(len(ds.video_ids))).astype(np.float64).reshape(-1, 2048)
    np.testing.assert_allclose(stats["visual"][0], visual.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(stats["visual"][1], visual.std(0), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(stats["audio"][0], ds.audio.reshape(-1, 128).mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats["sentence"][1], ds.sentence.std(0), rtol=1e-4)
    real_tokens = ds.tokens[ds.token_mask].astype(np.float64)   # padding tokens do not count
    np.testing.assert_allclose(stats["tokens"][0], real_tokens.mean(0), rtol=1e-4, atol=1e-6)
    assert not np.allclose(stats["tokens"][0], ds.tokens.reshape(-1, ds.tokens.shape[-1]).mean(0))
    few = ds.input_stats(["visual"], max_videos=2)         # evenly spaced subset: first and last video
    first_last = ds.read_visual(np.array([0, len(ds.video_ids) - 1])).astype(np.float64).reshape(-1, 2048)
    np.testing.assert_allclose(few["visual"][0], first_last.mean(0), rtol=1e-5, atol=1e-7)
    assert set(few) == {"visual"}


def test_input_stats_of_a_removed_modality_are_zero(paths):
    stats = _dataset(paths, modalities=["visual"]).input_stats(["audio"])
    assert not stats["audio"][0].any() and not stats["audio"][1].any()
