"""The device benchmark: CLIP-RN50 + VGGish extraction and a TASS-Net training epoch on this machine, projected to
all of MUSIC-AVQA (9,288 videos of up to 60 s; 45,867 questions). One command, one table (docs/device.md).

    python benchmarks/device.py [--size tiny|cpu|full] [--device auto|cpu|cuda] [--out report.json]
    benchmarks/device.sh [--size full]        # the GPU box: installs the carried wheels first

Parts, each skipped with a line saying why when what it needs is missing (never a crash):
  setup: which of torch / open_clip / torchvggish / decord / torchcodec / zarr / ffmpeg import or exist, torch's
    and CUDA's versions, the GPU, the cores.
  clips: moving clips (testsrc2 under temporal noise, x264 High with B-frames, a YouTube-like bitrate cap, AAC),
    carried in --clips (made here by benchmarks/device_prepare.sh) or made now with ffmpeg; without ffmpeg, with
    torchcodec's encoder or OpenCV's (video only, MPEG-4 part 2 for OpenCV: cheaper to decode than H.264). The
    shard cycles them up to --videos files (links), so decoding work is per file, as in a real shard.
  model: CLIP-RN50 on T1 preprocessed frames per video and VGGish on T1 log-mel examples per video, inputs made
    beforehand (random values: the cost does not depend on them): the encoders' own rate, the GPU bound.
  host decode: frames nearest each second's centre + CLIP's preprocessing, decord called directly (no ffprobe, so it
    runs where no ffmpeg binary is), in a pool of --workers processes: the host's decoding rate on its cores.
  extraction: avqa.features.extract.extract_shard for clip_rn50 per frame decoder (decord; torchcodec on the CPU;
    torchcodec on the GPU) and vggish, decoding in --workers DataLoader processes, the stores written: the
    pipeline's rate. Its decode CPU-s per clip come from a decode-only pass over the same shard.
  train: TASS-Net (T = 10 segments of 7x7x2048 maps) training steps with bf16 autocast on batches of 64 questions
    from a pooled store the benchmark writes at the full shapes (random float16 maps, --store-videos videos,
    4-5 questions each; benchmarks/pooled_store.py's writers), and the loader (AVQADataset, --loader-workers) over
    the same store: questions/s of each and the projected epoch of 45,867 questions.

Columns: rate (videos/s or questions/s, wall), busy (time inside the model's calls / wall: for CUDA the calls
return host arrays, so they include the GPU's work; NVML's utilisation, when torch can read it, is in the JSON),
decode CPU-s per clip (process + children CPU), host cores (CPU-s of the run / its wall), and the projection
(9,288 videos / rate, at this run's T1; 45,867 questions / the slower of loader and step).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import importlib.metadata
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

MUSIC_AVQA_VIDEOS = 9288
MUSIC_AVQA_QUESTIONS = 45867
CLIP_KINDS = ("noise", "pan")           # tests/media_factory.moving_source: distinct moving pictures
MODULES = ("torch", "torchvision", "open_clip", "torchvggish", "decord", "torchcodec", "zarr", "pydantic",
           "jsonschema", "snakemake")
DISTRIBUTIONS = {"open_clip": "open_clip_torch"}   # module -> its package's name, where they differ


@dataclasses.dataclass(frozen=True)
class Size:
    """How big one run is: the clips, the shard, the store and the steps."""

    clip_seconds: int
    clip_size: tuple[int, int]
    T1: int
    videos: int            # files in the extraction shard (the clips cycled)
    store_videos: int      # pooled store written for the loader
    loader_batches: int
    steps: int


SIZES = {
    "tiny": Size(clip_seconds=4, clip_size=(320, 240), T1=4, videos=2, store_videos=16, loader_batches=2, steps=1),
    "cpu": Size(clip_seconds=60, clip_size=(640, 360), T1=60, videos=3, store_videos=96, loader_batches=6, steps=2),
    "full": Size(clip_seconds=60, clip_size=(640, 360), T1=60, videos=64, store_videos=512, loader_batches=40,
                 steps=20),
}


# --- measuring --------------------------------------------------------------------------------------------------
def cpu_seconds() -> float:
    """User + system CPU of this process and its reaped children (decode workers, ffmpeg)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class NvmlSampler:
    """Mean of torch.cuda.utilization() (NVML, the last sample period's busy fraction) sampled every 0.1 s; None
    where NVML cannot be read (no GPU, no nvidia-ml-py)."""

    def __init__(self, device: torch.device):
        self.samples: list[float] = []
        self.enabled = device.type == "cuda" and self._readable(device)
        self.device = device
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _readable(device) -> bool:
        try:
            torch.cuda.utilization(device)
            return True
        except Exception:  # noqa: BLE001 (pynvml missing or NVML refuses: report none)
            return False

    def _run(self):
        while not self._stop.wait(0.1):
            self.samples.append(torch.cuda.utilization(self.device) / 100)

    def __enter__(self):
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._stop.set()
            self._thread.join()

    @property
    def mean(self) -> float | None:
        return round(float(np.mean(self.samples)), 3) if self.samples else None


class ModelTimer:
    """Wraps a forward function: seconds spent inside it (the call returns host arrays, so the device's work is
    included)."""

    def __init__(self, forward):
        self.forward, self.seconds = forward, 0.0

    def __call__(self, inputs):
        start = time.perf_counter()
        try:
            return self.forward(inputs)
        finally:
            self.seconds += time.perf_counter() - start


def row(part: str, setting: str, **values) -> dict:
    return {"part": part, "setting": setting, **values}


def skipped(part: str, setting: str, why: str) -> dict:
    return row(part, setting, status="skipped", note=why)


def projected_hours(items: int, rate: float) -> float:
    return items / rate / 3600


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:160]


# --- setup ------------------------------------------------------------------------------------------------------
def setup_check(device: torch.device) -> dict:
    """What imports here and what the machine is; each missing module a line, nothing raised."""
    modules = {}
    for name in MODULES:
        try:
            modules[name] = f"ok {module_version(name, importlib.import_module(name))}"
        except Exception as err:  # noqa: BLE001 (an import can fail in many ways: missing, broken libraries)
            modules[name] = f"missing ({first_line(err)})"
    info = {"python": sys.version.split()[0], "modules": modules, "torch": torch.__version__,
            "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(), "device": device.type,
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "cores": len(os.sched_getaffinity(0)), "ffmpeg": shutil.which("ffmpeg"),
            "ffprobe": shutil.which("ffprobe"), "load_average": round(os.getloadavg()[0], 2)}
    return info


def module_version(name: str, module) -> str:
    try:
        return importlib.metadata.version(DISTRIBUTIONS.get(name, name))
    except importlib.metadata.PackageNotFoundError:
        return str(getattr(module, "__version__", "?"))


def have(setup: dict, *names: str) -> str | None:
    """None when every module imports, else why not (for a skipped row)."""
    missing = [n for n in names if not setup["modules"][n].startswith("ok")]
    return f"{', '.join(missing)} missing" if missing else None


# --- clips ------------------------------------------------------------------------------------------------------
def carried_clips(folder: Path, size: Size) -> list[Path]:
    """Clips made by device_prepare.sh for this size (name carries size and length), if any."""
    pattern = f"*_{size.clip_size[0]}x{size.clip_size[1]}_25fps_{size.clip_seconds}s_*.mp4"
    return sorted(folder.glob(pattern)) if folder.is_dir() else []


def make_clips(folder: Path, size: Size, setup: dict) -> tuple[list[Path], str]:
    """Moving 25-fps clips of `size`, and how they were made: ffmpeg (x264 + AAC, benchmarks/decoders.py's
    crawled-looking encode), else torchcodec's encoder, else OpenCV's (video only)."""
    if setup["ffmpeg"]:
        import decoders as decoder_bench  # benchmarks/decoders.py: one definition of the encode
        clips = [decoder_bench.clip(folder, kind, size.clip_size, "25", size.clip_seconds) for kind in CLIP_KINDS]
        return clips, "ffmpeg: x264 High, B-frames, YouTube-like bitrate cap, AAC 44.1 kHz"
    frames = moving_frames(size)
    if setup["modules"]["torchcodec"].startswith("ok"):
        with contextlib.suppress(Exception):
            from torchcodec.encoders import VideoEncoder
            path = folder / f"tc_{size.clip_size[0]}x{size.clip_size[1]}_25fps_{size.clip_seconds}s.mp4"
            folder.mkdir(parents=True, exist_ok=True)
            VideoEncoder(torch.from_numpy(frames).permute(0, 3, 1, 2), frame_rate=25).to_file(
                path, codec="libx264", crf=23, preset="veryfast")
            return [path], "torchcodec VideoEncoder: x264, no audio"
    import cv2
    path = folder / f"cv2_{size.clip_size[0]}x{size.clip_size[1]}_25fps_{size.clip_seconds}s.mp4"
    folder.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, size.clip_size)
    for frame in frames:
        writer.write(frame[..., ::-1])
    writer.release()
    return [path], "OpenCV VideoWriter: MPEG-4 part 2, no audio (cheaper to decode than H.264)"


def moving_frames(size: Size, seed: int = 0) -> np.ndarray:
    """(n, H, W, 3) uint8: a panning colour gradient under temporal noise, every frame different."""
    width, height = size.clip_size
    n = size.clip_seconds * 25
    rng = np.random.default_rng(seed)
    x = np.arange(width)[None, :]
    y = np.arange(height)[:, None]
    frames = np.empty((n, height, width, 3), dtype=np.uint8)
    for i in range(n):
        shift = 4 * i
        base = np.stack([(x + shift) % 256 + 0 * y, (y + shift // 2) % 256 + 0 * x, ((x + y + i) // 2) % 256], -1)
        frames[i] = np.clip(base + rng.normal(0, 12, base.shape), 0, 255)
    return frames


def shard_folder(folder: Path, clips: list[Path], n: int) -> list[str]:
    """`n` video files (links to the clips, cycled) named v000.mp4 ...: the shard's ids."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"v{i:03d}" for i in range(n)]
    for i, video_id in enumerate(ids):
        (folder / f"{video_id}.mp4").symlink_to(clips[i % len(clips)].resolve())
    return ids


# --- model only -------------------------------------------------------------------------------------------------
def model_rows(config: dict, size: Size, device: torch.device, setup: dict, videos: int) -> list[dict]:
    """Each encoder on inputs made beforehand: videos/s of the model alone (the device's bound)."""
    rows = []
    for encoder, needs, item in (("clip_rn50", ("open_clip",), (3, 224, 224)),
                                 ("vggish", ("torchvggish",), (1, 96, 64))):
        why = have(setup, *needs, "pydantic")
        if why:
            rows.append(skipped("model", encoder, why))
            continue
        try:
            run = load(config, encoder, size, device, workers=0)
            inputs = torch.randn(videos * size.T1, *item, generator=torch.Generator().manual_seed(0))
            batches = list(torch.split(inputs, run.batch_size))
            run.forward(batches[0])                       # warm-up: lazy initialisation, cuDNN's choice
            synchronize(device)
            start = time.perf_counter()
            for batch in batches:
                run.forward(batch)
            wall = time.perf_counter() - start
            rate = videos / wall
            rows.append(row("model", encoder, status="ok", videos=videos, rate=rate, busy=1.0,
                            projection_h=projected_hours(MUSIC_AVQA_VIDEOS, rate),
                            note=f"batch {run.batch_size}, {run.precision}"))
        except Exception as err:  # noqa: BLE001 (a part that cannot run here is a row, not a crash)
            rows.append(row("model", encoder, status="failed", note=first_line(err)))
    return rows


def load(config: dict, encoder: str, size: Size, device: torch.device, workers: int, decode: dict | None = None):
    """The encoder as the pipeline loads it (avqa.workflow.extract_spec of the config), at this run's T1,
    device and decode workers; decode: features.decode keys to change."""
    from avqa import workflow as W
    from avqa.features.extract import load_encoder

    spec = spec_for(W, config, encoder, size, device, workers, decode)
    return load_encoder(spec)


def spec_for(W, config: dict, encoder: str, size: Size, device: torch.device, workers: int,
             decode: dict | None = None):
    """The pipeline's extract spec at this size; decode: features.decode changes (frame encoders) or
    {"audio_backend": ...} (VGGish)."""
    spec = W.extract_spec(config, encoder)
    changes = {"T1": size.T1, "device": device.type, "workers": workers}
    if decode and spec.decode is not None:
        changes["decode"] = dataclasses.replace(spec.decode, **decode)
    if decode and spec.audio_backend is not None:
        changes["audio_backend"] = decode["audio_backend"]
    return dataclasses.replace(spec, **changes)


# --- host decode (decord directly) --------------------------------------------------------------------------------
def _decord_centre_frames(job: tuple[str, int]) -> float:
    """CPU seconds of one video's frames nearest each second's centre + CLIP's preprocessing, one thread."""
    import decord

    from avqa.features import encoders, media

    path, T1 = job
    torch.set_num_threads(1)
    start = time.process_time()
    reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    starts = reader.get_frame_timestamp(range(len(reader)))[:, 0]
    first, length = float(starts.min()), float(reader.get_frame_timestamp(len(reader) - 1)[1] - starts.min())
    n = min(T1, media.count_seconds(length, 1))
    frames = reader.get_batch(media.nearest_frames(starts, first + media.centre_times(n)).tolist()).asnumpy()
    encoders.clip_image_transform()(frames)
    return time.process_time() - start


def host_decode_row(paths: list[Path], size: Size, workers: int, setup: dict) -> dict:
    why = have(setup, "decord", "open_clip")
    if why:
        return skipped("host decode", "decord direct", why)
    import multiprocessing

    jobs = [(str(p), size.T1) for p in paths]
    processes = max(1, workers)
    context = multiprocessing.get_context("spawn")   # no CUDA state in the children
    with context.Pool(processes) as pool:
        pool.map(_decord_centre_frames, jobs[:processes])          # start-up and imports, not measured
        start = time.perf_counter()
        cpu = pool.map(_decord_centre_frames, jobs)
        wall = time.perf_counter() - start
    rate = len(jobs) / wall
    return row("host decode", f"decord direct, {processes} processes", status="ok", videos=len(jobs), rate=rate,
               decode_cpu_per_clip=sum(cpu) / len(jobs), host_cores=sum(cpu) / wall,
               projection_h=projected_hours(MUSIC_AVQA_VIDEOS, rate),
               note="frames nearest each centre + CLIP preprocessing; no ffprobe")


# --- extraction (the pipeline) ------------------------------------------------------------------------------------
BACKENDS = {"decord": {"backend": "decord", "device": "cpu"},
            "torchcodec cpu": {"backend": "torchcodec", "device": "cpu", "seek_mode": "exact"},
            "torchcodec cuda": {"backend": "torchcodec", "device": "cuda", "seek_mode": "exact"}}


def extraction_rows(config: dict, size: Size, device: torch.device, setup: dict, videos_dir: Path,
                    ids: list[str], workers: int, work: Path) -> list[dict]:
    rows = []
    clip_why = have(setup, "open_clip", "zarr", "pydantic")
    for name, decode in BACKENDS.items():
        why = clip_why or backend_unavailable(name, decode, setup, device)
        rows.append(skipped("extraction", f"clip_rn50, {name}", why) if why else
                    guarded(lambda: extract_row(config, "clip_rn50", name, decode, size, device, videos_dir, ids,
                                                workers if decode["device"] == "cpu" else 0, work),
                            "extraction", f"clip_rn50, {name}"))
    vggish_why = have(setup, "torchvggish", "zarr", "pydantic")
    for name, audio in AUDIO_BACKENDS.items():
        why = vggish_why or audio_unavailable(audio["audio_backend"], setup)
        rows.append(skipped("extraction", f"vggish, {name}", why) if why else
                    guarded(lambda: extract_row(config, "vggish", name, audio, size, device, videos_dir, ids,
                                                workers, work), "extraction", f"vggish, {name}"))
    return rows


AUDIO_BACKENDS = {"torchcodec audio": {"audio_backend": "torchcodec"}, "ffmpeg audio": {"audio_backend": "ffmpeg"}}


def audio_unavailable(backend: str, setup: dict) -> str | None:
    if backend == "ffmpeg":
        return None if setup["ffmpeg"] else "no ffmpeg binary: features.audio_backend ffmpeg runs it per video"
    if not setup["modules"]["torchcodec"].startswith("ok"):
        return "torchcodec cannot be imported (" + setup["modules"]["torchcodec"] + ")"
    return None


def backend_unavailable(name: str, decode: dict, setup: dict, device: torch.device) -> str | None:
    if decode["backend"] == "decord":
        return have(setup, "decord") or (None if setup["ffprobe"] else
                                         "no ffprobe binary: the decord path reads the file's length with ffprobe")
    if not setup["modules"]["torchcodec"].startswith("ok"):
        return "torchcodec cannot be imported (" + setup["modules"]["torchcodec"] + ")"
    if decode["device"] == "cuda" and device.type != "cuda":
        return "no CUDA device"
    return None


def guarded(measure, part: str, setting: str) -> dict:
    try:
        return measure()
    except Exception as err:  # noqa: BLE001 (a part that cannot run here is a row, not a crash)
        return row(part, setting, status="failed", note=first_line(err))


def extract_row(config: dict, encoder: str, name: str, decode: dict | None, size: Size, device: torch.device,
                videos_dir: Path, ids: list[str], workers: int, work: Path) -> dict:
    """One shard through extract_shard (stores written), after a one-video warm-up; and a decode-only pass."""
    from avqa import workflow as W
    from avqa.features.extract import extract_shard, load_encoder, start_decoding

    spec = spec_for(W, config, encoder, size, device, workers, decode)
    run = load_encoder(spec)
    timer = ModelTimer(run.forward)
    run.forward = timer
    out = work / f"{encoder}_{name.replace(' ', '_')}"
    extract_shard(run, start_decoding(dataclasses.replace(spec, workers=0), ids[:1], videos_dir),
                  out / "warm.zarr", out / "warm.tsv", desc="warm-up")
    timer.seconds = 0.0
    synchronize(device)
    with NvmlSampler(device) as nvml:
        cpu0, start = cpu_seconds(), time.perf_counter()
        result = extract_shard(run, start_decoding(spec, ids, videos_dir), out / "shard.zarr", out / "shard.tsv")
        wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
    if result["failed"]:
        raise RuntimeError(f"{result['failed']} of {len(ids)} videos failed (see {out / 'shard.tsv'})")
    decode_cpu, decode_wall = decode_only(spec, ids, videos_dir)
    rate = len(ids) / wall
    return row("extraction", f"{encoder}, {name}", status="ok", videos=len(ids), rate=rate,
               busy=timer.seconds / wall, gpu_util_nvml=nvml.mean, decode_cpu_per_clip=decode_cpu / len(ids),
               decode_only_rate=len(ids) / decode_wall, host_cores=cpu / wall,
               projection_h=projected_hours(MUSIC_AVQA_VIDEOS, rate),
               note=f"{workers} decode workers, batch {run.batch_size}, {run.precision}")


def decode_only(spec, ids: list[str], videos_dir: Path) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of decoding and preprocessing the shard without the model."""
    from avqa.features.extract import start_decoding

    cpu0, start = cpu_seconds(), time.perf_counter()
    decoding = start_decoding(spec, ids, videos_dir)
    for _ in decoding.items:
        pass
    del decoding   # the DataLoader's workers are joined (their CPU counted) once it is gone
    return cpu_seconds() - cpu0, time.perf_counter() - start


# --- training -----------------------------------------------------------------------------------------------------
def train_rows(config: dict, size: Size, device: torch.device, setup: dict, work: Path,
               loader_workers: int) -> list[dict]:
    why = have(setup, "zarr", "pydantic")
    if why:
        return [skipped("train", "TASS-Net", why)]
    try:
        return measure_training(config, size, device, work, loader_workers)
    except Exception as err:  # noqa: BLE001 (a part that cannot run here is a row, not a crash)
        return [row("train", "TASS-Net", status="failed", note=first_line(err))]


def write_store(root: Path, n_videos: int, seed: int = 0) -> tuple[Path, Path, Path]:
    """A pooled store at the full shapes (float16 (V, 10, 7, 7, 2048), one chunk per video, zarr's default codec)
    and its questions, with benchmarks/pooled_store.py's writers; random values."""
    import pooled_store as ps

    pooled = root / "pooled" / "train.zarr"
    store, visual = ps.create_pooled(pooled, n_videos)
    rng = np.random.default_rng(seed)
    for i in range(n_videos):
        visual[i] = rng.standard_normal((ps.T, *ps.MAP), dtype=np.float32).astype(np.float16)
    ps.finish_pooled(store, n_videos)
    annotations, questions = ps.write_questions(root, n_videos, seed)
    return annotations, pooled, questions


def measure_training(config: dict, size: Size, device: torch.device, work: Path, loader_workers: int) -> list[dict]:
    from avqa.models import build_model
    from avqa.training.dataset import AVQADataset, QuestionBatchSampler, iterate_batches

    annotations, pooled, questions = write_store(work / "train", size.store_videos)
    dataset = AVQADataset(annotations, pooled, questions, in_memory=False)
    batch_size, k = config["train"]["batch_size"], config["train"]["questions_per_video"]
    sampler = QuestionBatchSampler(dataset.video_row, batch_size, questions_per_video=k, seed=0)
    batches = sampler.batches(0)[:size.loader_batches]
    for _ in iterate_batches(dataset, batches[:1], num_workers=0):   # opens the arrays
        pass
    start = time.perf_counter()
    loaded = sum(len(b["answer"]) for b in iterate_batches(dataset, batches, num_workers=loader_workers))
    loader_rate = loaded / (time.perf_counter() - start)

    torch.manual_seed(0)
    model = build_model("tass").to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config["train"]["lr"])
    batch = {key: value.to(device) for key, value in dataset.batch(batches[0]).items() if key != "question_id"}

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = model(batch)
            loss, _ = model.loss(batch, out)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()                                  # warm-up
    synchronize(device)
    start = time.perf_counter()
    for _ in range(size.steps):
        step()
    synchronize(device)
    step_seconds = (time.perf_counter() - start) / size.steps
    step_rate = len(batches[0]) / step_seconds
    # with loader workers the batches are built beside the step; in-process, one after the other
    epoch_rate = min(loader_rate, step_rate) if loader_workers else 1 / (1 / loader_rate + 1 / step_rate)
    shape = f"{size.store_videos} videos x (10, 7, 7, 2048) float16, k = {k}"
    return [row("train", f"loader, {loader_workers} workers", status="ok", rate=loader_rate,
                note=f"AVQADataset on a written pooled store ({shape}; in the page cache)"),
            row("train", "TASS-Net step, bf16", status="ok", rate=step_rate, step_s=step_seconds,
                questions=len(batches[0]),
                note=f"batch {len(batches[0])}, {size.steps} steps after one warm-up"),
            row("train", "epoch (45,867 questions)", status="ok", rate=epoch_rate,
                loader_over_step=loader_rate / step_rate,
                projection_h=projected_hours(MUSIC_AVQA_QUESTIONS, epoch_rate),
                note="slower of loader and step" if loader_workers else "loader + step in turn (0 workers)")]


# --- report -------------------------------------------------------------------------------------------------------
COLUMNS = (("part", "part"), ("setting", "setting"), ("status", "status"), ("rate", "rate (/s)"),
           ("busy", "model busy"), ("decode_cpu_per_clip", "decode CPU-s/clip"), ("host_cores", "host cores"),
           ("projection_h", "projection (h)"), ("note", "note"))


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "/")


def markdown(report: dict) -> str:
    setup = report["setup"]
    lines = [f"device benchmark, size {report['size']}, T1 = {report['T1']}, device {setup['device']}"
             f" ({setup['gpu'] or 'no GPU'}), {setup['cores']} cores, torch {setup['torch']} (CUDA {setup['cuda']}),"
             f" Python {setup['python']}; clips: {report['clips']}",
             "set-up: " + "; ".join(f"{k} {v}" for k, v in setup["modules"].items())
             + f"; ffmpeg {'yes' if setup['ffmpeg'] else 'no'}, ffprobe {'yes' if setup['ffprobe'] else 'no'}",
             "", "| " + " | ".join(title for _, title in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(r.get(key)) for key, _ in COLUMNS) + " |" for r in report["rows"]]
    total = report.get("extraction_total_h")
    if total is not None:
        lines.append(f"\nall {MUSIC_AVQA_VIDEOS:,} MUSIC-AVQA videos at T1 = {report['T1']}: {total:.3g} h "
                     f"({report['extraction_total_of']}; one encoder after the other)")
    return "\n".join(lines)


def extraction_total(rows: list[dict]) -> tuple[float | None, str]:
    """Projected hours of CLIP-RN50 + VGGish through the pipeline (each with its fastest decoder), where both ran
    (torchcodec needs no ffmpeg binary, so on the GPU box too); else the bound from the parts that ran: CLIP at
    the slower of its model and the host's decoding, VGGish at its model's rate (audio decoding unmeasured)."""
    ok = [r for r in rows if r["status"] == "ok"]
    clip = [r for r in ok if r["part"] == "extraction" and r["setting"].startswith("clip_rn50")]
    vggish = [r for r in ok if r["part"] == "extraction" and r["setting"].startswith("vggish")]
    if clip and vggish:
        best, audio = (min(group, key=lambda r: r["projection_h"]) for group in (clip, vggish))
        return best["projection_h"] + audio["projection_h"], f"{best['setting']} + {audio['setting']}"
    model = {r["setting"]: r for r in ok if r["part"] == "model"}
    host = [r for r in ok if r["part"] == "host decode"]
    if "clip_rn50" in model and "vggish" in model and host:
        clip_rate = min(model["clip_rn50"]["rate"], host[0]["rate"])
        return (projected_hours(MUSIC_AVQA_VIDEOS, clip_rate) + model["vggish"]["projection_h"],
                "bound, no pipeline row: clip_rn50 at min(model, host decode) + vggish model, audio not decoded")
    return None, ""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default=None, help="default: full on a GPU, cpu otherwise")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--videos", type=int, help="files in the extraction shard (default: the size's)")
    parser.add_argument("--workers", type=int,
                        help="decode processes (default: cores - 1 on a GPU, the config's decode_workers on a CPU)")
    parser.add_argument("--loader-workers", type=int, help="training loader processes (default: 4 on a GPU, 0)")
    parser.add_argument("--threads", type=int, help="torch threads of the main process (default: torch's)")
    parser.add_argument("--clips", type=Path, default=ROOT / ".device" / "clips",
                        help="carried clips (benchmarks/device_prepare.sh); else they are made here")
    parser.add_argument("--parts", nargs="+", default=["model", "host", "extraction", "train"],
                        choices=["model", "host", "extraction", "train"])
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    size = SIZES[args.size or ("full" if device.type == "cuda" else "cpu")]
    if args.videos:
        size = dataclasses.replace(size, videos=args.videos)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    setup = setup_check(device)
    from avqa import workflow as W

    config = W.load_config(args.config)
    cores = setup["cores"]
    workers = args.workers if args.workers is not None else (
        max(1, cores - 1) if device.type == "cuda" else config["features"]["decode_workers"])
    loader_workers = args.loader_workers if args.loader_workers is not None else (4 if device.type == "cuda" else 0)
    report = {"size": args.size or ("full" if device.type == "cuda" else "cpu"), "T1": size.T1,
              "size_settings": dataclasses.asdict(size), "workers": workers, "loader_workers": loader_workers,
              "setup": setup, "rows": []}
    work = Path(tempfile.mkdtemp(prefix="avqa_device_"))
    try:
        clips = carried_clips(args.clips, size)
        report["clips"] = (f"{len(clips)} carried from {args.clips}" if clips else None)
        if not clips:
            clips, report["clips"] = make_clips(ROOT / "benchmarks" / ".clips", size, setup)
        videos_dir = work / "videos"
        ids = shard_folder(videos_dir, clips, size.videos)
        paths = [videos_dir / f"{i}.mp4" for i in ids]
        if "model" in args.parts:
            report["rows"] += model_rows(config, size, device, setup, size.videos)
        if "host" in args.parts:
            report["rows"].append(guarded(lambda: host_decode_row(paths, size, max(workers, 1), setup),
                                          "host decode", "decord direct"))
        if "extraction" in args.parts:
            report["rows"] += extraction_rows(config, size, device, setup, videos_dir, ids, workers, work)
        if "train" in args.parts:
            report["rows"] += train_rows(config, size, device, setup, work, loader_workers)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["extraction_total_h"], report["extraction_total_of"] = extraction_total(report["rows"])
    report["wall_s"] = round(time.perf_counter() - started, 1)
    print(markdown(report), flush=True)
    text = json.dumps(report, indent=1, default=float)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()
