"""Training data: one split's questions over the pooled audio-visual store and the question text features.

A batch follows the model batch contract (avqa/models/__init__.py): the U unique videos of the batch's B questions
("visual" (U, T, 7, 7, 2048), "audio" (U, T, 128)), "video_index" (B,) mapping each question to its video, and
the per-question text features, answer and question_id.

Reading: the visual maps of a batch come from one chunk read per unique video (one chunk per video; measured
3.5x faster per batch than one orthogonal selection of the rows, which zarr 3.1 copies by fancy indexing:
benchmarks/pooled_store.py), or from RAM when the split is small enough (`in_memory`: "auto" compares the split's
float16 maps against `memory_budget_gb`). Audio and text features are small and always held in RAM.

Questions whose video is not in the pooled store (failed feature extraction) are dropped with a logged count,
kept in `n_skipped_missing_video` for the metrics. A modality removed by the run's `modalities` is replaced by
zeros of the right shape, so the architecture is unchanged.

Extra inputs some models read, loaded only when given: `words` (a vocabulary JSON, avqa.data.words) adds
"question_words" (B, Lw) int64 word ids of each question (AVST); `instruments` (avqa.data.instruments' parquet)
adds "sources_audio" and "sources_visual" (U, 22) float32 multi-hot labels of each video and
"sources_mask_audio" / "sources_mask_visual" (U,) float32, 0 for a video without a label row (the labels come from
the train split's questions) or without positive evidence (avqa.data.instruments.source_targets) (SaSR-Net);
`clip_texts` (avqa.features.questions' questions-vit store) adds "question_clip" and "prompt" (B, D), the CLIP ViT
text embeddings of each question and of its declarative prompt (TSPM); with `clip_words` also
"question_tokens" (B, L, W) and "question_token_mask" (B, L), the question's per-token CLIP ViT text features and
its real tokens from the same store (QA-TIGER; L = the split's longest question). A pooled store with `visual_tokens`
(CLIP ViT's merged patch tokens per frame) adds them as "visual_tokens" (U, T, N, D).

Batches: `QuestionBatchSampler` shuffles per epoch from (seed, epoch) alone, so a resumed run sees the same
batches. With questions_per_video = k > 1 the questions of each video are cut into groups of up to k and the
shuffled groups are packed into batches, so a batch holds ~batch_size / k unique videos and the model projects
fewer visual maps per batch (a CPU speed option; k = 1 is plain random batches).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch

from avqa.store import open_read, read_strings
from avqa.vocab import N_ANSWERS, TYPE_KEY

logger = logging.getLogger(__name__)

MODALITIES = ("audio", "visual")
ANNOTATION_COLUMNS = ("question_id", "video_id", "group", "type", "type_key", "answer_idx")
QUESTION_ARRAYS = ("question_id", "sentence", "tokens", "token_mask", "target_mask")
POOLED_ARRAYS = ("visual", "audio", "video_id")


def read_annotations(path: str | Path) -> pd.DataFrame:
    """The split's questions (the columns the data pipeline needs), checked."""
    table = pd.read_parquet(path)
    absent = [c for c in ANNOTATION_COLUMNS if c not in table.columns]
    if absent:
        raise ValueError(f"{path}: missing columns {absent}")
    table = table[list(ANNOTATION_COLUMNS)].copy()
    table["video_id"] = table["video_id"].astype(str)
    bad_answer = table.index[(table["answer_idx"] < 0) | (table["answer_idx"] >= N_ANSWERS)]
    if len(bad_answer):
        raise ValueError(f"{path}: question_id {table.loc[bad_answer[0], 'question_id']} has answer_idx "
                         f"{table.loc[bad_answer[0], 'answer_idx']} outside [0, {N_ANSWERS})")
    known = set(TYPE_KEY.values())
    unknown = table.index[~table["type_key"].isin(known)]
    if len(unknown):
        raise ValueError(f"{path}: question_id {table.loc[unknown[0], 'question_id']} has unknown type_key "
                         f"{table.loc[unknown[0], 'type_key']!r}")
    if table["question_id"].duplicated().any():
        dup = table.loc[table["question_id"].duplicated(), "question_id"].iloc[0]
        raise ValueError(f"{path}: question_id {dup} appears more than once")
    return table.reset_index(drop=True)


def _require(group, names: Sequence[str], path) -> None:
    absent = [n for n in names if n not in group]
    if absent:
        raise ValueError(f"{path}: missing arrays {absent}")


def text_length(token_mask: np.ndarray) -> int:
    """Token positions worth keeping: up to the last position any question uses (>= 1)."""
    used = np.flatnonzero(token_mask.any(axis=0))
    return int(used[-1]) + 1 if used.size else 1


class AVQADataset:
    """One split: questions (rows) -> batches in the model contract's format."""

    def __init__(self, annotations: str | Path, pooled: str | Path, questions: str | Path,
                 modalities: Sequence[str] = MODALITIES, in_memory: str | bool = "auto",
                 memory_budget_gb: float = 4.0, words: str | Path | None = None,
                 instruments: str | Path | None = None, clip_texts: str | Path | None = None,
                 clip_words: bool = False):
        unknown = set(modalities) - set(MODALITIES)
        if unknown:
            raise ValueError(f"unknown modalities {sorted(unknown)}; known: {MODALITIES}")
        self.modalities = tuple(modalities)
        table = read_annotations(annotations)

        store = open_read(pooled)
        _require(store, POOLED_ARRAYS, pooled)
        self.video_ids = read_strings(store, "video_id")
        self.T = int(store["visual"].shape[1])
        self.pooled_attrs = dict(store.attrs)
        present = table["video_id"].isin(set(self.video_ids))
        self.n_skipped_missing_video = int((~present).sum())
        self.skipped_question_ids = [int(i) for i in table.loc[~present, "question_id"]]
        if self.n_skipped_missing_video:
            logger.warning("%s: %d of %d questions dropped: their video is not in %s", annotations,
                           self.n_skipped_missing_video, len(table), pooled)
        self.table = table[present].reset_index(drop=True)
        if self.table.empty:
            raise ValueError(f"{annotations}: no question has its video in {pooled}")
        self.video_row = pd.Index(self.video_ids).get_indexer(self.table["video_id"]).astype(np.int64)

        self._load_text(questions)
        self._visual_array = store["visual"]
        self._visual_ram = None
        if "visual" in self.modalities and self._wants_ram(in_memory, memory_budget_gb):
            self._visual_ram = self._visual_array[:]
        self._tokens_array = store["visual_tokens"] if "visual_tokens" in store else None
        audio = store["audio"][:].astype(np.float32, copy=False)
        self.audio = audio if "audio" in self.modalities else np.zeros_like(audio)
        self.extra_questions: dict[str, np.ndarray] = {}     # per question row
        self.extra_videos: dict[str, np.ndarray] = {}        # per video row
        if words is not None:
            self.extra_questions["question_words"] = question_word_ids(annotations, self.table, words)
        if clip_texts is not None:
            self.extra_questions.update(clip_text_features(clip_texts, self.table["question_id"]))
        if instruments is not None:
            self._load_instrument_labels(instruments)
        self.clip_words = None                               # QA-TIGER's question words (see clip_word_features)
        if clip_words:
            if clip_texts is None:
                raise ValueError("clip_words needs the clip_texts store (questions-vit) that holds them")
            self.clip_words = clip_word_features(clip_texts, self.table["question_id"])

    # --- set-up -----------------------------------------------------------------------------------------------
    def _wants_ram(self, in_memory: str | bool, budget_gb: float) -> bool:
        if isinstance(in_memory, bool):
            return in_memory
        if in_memory != "auto":
            raise ValueError(f"in_memory must be true, false or 'auto', got {in_memory!r}")
        nbytes = int(np.prod(self._visual_array.shape)) * self._visual_array.dtype.itemsize
        return nbytes <= budget_gb * 1e9

    def _load_instrument_labels(self, path: str | Path) -> None:
        """L_source's targets and masks per video row; a video without labels is masked, never an error."""
        from avqa.data.instruments import read_labels, source_targets

        targets = source_targets(read_labels(path), self.video_ids)
        self.extra_videos.update(targets)
        logger.info("%s: instrument labels for %d (audio) / %d (visual) of %d videos", path,
                    int(targets["sources_mask_audio"].sum()), int(targets["sources_mask_visual"].sum()),
                    len(self.video_ids))

    def _load_text(self, path: str | Path) -> None:
        store = open_read(path)
        _require(store, QUESTION_ARRAYS, path)
        ids = pd.Index(store["question_id"][:])
        rows = ids.get_indexer(self.table["question_id"])
        if (rows < 0).any():
            absent = self.table.loc[rows < 0, "question_id"].tolist()
            raise ValueError(f"{path}: no text features for {len(absent)} questions, e.g. question_id "
                             f"{absent[:5]}")
        L = text_length(store["token_mask"][:])
        unique, inverse = np.unique(rows, return_inverse=True)
        self.sentence = store["sentence"].get_orthogonal_selection((unique,)).astype(np.float32)[inverse]
        self.tokens = store["tokens"].get_orthogonal_selection((unique, slice(0, L)))[inverse]
        self.token_mask = store["token_mask"].get_orthogonal_selection((unique, slice(0, L)))[inverse].astype(bool)
        self.target_mask = store["target_mask"].get_orthogonal_selection((unique, slice(0, L)))[inverse].astype(bool)

    # --- access -----------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.table)

    @property
    def in_memory(self) -> bool:
        return self._visual_ram is not None

    def read_visual(self, rows: np.ndarray) -> np.ndarray:
        """Maps of the given sorted unique video rows: RAM, or one chunk read per video."""
        if "visual" not in self.modalities:
            return np.zeros((len(rows), *self._visual_array.shape[1:]), dtype=np.float32)
        if self._visual_ram is not None:
            return self._visual_ram[rows]
        return read_rows(self._visual_array, rows)

    def read_tokens(self, rows: np.ndarray) -> np.ndarray:
        """Per-frame tokens of the given sorted unique video rows (one chunk read each; zeros without visual)."""
        if "visual" not in self.modalities:
            return np.zeros((len(rows), *self._tokens_array.shape[1:]), dtype=np.float32)
        return read_rows(self._tokens_array, rows)

    def input_stats(self, sources: Sequence[str] = ("visual", "audio", "sentence", "tokens"),
                    max_videos: int = 1000, chunk: int = 32) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per-channel mean and std {source: (mean, std)} of this split's inputs (float64 sums, float32 out).

        visual: over every map position of every segment of up to `max_videos` videos (evenly spaced rows, so
        the same split always gives the same statistics), read `chunk` videos at a time; audio: every segment
        of every video; sentence: every question; tokens: every real token (token_mask). A removed modality is
        all zeros here and gets mean 0, std 0 (Standardize then keeps scale 1).
        """
        stats = {}
        rows = np.unique(np.linspace(0, len(self.video_ids) - 1, min(len(self.video_ids), max_videos))
                         .round().astype(np.int64))
        if "visual" in sources:
            stats["visual"] = _chunked_stats(self.read_visual, rows, self._visual_array.shape[-1], chunk)
        if "audio" in sources:
            stats["audio"] = _column_stats(self.audio.reshape(-1, self.audio.shape[-1]))
        if "sentence" in sources:
            stats["sentence"] = _column_stats(self.sentence)
        if "tokens" in sources:
            stats["tokens"] = _column_stats(self.tokens[self.token_mask])
        if "visual_tokens" in sources and self._tokens_array is not None:
            stats["visual_tokens"] = _chunked_stats(self.read_tokens, rows, self._tokens_array.shape[-1], chunk)
        for name in ("question_clip", "prompt"):
            if name in sources and name in self.extra_questions:
                stats[name] = _column_stats(self.extra_questions[name])
        if "question_tokens" in sources and self.clip_words is not None:
            stats["question_tokens"] = clip_word_stats(self.clip_words)
        return stats

    def batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        """The contract's batch for these question rows."""
        idx = np.asarray(indices, dtype=np.int64)
        videos, video_index = np.unique(self.video_row[idx], return_inverse=True)
        return {
            "visual": torch.from_numpy(np.ascontiguousarray(self.read_visual(videos))).float(),
            **({"visual_tokens": torch.from_numpy(np.ascontiguousarray(self.read_tokens(videos))).float()}
               if self._tokens_array is not None else {}),
            "audio": torch.from_numpy(self.audio[videos]),
            "video_index": torch.from_numpy(video_index.astype(np.int64)),
            "sentence": torch.from_numpy(self.sentence[idx]),
            "tokens": torch.from_numpy(self.tokens[idx]).float(),
            "token_mask": torch.from_numpy(self.token_mask[idx]),
            "target_mask": torch.from_numpy(self.target_mask[idx]),
            "answer": torch.from_numpy(self.table["answer_idx"].to_numpy(np.int64)[idx]),
            "question_id": torch.from_numpy(self.table["question_id"].to_numpy(np.int64)[idx]),
            **{k: torch.from_numpy(v[idx]) for k, v in self.extra_questions.items()},
            **{k: torch.from_numpy(v[videos]) for k, v in self.extra_videos.items()},
            **(clip_word_batch(self.clip_words, idx) if self.clip_words is not None else {}),
        }


def read_rows(array, rows: np.ndarray) -> np.ndarray:
    """array[rows] of a Zarr array chunked one row per chunk: one chunk read per row into one buffer."""
    out = np.empty((len(rows), *array.shape[1:]), dtype=array.dtype)
    for i, row in enumerate(rows):
        out[i] = array[int(row)]
    return out


def clip_text_features(path: str | Path, question_ids: pd.Series) -> dict[str, np.ndarray]:
    """The questions' CLIP ViT text embeddings, {"question_clip", "prompt"}: (N, D) float32 in table order."""
    store = open_read(path)
    _require(store, ("question_id", "question_clip", "prompt"), path)
    rows = pd.Index(store["question_id"][:]).get_indexer(question_ids)
    if (rows < 0).any():
        raise ValueError(f"{path}: no text features for question_id {question_ids[rows < 0].tolist()[:5]}")
    return {name: store[name][:][rows].astype(np.float32) for name in ("question_clip", "prompt")}


# --- QA-TIGER's question words: per-token CLIP ViT text features (avqa.features.questions.run_vit) -------------
CLIP_WORD_ARRAYS = ("question_id", "question_tokens", "question_token_mask", "question_token_row")


def clip_word_features(path: str | Path, question_ids: pd.Series) -> dict[str, np.ndarray]:
    """The questions' word features, held once per distinct question text: {"tokens" (Nq, L, W) float16,
    "mask" (Nq, L) bool, "row" (N,) int64 each table question's row}; L = the longest of these questions."""
    store = open_read(path)
    _require(store, CLIP_WORD_ARRAYS, path)
    rows = pd.Index(store["question_id"][:]).get_indexer(question_ids)
    if (rows < 0).any():
        raise ValueError(f"{path}: no word features for question_id {question_ids[rows < 0].tolist()[:5]}")
    texts, row = np.unique(store["question_token_row"][:][rows], return_inverse=True)
    mask = store["question_token_mask"].get_orthogonal_selection((texts, slice(None))).astype(bool)
    if not mask.any(axis=1).all():
        raise ValueError(f"{path}: a question has no real token in question_token_mask")
    L = text_length(mask)
    tokens = store["question_tokens"].get_orthogonal_selection((texts, slice(0, L)))
    return {"tokens": tokens, "mask": mask[:, :L], "row": row.astype(np.int64)}


def clip_word_batch(words: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, torch.Tensor]:
    """"question_tokens" (B, L, W) float32 and "question_token_mask" (B, L) bool of the question rows `idx`."""
    rows = words["row"][idx]
    return {"question_tokens": torch.from_numpy(words["tokens"][rows]).float(),
            "question_token_mask": torch.from_numpy(words["mask"][rows])}


def clip_word_stats(words: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over every real token of every question (a repeated question counts each time)."""
    weight = np.bincount(words["row"], minlength=len(words["mask"]))[:, None] * words["mask"]   # (Nq, L)
    x = words["tokens"].astype(np.float64)
    total = np.einsum("nl,nlc->c", weight, x)
    return _mean_std(total, np.einsum("nl,nlc->c", weight, x * x), int(weight.sum()))


def question_word_ids(annotations: str | Path, table: pd.DataFrame, words: str | Path) -> np.ndarray:
    """(N, Lw) int64 word ids of the table's questions (their text read from the annotation parquet)."""
    from avqa.data.words import encode_questions, read_vocabulary

    text = pd.read_parquet(annotations, columns=["question_id", "question"]).set_index("question_id")["question"]
    return encode_questions(text.loc[table["question_id"]].tolist(), read_vocabulary(words)).astype(np.int64)


def _mean_std(total: np.ndarray, total_sq: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    mean = total / max(count, 1)
    var = np.maximum(total_sq / max(count, 1) - mean * mean, 0.0)
    return mean.astype(np.float32), np.sqrt(var).astype(np.float32)


def _chunked_stats(read: Callable[[np.ndarray], np.ndarray], rows: np.ndarray, channels: int,
                   chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of a store's videos `rows`, read `chunk` videos at a time (float64 sums)."""
    total, total_sq, count = np.zeros(channels), np.zeros(channels), 0
    for start in range(0, len(rows), chunk):
        x = read(rows[start:start + chunk]).reshape(-1, channels).astype(np.float64)
        total += x.sum(0)
        total_sq += (x * x).sum(0)
        count += len(x)
    return _mean_std(total, total_sq, count)


def _column_stats(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and std of a (N, C) array held in RAM, summed in float64."""
    x = rows.astype(np.float64)
    return _mean_std(x.sum(0), (x * x).sum(0), len(x))


class QuestionBatchSampler:
    """Seeded per-epoch batches of question rows; groups of up to k questions of one video when k > 1."""

    def __init__(self, video_row: np.ndarray, batch_size: int, questions_per_video: int = 1, seed: int = 0):
        if batch_size < 1 or questions_per_video < 1:
            raise ValueError(f"batch_size ({batch_size}) and questions_per_video ({questions_per_video}) must be >= 1")
        self.video_row = np.asarray(video_row, dtype=np.int64)
        self.batch_size = batch_size
        self.k = questions_per_video
        self.seed = seed

    def __len__(self) -> int:
        return -(-len(self.video_row) // self.batch_size)

    def _rng(self, epoch: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch])

    def groups(self, epoch: int) -> list[np.ndarray]:
        """The epoch's shuffled groups: each holds up to k question rows of one video."""
        rng = self._rng(epoch)
        order = rng.permutation(len(self.video_row))
        if self.k == 1:
            return [order[i:i + 1] for i in range(len(order))]
        # Questions of each video in shuffled order, cut into groups of up to k, then the groups shuffled.
        by_video = order[np.argsort(self.video_row[order], kind="stable")]
        cuts = np.flatnonzero(np.diff(self.video_row[by_video])) + 1
        groups = [g[i:i + self.k] for g in np.split(by_video, cuts) for i in range(0, len(g), self.k)]
        return [groups[i] for i in rng.permutation(len(groups))]

    def batches(self, epoch: int) -> list[np.ndarray]:
        flat = np.concatenate(self.groups(epoch)) if len(self.video_row) else np.empty(0, np.int64)
        return [flat[i:i + self.batch_size] for i in range(0, len(flat), self.batch_size)]


def eval_batches(video_row: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Unshuffled batches in video order (few unique videos per batch: fewer reads, fewer projections)."""
    order = np.argsort(np.asarray(video_row), kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


class _Batches(torch.utils.data.Dataset):
    def __init__(self, dataset: AVQADataset, batches: list[np.ndarray]):
        self.dataset, self.batches = dataset, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.dataset.batch(self.batches[i])


def iterate_batches(dataset: AVQADataset, batches: list[np.ndarray], num_workers: int = 0
                    ) -> Iterator[dict[str, torch.Tensor]]:
    """Batches in the given order; with num_workers > 0 they are built ahead in worker processes."""
    if num_workers <= 0:
        for rows in batches:
            yield dataset.batch(rows)
        return
    loader = torch.utils.data.DataLoader(_Batches(dataset, batches), batch_size=None, shuffle=False,
                                         num_workers=num_workers, prefetch_factor=2,
                                         pin_memory=torch.cuda.is_available())
    yield from loader
