"""The pooled store at MUSIC-AVQA's size: write rate, one video's random read, the training loader vs TASS-Net, codecs.

The store is the one avqa.features.pooling writes (visual (V, T=10, 7, 7, 2048) float16, one chunk per video,
zarr's default codec; audio (V, T, 128) float32; video_id) at 9,288 videos x --scale (1.0: ~18.6 GB of maps).
Measured in one run, side by side (the machine is shared and noisy: compare the ratios):
  1. write: GB/s of maps written as pooling.py writes them (one chunk per video), until the last write returns
     (buffered) and until the store is on disk (durable: fsync of every file);
  2. random read of one video's (T, 7, 7, 2048) chunk, cold (the store's pages evicted from the page cache:
     fsync + posix_fadvise DONTNEED per file, or --drop-caches for the whole machine) and warm (goal < 10 ms);
     and one batch's 64 videos: ONE orthogonal selection (dataset.py) vs one read per video, + float32 cast;
  3. the training loader (AVQADataset in_memory=False, QuestionBatchSampler batches of 64 questions with
     questions_per_video 1 and 16, iterate_batches with 0 and 2 workers) in questions/s, cold and warm, as it
     is ('orthogonal') and with per-video reads ('per_video', PerVideoReads), against one TASS-Net training
     step (bf16 autocast, forward + backward + Adam, --threads) on such a batch (goal: loader >= 5x the model's
     questions/s), and the GB/s a GPU step would need at --gpu-step-seconds per step (an assumption);
  4. codecs (none, blosc-lz4 shuffle, blosc-zstd1 shuffle, zstd 1, zstd 3): size on disk, write GB/s, random
     read ms cold and warm, on the maps below, the same with half of the values zeroed, and a real store.
The maps: random-weight CLIP-RN50 layer4 maps (avqa.features.encoders, computed in fp32) of generated scenes
panning a few pixels per second, scaled so the mean non-zero activation is 1 (the random trunk's maps are
~1e-3, where float16 turns subnormal and loses mantissa bits: real maps are O(1)), with a per-second,
per-channel gain (lognormal, sigma 0.1) so no two seconds are bit-identical, cast to float16 per second as the
shard stores hold them, then average-pooled 60 s -> T = 10 (pooling.pool_avg). A bank of distinct videos is
cycled: every chunk is compressed on its own, so repeats across chunks change neither sizes nor rates.
`baseline_store` rows cycle the videos of an existing pooled store (--baseline; the synthetic default's, whose
static scenes make the 10 segments nearly identical: more compressible than real video).

Prints the table on stderr and one JSON object on stdout (also written to --out).

    python benchmarks/pooled_store.py [--scale 0.1] [--workdir DIR] [--keep] [--out report.json]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from avqa.training.dataset import AVQADataset, QuestionBatchSampler, iterate_batches
from avqa.vocab import QUESTION_TYPES
from avqa.features.pooling import pool_avg
from avqa.store import open_new, open_read, write_strings

REAL_VIDEOS = 9288                   # MUSIC-AVQA's videos
T1, T, MAP, AUDIO_DIM = 60, 10, (7, 7, 2048), 128
VIDEO_BYTES = T * int(np.prod(MAP)) * 2  # one video's float16 maps
QUESTIONS_PER_VIDEO = (4, 5)         # MUSIC-AVQA: 45,867 questions over 9,288 videos
TOKENS, TOKEN_DIM, SENTENCE_DIM = 21, 512, 1024
BATCH = 64
LOADER_GOAL = 5.0                    # loader questions/s over the model's
WARM_READ_GOAL_MS = 10.0
DEFAULT_BASELINE = "/work/baseline/results/pooled/avg/train.zarr"
CODECS = ("none", "blosc_lz4_shuffle", "blosc_zstd1_shuffle", "zstd1", "zstd3")
PARTS = ("write", "read", "batch", "loader", "codecs")


def compressors(name: str):
    """The zarr v3 compressor of a codec name; 'default' is pooling.py's (zarr's default: zstd level 0 = 3)."""
    from zarr.codecs import BloscCodec, ZstdCodec

    table = {"default": "auto", "none": None,
             "blosc_lz4_shuffle": BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),
             "blosc_zstd1_shuffle": BloscCodec(cname="zstd", clevel=1, shuffle="shuffle"),
             "zstd1": ZstdCodec(level=1), "zstd3": ZstdCodec(level=3)}
    return table[name]


# --- maps ------------------------------------------------------------------------------------------------------
def panning_frames(n: int, seed: int, size: int = 224, scene_seconds: int = 8) -> np.ndarray:
    """(n, size, size, 3) uint8: smooth random scenes, a new one every `scene_seconds`, panning 6 px a second."""
    rng = np.random.default_rng(seed)
    frames = []
    for s in range(n):
        if s % scene_seconds == 0:
            coarse = rng.standard_normal((size // 8 + 2, (size + 6 * scene_seconds) // 8 + 2, 3))
            scene = np.kron(coarse, np.ones((8, 8, 1)))
        shift = 6 * (s % scene_seconds)
        frame = 128 + 50 * scene[:size, shift:shift + size] + rng.normal(0, 8, (size, size, 3))
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return np.stack(frames)


def clip_seconds(n_frames: int, seed: int) -> np.ndarray:
    """(n_frames, 7, 7, 2048) float16 per-second maps of the random-weight CLIP-RN50 trunk, scaled to mean 1 over
    non-zero activations (computed in fp32: the random trunk's ~1e-3 maps would be subnormal in float16)."""
    from avqa.features.encoders import clip_image_transform, load_clip

    model = load_clip("random", seed, torch.device("cpu"), bn3_gamma=0.3)   # config.yaml's weights_bn3_gamma
    images = clip_image_transform()(panning_frames(n_frames, seed))
    with torch.inference_mode():
        out = model.visual.forward_intermediates(images, indices=1, intermediates_only=True)
    maps = out["image_intermediates"][-1].permute(0, 2, 3, 1).numpy()       # (N, 7, 7, 2048) float32
    return (maps / maps[maps > 0].mean()).astype(np.float16)


def pooled_videos(seconds: np.ndarray, n_videos: int, seed: int) -> np.ndarray:
    """(n_videos, T, 7, 7, 2048) float16: each video 60 consecutive seconds of the bank (random start, cyclic),
    every second with its own per-channel gain, average-pooled to T segments as pooling.py does."""
    rng = np.random.default_rng(seed)
    videos = np.empty((n_videos, T, *MAP), dtype=np.float16)
    for v in range(n_videos):
        index = (rng.integers(len(seconds)) + np.arange(T1)) % len(seconds)
        gain = rng.lognormal(0.0, 0.1, (T1, 1, 1, MAP[-1])).astype(np.float32)
        shard = (seconds[index].astype(np.float32) * gain).astype(np.float16)   # as the shard stores hold it
        videos[v] = pool_avg(shard, T).astype(np.float16)
    return videos


def sparser(videos: np.ndarray, zero_fraction: float) -> np.ndarray:
    """The maps with their smallest values zeroed until `zero_fraction` of them are zero (a sparser trunk's
    ReLU): the codecs' ratios hinge on the zeros, and a trained CLIP's sparsity is not known here."""
    threshold = np.quantile(videos.astype(np.float32), zero_fraction)
    return np.where(videos > threshold, videos, np.float16(0))


def map_stats(videos: np.ndarray) -> dict:
    return {"zero_fraction": float((videos == 0).mean()), "mean": float(videos.astype(np.float32).mean()),
            "distinct_float16_values": int(np.unique(videos).size)}


def baseline_videos(path: str | Path, n_videos: int) -> np.ndarray | None:
    """Up to n_videos videos of an existing pooled store's `visual`, or None when there is no such store."""
    if not (Path(path) / "zarr.json").exists():
        return None
    visual = open_read(path)["visual"]
    if tuple(visual.shape[2:]) != MAP:
        raise ValueError(f"{path}: visual has shape {visual.shape}, expected (V, T, {', '.join(map(str, MAP))})")
    return visual[:min(n_videos, visual.shape[0])]


# --- stores and the page cache ---------------------------------------------------------------------------------
def store_files(path: str | Path) -> list[Path]:
    return [p for p in Path(path).rglob("*") if p.is_file()]


def disk_bytes(path: str | Path) -> int:
    return sum(p.stat().st_size for p in store_files(path))


def evict(path: str | Path, drop_caches: bool = False) -> None:
    """Make the next reads of the store cold: fsync and POSIX_FADV_DONTNEED every file (this store only, other
    jobs' caches are left alone), or drop the whole page cache (root). A VM host's own cache is out of reach."""
    for file in store_files(path):
        fd = os.open(file, os.O_RDONLY)
        try:
            os.fsync(fd)  # dirty pages cannot be dropped
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    if drop_caches:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def resident_fraction(files: list[Path]) -> float | None:
    """Fraction of the files' bytes in the page cache (util-linux fincore), None without fincore."""
    if not files or not shutil.which("fincore"):
        return None
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--raw", "--output", "RES,SIZE", *map(str, files)],
                         capture_output=True, text=True, check=True).stdout.split()
    resident, size = sum(map(int, out[0::2])), sum(map(int, out[1::2]))
    return resident / max(size, 1)


def chunk_file(store: str | Path, row: int) -> Path:
    return Path(store) / "visual" / "c" / str(row) / "0" / "0" / "0" / "0"


def create_pooled(path: str | Path, n_videos: int, codec: str = "default"):
    """A new pooled store's group and its empty `visual`, one chunk per video as pooling.py creates it."""
    store = open_new(path)
    visual = store.create_array("visual", shape=(n_videos, T, *MAP), dtype="float16", chunks=(1, T, *MAP),
                                compressors=compressors(codec))
    return store, visual


def finish_pooled(store, n_videos: int) -> None:
    """The small arrays and attrs the loader needs besides `visual`."""
    audio = np.random.default_rng(0).standard_normal((n_videos, T, AUDIO_DIM)).astype(np.float32)
    store.create_array("audio", shape=audio.shape, dtype="float32", chunks=audio.shape)[:] = audio
    write_strings(store, "video_id", video_ids(n_videos))
    store.attrs.update({"T1": T1, "T": T, "method": "avg", "split": "train"})


def fsync_files(path: str | Path) -> None:
    for file in store_files(path):
        fd = os.open(file, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_store(path: str | Path, bank: np.ndarray, n_videos: int, codec: str = "default") -> dict:
    """A pooled store of n_videos (the bank cycled), visual written one video per chunk as pooling.py does.
    Timed until the last visual write returned (buffered) and until every file was fsynced (durable)."""
    store, visual = create_pooled(path, n_videos, codec)
    start = time.perf_counter()
    for i in range(n_videos):
        visual[i] = bank[i % len(bank)]
    buffered = time.perf_counter() - start
    fsync_files(Path(path) / "visual")
    durable = time.perf_counter() - start
    finish_pooled(store, n_videos)
    raw = n_videos * VIDEO_BYTES
    on_disk = disk_bytes(Path(path) / "visual")
    return {"videos": n_videos, "raw_gb": raw / 1e9, "disk_gb": on_disk / 1e9, "ratio": raw / on_disk,
            "buffered_s": buffered, "durable_s": durable, "gb_per_s_buffered": raw / 1e9 / buffered,
            "gb_per_s_durable": raw / 1e9 / durable, "codecs": [str(c) for c in visual.metadata.codecs]}


def video_ids(n: int) -> list[str]:
    return [f"v{i:05d}" for i in range(n)]


# --- random reads ----------------------------------------------------------------------------------------------
def summary_ms(seconds: list[float]) -> dict:
    ms = 1e3 * np.asarray(seconds)
    return {"median": float(np.median(ms)), "p90": float(np.quantile(ms, 0.9)), "mean": float(ms.mean()),
            "n": len(ms)}


def timed_reads(visual, rows: np.ndarray) -> list[float]:
    times = []
    for row in rows:
        start = time.perf_counter()
        visual[int(row)]
        times.append(time.perf_counter() - start)
    return times


def random_reads(path: str | Path, n_reads: int, seed: int, drop_caches: bool = False) -> dict:
    """One random video's chunk through zarr: cold (evicted), then warm (the same videos again); and the bare
    chunk file read cold (other videos), to tell disk time from decode time."""
    visual = open_read(path)["visual"]
    rng = np.random.default_rng(seed)
    order = rng.permutation(visual.shape[0])
    rows, file_rows = order[:n_reads], order[n_reads:2 * n_reads]
    visual[int(rows[0])]  # zarr's first read sets up its event loop: not a cold-disk cost
    evict(path, drop_caches)
    resident = resident_fraction([chunk_file(path, r) for r in rows])
    cold = timed_reads(visual, rows)
    warm = timed_reads(visual, rows)
    file_times = []
    for row in file_rows:
        start = time.perf_counter()
        chunk_file(path, row).read_bytes()
        file_times.append(time.perf_counter() - start)
    report = {"cold": summary_ms(cold), "warm": summary_ms(warm),
              "resident_fraction_after_evict": resident}
    if file_times:
        report["file_read_cold"] = summary_ms(file_times)
    return report


# --- the training loader and the model -------------------------------------------------------------------------
def write_questions(root: Path, n_videos: int, seed: int) -> tuple[Path, Path]:
    """annotations parquet (4-5 questions per video) and questions.zarr (CLIP text features) as the loader reads
    them, random values (the loader's cost does not depend on them)."""
    rng = np.random.default_rng(seed)
    per_video = rng.integers(QUESTIONS_PER_VIDEO[0], QUESTIONS_PER_VIDEO[1] + 1, size=n_videos)
    vids = np.repeat(np.asarray(video_ids(n_videos)), per_video)
    n = len(vids)
    kinds = [QUESTION_TYPES[i % len(QUESTION_TYPES)] for i in range(n)]
    table = pd.DataFrame({"question_id": np.arange(n, dtype=np.int64), "video_id": vids,
                          "group": [g for g, _, _ in kinds], "type": [t for _, t, _ in kinds],
                          "type_key": [k for _, _, k in kinds], "answer_idx": rng.integers(0, 42, n)})
    annotations = root / "annotations.parquet"
    table.to_parquet(annotations, index=False)
    token_mask = np.arange(TOKENS)[None] < rng.integers(8, TOKENS + 1, size=(n, 1))
    store = open_new(root / "questions.zarr")
    store.create_array("question_id", shape=(n,), dtype="int64")[:] = table["question_id"].to_numpy()
    store.create_array("sentence", shape=(n, SENTENCE_DIM), dtype="float32")[:] = (
        rng.standard_normal((n, SENTENCE_DIM), dtype=np.float32))
    store.create_array("tokens", shape=(n, TOKENS, TOKEN_DIM), dtype="float16")[:] = (
        rng.standard_normal((n, TOKENS, TOKEN_DIM), dtype=np.float32).astype(np.float16))
    store.create_array("token_mask", shape=token_mask.shape, dtype="bool")[:] = token_mask
    store.create_array("target_mask", shape=token_mask.shape, dtype="bool")[:] = token_mask & (
        np.arange(TOKENS)[None] == 3)
    return annotations, root / "questions.zarr"


class PerVideoReads(AVQADataset):
    """The loader with one chunk read per unique video instead of ONE orthogonal selection: the change to
    avqa.training.dataset this benchmark weighs (zarr 3.1's orthogonal selection copies each chunk by fancy indexing)."""

    def read_visual(self, rows: np.ndarray) -> np.ndarray:
        if "visual" not in self.modalities or self.in_memory:
            return super().read_visual(rows)
        return read_per_video(self._visual_array, rows)


def read_per_video(visual, rows: np.ndarray) -> np.ndarray:
    out = np.empty((len(rows), *visual.shape[1:]), dtype=visual.dtype)
    for i, row in enumerate(rows):
        out[i] = visual[int(row)]
    return out


def batch_reads(path: str | Path, videos: int, rounds: int, seed: int, drop_caches: bool = False) -> dict:
    """ms to read one batch's `videos` unique videos (sorted random rows), cold and warm: ONE orthogonal selection
    (dataset.py) vs one read per video; and the float16 -> float32 conversion the batch then pays (1 thread)."""
    visual = open_read(path)["visual"]
    rng = np.random.default_rng(seed)
    times: dict[str, list[float]] = {}
    ways = {"orthogonal": lambda rows: visual.get_orthogonal_selection((rows,)),
            "per_video": lambda rows: read_per_video(visual, rows)}
    for _ in range(rounds):
        for way, read in ways.items():
            rows = np.sort(rng.choice(visual.shape[0], size=min(videos, visual.shape[0]), replace=False))
            evict(path, drop_caches)
            for temp in ("cold", "warm"):
                start = time.perf_counter()
                maps = read(rows)
                times.setdefault(f"{way}_{temp}", []).append(time.perf_counter() - start)
            start = time.perf_counter()
            torch.from_numpy(maps).float()
            times.setdefault("to_float32", []).append(time.perf_counter() - start)
    report = {name: 1e3 * float(np.median(t)) for name, t in times.items()}
    report["videos"] = min(videos, visual.shape[0])
    return report


def loader_seconds(dataset: AVQADataset, batches: list[np.ndarray], workers: int) -> float:
    """Wall seconds to build every batch (worker start-up included, as a training epoch pays it)."""
    start = time.perf_counter()
    for _ in iterate_batches(dataset, batches, num_workers=workers):
        pass
    return time.perf_counter() - start


def bench_loader(datasets: dict[str, AVQADataset], pooled: Path, ks: tuple[int, ...], workers: tuple[int, ...],
                 n_batches: int, seed: int, drop_caches: bool = False) -> dict:
    """questions/s of each loader variant and (k, workers) on the same batches: cold (store evicted), then warm
    (the same batches again)."""
    report = {name: {} for name in datasets}
    video_row = next(iter(datasets.values())).video_row
    epoch = 0
    for k in ks:
        sampler = QuestionBatchSampler(video_row, BATCH, questions_per_video=k, seed=seed)
        for w in workers:
            epoch += 1  # other batches per setting
            batches = sampler.batches(epoch)[:n_batches]
            questions = sum(len(b) for b in batches)
            unique = float(np.mean([len(np.unique(video_row[b])) for b in batches]))
            for name, dataset in datasets.items():
                evict(pooled, drop_caches)
                cold = loader_seconds(dataset, batches, w)
                warm = loader_seconds(dataset, batches, w)
                report[name][f"k{k}_w{w}"] = {
                    "batches": len(batches), "unique_videos_per_batch": unique,
                    "questions_per_s_cold": questions / cold, "questions_per_s_warm": questions / warm,
                    "decoded_gb_per_s_warm": len(batches) * unique * VIDEO_BYTES / 1e9 / warm,
                }
    return report


def model_step_seconds(batch: dict, steps: int) -> float:
    """Mean wall seconds of one TASS-Net training step (bf16 autocast forward + loss, backward, Adam) on
    `batch`, after one warm-up step."""
    from avqa.models import build_model

    torch.manual_seed(0)
    model = build_model("tass").train()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    inputs = {k: v for k, v in batch.items() if k != "question_id"}

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(inputs)
            loss, _ = model.loss(inputs, out)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def bench_model(dataset: AVQADataset, ks: tuple[int, ...], steps: int, seed: int) -> dict:
    """The model's consumption in questions/s on the first batch of each k's sampler (its unique videos)."""
    report = {}
    for k in ks:
        rows = QuestionBatchSampler(dataset.video_row, BATCH, questions_per_video=k, seed=seed).batches(0)[0]
        batch = dataset.batch(rows)
        seconds = model_step_seconds(batch, steps)
        report[f"k{k}"] = {"questions": len(rows), "unique_videos": int(batch["visual"].shape[0]),
                           "seconds_per_step": seconds, "questions_per_s": len(rows) / seconds}
    return report


def loader_over_model(loader: dict, model: dict) -> dict:
    """{variant: {setting_cold|warm: loader questions/s over the model's at the same k}}."""
    ratios = {}
    for variant, settings in loader.items():
        ratios[variant] = {}
        for name, rates in settings.items():
            consumed = model[name.split("_")[0]]["questions_per_s"]
            for temp in ("cold", "warm"):
                ratios[variant][f"{name}_{temp}"] = rates[f"questions_per_s_{temp}"] / consumed
    return ratios


def gpu_need(loader: dict, step_seconds: float, compression: float) -> dict:
    """GB/s a GPU step of `step_seconds` per batch of 64 would consume: the batch's unique videos' maps."""
    need = {}
    for name, rates in loader.items():
        k = name.split("_")[0]
        if k in need:
            continue
        per_step = rates["unique_videos_per_batch"] * VIDEO_BYTES
        need[k] = {"unique_videos_per_batch": rates["unique_videos_per_batch"], "mb_per_step": per_step / 1e6,
                   "gb_per_s_decoded_float16": per_step / 1e9 / step_seconds,
                   "gb_per_s_from_disk": per_step / compression / 1e9 / step_seconds,
                   "questions_per_s": BATCH / step_seconds}
    return need


# --- codecs ----------------------------------------------------------------------------------------------------
def bench_codecs(root: Path, sources: dict[str, np.ndarray], n_videos: int, n_reads: int, rounds: int, seed: int,
                 drop_caches: bool = False) -> dict:
    """Per source and codec: size on disk, write GB/s (the codecs' stores written video by video in turn, so a
    busy spell of the machine hits them alike), random read ms cold and warm (best median of `rounds` rounds,
    the codecs interleaved within a round)."""
    report = {}
    for source, bank in sources.items():
        paths = {codec: root / f"codec_{source}_{codec}.zarr" for codec in CODECS}
        stores = {codec: create_pooled(path, n_videos, codec) for codec, path in paths.items()}
        seconds = dict.fromkeys(CODECS, 0.0)
        for i in range(n_videos):
            for codec, (_, visual) in stores.items():
                start = time.perf_counter()
                visual[i] = bank[i % len(bank)]
                seconds[codec] += time.perf_counter() - start
        report[source] = {}
        for codec, (store, _) in stores.items():
            finish_pooled(store, n_videos)
            on_disk = disk_bytes(paths[codec] / "visual")
            report[source][codec] = {"disk_mb": on_disk / 1e6, "ratio": n_videos * VIDEO_BYTES / on_disk,
                                     "write_gb_per_s_buffered": n_videos * VIDEO_BYTES / 1e9 / seconds[codec],
                                     "read_ms_cold": float("inf"), "read_ms_warm": float("inf")}
        for r in range(rounds):
            for codec in CODECS:
                reads = random_reads(paths[codec], n_reads, seed + 100 * r, drop_caches)
                entry = report[source][codec]
                entry["read_ms_cold"] = min(entry["read_ms_cold"], reads["cold"]["median"])
                entry["read_ms_warm"] = min(entry["read_ms_warm"], reads["warm"]["median"])
        for path in paths.values():
            shutil.rmtree(path)
    return report


def zstd0_is_zstd3(chunk: np.ndarray) -> bool:
    """Whether zstd level 0 (zarr's default, pooling.py's codec) writes the same bytes as level 3 (libzstd's
    default level), so the zstd3 row stands for the store pooling.py writes."""
    import numcodecs

    return numcodecs.Zstd(level=0).encode(chunk.tobytes()) == numcodecs.Zstd(level=3).encode(chunk.tobytes())


# --- report ----------------------------------------------------------------------------------------------------
def rounded(value, digits: int = 3):
    if isinstance(value, float):
        return round(value, digits) if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    return value


def table(report: dict) -> str:
    """The report as readable lines."""
    maps = report["maps"]
    lines = [f"pooled store: {report['videos']} videos (scale {report['scale']}), {report['raw_gb']:.2f} GB of "
             f"float16 maps; torch threads {report['threads']}; load average {report['load_average_start']:.1f} "
             f"-> {report['load_average_end']:.1f}",
             f"maps: {100 * maps['zero_fraction']:.1f}% zeros, {maps['distinct_float16_values']} distinct float16 "
             f"values; zstd level 0 (pooling.py's) == level 3: {maps['zstd0_is_zstd3']}"]
    if "write" in report:
        w = report["write"]
        lines.append(f"write (pooling.py's codec): {w['gb_per_s_buffered']:.3f} GB/s buffered, "
                     f"{w['gb_per_s_durable']:.3f} GB/s durable; {w['disk_gb']:.2f} GB on disk "
                     f"(ratio {w['ratio']:.2f})")
    if "random_read_ms" in report:
        r = report["random_read_ms"]
        lines.append(f"one video's read, median (p90) ms: cold {r['cold']['median']:.1f} ({r['cold']['p90']:.1f}), "
                     f"warm {r['warm']['median']:.1f} ({r['warm']['p90']:.1f}); goal warm < {WARM_READ_GOAL_MS:.0f}"
                     + (f"; bare file read cold {r['file_read_cold']['median']:.1f}" if "file_read_cold" in r else ""))
    if "batch_read_ms" in report:
        r = report["batch_read_ms"]
        lines.append(f"one batch's {r['videos']} videos, ms: orthogonal selection cold {r['orthogonal_cold']:.0f} "
                     f"warm {r['orthogonal_warm']:.0f}; per-video reads cold {r['per_video_cold']:.0f} warm "
                     f"{r['per_video_warm']:.0f}; float16 -> float32 {r['to_float32']:.0f}")
    if "loader" in report:
        lines.append(f"{'loader':<12}{'setting':<9}{'videos/batch':>13}{'q/s cold':>10}{'q/s warm':>10}"
                     f"{'model q/s':>11}{'cold/model':>12}{'warm/model':>12}")
        for variant, settings in report["loader"].items():
            for name, rates in settings.items():
                model = report["model"][name.split("_")[0]]["questions_per_s"]
                ratio = report["loader_over_model"][variant]
                lines.append(f"{variant:<12}{name:<9}{rates['unique_videos_per_batch']:>13.1f}"
                             f"{rates['questions_per_s_cold']:>10.1f}{rates['questions_per_s_warm']:>10.1f}"
                             f"{model:>11.2f}{ratio[name + '_cold']:>12.1f}{ratio[name + '_warm']:>12.1f}")
        for k, need in report["gpu_need"].items():
            lines.append(f"GPU at {report['gpu_step_seconds']} s/step, {k}: {need['mb_per_step']:.0f} MB/step = "
                         f"{need['gb_per_s_decoded_float16']:.2f} GB/s decoded, {need['gb_per_s_from_disk']:.2f} "
                         f"GB/s from disk, {need['questions_per_s']:.0f} q/s")
    for source, codecs in report.get("codecs", {}).items():
        lines.append(f"codecs on {source} ({report['codec_sources'][source]['zero_fraction'] * 100:.0f}% zeros):")
        lines.append(f"  {'codec':<22}{'MB on disk':>11}{'ratio':>7}{'write GB/s':>11}{'read ms cold':>13}"
                     f"{'read ms warm':>13}")
        for codec, c in codecs.items():
            cold = "n/a" if c["read_ms_cold"] is None else f"{c['read_ms_cold']:.1f}"
            warm = "n/a" if c["read_ms_warm"] is None else f"{c['read_ms_warm']:.1f}"
            lines.append(f"  {codec:<22}{c['disk_mb']:>11.1f}{c['ratio']:>7.2f}{c['write_gb_per_s_buffered']:>11.3f}"
                         f"{cold:>13}{warm:>13}")
    return "\n".join(lines)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1, help="fraction of MUSIC-AVQA's 9,288 videos")
    parser.add_argument("--workdir", help="the stores go in a new folder here (default: under $TMPDIR or /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep that folder (default: deleted at the end)")
    parser.add_argument("--out", help="also write the JSON report here")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--frames", type=int, default=24, help="distinct CLIP seconds in the bank")
    parser.add_argument("--bank-videos", type=int, default=32, help="distinct pooled videos, cycled")
    parser.add_argument("--reads", type=int, default=40, help="random video reads per measurement")
    parser.add_argument("--batches", type=int, default=16, help="loader batches per setting")
    parser.add_argument("--batch-rounds", type=int, default=3, help="batch reads per way (median kept)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--questions-per-video", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--model-steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (config.yaml train.threads: 1)")
    parser.add_argument("--gpu-step-seconds", type=float, default=0.05,
                        help="assumed GPU seconds per TASS-Net step of 64 questions")
    parser.add_argument("--codec-videos", type=int, default=200, help="videos per codec store")
    parser.add_argument("--codec-rounds", type=int, default=2)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="a pooled store to cycle as a second source")
    parser.add_argument("--drop-caches", action="store_true",
                        help="cold = drop the whole page cache (root; slows other jobs) besides evicting the store")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    n_videos = max(2, round(REAL_VIDEOS * args.scale))
    root = Path(tempfile.mkdtemp(prefix="pooled_store_bench_", dir=args.workdir))
    report = {"scale": args.scale, "videos": n_videos, "raw_gb": n_videos * VIDEO_BYTES / 1e9,
              "full_size_raw_gb": REAL_VIDEOS * VIDEO_BYTES / 1e9, "threads": args.threads,
              "cold_method": "fsync + posix_fadvise(DONTNEED) per store file"
                             + (" + /proc/sys/vm/drop_caches" if args.drop_caches else ""),
              "load_average_start": os.getloadavg()[0]}
    try:
        torch.set_num_threads(2)  # making the maps is not measured
        log(f"maps: random CLIP-RN50 on {args.frames} generated seconds, {args.bank_videos} pooled videos")
        bank = pooled_videos(clip_seconds(args.frames, args.seed), args.bank_videos, args.seed)
        report["maps"] = {**map_stats(bank), "zstd0_is_zstd3": zstd0_is_zstd3(bank[0])}
        torch.set_num_threads(args.threads)
        pooled = root / "pooled" / "train.zarr"
        if {"write", "read", "batch", "loader"} & set(args.parts):
            log(f"write: {n_videos} videos into {pooled}")
            report["write"] = write_store(pooled, bank, n_videos)
        if "read" in args.parts:
            log("random reads")
            report["random_read_ms"] = random_reads(pooled, min(args.reads, n_videos // 2 or 1), args.seed,
                                                    args.drop_caches)
        if "batch" in args.parts:
            log("batch reads")
            report["batch_read_ms"] = batch_reads(pooled, BATCH, args.batch_rounds, args.seed, args.drop_caches)
        if "loader" in args.parts:
            log("loader")
            annotations, questions = write_questions(root, n_videos, args.seed)
            datasets = {"orthogonal": AVQADataset(annotations, pooled, questions, in_memory=False),
                        "per_video": PerVideoReads(annotations, pooled, questions, in_memory=False)}
            report["questions"] = len(datasets["orthogonal"])
            ks = tuple(args.questions_per_video)
            report["loader"] = bench_loader(datasets, pooled, ks, tuple(args.workers), args.batches, args.seed,
                                            args.drop_caches)
            log("model steps")
            report["model"] = bench_model(datasets["orthogonal"], ks, args.model_steps, args.seed)
            report["loader_over_model"] = loader_over_model(report["loader"], report["model"])
            report["loader_goal"] = LOADER_GOAL
            report["gpu_step_seconds"] = args.gpu_step_seconds
            report["gpu_need"] = gpu_need(report["loader"]["orthogonal"], args.gpu_step_seconds,
                                          report["write"]["ratio"])
        if "codecs" in args.parts:
            sources = {"clip_random_rn50": bank, "clip_random_rn50_half_zeros": sparser(bank, 0.5)}
            baseline = baseline_videos(args.baseline, args.bank_videos)
            if baseline is not None:
                sources["baseline_store"] = baseline
            report["codec_sources"] = {name: map_stats(maps) for name, maps in sources.items()}
            log(f"codecs on {', '.join(sources)}")
            codec_videos = min(args.codec_videos, n_videos)
            report["codec_videos"] = codec_videos
            report["codecs"] = bench_codecs(root, sources, codec_videos, min(args.reads, codec_videos // 2 or 1),
                                            args.codec_rounds, args.seed, args.drop_caches)
    finally:
        if args.keep:
            report["workdir"] = str(root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    report["load_average_end"] = os.getloadavg()[0]
    report = rounded(report)
    print(table(report), file=sys.stderr)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()
