"""The pieces of shard extraction (avqa.features.extract): per-video decoding in worker processes, batching of seconds
across videos for the frozen encoders, and the per-shard Zarr writer.

Decoding + preprocessing happen in the DataLoader workers (CLIP's resize / crop / normalise, VGGish's log-mel
examples), so the main process only runs the model. Only a video's real seconds are decoded and encoded; its
features are padded to T1 by repeating the last real second, which equals encoding the repeated input.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from avqa.features import decoders, media
from avqa.features.layout import AUDIO, FPS, FRAMES, SAMPLE_RATE, encoder_class, encoder_record
from avqa.features.videos import AmbiguousVideoError, find_video
from avqa.specs.features import ExtractSpec
from avqa.store import open_new, write_strings

logger = logging.getLogger(__name__)

# The failure stage of a file that cannot be decoded, by what is decoded for the encoder.
DECODE_STAGE = {FRAMES: "decode_video", AUDIO: "decode_audio"}
FAILURE_COLUMNS = ("video_id", "stage", "reason")


@dataclass
class Item:
    """One video out of a decode worker: model inputs of its real seconds, or why it failed."""

    video_id: str
    inputs: torch.Tensor | None = None   # clip: (n, 3, 224, 224) float32; vggish: (n, 1, 96, 64) float32
    seconds: media.Seconds | None = None
    failure: tuple[str, str] | None = None  # (stage, reason)


class DecodeDataset(torch.utils.data.Dataset):
    """Video i of a shard -> Item, decoded and preprocessed for the spec's encoder (frames only for a frame
    encoder, audio only for an audio one). Errors become failure Items so one broken file never stops the shard."""

    def __init__(self, spec: ExtractSpec, video_ids: list[str], videos_dir: str | Path, threads: int = 1):
        self.spec, self.video_ids, self.videos_dir = spec, list(video_ids), Path(videos_dir)
        self.kind = encoder_record(spec.encoder).decode
        self.threads = threads  # video decoder threads: 1 in a worker process, the model's threads in-process
        self._encoder = encoder_class(spec.encoder)
        self._preprocess = None

    def __len__(self) -> int:
        return len(self.video_ids)

    def __getitem__(self, i: int) -> Item:
        video_id = self.video_ids[i]
        try:
            # Any container; a missing one keeps the .mp4 name so decoding reports the missing file. Absolute, so
            # an id starting with '-' (v2.0's YouTube ids) is never read as a decoder option.
            path = (find_video(self.videos_dir, video_id) or self.videos_dir / f"{video_id}.mp4").absolute()
        except AmbiguousVideoError as err:
            return Item(video_id, failure=("find_video", str(err)))
        try:
            inputs, seconds = self._prepare(path)
        except media.MediaError as err:
            return Item(video_id, failure=(DECODE_STAGE[self.kind], str(err)))
        except Exception as err:  # an unforeseen decoder/preprocessing error must not stop the shard
            logger.exception("%s: %s preprocessing failed", path, self.spec.encoder)
            return Item(video_id, failure=(self.spec.encoder, f"{path}: {type(err).__name__}: {err}"))
        return Item(video_id, inputs, seconds)

    def _prepare(self, path: Path) -> tuple[torch.Tensor, media.Seconds]:
        if self._preprocess is None:
            self._preprocess = self._encoder.preprocess(self.spec)
        if self.kind == FRAMES:
            decode = self.spec.decode
            short_side = self._encoder.input_size(self.spec) if decode.to_input_size else None
            decoded = decoders.decode_frames(path, self.spec.T1, decode, FPS, pad=False, threads=self.threads,
                                             short_side=short_side)
            return self._preprocess(decoded.data), decoded.seconds
        decoded = decoders.decode_audio(path, self.spec.T1, self.spec.audio_backend, SAMPLE_RATE, pad=False)
        return torch.from_numpy(self._preprocess(decoded.data, decoded.seconds.n_real)), decoded.seconds


def keep_item(item: Item) -> Item:
    """DataLoader collate_fn: items pass through unbatched (batching across videos is the Batcher's job)."""
    return item


def decode_loader(dataset: DecodeDataset, workers: int) -> torch.utils.data.DataLoader:
    """In-order iterator over the shard; `workers` processes decode ahead while the model runs (0: in-process)."""
    return torch.utils.data.DataLoader(
        dataset, batch_size=None, shuffle=False, num_workers=workers, collate_fn=keep_item,
        prefetch_factor=4 if workers else None)


class Batcher:
    """Packs the seconds of consecutive videos into model batches of `batch_size` (a batch may span several
    short videos), and hands each video's outputs back, in order, once all its seconds went through.

    forward(inputs) returns one array (n, ...) or a tuple of them (an encoder with several outputs, e.g. CLIP ViT's
    frame embeddings and merged tokens); each video's outputs come back in the same form.
    """

    def __init__(self, forward: Callable[[torch.Tensor], np.ndarray | tuple[np.ndarray, ...]], batch_size: int):
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        self.forward, self.batch_size = forward, batch_size
        self._queue: deque[tuple[str, torch.Tensor]] = deque()  # (video, inputs not yet encoded)
        self._outputs: dict[str, list[tuple[np.ndarray, ...]]] = {}
        self._needed: dict[str, int] = {}
        self._pending = 0

    def add(self, video_id: str, inputs: torch.Tensor) -> list[tuple[str, np.ndarray | tuple[np.ndarray, ...]]]:
        if len(inputs) == 0:
            raise ValueError(f"video {video_id!r} has no inputs")
        self._queue.append((video_id, inputs))
        self._outputs[video_id], self._needed[video_id] = [], len(inputs)
        self._pending += len(inputs)
        done = []
        while self._pending >= self.batch_size:
            done += self._run(self.batch_size)
        return done

    def flush(self) -> list[tuple[str, np.ndarray | tuple[np.ndarray, ...]]]:
        done = []
        while self._pending:
            done += self._run(min(self._pending, self.batch_size))
        return done

    def _run(self, n: int) -> list[tuple[str, np.ndarray | tuple[np.ndarray, ...]]]:
        parts, owners = [], []
        while n:
            video_id, inputs = self._queue[0]
            take = min(n, len(inputs))
            parts.append(inputs[:take])
            owners.append((video_id, take))
            if take == len(inputs):
                self._queue.popleft()
            else:
                self._queue[0] = (video_id, inputs[take:])
            n -= take
        outputs = self.forward(torch.cat(parts))
        single = isinstance(outputs, np.ndarray)
        outputs = (outputs,) if single else tuple(outputs)
        self._pending -= len(outputs[0])
        done, start = [], 0
        for video_id, take in owners:
            self._outputs[video_id].append(tuple(o[start:start + take] for o in outputs))
            start += take
            if sum(len(part[0]) for part in self._outputs[video_id]) == self._needed[video_id]:
                del self._needed[video_id]
                parts_of_video = self._outputs.pop(video_id)
                joined = tuple(np.concatenate(column) for column in zip(*parts_of_video))
                done.append((video_id, joined[0] if single else joined))
        return done


@dataclass
class ShardWriter:
    """Rows of one shard store: array (V, T1, *item_shape) chunked per video, `video_id`, per-video attrs."""

    path: Path
    array: str
    item_shape: tuple[int, ...]
    dtype: str
    T1: int
    capacity: int
    video_ids: list[str] = field(default_factory=list)
    videos: dict[str, dict] = field(default_factory=lambda: {k: {} for k in ("durations", "n_seconds",
                                                                               "padded", "cut")})

    def __post_init__(self):
        self.group = open_new(self.path)
        shape = (self.T1, *self.item_shape)
        self.data = self.group.create_array(self.array, shape=(self.capacity, *shape), chunks=(1, *shape),
                                            dtype=self.dtype)

    def add(self, video_id: str, features: np.ndarray, seconds: media.Seconds) -> None:
        """features: (n_real, *item_shape) of the real seconds; stored padded to T1 with the last one."""
        if features.shape != (seconds.n_real, *self.item_shape):
            raise ValueError(f"{video_id}: features {features.shape}, expected {(seconds.n_real, *self.item_shape)}")
        self.data[len(self.video_ids)] = media.repeat_last(features, self.T1).astype(self.dtype)
        self.video_ids.append(video_id)
        if seconds.decode_path:                       # frames: how they were decoded, how far from the centres
            self.videos.setdefault("decode_path", {})[video_id] = seconds.decode_path
            self.videos.setdefault("max_offset_s", {})[video_id] = round(seconds.max_offset, 4)
        self.videos["durations"][video_id] = round(seconds.duration, 3)   # the file's: the same in every store
        self.videos["n_seconds"][video_id] = seconds.n_real
        self.videos["padded"][video_id] = seconds.padded
        self.videos["cut"][video_id] = seconds.cut

    def close(self, attrs: dict) -> None:
        self.data.resize((len(self.video_ids), self.T1, *self.item_shape))
        write_strings(self.group, "video_id", self.video_ids)
        self.group.attrs.update({**attrs, **self.videos})


def clean_reason(text: str) -> str:
    """One TSV cell: no tabs or line breaks."""
    return " ".join(str(text).split())
