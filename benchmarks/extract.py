"""Feature extraction speed: the model alone vs. avqa's shard pipeline vs. a naive reference-style pipeline.

On the same videos in one run (default: 2 synthetic-looking 60-s 320x240 clips made with ffmpeg lavfi, or
--videos DIR), at fp32 and bf16 autocast:
  (a) model: CLIP-RN50 trunk + VGGish on frames / log-mel examples decoded and preprocessed beforehand;
  (b) pipeline: avqa.features.extract.extract_shard for clip_rn50 and vggish (decoding in --workers processes,
      cross-video batches, Zarr stores written), models already loaded as in (a); pipeline_in_process: the same
      with workers=0 (on a machine whose cores the model already fills, a concurrent decoder slows it down);
  (c) naive: ffmpeg dumps JPEGs at 1 fps to a temp dir, PIL loads each, CLIP's PIL preprocess per image,
      batch-1 model calls; audio: ffmpeg to a 16 kHz wav, torchvggish's wavfile_to_examples, one VGGish call.
Also CLIP seconds per frame for batch sizes x (NCHW, channels_last), to choose features.batch_frames.cpu.
decode_paths: decode CPU seconds per clip, today's path (every frame, full size) beside the new one (decoded to
CLIP's 224, reference frames / keyframes only: media.decode_frames(short_side=224, skip=True)), interleaved in
one run on 60-s 25-fps x264 clips (B-frames) of each --decode-sizes: `frames` = frame decoding + CLIP's
preprocessing (what a CLIP extraction job pays per video), `decode` = that + the audio and VGGish's examples
(the `decode` part; the old path's audio: ffprobe then ffmpeg per video and the log-mel on numpy's default BLAS
threads, whose spinning costs ~0.1 CPU-s per track; the new one: ffmpeg alone, one BLAS thread); goal: new / old
<= 0.5. new_no_deblock: the new path without H.264's loop filter, with the
PSNR of its frames against the new path's (no_deblock_psnr_db: lowest, median).
fidelity: per decode path (the exact default: every frame, full size, the frame nearest each centre; + decoded
to CLIP's input size; skipping to reference frames, with and without the loop filter, and with the input size:
the old default) on real-world encodes of moving pictures (tests/media_factory.py: panning testsrc2, Mandelbrot
zoom, life, noisy testsrc2; x264 High with B-frames, 25 / 29.97 / 30 fps, 480x360 .. 1280x720), the cosine of
each second's CLIP-RN50 map (random weights) against the exact path's (min, mean), the exact frame's cosine with
its neighbouring frames (what one frame off costs), frame_steps_max (the largest 1 - cos over 1 - cos to the
nearer neighbour: 0 exact, 1 a frame off), the seconds at the exact frame's time, the largest frame offset, and
frame-decoding + CLIP preprocessing CPU seconds per clip; and the CPU seconds of the old and the new default on
a clip of the synthetic default (320x240, 10 fps, 20 s), with the ffprobe every frame decode now starts with.
Prints one JSON: best-of-`repeats` wall seconds and CPU seconds (incl. workers and ffmpeg) with their ratios
(goals: b / a at fp32 <= 1.12; naive / b at bf16 >= 2), and `overlap_bound`: (model + decode CPU seconds) /
threads, the wall time of a perfect pipeline on this many cores, with the naive time over it.

    python benchmarks/extract.py [--videos DIR] [--threads 2] [--workers 1] [--parts model pipeline ...]
    python benchmarks/extract.py --parts decode_paths --decode-sizes 320x240 640x360 --repeats 5
    python benchmarks/extract.py --parts fidelity            # ~1-2 min on 2 cores
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from avqa.features import encoders, media
from avqa.features.encoders import vggish as vggish_module
from avqa import workflow as W
from avqa.features.extract import extract_shard, load_encoder, start_decoding
from avqa.features.layout import SAMPLE_RATE
from avqa.specs.features import BatchFramesSpec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from media_factory import make_real_encode, make_video  # noqa: E402  (one definition of the test clips)


# The default config: the settings the pipeline runs with (decode options, bn3 gamma of the random CLIP).
CONFIG = W.load_config(Path(__file__).resolve().parents[1] / "config.yaml")
DEFAULT_DECODE = CONFIG["features"]["decode"]


def bench_encoder(name: str, device: str, batch: int):
    """A registered encoder loaded from the default config's spec, on `device` with `batch` frames per batch."""
    spec = dataclasses.replace(W.extract_spec(CONFIG, name), device=device,
                               batch_frames=BatchFramesSpec(cpu=batch, cuda=batch))
    return load_encoder(spec)


def make_videos(folder: Path, n: int, seconds: int, size: str = "320x240") -> list[Path]:
    """Moving test patterns (testsrc2) with a 440/660 Hz tone, `size` at 25 fps, AAC 44.1 kHz stereo; x264's
    defaults (B-frames in a pyramid, keyframes 10 s apart)."""
    paths = []
    for i in range(n):
        path = folder / f"bench{i}_{size}.mp4"
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                        "-f", "lavfi", "-i", f"testsrc2=s={size}:r=25:d={seconds}",
                        "-f", "lavfi", "-i", f"sine=f={440 + 220 * i}:r=44100:d={seconds}",
                        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", str(path)],
                       check=True)
        paths.append(path)
    return paths


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def cpu_seconds() -> float:
    """User + system time of this process and its finished children (decode workers, ffmpeg)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# How decode_frames is called in decode_paths: "old" = every frame at full size (since 2026-12-06 the default
# again: the exact centre frames, docs/decoding.md), "new" = the opt-in fast path (decoded to CLIP's input size,
# frames skipped), and that without H.264's loop filter (deblock: false; frames not exact, their PSNR reported).
NEW_PATH = {"short_side": encoders.CLIP_IMAGE_SIZE, "skip": True, "max_offset_s": DEFAULT_DECODE["max_offset_s"]}
DECODE_PATHS = {"old": {}, "new": NEW_PATH, "new_no_deblock": {**NEW_PATH, "deblock": False}}


def predecode(paths: list[Path], T1: int, path: str = "new", audio: bool = True
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """All videos' CLIP inputs (N, 3, 224, 224) and VGGish examples (M, 1, 96, 64) (None without audio), as the
    pipeline makes them; `path` picks DECODE_PATHS' decode_frames arguments."""
    transform = encoders.clip_image_transform()
    images, examples = [], []
    for video in paths:
        frames = media.decode_frames(video, T1, pad=False, **DECODE_PATHS[path])
        images.append(transform(frames.data))
        if audio:
            with old_audio_path() if path == "old" else contextlib.nullcontext():
                sound = media.decode_audio(video, SAMPLE_RATE, T1, pad=False)
                examples.append(torch.from_numpy(encoders.vggish_examples(sound.data, sound.seconds.n_real)))
    return torch.cat(images), torch.cat(examples) if audio else None


class _NoLimit:
    def limit(self, **kwargs):
        return contextlib.nullcontext()


@contextlib.contextmanager
def old_audio_path():
    """The audio path before the change: ffprobe before every ffmpeg, the log-mel with numpy's own BLAS threads
    (which spin after the matmul)."""
    decode_audio = media.decode_audio

    def probe_then_decode(video, *args, **kwargs):
        media.probe(video)
        return decode_audio(video, *args, **kwargs)

    with mock.patch.object(media, "decode_audio", probe_then_decode), \
            mock.patch.object(vggish_module, "_blas_controller", _NoLimit):
        yield


def decode_paths(folder: Path, sizes: list[str], n: int, seconds: int, T1: int, repeats: int) -> dict:
    """CPU seconds per clip of the old and new decode paths, best of `repeats` interleaved rounds, per clip size:
    frames (+ CLIP preprocessing) alone and with the audio; the new path's decode paths and largest offset.
    Preprocessing runs on one thread, as in a decode worker (DataLoader workers run torch on one thread): idle
    OpenMP threads spin after each op and would bill the next measurement."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {size: _decode_paths_of(make_videos(folder, n, seconds, size), T1, repeats, size) for size in sizes}
    finally:
        torch.set_num_threads(threads)


def _decode_paths_of(paths: list[Path], T1: int, repeats: int, label: str) -> dict:
    runs = {f"{what}_{path}": (path, what == "decode") for what in ("frames", "decode") for path in DECODE_PATHS}
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, (path, audio) in runs.items():
            start = cpu_seconds()
            predecode(paths, T1, path, audio)
            best[name] = min(best[name], (cpu_seconds() - start) / len(paths))
    new = [media.decode_frames(p, T1, pad=False, **DECODE_PATHS["new"]) for p in paths]
    rough = [media.decode_frames(p, T1, pad=False, **DECODE_PATHS["new_no_deblock"]) for p in paths]
    out = {"cpu_seconds_per_clip": {k: round(v, 3) for k, v in best.items()},
           **{f"{path}_over_old": {what: round(best[f"{what}_{path}"] / best[f"{what}_old"], 3)
                                   for what in ("frames", "decode")} for path in DECODE_PATHS if path != "old"},
           "new_decode_paths": sorted({d.seconds.decode_path for d in new}),
           "new_max_offset_s": max(d.seconds.max_offset for d in new),
           "no_deblock_psnr_db": psnr_range([d.data for d in new], [d.data for d in rough])}
    print(label, out, file=sys.stderr, flush=True)
    return out


def psnr_range(exact: list, approximate: list) -> list[float]:
    """[lowest, median] PSNR (dB, peak 255) over all frames of approximate against exact (same frame times)."""
    values = []
    for a, b in zip(exact, approximate):
        mse = ((a.astype(float) - b.astype(float)) ** 2).reshape(len(a), -1).mean(axis=1)
        values.extend(10 * np.log10(255 ** 2 / np.maximum(mse, 1e-10)))
    return [round(float(np.min(values)), 1), round(float(np.median(values)), 1)]


# fidelity: the decode paths, as decode_frames arguments. skip_min_pixels=0: the skipping path is taken on
# these 10-s clips too (by default only from 9e7 pixels to decode, e.g. 720p clips longer than ~4 s).
SKIPPING = {"skip": True, "skip_min_pixels": 0, "max_offset_s": DEFAULT_DECODE["max_offset_s"]}
FIDELITY_PATHS = {"exact": {}, "input_size": {"short_side": encoders.CLIP_IMAGE_SIZE},
                  "skip": SKIPPING, "skip_no_deblock": {**SKIPPING, "deblock": False},
                  "skip_input_size": {**SKIPPING, "short_side": encoders.CLIP_IMAGE_SIZE}}
# (moving source, size, fps, video seconds, audio seconds, channels): the shapes of crawled clips
FIDELITY_CLIPS = [("pan", (480, 360), "25", 10, 10.4, 2), ("zoom", (480, 360), "30000/1001", 10, 9.6, 1),
                  ("life", (480, 360), "25", 10, 9.7, 2), ("noise", (640, 360), "30000/1001", 10, 10.3, 2),
                  ("pan", (1280, 720), "30", 10, 10.3, 1)]


def decode_kwargs(decode: dict) -> dict:
    """features.decode (DecodeSpec's keys) -> decode_frames arguments for CLIP-RN50."""
    return {"short_side": encoders.CLIP_IMAGE_SIZE if decode["to_input_size"] else None,
            "skip": decode["skip_frames"], "max_offset_s": decode["max_offset_s"], "deblock": decode["deblock"]}


def fidelity(folder: Path, T1: int, repeats: int) -> dict:
    """Per moving clip and decode path: CLIP-RN50 map cosine per second against the exact path (min, mean), the
    exact frame's cosine with its neighbours, max |offset| (s), CPU seconds per clip (frames + CLIP
    preprocessing, best of `repeats`); then the old and the new default's CPU seconds on a synthetic clip."""
    import decord

    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # as in a decode worker; the model below runs on the caller's threads
    model = encoders.load_clip("random", 0, "cpu", bn3_gamma=CONFIG["weights_bn3_gamma"])
    transform = encoders.clip_image_transform()

    def maps(frames) -> torch.Tensor:
        torch.set_num_threads(threads)
        try:
            with torch.inference_mode():
                return encoders.clip_maps(model, transform(frames), "fp32").float().reshape(len(frames), -1)
        finally:
            torch.set_num_threads(1)

    def cosine(a, b) -> torch.Tensor:
        return torch.nn.functional.cosine_similarity(a, b, dim=-1)

    clips = {}
    try:
        for kind, size, fps, seconds, audio_seconds, channels in FIDELITY_CLIPS:
            name = f"{kind}_{size[0]}x{size[1]}_{fps.replace('30000/1001', '29.97')}fps"
            path = make_real_encode(folder / f"{name}.mp4", kind, size, fps, seconds, audio_seconds, channels)
            best, decoded = {}, {}
            for _ in range(repeats):
                for label, kwargs in FIDELITY_PATHS.items():
                    start = cpu_seconds()
                    decoded[label] = media.decode_frames(path, T1, pad=False, **kwargs)
                    transform(decoded[label].data)
                    best[label] = min(best.get(label, float("inf")), cpu_seconds() - start)
            exact = maps(decoded["exact"].data)
            # the exact frames' neighbours (one frame earlier and later), decoded by decord at full size
            reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
            starts = reader.get_frame_timestamp(range(len(reader)))[:, 0]
            exact_offsets = np.array(decoded["exact"].seconds.offsets)
            index = np.searchsorted(starts, media.centre_times(len(exact)) + exact_offsets - 1e-4)
            neighbours = torch.stack([cosine(exact, maps(reader.get_batch(
                np.clip(index + step, 0, len(reader) - 1).tolist()).asnumpy())) for step in (-1, 1)])
            del reader
            step = 1 - neighbours.max(dim=0).values   # 1 - cos to the nearer neighbour: one frame's step
            row = {"neighbour_cos": {"min": round(float(neighbours.min()), 4),
                                     "mean": round(float(neighbours.mean()), 4)}}
            for label, result in decoded.items():
                per_second = cosine(maps(result.data), exact)
                row[label] = {"cos_min": round(float(per_second.min()), 4),
                              "cos_mean": round(float(per_second.mean()), 4),
                              "frame_steps_max": round(float(((1 - per_second) / step).max()), 2),
                              "exact_frame_seconds": int(np.sum(np.abs(np.array(result.seconds.offsets)
                                                                       - exact_offsets) < 1e-3)),
                              "max_offset_s": result.seconds.max_offset, "decode_path": result.seconds.decode_path,
                              "cpu_s": round(best[label], 3)}
            clips[name] = row
            print(name, row, file=sys.stderr, flush=True)
        synthetic = make_video(folder / "synthetic.mp4", seconds=20, size=(320, 240), fps=10, pattern="testsrc2",
                               audio=False)
        old = decode_kwargs({"to_input_size": True, "skip_frames": True, "max_offset_s": 0.25, "deblock": True})
        runs = {"old_default": lambda: transform(media.decode_frames(synthetic, 20, pad=False, **old).data),
                "new_default": lambda: transform(media.decode_frames(synthetic, 20, pad=False,
                                                                     **decode_kwargs(DEFAULT_DECODE)).data),
                "ffprobe_alone": lambda: media.probe(synthetic)}
        cost = dict.fromkeys(runs, float("inf"))
        for _ in range(max(repeats, 3)):
            for label, run in runs.items():
                start = cpu_seconds()
                run()
                cost[label] = min(cost[label], cpu_seconds() - start)
    finally:
        torch.set_num_threads(threads)
    return {"clips": clips, "synthetic_320x240_10fps_20s_cpu_s": {k: round(v, 3) for k, v in cost.items()}}


def run_model(clip, vggish, images, examples, batch: int) -> None:
    with torch.inference_mode():
        for start in range(0, len(images), batch):
            clip.forward(images[start:start + batch])
        for start in range(0, len(examples), batch):
            vggish.forward(examples[start:start + batch])


def run_pipeline(clip, vggish, paths: list[Path], T1: int, workers: int) -> None:
    ids = [p.stem for p in paths]
    with tempfile.TemporaryDirectory() as out:
        for run in (clip, vggish):
            spec = dataclasses.replace(run.encoder.spec, T1=T1, workers=workers)
            decoding = start_decoding(spec, ids, paths[0].parent)
            extract_shard(run, decoding, f"{out}/{run.name}.zarr", f"{out}/{run.name}.tsv", desc="bench")


def run_naive(clip_model, vggish_model, paths: list[Path], precision: str) -> None:
    import open_clip
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    from PIL import Image
    from torchvggish import vggish_input

    preprocess = open_clip.image_transform(224, is_train=False, mean=OPENAI_DATASET_MEAN, std=OPENAI_DATASET_STD)
    for path in paths:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-vf", "fps=1", f"{tmp}/%05d.jpg"], check=True)
            for jpg in sorted(Path(tmp).glob("*.jpg")):
                image = preprocess(Image.open(jpg).convert("RGB"))[None]
                encoders.clip_maps(clip_model, image, precision, channels_last=False)
            subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", "16000",
                            f"{tmp}/audio.wav"], check=True)
            examples = vggish_input.wavfile_to_examples(f"{tmp}/audio.wav")
            encoders.vggish_emb(vggish_model, examples)


def batch_sweep(clip, images: torch.Tensor, batches: list[int], precision: str, repeats: int) -> dict[str, float]:
    """CLIP seconds per frame over the first max(batches) frames, per batch size and memory format: the best of
    `repeats` rounds, the configurations interleaved so a change in machine load hits them alike."""
    frames = images[: max(batches)]
    def run_with(channels_last: bool):   # the same loaded model, its trunk in another memory format
        encoder = copy.copy(clip.encoder)
        encoder.spec = dataclasses.replace(encoder.spec, channels_last=channels_last)
        return dataclasses.replace(clip, encoder=encoder, precision=precision)

    runs = {f"{batch}/{'channels_last' if cl else 'nchw'}": (run_with(cl), batch)
            for cl in (False, True) for batch in batches}
    best = dict.fromkeys(runs, float("inf"))
    with torch.inference_mode():
        for _ in range(repeats):
            for name, (run, batch) in runs.items():
                run.forward(frames[:batch])  # warm-up: memory-format switch, kernels for this shape
                seconds, _ = timed(lambda: [run.forward(frames[s:s + batch]) for s in range(0, len(frames), batch)])
                best[name] = min(best[name], seconds / len(frames))
    return {name: round(value, 4) for name, value in best.items()}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", help="folder of .mp4 videos (default: make 2 synthetic 60-s clips)")
    parser.add_argument("--n-videos", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--T1", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="decode workers of the pipeline")
    parser.add_argument("--batch", type=int, default=16, help="frames per model batch (config batch_frames.cpu)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--sweep-batches", type=int, nargs="+", default=[1, 8, 20, 60])
    parser.add_argument("--sweep-precision", default="bf16")
    parser.add_argument("--sweep-repeats", type=int, default=2)
    parser.add_argument("--parts", nargs="+",
                        default=["model", "decode", "pipeline", "pipeline_in_process", "naive", "sweep",
                                 "decode_paths"],
                        help="pipeline_in_process: the pipeline with --workers 0 (no overlap, no CPU contention); "
                             "decode: decoding + preprocessing alone (its CPU seconds bound what overlap can hide); "
                             "decode_paths: old vs new decode path, CPU seconds per clip of --decode-sizes; "
                             "fidelity: CLIP-map cosine and CPU per decode path on moving real-world encodes")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of model / pipeline / naive (best kept)")
    parser.add_argument("--size", default="320x240", help="frame size of the synthetic clips")
    parser.add_argument("--decode-sizes", nargs="+", default=["320x240", "640x360"],
                        help="clip sizes of the decode_paths part (made like the synthetic clips)")
    parser.add_argument("--fidelity-T1", type=int, default=10, help="fidelity: seconds decoded per clip")
    parser.add_argument("--fidelity-repeats", type=int, default=1, help="fidelity: timing rounds (best kept)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    if args.parts == ["decode_paths"]:  # no model, no pipeline: only the decode comparison
        with tempfile.TemporaryDirectory() as tmp:
            report = {"threads": args.threads, "load_average_at_start": os.getloadavg()[0],
                      "decode_paths": decode_paths(Path(tmp), args.decode_sizes, args.n_videos, args.seconds,
                                                   args.T1, args.repeats),
                      "load_average_at_end": os.getloadavg()[0]}
        print(json.dumps(report, indent=1))
        return report
    if args.parts == ["fidelity"]:  # decode paths on moving real-world encodes: CLIP-map cosine and CPU
        with tempfile.TemporaryDirectory() as tmp:
            report = {"threads": args.threads, "load_average_at_start": os.getloadavg()[0],
                      "fidelity": fidelity(Path(tmp), args.fidelity_T1, args.fidelity_repeats),
                      "load_average_at_end": os.getloadavg()[0]}
        print(json.dumps(report, indent=1))
        return report

    with tempfile.TemporaryDirectory() as tmp:
        paths = (sorted(Path(args.videos).glob("*.mp4")) if args.videos
                 else make_videos(Path(tmp), args.n_videos, args.seconds, args.size))
        clip = bench_encoder("clip_rn50", args.device, args.batch)
        vggish = bench_encoder("vggish", args.device, args.batch)
        images, examples = predecode(paths, args.T1)
        report = {"videos": len(paths), "frames": len(images), "audio_seconds": len(examples),
                  "threads": args.threads, "batch": args.batch, "device": str(clip.device),
                  "load_average_at_start": os.getloadavg()[0], "seconds": {}}
        parts = {"model": lambda run, vgg: run_model(run, vgg, images, examples, args.batch),
                 "decode": lambda run, vgg: predecode(paths, args.T1),
                 "pipeline": lambda run, vgg: run_pipeline(run, vgg, paths, args.T1, args.workers),
                 "pipeline_in_process": lambda run, vgg: run_pipeline(run, vgg, paths, args.T1, 0),
                 "naive": lambda run, vgg: run_naive(clip.model, vggish.model, paths, run.precision)}
        for precision in args.precisions:
            dataclasses.replace(clip, precision=precision).forward(images[:2])  # warm-up
        # Best of `repeats` rounds, the parts interleaved: other jobs on a shared machine slow some runs down.
        best = {p: {part: float("inf") for part in parts if part in args.parts} for p in args.precisions}
        cpu = {p: dict(best[p]) for p in args.precisions}
        for _ in range(args.repeats):
            for precision in args.precisions:
                run = dataclasses.replace(clip, precision=precision)
                vgg = dataclasses.replace(vggish, precision=precision)
                for part in best[precision]:
                    cpu_start = cpu_seconds()
                    wall = timed(parts[part], run, vgg)[0]
                    best[precision][part] = min(best[precision][part], wall)
                    cpu[precision][part] = min(cpu[precision][part], cpu_seconds() - cpu_start)
                print(precision, {k: round(v, 2) for k, v in best[precision].items()}, file=sys.stderr, flush=True)
        report["seconds"], report["cpu_seconds"] = best, cpu
        report["ratios"] = ratios(report["seconds"])
        report["cpu_ratios"] = ratios(report["cpu_seconds"])
        report["overlap_bound"] = overlap_bound(best, cpu, args.threads)
        if "sweep" in args.parts:
            report["clip_seconds_per_frame"] = {args.sweep_precision: batch_sweep(
                clip, images, args.sweep_batches, args.sweep_precision, args.sweep_repeats)}
        if "decode_paths" in args.parts:
            report["decode_paths"] = decode_paths(Path(tmp), args.decode_sizes, args.n_videos, args.seconds,
                                                  args.T1, args.repeats)
    for key in ("seconds", "cpu_seconds"):
        report[key] = {p: {k: round(v, 2) for k, v in t.items()} for p, t in report[key].items()}
    report["load_average_at_end"] = os.getloadavg()[0]  # other jobs on the machine skew the timings
    print(json.dumps(report, indent=1))
    return report


def ratios(seconds: dict) -> dict:
    out = {}
    for precision, t in seconds.items():
        for pipeline in ("pipeline", "pipeline_in_process"):
            if "model" in t and pipeline in t:
                out[f"{pipeline}_over_model_{precision}"] = round(t[pipeline] / t["model"], 3)
            if "naive" in t and pipeline in t:
                out[f"naive_over_{pipeline}_{precision}"] = round(t["naive"] / t[pipeline], 3)
            if "naive" in seconds.get("fp32", {}) and pipeline in seconds.get("bf16", {}):
                out[f"naive_fp32_over_{pipeline}_bf16"] = round(seconds["fp32"]["naive"] / seconds["bf16"][pipeline], 3)
    return out


def overlap_bound(wall: dict, cpu: dict, threads: int) -> dict:
    """The fastest any pipeline could be on `threads` cores: model + decode CPU seconds spread over all cores
    (perfect overlap, no waste), and the naive fp32 time over it: the largest naive/pipeline ratio possible."""
    out = {}
    for precision, c in cpu.items():
        if "model" in c and "decode" in c:
            bound = (c["model"] + c["decode"]) / threads
            out[f"best_possible_seconds_{precision}"] = round(bound, 2)
            if "naive" in wall.get("fp32", {}):
                out[f"naive_fp32_over_best_possible_{precision}"] = round(wall["fp32"]["naive"] / bound, 3)
    return out


if __name__ == "__main__":
    main()
