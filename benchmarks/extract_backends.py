"""One shard through the pipeline's extraction (avqa.features.extract.extract_shard) per decoder backend, side by
side on the same videos: wall and CPU seconds per video, and the encoder alone on its batch for the model's bound.

For a frame encoder (clip_rn50, resnet18, clip_vit) the backends are features.decode.backend's (decord,
torchcodec); for VGGish features.audio_backend's (ffmpeg, torchcodec). Everything else comes from the config, on
the CPU, decoding in-process (workers 0), as a Snakemake extraction job runs; rounds interleave the backends so
the machine's drift hits both. The per-video overheads of a run of many short videos (workflow/configs/scale.yaml's
7,918 2-s stand-ins) are what this shows: there, the decord path's ffprobe and the ffmpeg audio process per video.

    python benchmarks/extract_backends.py --videos results_scale/standins/videos --n 240
    python benchmarks/extract_backends.py --videos results_scale/standins/videos --n 240 --encoder vggish

Prints one JSON object.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from avqa import workflow as W
from avqa.features.decoders import AUDIO_BACKENDS, BACKENDS as FRAME_BACKENDS
from avqa.features.extract import extract_shard, load_encoder, start_decoding
from avqa.features.layout import FRAMES, encoder_record

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from decoders import cpu_seconds  # noqa: E402  (benchmarks/decoders.py: one definition of the CPU clock)


def with_backend(spec, backend: str):
    if encoder_record(spec.encoder).decode == FRAMES:
        return dataclasses.replace(spec, decode=dataclasses.replace(spec.decode, backend=backend))
    return dataclasses.replace(spec, audio_backend=backend)


def model_rate(run, item_shape: tuple[int, ...], batches: int = 5) -> float:
    """Model inputs per second of the encoder alone on random inputs of its batch size (after one warm-up)."""
    x = torch.randn(run.batch_size, *item_shape)
    run.forward(x)
    start = time.perf_counter()
    for _ in range(batches):
        run.forward(x)
    return batches * run.batch_size / (time.perf_counter() - start)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=Path, required=True, help="a folder of video files")
    parser.add_argument("--n", type=int, default=240, help="videos in the shard (the first, by name)")
    parser.add_argument("--encoder", default="clip_rn50")
    parser.add_argument("--T1", type=int, default=2, help="seconds kept per video")
    parser.add_argument("--repeats", type=int, default=2, help="rounds (each runs every backend once)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads, as --threads")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    ids = sorted(p.stem for p in args.videos.iterdir() if p.suffix in (".mp4", ".mkv", ".webm", ".avi"))[: args.n]
    base = dataclasses.replace(W.extract_spec(W.load_config(args.config), args.encoder), T1=args.T1, device="cpu",
                               workers=0)
    frames = encoder_record(args.encoder).decode == FRAMES
    backends = FRAME_BACKENDS if frames else AUDIO_BACKENDS
    run = load_encoder(base)
    item_shape = (3, run.encoder.input_size(base), run.encoder.input_size(base)) if frames else (1, 96, 64)
    result = {"encoder": args.encoder, "videos": len(ids), "T1": args.T1, "threads": args.threads,
              "setting": "features.decode.backend" if frames else "features.audio_backend",
              "model_inputs_per_s": round(model_rate(run, item_shape), 1), "rounds": []}
    with tempfile.TemporaryDirectory() as out:
        for repeat in range(args.repeats):
            order = backends[repeat % 2:] + backends[:repeat % 2]
            row = {}
            for backend in order:
                spec = with_backend(base, backend)
                cpu0, start = cpu_seconds(), time.perf_counter()
                done = extract_shard(run, start_decoding(spec, ids, args.videos), Path(out) / f"{backend}.zarr",
                                     Path(out) / f"{backend}.tsv", desc=backend)
                row[backend] = {"wall_per_video": round((time.perf_counter() - start) / len(ids), 4),
                                "cpu_per_video": round((cpu_seconds() - cpu0) / len(ids), 4),
                                "stored": done["stored"], "failed": done["failed"]}
            result["rounds"].append(row)
    best = {b: min(r[b]["wall_per_video"] for r in result["rounds"]) for b in backends}
    result["best_wall_per_video"] = best
    other = next(b for b in backends if b != "torchcodec")
    result["ratio"] = round(best["torchcodec"] / best[other], 3)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
