"""Tiny hand-made stores for the data / training / evaluation tests (pooled features, text features, parquet).

The data are learnable on purpose: each question's sentence feature carries its answer (one-hot block plus
noise), so a tiny model's loss falls within a few steps. `TinyModel` follows the model contract
(model(batch) -> {"logits"}, model.loss(batch, out) -> (total, terms)) and uses dropout, so resuming must
restore the torch RNG to reproduce an uninterrupted run.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from avqa.store import open_new, write_strings
from avqa.vocab import QUESTION_TYPES

T = 2
L = 6
TYPES = [(g, t, k) for g, t, k in QUESTION_TYPES]


def annotations(videos: list[str], questions_per_video: int, first_qid: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    qid = first_qid
    for vid in videos:
        for j in range(questions_per_video):
            group, qtype, key = TYPES[(qid + j) % len(TYPES)]
            answer = int(rng.integers(0, 4))
            rows.append({"question_id": qid, "video_id": vid, "group": group, "type": qtype, "type_key": key,
                         "question": f"q{qid}", "answer": f"a{answer}", "answer_idx": answer,
                         "template": "t", "templ_values": "[]"})
            qid += 1
    return pd.DataFrame(rows)


def write_pooled(path: Path, videos: list[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    visual = rng.standard_normal((len(videos), T, 7, 7, 2048)).astype(np.float16)
    audio = rng.standard_normal((len(videos), T, 128)).astype(np.float32)
    g = open_new(path)
    g.create_array("visual", shape=visual.shape, dtype="float16", chunks=(1, T, 7, 7, 2048))[:] = visual
    g.create_array("audio", shape=audio.shape, dtype="float32")[:] = audio
    write_strings(g, "video_id", videos)
    g.attrs.update({"T1": 2 * T, "T": T, "method": "avg"})
    return visual, audio


def write_questions(path: Path, tables: list[pd.DataFrame], seed: int, extra_length: int = 2) -> None:
    """questions.zarr over all splits; token arrays padded with `extra_length` unused positions."""
    table = pd.concat(tables, ignore_index=True)
    rng = np.random.default_rng(seed)
    n = len(table)
    sentence = 0.3 * rng.standard_normal((n, 1024)).astype(np.float32)
    for i, answer in enumerate(table["answer_idx"]):
        sentence[i, answer * 16:(answer + 1) * 16] += 1.0  # the answer is readable from the text
    lengths = rng.integers(2, L + 1, size=n)
    token_mask = np.arange(L + extra_length)[None, :] < lengths[:, None]
    tokens = (rng.standard_normal((n, L + extra_length, 512)) * token_mask[..., None]).astype(np.float16)
    target_mask = token_mask & (np.arange(L + extra_length)[None, :] == 1)
    g = open_new(path)
    g.create_array("question_id", shape=(n,), dtype="int64")[:] = table["question_id"].to_numpy(np.int64)
    g.create_array("sentence", shape=sentence.shape, dtype="float32")[:] = sentence
    g.create_array("tokens", shape=tokens.shape, dtype="float16")[:] = tokens
    g.create_array("token_mask", shape=token_mask.shape, dtype="bool")[:] = token_mask
    g.create_array("target_mask", shape=target_mask.shape, dtype="bool")[:] = target_mask


def make_dataset(root: Path, videos_per_split=(6, 3, 3), questions_per_video: int = 4,
                 missing_in_store: dict[str, list[str]] | None = None, feature_seed: int = 10) -> dict:
    """annotations/{split}.parquet, pooled/{split}.zarr, questions.zarr under root; returns their paths.

    missing_in_store: split -> extra video ids that get questions but no pooled features. feature_seed: seeds the
    pooled features (another value: the same questions over other audio-visual features).
    """
    missing_in_store = missing_in_store or {}
    paths = {"annotations": {}, "pooled": {}, "questions": str(root / "questions.zarr")}
    tables, qid = [], 1000
    for s, (split, n) in enumerate(zip(("train", "val", "test"), videos_per_split)):
        videos = [f"{split}{i:02d}" for i in range(n)]
        extra = missing_in_store.get(split, [])
        table = annotations(videos + extra, questions_per_video, qid, seed=s)
        qid += len(table)
        tables.append(table)
        ann = root / "annotations" / f"{split}.parquet"
        ann.parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(ann, index=False)
        paths["annotations"][split] = str(ann)
        pooled = root / "pooled" / f"{split}.zarr"
        write_pooled(pooled, videos, seed=feature_seed + s)
        paths["pooled"][split] = str(pooled)
    write_questions(root / "questions.zarr", tables, seed=99)
    return paths


def run_config(paths: dict, **overrides) -> dict:
    spec = {
        "experiment": "unit", "variant": "tiny", "label": "Tiny", "seed": 0, "model": "tiny",
        "model_options": {}, "modalities": ["audio", "visual"], "pooling": "avg", "epochs": 3,
        "batch_size": 8, "lr": 5e-3, "lr_step": 1, "lr_gamma": 0.5, "questions_per_video": 2,
        "num_workers": 0, "precision": {"cpu": "fp32", "cuda": "bf16"}, "threads": 2, "device": "cpu",
        "dataset": "synthetic", "weights": "random", **paths,
    }
    spec.update(overrides)
    return spec


@dataclass(frozen=True, kw_only=True)
class TinyOptions:
    d: int = 16


class TinyModel(nn.Module):
    """A small real model on the batch contract: mean-pooled audio/visual + sentence -> 42 answers."""

    Options = TinyOptions

    def __init__(self, options: TinyOptions = TinyOptions()):
        super().__init__()
        d = options.d
        self.visual = nn.Linear(2048, d)
        self.audio = nn.Linear(128, d)
        self.text = nn.Linear(1024, d)
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(d, 42)

    def forward(self, batch: dict) -> dict:
        av = self.visual(batch["visual"].mean(dim=(1, 2, 3))) + self.audio(batch["audio"].mean(dim=1))
        hidden = torch.tanh(self.text(batch["sentence"]) + av[batch["video_index"]])
        return {"logits": self.head(self.drop(hidden))}

    def loss(self, batch: dict, out: dict):
        qa = F.cross_entropy(out["logits"], batch["answer"])
        reg = 1e-3 * out["logits"].pow(2).mean()
        return qa + reg, {"qa": float(qa.detach()), "reg": float(reg.detach())}


def tiny_factory(spec: dict) -> nn.Module:
    return TinyModel(TinyOptions(**spec["model_options"]))
