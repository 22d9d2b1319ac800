"""CLIP ViT frame features (embedding + ToMe-merged tokens) vs CLIP-RN50 maps: seconds per 60-s video.

In one run, with random weights, on already preprocessed frames (decoding is the same for every encoder):
  vit_total   clip_vit_frames(exact_embedding=True): CLIP's encode_image pass + the merging pass (the default);
  vit_merged  clip_vit_frames(exact_embedding=False): the merging pass alone (embedding = its CLS);
  rn50        clip_maps (channels_last), the current visual features,
for each backbone and precision (fp32, bf16 autocast), frames in batches of --batch. A backbone listed in
--measured-frames (default ViT-L-14-336=4) is timed on that many frames and extrapolated linearly to --frames
(per-frame cost does not depend on the content; the batch is then smaller than --batch). Rounds are interleaved
and the best of --repeats kept (other jobs share the machine); wall and process CPU seconds are both reported.
Prints a JSON report, then a table with the ratios to RN50.

    python benchmarks/clip_vit.py [--backbones ViT-B-32 ...] [--threads 2] [--repeats 2]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from avqa import workflow as W
from avqa.features import encoders
from avqa.features.encoders import clip_vit


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    fn()
    return time.perf_counter() - wall, cpu_seconds() - cpu


CONFIG = W.load_config(Path(__file__).resolve().parents[1] / "config.yaml")   # the settings the pipeline uses


def in_batches(forward, images: torch.Tensor, batch: int):
    return lambda: [forward(images[s:s + batch]) for s in range(0, len(images), batch)]


def setups(args) -> dict:
    """name -> (forward(images, precision), images, frames measured)."""
    measured = {name: int(n) for name, n in (item.split("=") for item in args.measured_frames)}
    gen = torch.Generator().manual_seed(0)
    runs = {}
    for backbone in args.backbones:
        model = clip_vit.load_clip_vit("random", 0, "cpu", backbone)
        size = clip_vit.clip_vit_dims(backbone, args.n_tokens)["image_size"]
        n = measured.get(backbone, args.frames)
        images = torch.randn(n, 3, size, size, generator=gen)
        for mode, exact in (("total", True), ("merged", False)):
            runs[f"{backbone}/{mode}"] = (
                lambda x, p, m=model, e=exact: clip_vit.clip_vit_frames(m, x, p, args.n_tokens, exact_embedding=e),
                images, n)
    rn50 = encoders.load_clip("random", 0, "cpu", bn3_gamma=CONFIG["weights_bn3_gamma"])
    runs["RN50/maps"] = (lambda x, p: encoders.clip_maps(rn50, x, p, channels_last=True),
                         torch.randn(args.frames, 3, 224, 224, generator=gen), args.frames)
    return runs


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=list(clip_vit.BACKBONES))
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--frames", type=int, default=60, help="frames per video (1 fps, 60 s)")
    parser.add_argument("--batch", type=int, default=20, help="frames per forward")
    parser.add_argument("--n-tokens", type=int, default=CONFIG["features"]["clip_vit"]["n_tokens"],
                        help="merged tokens per frame (default: config.yaml's features.clip_vit.n_tokens)")
    parser.add_argument("--measured-frames", nargs="*", default=["ViT-L-14-336=4"],
                        help="BACKBONE=N: time N frames and extrapolate to --frames")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_at_start = os.getloadavg()[0]             # other jobs on the machine skew the timings

    runs = setups(args)
    for name, (forward, images, _) in runs.items():           # warm-up: allocator, kernels, memory format
        for precision in args.precisions:
            forward(images[:2], precision)
    best = {p: {name: [float("inf"), float("inf")] for name in runs} for p in args.precisions}
    for _ in range(args.repeats):
        for precision in args.precisions:
            for name, (forward, images, n) in runs.items():
                wall, cpu = timed(in_batches(lambda x: forward(x, precision), images, args.batch))
                scale = args.frames / n                            # per video of `frames` frames
                best[precision][name] = [min(best[precision][name][0], wall * scale),
                                         min(best[precision][name][1], cpu * scale)]
            print(precision, {k: round(v[0], 2) for k, v in best[precision].items()}, file=sys.stderr, flush=True)
    report = {
        "frames_per_video": args.frames, "batch": args.batch, "threads": args.threads, "n_tokens": args.n_tokens,
        "extrapolated_from_frames": {name.split("/")[0]: n for name, (_, _, n) in runs.items() if n != args.frames},
        "load_average_at_start": load_at_start,
        "seconds_per_video": {}, "cpu_seconds_per_video": {}, "ratio_to_rn50": {},
    }
    for precision, table in best.items():
        report["seconds_per_video"][precision] = {k: round(v[0], 2) for k, v in table.items()}
        report["cpu_seconds_per_video"][precision] = {k: round(v[1], 2) for k, v in table.items()}
        rn50 = table["RN50/maps"][0]
        report["ratio_to_rn50"][precision] = {k: round(v[0] / rn50, 2) for k, v in table.items()}
    report["load_average_at_end"] = os.getloadavg()[0]
    print(json.dumps(report, indent=1))
    print_table(report)
    return report


def print_table(report: dict) -> None:
    precisions = list(report["seconds_per_video"])
    names = list(report["seconds_per_video"][precisions[0]])
    header = f"{'seconds per 60-s video':<24}" + "".join(f"{p + ' s':>10}{p + ' x RN50':>14}" for p in precisions)
    print(header)
    for name in names:
        cells = "".join(f"{report['seconds_per_video'][p][name]:>10.2f}{report['ratio_to_rn50'][p][name]:>14.2f}"
                        for p in precisions)
        note = " (extrapolated)" if name.split("/")[0] in report["extrapolated_from_frames"] else ""
        print(f"{name:<24}{cells}{note}")


if __name__ == "__main__":
    main()
